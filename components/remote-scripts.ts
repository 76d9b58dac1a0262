import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";

const SCRIPT_DIR = path.join(__dirname, "remote-scripts");
const STRICT_MODE = "set -euo pipefail\n";
let lib: string | undefined;

/**
 * The text of one remote script from components/remote-scripts (each lives in its own file), with the
 * helpers of components/remote-scripts/lib.sh it uses inserted right after its strict-mode line.
 */
export function script(name: string): string {
  let rendered = renderedScripts.get(name);
  if (rendered === undefined) {
    lib ??= fs.readFileSync(path.join(SCRIPT_DIR, "lib.sh"), "utf8");
    const text = fs.readFileSync(path.join(SCRIPT_DIR, `${name}.sh`), "utf8");
    rendered = withHelpers(`components/remote-scripts/${name}.sh`, text, helpersFor(text, lib));
    renderedScripts.set(name, rendered);
  }
  return rendered;
}
/** Each script rendered once per program run: every node's step asks for the same text. */
const renderedScripts = new Map<string, string>();

/** TEXT with HELPERS inserted after its `set -euo pipefail` line; FILE names it in the error. */
export function withHelpers(file: string, text: string, helpers: string): string {
  const at = text.indexOf(STRICT_MODE);
  if (at < 0) throw new Error(`swarmcloud: ${file} has no "set -euo pipefail" line`);
  const end = at + STRICT_MODE.length;
  return text.slice(0, end) + helpers + text.slice(end);
}

/** One function or constant of lib.sh: its name and its text, the comment lines right above it included. */
export interface LibDefinition {
  name: string;
  text: string;
}

const FUNCTION_START = /^([A-Za-z_][A-Za-z0-9_]*)\(\) \{(.*\}\s*)?$/;
const CONSTANT = /^(?:readonly )?([A-Z_][A-Z0-9_]*)=/;

/**
 * lib.sh's definitions in their order. lib.sh holds only functions (`name() {` to a `}` line, or
 * on one line), constants (`readonly NAME=...` on one line), comments and blank lines: anything
 * else would run in every script, and is refused here.
 */
export function libDefinitions(libText: string): LibDefinition[] {
  const lines = libText.split("\n");
  const defs: LibDefinition[] = [];
  let comments: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith("#")) {
      comments.push(line);
      continue;
    }
    if (line.trim() === "") {
      comments = [];
      continue;
    }
    const fn = FUNCTION_START.exec(line);
    const constant = CONSTANT.exec(line);
    if (fn) {
      let end = i;
      if (!fn[2]) {
        while (end < lines.length && lines[end] !== "}") end++;
        if (end === lines.length)
          throw new Error(`swarmcloud: lib.sh line ${i + 1}: ${fn[1]}() has no closing "}" line`);
      }
      defs.push({ name: fn[1]!, text: [...comments, ...lines.slice(i, end + 1)].join("\n") });
      i = end;
    } else if (constant) {
      defs.push({ name: constant[1]!, text: [...comments, line].join("\n") });
    } else {
      throw new Error(`swarmcloud: lib.sh line ${i + 1} is neither a function nor a constant: ${line}`);
    }
    comments = [];
  }
  return defs;
}

/** Whether NAME stands in TEXT as a whole word (a shell name: letters, digits, _). */
function mentions(text: string, name: string): boolean {
  return new RegExp(`(^|[^A-Za-z0-9_])${name}($|[^A-Za-z0-9_])`).test(text);
}

/**
 * The definitions of lib.sh that TEXT uses, and those they use in turn, in lib.sh's order. Only
 * these go into the script: a new helper in lib.sh changes no script that does not call it, so it
 * re-runs no step of an existing stack (a script's text is one of the inputs that re-run it).
 */
export function helpersFor(text: string, libText: string): string {
  const defs = libDefinitions(libText);
  const used = new Set<string>();
  const pending = [text];
  while (pending.length > 0) {
    const body = pending.pop()!;
    for (const d of defs) {
      if (used.has(d.name) || !mentions(body, d.name)) continue;
      used.add(d.name);
      pending.push(d.text);
    }
  }
  return defs
    .filter((d) => used.has(d.name))
    .map((d) => `${d.text}\n`)
    .join("");
}

/** Joins addresses (which may still be unknown) into one space-separated string. */
export function words(values: pulumi.Input<string>[]): pulumi.Output<string> {
  return pulumi.all(values).apply((v) => v.join(" "));
}

/** Renders labels or options as the "key=value" lines the scripts read. */
export function keyValueLines(map: Record<string, string>): string {
  return Object.keys(map)
    .sort()
    .map((k) => `${k}=${map[k]}`)
    .join("\n");
}
