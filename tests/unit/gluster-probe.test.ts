/**
 * gluster-probe.sh in bash against a stand-in `gluster` whose `peer status` answers come from a
 * queue (the last one repeats) and that logs every call: a peer that `peer status` lists, then
 * for a moment does not (as while a probe's handshake runs), then lists again, is probed in;
 * a probe answered "already in peer list" counts as probed; a peer that never answers fails
 * naming it.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { script } from "../../components/remote-scripts";

const JOINED = ["Number of Peers: 1", "", "Hostname: 10.0.0.13", "Uuid: u3", "State: Peer in Cluster (Connected)"].join(
  "\\n",
);
// Seen from the peer (gluster --remote-host): this node, joined.
const FROM_PEER = [
  "Number of Peers: 1",
  "",
  "Hostname: 10.0.0.11",
  "Uuid: u1",
  "State: Peer in Cluster (Connected)",
].join("\\n");

const GLUSTER = `
f="$STAND_IN_DIR"
case "$*" in
  "--mode=script peer status")
    head -n 1 "$f/status" | sed 's/^-$//' | sed 's/\\\\n/\\n/g'
    [ "$(wc -l <"$f/status")" -gt 1 ] && sed -i 1d "$f/status"
    true ;;
  "--mode=script --remote-host=10.0.0.13 peer status") printf '${FROM_PEER}\\n' ;;
  "--mode=script system:: uuid get") echo "UUID: u1" ;;
  "--mode=script peer probe 10.0.0.13") cat "$f/probe"; [ -s "$f/probe" ] || { echo "peer probe: failed: Probe returned with Transport endpoint is not connected" >&2; exit 1; } ;;
  *) echo "unexpected: gluster $*" >&2; exit 1 ;;
esac`;

/** Runs gluster-probe.sh with `peer status` answers in turn ("-": nothing listed) and a probe's answer ("" : refused). */
function probe(statuses: string[], probeAnswer: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-probe-"));
  try {
    fs.writeFileSync(path.join(dir, "status"), statuses.join("\n") + "\n");
    fs.writeFileSync(path.join(dir, "probe"), probeAnswer);
    fs.writeFileSync(path.join(dir, "calls.log"), "");
    const log = `printf '%s\\n' "gluster $*" >>"$STAND_IN_DIR/calls.log"`;
    fs.writeFileSync(path.join(dir, "gluster"), `#!/usr/bin/env bash\n${log}\n${GLUSTER}\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, "sleep"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    const r = spawnSync("bash", ["-c", script("gluster-probe")], {
      env: {
        ...process.env,
        NODE_NAME: "manager-3",
        PEER_ADDR: "10.0.0.13",
        STAND_IN_DIR: dir,
        PATH: `${dir}:${process.env.PATH}`,
      },
      encoding: "utf8",
      timeout: 60_000,
    });
    const calls = fs.readFileSync(path.join(dir, "calls.log"), "utf8").trim().split("\n").filter(Boolean);
    return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr, calls };
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}

test("a peer listed, then for a moment not, then again: probed in, not failed", () => {
  const r = probe([JOINED, "-", JOINED], "");
  expect(r.stderr).not.toContain("unexpected");
  expect([r.code, r.stdout]).toEqual([0, "10.0.0.13"]);
  // Known at the first look: never probed.
  expect(r.calls.filter((c) => c.includes("peer probe"))).toEqual([]);
});

test("a probe answered 'already in peer list' while peer status lists nothing yet counts as probed", () => {
  const r = probe(["-", "-", JOINED], "peer probe: success. Host 10.0.0.13 port 24007 already in peer list\n");
  expect(r.stderr).not.toContain("unexpected");
  expect([r.code, r.stdout]).toEqual([0, "10.0.0.13"]);
  expect(r.calls.filter((c) => c.includes("peer probe"))).toHaveLength(1);
});

test("a peer whose glusterd never answers fails, naming it", () => {
  const r = probe(["-"], "");
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("peer manager-3 (10.0.0.13) could not be probed into the trusted pool");
  expect(r.calls.filter((c) => c.includes("peer probe"))).toHaveLength(13);
});
