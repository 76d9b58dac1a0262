/**
 * The remote scripts as components/scripts.ts renders them: the shared helpers of lib.sh inside
 * every script, and those helpers run for real in bash against a stand-in `gluster` command that
 * prints what glusterd prints, so the peer-state rules are checked without a cluster.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { script, withHelpers } from "../../components/scripts";

const SCRIPT_DIR = path.join(__dirname, "..", "..", "components", "scripts");
const names = fs
  .readdirSync(SCRIPT_DIR)
  .filter((f) => f.endsWith(".sh") && f !== "lib.sh")
  .map((f) => f.slice(0, -3));
const lib = fs.readFileSync(path.join(SCRIPT_DIR, "lib.sh"), "utf8");

describe("script()", () => {
  test.each(names)("%s gets lib.sh once, right after its strict-mode line, and parses", (name) => {
    const text = script(name);
    const strict = text.indexOf("set -euo pipefail\n");
    expect(text.indexOf(lib)).toBe(strict + "set -euo pipefail\n".length);
    expect(text.split(lib)).toHaveLength(2);
    // The header that names the step in error messages is still the script's own first one.
    expect(text.split("\n").find((l) => l.startsWith("# swarmcloud:"))).toBe(
      fs.readFileSync(path.join(SCRIPT_DIR, `${name}.sh`), "utf8").split("\n")[1],
    );
    expect(spawnSync("bash", ["-n"], { input: text }).status).toBe(0);
  });

  test("a script without a strict-mode line is refused, naming the file", () => {
    expect(() => withHelpers("x/y.sh", "#!/usr/bin/env bash\n# swarmcloud: nothing\necho hi\n", lib)).toThrow(
      'swarmcloud: x/y.sh has no "set -euo pipefail" line',
    );
  });
});

/** `gluster peer status` as glusterd prints it, for the peers given. */
function peerStatus(peers: { host: string; uuid: string; state: string; others?: string[] }[]): string {
  const blocks = peers.map(
    (p) =>
      `Hostname: ${p.host}\nUuid: ${p.uuid}\nState: ${p.state}` +
      (p.others?.length ? `\nOther names:\n${p.others.join("\n")}` : ""),
  );
  return `Number of Peers: ${peers.length}\n\n${blocks.join("\n\n")}\n`;
}

/**
 * Runs SNIPPET after lib.sh in bash with a stand-in `gluster` on PATH: `peer status` prints
 * VIEWS[viewer] ("local" without --remote-host), `system:: uuid get` prints LOCAL_UUID.
 */
function withGluster(views: Record<string, string>, snippet: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-gluster-"));
  try {
    for (const [viewer, text] of Object.entries(views)) fs.writeFileSync(path.join(dir, `view-${viewer}`), text);
    fs.writeFileSync(
      path.join(dir, "gluster"),
      [
        "#!/usr/bin/env bash",
        "viewer=local; args=()",
        'for a in "$@"; do case "$a" in --remote-host=*) viewer=${a#--remote-host=} ;; --mode=*) ;; *) args+=("$a") ;; esac; done',
        'case "${args[*]}" in',
        '  "peer status") cat "$(dirname "$0")/view-$viewer" 2>/dev/null || { echo "Connection failed" >&2; exit 1; } ;;',
        '  "system:: uuid get") echo "UUID: local-uuid" ;;',
        '  *) echo "unexpected: $*" >&2; exit 1 ;;',
        "esac",
      ].join("\n"),
      { mode: 0o755 },
    );
    const r = spawnSync("bash", ["-c", `set -euo pipefail\n${lib}\n${snippet}`], {
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
      encoding: "utf8",
    });
    return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}

const JOINED = "Peer in Cluster (Connected)";
const ACCEPTED = "Accepted peer request (Connected)";

describe("lib.sh Gluster peer helpers", () => {
  const local = peerStatus([
    { host: "10.0.0.12", uuid: "u2", state: JOINED, others: ["manager-2"] },
    { host: "manager-3", uuid: "u3", state: ACCEPTED, others: ["10.0.0.13"] },
  ]);

  test("gluster_peer_state finds a peer by hostname, other name or UUID; nothing for a stranger", () => {
    const r = withGluster(
      { local },
      [
        'for p in 10.0.0.12 manager-2 u2 10.0.0.13 manager-3 u3 10.0.0.99; do printf "%s=%s\\n" "$p" "$(gluster_peer_state "$p")"; done',
      ].join("\n"),
    );
    expect(r.stdout.split("\n")).toEqual([
      `10.0.0.12=${JOINED}`,
      `manager-2=${JOINED}`,
      `u2=${JOINED}`,
      `10.0.0.13=${ACCEPTED}`,
      `manager-3=${ACCEPTED}`,
      `u3=${ACCEPTED}`,
      "10.0.0.99=",
    ]);
  });

  test("gluster_peer_uuid maps any name to the UUID", () => {
    const r = withGluster({ local }, "gluster_peer_uuid manager-2; gluster_peer_uuid 10.0.0.13");
    expect(r.stdout.split("\n")).toEqual(["u2", "u3"]);
  });

  test("a peer that is only Connected, not 'Peer in Cluster', is not joined: the wait fails naming it and its state", () => {
    const r = withGluster({ local }, 'gluster_wait_joined 1 local:10.0.0.12 local:10.0.0.13 || echo "exit $?"');
    expect(r.stdout).toBe("exit 1");
    expect(r.stderr).toContain(`peer 10.0.0.13 as seen from local: ${ACCEPTED}`);
    expect(r.stderr).not.toContain("peer 10.0.0.12");
  });

  test("gluster_wait_pool asks every peer for its view, by UUID: one that does not see this node joined holds it", () => {
    const both = peerStatus([
      { host: "10.0.0.12", uuid: "u2", state: JOINED },
      { host: "10.0.0.13", uuid: "u3", state: JOINED },
    ]);
    const viewOf = (selfUuid: string, others: { uuid: string; state: string }[]) =>
      peerStatus(others.filter((o) => o.uuid !== selfUuid).map((o) => ({ host: `name-${o.uuid}`, ...o })));
    const good = {
      local: both,
      "10.0.0.12": viewOf("u2", [
        { uuid: "local-uuid", state: JOINED },
        { uuid: "u3", state: JOINED },
      ]),
      "10.0.0.13": viewOf("u3", [
        { uuid: "local-uuid", state: JOINED },
        { uuid: "u2", state: JOINED },
      ]),
    };
    expect(withGluster(good, "gluster_wait_pool 1 10.0.0.12 10.0.0.13 && echo joined").stdout).toBe("joined");

    const lagging = {
      ...good,
      "10.0.0.13": viewOf("u3", [
        { uuid: "local-uuid", state: "Probe Sent to Peer (Connected)" },
        { uuid: "u2", state: JOINED },
      ]),
    };
    const r = withGluster(lagging, "gluster_wait_pool 1 10.0.0.12 10.0.0.13 || echo waited");
    expect(r.stdout).toBe("waited");
    expect(r.stderr).toContain("peer local-uuid as seen from 10.0.0.13: Probe Sent to Peer (Connected)");
  });

  test("gluster_wait_pool with no peer (one brick node) returns at once", () => {
    expect(withGluster({ local: "Number of Peers: 0\n" }, "gluster_wait_pool 1 && echo alone").stdout).toBe("alone");
  });
});
