/**
 * A load loop for the lab suites: one GET every 100 ms through the cluster's front door, each on
 * a new connection, counting the failures and the window they span.
 */
import * as http from "http";
import * as https from "https";

export interface LoadResult {
  seconds: number;
  sent: number;
  failed: number;
  /** From the first failed request to the end of the last one; 0 without failures. */
  errorWindowSeconds: number;
  /** A few failures, for the report: offset (s), status or error. */
  failures: string[];
}

/** One request of the loop: when it was sent (ms timestamp), whether it was served, and if not, why. */
export interface LoadRequest {
  at: number;
  ok: boolean;
  what?: string;
}

/**
 * One GET every `intervalMs`, each on a fresh connection (a kept-alive connection to a node that
 * left would count as a failure of the test's, not of the cluster), without waiting for the
 * previous one. Bounded in count and time: it stops itself after `maxRequests` or `maxSeconds`.
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
    readonly opts: {
      intervalMs?: number;
      maxRequests?: number;
      maxSeconds?: number;
      timeoutMs?: number;
      /** For an https URL: the certificates to trust (the front door's root), instead of the system's. */
      ca?: string[];
      /** When given, every request is appended to it (to read failures against other events' times). */
      log?: LoadRequest[];
    } = {},
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
    const entry: LoadRequest = { at: started, ok: true };
    this.opts.log?.push(entry);
    const fail = (what: string) => {
      entry.ok = false;
      entry.what = what;
      this.failed++;
      if (this.firstFailure < 0) this.firstFailure = started;
      this.lastFailureEnd = Math.max(this.lastFailureEnd, Date.now());
      if (this.failures.length < 20) this.failures.push(`+${((started - this.t0) / 1000).toFixed(1)}s ${what}`);
    };
    try {
      const { status, body } = await get(this.url, this.opts.timeoutMs ?? 20_000, this.opts.ca);
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

function get(url: string, timeoutMs: number, ca?: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const options = { agent: false as const, headers: { Connection: "close" }, timeout: timeoutMs };
    const done = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    };
    const req = url.startsWith("https:") ? https.get(url, { ...options, ca }, done) : http.get(url, options, done);
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}
