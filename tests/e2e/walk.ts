/**
 * Reading a node upgrade walk (issue 20, (c)) against a load loop: a watcher that asks a manager
 * every second how the swarm and the volume stand, each node's window of the walk (from the
 * `pulumi up`'s own progress lines, or, where they name none, from the watcher's samples), and
 * per node the requests sent and failed in its window.
 */
import { LoadRequest } from "./load";

/** A manager's view of the swarm at one moment. */
export interface SwarmSample {
  at: number;
  /** node name -> "<status> <availability> <manager status>" */
  nodes: Record<string, string>;
  /** Managers Raft counts in: Leader or Reachable (their node status aside: a new leader lists every node Unknown for a moment). */
  reachableManagers: number;
  /** The node running the database's task. */
  db: string;
  bricksOnline: number;
  /** "<entries to heal> <bricks not answering>" */
  heal: string;
}

/** Runs COMMAND on a node (by address) and gives its exit code and output; never throws. */
export type Ssh = (address: string, command: string, timeoutS?: number) => Promise<{ code: number; out: string }>;

const watchCommand = (volume: string) =>
  [
    "docker node ls --format '{{.Self}} {{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}'",
    "echo ---",
    "docker service ps ghost_db --filter desired-state=running --format '{{.Node}} {{.CurrentState}}' | awk '/ Running / { print $1 }'",
    "echo ---",
    `gluster --mode=script volume status ${volume} detail 2>/dev/null | grep -c '^Online.*: Y' || true`,
    "echo ---",
    `gluster --mode=script volume heal ${volume} info 2>/dev/null | awk -F': ' '/^Number of entries:/ { if ($2 ~ /^[0-9]+$/) n += $2; else d++ } END { print n + 0, d + 0 }'`,
  ].join("; ");

/**
 * Every second, one sample from the leader: the first manager (starting with the last that was)
 * that says it leads. A manager just back from its reboot answers before it has caught up (the
 * first walk in the resilience suite sampled one that listed no manager reachable and one brick
 * online while the leader saw two and three), so only the leader's view counts; a second with no
 * leader (an election) gives no sample.
 */
export class SwarmWatcher {
  readonly samples: SwarmSample[] = [];
  private running = false;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly managers: string[],
    private readonly ssh: Ssh,
    private readonly volume: string,
  ) {}

  start(): void {
    this.running = true;
    this.done = this.loop();
  }

  async stop(): Promise<SwarmSample[]> {
    this.running = false;
    await this.done;
    return this.samples;
  }

  private async loop(): Promise<void> {
    let first = 0;
    while (this.running) {
      const started = Date.now();
      for (let k = 0; k < this.managers.length; k++) {
        const i = (first + k) % this.managers.length;
        const r = await this.ssh(this.managers[i]!, watchCommand(this.volume), 10);
        const [nodeLines = "", db = "", bricks = "", heal = ""] = r.out.split("---\n");
        if (r.code !== 0 || !nodeLines.trim()) continue;
        first = i;
        const nodes: Record<string, string> = {};
        let leads = false;
        for (const line of nodeLines.trim().split("\n")) {
          const [self = "", name = "", ...rest] = line.trim().split(/\s+/);
          nodes[name] = rest.join(" ");
          if (self === "true" && / Leader$/.test(nodes[name])) leads = true;
        }
        if (!leads) continue;
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
}

export interface Window {
  start: number;
  end: number;
}

/**
 * Each node's window from a `pulumi up`'s output whose lines are stamped "+S.Ss " from ORIGIN (a
 * ms timestamp): from its first upgrade step starting to its `return` step done.
 */
export function stepWindows(output: string, origin: number, stack: string): Record<string, Window> {
  const re = new RegExp(
    `^\\+(\\d+(?:\\.\\d+)?)s .*${stack}-upgrade-((?:manager|worker)-\\d+)-(release|drain|upgrade|return)\\s+(updating|updated|creating|created)`,
  );
  const w: Record<string, Window> = {};
  for (const line of output.split("\n")) {
    const m = re.exec(line);
    if (!m) continue;
    const at = origin + Number(m[1]) * 1000;
    const [, , node = "", step = "", state = ""] = m;
    const entry = (w[node] ??= { start: at, end: at });
    entry.start = Math.min(entry.start, at);
    if (step === "return" && (state === "updated" || state === "created")) entry.end = at;
  }
  return w;
}

/** Each node's window as the watcher saw it: from the first sample where it is not "Ready Active" to the first after that where it is. */
export function watchedWindows(samples: SwarmSample[], names: string[]): Record<string, Window> {
  const w: Record<string, Window> = {};
  for (const name of names) {
    const out = samples.findIndex((s) => !/^Ready Active/.test(s.nodes[name] ?? ""));
    if (out < 0) continue;
    const back = samples.findIndex((s, i) => i > out && /^Ready Active/.test(s.nodes[name] ?? ""));
    w[name] = { start: samples[out]!.at, end: samples[back < 0 ? samples.length - 1 : back]!.at };
  }
  return w;
}

/** Per node of the walk: its window's seconds, the requests sent and failed in it, and what the watcher saw then. */
export function perNode(
  names: string[],
  windows: Record<string, Window>,
  requests: LoadRequest[],
  samples: SwarmSample[],
) {
  return names.map((name) => {
    const win = windows[name];
    if (!win) return { name, missing: true as const };
    const inside = requests.filter((r) => r.at >= win.start && r.at <= win.end);
    const during = samples.filter((s) => s.at >= win.start && s.at <= win.end);
    const atStart = samples.filter((s) => s.at <= win.start).pop() ?? samples[0];
    return {
      name,
      seconds: Number(((win.end - win.start) / 1000).toFixed(1)),
      sent: inside.length,
      failed: inside.filter((r) => !r.ok).length,
      /** From the first failed request's start to the last one's, in seconds (0 without failures). */
      errorSpanSeconds: errorSpan(inside),
      /** Whether the database ran on it when its upgrade began. */
      ranDatabase: atStart?.db === name,
      minReachableManagers: during.length ? Math.min(...during.map((s) => s.reachableManagers)) : undefined,
      minBricksOnline: during.length ? Math.min(...during.map((s) => s.bricksOnline)) : undefined,
      databaseOn: [...new Set(during.map((s) => s.db))],
      failures: inside
        .filter((r) => !r.ok)
        .slice(0, 5)
        .map((r) => `+${((r.at - win.start) / 1000).toFixed(1)}s ${r.what ?? ""}`),
    };
  });
}

/**
 * The lowest level of a count held over two samples in a row (about 2 s): a single sample can
 * catch Raft or glusterd mid-change, as the replacements' watch found; every lower sample is
 * still in the report.
 */
export function heldMin(values: number[]): number {
  let min = Infinity;
  for (let i = 1; i < values.length; i++) min = Math.min(min, Math.max(values[i - 1]!, values[i]!));
  return values.length === 1 ? values[0]! : min;
}

function errorSpan(requests: LoadRequest[]): number {
  const failed = requests.filter((r) => !r.ok).map((r) => r.at);
  return failed.length === 0 ? 0 : (Math.max(...failed) - Math.min(...failed)) / 1000;
}
