/**
 * `npm run bench`: infrastructure converge (hosts, swarm, Gluster, mounts; apps off) on lab
 * nodes with Docker preinstalled, for 3, 5 and 9 nodes; the no-op `up`; at 5 nodes a refresh
 * with nothing drifted, an `up --refresh` repairing one drifted node, and adding one node.
 * Prints a table and writes reports/bench-latest.json. Numbers, not pass/fail: the only checks
 * are the functional ones a number would be meaningless without (the no-op ran nothing, the
 * repair and the added node touched only their node).
 */
import * as fs from "fs";
import {
  changes,
  engineBin,
  Inventory,
  inventory,
  lab,
  labConfig,
  LabNode,
  onNode,
  PulumiCli,
  Report,
  sshLogins,
} from "./lib";

/** The engine and Node.js start: a no-op `up` cannot go much below this on these machines. */
const FLOOR_SECONDS = 3.0;

/** Where the lab's nodes mount the volume (Pulumi.yaml's gluster.mountPath default). */
const MOUNT = "/mnt/swarmcloud";

interface Row {
  nodes: number;
  up: number;
  noop: number;
  noopRanNothing: boolean;
  addNode?: number;
  addTouchedOnlyNewNode?: boolean;
  refresh?: RefreshFigures;
  destroy: number;
}

interface RefreshFigures {
  /** `pulumi refresh --yes` with nothing drifted: seconds, and SSH sessions it opened per node. */
  noDriftSeconds: number;
  noDriftSessionsPerNode: Record<string, number>;
  noDriftChangedNothing: boolean;
  /** worker-1's mount taken away by hand, then `pulumi up --refresh`. */
  repairSeconds: number;
  repairPlanned: string[];
  repairSessionsPerNode: Record<string, number>;
  repairTouchedOnlyDriftedNode: boolean;
  repairedMountAnswers: boolean;
}

/** SSH sessions each node saw while `run` ran, by node name. */
function sessionsDuring(inv: Inventory, run: () => void): Record<string, number> {
  const before = inv.nodes.map(sshLogins);
  run();
  return Object.fromEntries(inv.nodes.map((n, i) => [n.name, sshLogins(n) - before[i]!]));
}

/**
 * At 5 nodes, after the no-op: a refresh with nothing drifted (one session per node at most, no
 * change), then the volume unmounted on worker-1 by hand and repaired by `up --refresh`: the
 * planned changes must all be worker-1's, and no other node may see more than the refresh's one
 * session.
 */
function measureRefresh(cli: PulumiCli, inv: Inventory): RefreshFigures {
  let noDriftSeconds = 0;
  let refreshOut = "";
  const noDriftSessionsPerNode = sessionsDuring(inv, () => {
    const t0 = Date.now();
    refreshOut = cli.must(["refresh", "--yes", "--skip-preview", "--parallel", "64"]);
    noDriftSeconds = (Date.now() - t0) / 1000;
  });
  const noDriftChangedNothing = !/\b\d+ (updated|deleted|created)\b/.test(refreshOut);

  const drifted = inv.nodes.find((n) => n.name === "worker-1")!;
  onNode(drifted, `umount -l ${MOUNT}`);
  // The refresh reads every resource (op "refresh"); what it plans to change is the rest.
  const repairPlanned = changes(cli.preview(["--refresh"]).steps).filter((c) => !c.startsWith("refresh "));
  let repairSeconds = 0;
  const repairSessionsPerNode = sessionsDuring(inv, () => {
    repairSeconds = cli.up(["--refresh"]).seconds;
  });
  const repairedMountAnswers = /ok$/.test(
    onNode(drifted, `mountpoint -q ${MOUNT} && ls ${MOUNT}/ >/dev/null && echo ok`),
  );
  const repairTouchedOnlyDriftedNode =
    repairPlanned.length > 0 &&
    repairPlanned.every((c) => c.includes(drifted.name)) &&
    Object.entries(repairSessionsPerNode).every(([name, n]) => name === drifted.name || n <= 1);
  return {
    noDriftSeconds,
    noDriftSessionsPerNode,
    noDriftChangedNothing,
    repairSeconds,
    repairPlanned,
    repairSessionsPerNode,
    repairTouchedOnlyDriftedNode,
    repairedMountAnswers,
  };
}

function measure(managers: number, workers: number, bin: string, withDayTwo: boolean): Row {
  lab("down");
  lab("up", String(managers), String(workers));
  let inv = inventory();
  const cli = new PulumiCli(`lab-bench-${managers + workers}`, bin);
  try {
    cli.init();
    cli.setConfig(labConfig(inv, { apps: false }));
    cli.setSecret("sshPrivateKey", fs.readFileSync(inv.privateKeyPath, "utf8"));
    const up = cli.up().seconds;
    const before = inv.nodes.map(sshLogins);
    const noop = cli.up(["--expect-no-changes"]).seconds;
    const noopRanNothing = JSON.stringify(inv.nodes.map(sshLogins)) === JSON.stringify(before);
    const row: Row = { nodes: inv.nodes.length, up, noop, noopRanNothing, destroy: 0 };
    if (withDayTwo) {
      row.refresh = measureRefresh(cli, inv);
      lab("add", `worker-${workers + 1}`, "worker");
      inv = inventory();
      const added: LabNode = inv.nodes.find((n) => n.name === `worker-${workers + 1}`)!;
      cli.setConfig(labConfig(inv, { apps: false }));
      const planned = changes(cli.preview().steps);
      // The first manager records the new node's role and labels (manager-side work for it);
      // no other node may see an SSH session.
      const others = inv.nodes.filter((n) => n !== added && n.name !== "manager-1");
      const othersBefore = others.map(sshLogins);
      row.addNode = cli.up().seconds;
      row.addTouchedOnlyNewNode =
        planned.length > 0 &&
        planned.every((c) => c.includes(added.name)) &&
        JSON.stringify(others.map(sshLogins)) === JSON.stringify(othersBefore);
    }
    row.destroy = cli.destroy();
    return row;
  } finally {
    cli.run(["destroy", "--yes", "--skip-preview"]);
    cli.removeStack();
    lab("down");
  }
}

function main(): void {
  const bin = engineBin();
  lab("engine");
  lab("image");
  const report = new Report("bench");
  const rows = [measure(3, 0, bin, false), measure(3, 2, bin, true), measure(3, 6, bin, false)];
  const r3 = rows[0]!;
  const r5 = rows[1]!;
  const r9 = rows[2]!;
  const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(0)}%`;
  const perNode = (r: Row) => ((r.noop - FLOOR_SECONDS) / r.nodes).toFixed(2);
  const rf = r5.refresh!;
  const most = (m: Record<string, number>) => Math.max(...Object.values(m));
  const lines = [
    `nodes | full up (s) | no-op up (s) | no-op above the ${FLOOR_SECONDS} s floor, per node (s) | no-op ran nothing | destroy (s)`,
    ...rows.map(
      (r) =>
        `${r.nodes} | ${r.up.toFixed(1)} | ${r.noop.toFixed(1)} | ${perNode(r)} | ${r.noopRanNothing} | ${r.destroy.toFixed(1)}`,
    ),
    "",
    `T(9)/T(3) = ${(r9.up / r3.up).toFixed(2)}   (target <= 1.3)`,
    `5 nodes, Docker preinstalled: converge ${r5.up.toFixed(1)} s   (target <= 15 s)`,
    `adding a 6th node: ${r5.addNode!.toFixed(1)} s = ${pct(r5.addNode!, r5.up)} of a full converge (target < 30%), only that node's resources changed and no other node but the first manager (which records its role and labels) had an SSH session: ${r5.addTouchedOnlyNewNode}`,
    `no-op up: ${pct(r5.noop, r5.up)} of a full converge at 5 nodes; above the floor per node: ${perNode(r3)} s at 3, ${perNode(r5)} s at 5, ${perNode(r9)} s at 9 (target <= 0.05 s)`,
    `refresh, nothing drifted, 5 nodes: ${rf.noDriftSeconds.toFixed(1)} s, at most ${most(rf.noDriftSessionsPerNode)} SSH session(s) per node (target <= 1), changed nothing: ${rf.noDriftChangedNothing}`,
    `up --refresh repairing worker-1's unmounted volume: ${rf.repairSeconds.toFixed(1)} s, planned [${rf.repairPlanned.join(", ")}], sessions ${JSON.stringify(rf.repairSessionsPerNode)}, only worker-1 touched: ${rf.repairTouchedOnlyDriftedNode}, mount answers again: ${rf.repairedMountAnswers}`,
  ];
  report.set("rows", rows);
  report.set("ratio9to3", r9.up / r3.up);
  report.set("table", lines);
  const file = report.write();
  console.log(lines.join("\n"));
  console.log(`\nreport: ${file}`);
}

main();
