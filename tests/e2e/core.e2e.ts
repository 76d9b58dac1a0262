/**
 * The real thing: the Pulumi engine runs this program against lab nodes (containers running
 * sshd, dockerd and glusterd) over SSH. Hosts, swarm, Gluster; apps are covered by apps.e2e.ts.
 */
import * as fs from "fs";
import { script } from "../../components/remote-scripts";
import {
  changes,
  engineBin,
  inventory,
  Inventory,
  lab,
  LAB_DEBIAN,
  labConfig,
  LabNode,
  nodePlatform,
  onNode,
  PulumiCli,
  Report,
  runOnNode,
  sshLogins,
  waitFor,
  watchProcesses,
} from "./lib";

const MANAGERS = 3;
const WORKERS = 2;
const report = new Report("e2e");
let cli: PulumiCli;
let inv: Inventory;

function node(name: string): LabNode {
  const n = inventory().nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no lab node ${name}`);
  return n;
}

function swarmNodes(): { hostname: string; status: string; availability: string; role: string; id: string }[] {
  const out = onNode(
    node("manager-1"),
    "docker node ls --format '{{.ID}} {{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}'",
  );
  return out
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [id, hostname, status, availability, manager] = line.split(" ");
      return {
        id: id!,
        hostname: hostname!,
        status: status!,
        availability: availability!,
        role: manager ? "manager" : "worker",
      };
    });
}

function configure(nodes: LabNode[]): void {
  cli.setConfig(labConfig({ ...inv, nodes }, { apps: false }));
}

beforeAll(() => {
  const bin = engineBin();
  lab("engine");
  lab("image");
  lab("down");
  const t0 = Date.now();
  lab("up", String(MANAGERS), String(WORKERS));
  report.set("labUpSeconds", (Date.now() - t0) / 1000);
  inv = inventory();
  report.set("nodes", inv.nodes.length);
  cli = new PulumiCli("lab-e2e", bin);
  cli.init();
  configure(inv.nodes);
  cli.setSecret("sshPrivateKey", fs.readFileSync(inv.privateKeyPath, "utf8"));
}, 1800_000);

afterAll(() => {
  const file = report.write();
  console.log(`e2e report: ${file}\n${JSON.stringify(report.data, null, 2)}`);
  if (cli && process.env.SWARMCLOUD_KEEP_LAB !== "1") {
    cli.run(["destroy", "--yes", "--skip-preview"]);
    cli.removeStack();
  }
  if (process.env.SWARMCLOUD_KEEP_LAB !== "1") lab("down");
}, 900_000);

test("preview shows the creates for every node", () => {
  const { seconds, steps } = cli.preview();
  report.set("previewSeconds", seconds);
  const creates = steps.filter((s) => s.op === "create").map((s) => s.urn.split("::").pop()!);
  for (const n of inv.nodes) {
    expect(creates).toContain(`lab-e2e-${n.name}-provision`);
    expect(creates).toContain(`lab-e2e-gluster-${n.name}-mount`);
    expect(creates).toContain(`lab-e2e-swarm-${n.name}-member`);
  }
  expect(creates).toContain("lab-e2e-swarm-bootstrap");
  expect(creates).toContain("lab-e2e-gluster-volume");
});

test("pulumi up converges hosts, swarm and gluster", () => {
  const { seconds } = cli.up();
  report.set("upSeconds", seconds);
  const outputs = cli.outputs();
  expect(outputs.managerAddress).toBe(node("manager-1").address);
  expect((outputs.nodeList as unknown[]).length).toBe(MANAGERS + WORKERS);
  expect(outputs.glusterMountPath).toBe("/mnt/swarmcloud");
});

test("every node has its hostname, the hosts block and a working docker, on the lab's Debian release", () => {
  const managers = inv.nodes.filter((n) => n.role === "manager");
  report.set("platform", nodePlatform(inv.nodes[0]!));
  for (const n of inv.nodes) {
    expect(nodePlatform(n).debian).toBe(LAB_DEBIAN);
    expect(onNode(n, "hostname")).toBe(n.name);
    const hosts = onNode(n, "cat /etc/hosts");
    for (const m of managers) expect(hosts).toMatch(new RegExp(`^${m.address.replace(/\./g, "\\.")} ${m.name}$`, "m"));
    expect(hosts).toMatch(new RegExp(`^${n.address.replace(/\./g, "\\.")} ${n.name}$`, "m"));
    expect(onNode(n, "docker info --format '{{.ServerVersion}}'")).toMatch(/^\d+\.\d+/);
  }
});

test("docker node ls lists every node Ready with its role and labels", () => {
  const listed = swarmNodes();
  expect(listed).toHaveLength(MANAGERS + WORKERS);
  for (const n of inv.nodes) {
    const entry = listed.find((l) => l.hostname === n.name);
    expect(entry).toBeDefined();
    expect(entry!.status).toBe("Ready");
    expect(entry!.role).toBe(n.role);
    const labels = onNode(node("manager-1"), `docker node inspect --format '{{json .Spec.Labels}}' ${entry!.id}`);
    expect(JSON.parse(labels)).toEqual({ "swarmcloud.lab": "true", tier: n.role === "manager" ? "control" : "app" });
  }
});

test("a file written through the Gluster mount on one node is read on every other node", async () => {
  const stamp = `written-${Date.now()}`;
  onNode(inv.nodes[0]!, `echo ${stamp} > /mnt/swarmcloud/e2e-probe.txt`);
  for (const n of inv.nodes.slice(1)) {
    const seen = await waitFor(
      `${n.name} to read the file`,
      20,
      () => onNode(n, "cat /mnt/swarmcloud/e2e-probe.txt") === stamp,
    );
    expect(seen).toBe(true);
  }
  const fstab = onNode(node("worker-1"), "grep glusterfs /etc/fstab");
  expect(fstab).toContain("backup-volfile-servers=");
  for (const dir of ["ghost/content", "ghost/mysql", "portainer"]) {
    expect(onNode(node("worker-2"), `test -d /mnt/swarmcloud/${dir} && echo yes`)).toBe("yes");
  }
});

test("a second pulumi up changes nothing and runs nothing on any node", () => {
  const before = inv.nodes.map(sshLogins);
  const { steps } = cli.preview(["--expect-no-changes"]);
  expect(changes(steps)).toEqual([]);
  const { seconds } = cli.up(["--expect-no-changes"]);
  report.set("noopUpSeconds", seconds);
  const after = inv.nodes.map(sshLogins);
  expect(after).toEqual(before);
});

/** The volume's auth.allow (the addresses whose clients its bricks accept), sorted. */
function allowedAddresses(): string[] {
  const line = onNode(node("manager-1"), "gluster --mode=script volume get swarmcloud auth.allow")
    .split("\n")
    .find((l) => l.startsWith("auth.allow"));
  return (line?.split(/\s+/)[1] ?? "").split(",").sort();
}

test("adding a sixth node touches only that node, and removing it makes it leave", () => {
  lab("add", "worker-3", "worker");
  inv = inventory();
  configure(inv.nodes);
  const { steps } = cli.preview();
  const changed = changes(steps);
  expect(changed.length).toBeGreaterThan(0);
  for (const c of changed) {
    // The new node's steps; and with Gluster TLS (gluster.tls) the volume step, on the first
    // brick node, for auth.ssl-allow, which lists the node names.
    expect(c).toMatch(/^create .*worker-3|^update lab-e2e-gluster-volume$/);
  }
  // Touched: the new node and one manager (the first brick node runs its allow step and the
  // volume step, and swarm steps run on a manager): no more than one other node sees a login.
  const others = inv.nodes.filter((n) => n.name !== "worker-3");
  // The join token must stay off the new node's command lines (`ps`) while it joins: the
  // watcher must see the join's request (curl to Docker's /swarm/join) and never the token.
  const workerToken = onNode(node("manager-1"), "docker swarm join-token -q worker");
  const watcher = watchProcesses(node("worker-3"));
  let seen = "";
  let seconds: number;
  const loginsBefore = others.map(sshLogins);
  try {
    seconds = cli.up().seconds;
  } finally {
    seen = watcher.stop();
  }
  report.set("addNodeSeconds", seconds);
  const loginsAfter = others.map(sshLogins);
  const touched = others.filter((_, i) => loginsAfter[i]! > loginsBefore[i]!).map((n) => n.name);
  report.set("addNodeTouched", touched);
  expect(touched.length).toBeLessThanOrEqual(1);
  const joinLines = seen.split("\n").filter((l) => l.includes("/swarm/join"));
  report.set("joinCommandLinesSeen", joinLines.length);
  expect(joinLines.length).toBeGreaterThan(0);
  expect(seen.includes(workerToken)).toBe(false);
  expect(swarmNodes().find((l) => l.hostname === "worker-3")?.status).toBe("Ready");
  expect(onNode(node("worker-3"), "cat /mnt/swarmcloud/e2e-probe.txt")).toMatch(/^written-/);
  // auth.allow follows the nodes: the new one's address in, and no other.
  expect(allowedAddresses()).toEqual(inv.nodes.map((n) => n.address).sort());

  const without = inv.nodes.filter((n) => n.name !== "worker-3");
  configure(without);
  const removed = cli.up();
  report.set("removeNodeSeconds", removed.seconds);
  expect(swarmNodes().map((l) => l.hostname)).not.toContain("worker-3");
  expect(onNode(node("worker-3"), "docker info --format '{{.Swarm.LocalNodeState}}'")).toBe("inactive");
  expect(allowedAddresses()).toEqual(without.map((n) => n.address).sort());
  lab("rm", "worker-3");
  inv = inventory();
});

test("a worker becomes a manager and back, in place, without a rejoin", () => {
  const idBefore = swarmNodes().find((l) => l.hostname === "worker-1")!.id;
  const promoted = inv.nodes.map((n) => (n.name === "worker-1" ? { ...n, role: "manager" as const } : n));
  configure(promoted);
  const { steps } = cli.preview();
  expect(changes(steps).filter((c) => c.startsWith("replace") || c.startsWith("delete"))).toEqual([]);
  const t0 = Date.now();
  cli.up();
  let entry = swarmNodes().find((l) => l.hostname === "worker-1")!;
  expect(entry.role).toBe("manager");
  expect(entry.id).toBe(idBefore);
  configure(inv.nodes);
  cli.up();
  entry = swarmNodes().find((l) => l.hostname === "worker-1")!;
  expect(entry.role).toBe("worker");
  expect(entry.id).toBe(idBefore);
  report.set("roleChangeRoundTripSeconds", (Date.now() - t0) / 1000);
});

test("a brick node that was down heals the files written meanwhile", async () => {
  const brick = node("manager-3");
  lab("stop", brick.container);
  const stamp = `while-down-${Date.now()}`;
  onNode(node("manager-1"), `echo ${stamp} > /mnt/swarmcloud/heal-probe.txt`);
  lab("start", brick.container);
  const t0 = Date.now();
  await waitFor("self-heal of the restarted brick", 180, () => {
    const onBrick = onNode(brick, "cat /srv/swarmcloud/brick/heal-probe.txt 2>/dev/null || true");
    return onBrick === stamp;
  });
  report.set("selfHealSeconds", (Date.now() - t0) / 1000);
});

// The race seen when the first brick node was replaced (issue 14): a peer probed a moment ago is
// "Connected" before it is "Peer in Cluster", and add-brick naming it failed. Twenty times, a
// fresh peer is probed and its brick added at once, on a scratch volume over the managers: even
// rounds by a bare `gluster peer probe` right before the volume script (its own wait must hold),
// odd rounds by the probe script, whose result must already be the joined state. Each round
// then removes the brick and detaches the peer (the shrink step), so the next probe is a fresh one.
// SWARMCLOUD_PEER_RACE_ROUNDS sets another count (CI: fewer on the second, Debian 12, core run).
const PEER_RACE_ROUNDS = Number(process.env.SWARMCLOUD_PEER_RACE_ROUNDS ?? "20");
test(`a peer probed and its brick added at once, ${PEER_RACE_ROUNDS} times: every volume change waits for 'Peer in Cluster'`, () => {
  const [first, ...others] = inv.nodes.filter((n) => n.role === "manager");
  const peer = node("worker-2");
  const base = [first!, ...others].map((n) => `${n.address}:/srv/race/base`);
  const volume = (bricks: string[]) =>
    runOnNode(first!, script("gluster-volume"), { NODE_NAME: first!.name, VOLUME: "race", BRICKS: bricks.join(" ") });
  // Bricks leave through the shrink step, as in a real replacement (worker-2 stays a member).
  const shrink = (bricks: string[]) =>
    runOnNode(first!, script("gluster-shrink"), {
      NODE_NAME: first!.name,
      VOLUME: "race",
      BRICKS: bricks.join(" "),
      MEMBERS: inv.nodes.map((n) => n.address).join(" "),
    });
  for (const n of [first!, ...others, peer]) onNode(n, "mkdir -p /srv/race"); // glusterd makes the brick, not its parent
  const created = volume(base);
  expect(created.stderr).toBe("");
  expect(created.code).toBe(0);
  const failures: string[] = [];
  const t0 = Date.now();
  try {
    for (let round = 0; round < PEER_RACE_ROUNDS; round++) {
      const brick = `${peer.address}:/srv/race/round-${round}`;
      const probe =
        round % 2 === 0
          ? `gluster --mode=script peer probe ${peer.address} >/dev/null`
          : `(\n${script("gluster-probe")}\n)\ngluster --mode=script peer status`; // the script may exit: a subshell
      const probed = runOnNode(first!, probe, { NODE_NAME: peer.name, PEER_ADDR: peer.address });
      if (probed.code !== 0) failures.push(`round ${round}: probe failed: ${probed.stderr.trim()}`);
      if (
        round % 2 === 1 &&
        !new RegExp(`Hostname: ${peer.address}\\nUuid: \\S+\\nState: Peer in Cluster \\(Connected\\)`).test(
          probed.stdout,
        )
      )
        failures.push(`round ${round}: the probe script returned before the peer joined:\n${probed.stdout}`);
      const added = volume([...base, brick]);
      if (added.code !== 0)
        failures.push(`round ${round}: add-brick right after the probe failed: ${added.stderr.trim()}`);
      const removed = shrink(base);
      if (removed.code !== 0) failures.push(`round ${round}: remove-brick failed: ${removed.stderr.trim()}`);
      if (onNode(first!, "gluster --mode=script pool list").includes(peer.address))
        failures.push(`round ${round}: ${peer.name} is still in the pool after its brick left`);
    }
  } finally {
    report.set("peerRaceRounds", PEER_RACE_ROUNDS);
    report.set("peerRaceFailures", failures);
    report.set("peerRaceSeconds", (Date.now() - t0) / 1000);
    runOnNode(first!, "gluster --mode=script volume stop race force; gluster --mode=script volume delete race");
    for (const n of [first!, ...others, peer]) onNode(n, "rm -rf /srv/race");
  }
  expect(failures).toEqual([]);
}, 900_000);

test("destroy leaves every node outside any swarm, unmounted, and up -> destroy -> up works", () => {
  report.set("destroySeconds", cli.destroy());
  for (const n of inv.nodes) {
    expect(onNode(n, "docker info --format '{{.Swarm.LocalNodeState}}'")).toBe("inactive");
    expect(onNode(n, "mountpoint -q /mnt/swarmcloud && echo mounted || echo not-mounted")).toBe("not-mounted");
    expect(onNode(n, "grep -c glusterfs /etc/fstab || true")).toBe("0");
  }
  expect(onNode(node("manager-1"), "gluster volume list")).not.toContain("swarmcloud");
  const again = cli.up();
  report.set("reUpSeconds", again.seconds);
  expect(swarmNodes().filter((l) => l.status === "Ready")).toHaveLength(MANAGERS + WORKERS);
  report.set("reDestroySeconds", cli.destroy());
});
