/**
 * Day two (issue 18), for real: drift made by hand on the lab nodes is shown by
 * `pulumi preview --refresh --diff` as a property diff of the drifted resource, repaired by
 * `pulumi up --refresh`, and then a refresh finds nothing to change; a restarted node needs
 * nothing; a node that cannot be reached is named and its resources are left as they were.
 * Prints a table (drift, diff shown, repaired, seconds) and writes reports/drift-latest.json.
 *
 * The cluster, in this order of preference:
 * - the one an earlier suite hands on (SWARMCLOUD_LAB_HANDOFF=1 on both runs, as CI runs
 *   apps, security, then drift): its stack as it is, converged by `up --refresh` first; the chain
 *   ends here, with this suite's destroy;
 * - a drift run's own kept cluster: its stack's state lives in the lab dir
 *   ($SWARMCLOUD_LAB_DIR/state-lab-drift, removed with the lab by `lab.sh down`), so a run while
 *   the lab and that state are still there (a run with SWARMCLOUD_KEEP_LAB=1 leaves both) starts
 *   with `up --refresh` on the cluster as it is instead of a new lab and a full deploy;
 *   SWARMCLOUD_DRIFT_FRESH=1 starts afresh anyway;
 * - a new lab (3 managers, 2 workers) and a full deploy of the apps.
 */
import * as fs from "fs";
import * as path from "path";
import {
  changes,
  engineBin,
  handingOff,
  inventory,
  Inventory,
  lab,
  LAB_DIR,
  LAB_PASSWORDS,
  labConfig,
  LabHandoff,
  LabNode,
  onNode,
  PreviewStep,
  PulumiCli,
  readHandoff,
  REPO,
  Report,
  runOnNode,
  sh,
  sshLogins,
  waitFor,
  writeHandoff,
} from "./lib";
import { changedLines, diffBlocks, readWarnings } from "./diff-text";

const STACK = "lab-drift";
const STATE_DIR = path.join(LAB_DIR, `state-${STACK}`);
const MOUNT = "/mnt/swarmcloud";
const VOLUME = "swarmcloud";
const report = new Report("drift");
let cli: PulumiCli;
let inv: Inventory;
/** The stack handed on by an earlier suite, when this run took one. */
let attached: LabHandoff | undefined;
/** A deployed cluster (handed on, or kept by an earlier drift run): converged, not deployed. */
let reused = false;

/** One row of the table. */
interface Row {
  drift: string;
  /** What `preview --refresh --diff` showed for it: "<resource>: <first diff line>", or why not run. */
  diffShown: string[];
  /** Resources the plan would update after that refresh. */
  planned: string[];
  repaired: "yes" | "nothing needed" | "not injected";
  /** Seconds: from the injection until a refresh found nothing more to change. */
  seconds: number;
  showSeconds?: number;
  repairSeconds?: number;
  note?: string;
}
const rows: Row[] = [];
/** False while a row runs, and after one that failed: the next row converges the cluster first. */
let converged = true;

/** Before a row (or a group of rows): a cluster the previous one left drifted is repaired first (noted in the row). */
function startRows(group: Row[]): void {
  rows.push(...group);
  if (!converged) {
    const r = cli.run(["up", "--refresh", "--yes", "--skip-preview", "--parallel", "64"]);
    group[0]!.note = `the previous row failed; up --refresh first: exit ${r.code}${group[0]!.note ? `; ${group[0]!.note}` : ""}`;
  }
  converged = false;
}

// ------------------------------------------------------------------------------------------
// The lab nodes

function node(name: string): LabNode {
  const n = inventory().nodes.find((x) => x.name === name);
  if (!n) throw new Error(`no lab node ${name}`);
  return n;
}

/** A manager that answers as one, for swarm-side commands. */
function anyManager(except?: string): LabNode {
  for (const m of inventory().nodes.filter((n) => n.role === "manager" && n.name !== except)) {
    try {
      if (onNode(m, "docker info --format '{{.Swarm.ControlAvailable}}'") === "true") return m;
    } catch {
      // try the next one
    }
  }
  throw new Error("no manager answers");
}

/** Runs a command on a lab node; returns its output, or fails naming the step. */
function must(n: LabNode, what: string, command: string): string {
  const r = runOnNode(n, command);
  if (r.code !== 0) throw new Error(`${what} on ${n.name} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

/** The lab nodes that run, as the inventory says (a kept lab may have been stopped since). */
function labRunning(): boolean {
  try {
    const nodes = (JSON.parse(lab("inventory")) as Inventory).nodes as (LabNode & { running?: boolean })[];
    return nodes.length === 5 && nodes.every((n) => n.running !== false);
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------------
// What the engine prints

/** Steps of a plan that change something (refresh steps are the reading, not a change). */
function planned(steps: PreviewStep[]): string[] {
  return changes(steps.filter((s) => s.op !== "refresh"));
}

/** `pulumi preview --refresh --diff` as text; fails when the command does. */
function previewRefreshDiff(): { seconds: number; text: string } {
  const t0 = Date.now();
  const r = cli.run(["preview", "--refresh", "--diff", "--color", "never", "--parallel", "64"]);
  if (r.code !== 0) throw new Error(`pulumi preview --refresh --diff failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return { seconds: (Date.now() - t0) / 1000, text: `${r.stdout}\n${r.stderr}` };
}

/** A refresh that finds nothing to change and reads every node: the plan after it is empty. */
function expectNoDrift(): { seconds: number } {
  const t0 = Date.now();
  const r = cli.run(["preview", "--refresh", "--json", "--parallel", "64"]);
  let parsed: { steps?: PreviewStep[]; diagnostics?: { message: string }[] };
  try {
    parsed = JSON.parse(r.stdout) as typeof parsed;
  } catch {
    throw new Error(`pulumi preview --refresh --json (${r.code}) printed no JSON:\n${r.stdout}\n${r.stderr}`);
  }
  const warnings = (parsed.diagnostics ?? []).flatMap((d) => readWarnings(d.message));
  expect({ planned: planned(parsed.steps ?? []), warnings }).toEqual({ planned: [], warnings: [] });
  return { seconds: (Date.now() - t0) / 1000 };
}

// ------------------------------------------------------------------------------------------
// One drift: inject, show, repair, check

interface Shows {
  /** Resource name without the stack prefix, e.g. "swarm-worker-1-member". */
  resource: string;
  /** Lines its refresh block must have (each regex must match). */
  lines: RegExp[];
}

interface Drift {
  name: string;
  /** Makes the drift by hand; returns why it could not, when it could not (nothing was changed). */
  inject: () => string | undefined | Promise<string | undefined>;
  shows: Shows[];
  /** After the repair: the node is as declared (beyond the refresh finding nothing). */
  check?: () => void | Promise<void>;
}

/**
 * Drifts of different resources made together, then shown, repaired and checked in one cycle
 * (one `preview --refresh --diff`, one `up --refresh`, one refresh that must find nothing): each
 * must show in its own resource's refresh block, the plan must update each of them, and each
 * check must hold. A row per drift; the rows of a group share the plan and the seconds.
 */
async function runDrifts(...ds: Drift[]): Promise<void> {
  const t0 = Date.now();
  const group: Row[] = ds.map((d) => ({ drift: d.name, diffShown: [], planned: [], repaired: "yes", seconds: 0 }));
  if (ds.length > 1) {
    for (const row of group)
      row.note = `one cycle with: ${ds
        .map((d) => d.name)
        .filter((n) => n !== row.drift)
        .join("; ")}`;
  }
  startRows(group);
  const made: Drift[] = [];
  for (const [k, d] of ds.entries()) {
    const notInjected = await d.inject();
    if (notInjected === undefined) {
      made.push(d);
      continue;
    }
    group[k]!.repaired = "not injected";
    group[k]!.note = notInjected;
    group[k]!.diffShown = [`(not injected: ${notInjected.split("\n")[0]})`];
  }
  if (made.length > 0)
    await showAndRepair(
      made,
      group.filter((r) => r.repaired === "yes"),
    );
  else expectNoDrift();
  for (const row of group) row.seconds = (Date.now() - t0) / 1000;
  converged = true;
}

/** The cycle of runDrifts for the drifts that were made (ROWS theirs, in order). */
async function showAndRepair(made: Drift[], rows: Row[]): Promise<void> {
  const shown = previewRefreshDiff();
  const blocks = diffBlocks(shown.text);
  const updates = blocks.filter((b) => b.op === "update").map((b) => b.name);
  for (const [k, d] of made.entries()) {
    const row = rows[k]!;
    row.showSeconds = shown.seconds;
    row.planned = updates;
    for (const s of d.shows) {
      const name = `${cli.stack}-${s.resource}`;
      const block = blocks.find((b) => b.op === "refresh" && b.name === name);
      if (!block) throw new Error(`${d.name}: no refresh diff for ${name} in:\n${shown.text}`);
      for (const line of s.lines)
        expect({ resource: name, text: block.text }).toEqual({
          resource: name,
          text: expect.stringMatching(line),
        });
      row.diffShown.push(`${s.resource}: ${changedLines(block.text)}`);
      expect(updates).toContain(name);
    }
  }
  expect(readWarnings(shown.text)).toEqual([]);
  const t1 = Date.now();
  cli.up(["--refresh"]);
  for (const row of rows) row.repairSeconds = (Date.now() - t1) / 1000;
  expectNoDrift();
  for (const d of made) await d.check?.();
}

// ------------------------------------------------------------------------------------------
// Restarts and an unreachable node

/**
 * The node is back: in the swarm (a manager answering for it), its mount answering, its
 * glusterd's peers connected, its hosts block and hostname restored.
 */
function backAfterRestart(n: LabNode): boolean {
  const r = runOnNode(
    n,
    [
      `[ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = active ]`,
      `awk '$2 == "${MOUNT}" && $3 == "fuse.glusterfs" { f = 1 } END { exit !f }' /proc/mounts`,
      `timeout 10 ls ${MOUNT}/ >/dev/null`,
      `! gluster --mode=script pool list | awk 'NR > 1 && $3 != "Connected"' | grep -q .`,
      `grep -qx '# BEGIN swarmcloud' /etc/hosts`,
      `[ "$(hostname)" = ${n.name} ]`,
      // A manager answers for the swarm again (no leader right after a restart).
      `{ [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" != true ] || docker node ls -q >/dev/null; }`,
    ].join(" && "),
  );
  return r.code === 0;
}

async function restartRow(name: string, why: string): Promise<void> {
  const n = node(name);
  const t0 = Date.now();
  const row: Row = {
    drift: `restart of ${name} (${why})`,
    diffShown: [],
    planned: [],
    repaired: "nothing needed",
    seconds: 0,
  };
  startRows([row]);
  lab("stop", n.container);
  lab("start", n.container);
  await waitFor(`${name} back (swarm, mount, gluster peers, hosts block, hostname)`, 300, () => backAfterRestart(n));
  const back = (Date.now() - t0) / 1000;
  const check = expectNoDrift();
  row.diffShown = ["(none)"];
  row.showSeconds = check.seconds;
  row.note = `back after ${back.toFixed(1)} s`;
  row.seconds = (Date.now() - t0) / 1000;
  converged = true;
}

// ------------------------------------------------------------------------------------------

/** A lab and stack of this suite's own: the kept one when there is one, else new. */
function ownCluster(bin: string): void {
  lab("engine");
  lab("image");
  const t0 = Date.now();
  const built = sh("bash", [path.join(REPO, "tests/lab/images/build.sh"), "all"]);
  if (built.code !== 0) throw new Error(`lab images: ${built.stderr}${built.stdout}`);
  report.set("labImagesSeconds", (Date.now() - t0) / 1000);
  const stackFile = path.join(REPO, `Pulumi.${STACK}.yaml`);
  const state = path.join(STATE_DIR, ".pulumi", "stacks", "swarmcloud", STACK);
  reused =
    process.env.SWARMCLOUD_DRIFT_FRESH !== "1" &&
    (fs.existsSync(`${state}.json`) || fs.existsSync(`${state}.json.gz`)) &&
    fs.existsSync(stackFile) &&
    labRunning();
  report.set("cluster", reused ? "kept by an earlier drift run" : "deployed by this suite");
  if (!reused) {
    lab("down");
    lab("up", "3", "2");
    fs.rmSync(stackFile, { force: true });
  }
  const loaded = sh("bash", [path.join(REPO, "tests/lab/images/build.sh"), "load-inventory"]);
  if (loaded.code !== 0) throw new Error(`loading lab images: ${loaded.stderr}${loaded.stdout}`);
  inv = inventory();
  cli = new PulumiCli(STACK, bin, { stateDir: STATE_DIR });
  if (!reused) {
    cli.init();
    cli.setSecret("sshPrivateKey", fs.readFileSync(inv.privateKeyPath, "utf8"));
    // The passwords stay in the stack file: a later run that shares this cluster keeps them.
    for (const [k, v] of Object.entries(LAB_PASSWORDS)) cli.setSecret(k, v);
  }
}

beforeAll(() => {
  const bin = engineBin();
  attached = readHandoff();
  if (attached) {
    // The stack another suite deployed (its secrets set there), as it left it.
    cli = new PulumiCli(attached.stack, bin, attached);
    inv = inventory();
    reused = true;
    report.set("cluster", `handed on by the ${attached.by} suite (stack ${attached.stack})`);
  } else {
    ownCluster(bin);
  }
  report.set("reusedCluster", reused);
  cli.setConfig(labConfig(inv, { apps: true }));
}, 3600_000);

afterAll(() => {
  const table = [
    "drift | diff shown | repaired | seconds",
    ...rows.map((r) => `${r.drift} | ${r.diffShown.join("; ")} | ${r.repaired} | ${r.seconds.toFixed(1)}`),
  ].join("\n");
  report.set("rows", rows);
  report.set("table", table);
  const file = report.write();
  console.log(`drift report: ${file}\n\n${table}\n`);
  // SWARMCLOUD_LAB_HANDOFF=1: the cluster goes on to the next suite (or `lab.sh down` removes it).
  if (destroyed) {
    cli.removeStack();
    lab("down");
    return;
  }
  if (cli && handingOff()) {
    if (!attached) writeHandoff(cli, "drift");
    return;
  }
  if (process.env.SWARMCLOUD_KEEP_LAB === "1") {
    console.log(`kept: the lab and the stack ${STACK} (state ${STATE_DIR}); the next run shares them`);
    return;
  }
  if (cli) {
    cli.run(["destroy", "--yes", "--skip-preview"]);
    cli.removeStack();
  }
  lab("down");
}, 900_000);

test("the cluster is deployed (or the handed-on or kept one converged), apps included", () => {
  const { seconds } = reused ? cli.up(["--refresh"]) : cli.up();
  report.set(reused ? "upRefreshSeconds" : "upSeconds", seconds);
  const services = onNode(anyManager(), "docker service ls --format '{{.Name}} {{.Replicas}}' | sort");
  expect(services).toMatch(/^ghost_ghost 1\/1/m);
});

test("a refresh of the fresh cluster finds no drift and opens at most one SSH connection per node", () => {
  const before = inv.nodes.map(sshLogins);
  const { seconds } = expectNoDrift();
  const opened = inv.nodes.map((n, i) => sshLogins(n) - before[i]!);
  report.set("noDriftRefresh", {
    seconds,
    connectionsPerNode: Object.fromEntries(inv.nodes.map((n, i) => [n.name, opened[i]])),
  });
  for (const count of opened) expect(count).toBeLessThanOrEqual(1);
});

test("a pulumi up without --refresh runs nothing on any node", () => {
  const before = inv.nodes.map(sshLogins);
  const { seconds } = cli.up(["--expect-no-changes"]);
  report.set("noopUpSeconds", seconds);
  expect(inv.nodes.map(sshLogins)).toEqual(before);
});

// The drifts, each made by hand the way an operator (or Portainer) would.

const workerLeft: Drift = {
  name: "worker-2 left the swarm (docker swarm leave --force)",
  inject: () => void must(node("worker-2"), "leave", "docker swarm leave --force"),
  shows: [
    {
      resource: "swarm-worker-2-join",
      lines: [/\+ DRIFT\s*: "worker-2 is not in the swarm \(Swarm\.LocalNodeState=inactive\)"/],
    },
  ],
  check: async () => {
    expect(onNode(node("worker-2"), "docker info --format '{{.Swarm.LocalNodeState}}'")).toBe("active");
    // Rejoined under a new ID; its earlier entry was removed (swarm-member.sh), so it is listed once.
    const listed = onNode(anyManager(), "docker node ls --format '{{.Hostname}} {{.Status}}'").split("\n");
    expect(listed.filter((l) => l.startsWith("worker-2 "))).toEqual(["worker-2 Ready"]);
  },
};

const workerPromoted: Drift = {
  name: "worker-1 promoted by hand",
  inject: () => void must(anyManager(), "promote", "docker node promote worker-1"),
  shows: [{ resource: "swarm-worker-1-member", lines: [/~ ROLE\s*: "worker" => "manager"/] }],
  check: () => {
    expect(onNode(anyManager(), "docker node inspect --format '{{.Spec.Role}}' worker-1")).toBe("worker");
  },
};

const labelRemoved: Drift = {
  name: "label tier removed from worker-1",
  inject: () => void must(anyManager(), "label-rm", "docker node update --label-rm tier worker-1"),
  shows: [{ resource: "swarm-worker-1-member", lines: [/~ LABELS\s*:/, /^\s*- tier=app\s*$/m] }],
  check: () => {
    const labels = onNode(anyManager(), "docker node inspect --format '{{json .Spec.Labels}}' worker-1");
    expect(JSON.parse(labels)).toEqual({ "swarmcloud.lab": "true", tier: "app" });
  },
};

const drained: Drift = {
  name: "worker-1 set to drain",
  inject: () => void must(anyManager(), "drain", "docker node update --availability drain worker-1"),
  shows: [{ resource: "swarm-worker-1-member", lines: [/~ AVAILABILITY\s*: "active" => "drain"/] }],
  check: () => {
    expect(onNode(anyManager(), "docker node inspect --format '{{.Spec.Availability}}' worker-1")).toBe("active");
  },
};

const unmounted: Drift = {
  name: "volume unmounted on worker-2",
  // Lazily: a task's container on the node may hold the mount.
  inject: () => void must(node("worker-2"), "umount", `umount -l ${MOUNT}`),
  shows: [{ resource: "gluster-worker-2-mount", lines: [/~ MOUNTED\s*: "true" => "false"/] }],
  check: () => {
    expect(must(node("worker-2"), "mounted", `mountpoint -q ${MOUNT} && ls ${MOUNT}/ && echo ok`)).toMatch(/ok$/);
  },
};

/** Made when it runs: the first manager's address is known then. */
const hostsEdited = (): Drift => {
  const m1 = node("manager-1").address.replace(/\./g, "\\.");
  return {
    name: "hosts block edited on worker-1",
    // In place: a container's /etc/hosts is a bind mount that cannot be replaced (sed -i).
    inject: () =>
      void must(
        node("worker-1"),
        "edit /etc/hosts",
        `hosts=$(sed 's/^\\(.*\\) manager-1$/\\1 manager-one/' /etc/hosts) && printf '%s\\n' "$hosts" > /etc/hosts`,
      ),
    shows: [
      {
        resource: "worker-1-provision",
        lines: [
          /~ HOSTS_BLOCK\s*:/,
          new RegExp(`^\\s*- ${m1} manager-1\\s*$`, "m"),
          new RegExp(`^\\s*\\+ ${m1} manager-one\\s*$`, "m"),
        ],
      },
    ],
    check: () => {
      expect(onNode(node("worker-1"), "grep -c ' manager-1$' /etc/hosts")).toBe("1");
    },
  };
};

const peerDetached: Drift = {
  name: "peer manager-2 (a brick node) detached",
  inject: () => {
    // glusterd refuses to detach a peer that holds a brick; then there is no such drift to make.
    const r = runOnNode(node("manager-1"), `gluster --mode=script peer detach ${node("manager-2").address}`);
    return r.code === 0 ? undefined : `glusterd refuses: ${(r.stderr + r.stdout).trim()}`;
  },
  shows: [
    { resource: "gluster-manager-2-peer", lines: [/\+ DRIFT\s*: "peer manager-2 .* is not in the trusted pool/] },
  ],
};

const ghostScaled: Drift = {
  name: "Ghost scaled to 3 by hand",
  inject: () => void must(anyManager(), "scale", "docker service scale --detach ghost_ghost=3"),
  shows: [
    {
      resource: "ghost-deploy",
      lines: [/~ SERVICES\s*:/, /^\s*- ghost_ghost replicated 1\s*$/m, /^\s*\+ ghost_ghost replicated 3\s*$/m],
    },
  ],
  check: () => {
    const replicas = onNode(
      anyManager(),
      "docker service inspect --format '{{.Spec.Mode.Replicated.Replicas}}' ghost_ghost",
    );
    expect(replicas).toBe("1");
  },
};

const ghostStackRemoved: Drift = {
  name: "Ghost stack removed (docker stack rm ghost)",
  inject: async () => {
    const m = anyManager();
    must(m, "stack rm", "docker stack rm ghost");
    // As stack-rm.sh: the networks go a moment after the services.
    await waitFor(
      "the ghost stack's networks to go",
      120,
      () => onNode(m, "docker network ls -q --filter label=com.docker.stack.namespace=ghost") === "",
    );
    return undefined;
  },
  shows: [{ resource: "ghost-deploy", lines: [/- SERVICES\s*: "ghost_db replicated 1\\nghost_ghost replicated 1"/] }],
  check: () => {
    const services = onNode(anyManager(), "docker service ls --format '{{.Name}} {{.Replicas}}' | sort");
    expect(services).toMatch(/^ghost_db 1\/1/m);
    expect(services).toMatch(/^ghost_ghost 1\/1/m);
  },
};

const secretRemoved: Drift = {
  name: "Portainer's Docker secret removed",
  inject: () => {
    const m = anyManager();
    // The admin password's secret (the stack also has the agents' arguments file).
    const name = must(
      m,
      "secret ls",
      "docker secret ls --filter label=com.swarmcloud.stack=portainer --format '{{.Name}}' | grep '^portainer-admin-password-'",
    );
    expect(name).toMatch(/^portainer-admin-password-[0-9a-f]{10}$/);
    // A secret in use cannot be removed: take it from the service first.
    must(m, "secret-rm", `docker service update --detach --secret-rm ${name} portainer_portainer`);
    must(m, "secret rm", `docker secret rm ${name}`);
    return undefined;
  },
  // SECRETS lists both secrets' names, one a line: the one removed shows as a line gone.
  shows: [
    {
      resource: "portainer-deploy",
      lines: [/~ SECRETS\s*:/, /^\s*- portainer-admin-password-[0-9a-f]{10}\s*$/m],
    },
  ],
  check: () => {
    const m = anyManager();
    expect(onNode(m, "docker secret ls --filter label=com.swarmcloud.stack=portainer -q")).not.toBe("");
    expect(onNode(m, "docker service ls --format '{{.Name}} {{.Replicas}}'")).toMatch(/^portainer_portainer 1\/1/m);
  },
};

// Last of the drifts: every mount and app loses its storage for a moment.
const volumeStopped: Drift = {
  name: "volume stopped (gluster volume stop)",
  inject: () => void must(node("manager-1"), "volume stop", `gluster --mode=script volume stop ${VOLUME}`),
  shows: [{ resource: "gluster-volume", lines: [/~ STATUS\s*: "Started" => "Stopped"/] }],
  check: async () => {
    expect(onNode(node("manager-1"), `gluster --mode=script volume info ${VOLUME} | sed -n 's/^Status: //p'`)).toBe(
      "Started",
    );
    for (const n of inventory().nodes)
      expect(must(n, "ls", `timeout 10 ls ${MOUNT}/ >/dev/null && echo ok`)).toBe("ok");
    // The apps lost their files for a moment; Swarm restarts them (waited for, and recorded).
    const t0 = Date.now();
    await waitFor("Ghost running again", 300, () =>
      /^ghost_ghost 1\/1/m.test(onNode(anyManager(), "docker service ls --format '{{.Name}} {{.Replicas}}'")),
    );
    report.set("ghostBackAfterVolumeStopSeconds", (Date.now() - t0) / 1000);
  },
};

// The drifts, in groups of different resources: each group made, shown, repaired and checked in
// one cycle (runDrifts), so the suite pays one refresh-and-repair per group, not per drift.

test("drift: worker-1 promoted, a label removed and drained, all by hand", () =>
  runDrifts(workerPromoted, labelRemoved, drained));

test("drift: worker-2 left the swarm and its volume unmounted; worker-1's hosts block edited", () =>
  runDrifts(workerLeft, unmounted, hostsEdited()));

test("drift: a brick node's peer detached (if glusterd lets it)", () => runDrifts(peerDetached));

test("drift: Ghost scaled to 3 and a Docker secret of Portainer's removed, by hand", () =>
  runDrifts(ghostScaled, secretRemoved));

test("drift: the Ghost stack removed by hand", () => runDrifts(ghostStackRemoved));

test("drift: the volume stopped", () => runDrifts(volumeStopped));

test("a node that cannot be reached is named, and its resources are left as they were", async () => {
  const n = node("worker-2");
  const t0 = Date.now();
  const row: Row = {
    drift: "worker-2 unreachable (container stopped)",
    diffShown: [],
    planned: [],
    repaired: "nothing needed",
    seconds: 0,
  };
  startRows([row]);
  lab("stop", n.container);
  try {
    const shown = previewRefreshDiff();
    row.showSeconds = shown.seconds;
    const warnings = readWarnings(shown.text);
    row.diffShown = [...new Set(warnings.map((w) => w.replace(/^.*?(refresh could not .*? on node \S+).*$/, "$1")))];
    expect(warnings.length).toBeGreaterThan(0);
    for (const w of warnings)
      expect(w).toMatch(/on node worker-2; left as it was in state: node worker-2 .*unreachable over SSH/);
    const blocks = diffBlocks(shown.text);
    // Nothing to update, create, replace or delete: the resources of worker-2 stay as they were.
    // (The stack reference to its own last update is read on every run: not a change.)
    row.planned = blocks.filter((b) => !["refresh", "same", "read"].includes(b.op)).map((b) => `${b.op} ${b.name}`);
    expect(row.planned).toEqual([]);
  } finally {
    lab("start", n.container);
  }
  await waitFor("worker-2 back", 300, () => backAfterRestart(n));
  expectNoDrift();
  row.seconds = (Date.now() - t0) / 1000;
  converged = true;
});

test("a restart of a manager that holds a brick needs nothing", () => restartRow("manager-3", "manager, brick"));

test("a restart of the first manager, the first brick node, needs nothing", () =>
  restartRow("manager-1", "first manager, first brick and volfile server"));

// The suite ends its cluster, alone or as the last of CI's chain (apps, security, drift): the
// destroy removes the stacks and the swarm from every node.
let destroyed = false;
test("destroy removes the stacks and leaves every node outside any swarm", () => {
  report.set("destroySeconds", cli.destroy());
  destroyed = true;
  for (const n of inventory().nodes) {
    expect(onNode(n, "docker info --format '{{.Swarm.LocalNodeState}}'")).toBe("inactive");
  }
});
