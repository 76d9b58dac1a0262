/**
 * The drift suite's reading of `pulumi preview --refresh --diff` (tests/e2e/diff-text.ts), against
 * what the real engine (v3.274.1) printed for RemoteScripts whose read saw a drift: a role, a
 * label, a node out of the swarm, a service scaled, and a node that could not be reached.
 */
import * as fs from "fs";
import * as path from "path";
import { changedLines, diffBlocks, readWarnings } from "../e2e/diff-text";

const TEXT = fs.readFileSync(path.join(__dirname, "fixtures", "preview-refresh-diff.txt"), "utf8");

test("one block per resource step, named by its URN, refresh blocks first, then the plan", () => {
  const steps = diffBlocks(TEXT).map((b) => `${b.op} ${b.name}`);
  expect(steps).toEqual([
    "refresh drift-exp-exp",
    "refresh exp-stack",
    "refresh exp-member",
    "refresh exp-join",
    "same drift-exp-exp",
    "update exp-member",
    "update exp-join",
    "update exp-stack",
  ]);
});

test("a refresh block shows the drift, declared => seen; the update block the repair, seen => declared", () => {
  const blocks = diffBlocks(TEXT);
  const block = (op: string, name: string) => blocks.find((b) => b.op === op && b.name === name)!.text;
  expect(block("refresh", "exp-member")).toMatch(/~ ROLE\s*: "worker" => "manager"/);
  expect(block("update", "exp-member")).toMatch(/~ ROLE\s*: "manager" => "worker"/);
  expect(block("refresh", "exp-join")).toMatch(
    /\+ DRIFT\s*: "worker-2 is not in the swarm \(Swarm\.LocalNodeState=inactive\)"/,
  );
  expect(block("update", "exp-join")).toMatch(/- DRIFT\s*: "worker-2 is not in the swarm/);
  expect(block("refresh", "exp-stack")).toMatch(/^\s*- ghost_ghost replicated 1\s*$/m);
  expect(block("refresh", "exp-stack")).toMatch(/^\s*\+ ghost_ghost replicated 3\s*$/m);
  // A warning printed after a block is not part of it.
  expect(block("refresh", "exp-join")).not.toContain("warning");
});

test("changedLines sums a block up on one line", () => {
  const blocks = diffBlocks(TEXT);
  const refresh = (name: string) => changedLines(blocks.find((b) => b.op === "refresh" && b.name === name)!.text);
  expect(refresh("exp-member")).toBe('~ LABELS: - a=1 ~ ROLE: "worker" => "manager"');
  expect(refresh("exp-stack")).toBe("~ SERVICES: - ghost_ghost replicated 1 + ghost_ghost replicated 3");
  expect(refresh("exp-join")).toBe('+ DRIFT: "worker-2 is not in the swarm (Swarm.LocalNodeState=inactive)"');
});

test("readWarnings finds the node that could not be read", () => {
  expect(readWarnings(TEXT)).toEqual([
    "warning: swarmcloud: refresh could not read the gone node on node worker-9; left as it was in state: " +
      "node worker-9 (root@127.0.0.1:1) is unreachable over SSH after 3 attempts: Error: connect ECONNREFUSED 127.0.0.1:1",
  ]);
});
