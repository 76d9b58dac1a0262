/**
 * The remote scripts as components/remote-scripts.ts renders them: the shared helpers of lib.sh inside
 * every script, and those helpers run for real in bash against stand-in commands on PATH (a
 * `gluster` that prints what glusterd prints, a `docker` that answers `docker info`, a `sleep`
 * that logs), so the peer-state, manager, retry and wait rules are checked without a cluster.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { helpersFor, libDefinitions, script, withHelpers } from "../../components/remote-scripts";

const SCRIPT_DIR = path.join(__dirname, "..", "..", "components", "remote-scripts");
const names = fs
  .readdirSync(SCRIPT_DIR)
  .filter((f) => f.endsWith(".sh") && f !== "lib.sh")
  .map((f) => f.slice(0, -3));
const lib = fs.readFileSync(path.join(SCRIPT_DIR, "lib.sh"), "utf8");

describe("script()", () => {
  const defs = libDefinitions(lib);
  const word = (text: string, name: string) => new RegExp(`(^|[^A-Za-z0-9_])${name}($|[^A-Za-z0-9_])`).test(text);

  test.each(names)(
    "%s gets the lib.sh helpers it uses (and theirs), once, right after its strict-mode line, and parses",
    (name) => {
      const own = fs.readFileSync(path.join(SCRIPT_DIR, `${name}.sh`), "utf8");
      const text = script(name);
      const strict = text.indexOf("set -euo pipefail\n") + "set -euo pipefail\n".length;
      const helpers = helpersFor(own, lib);
      expect(text.slice(strict, strict + helpers.length)).toBe(helpers);
      expect(text.slice(0, strict) + text.slice(strict + helpers.length)).toBe(own);
      for (const d of defs) {
        const needed =
          word(own, d.name) || defs.some((o) => helpers.includes(o.text) && o !== d && word(o.text, d.name));
        expect([d.name, text.split(d.text).length - 1]).toEqual([d.name, needed ? 1 : 0]);
      }
      // The header that names the step in error messages is still the script's own first one.
      expect(text.split("\n").find((l) => l.startsWith("# swarmcloud:"))).toBe(own.split("\n")[1]);
      expect(spawnSync("bash", ["-n"], { input: text }).status).toBe(0);
    },
  );

  test("a script without a strict-mode line is refused, naming the file", () => {
    expect(() => withHelpers("x/y.sh", "#!/usr/bin/env bash\n# swarmcloud: nothing\necho hi\n", lib)).toThrow(
      'swarmcloud: x/y.sh has no "set -euo pipefail" line',
    );
  });

  test("every definition of lib.sh is found, with the comment right above it", () => {
    const names = defs.map((d) => d.name);
    for (const line of lib.split("\n")) {
      const m = /^([a-z_]+)\(\) \{/.exec(line) ?? /^readonly ([A-Z_]+)=/.exec(line);
      if (m) expect(names).toContain(m[1]);
    }
    expect(defs.find((d) => d.name === "fatal")!.text).toMatch(/^# fatal LINE\.\.\.:.*\nfatal\(\) \{\n[\s\S]*\n\}$/);
  });

  test("helpers come in lib.sh's order, a helper's own helpers with it, unused ones left out", () => {
    const fake = [
      "# a",
      "a() {",
      "  b",
      "}",
      "",
      "# section heading, not attached",
      "",
      "b() { echo b; }",
      "readonly C=1",
      "d() {",
      '  echo "$C"',
      "}",
      "",
    ].join("\n");
    expect(libDefinitions(fake).map((d) => [d.name, d.text])).toEqual([
      ["a", "# a\na() {\n  b\n}"],
      ["b", "b() { echo b; }"],
      ["C", "readonly C=1"],
      ["d", 'd() {\n  echo "$C"\n}'],
    ]);
    expect(helpersFor("a x", fake)).toBe("# a\na() {\n  b\n}\nb() { echo b; }\n");
    expect(helpersFor("d; ab", fake)).toBe('readonly C=1\nd() {\n  echo "$C"\n}\n');
    expect(helpersFor("nothing", fake)).toBe("");
  });

  test("a lib.sh line that would run in every script is refused, naming the line", () => {
    expect(() => libDefinitions("a() {\n  :\n}\necho hi\n")).toThrow(
      "swarmcloud: lib.sh line 4 is neither a function nor a constant: echo hi",
    );
    expect(() => libDefinitions("a() {\n  :\n")).toThrow('lib.sh line 1: a() has no closing "}" line');
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

/** The real `sleep`, for stand-ins that must still pass a little time. */
const REAL_SLEEP = spawnSync("sh", ["-c", "command -v sleep"], { encoding: "utf8" }).stdout.trim();

/**
 * Runs SNIPPET after lib.sh in bash (as a script runs it: strict mode, then lib.sh; `script`:
 * SNIPPET is a whole rendered script, run as it is) with STAND_INS on PATH: each key a command
 * name, each value the bash body of that command. The stand-ins find the run's folder in
 * $STAND_IN_DIR (for state and logs); FILES are written there first. Returns the exit code,
 * stdout, stderr and `read(name)`: what the stand-ins left in a file of that folder.
 */
function inBash(
  snippet: string,
  standIns: Record<string, string>,
  opts: { files?: Record<string, string>; env?: Record<string, string>; script?: boolean } = {},
) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-lib-"));
  try {
    for (const [name, text] of Object.entries(opts.files ?? {})) fs.writeFileSync(path.join(dir, name), text);
    for (const [name, body] of Object.entries(standIns)) {
      fs.writeFileSync(path.join(dir, name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
    }
    const r = spawnSync("bash", ["-c", opts.script ? snippet : `set -euo pipefail\n${lib}\n${snippet}`], {
      env: { ...process.env, ...opts.env, STAND_IN_DIR: dir, PATH: `${dir}:${process.env.PATH}` },
      input: "",
      encoding: "utf8",
    });
    const left = Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f), "utf8")]));
    const read = (name: string) => left[name] ?? "";
    return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim(), read };
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}

/**
 * Runs SNIPPET after lib.sh in bash with a stand-in `gluster` on PATH: `peer status` prints
 * VIEWS[viewer] ("local" without --remote-host), `system:: uuid get` prints LOCAL_UUID.
 */
function withGluster(views: Record<string, string>, snippet: string) {
  const files = Object.fromEntries(Object.entries(views).map(([viewer, text]) => [`view-${viewer}`, text]));
  const gluster = [
    "viewer=local; args=()",
    'for a in "$@"; do case "$a" in --remote-host=*) viewer=${a#--remote-host=} ;; --mode=*) ;; *) args+=("$a") ;; esac; done',
    'case "${args[*]}" in',
    '  "peer status") cat "$STAND_IN_DIR/view-$viewer" 2>/dev/null || { echo "Connection failed" >&2; exit 1; } ;;',
    '  "system:: uuid get") echo "UUID: local-uuid" ;;',
    '  *) echo "unexpected: $*" >&2; exit 1 ;;',
    "esac",
  ].join("\n");
  const r = inBash(snippet, { gluster }, { files });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
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

/**
 * A stand-in `docker` that logs its arguments to docker.log and answers
 * `docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'` with the file
 * swarm-state, or fails as Docker does when that file is missing; anything else is refused.
 */
const DOCKER = [
  'echo "$*" >>"$STAND_IN_DIR/docker.log"',
  'case "$*" in',
  '  "info --format {{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}")',
  '    cat "$STAND_IN_DIR/swarm-state" 2>/dev/null || { echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" >&2; exit 1; } ;;',
  '  *) echo "unexpected: docker $*" >&2; exit 1 ;;',
  "esac",
].join("\n");
const HOSTNAME = "echo node-7";
/** Logs each pause to sleep.log and passes a little real time. */
const SLEEP = `echo "$1" >>"$STAND_IN_DIR/sleep.log"\n${REAL_SLEEP} 0.01`;

describe("lib.sh info and fatal", () => {
  test("info writes each argument as a line on stderr, nothing on stdout", () => {
    const r = inBash('info "one thing" "and another"; echo done', {});
    expect(r).toMatchObject({ code: 0, stdout: "done", stderr: "one thing\nand another" });
  });

  test("fatal writes its lines on stderr and ends the script with exit 1", () => {
    const r = inBash('fatal "could not delete volume v:" "volume delete: v: failed"; echo "not reached"', {});
    expect(r).toMatchObject({ code: 1, stdout: "", stderr: "could not delete volume v:\nvolume delete: v: failed" });
  });
});

describe("lib.sh require_manager", () => {
  const run = (state: string | undefined, snippet = 'require_manager "stacks deploy from a manager"; echo "went on"') =>
    inBash(
      snippet,
      { docker: DOCKER, hostname: HOSTNAME },
      { files: state === undefined ? {} : { "swarm-state": `${state}\n` } },
    );

  test("on a manager it returns and the script goes on, after one docker info", () => {
    const r = run("active true");
    expect(r).toMatchObject({ code: 0, stdout: "went on", stderr: "" });
    expect(r.read("docker.log")).toBe("info --format {{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}\n");
  });

  test.each([
    ["a worker", "active false", "Swarm.LocalNodeState=active, Swarm.ControlAvailable=false"],
    ["a node in no swarm", "inactive false", "Swarm.LocalNodeState=inactive, Swarm.ControlAvailable=false"],
    ["a node still joining", "pending false", "Swarm.LocalNodeState=pending, Swarm.ControlAvailable=false"],
  ])("on %s it says why and exits 75, so the caller tries the next manager", (_, state, seen) => {
    const r = run(state);
    expect(r.code).toBe(75);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`node-7 is not a swarm manager (${seen}); stacks deploy from a manager`);
  });

  test("when Docker does not answer it exits 75 too, with Docker's error", () => {
    const r = run(undefined, "require_manager; echo went on");
    expect(r.code).toBe(75);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("Cannot connect to the Docker daemon");
    expect(r.stderr).toContain("node-7 is not a swarm manager (docker info did not answer)");
  });

  test("not_here prints its message and exits 75", () => {
    const r = inBash('not_here "node-7 is the node being removed"; echo went on', {});
    expect(r).toMatchObject({ code: 75, stdout: "", stderr: "node-7 is the node being removed" });
  });
});

describe("lib.sh retry", () => {
  /** A command that fails with ERROR (on stderr, after some stdout) until its FAILS-th call. */
  const flaky = (fails: number, error: string) =>
    [
      'n=$(( $(cat "$STAND_IN_DIR/calls" 2>/dev/null || echo 0) + 1 ))',
      'echo "$n" >"$STAND_IN_DIR/calls"',
      'echo "output of call $n"',
      `[ "$n" -gt ${fails} ] && exit 0`,
      `echo "Error response from daemon: ${error}" >&2`,
      "exit 1",
    ].join("\n");
  const OUT_OF_SEQUENCE = "rpc error: code = Unknown desc = update out of sequence";

  test("an update out of sequence is tried again, after a random pause of 0.1-0.9 s, until it succeeds", () => {
    const r = inBash("retry update-node --label-add a=b n1; echo ok", {
      "update-node": flaky(3, OUT_OF_SEQUENCE),
      sleep: SLEEP,
    });
    expect(r).toMatchObject({ code: 0, stdout: "ok", stderr: "" });
    expect(r.read("calls").trim()).toBe("4");
    const pauses = r.read("sleep.log").trim().split("\n");
    expect(pauses).toHaveLength(3);
    for (const p of pauses) expect(p).toMatch(/^0\.[1-9]$/);
  });

  test("any other error ends at once, with that error on stderr", () => {
    const r = inBash("retry update-node n1 || echo failed $?", {
      "update-node": flaky(5, "node n1 not found"),
      sleep: SLEEP,
    });
    expect(r).toMatchObject({ code: 0, stdout: "failed 1", stderr: "Error response from daemon: node n1 not found" });
    expect(r.read("calls").trim()).toBe("1");
    expect(r.read("sleep.log")).toBe("");
  });

  test("gives up after 10 tries, printing the last error; as a script's step it ends the script", () => {
    const r = inBash("retry update-node n1; echo not reached", {
      "update-node": flaky(99, OUT_OF_SEQUENCE),
      sleep: SLEEP,
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`Error response from daemon: ${OUT_OF_SEQUENCE}`);
    expect(r.read("calls").trim()).toBe("10");
    expect(r.read("sleep.log").trim().split("\n")).toHaveLength(9);
  });

  test("RETRY_ON widens what is tried again (RETRY_ON=. : any error)", () => {
    const r = inBash("RETRY_ON=. retry update-node n1 && echo ok", {
      "update-node": flaky(2, "The swarm does not have a leader"),
      sleep: SLEEP,
    });
    expect(r).toMatchObject({ code: 0, stdout: "ok" });
    expect(r.read("calls").trim()).toBe("3");
  });
});

describe("lib.sh wait_for", () => {
  /** A check that prints STATES[call] (the last one from then on) and succeeds on "ready". */
  const check = (states: string[]) =>
    [
      'n=$(( $(cat "$STAND_IN_DIR/calls" 2>/dev/null || echo 0) + 1 ))',
      'echo "$n" >"$STAND_IN_DIR/calls"',
      `states=(${states.map((x) => JSON.stringify(x)).join(" ")})`,
      "state=${states[n - 1]:-${states[-1]}}",
      'printf "%s\\n" "$state"',
      '[ "$state" = ready ]',
    ].join("\n");

  test("returns as soon as the check succeeds, checking every 0.2 s by default", () => {
    const r = inBash('wait_for 60 "swarm node w1 to be ready" node-state && echo waited', {
      "node-state": check(["down", "unknown", "ready"]),
      sleep: SLEEP,
    });
    expect(r).toMatchObject({ code: 0, stdout: "waited", stderr: "" });
    expect(r.read("calls").trim()).toBe("3");
    expect(r.read("sleep.log")).toBe("0.2\n0.2\n");
  });

  test("WAIT_EVERY sets the pause between checks", () => {
    const r = inBash('WAIT_EVERY=1 wait_for 60 "glusterd to answer" node-state', {
      "node-state": check(["down", "ready"]),
      sleep: SLEEP,
    });
    expect(r.code).toBe(0);
    expect(r.read("sleep.log")).toBe("1\n");
  });

  test("is bounded: after SECONDS it fails naming what it waited for and the state last seen", () => {
    const started = Date.now();
    const r = inBash('wait_for 1 "swarm node w1 (abc) to be ready after it joined" node-state || echo "exit $?"', {
      "node-state": check(["unknown", "down"]),
    });
    // At most SECONDS (whole seconds, by $SECONDS) and one more check: well under 2.5 s.
    expect(Date.now() - started).toBeLessThan(2500);
    expect(r.stdout).toBe("exit 1");
    expect(r.stderr).toBe(
      "timed out after 1 s waiting for swarm node w1 (abc) to be ready after it joined; last seen: down",
    );
  });

  test("a state of several lines is shown indented below the message; no output at all shows as 'nothing'", () => {
    const lines = inBash('wait_for 0 "every peer" node-state || true', {
      "node-state": 'printf "peer a: down\\npeer b: down\\n"; exit 1',
    });
    expect(lines.stderr).toBe("timed out after 0 s waiting for every peer; last seen:\n  peer a: down\n  peer b: down");
    const silent = inBash('wait_for 0 "Docker to answer" node-state || true', { "node-state": "exit 1" });
    expect(silent.stderr).toBe("timed out after 0 s waiting for Docker to answer; last seen: nothing");
  });

  test("as a script's step, a timeout ends the script", () => {
    const r = inBash('wait_for 0 "x" node-state; echo "not reached"', { "node-state": "echo no; exit 1" });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
  });
});

describe("lib.sh swarm_node_down", () => {
  /** A `docker node inspect` that prints the node's states in turn, one per call (the last from then on). */
  const inspect = (states: string[]) =>
    [
      'echo "$*" >>"$STAND_IN_DIR/docker.log"',
      'n=$(( $(cat "$STAND_IN_DIR/calls" 2>/dev/null || echo 0) + 1 ))',
      'echo "$n" >"$STAND_IN_DIR/calls"',
      `states=(${states.join(" ")})`,
      'echo "${states[n - 1]:-${states[-1]}}"',
    ].join("\n");

  test("prints the node's status and succeeds once it is down: the wait swarm-forget and swarm-member share", () => {
    const r = inBash('WAIT_EVERY=0 wait_for 10 "swarm node w1 to be down" swarm_node_down abc && echo gone', {
      docker: inspect(["ready", "unknown", "down"]),
    });
    expect(r).toMatchObject({ code: 0, stdout: "gone", stderr: "" });
    expect(r.read("docker.log")).toBe("node inspect --format {{.Status.State}} abc\n".repeat(3));
  });

  test("a node still up: it fails, and the wait names the status last seen", () => {
    const r = inBash('wait_for 0 "swarm node w1 to be down" swarm_node_down abc || echo "exit $?"', {
      docker: inspect(["ready"]),
    });
    expect(r.stdout).toBe("exit 1");
    expect(r.stderr).toBe("timed out after 0 s waiting for swarm node w1 to be down; last seen: ready");
  });
});

/** The scripts that run on a manager, with the inputs each needs up to its manager check. */
const MANAGER_SIDE: Record<string, Record<string, string>> = {
  "swarm-init": { NODE_NAME: "manager-1", ADVERTISE_ADDR: "10.9.9.9", DATA_PATH_PORT: "4789" },
  "swarm-member": { NODE_NAME: "worker-1", NODE_ID: "abc", ROLE: "worker", AVAILABILITY: "active" },
  "swarm-release": { NODE_NAME: "worker-1", NODE_ID: "abc" },
  "swarm-forget": { NODE_NAME: "worker-1", ADVERTISE_ADDR: "10.9.9.9" },
  "upgrade-drain": { NODE_NAME: "worker-1", RUN: "r1", ADVERTISE_ADDR: "10.9.9.9" },
  "upgrade-return": {
    NODE_NAME: "worker-1",
    RUN: "r1",
    ADVERTISE_ADDR: "10.9.9.9",
    ROLE: "worker",
    AVAILABILITY: "active",
  },
  "stack-deploy": { STACK: "ghost", COMPOSE: "services: {}" },
  "stack-rm": { STACK: "ghost" },
  "backup-restore": {
    RESTORE_FROM: "latest",
    DATA_DIRS: "/nonexistent/ghost/mysql",
    INITDB_DIR: "/nonexistent/initdb",
    IMAGE: "restic/restic",
    JOB: "true",
    MOUNTS: "type=bind,source=/a,target=/b",
  },
  "ghost-setup": {
    STACK: "ghost",
    SERVICE: "ghost_ghost",
    NETWORK: "ghost_frontend",
    IMAGE: "ghost:5",
    GHOST: "http://ghost_ghost:2368",
    URL: "http://x",
    OWNER_NAME: "o",
    OWNER_EMAIL: "o@x.y",
    BLOG_TITLE: "t",
    CLIENT: "0",
  },
};

describe("the manager-side scripts", () => {
  test("no script but lib.sh exits 75 itself: require_manager and not_here are the one home of that rule", () => {
    for (const name of names) {
      expect([name, /^[^#\n]*\bexit 75\b/m.test(fs.readFileSync(path.join(SCRIPT_DIR, `${name}.sh`), "utf8"))]).toEqual(
        [name, false],
      );
    }
  });

  test.each(Object.keys(MANAGER_SIDE))(
    "%s on a swarm worker exits 75 from require_manager, before any change",
    (name) => {
      const text = script(name);
      const r = inBash(
        text,
        { docker: DOCKER, hostname: HOSTNAME },
        { files: { "swarm-state": "active false\n" }, env: MANAGER_SIDE[name], script: true },
      );
      expect(r.code).toBe(75);
      expect(r.stderr).toContain(
        "node-7 is not a swarm manager (Swarm.LocalNodeState=active, Swarm.ControlAvailable=false)",
      );
      // Only `docker info` was asked: nothing was changed on the way out.
      for (const call of r.read("docker.log").trim().split("\n")) expect(call).toMatch(/^info --format /);
    },
  );
});

describe("swarm-forget.sh on a node outside the swarm (stand-ins: docker, ip, hostname)", () => {
  // This node holds 10.9.9.9; the swarm has gone from it (it left, or the swarm is being taken down).
  const IP = "printf '2: eth0    inet 10.9.9.9/24 brd 10.9.9.255 scope global eth0\\n'";
  const forget = (env: Record<string, string>) =>
    inBash(
      script("swarm-forget"),
      { docker: DOCKER, hostname: HOSTNAME, ip: IP },
      { files: { "swarm-state": "inactive false\n" }, env: { NODE_NAME: "manager-1", ...env }, script: true },
    );

  test("the node being removed, with other managers: another manager removes it (75)", () => {
    const r = forget({ ADVERTISE_ADDR: "10.9.9.9", MANAGER_ADDRS: "10.9.9.9 10.9.9.10" });
    expect([r.code, r.stderr]).toEqual([75, "node-7 is the node being removed"]);
  });

  test("the node being removed was the only manager: nothing to remove, the list went with the swarm", () => {
    const r = forget({ ADVERTISE_ADDR: "10.9.9.9", MANAGER_ADDRS: "10.9.9.9" });
    expect([r.code, r.stderr]).toEqual([
      0,
      "manager-1 was the only manager: the swarm, and its node list, went with it",
    ]);
  });

  test("a step applied before the managers were recorded (no MANAGER_ADDRS): handed on, as before", () => {
    const r = forget({ ADVERTISE_ADDR: "10.9.9.9" });
    expect([r.code, r.stderr]).toEqual([75, "node-7 is the node being removed"]);
  });

  test("another node outside the swarm: the swarm is being taken down, nothing to do", () => {
    const r = forget({ ADVERTISE_ADDR: "10.9.9.31", MANAGER_ADDRS: "10.9.9.9" });
    expect([r.code, r.stderr]).toEqual([0, ""]);
  });
});

describe("one shell style in components/remote-scripts", () => {
  test.each([...names, "lib"])(
    "%s.sh uses [ ], info and fatal (no [[ ]], (( )) tests or a logger of its own)",
    (name) => {
      const text = fs.readFileSync(path.join(SCRIPT_DIR, `${name}.sh`), "utf8");
      expect(text).not.toMatch(/\[\[|\]\]/);
      expect(text).not.toMatch(/^\s*(if|while|until)\s+\(\(/m);
      expect(text).not.toMatch(/^\s*log\(\)|\becho\b[^\n]*>&2/m);
    },
  );
});
