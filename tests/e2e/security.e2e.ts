/**
 * Attacks on a deployed cluster, tried as an attacker would (issue 15), each a row of the table
 * printed at the end (attack, expected, seen) and kept in reports/security-latest.json.
 *
 * The cluster is the apps suite's when that suite hands it on (SWARMCLOUD_LAB_HANDOFF=1 on
 * both runs: apps keeps its stack and nodes, this suite attaches to them); otherwise this suite
 * deploys the same cluster itself (3 managers, 2 workers, Ghost and Portainer, lab images). With
 * the variable it hands the cluster on in turn (to the drift suite, in CI) rather than destroying it.
 *
 * So far: a node whose SSH host key was replaced (a reinstall, or another machine answering on
 * its address). `pulumi up` must refuse it before login, naming the node and both fingerprints,
 * with trust on first use and with pinned keys, and the node's sshd must log no accepted login;
 * a legitimately changed key is then accepted the way the error says.
 */
import {
  changes,
  engineBin,
  handingOff,
  inventory,
  Inventory,
  lab,
  labConfig,
  LabHandoff,
  LabNode,
  onNode,
  prepareAppsLab,
  PulumiCli,
  readHandoff,
  Report,
  sh,
  sshLog,
  writeHandoff,
} from "./lib";

const report = new Report("security");
const table: { attack: string; expected: string; seen: string }[] = [];
let cli: PulumiCli;
let attached: LabHandoff | undefined;

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
    report.set("upSeconds", cli.up().seconds);
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
