/**
 * Node upgrades, measured (issue 20, items 2 and 3 (c)): 3 managers (the Gluster bricks, the
 * database's nodes) + 2 workers (labelled edge=true: keepalived's floating address and Caddy),
 * Ghost at 2 replicas behind the product's front door, a load loop asking for the home page over
 * HTTPS at the floating address every 100 ms, each on a new connection.
 *
 * swarmcloud:upgrade.run is set on the first `pulumi up` (the nodes are new: nothing is walked),
 * then changed: `pulumi up` walks every node, one at a time, managers first. In the lab the
 * package step is off (the nodes do not reach a Debian mirror) and every node reboots (reboot:
 * always): the node image's `reboot` ends its container, whose restart policy starts it again,
 * and the program waits over SSH for its return. Recorded per node (window: from its first step
 * starting to its last step done, stamped from the up's own progress lines): seconds, requests
 * sent and failed, whether the database ran there; from a watcher asking a manager every second:
 * the managers reachable and the bricks online throughout. Asserted: one node at a time in walk
 * order, every node really restarted, 0 failed requests in the window of every node that did not
 * run the database, at least 2 of 3 managers reachable and 2 of 3 bricks online at every sample.
 * Then a `pulumi up` with nothing changed opens no SSH session; then a walk whose first node
 * fails (apt-get made to fail there) stops at that node, naming it, with the other nodes untouched.
 * `npm run test:node-upgrades`.
 */
import { execFile, spawn } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as path from "path";
import {
  changes,
  diagnostics,
  engineBin,
  inventory,
  Inventory,
  lab,
  LAB_IMAGES,
  LAB_PASSWORDS,
  LAB_OWNER,
  labConfig,
  onNode,
  PulumiCli,
  REPO,
  Report,
  sh,
  sshLogins,
  waitFor,
} from "./lib";

const STACK = "lab-nodeup";
const VOLUME = "swarmcloud";
const EDGE_NODES = ["worker-1", "worker-2"];
const WALK = ["manager-1", "manager-2", "manager-3", "worker-1", "worker-2"];
const WITH_EDGE = { ...process.env, WITH_EDGE: "1" };
const BUILD = path.join(REPO, "tests/lab/images/build.sh");
const report = new Report("node-upgrades");
const t0 = Date.now();

let cli: PulumiCli;
let inv: Inventory;
const door = { url: "", vip: "", root: "" };
/** Set once the walk has passed: the later tests need its cluster. */
let walked = false;

// ------------------------------------------------------------------------------------------
// The load: one GET of the home page every 100 ms, each request's start and outcome kept.

interface Request {
  at: number;
  ok: boolean;
  what?: string;
}

function get(timeoutMs = 20_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      `${door.url}/`,
      { ca: [door.root], agent: false, headers: { Connection: "close" }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

const served = (r: { status: number; body: string }) => r.status === 200 && r.body.includes(LAB_OWNER.blogTitle);

class Load {
  readonly requests: Request[] = [];
  private timer?: NodeJS.Timeout;
  private readonly inflight = new Set<Promise<void>>();
  start(): void {
    this.timer = setInterval(() => {
      const r: Request = { at: Date.now(), ok: false };
      this.requests.push(r);
      const p = get()
        .then((res) => {
          r.ok = served(res);
          if (!r.ok) r.what = `status ${res.status}`;
        })
        .catch((err: unknown) => {
          r.what = err instanceof Error ? err.message : String(err);
        })
        .finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }, 100);
  }
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all([...this.inflight]);
  }
}

// ------------------------------------------------------------------------------------------
// The watcher: every second, a manager's view of the swarm, the database's node and the bricks.

interface Sample {
  at: number;
  /** name -> "<status> <availability> <manager status>" */
  nodes: Record<string, string>;
  reachableManagers: number;
  db: string;
  bricksOnline: number;
  /** "<entries to heal> <bricks not answering>" */
  heal: string;
}

function sshAsync(address: string, command: string, timeoutS = 10): Promise<{ code: number; out: string }> {
  const args = [
    ...["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"],
    ...["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=2", "-i", inv.privateKeyPath, `root@${address}`, command],
  ];
  return new Promise((resolve) => {
    execFile("ssh", args, { timeout: timeoutS * 1000 }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === "number"
          ? (err as { code: number }).code
          : -1
        : 0;
      resolve({ code, out: `${stdout}${code === 0 ? "" : stderr}` });
    });
  });
}

const WATCH = [
  "docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}'",
  "echo ---",
  "docker service ps ghost_db --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' | awk '/ Running / { print $1 }'",
  "echo ---",
  `gluster --mode=script volume status ${VOLUME} detail 2>/dev/null | grep -c '^Online.*: Y' || true`,
  "echo ---",
  `gluster --mode=script volume heal ${VOLUME} info 2>/dev/null | awk -F': ' '/^Number of entries:/ { if ($2 ~ /^[0-9]+$/) n += $2; else d++ } END { print n + 0, d + 0 }'`,
].join("; ");

class Watcher {
  readonly samples: Sample[] = [];
  private running = false;
  private done?: Promise<void>;
  start(): void {
    this.running = true;
    this.done = this.loop();
  }
  private async loop(): Promise<void> {
    const managers = inv.nodes.filter((n) => n.role === "manager");
    let i = 0;
    while (this.running) {
      const started = Date.now();
      for (let k = 0; k < managers.length; k++) {
        const m = managers[(i + k) % managers.length]!;
        const r = await sshAsync(m.address, WATCH);
        const [nodeLines = "", db = "", bricks = "", heal = ""] = r.out.split("---\n");
        if (r.code !== 0 || !nodeLines.trim()) continue;
        i = (i + k) % managers.length;
        const nodes: Record<string, string> = {};
        for (const line of nodeLines.trim().split("\n")) {
          const [name = "", ...rest] = line.trim().split(/\s+/);
          nodes[name] = rest.join(" ");
        }
        this.samples.push({
          at: started,
          nodes,
          reachableManagers: Object.values(nodes).filter((v) => / (Leader|Reachable)$/.test(v)).length,
          db: db.trim().split("\n")[0] ?? "",
          bricksOnline: Number(bricks.trim()) || 0,
          heal: heal.trim(),
        });
        break;
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))));
    }
  }
  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

// ------------------------------------------------------------------------------------------

/** The lab config: Ghost at 2 replicas behind the front door on the two workers; `upgrade` as given. */
function configure(upgrade?: Record<string, unknown>): void {
  const labels = Object.fromEntries(EDGE_NODES.map((n) => [n, { edge: "true" }]));
  const cfg = labConfig(inv, { apps: true, ghostReplicas: 2, labels });
  cfg.edge = { enabled: true, address: door.vip, holders: "labelled", image: LAB_IMAGES.caddy };
  // Not on the measured path (the load asks Ghost), and one stack less to deploy and move.
  cfg.portainer = { enabled: false };
  if (upgrade) cfg.upgrade = upgrade;
  cli.setConfig(cfg);
}

/** `pulumi up` without blocking the event loop; each chunk of its output stamped with the time it came. */
function upAsync(): Promise<{ code: number; seconds: number; output: string; lines: { at: number; text: string }[] }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const args = ["up", "--yes", "--skip-preview", "--parallel", "64", "--stack", cli.stack, "--non-interactive"];
    const p = spawn("pulumi", args, { cwd: REPO, env: cli.env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const lines: { at: number; text: string }[] = [];
    const take = (d: Buffer) => {
      const text = d.toString("utf8");
      output += text;
      for (const line of text.split("\n")) if (line.trim()) lines.push({ at: Date.now(), text: line });
    };
    p.stdout.on("data", take);
    p.stderr.on("data", take);
    p.on("error", reject);
    p.on("close", (code) => resolve({ code: code ?? -1, seconds: (Date.now() - started) / 1000, output, lines }));
  });
}

/** Each node's window: from its first upgrade step starting to its last one done, from the up's progress lines. */
function windows(lines: { at: number; text: string }[]): Record<string, { start: number; end: number }> {
  const re = new RegExp(
    `${STACK}-upgrade-((?:manager|worker)-\\d+)-(release|drain|upgrade|return)\\s+(updating|updated|creating|created)`,
  );
  const w: Record<string, { start: number; end: number }> = {};
  for (const { at, text } of lines) {
    const m = re.exec(text);
    if (!m) continue;
    const [, node = "", step = "", state = ""] = m;
    const entry = (w[node] ??= { start: at, end: at });
    entry.start = Math.min(entry.start, at);
    if (step === "return" && (state === "updated" || state === "created")) entry.end = at;
  }
  return w;
}

/**
 * Each node's window as the watcher saw it (when the up's progress lines name none): from the
 * first sample where it is not "Ready Active" to the first one after that where it is again.
 */
function watchedWindows(samples: Sample[]): Record<string, { start: number; end: number }> {
  const w: Record<string, { start: number; end: number }> = {};
  for (const name of WALK) {
    const out = samples.findIndex((s) => !/^Ready Active/.test(s.nodes[name] ?? ""));
    if (out < 0) continue;
    const back = samples.findIndex((s, i) => i > out && /^Ready Active/.test(s.nodes[name] ?? ""));
    w[name] = { start: samples[out]!.at, end: samples[back < 0 ? samples.length - 1 : back]!.at };
  }
  return w;
}

/** Failed requests per 5 seconds from `start`, as "<second>:<count>" for the buckets with any. */
function failedBy5s(requests: Request[], start: number): string[] {
  const buckets = new Map<number, number>();
  for (const r of requests.filter((x) => !x.ok)) {
    const b = Math.floor((r.at - start) / 5000) * 5;
    buckets.set(b, (buckets.get(b) ?? 0) + 1);
  }
  return [...buckets].map(([b, n]) => `${b}:${n}`);
}

/** Each lab node container's start time and restart count (a reboot restarts it). */
function containerStarts(): Record<string, string> {
  return Object.fromEntries(
    inv.nodes.map((n) => [
      n.name,
      sh("/usr/bin/docker", ["inspect", "-f", "{{.State.StartedAt}} {{.RestartCount}}", n.container]).stdout.trim(),
    ]),
  );
}

/** `docker node ls` as name -> "<status> <availability>", from a manager that answers. */
function nodeStates(): Record<string, string> {
  for (const m of inv.nodes.filter((n) => n.role === "manager")) {
    try {
      const out = onNode(m, "docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}'", inv);
      return Object.fromEntries(out.split("\n").map((l) => [l.split(" ")[0]!, l.split(" ").slice(1).join(" ")]));
    } catch {
      // the next manager
    }
  }
  throw new Error("no manager answers");
}

beforeAll(() => {
  const bin = engineBin();
  lab("engine");
  lab("image");
  const built = sh("bash", [BUILD, "all"], { env: WITH_EDGE });
  if (built.code !== 0) throw new Error(`lab images: ${built.stderr}${built.stdout}`);
  lab("down");
  lab("up", "3", "2");
  const loaded = sh("bash", [BUILD, "load-inventory"], { env: WITH_EDGE });
  if (loaded.code !== 0) throw new Error(`loading lab images: ${loaded.stderr}${loaded.stdout}`);
  inv = inventory();
  door.vip = `${inv.nodes[0]!.address.split(".").slice(0, 3).join(".")}.240`;
  door.url = `https://${door.vip}`;
  cli = new PulumiCli(STACK, bin);
  cli.init();
  configure({ run: "initial", packages: false, reboot: "always" });
  cli.setSecret("sshPrivateKey", fs.readFileSync(inv.privateKeyPath, "utf8"));
  for (const [k, v] of Object.entries(LAB_PASSWORDS)) cli.setSecret(k, v);
  report.set("setupSeconds", (Date.now() - t0) / 1000);
}, 3600_000);

afterAll(() => {
  report.set("suiteMinutes", Number(((Date.now() - t0) / 60_000).toFixed(1)));
  const file = report.write();
  console.log(`node-upgrades report: ${file}\n${JSON.stringify(report.data, null, 2)}`);
  if (cli && process.env.SWARMCLOUD_KEEP_LAB !== "1") cli.removeStack();
  if (process.env.SWARMCLOUD_KEEP_LAB !== "1") lab("down");
}, 900_000);

test("pulumi up: the cluster with upgrade.run set; new nodes are not walked", async () => {
  const before = containerStarts();
  const { seconds } = cli.up();
  report.set("upSeconds", seconds);
  door.root = String(cli.outputs().edgeRootCertificate ?? "");
  expect(door.root).toContain("BEGIN CERTIFICATE");
  await waitFor("Ghost through the front door", 600, async () => served(await get(10_000)));
  // The steps were made, and no node restarted: a new cluster is not walked.
  expect(containerStarts()).toEqual(before);
});

test("preview of a new run: the walk's order, and only the upgrade steps change", () => {
  configure({ run: "walk-1", packages: false, reboot: "always" });
  const out = cli.must(["preview", "--json", "--parallel", "64"]);
  const parsed = JSON.parse(out) as { steps?: { op: string; urn: string }[]; diagnostics?: { message?: string }[] };
  const said = (parsed.diagnostics ?? []).map((d) => d.message ?? "").find((m) => m.includes("node upgrade run"));
  report.set("previewWalk", said?.trim());
  expect(said).toContain(WALK.join(" -> "));
  const changed = changes(parsed.steps ?? []);
  expect(changed.every((c) => /^update lab-nodeup-upgrade-/.test(c))).toBe(true);
  // Per node: drain, upgrade, return; the edge nodes also give the address away first.
  expect(changed).toHaveLength(WALK.length * 3 + EDGE_NODES.length);
});

test("a new run walks every node one at a time under load: 0 failed requests but on the database's nodes, quorum and bricks kept", async () => {
  const before = containerStarts();
  const load = new Load();
  const watcher = new Watcher();
  watcher.start();
  load.start();
  await new Promise((r) => setTimeout(r, 5_000));
  const up = await upAsync();
  await new Promise((r) => setTimeout(r, 5_000));
  await load.stop();
  await watcher.stop();
  report.set("walkUpSeconds", up.seconds);
  if (up.code !== 0) throw new Error(`pulumi up failed (${up.code}):\n${diagnostics(up.output)}`);

  const samples = watcher.samples;
  const w = { ...watchedWindows(samples), ...windows(up.lines) };
  report.set("windowsFrom", Object.keys(windows(up.lines)).length === WALK.length ? "pulumi" : "watcher");
  const perNode = WALK.map((name) => {
    const win = w[name];
    if (!win) return { name, missing: true };
    const inside = load.requests.filter((r) => r.at >= win.start && r.at <= win.end);
    const atStart = samples.filter((s) => s.at <= win.start).pop() ?? samples[0];
    const during = samples.filter((s) => s.at >= win.start && s.at <= win.end);
    return {
      name,
      seconds: Number(((win.end - win.start) / 1000).toFixed(1)),
      sent: inside.length,
      failed: inside.filter((r) => !r.ok).length,
      // Where the database ran when the node's upgrade began.
      ranDatabase: atStart?.db === name,
      downSamples: during.filter((s) => !/^Ready /.test(s.nodes[name] ?? "")).length,
      minReachableManagers: Math.min(...during.map((s) => s.reachableManagers)),
      minBricksOnline: Math.min(...during.map((s) => s.bricksOnline)),
      databaseOn: [...new Set(during.map((s) => s.db))],
      heal: [...new Set(during.map((s) => s.heal))].slice(0, 10),
      // Failed requests per 5 s of the window.
      failedBy5s: failedBy5s(inside, win.start),
      failures: inside
        .filter((r) => !r.ok)
        .slice(0, 5)
        .map((r) => `+${((r.at - win.start) / 1000).toFixed(1)}s ${r.what}`),
      start: win.start,
      end: win.end,
    };
  });
  const inWindow = (at: number) => Object.values(w).some((x) => at >= x.start && at <= x.end);
  const outside = load.requests.filter((r) => !inWindow(r.at));
  const summary = {
    walkSeconds: up.seconds,
    nodes: perNode.map(({ start: _s, end: _e, ...rest }) => rest),
    sent: load.requests.length,
    failed: load.requests.filter((r) => !r.ok).length,
    outsideWindows: { sent: outside.length, failed: outside.filter((r) => !r.ok).length },
    samples: samples.length,
    minReachableManagers: Math.min(...samples.map((s) => s.reachableManagers)),
    minBricksOnline: Math.min(...samples.map((s) => s.bricksOnline)),
    // Samples with fewer than 3 managers reachable, and which node was being upgraded then.
    quorumDips: samples
      .filter((s) => s.reachableManagers < 3)
      .map((s) => perNode.find((n) => "start" in n && s.at >= n.start! && s.at <= n.end!)?.name ?? "outside"),
    restarts: { before, after: containerStarts() },
  };
  report.set("walk", summary);
  report.write();
  console.log(`node-upgrades walk: ${JSON.stringify(summary, null, 2)}`);

  // One node at a time, in walk order: each window starts after the one before ended.
  expect(perNode.filter((n) => "missing" in n)).toEqual([]);
  for (let i = 1; i < WALK.length; i++) {
    expect(w[WALK[i]!]!.start).toBeGreaterThanOrEqual(w[WALK[i - 1]!]!.end);
  }
  // Every node really went down and came back: its container restarted.
  for (const name of WALK) expect([name, summary.restarts.after[name]]).not.toEqual([name, before[name]]);
  // Quorum and bricks kept at every sample (3 managers, 3 bricks: one may be down).
  expect(samples.length).toBeGreaterThan(30);
  expect(summary.minReachableManagers).toBeGreaterThanOrEqual(2);
  expect(summary.quorumDips.filter((n) => !n.startsWith("manager-"))).toEqual([]);
  expect(summary.minBricksOnline).toBeGreaterThanOrEqual(2);
  // 0 failed requests while a node without the database was upgraded.
  for (const n of perNode) {
    if ("missing" in n || n.ranDatabase) continue;
    expect([n.name, n.failed, n.failures]).toEqual([n.name, 0, []]);
  }
  expect(load.requests.length).toBeGreaterThan(300);
  // Back as configured: every node ready and active.
  const states = nodeStates();
  for (const name of WALK) expect([name, states[name]]).toEqual([name, "Ready Active"]);
  walked = true;
}, 3600_000);

test("pulumi up with nothing changed runs nothing: no SSH session on any node", () => {
  expect(walked).toBe(true);
  const logins = Object.fromEntries(inv.nodes.map((n) => [n.name, sshLogins(n)]));
  const { seconds } = cli.up();
  report.set("noopUpSeconds", seconds);
  const after = Object.fromEntries(inv.nodes.map((n) => [n.name, sshLogins(n)]));
  expect(after).toEqual(logins);
});

test("a walk whose first node fails stops there, naming it; the other nodes are untouched", () => {
  expect(walked).toBe(true);
  const first = inv.nodes.find((n) => n.name === WALK[0])!;
  // apt-get fails on the first node of the walk (only there: the package step is on for this run).
  onNode(
    first,
    "mv /usr/bin/apt-get /usr/bin/apt-get.nodeup-suite && " +
      "printf '#!/bin/sh\\necho \"E: the node-upgrades suite made apt-get fail here\" >&2\\nexit 100\\n' >/usr/bin/apt-get && " +
      "chmod 755 /usr/bin/apt-get",
    inv,
  );
  const before = containerStarts();
  try {
    configure({ run: "walk-2", packages: true, reboot: "always" });
    const r = cli.tryUp();
    report.set("failedWalk", { seconds: r.seconds, error: diagnostics(r.output).slice(0, 2000) });
    expect(r.code).not.toBe(0);
    expect(diagnostics(r.output)).toContain(`node ${WALK[0]}: upgrade the node's packages and reboot it failed`);
    expect(diagnostics(r.output)).toContain(`apt-get update failed on ${WALK[0]}`);
    // No other node's step ran: no step of theirs was updated, none restarted or was drained.
    for (const name of WALK.slice(1)) {
      expect([name, new RegExp(`${STACK}-upgrade-${name}-\\w+\\s+updat`).test(r.output)]).toEqual([name, false]);
    }
    expect(containerStarts()).toEqual(before);
    const states = nodeStates();
    for (const name of WALK.slice(1)) expect([name, states[name]]).toEqual([name, "Ready Active"]);
    // The node that failed stays drained (no tasks go back to a node whose upgrade failed).
    expect(states[WALK[0]!]).toBe("Ready Drain");
  } finally {
    onNode(first, "mv -f /usr/bin/apt-get.nodeup-suite /usr/bin/apt-get", inv);
  }
});
