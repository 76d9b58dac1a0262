import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";

const SCRIPT_DIR = path.join(__dirname, "remote-scripts");
const STRICT_MODE = "set -euo pipefail\n";
let lib: string | undefined;

/**
 * The text of one remote script from components/remote-scripts (each lives in its own file), with the
 * shared helpers of components/remote-scripts/lib.sh inserted right after its strict-mode line.
 */
export function script(name: string): string {
  lib ??= fs.readFileSync(path.join(SCRIPT_DIR, "lib.sh"), "utf8");
  return withHelpers(
    `components/remote-scripts/${name}.sh`,
    fs.readFileSync(path.join(SCRIPT_DIR, `${name}.sh`), "utf8"),
    lib,
  );
}

/** TEXT with HELPERS inserted after its `set -euo pipefail` line; FILE names it in the error. */
export function withHelpers(file: string, text: string, helpers: string): string {
  const at = text.indexOf(STRICT_MODE);
  if (at < 0) throw new Error(`swarmcloud: ${file} has no "set -euo pipefail" line`);
  const end = at + STRICT_MODE.length;
  return text.slice(0, end) + helpers + text.slice(end);
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
