/**
 * swarm-leave.sh in bash against a stand-in `docker` whose `info` states come from a queue (the
 * last one repeats) and whose `swarm leave --force` answers from another, logging every call: the
 * last manager's forced leave answered "context deadline exceeded" while the node goes on
 * leaving (CI, 2026-12-03, Docker 26) is waited for, not failed; a leave that never happens fails
 * naming the node and the daemon's answer; a node already outside changes nothing.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { script } from "../../components/remote-scripts";

const DOCKER = `
f="$STAND_IN_DIR"
next() { head -n 1 "$f/$1"; [ "$(wc -l <"$f/$1")" -gt 1 ] && sed -i 1d "$f/$1"; true; }
case "$*" in
  "info --format {{.Swarm.LocalNodeState}}") next states ;;
  "swarm leave") echo "Error response from daemon: You are attempting to leave the swarm on a node that is participating as a manager." >&2; exit 1 ;;
  "swarm leave --force")
    answer=$(next leaves)
    [ "$answer" = ok ] && { echo "Node left the swarm."; exit 0; }
    echo "Error response from daemon: $answer" >&2; exit 1 ;;
  *) echo "unexpected: docker $*" >&2; exit 1 ;;
esac`;

/** Runs swarm-leave.sh with `docker info` states and forced-leave answers ("ok" or an error) in turn. */
function leave(states: string[], leaves: string[]) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-leave-"));
  try {
    fs.writeFileSync(path.join(dir, "states"), states.join("\n") + "\n");
    fs.writeFileSync(path.join(dir, "leaves"), leaves.join("\n") + "\n");
    fs.writeFileSync(path.join(dir, "calls.log"), "");
    const log = `printf '%s\\n' "docker $*" >>"$STAND_IN_DIR/calls.log"`;
    fs.writeFileSync(path.join(dir, "docker"), `#!/usr/bin/env bash\n${log}\n${DOCKER}\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, "sleep"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const r = spawnSync("bash", ["-c", script("swarm-leave")], {
      env: {
        ...process.env,
        NODE_NAME: "manager-1",
        LEAVE_WAIT: "1",
        STAND_IN_DIR: dir,
        PATH: `${dir}:${process.env.PATH}`,
      },
      encoding: "utf8",
      timeout: 120_000,
    });
    const calls = fs.readFileSync(path.join(dir, "calls.log"), "utf8").trim().split("\n").filter(Boolean);
    return { code: r.status, stderr: r.stderr, calls };
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}

const forced = (calls: string[]) => calls.filter((c) => c === "docker swarm leave --force").length;

test("the last manager's forced leave times out in dockerd while the node goes on leaving: waited for, not failed", () => {
  const r = leave(["active", "active", "pending", "inactive"], ["context deadline exceeded"]);
  expect(r.stderr).not.toContain("unexpected");
  expect(r.code).toBe(0);
  expect(forced(r.calls)).toBe(1);
});

test("a forced leave that timed out and did not happen is tried again", () => {
  const r = leave(["active"], ["context deadline exceeded", "ok"]);
  expect(r.stderr).not.toContain("unexpected");
  expect(r.code).toBe(0);
  expect(forced(r.calls)).toBe(2);
});

test("a node that never leaves fails naming itself and the daemon's answer, after three tries", () => {
  const r = leave(["active"], ["context deadline exceeded"]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain(
    "manager-1 could not leave the swarm: Error response from daemon: context deadline exceeded",
  );
  expect(forced(r.calls)).toBe(3);
});

test("a node already outside any swarm changes nothing", () => {
  const r = leave(["inactive"], ["ok"]);
  expect(r.code).toBe(0);
  expect(r.calls).toEqual(["docker info --format {{.Swarm.LocalNodeState}}"]);
});
