/**
 * Attacks on a deployed cluster, tried as an attacker would (issue 15), each a row of the table
 * printed at the end (attack, expected, seen) and kept in reports/security-latest.json.
 *
 * The cluster is the apps suite's when that suite hands it on (SWARMCLOUD_LAB_HANDOFF=1 on
 * both runs: apps keeps its stack and nodes, this suite attaches to them); otherwise this suite
 * deploys the same cluster itself (3 managers, 2 workers, Ghost and Portainer, lab images). With
 * the variable it hands the cluster on in turn (to the drift suite, in CI) rather than destroying it.
 *
 * The attacks, each a describe below:
 * - a node whose SSH host key was replaced (a reinstall, or another machine answering on its
 *   address): `pulumi up` must refuse it before login, naming the node and both fingerprints,
 *   with trust on first use and with pinned keys, and the node's sshd must log no accepted
 *   login; a legitimately changed key is then accepted the way the error says;
 * - Ghost's setup route: never open without an owner during the first up (watched from outside
 *   on every node), refused to a stranger after it; the owner logs in with the output password;
 * - the cluster's control ports: a container on a node (a plain `docker run`, and the Ghost task
 *   on the overlay network) connects to Swarm's 2377, glusterd's 24007 and a brick's port of
 *   another node and of its own: refused; the node itself gets through;
 * - the Gluster volume mounted from a machine on the network that is not a node: refused
 *   (auth.allow lists the node addresses, exactly);
 * - Portainer's agents: a container attached to their network: refused; a request without the
 *   agent secret, or signed with another: refused; the server (AGENT_SECRET) is served;
 * - every secret (passwords, tokens, the SSH key, the owner password, the agent secret, the
 *   Gluster CA's key) looked for in `pulumi stack export`, `pulumi preview --diff`, the up's
 *   output, `docker service inspect` and `ps` on every node while a deploy runs the app stacks
 *   and Ghost's setup again.
 */
import * as fs from "fs";
import * as path from "path";
import { ownerFrom, ownerSession, setupStatus, SetupWatch, strangerSetup, watchGhostSetup } from "./ghost";
import {
  changes,
  engineBin,
  handingOff,
  inventory,
  Inventory,
  lab,
  LAB_DIR,
  LAB_IMAGES,
  labConfig,
  LabHandoff,
  LabNode,
  onNode,
  prepareAppsLab,
  PulumiCli,
  readHandoff,
  Report,
  runOnNode,
  sh,
  sshLog,
  waitFor,
  writeHandoff,
} from "./lib";

const report = new Report("security");
const table: { attack: string; expected: string; seen: string }[] = [];
let cli: PulumiCli;
let attached: LabHandoff | undefined;

/** What watchGhostSetup saw during the cluster's first up (written by the suite that made it). */
const FIRST_UP_WATCH = path.join(LAB_DIR, "ghost-first-up.json");

/** The first manager: every manager-side step (swarm membership, labels) runs there first. */
const VICTIM = "manager-1";
/** The node whose swarm labels the tests change, so that a step runs through the victim. */
const WORKER = "worker-1";

function node(name: string): LabNode {
  const n = inventory().nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no lab node ${name}`);
  return n;
}

/** The config the cluster was deployed with, plus what a test adds. */
function configure(opts: { pin?: boolean; probe?: string } = {}, inv: Inventory = inventory()): void {
  const labels: Record<string, Record<string, string>> = opts.probe === undefined
    ? {}
    : { [WORKER]: { probe: opts.probe } };
  cli.setConfig(labConfig(inv, { apps: true, pinHostKeys: opts.pin ?? false, labels }));
}

/**
 * What `ssh-keygen -lf` prints on the node for the ed25519 host key its sshd serves, read
 * through `docker exec`: an SSH login to ask would itself be an accepted login in the log.
 */
function fingerprintOnNode(n: LabNode): string {
  const r = sh("/usr/bin/docker", ["exec", n.container, "ssh-keygen", "-lf", "/etc/ssh/ssh_host_ed25519_key.pub"]);
  if (r.code !== 0) throw new Error(`${n.name}: ssh-keygen -lf failed: ${r.stderr}`);
  const fingerprint = r.stdout.split(" ")[1] ?? "";
  expect(fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  return fingerprint;
}

/** The swarm labels of a node, read on a manager other than the victim. */
function swarmLabels(name: string): Record<string, string> {
  const manager = inventory().nodes.find((n) => n.role === "manager" && n.name !== VICTIM)!;
  return JSON.parse(onNode(manager, `docker node inspect --format '{{json .Spec.Labels}}' ${name}`)) as Record<
    string,
    string
  >;
}

/** The host key each RemoteScript has recorded for an address (`host:port`), from the state. */
function recordedKeys(address: string): string[] {
  const state = JSON.parse(cli.exportState()) as {
    deployment: { resources?: { type: string; outputs?: { hostKeys?: Record<string, string> } }[] };
  };
  return (state.deployment.resources ?? [])
    .filter((r) => r.type.endsWith("swarmcloud:RemoteScript"))
    .map((r) => r.outputs?.hostKeys?.[address])
    .filter((k): k is string => k !== undefined);
}

/** Replaces the victim's host keys (lab.sh rekey); returns both fingerprints and the new key line. */
function replaceHostKey(victim: LabNode): { before: string; after: string; key: string; since: string } {
  const before = fingerprintOnNode(victim);
  const since = new Date(Date.now() - 1000).toISOString();
  const key = lab("rekey", victim.name).trim();
  const after = fingerprintOnNode(victim);
  expect(after).not.toBe(before);
  return { before, after, key, since };
}

/** Accepted logins, and connections closed before authentication, in the node's sshd log since a time. */
function sshdSince(victim: LabNode, since: string): { accepted: string[]; preauth: number } {
  const lines = sshLog(victim, since);
  return {
    accepted: lines.filter((l) => l.includes("Accepted publickey")),
    preauth: lines.filter((l) => l.includes("[preauth]")).length,
  };
}

beforeAll(() => {
  attached = readHandoff();
  if (attached) {
    cli = new PulumiCli(attached.stack, engineBin(), attached);
    report.set("cluster", `handed off by the ${attached.by} suite (stack ${attached.stack})`);
    // The cluster it says it is, deployed, with nothing left to do.
    expect(cli.outputs().managerAddress).toBe(node(VICTIM).address);
    configure();
    expect(changes(cli.preview(["--expect-no-changes"]).steps)).toEqual([]);
  } else {
    ({ cli } = prepareAppsLab("lab-security", report));
    report.set("cluster", "deployed by this suite");
    // Ghost's setup route watched from outside while the first up runs (the apps suite does the
    // same when it deploys the cluster and hands it on).
    const watch = watchGhostSetup(
      inventory().nodes.map((n) => n.address),
      2368,
    );
    try {
      report.set("upSeconds", cli.up().seconds);
    } finally {
      fs.writeFileSync(FIRST_UP_WATCH, JSON.stringify(watch.stop(), null, 2));
    }
  }
}, 3600_000);

afterAll(() => {
  report.set("attacks", table);
  const file = report.write();
  const width = (k: "attack" | "expected" | "seen") => Math.max(k.length, ...table.map((r) => r[k].length));
  const row = (r: { attack: string; expected: string; seen: string }) =>
    `| ${r.attack.padEnd(width("attack"))} | ${r.expected.padEnd(width("expected"))} | ${r.seen.padEnd(width("seen"))} |`;
  console.log(
    [`security report: ${file}`, row({ attack: "attack", expected: "expected", seen: "seen" }), ...table.map(row)].join(
      "\n",
    ),
  );
  // Handing on (SWARMCLOUD_LAB_HANDOFF=1): the cluster, taken or deployed here, stays for the next
  // suite (drift, in CI); `lab.sh down` removes it.
  if (cli && handingOff()) {
    if (!attached) writeHandoff(cli, "security");
    return;
  }
  if (cli && process.env.SWARMCLOUD_KEEP_LAB !== "1") {
    cli.run(["destroy", "--yes", "--skip-preview"]);
    cli.removeStack();
  }
  if (process.env.SWARMCLOUD_KEEP_LAB !== "1") lab("down");
}, 900_000);

describe("a node whose SSH host key was replaced", () => {
  let newKey = "";

  test("trust on first use: pulumi up is refused before login, naming the node and both fingerprints", () => {
    const victim = node(VICTIM);
    const address = `${victim.address}:22`;
    const swap = replaceHostKey(victim);
    newKey = swap.key;
    // A change that must run through the first manager: worker-1's swarm labels.
    configure({ probe: "tofu" });
    const up = cli.tryUp();
    const text = up.output.replace(/\s+/g, " ");
    const sshd = sshdSince(victim, swap.since);
    report.set("replacedKeyTofu", { ...swap, upSeconds: up.seconds, sshd });
    expect(up.code).not.toBe(0);
    expect(text).toContain(`node ${VICTIM}: refused root@${address} (for a step of node ${WORKER})`);
    expect(text).toContain(
      `it shows the SSH host key ${swap.after} but ${swap.before} was expected (recorded on the first connection)`,
    );
    expect(text).toContain("Nothing was sent: no login, no script.");
    expect(text).toContain(`SWARMCLOUD_FORGET_HOST_KEYS=${address} pulumi up`);
    // The node saw a connection and no login; the step ran nowhere else (no fallback manager).
    expect(sshd.accepted).toEqual([]);
    expect(swarmLabels(WORKER).probe).toBeUndefined();
    table.push({
      attack: `${VICTIM}'s SSH host key replaced (trust on first use)`,
      expected: "up refused before login; node and both fingerprints named",
      seen: `exit ${up.code}; ${swap.after} vs ${swap.before}; ${sshd.accepted.length} accepted logins`,
    });
  });

  test("SWARMCLOUD_FORGET_HOST_KEYS accepts the changed key: the up converges and every resource records the new key", () => {
    const victim = node(VICTIM);
    const address = `${victim.address}:22`;
    const up = cli.up([], { SWARMCLOUD_FORGET_HOST_KEYS: address });
    report.set("forgetUpSeconds", up.seconds);
    expect(swarmLabels(WORKER).probe).toBe("tofu");
    // Those that ran recorded it on the connection; the others learnt it by a key exchange without login.
    const recorded = recordedKeys(address);
    report.set("resourcesRecordingTheVictim", recorded.length);
    expect(recorded.length).toBeGreaterThan(1);
    expect([...new Set(recorded)]).toEqual([newKey]);
    // Without the variable the new key is simply enforced: nothing to do.
    expect(changes(cli.preview(["--expect-no-changes"]).steps)).toEqual([]);
    table.push({
      attack: "the same key change, accepted with SWARMCLOUD_FORGET_HOST_KEYS",
      expected: "up converges; the new key recorded everywhere",
      seen: `up ${up.seconds.toFixed(0)} s; ${recorded.length} resources hold the new key`,
    });
  });

  test("pinned keys (hostKey from lab.sh): a replaced key is refused, the variable does not override a pin, a new pin does", () => {
    const victim = node(VICTIM);
    const address = `${victim.address}:22`;
    // Pin every node's key as lab.sh made it (the victim's is the one accepted above): no run.
    configure({ pin: true, probe: "tofu" });
    expect(changes(cli.preview().steps).every((c) => c.startsWith("update "))).toBe(true);
    cli.up();
    expect(changes(cli.preview(["--expect-no-changes"]).steps)).toEqual([]);

    const swap = replaceHostKey(victim);
    configure({ pin: true, probe: "pinned" }, { ...inventory(), nodes: pinnedAsBefore(newKey) });
    const up = cli.tryUp();
    const text = up.output.replace(/\s+/g, " ");
    expect(up.code).not.toBe(0);
    expect(text).toContain(
      `node ${VICTIM}: refused root@${address} (for a step of node ${WORKER}): it shows the SSH host key ${swap.after} but ${swap.before} was expected (pinned in swarmcloud:nodes)`,
    );
    expect(text).toContain(`set hostKey: "${swap.key}" on the node at ${victim.address} in swarmcloud:nodes`);
    // Forgetting recorded keys does not lift a pin.
    const forgot = cli.tryUp({ SWARMCLOUD_FORGET_HOST_KEYS: address });
    expect(forgot.code).not.toBe(0);
    expect(forgot.output.replace(/\s+/g, " ")).toContain("(pinned in swarmcloud:nodes)");
    const sshd = sshdSince(victim, swap.since);
    report.set("replacedKeyPinned", { ...swap, upSeconds: up.seconds, sshd });
    expect(sshd.accepted).toEqual([]);
    expect(swarmLabels(WORKER).probe).toBe("tofu");
    table.push({
      attack: `${VICTIM}'s SSH host key replaced (pinned in config)`,
      expected: "up refused before login, also with SWARMCLOUD_FORGET_HOST_KEYS",
      seen: `exit ${up.code} and ${forgot.code}; ${sshd.accepted.length} accepted logins`,
    });

    // The way out the message gives: pin the new key (the inventory now lists it).
    configure({ pin: true, probe: "pinned" });
    cli.up();
    expect(swarmLabels(WORKER).probe).toBe("pinned");
    expect([...new Set(recordedKeys(address))]).toEqual([swap.key]);
  });

  test("back to the deployed config: the probe label goes, and a second up changes nothing", () => {
    configure();
    cli.up();
    expect(swarmLabels(WORKER).probe).toBeUndefined();
    expect(changes(cli.preview(["--expect-no-changes"]).steps)).toEqual([]);
  });
});

/** The inventory's nodes with the victim still pinned to its previous key (the config before a fix). */
function pinnedAsBefore(victimKey: string): LabNode[] {
  return inventory().nodes.map((n) => (n.name === VICTIM ? { ...n, hostKey: victimKey } : n));
}

// ------------------------------------------------------------------------------------------
// Helpers of the rows below

/** The running task of a service: its node, and its container there. */
function taskOf(service: string): { node: LabNode; container: string } | undefined {
  const manager = node(VICTIM);
  const where = onNode(
    manager,
    `docker service ps ${service} --filter desired-state=running --format '{{.Node}} {{.CurrentState}}'`,
  )
    .split("\n")
    .find((l) => / Running /.test(` ${l} `));
  if (where === undefined) return undefined;
  const n = node(where.split(" ")[0]!);
  const container = onNode(n, `docker ps -q --filter label=com.docker.swarm.service.name=${service} | head -n 1`);
  return container === "" ? undefined : { node: n, container };
}

/** bash on a node (or in a container there) that tries each `address:port` and prints `address:port open|refused|timeout`. */
const PROBE_SH = [
  'for target in "$@"; do',
  '  if timeout 5 bash -c "exec 3<>/dev/tcp/${target%:*}/${target##*:}" 2>/dev/null; then r=open',
  "  else case $? in 124) r=timeout ;; *) r=refused ;; esac; fi",
  '  echo "$target $r"',
  "done",
].join("\n");

/** The same in node (the Ghost task's image has node, not bash's /dev/tcp necessarily). */
const PROBE_JS =
  "const net=require('net');(async()=>{for(const t of process.argv.slice(1)){const [h,p]=t.split(':');" +
  "const r=await new Promise(ok=>{const s=net.connect({host:h,port:+p,timeout:5000},()=>{s.destroy();ok('open')});" +
  "s.on('error',e=>ok(e.code==='ECONNREFUSED'?'refused':e.code));s.on('timeout',()=>{s.destroy();ok('timeout')})});" +
  "console.log(t+' '+r)}})()";

/** `address:port result` lines as a map. */
function probeResults(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .trim()
      .split("\n")
      .filter((l) => /^\S+:\d+ \S+$/.test(l))
      .map((l) => l.split(" ") as [string, string]),
  );
}

/** The port of each brick of the volume, by its node's address, as glusterd on the first manager lists them. */
function brickPorts(): Record<string, string> {
  const status = onNode(node(VICTIM), "gluster --mode=script volume status swarmcloud");
  return Object.fromEntries(
    [...status.matchAll(/^Brick ([0-9.]+):\S+\s+(\d+)\s/gm)].map((m) => [m[1]!, m[2]!] as [string, string]),
  );
}

/** The cluster's control ports a node listens on: glusterd's, Swarm's (a manager), its brick's (a brick node). */
function controlPorts(n: LabNode, bricks: Record<string, string>): string[] {
  return [
    `${n.address}:24007`,
    ...(n.role === "manager" ? [`${n.address}:2377`] : []),
    ...(bricks[n.address] ? [`${n.address}:${bricks[n.address]}`] : []),
  ];
}

describe("Ghost owned from the start", () => {
  test("the setup route: never open without an owner during the first up; after it a stranger is refused, the owner logs in with the output password", async () => {
    const watch = fs.existsSync(FIRST_UP_WATCH)
      ? (JSON.parse(fs.readFileSync(FIRST_UP_WATCH, "utf8")) as SetupWatch)
      : undefined;
    const owner = ownerFrom(cli.outputs());
    const task = await waitFor("a running Ghost task", 120, () => taskOf("ghost_ghost"));
    const base = `http://${task.node.address}:2368`;
    const status = await setupStatus(base);
    const stranger = await strangerSetup(base);
    const wrong = await ownerSession(base, { ...owner, password: `${owner.password}-not-it` });
    const login = await ownerSession(base, owner);
    report.set("ghostOwner", { firstUpWatch: watch, status, stranger, wrong: wrong.status, login: login.status });
    expect(status).toBe(true);
    expect(stranger).toBe(403);
    expect(wrong.cookie).toBeUndefined();
    expect(login.cookie).toMatch(/^ghost-admin-api-session=/);
    if (watch !== undefined) {
      expect(watch.exposed).toEqual([]);
      expect(watch.firstOwned).toBeDefined();
    }
    table.push({
      attack: "Ghost's setup route, during and after the first up",
      expected: "never 'not set up'; stranger's setup 403; owner logs in",
      seen:
        (watch ? `${watch.exposed.length} of ${watch.probes} probes unowned; ` : "first up not watched; ") +
        `setup ${stranger}; wrong password ${wrong.status}; owner ${login.status}`,
    });
  });
});

describe("the cluster's control ports, from containers", () => {
  test("a container on a node (docker run, and the Ghost task) connects to 2377, 24007 and a brick of another node and its own: refused; the node itself gets through", async () => {
    const bricks = brickPorts();
    // From a worker's plain container (docker0), and from the Ghost task (an overlay network,
    // out through docker_gwbridge), to what another node and their own node listen on.
    const ghost = await waitFor("a running Ghost task", 120, () => taskOf("ghost_ghost"));
    const from = node(WORKER);
    const otherOf = (n: LabNode) => (n.name === VICTIM ? node("manager-2") : node(VICTIM));
    const targets = [...controlPorts(otherOf(from), bricks), ...controlPorts(from, bricks)];
    const ghostTargets = [...controlPorts(otherOf(ghost.node), bricks), ...controlPorts(ghost.node, bricks)];
    const onHost = (n: LabNode, t: string[]) => probeResults(runOnNode(n, `set -- ${t.join(" ")}\n${PROBE_SH}`).stdout);
    const seen = {
      node: onHost(from, targets),
      ghostNode: onHost(ghost.node, ghostTargets),
      container: probeResults(
        runOnNode(
          from,
          `docker run --rm -i --entrypoint bash ${LAB_IMAGES.portainer} -s -- ${targets.join(" ")} <<'PROBE'\n${PROBE_SH}\nPROBE`,
        ).stdout,
      ),
      ghost: probeResults(
        runOnNode(
          ghost.node,
          `docker exec ${ghost.container} node -e ${JSON.stringify(PROBE_JS)} ${ghostTargets.join(" ")}`,
        ).stdout,
      ),
    };
    report.set("controlPorts", { from: from.name, ghostOn: ghost.node.name, targets, ghostTargets, seen });
    const all = (t: string[], r: string) => Object.fromEntries(t.map((x) => [x, r]));
    // The nodes reach each other (and themselves); their containers reach neither.
    expect(seen.node).toEqual(all(targets, "open"));
    expect(seen.ghostNode).toEqual(all(ghostTargets, "open"));
    expect(seen.container).toEqual(all(targets, "refused"));
    expect(seen.ghost).toEqual(all(ghostTargets, "refused"));
    const refused = (m: Record<string, string>) => Object.values(m).filter((r) => r === "refused").length;
    table.push({
      attack: `containers on ${from.name} and ${ghost.node.name} (Ghost task) to 2377, 24007, bricks of nodes`,
      expected: "refused; the nodes themselves get through",
      seen:
        `docker run ${refused(seen.container)}/${targets.length}, Ghost ${refused(seen.ghost)}/${ghostTargets.length} refused; ` +
        `nodes ${Object.values({ ...seen.node, ...seen.ghostNode }).filter((r) => r === "open").length} open`,
    });
  });
});

describe("the Gluster volume, from a stranger", () => {
  test("a machine on the lab network that is not a node mounts the volume: refused; auth.allow lists exactly the node addresses", () => {
    const allowed = onNode(node(VICTIM), "gluster --mode=script volume get swarmcloud auth.allow")
      .split("\n")
      .find((l) => l.startsWith("auth.allow"))!
      .split(/\s+/)[1]!
      .split(",")
      .sort();
    const mount = [
      "mkdir -p /mnt/stolen",
      `timeout 60 mount -t glusterfs -o log-file=/tmp/mount.log ${node(VICTIM).address}:/swarmcloud /mnt/stolen; echo "mount=$?"`,
      "grep -m 3 -iE 'auth|reject|denied|permission' /tmp/mount.log || true",
      'echo "files=$(ls /mnt/stolen 2>/dev/null | wc -l)"',
      'echo "log=$(tail -n 1 /tmp/mount.log 2>/dev/null | cut -c1-200)"',
    ].join("\n");
    const out = lab("stranger", mount);
    const code = /^mount=(\d+)$/m.exec(out)?.[1];
    const files = /^files=(\d+)$/m.exec(out)?.[1];
    const why = out.split("\n").find((l) => /auth|reject|denied|permission/i.test(l)) ?? "";
    report.set("strangerMount", { allowed, out });
    expect(allowed).toEqual(
      inventory()
        .nodes.map((n) => n.address)
        .sort(),
    );
    // Nothing of the volume (its root holds the apps' folders) is seen, and it was refused: by
    // glusterd, which with Gluster TLS (gluster.tls) gives a client without a certificate no
    // volume file, so the mount fails; or, without TLS, by the bricks' auth.allow, which the
    // mount's log names (mount.glusterfs exits 0 before the bricks answer).
    expect(files).toBe("0");
    expect(code !== "0" || why !== "").toBe(true);
    const reason =
      code !== "0"
        ? "no volume file (glusterd speaks TLS only)"
        : why.replace(/^\[[^\]]*\]\s*/, "").slice(-60) || "no log line";
    table.push({
      attack: "a machine on the network, not a node, mounts the volume",
      expected:
        "refused (auth.allow = the node addresses; with gluster.tls also no volume file without the CA's certificate)",
      seen: `mount exit ${code}, ${files} files seen; ${reason}; ${allowed.length} addresses allowed`,
    });
  });
});

describe("Portainer's agents", () => {
  test("a container attached to the agents' network: refused", () => {
    const r = runOnNode(
      node(VICTIM),
      `docker run --rm --network portainer_agent_network --entrypoint true ${LAB_IMAGES.portainer}`,
    );
    const error = (r.stderr.split("\n").find((l) => /attach/i.test(l)) ?? r.stderr).trim();
    report.set("agentNetworkAttach", { code: r.code, stderr: r.stderr });
    expect(r.code).not.toBe(0);
    expect(error).toMatch(/not manually attachable/);
    table.push({
      attack: "docker run --network portainer_agent_network",
      expected: "refused (not attachable)",
      seen: `exit ${r.code}: ${error.replace(/^.*desc = /, "")}`,
    });
  });

  test("a request to the agents without the secret, or signed with another: refused; the server, with it, is served", async () => {
    const server = await waitFor("a running Portainer task", 120, () => taskOf("portainer_portainer"));
    const probe = (how: string) =>
      probeResults(
        onNode(
          server.node,
          `docker exec ${server.container} portainer-standin probe https://tasks.agent:9001/info ${how} | sed 's/ /:9001 /'`,
        ),
      );
    const unsigned = probe("--no-signature");
    const other = probe("--secret not-the-agent-secret");
    const view = JSON.parse(sh("curl", ["-sk", `https://${server.node.address}:9443/api/standin/agents`]).stdout) as {
      signedWithSecret: boolean;
      agents: { address: string; authorized: boolean }[];
    };
    report.set("agentSecret", { unsigned, other, server: view });
    const agents = inventory().nodes.length;
    expect(Object.values(unsigned)).toEqual(Array(agents).fill("403"));
    expect(Object.values(other)).toEqual(Array(agents).fill("403"));
    expect(view.signedWithSecret).toBe(true);
    expect(view.agents.map((a) => a.authorized)).toEqual(Array(agents).fill(true));
    table.push({
      attack: "requests to every agent without the secret / with another",
      expected: "refused (403); the server's are served",
      seen: `${Object.values(unsigned).filter((s) => s === "403").length}/${agents} and ${
        Object.values(other).filter((s) => s === "403").length
      }/${agents} refused; server ${view.agents.filter((a) => a.authorized).length}/${agents} served`,
    });
  });
});

describe("secrets in the places a user looks", () => {
  /**
   * A secret output as `stack export --show-secrets` writes it: the value itself, or (Pulumi's
   * secret envelope) an object whose `plaintext` is the value as JSON.
   */
  function revealed(v: string | { plaintext?: string } | undefined): string {
    if (typeof v === "string") return v;
    return v?.plaintext === undefined ? "" : String(JSON.parse(v.plaintext));
  }

  function secrets(): Record<string, string> {
    const out = cli.outputs() as Record<string, unknown> & { joinTokens: { worker: string } };
    const exported = JSON.parse(cli.must(["stack", "export", "--show-secrets"])) as {
      deployment: {
        resources?: {
          type: string;
          outputs?: { value?: string | { plaintext?: string }; privateKey?: string | { plaintext?: string } };
        }[];
      };
    };
    const resources = exported.deployment.resources ?? [];
    const agent = resources.find((r) => r.type.endsWith("swarmcloud:GeneratedSecret"));
    const key = fs.readFileSync(inventory().privateKeyPath, "utf8").split("\n");
    // With gluster.tls, the Gluster CA's key: a line from the middle of its body.
    const ca = revealed(resources.find((r) => r.type.endsWith("swarmcloud:GeneratedCa"))?.outputs?.privateKey).split(
      "\n",
    );
    return {
      ghostDbPassword: String(out.ghostDbPassword),
      dbRootPassword: String(out.dbRootPassword),
      portainerAdminPassword: String(out.portainerAdminPassword),
      ghostOwnerPassword: String(out.ghostOwnerPassword),
      workerToken: out.joinTokens.worker,
      managerToken: onNode(node(VICTIM), "docker swarm join-token -q manager"),
      portainerAgentSecret: revealed(agent?.outputs?.value),
      // A line from the middle of the SSH private key's body.
      sshPrivateKey: key[Math.floor(key.length / 2)] ?? "",
      // The Gluster CA's key, where the stack has one (gluster.tls).
      ...(ca.length > 1 ? { glusterCaKey: ca[Math.floor(ca.length / 2)]! } : {}),
    };
  }

  /** Starts, on every node, `ps` (and on the managers `docker service inspect` of every service) in a loop into a file. */
  function startWatchers(): void {
    for (const n of inventory().nodes) {
      const inspect =
        n.role === "manager" ? "docker service inspect $(docker service ls -q) 2>/dev/null || true; " : "";
      runOnNode(
        n,
        `nohup bash -c 'while :; do ps -eww -o args; ${inspect}sleep 0.5; done' >/tmp/swarmcloud-watch.log 2>&1 </dev/null &\n` +
          "echo $! >/tmp/swarmcloud-watch.pid",
      );
    }
  }

  /** Stops them; what each saw, by node. */
  function stopWatchers(): Record<string, string> {
    const seen: Record<string, string> = {};
    for (const n of inventory().nodes) {
      onNode(n, "kill $(cat /tmp/swarmcloud-watch.pid) 2>/dev/null || true");
      seen[n.name] = onNode(
        n,
        "cat /tmp/swarmcloud-watch.log; rm -f /tmp/swarmcloud-watch.log /tmp/swarmcloud-watch.pid",
      );
    }
    return seen;
  }

  test("every secret absent from the state, the preview diff, the up's output, docker service inspect and ps on every node during a deploy (one documented exception)", () => {
    const values = secrets();
    for (const [name, v] of Object.entries(values)) expect([name, v.length > 8]).toEqual([name, true]);
    // A change that runs both stacks' deploys (secrets and the deploy variable on stdin) and
    // Ghost's setup again (its one-shot service and temporary secret): every step with a secret.
    const base = labConfig(inventory(), { apps: true });
    cli.setConfig({ ...base, deployTimeout: Number(base.deployTimeout) + 1 });
    const diff = cli.run(["preview", "--diff"]);
    startWatchers();
    let up: { output: string } | undefined;
    let watched: Record<string, string> = {};
    try {
      up = cli.up();
    } finally {
      watched = stopWatchers();
    }
    const places: Record<string, string> = {
      "pulumi stack export": cli.exportState(),
      "pulumi preview --diff": diff.stdout + diff.stderr,
      "pulumi up output": up!.output,
      ...Object.fromEntries(Object.entries(watched).map(([n, text]) => [`ps / docker service inspect on ${n}`, text])),
    };
    const hits: string[] = [];
    for (const [name, value] of Object.entries(values)) {
      for (const [place, text] of Object.entries(places)) {
        if (text.includes(value) || text.includes(Buffer.from(value).toString("base64")))
          hits.push(`${name} in ${place}`);
      }
    }
    // The one place a secret is expected: Portainer's server reads AGENT_SECRET from its
    // environment only (no file, no flag: portainer/agent#127), so its service spec holds it,
    // readable by whoever manages the swarm (root on every node already).
    const expected = (h: string) => /^portainerAgentSecret in ps \/ docker service inspect on manager-\d+$/.test(h);
    const agentInSpec = onNode(node(VICTIM), "docker service inspect portainer_portainer").includes(
      values.portainerAgentSecret,
    );
    report.set("secretsLookedFor", Object.keys(values));
    report.set("secretHits", hits);
    expect(hits.filter((h) => !expected(h))).toEqual([]);
    expect(agentInSpec).toBe(true);
    // Back to the deployed config.
    cli.setConfig(base);
    cli.up();
    expect(changes(cli.preview(["--expect-no-changes"]).steps)).toEqual([]);
    table.push({
      attack: `${Object.keys(values).length} secrets in export, preview --diff, up output, service inspect, ps during a deploy`,
      expected: "absent; AGENT_SECRET only in Portainer's server spec",
      seen: `${hits.filter((h) => !expected(h)).length} found; AGENT_SECRET in the server spec: ${agentInSpec ? "yes" : "no"}`,
    });
  });
});
