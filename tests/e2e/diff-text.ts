/**
 * Reading what `pulumi preview --refresh --diff --color never` prints, for the drift suite (and
 * unit-tested against the engine's own output: tests/unit/fixtures/preview-refresh-diff.txt).
 */

/** One resource's part of the output: its step (refresh, update, same, ...), its name and text. */
export interface Block {
  op: string;
  name: string;
  text: string;
}

/**
 * One block per resource step: a header line `<type>: (<op>)`, then `[urn=...::<name>]`, then
 * its property lines; a line at the left margin that is no header (a warning, the summary) ends it.
 */
export function diffBlocks(text: string): Block[] {
  const blocks: Block[] = [];
  let current: Block | undefined;
  for (const line of text.split("\n")) {
    const header = /^\s*[~+\-<>]*\s*[\w:/.$-]+: \(([\w-]+)\)\s*$/.exec(line);
    if (header) {
      current = { op: header[1]!, name: "", text: "" };
      blocks.push(current);
      continue;
    }
    if (/^\S/.test(line)) current = undefined;
    if (!current) continue;
    const urn = /^\s*\[urn=.*::([^:\]]+)\]\s*$/.exec(line);
    if (urn && current.name === "") current.name = urn[1]!;
    current.text += `${line}\n`;
  }
  return blocks;
}

/**
 * The changed lines of a block, on one line: `~ KEY: "a" => "b"`, `+ DRIFT: "..."`, and the
 * `-`/`+` lines of a value of several lines (`~ LABELS: - tier=app`).
 */
export function changedLines(text: string): string {
  return text
    .split("\n")
    .filter((l) => /^\s*[~+-] /.test(l) && !/^\s*~ environment: \{/.test(l))
    .map((l) =>
      l
        .trim()
        .replace(/\s+/g, " ")
        .replace(/^([~+-] [A-Z_]+) ?:/, "$1:"),
    )
    .join(" ");
}

/** The warnings of resources a refresh could not read (components/remote.ts readSkipped). */
export function readWarnings(text: string): string[] {
  return text.split("\n").filter((l) => l.includes("swarmcloud: refresh could not"));
}
