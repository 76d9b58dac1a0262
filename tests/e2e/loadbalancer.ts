/**
 * The lab's entry point: HAProxy (Debian's package, run by hand) in front of every node's
 * host-published Ghost port, configured by stacks/haproxy.ts and reloaded with `-sf` when the
 * node list changes; and a load loop that requests through it every 100 ms and counts failures.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { LbNode, renderHaproxyConfig } from "../../stacks/haproxy";

const HAPROXY = "/usr/sbin/haproxy";

/** A free TCP port on 127.0.0.1 (asked from the kernel). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export class LoadBalancer {
  readonly dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-lb-"));
  readonly cfgFile = path.join(this.dir, "haproxy.cfg");
  readonly pidFile = path.join(this.dir, "haproxy.pid");
  readonly socket = path.join(this.dir, "admin.sock");
  readonly stateFile = path.join(this.dir, "servers.state");
  /** Every HAProxy pid this harness started (old ones finish their connections after a reload). */
  private readonly pids = new Set<number>();
  reloads = 0;

  constructor(
    readonly port: number,
    readonly targetPort: number,
    readonly healthPath: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The config for these nodes (written to cfgFile by start/reload). */
  render(nodes: LbNode[]): string {
    return renderHaproxyConfig({
      bindAddress: "127.0.0.1",
      nodes,
      services: [
        {
          name: "ghost",
          listenPort: this.port,
          targetPort: this.targetPort,
          healthCheck: { path: this.healthPath, host: `127.0.0.1:${this.port}`, interMs: 1000, fall: 2, rise: 1 },
          // Ghost at 2 replicas: a post is known at once only to the process that wrote it.
          retryOnStatus: [404],
        },
      ],
      statsSocket: this.socket,
      serverStateFile: this.stateFile,
      // Right after a reload a new node counts as up until its checks fail: enough retries to
      // walk past every node that does not run a task.
      retries: Math.max(3, nodes.length),
    });
  }

  private launch(nodes: LbNode[], previous: number[]): void {
    fs.writeFileSync(this.cfgFile, this.render(nodes));
    const check = spawnSync(HAPROXY, ["-c", "-q", "-f", this.cfgFile], { encoding: "utf8" });
    if (check.status !== 0) throw new Error(`haproxy -c refused ${this.cfgFile}: ${check.stderr}${check.stdout}`);
    const args = ["-f", this.cfgFile, "-D", "-p", this.pidFile];
    if (previous.length > 0) args.push("-sf", ...previous.map(String));
    const r = spawnSync(HAPROXY, args, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`haproxy ${args.join(" ")} failed (${r.status}): ${r.stderr}${r.stdout}`);
    const pid = Number(fs.readFileSync(this.pidFile, "utf8").trim().split("\n")[0]);
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`haproxy wrote no pid to ${this.pidFile}`);
    this.pids.add(pid);
  }

  start(nodes: LbNode[]): void {
    this.launch(nodes, []);
  }

  /**
   * New config, new process; the old one (-sf) stops listening and finishes what it serves.
   * The servers' health is saved first (`show servers state`), so the new process knows which
   * nodes are down instead of finding out through failed requests.
   */
  async reload(nodes: LbNode[]): Promise<void> {
    fs.writeFileSync(this.stateFile, await this.admin("show servers state"));
    const current = Number(fs.readFileSync(this.pidFile, "utf8").trim().split("\n")[0]);
    this.launch(nodes, [current]);
    this.reloads++;
  }

  /** One command on the admin socket; its answer. */
  admin(command: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const c = net.createConnection(this.socket);
      let out = "";
      c.on("connect", () => c.write(`${command}\n`));
      c.on("data", (d) => (out += d.toString()));
      c.on("end", () => resolve(out));
      c.on("error", reject);
      c.setTimeout(3000, () => c.destroy(new Error("admin socket timed out")));
    });
  }

  /** `show stat` through the admin socket: server name -> status (UP, DOWN, ...). */
  async serverStatus(): Promise<Record<string, string>> {
    const text = await this.admin("show stat");
    const result: Record<string, string> = {};
    for (const line of text.split("\n")) {
      const f = line.split(",");
      if (f[0] === "ghost" && f[1] && f[1] !== "FRONTEND" && f[1] !== "BACKEND") result[f[1]] = f[17] ?? "";
    }
    return result;
  }

  /** Stops only the processes this harness started, by pid. */
  stop(): void {
    for (const pid of this.pids) {
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    this.pids.clear();
  }
}

export interface LoadResult {
  seconds: number;
  sent: number;
  failed: number;
  /** From the first failed request to the end of the last one; 0 without failures. */
  errorWindowSeconds: number;
  /** A few failures, for the report: offset (s), status or error. */
  failures: string[];
}

/**
 * One GET every `intervalMs` through the load balancer, each on a fresh connection (a reload
 * must not turn a kept-alive connection into a counted failure), without waiting for the previous
 * one. Bounded in count and time: it stops itself after `maxRequests` or `maxSeconds`.
 */
export class LoadLoop {
  private timer: NodeJS.Timeout | undefined;
  private readonly inflight = new Set<Promise<void>>();
  private t0 = 0;
  private sent = 0;
  private failed = 0;
  private firstFailure = -1;
  private lastFailureEnd = -1;
  private failures: string[] = [];

  constructor(
    readonly url: string,
    readonly ok: (status: number, body: string) => boolean,
    readonly opts: { intervalMs?: number; maxRequests?: number; maxSeconds?: number; timeoutMs?: number } = {},
  ) {}

  start(): void {
    this.t0 = Date.now();
    const interval = this.opts.intervalMs ?? 100;
    const maxRequests = this.opts.maxRequests ?? 30_000;
    const maxMs = (this.opts.maxSeconds ?? 3600) * 1000;
    this.timer = setInterval(() => {
      if (this.sent >= maxRequests || Date.now() - this.t0 >= maxMs) {
        clearInterval(this.timer);
        return;
      }
      const p = this.one().finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }, interval);
  }

  private async one(): Promise<void> {
    this.sent++;
    const started = Date.now();
    const fail = (what: string) => {
      this.failed++;
      if (this.firstFailure < 0) this.firstFailure = started;
      this.lastFailureEnd = Math.max(this.lastFailureEnd, Date.now());
      if (this.failures.length < 20) this.failures.push(`+${((started - this.t0) / 1000).toFixed(1)}s ${what}`);
    };
    try {
      const { status, body } = await get(this.url, this.opts.timeoutMs ?? 20_000);
      if (!this.ok(status, body)) fail(`status ${status}`);
    } catch (err) {
      fail(err instanceof Error ? err.message : String(err));
    }
  }

  /** Stops sending, waits for the requests in flight, returns the counts. */
  async stop(): Promise<LoadResult> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.inflight]);
    return {
      seconds: (Date.now() - this.t0) / 1000,
      sent: this.sent,
      failed: this.failed,
      errorWindowSeconds: this.failed === 0 ? 0 : (this.lastFailureEnd - this.firstFailure) / 1000,
      failures: this.failures,
    };
  }
}

function get(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { Connection: "close" }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}
