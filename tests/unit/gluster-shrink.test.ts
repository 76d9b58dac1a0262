/**
 * gluster-shrink.sh in bash against stand-in `gluster` and `docker` commands that keep the
 * volume's bricks and the heal backlog in files and log every call: a brick leaves only once
 * nothing is left to heal, the self-heal daemon is asked to heal while the script waits (it
 * would otherwise crawl only every cluster.heal-timeout), and a heal that never ends removes no
 * brick and names the entries still pending.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { script } from "../../components/remote-scripts";

const GLUSTER = `
f="$STAND_IN_DIR"
case "$*" in
  "--mode=script volume info"*) sed 's/^/Brick: /' "$f/bricks" | awk '{ print "Brick" NR ": " $2 }' ;;
  "--mode=script peer probe "*) ;;
  "--mode=script volume heal swarmcloud full") ;;
  "--mode=script volume heal swarmcloud") ;;
  "--mode=script volume heal swarmcloud info")
    n=$(head -n 1 "$f/pending"); [ -n "$n" ] || n=0
    [ "$(wc -l <"$f/pending")" -gt 1 ] && sed -i 1d "$f/pending"
    while read -r b; do
      printf 'Brick %s\\n' "$b"
      for i in $(seq 1 "$n"); do printf '/ghost/db/ibdata%s\\n' "$i"; done
      printf 'Status: Connected\\nNumber of entries: %s\\n\\n' "$n"
    done <"$f/bricks" ;;
  "--mode=script volume remove-brick swarmcloud replica "*" force")
    set -- $*; grep -vx "$7" "$f/bricks" >"$f/bricks.new"; mv "$f/bricks.new" "$f/bricks" ;;
  "--mode=script peer status") printf 'Number of Peers: 1\\n\\nHostname: 10.0.0.13\\nUuid: u3\\nState: Peer in Cluster (Connected)\\n' ;;
  "--mode=script peer detach 10.0.0.13 force") ;;
  *) echo "unexpected: gluster $*" >&2; exit 1 ;;
esac`;

// A worker: the script cannot drain, and says so.
const DOCKER = `
case "$*" in
  "info --format {{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}") echo "active false" ;;
  *) echo "unexpected: docker $*" >&2; exit 1 ;;
esac`;

/** Runs gluster-shrink.sh with the bricks in the volume and one heal-info count per sample. */
function shrink(pending: number[], extraEnv: Record<string, string> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-shrink-"));
  try {
    fs.writeFileSync(path.join(dir, "bricks"), ["10.0.0.11:/b", "10.0.0.12:/b", "10.0.0.13:/b"].join("\n") + "\n");
    fs.writeFileSync(path.join(dir, "pending"), pending.join("\n") + "\n");
    for (const [cmd, body] of Object.entries({ gluster: GLUSTER, docker: DOCKER })) {
      const log = `printf '%s\\n' "${cmd} $*" >>"$STAND_IN_DIR/calls.log"`;
      fs.writeFileSync(path.join(dir, cmd), `#!/usr/bin/env bash\n${log}\n${body}\n`, { mode: 0o755 });
    }
    const r = spawnSync("bash", ["-c", script("gluster-shrink"), "swarmcloud"], {
      env: {
        ...process.env,
        NODE_NAME: "n1",
        VOLUME: "swarmcloud",
        BRICKS: "10.0.0.11:/b 10.0.0.12:/b",
        MEMBERS: "10.0.0.11 10.0.0.12",
        STAND_IN_DIR: dir,
        PATH: `${dir}:${process.env.PATH}`,
        ...extraEnv,
      },
      encoding: "utf8",
    });
    const calls = fs.readFileSync(path.join(dir, "calls.log"), "utf8").trim().split("\n");
    const bricks = fs.readFileSync(path.join(dir, "bricks"), "utf8").trim().split("\n");
    return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr, calls, bricks };
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}

const at = (calls: string[], re: RegExp) => calls.findIndex((c) => re.test(c));

test("a brick leaves once nothing is left to heal; the self-heal daemon is asked to heal meanwhile", () => {
  // Two samples with entries pending, then none: the wait goes on until the backlog is gone.
  const r = shrink([2, 1, 0], { SECONDS: "100" });
  expect(r.stderr).not.toContain("unexpected");
  expect(r.code).toBe(0);
  expect(r.bricks).toEqual(["10.0.0.11:/b", "10.0.0.12:/b"]);
  const samples = r.calls.flatMap((c, i) => (c.endsWith("volume heal swarmcloud info") ? [i] : []));
  expect(samples.length).toBeGreaterThanOrEqual(3);
  // Removed only after the third sample, the first that found nothing pending.
  const removal = at(r.calls, /remove-brick swarmcloud replica 2 10\.0\.0\.13:\/b force$/);
  expect(removal).toBeGreaterThan(samples[2]!);
  // An index heal was requested while entries were pending, before the brick left.
  const prod = r.calls.findIndex((c) => c === "gluster --mode=script volume heal swarmcloud");
  expect(prod).toBeGreaterThan(-1);
  expect(prod).toBeLessThan(removal);
  expect(r.calls).toContain("gluster --mode=script peer detach 10.0.0.13 force");
});

test("a heal that never ends removes no brick, and the error names the entries still pending", () => {
  const r = shrink([3], { HEAL_SECONDS: "1" });
  expect(r.code).toBe(1);
  expect(r.bricks).toHaveLength(3);
  expect(r.calls.some((c) => c.includes("remove-brick"))).toBe(false);
  expect(r.stderr).toContain("no brick was removed; still to heal:");
  expect(r.stderr).toContain("/ghost/db/ibdata3");
  expect(r.stderr).toContain("run pulumi up again once it has healed");
}, 20000);
