import * as pulumi from "@pulumi/pulumi";

/**
 * How the program reaches a node over SSH. The same shape as @pulumi/command's
 * `remote.ConnectionArgs`, so a node source can feed either.
 */
export interface SshConnection {
  /** Address or name SSH connects to. */
  host: pulumi.Input<string>;
  /** SSH port. Default 22. */
  port?: pulumi.Input<number>;
  /** Login user; scripts run through `sudo -n` unless it is root. Default `root`. */
  user?: pulumi.Input<string>;
  /** PEM/OpenSSH private key; keep it a secret. */
  privateKey: pulumi.Input<string>;
  /** Connection attempts before giving up (a freshly booted host needs a few). Default 10. */
  dialErrorLimit?: pulumi.Input<number>;
  /** Seconds one attempt may take. Default 15. */
  perDialTimeout?: pulumi.Input<number>;
}

export interface RemoteScriptArgs {
  /** Node name, used in error messages and progress. */
  node: pulumi.Input<string>;
  connection: pulumi.Input<SshConnection>;
  /** Tried in turn when `connection` does not answer (other managers, for manager-side work). */
  fallbackConnections?: pulumi.Input<pulumi.Input<SshConnection>[]>;
  /** On delete, succeed without running anything if no connection answers (the node is gone). Default false. */
  skipDeleteWhenUnreachable?: pulumi.Input<boolean>;
  /** Script run on create (and on any change when `update` is not given). Must be idempotent. Empty: nothing runs. */
  create: pulumi.Input<string>;
  /** Script run when `create`, `update`, `stdin` or `environment` change. Default: `create`. */
  update?: pulumi.Input<string>;
  /** Script run on delete. It should tolerate a node that already left. Default: nothing. */
  delete?: pulumi.Input<string>;
  /** Fed to the script's standard input: the way to pass secrets. Never stored in state. */
  stdin?: pulumi.Input<string>;
  /** Exported before the script runs (not for secrets). */
  environment?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Any change here replaces the resource (delete, then create). */
  triggers?: pulumi.Input<unknown[]>;
  /** Treat the script's output as a secret (join tokens, passwords). Default false. */
  secretStdout?: boolean;
  /** Seconds a script may run before it is stopped and reported. Default 900. */
  timeout?: pulumi.Input<number>;
}

/** What the provider keeps in state: never stdin, only a hash of it. */
interface Conn {
  host: string;
  port?: number;
  user?: string;
  privateKey: string;
  dialErrorLimit?: number;
  perDialTimeout?: number;
}

interface ScriptState {
  node: string;
  connection: Conn;
  fallbackConnections?: Conn[];
  skipDeleteWhenUnreachable?: boolean;
  create: string;
  update?: string;
  delete?: string;
  stdinHash?: string;
  environment?: Record<string, string>;
  triggers?: unknown[];
  timeout?: number;
  stdout: string;
}

type ScriptInputs = Omit<ScriptState, "stdout" | "stdinHash"> & { stdin?: string };

/** Inputs whose change re-runs the script in place. */
const RERUN_KEYS = ["create", "update", "stdinHash", "environment"] as const;

/**
 * The dynamic provider that runs scripts over SSH. Kept free of captured state: everything it
 * needs is required inside the functions, so Pulumi can serialize it into the state file.
 */
export const remoteScriptProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: ScriptState, news: ScriptInputs): Promise<pulumi.dynamic.DiffResult> {
    const { createHash } = require("crypto") as typeof import("crypto");
    const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
    const next: Record<string, unknown> = {
      ...news,
      stdinHash: news.stdin === undefined ? undefined : createHash("sha256").update(news.stdin).digest("hex"),
    };
    const changed = [...RERUN_KEYS, "delete", "node", "timeout"].filter(
      (k) => !same((olds as unknown as Record<string, unknown>)[k], next[k]),
    );
    if (!same(olds.connection, news.connection) || !same(olds.fallbackConnections, news.fallbackConnections)) {
      changed.push("connection");
    }
    if (!same(olds.skipDeleteWhenUnreachable, news.skipDeleteWhenUnreachable))
      changed.push("skipDeleteWhenUnreachable");
    const replaces = same(olds.triggers, news.triggers) ? [] : ["triggers"];
    return {
      changes: changed.length > 0 || replaces.length > 0,
      replaces,
      deleteBeforeReplace: true,
    };
  },

  async create(inputs: ScriptInputs): Promise<pulumi.dynamic.CreateResult> {
    // An empty create script runs nothing: the resource exists for its delete step.
    const stdout = inputs.create === "" ? "" : await runRemote(inputs, inputs.create, inputs.stdin);
    return { id: `${inputs.node}-${Date.now().toString(36)}`, outs: stateOf(inputs, stdout) };
  },

  async update(_id: string, olds: ScriptState, news: ScriptInputs): Promise<pulumi.dynamic.UpdateResult> {
    const next = stateOf(news, olds.stdout);
    const rerun = RERUN_KEYS.some((k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(next[k] ?? null));
    if (rerun) next.stdout = await runRemote(news, news.update ?? news.create, news.stdin);
    return { outs: next };
  },

  async delete(_id: string, props: ScriptState): Promise<void> {
    if (!props.delete) return;
    try {
      // A node that may be gone for good gets a few attempts, not the patience a booting one needs.
      await runRemote(props, props.delete, undefined, props.skipDeleteWhenUnreachable ? 3 : undefined);
    } catch (err) {
      if (props.skipDeleteWhenUnreachable && err instanceof Error && err.message.includes("unreachable over SSH"))
        return;
      throw err;
    }
  },
};

function stateOf(inputs: ScriptInputs, stdout: string): ScriptState {
  const { createHash } = require("crypto") as typeof import("crypto");
  const { stdin, ...rest } = inputs;
  const state: ScriptState = { ...rest, stdout };
  if (stdin !== undefined) state.stdinHash = createHash("sha256").update(stdin).digest("hex");
  return state;
}

/** Runs one script on one node; resolves to its trimmed stdout, rejects with the node named. */
async function runRemote(
  target: Pick<
    ScriptState,
    "node" | "connection" | "fallbackConnections" | "environment" | "timeout" | "skipDeleteWhenUnreachable"
  >,
  script: string,
  stdin: string | undefined,
  dialLimit?: number,
): Promise<string> {
  const { Client } = require("ssh2") as typeof import("ssh2");
  const conns = [target.connection, ...(target.fallbackConnections ?? [])];
  const limit = Math.max(dialLimit ?? target.connection.dialErrorLimit ?? 10, conns.length);
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const exports = Object.entries(target.environment ?? {})
    .map(([k, v]) => `export ${k}=${quote(String(v))}`)
    .join("\n");
  const body = `${exports}\n${script}`;
  const commandFor = (user: string) => `${user === "root" ? "" : "sudo -n "}bash -c ${quote(body)} swarmcloud`;

  // One SSH connection per node and login, shared by the scripts that run on it (up to 8 at once,
  // below sshd's default MaxSessions of 10), closed after 10 s without a script. A handshake is
  // the costly part of a short script, and a first manager that serves every node's manager-side
  // steps would otherwise see a burst of logins (sshd's MaxStartups drops some of them).
  type SshClient = InstanceType<typeof Client>;
  interface Pooled {
    ready: Promise<SshClient>;
    channels: number;
    /** Scripts started on it so far: a failure on a fresh connection is the node's, not the pool's. */
    uses: number;
    closed: boolean;
    idle?: ReturnType<typeof setTimeout>;
  }
  const g = globalThis as { __swarmcloudSsh?: Map<string, Pooled[]> };
  const pool = (g.__swarmcloudSsh ??= new Map<string, Pooled[]>());
  const keyOf = (c: Conn) =>
    `${c.user ?? "root"}@${c.host}:${c.port ?? 22}#` +
    (require("crypto") as typeof import("crypto")).createHash("sha256").update(c.privateKey).digest("hex");

  const dial = (c: Conn) =>
    new Promise<SshClient>((resolve, reject) => {
      const client = new Client();
      client
        .on("ready", () => resolve(client))
        .on("error", (err: Error) => reject(err))
        .connect({
          host: c.host,
          port: c.port ?? 22,
          username: c.user ?? "root",
          privateKey: c.privateKey,
          readyTimeout: (c.perDialTimeout ?? 15) * 1000,
          keepaliveInterval: 10000,
        });
    });

  const acquire = (c: Conn): Pooled => {
    const key = keyOf(c);
    const list = pool.get(key) ?? [];
    pool.set(key, list);
    const free = list.find((p) => !p.closed && p.channels < 8);
    if (free) {
      free.channels++;
      free.uses++;
      if (free.idle) clearTimeout(free.idle);
      return free;
    }
    const p: Pooled = { ready: dial(c), channels: 1, uses: 1, closed: false };
    const forget = () => {
      p.closed = true;
      const i = list.indexOf(p);
      if (i >= 0) list.splice(i, 1);
    };
    list.push(p);
    p.ready.then((client) => client.on("close", forget).on("error", forget), forget);
    return p;
  };

  const release = (p: Pooled, broken = false) => {
    p.channels--;
    if (broken) p.closed = true; // no new scripts on it; those still running finish first
    if (p.channels > 0) return;
    const close = () => {
      p.closed = true;
      void p.ready.then(
        (client) => client.end(),
        () => undefined,
      );
    };
    if (p.closed) return close();
    p.idle = setTimeout(close, 10_000);
    p.idle.unref?.();
  };

  // Runs the script over one open connection; resolves to [exit code, stdout, stderr tail].
  // Rejects with `started: false` when no channel could be opened (a connection that died idle).
  const exec = (client: SshClient, user: string, openSeconds: number) =>
    new Promise<[number | string, string, string]>((resolve, reject) => {
      const notStarted = (why: string) =>
        reject(Object.assign(new Error(`node ${target.node}: could not start the script: ${why}`), { started: false }));
      // A shared connection to a node that vanished (no reset, packets dropped) never answers the
      // channel request; give up on it after perDialTimeout instead of waiting for TCP to notice.
      let gaveUp = false;
      const openTimer = setTimeout(() => {
        gaveUp = true;
        notStarted(`no answer to the session request within ${openSeconds} s`);
      }, openSeconds * 1000);
      client.exec(commandFor(user), (err, stream) => {
        clearTimeout(openTimer);
        if (gaveUp) return stream?.close();
        if (err) return notStarted(err.message);
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        const seconds = target.timeout ?? 900;
        const timer = setTimeout(() => {
          stream.close();
          reject(new Error(`node ${target.node}: script did not finish within ${seconds}s`));
        }, seconds * 1000);
        stream.on("data", (d: Buffer) => out.push(d));
        stream.stderr.on("data", (d: Buffer) => errOut.push(d));
        stream.on("close", (code: number | null, signal?: string) => {
          clearTimeout(timer);
          const stdout = Buffer.concat(out).toString("utf8").trim();
          const tail = (Buffer.concat(errOut).toString("utf8").trim() || stdout).split("\n").slice(-20).join("\n");
          resolve([code ?? signal ?? "unknown", stdout, tail]);
        });
        stream.end(stdin ?? "");
      });
    });

  // Connections are tried in turn, so a dead first manager costs one attempt, not all of them.
  // A script that exits 75 (EX_TEMPFAIL) says "not here": the next connection is tried (a
  // manager-side script that found itself on a node that is no longer a manager).
  const notHere = new Set<number>();
  let lastError: unknown;
  let lastNotHere = "";
  for (let attempt = 0, round = 0; attempt < limit && notHere.size < conns.length; round++) {
    for (let i = 0; i < conns.length && attempt < limit; i++) {
      if (notHere.has(i)) continue;
      attempt++;
      const c = conns[i]!;
      const pooled = acquire(c);
      let client: SshClient;
      try {
        const dialStart = Date.now();
        client = await pooled.ready;
        if (process.env.SWARMCLOUD_TRACE_FILE) {
          require("fs").appendFileSync(
            process.env.SWARMCLOUD_TRACE_FILE,
            `${new Date(dialStart).toISOString()} ${((Date.now() - dialStart) / 1000).toFixed(2)}s ${target.node}@${c.host} ssh connect\n`,
          );
        }
      } catch (err) {
        release(pooled, true);
        lastError = err;
        continue;
      }
      let broken = false;
      try {
        const started = Date.now();
        let result: [number | string, string, string];
        try {
          result = await exec(client, c.user ?? "root", c.perDialTimeout ?? 15);
        } catch (err) {
          // A shared connection that died while idle: not the node's fault, try again at once
          // (the broken connection leaves the pool, so this ends).
          if ((err as { started?: boolean }).started === false && pooled.uses > 1) {
            broken = true;
            attempt--;
            i--;
            lastError = err;
            continue;
          }
          throw err;
        }
        const [code, stdout, tail] = result;
        // Optional timing trace for benchmarks: one line per script run.
        const trace = process.env.SWARMCLOUD_TRACE_FILE;
        if (trace) {
          const what = (script.split("\n").find((l) => l.startsWith("# swarmcloud:")) ?? "# swarmcloud: script").slice(
            14,
          );
          require("fs").appendFileSync(
            trace,
            `${new Date(started).toISOString()} ${((Date.now() - started) / 1000).toFixed(2)}s ${target.node}@${c.host} ${what}\n`,
          );
        }
        if (code === 0) return stdout;
        if (code === 75 && conns.length > 1) {
          notHere.add(i);
          lastNotHere = tail;
          continue;
        }
        const first = script.split("\n").find((l) => l.startsWith("# swarmcloud:")) ?? "";
        throw new Error(
          `node ${target.node}: ${first.replace("# swarmcloud:", "").trim() || "script"} failed (exit ${code}):\n${tail}`,
        );
      } finally {
        release(pooled, broken);
      }
    }
    if (notHere.size < conns.length && attempt < limit) {
      await new Promise((r) => setTimeout(r, Math.min(1000 * (round + 1), 5000)));
    }
  }
  if (notHere.size > 0) {
    throw new Error(`node ${target.node}: no connection could run the script (each said "not here"): ${lastNotHere}`);
  }
  const where = conns.map((c) => `${c.user ?? "root"}@${c.host}:${c.port ?? 22}`).join(", ");
  throw new Error(
    `node ${target.node} (${where}) is unreachable over SSH after ${limit} attempts: ${String(lastError)}`,
  );
}

/**
 * One idempotent shell script run on one node over SSH, with create / update / delete phases,
 * like @pulumi/command's `remote.Command` but with the semantics this program needs:
 * a change of the script re-runs it in place (no delete of the old one), secrets go in on stdin
 * and are never stored, and only `triggers` replace the resource.
 */
export class RemoteScript extends pulumi.dynamic.Resource {
  /** Trimmed standard output of the last run (secret when `secretStdout`). */
  declare public readonly stdout: pulumi.Output<string>;

  constructor(name: string, args: RemoteScriptArgs, opts?: pulumi.CustomResourceOptions) {
    const { secretStdout, ...props } = args;
    super(
      remoteScriptProvider,
      name,
      { ...props, stdout: undefined },
      {
        ...opts,
        additionalSecretOutputs: ["connection", ...(secretStdout ? ["stdout"] : [])],
      },
      "swarmcloud",
      "RemoteScript",
    );
  }
}
