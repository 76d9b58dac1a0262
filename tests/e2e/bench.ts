/**
 * `npm run bench`: infrastructure converge (hosts, swarm, Gluster, mounts; apps off) on lab
 * nodes with Docker preinstalled, for 3, 5 and 9 nodes; the no-op `up`; adding one node to 5.
 * Prints a table and writes reports/bench-latest.json. Numbers, not pass/fail: the only checks
 * are the functional ones a number would be meaningless without (the no-op ran nothing, the
 * added node was the only one touched).
 */
import * as fs from "fs";
import { changes, engineBin, inventory, lab, labConfig, LabNode, PulumiCli, Report, sshLogins } from "./lib";

interface Row {
  nodes: number;
  up: number;
  noop: number;
  noopRanNothing: boolean;
  addNode?: number;
  addTouchedOnlyNewNode?: boolean;
  destroy: number;
}

function measure(managers: number, workers: number, bin: string, withAdd: boolean): Row {
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
    if (withAdd) {
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
  const lines = [
    "nodes | full up (s) | no-op up (s) | no-op/full | no-op ran nothing | destroy (s)",
    ...rows.map(
      (r) =>
        `${r.nodes} | ${r.up.toFixed(1)} | ${r.noop.toFixed(1)} | ${pct(r.noop, r.up)} | ${r.noopRanNothing} | ${r.destroy.toFixed(1)}`,
    ),
    "",
    `T(9)/T(3) = ${(r9.up / r3.up).toFixed(2)}   (target <= 1.3)`,
    `5 nodes, Docker preinstalled: converge ${r5.up.toFixed(1)} s   (target <= 15 s)`,
    `adding a 6th node: ${r5.addNode!.toFixed(1)} s = ${pct(r5.addNode!, r5.up)} of a full converge (target < 30%), only that node's resources changed and no other node but the first manager (which records its role and labels) had an SSH session: ${r5.addTouchedOnlyNewNode}`,
    `no-op up: ${pct(r5.noop, r5.up)} of a full converge at 5 nodes (target < 20%)`,
  ];
  report.set("rows", rows);
  report.set("ratio9to3", r9.up / r3.up);
  report.set("table", lines);
  const file = report.write();
  console.log(lines.join("\n"));
  console.log(`\nreport: ${file}`);
}

main();
