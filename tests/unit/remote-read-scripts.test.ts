/**
 * The read scripts (components/remote-scripts/*-read.sh) as `pulumi refresh` runs them, in bash against
 * stand-in commands (`docker`, `gluster`, `hostname`, ...) that answer as the real ones do and
 * log every call: what each prints parses (parseObserved) into exactly the values the program
 * declares when nothing drifted, and into the drift when something did; they only ever ask
 * (read-only subcommands, no file written); no secret value is read or printed.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseObserved } from "../../components/remote";
import { fstabLine } from "../../components/gluster";
import { keyValueLines, script } from "../../components/remote-scripts";
import { serviceLines } from "../../components/stack";

const SCRIPT_DIR = path.join(__dirname, "..", "..", "components", "remote-scripts");
const READS = fs
  .readdirSync(SCRIPT_DIR)
  .filter((f) => f.endsWith("-read.sh"))
  .map((f) => f.slice(0, -3));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** parseObserved(stdout) as a plain object. */
  seen: Record<string, string>;
  /** Every stand-in call, "command args...". */
  calls: string[];
}

/**
 * Runs the rendered read script NAME in bash with ENV exported and STAND_INS on PATH (each key a
 * command, each value the bash body; they find their folder in $STAND_IN_DIR and log every call
 * to calls.log). FILES are written to that folder first; PATHS maps absolute paths the script
 * reads (/etc/hosts, ...) to files of that folder. Nothing in the folder may change but the log.
 */
function runRead(
  name: string,
  env: Record<string, string>,
  standIns: Record<string, string>,
  opts: { files?: Record<string, string>; paths?: Record<string, string> } = {},
): Run {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-read-"));
  try {
    for (const [file, text] of Object.entries(opts.files ?? {})) fs.writeFileSync(path.join(dir, file), text);
    for (const [cmd, body] of Object.entries(standIns)) {
      const log = `printf '%s\\n' "${cmd} $*" >>"$STAND_IN_DIR/calls.log"`;
      fs.writeFileSync(path.join(dir, cmd), `#!/usr/bin/env bash\n${log}\n${body}\n`, { mode: 0o755 });
    }
    let text = script(name);
    for (const [from, to] of Object.entries(opts.paths ?? {})) text = text.split(from).join(path.join(dir, to));
    const before = snapshot(dir);
    const r = spawnSync("bash", ["-c", text, "swarmcloud"], {
      env: { ...process.env, ...env, STAND_IN_DIR: dir, PATH: `${dir}:${process.env.PATH}` },
      input: "",
      encoding: "utf8",
    });
    const calls = fs.existsSync(path.join(dir, "calls.log"))
      ? fs.readFileSync(path.join(dir, "calls.log"), "utf8").trim().split("\n")
      : [];
    fs.rmSync(path.join(dir, "calls.log"), { force: true });
    expect(snapshot(dir)).toEqual(before);
    const seen = Object.fromEntries(parseObserved(r.stdout.trim()));
    return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim(), seen, calls };
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}

/** Every file of a folder with its content. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f), "utf8")]));
}

/** Subcommands the read scripts may use: they ask, never change. */
const READ_ONLY: Record<string, RegExp> = {
  docker: /^docker (info|node (ls|inspect)|service (ls|inspect)|secret inspect|config inspect)( |$)/,
  gluster: /^gluster (--mode=script )?(--remote-host=\S+ )?(pool list|peer status|volume (info|get))( |$)/,
  iptables: /^iptables -w (-C|-S) /,
};
function expectReadOnly(run: Run): void {
  for (const call of run.calls) {
    const rule = READ_ONLY[call.split(" ")[0]!];
    if (rule) expect(call).toMatch(rule);
  }
}

/** `docker info` for require_manager and swarm_state: the file swarm-state. */
const DOCKER_INFO = [
  '  "info --format {{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}") cat "$STAND_IN_DIR/swarm-state" ;;',
  '  "info --format {{.Swarm.LocalNodeState}}") cut -d" " -f1 "$STAND_IN_DIR/swarm-state" ;;',
  '  "info") [ -f "$STAND_IN_DIR/docker-down" ] && { echo "Cannot connect to the Docker daemon" >&2; exit 1; }; echo "Server: ok" ;;',
];
const docker = (cases: string[]) =>
  ['case "$*" in', ...DOCKER_INFO, ...cases, '  *) echo "unexpected: docker $*" >&2; exit 1 ;;', "esac"].join("\n");

test("there is a read script for each resource kind that can drift", () => {
  expect(READS.sort()).toEqual([
    "edge-keepalived-read",
    "ghost-setup-read",
    "gluster-allow-read",
    "gluster-mount-read",
    "gluster-probe-read",
    "gluster-shrink-read",
    "gluster-volume-read",
    "host-read",
    "stack-deploy-read",
    "swarm-join-read",
    "swarm-member-read",
  ]);
});

describe("read scripts write nothing", () => {
  /** The script's code: comment lines and lib.sh (checked on its own) left out. */
  const code = (name: string) =>
    fs
      .readFileSync(path.join(SCRIPT_DIR, `${name}.sh`), "utf8")
      .split("\n")
      .filter((l) => !/^\s*#/.test(l))
      .join("\n");

  test.each(READS)("%s redirects output only to stderr or /dev/null and runs no command that changes things", (n) => {
    const text = code(n);
    const redirects = text.replace(/2>&1|>&2|2?>\s*\/dev\/null/g, "");
    expect([n, redirects.match(/[^<-]>/g)]).toEqual([n, null]);
    expect(text).not.toMatch(/\b(mkdir|rm|rmdir|mv|cp|tee|touch|ln|chmod|chown|mktemp|mount|umount|truncate|dd)\b/);
    expect(text).not.toMatch(
      /sed -i|\bdocker (node|service|secret|stack|swarm) (update|rm|create|promote|demote|scale)/,
    );
    expect(text).not.toMatch(
      /(^|\s)(g|gluster)\s[^\n]*\b(start|stop|probe|detach|create|delete|set|add-brick|remove-brick|heal|reset)\b/m,
    );
  });
});

/** The container firewall's rules of one chain, as lib.sh's container_rules prints them. */
function containerRules(chain: string): string[] {
  const lib = fs.readFileSync(path.join(SCRIPT_DIR, "lib.sh"), "utf8");
  return spawnSync("bash", ["-c", `${lib}\ncontainer_rules ${chain}`], { encoding: "utf8" })
    .stdout.trim()
    .split("\n");
}

/**
 * An iptables that answers -C and -S from files ipt-<CHAIN> (`-A CHAIN rule` lines, as -S
 * prints them): the firewall host.sh sets, all in place, unless a test leaves a chain out.
 */
const IPTABLES = [
  '[ "$1" = -w ] && shift',
  'op=$1; chain=$2; shift 2; f="$STAND_IN_DIR/ipt-$chain"',
  '[ -e "$f" ] || exit 1',
  'case "$op" in',
  '  -C) grep -qxF -- "-A $chain $*" "$f" ;;',
  '  -S) cat "$f" ;;',
  "  *) exit 2 ;;",
  "esac",
].join("\n");
const FIREWALL_FILES = {
  "ipt-INPUT": "-A INPUT -j SWARMCLOUD-INPUT\n",
  "ipt-DOCKER-USER": "-A DOCKER-USER -j SWARMCLOUD-FORWARD\n-A DOCKER-USER -j RETURN\n",
  ...Object.fromEntries(
    ["SWARMCLOUD-INPUT", "SWARMCLOUD-FORWARD"].map((c) => [
      `ipt-${c}`,
      `-N ${c}\n${containerRules(c)
        .map((r) => `-A ${c} ${r}\n`)
        .join("")}`,
    ]),
  ),
};

describe("host-read", () => {
  const BLOCK = "10.0.0.11 manager-1\n10.0.0.31 worker-1";
  const hosts = (block: string) => `127.0.0.1 localhost\n# BEGIN swarmcloud\n${block}\n# END swarmcloud\n`;
  const run = (o: {
    hosts: string;
    hostname?: string;
    dockerDown?: boolean;
    glusterd?: boolean;
    systemd?: string;
    firewall?: Record<string, string>;
  }) =>
    runRead(
      "host-read",
      { NODE_NAME: "worker-1", HOSTS_BLOCK: BLOCK, SSH_USER: "root" },
      {
        hostname: `echo ${o.hostname ?? "worker-1"}`,
        docker: docker([]),
        pgrep: o.glusterd === false ? "exit 1" : "echo 42",
        systemctl: `case "$2" in docker) echo enabled ;; *) echo ${o.systemd ?? "enabled"}; exit 1 ;; esac`,
        iptables: IPTABLES,
      },
      {
        files: { hosts: o.hosts, ...(o.firewall ?? FIREWALL_FILES), ...(o.dockerDown ? { "docker-down": "" } : {}) },
        paths: {
          "/etc/hosts": "hosts",
          ...(o.systemd ? { "/run/systemd/system": "." } : { "/run/systemd/system": "none" }),
        },
      },
    );

  test("nothing drifted: the hostname and the block as declared, no DRIFT", () => {
    const r = run({ hosts: hosts(BLOCK) });
    expect(r.code).toBe(0);
    expect(r.seen).toEqual({ NODE_NAME: "worker-1", HOSTS_BLOCK: BLOCK });
    expectReadOnly(r);
  });

  test("an edited block, a lost hostname, daemons down and not enabled: each shows", () => {
    const r = run({
      hosts: hosts("10.0.0.11 manager-1\n10.9.9.9 worker-1"),
      hostname: "lab-node-31",
      dockerDown: true,
      glusterd: false,
      systemd: "disabled",
    });
    expect(r.seen).toEqual({
      NODE_NAME: "lab-node-31",
      HOSTS_BLOCK: "10.0.0.11 manager-1\n10.9.9.9 worker-1",
      DRIFT: [
        "Docker does not answer on worker-1",
        "glusterd does not run on worker-1",
        "glusterd is not enabled at boot on worker-1 (disabled)",
        "swarmcloud-firewall is not enabled at boot on worker-1 (disabled)",
      ].join("\n"),
    });
  });

  test("the container firewall gone (a restart that did not put it back, a flush): a DRIFT naming what is missing", () => {
    const { "ipt-INPUT": _input, ...rest } = FIREWALL_FILES;
    const r = run({ hosts: hosts(BLOCK), firewall: { ...rest, "ipt-INPUT": "" } });
    expect(r.seen).toEqual({
      NODE_NAME: "worker-1",
      HOSTS_BLOCK: BLOCK,
      DRIFT: "containers on worker-1 may reach the cluster's control ports: INPUT does not jump to SWARMCLOUD-INPUT",
    });
    expectReadOnly(r);
  });

  test("no block at all: an empty block", () => {
    expect(run({ hosts: "127.0.0.1 localhost\n" }).seen.HOSTS_BLOCK).toBe("");
  });
});

describe("swarm-join-read", () => {
  const run = (state: string) =>
    runRead(
      "swarm-join-read",
      { NODE_NAME: "worker-2", ADVERTISE_ADDR: "10.0.0.32", MANAGER_ADDRS: "10.0.0.11" },
      {
        docker: docker([]),
      },
      { files: { "swarm-state": `${state}\n` } },
    );

  test("an active member prints nothing: nothing drifted", () => {
    const r = run("active false");
    expect([r.code, r.stdout]).toEqual([0, ""]);
    expectReadOnly(r);
  });

  test("a node that left the swarm is a DRIFT, and join runs again", () => {
    expect(run("inactive false").seen).toEqual({
      DRIFT: "worker-2 is not in the swarm (Swarm.LocalNodeState=inactive)",
    });
  });
});

describe("swarm-member-read", () => {
  const LABELS = { tier: "app", "swarmcloud.lab": "true", swarmcloud: "x" };
  const env = { NODE_NAME: "worker-1", NODE_ID: "abc123", ROLE: "worker", AVAILABILITY: "active", LABELS: "" };
  const run = (o: { node?: string; labels?: string; state?: string }) =>
    runRead(
      "swarm-member-read",
      env,
      {
        docker: docker([
          '  "node inspect --format {{.Spec.Role}} {{.Spec.Availability}} abc123")',
          '    cat "$STAND_IN_DIR/node" 2>/dev/null || { echo "Error response from daemon: node abc123 not found" >&2; exit 1; } ;;',
          `  'node inspect --format {{range $k, $v := .Spec.Labels}}{{$k}}={{$v}}{{println}}{{end}} abc123') cat "$STAND_IN_DIR/labels" ;;`,
        ]),
        hostname: "echo manager-1",
      },
      {
        files: {
          "swarm-state": `${o.state ?? "active true"}\n`,
          labels: o.labels ?? "",
          ...(o.node === undefined ? {} : { node: `${o.node}\n` }),
        },
      },
    );
  // Go templates range over a map in key order; the script sorts again, the way the program does.
  const goLabels = (m: Record<string, string>) =>
    Object.keys(m)
      .sort()
      .map((k) => `${k}=${m[k]}\n`)
      .join("");

  test("role, availability and labels exactly as the program renders them", () => {
    const r = run({ node: "worker active", labels: `\n${goLabels(LABELS)}` });
    expect(r.code).toBe(0);
    expect(r.seen).toEqual({ ROLE: "worker", AVAILABILITY: "active", LABELS: keyValueLines(LABELS) });
    expectReadOnly(r);
  });

  test("promoted, drained, a label gone: each key shows the value seen; no labels: empty", () => {
    const r = run({ node: "manager drain", labels: goLabels({ tier: "app" }) });
    expect(r.seen).toEqual({ ROLE: "manager", AVAILABILITY: "drain", LABELS: "tier=app" });
    expect(run({ node: "worker active", labels: "" }).seen.LABELS).toBe("");
  });

  test("a node ID the swarm no longer lists is a DRIFT", () => {
    expect(run({}).seen).toEqual({ DRIFT: "swarm node abc123 (worker-1) is not in the node list" });
  });

  test("a manager that cannot answer (no leader yet) exits 75 too, so the next manager reads", () => {
    const r = runRead(
      "swarm-member-read",
      env,
      {
        docker: docker([
          '  "node inspect --format {{.Spec.Role}} {{.Spec.Availability}} abc123") echo "Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader." >&2; exit 1 ;;',
        ]),
        hostname: "echo manager-1",
      },
      { files: { "swarm-state": "active true\n" } },
    );
    expect([r.code, r.stdout]).toEqual([75, ""]);
    expect(r.stderr).toContain("manager-1 could not inspect swarm node abc123 (worker-1): Error response from daemon");
  });

  test("on a worker it exits 75 so the next manager reads", () => {
    const r = run({ state: "active false", node: "worker active" });
    expect(r.code).toBe(75);
    expect(r.stdout).toBe("");
  });
});

/** A stand-in `gluster`: `pool list` (fails with a file glusterd-down), `peer status`, `volume info`. */
const GLUSTER = [
  'args=(); for a in "$@"; do case "$a" in --mode=*) ;; *) args+=("$a") ;; esac; done',
  'case "${args[*]}" in',
  '  "pool list") [ -f "$STAND_IN_DIR/glusterd-down" ] && { echo "Connection failed" >&2; exit 1; }; echo "UUID Hostname State" ;;',
  '  "peer status") cat "$STAND_IN_DIR/peers" ;;',
  '  "volume info swarmcloud") cat "$STAND_IN_DIR/volume" 2>/dev/null || { echo "Volume swarmcloud does not exist"; exit 1; } ;;',
  '  *) echo "unexpected: gluster $*" >&2; exit 1 ;;',
  "esac",
].join("\n");

describe("gluster-probe-read", () => {
  const peers = (host: string) =>
    `Number of Peers: 1\n\nHostname: ${host}\nUuid: u2\nState: Peer in Cluster (Connected)\n`;
  const run = (files: Record<string, string>) =>
    runRead(
      "gluster-probe-read",
      { NODE_NAME: "manager-2", PEER_ADDR: "10.0.0.12" },
      {
        gluster: GLUSTER,
        hostname: "echo manager-1",
      },
      { files },
    );

  test("a peer in the pool prints nothing; a detached one is a DRIFT", () => {
    const r = run({ peers: peers("10.0.0.12") });
    expect([r.code, r.stdout]).toEqual([0, ""]);
    expectReadOnly(r);
    expect(run({ peers: peers("10.0.0.13") }).seen).toEqual({
      DRIFT: "peer manager-2 (10.0.0.12) is not in the trusted pool of manager-1",
    });
  });

  test("glusterd not answering is an error (the resource is left as it was), not a drift", () => {
    const r = run({ peers: "", "glusterd-down": "" });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("glusterd on manager-1 does not answer");
  });
});

describe("gluster-volume-read", () => {
  const BRICKS = ["10.0.0.11:/b", "10.0.0.12:/b", "10.0.0.13:/b"];
  const env = {
    NODE_NAME: "manager-1",
    VOLUME: "swarmcloud",
    BRICKS: BRICKS.join(" "),
    ARBITER: "false",
    OPTIONS: keyValueLines({ "network.ping-timeout": "10" }),
    STATUS: "Started",
  };
  const info = (status: string, bricks: string[], options: string[]) =>
    [
      "",
      "Volume Name: swarmcloud",
      "Type: Replicate",
      "Volume ID: 0b7f",
      `Status: ${status}`,
      "Snapshot Count: 0",
      `Number of Bricks: 1 x ${bricks.length} = ${bricks.length}`,
      "Transport-type: tcp",
      "Bricks:",
      ...bricks.map((b, i) => `Brick${i + 1}: ${b}`),
      "Options Reconfigured:",
      ...options,
      "",
    ].join("\n");
  const DEFAULT_OPTIONS = ["cluster.granular-entry-heal: on", "transport.address-family: inet", "nfs.disable: on"];
  const run = (files: Record<string, string>, more: Record<string, string> = {}) =>
    runRead("gluster-volume-read", { ...env, ...more }, { gluster: GLUSTER }, { files });

  test("as created: the bricks, options and status exactly as declared", () => {
    const r = run({ volume: info("Started", BRICKS, ["network.ping-timeout: 10", ...DEFAULT_OPTIONS]) });
    expect(r.code).toBe(0);
    expect(r.seen).toEqual({ BRICKS: env.BRICKS, OPTIONS: env.OPTIONS, STATUS: "Started" });
    expectReadOnly(r);
  });

  test("the same bricks in another order are no drift (the volume keeps its order)", () => {
    const shuffled = [BRICKS[2]!, BRICKS[0]!, BRICKS[1]!];
    expect(run({ volume: info("Started", shuffled, ["network.ping-timeout: 10"]) }).seen.BRICKS).toBe(env.BRICKS);
  });

  test("stopped, a brick gone, an option reset: each shows; a brick more is the shrink step's", () => {
    const r = run({ volume: info("Stopped", [BRICKS[0]!, BRICKS[1]!, "10.0.0.14:/b"], DEFAULT_OPTIONS) });
    expect(r.seen).toEqual({
      BRICKS: "10.0.0.11:/b 10.0.0.12:/b",
      OPTIONS: "",
      STATUS: "Stopped",
    });
  });

  test("no options declared: OPTIONS is not read", () => {
    expect(run({ volume: info("Started", BRICKS, []) }, { OPTIONS: "" }).seen).toEqual({
      BRICKS: env.BRICKS,
      STATUS: "Started",
    });
  });

  test("a volume that does not exist is a DRIFT", () => {
    expect(run({}).seen).toEqual({ DRIFT: "volume swarmcloud does not exist" });
  });
});

describe("gluster-shrink-read", () => {
  const BRICKS = "10.0.0.11:/b 10.0.0.12:/b 10.0.0.13:/b";
  const volume = (bricks: string[]) =>
    ["Volume Name: swarmcloud", "Status: Started", "Bricks:", ...bricks.map((b, i) => `Brick${i + 1}: ${b}`), ""].join(
      "\n",
    );
  const run = (files: Record<string, string>) =>
    runRead(
      "gluster-shrink-read",
      { NODE_NAME: "manager-1", VOLUME: "swarmcloud", BRICKS },
      { gluster: GLUSTER },
      { files },
    );

  test("no brick beyond the list: BRICKS as declared, whatever the volume's order or lack", () => {
    const r = run({ volume: volume(["10.0.0.13:/b", "10.0.0.11:/b"]) });
    expect(r.seen).toEqual({ BRICKS });
    expectReadOnly(r);
  });

  test("a brick the list no longer has is a drift the shrink step repairs", () => {
    expect(run({ volume: volume(["10.0.0.11:/b", "10.0.0.9:/b", "10.0.0.12:/b", "10.0.0.13:/b"]) }).seen).toEqual({
      BRICKS: `${BRICKS} 10.0.0.9:/b`,
    });
  });

  test("no volume: nothing (the volume's read reports it)", () => {
    const r = run({});
    expect([r.code, r.stdout]).toEqual([0, ""]);
  });
});

describe("gluster-mount-read", () => {
  let mnt: string;
  beforeAll(() => (mnt = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-mnt-"))));
  afterAll(() => fs.rmSync(mnt, { recursive: true }));
  const line = () => fstabLine(["10.0.0.11", "10.0.0.12", "10.0.0.13"], "swarmcloud", mnt);
  const env = () => ({
    NODE_NAME: "worker-1",
    VOLUME: "swarmcloud",
    MOUNT_PATH: mnt,
    FSTAB_LINE: line(),
    MOUNTED: "true",
  });
  const mounts = (type: string) => `overlay / overlay rw 0 0\n10.0.0.11:/swarmcloud ${mnt} ${type} rw 0 0\n`;
  const run = (fstab: string, procMounts: string) =>
    runRead(
      "gluster-mount-read",
      env(),
      {},
      {
        files: { fstab, mounts: procMounts },
        paths: { "/etc/fstab": "fstab", "/proc/mounts": "mounts" },
      },
    );

  test("mounted, and the fstab entry the program renders: as declared", () => {
    const r = run(`# static\n/dev/sda1 / ext4 defaults 0 1\n${line()}\n`, mounts("fuse.glusterfs"));
    expect(r.code).toBe(0);
    expect(r.seen).toEqual({ FSTAB_LINE: line(), MOUNTED: "true" });
  });

  test("unmounted, and the entry edited by hand: both show", () => {
    const edited = line().replace(",_netdev", "");
    const r = run(`${edited}\n`, "overlay / overlay rw 0 0\n");
    expect(r.seen).toEqual({ FSTAB_LINE: edited, MOUNTED: "false" });
    expect(run("", mounts("nfs")).seen).toEqual({ FSTAB_LINE: "", MOUNTED: "false" });
  });
});

describe("stack-deploy-read", () => {
  const COMPOSE = [
    "services:",
    "  db:",
    "    deploy:",
    "      replicas: 1",
    "  ghost:",
    "    deploy:",
    "      replicas: 1",
    "",
  ].join("\n");
  const SECRETS = ["ghost-db-password-0a1b2c3d4e", "ghost-db-root-password-5f6a7b8c9d"];
  const env = { STACK: "ghost", COMPOSE, SECRETS: SECRETS.join("\n"), SERVICES: serviceLines("ghost", COMPOSE) };
  const run = (files: Record<string, string>) =>
    runRead(
      "stack-deploy-read",
      env,
      {
        docker: docker([
          '  "service ls -q --filter label=com.docker.stack.namespace=ghost") cat "$STAND_IN_DIR/services" ;;',
          '  "service inspect --format "*) shift 4; for id in "$@"; do cat "$STAND_IN_DIR/svc-$id"; done ;;',
          '  "secret inspect --format {{.ID}} "*) grep -qxF "$5" "$STAND_IN_DIR/secrets" && echo "id-of-$5" || { echo "Error: no such secret: $5" >&2; exit 1; } ;;',
        ]),
        hostname: "echo manager-1",
      },
      { files: { "swarm-state": "active true\n", ...files } },
    );
  const services = (ghostReplicas: number) => ({
    services: "s2\ns1\n",
    "svc-s1": "ghost_db replicated 1\n",
    "svc-s2": `ghost_ghost replicated ${ghostReplicas}\n`,
  });

  test("as deployed: the services and secrets exactly as declared", () => {
    const r = run({ ...services(1), secrets: `${SECRETS.join("\n")}\nother-secret\n` });
    expect(r.code).toBe(0);
    expect(r.seen).toEqual({ SERVICES: env.SERVICES, SECRETS: env.SECRETS });
    expectReadOnly(r);
  });

  test("Ghost scaled to 3, a secret removed: both show", () => {
    const r = run({ ...services(3), secrets: `${SECRETS[1]}\n` });
    expect(r.seen).toEqual({
      SERVICES: "ghost_db replicated 1\nghost_ghost replicated 3",
      SECRETS: SECRETS[1],
    });
  });

  test("the stack removed: no services, the secrets it left", () => {
    expect(run({ services: "", secrets: "" }).seen).toEqual({ SERVICES: "", SECRETS: "" });
  });

  test("asks only whether each secret exists: no secret value is read", () => {
    const r = run({ ...services(1), secrets: SECRETS.join("\n") });
    const secretCalls = r.calls.filter((c) => c.startsWith("docker secret"));
    expect(secretCalls).toEqual(SECRETS.map((s) => `docker secret inspect --format {{.ID}} ${s}`));
  });
});

describe("swarm-member.sh after a node left and joined again (the repair)", () => {
  const ENTRIES = [
    "OLD worker worker-2 10.0.0.32", // its entry from before it left
    "NEW worker worker-2 10.0.0.32",
    "OTHER worker worker-1 10.0.0.31",
    "MGR manager worker-2 10.0.0.32", // not a worker: never removed here
  ];
  const run = (oldState: string) =>
    runRead(
      "swarm-member",
      { NODE_NAME: "worker-2", NODE_ID: "NEW", ROLE: "worker", AVAILABILITY: "active", LABELS: "" },
      {
        docker: docker([
          '  "node inspect --format {{.Status.State}} NEW") echo ready ;;',
          '  "node inspect --format {{.Status.State}} OLD") cat "$STAND_IN_DIR/old-state" ;;',
          '  "node inspect --format {{.Status.Addr}} NEW") echo 10.0.0.32 ;;',
          '  "node inspect --format {{.Spec.Role}} {{.Spec.Availability}} NEW") echo "worker active" ;;',
          '  "node ls -q") printf "OLD\\nNEW\\nOTHER\\nMGR\\n" ;;',
          '  "node inspect --format {{.ID}} {{.Spec.Role}} {{.Description.Hostname}} {{.Status.Addr}} OLD NEW OTHER MGR") cat "$STAND_IN_DIR/entries" ;;',
          `  'node inspect --format {{range $k, $v := .Spec.Labels}}{{$k}}={{$v}}{{println}}{{end}} NEW') ;;`,
          '  "node rm OLD") ;;',
        ]),
        hostname: "echo manager-1",
        sleep: "true",
      },
      { files: { "swarm-state": "active true\n", entries: `${ENTRIES.join("\n")}\n`, "old-state": `${oldState}\n` } },
    );

  test("the node's earlier entry (a worker with its hostname and address, down) is removed; nothing else", () => {
    const r = run("down");
    expect(r.code).toBe(0);
    expect(r.calls.filter((c) => c.startsWith("docker node rm"))).toEqual(["docker node rm OLD"]);
  });
});

describe("ghost-setup-read", () => {
  const run = (o: { marker: boolean; ports: number }) =>
    runRead(
      "ghost-setup-read",
      { STACK: "ghost", SERVICE: "ghost_ghost" },
      {
        docker: docker([
          `  "config inspect ghost-opened") ${o.marker ? "echo '[{}]'" : 'echo "Error: no such config" >&2; exit 1'} ;;`,
          `  "service inspect --format "*) echo ${o.ports} ;;`,
        ]),
        hostname: "echo manager-1",
      },
      { files: { "swarm-state": "active true\n" } },
    );

  test("opened and published: nothing drifted", () => {
    const r = run({ marker: true, ports: 1 });
    expect([r.code, r.stdout]).toEqual([0, ""]);
    expectReadOnly(r);
  });

  test("the marker gone, or the ports: a DRIFT each, which up --refresh repairs by running the setup step again", () => {
    expect(run({ marker: false, ports: 0 }).seen).toEqual({
      DRIFT: [
        "stack ghost is not marked opened (no Docker config ghost-opened): its next deploy would publish no port",
        "service ghost_ghost publishes no port",
      ].join("\n"),
    });
  });
});
