import * as pulumi from "@pulumi/pulumi";
import type { ClientChannel, Client as SshClient, ConnectConfig } from "ssh2";
import { hostKeyAlgorithms, hostKeyFingerprint, hostKeyOfBlob, parseHostKey } from "./hostkey";

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
  /**
   * The host key the node must show, as `ssh-keyscan` prints it (`ssh-ed25519 AAAA...`). Default:
   * none, and the key seen on the first connection is recorded in state and enforced from then on.
   */
  hostKey?: pulumi.Input<string>;
  /**
   * Where `hostKey` comes from, for the error that refuses another key: `config` (the node's
   * `hostKey` in swarmcloud:nodes) or `program` (made by this program and given to the node when
   * it was created: local containers, droplets). Default `config`.
   */
  hostKeySource?: pulumi.Input<HostKeySource>;
  /** Name of the node this connection reaches, for errors about it (its host key). Default: the script's node. */
  node?: pulumi.Input<string>;
}

/** Where a pinned host key comes from. */
export type HostKeySource = "config" | "program";

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
  /**
   * Fed to the script's standard input: the way to pass secrets. Always a Pulumi secret: kept in
   * state only encrypted (as every secret input is), never hashed, never in a message.
   */
  stdin?: pulumi.Input<string>;
  /** Exported before the script runs (not for secrets). */
  environment?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /**
   * Exported like `environment` whenever the script runs, but a change here alone runs nothing:
   * facts a script may consult when it acts for another reason (which nodes the cluster has),
   * not reasons to act (so adding a node does not re-run every script that looks at the list).
   */
  context?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /**
   * Script run by `pulumi refresh` (and `--refresh`), never by a plain `up`: it changes nothing
   * and prints `KEY=value` lines, the observed values of keys of `environment` (a key on several
   * lines: those lines, joined). State gets them in place of the declared ones, so a drift is a
   * diff of `environment` and the next `up` re-runs the script. `DRIFT=<what>` reports what no
   * key shows (the resource is gone, in whole or in part). Its connection checks the node's host
   * key as the other scripts' do and records none. Default: none (refresh keeps state).
   */
  read?: pulumi.Input<string>;
  /** Any change here replaces the resource (delete, then create). */
  triggers?: pulumi.Input<unknown[]>;
  /** Treat the script's output as a secret (join tokens, passwords). Default false. */
  secretStdout?: boolean;
  /** Seconds a script may run before it is stopped and reported. Default 900. */
  timeout?: pulumi.Input<number>;
  /**
   * Seconds the step may keep saying "not yet" before it fails: while its script exits 75, its
   * node does not answer SSH, or its session is lost without an exit status (the node went down
   * under it), the script runs again every few seconds until this many seconds have passed. For
   * a step that reboots its own node and checks its return on the next run. Create and update
   * only. Default 0: none of those is tried again (75 fails like any other code without
   * `fallbackConnections`).
   */
  awaitSeconds?: pulumi.Input<number>;
}

/**
 * A connection as the provider holds it: SshConnection with its values resolved, plus the name
 * of the node it reaches (for messages only).
 */
type Conn = pulumi.Unwrap<SshConnection> & { node?: string };

/**
 * What the provider keeps in state. `stdin` is a secret output (encrypted by the stack's secrets
 * provider, like the resource's inputs, which hold it too); `stdinHash` is what stacks made
 * before kept instead (a bare SHA-256): read for the comparison, dropped at the next update.
 */
interface ScriptState {
  node: string;
  connection: Conn;
  fallbackConnections?: Conn[];
  skipDeleteWhenUnreachable?: boolean;
  create: string;
  update?: string;
  delete?: string;
  read?: string;
  stdin?: string;
  /** Legacy: a SHA-256 of stdin (stacks made before stdin was kept as a secret). */
  stdinHash?: string;
  environment?: Record<string, string>;
  context?: Record<string, string>;
  triggers?: unknown[];
  timeout?: number;
  awaitSeconds?: number;
  stdout: string;
  /** Host keys by `host:port`: pinned, or seen on the first connection; enforced from then on. */
  hostKeys?: Record<string, string>;
}

type ScriptInputs = Omit<ScriptState, "stdout" | "stdinHash" | "hostKeys">;

/** Inputs whose change re-runs the script in place (stdin too: see `stdinChanged`). */
const RERUN_KEYS = ["create", "update", "environment"] as const;

/** Exit code (EX_TEMPFAIL) of a script that says "not here": the next connection is tried. */
const NOT_HERE_EXIT = 75;

/** Sessions one pooled connection carries at once: below sshd's default MaxSessions of 10. */
const SESSIONS_PER_CONNECTION = 8;

/** A pooled connection without a script is closed after this long. */
const IDLE_CLOSE_MS = 10_000;

/** The key a read script prints for a drift no declared key shows: the create script runs again. */
export const DRIFT_KEY = "DRIFT";

/** Connection attempts a read makes before its node counts as unreachable (a refresh moves on). */
const READ_DIAL_LIMIT = 3;

/** Seconds a read script may run. */
const READ_TIMEOUT_SECONDS = 60;

/**
 * The dynamic provider that runs scripts over SSH. Kept free of captured state: everything it
 * needs is required inside the functions, so Pulumi can serialize it into the state file (the
 * top-level functions and constants it uses are serialized with it; classes are not: see
 * `RemoteError`).
 */
export const remoteScriptProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: ScriptState, news: ScriptInputs): Promise<pulumi.dynamic.DiffResult> {
    const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
    const next: Record<string, unknown> = { ...news };
    // A new delete or read script is stored without running anything.
    const changed = [...RERUN_KEYS, "delete", "read", "node", "timeout"].filter(
      (k) => !same((olds as unknown as Record<string, unknown>)[k], next[k]),
    );
    if (stdinChanged(olds, news.stdin)) changed.push("stdin");
    // A legacy hash of stdin leaves state at the next update, which runs nothing for it.
    if (olds.stdinHash !== undefined) changed.push("stdinHash");
    // `node` and `hostKeySource` only shape messages: a connection that gains them (an upgraded
    // stack) is no change.
    const reach = (c: Conn | undefined) => c && { ...c, node: undefined, hostKeySource: undefined };
    if (
      !same(reach(olds.connection), reach(news.connection)) ||
      !same(olds.fallbackConnections?.map(reach), news.fallbackConnections?.map(reach))
    ) {
      changed.push("connection");
    }
    if (!same(olds.skipDeleteWhenUnreachable, news.skipDeleteWhenUnreachable))
      changed.push("skipDeleteWhenUnreachable");
    // Recorded host keys are outputs and change nothing by themselves; forgetting one is a change.
    if (Object.keys(olds.hostKeys ?? {}).some((a) => forgetsHostKey(a))) changed.push("hostKeys");
    const replaces = same(olds.triggers, news.triggers) ? [] : ["triggers"];
    return {
      changes: changed.length > 0 || replaces.length > 0,
      replaces,
      deleteBeforeReplace: true,
    };
  },

  async create(inputs: ScriptInputs): Promise<pulumi.dynamic.CreateResult> {
    // An empty create script runs nothing: the resource exists for its delete step.
    const ran =
      inputs.create === "" ? { stdout: "", seen: {} } : await runAwaiting(inputs, inputs.create, inputs.stdin);
    const outs = stateOf(inputs, ran.stdout, { ...pinnedHostKeys(inputs), ...ran.seen });
    return { id: `${inputs.node}-${Date.now().toString(36)}`, outs };
  },

  async update(_id: string, olds: ScriptState, news: ScriptInputs): Promise<pulumi.dynamic.UpdateResult> {
    const recorded = recordedHostKeys(olds.hostKeys, news);
    const next = stateOf(news, olds.stdout, { ...recorded, ...pinnedHostKeys(news) });
    const rerun =
      stdinChanged(olds, news.stdin) ||
      RERUN_KEYS.some((k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(next[k] ?? null));
    if (rerun) {
      const ran = await runAwaiting({ ...news, hostKeys: recorded }, news.update ?? news.create, news.stdin);
      next.stdout = ran.stdout;
      next.hostKeys = { ...next.hostKeys, ...ran.seen };
    } else {
      next.hostKeys = { ...next.hostKeys, ...(await relearnForgotten(olds.hostKeys, news, next.hostKeys!)) };
    }
    return { outs: next };
  },

  /**
   * Refresh: runs the read script (on the pooled connection, at most one per node) and returns
   * the state with the observed values in `environment` (and, when they differ, the inputs too,
   * so both the refresh and the plan after it show the drift). A node that cannot be read is
   * named in a warning and its state is returned as it was: a refresh never deletes a resource.
   * Host keys are checked as for delete (the pin, else the key recorded in state, unless
   * forgotten): a node showing another key fails the refresh before login, as create and delete
   * fail; a read records no key (`hostKeys` stays as it was: the next run of the script records).
   */
  async read(id: string, props: ScriptState): Promise<pulumi.dynamic.ReadResult> {
    if (!props.read) return { id, props };
    let stdout: string;
    try {
      const target = { ...props, hostKeys: recordedHostKeys(props.hostKeys, props), timeout: READ_TIMEOUT_SECONDS };
      ({ stdout } = await runRemote(target, props.read, undefined, READ_DIAL_LIMIT, true));
    } catch (err) {
      if (isRemoteError(err, "hostKey")) throw readRefused(err);
      if (!(err instanceof Error) || (err as Partial<RemoteError>).failure === undefined) throw err;
      // The provider host shows a plugin's stderr; `pulumi.log` has no engine to talk to here.
      console.error(`warning: ${readSkipped(props, err)}`);
      return { id, props };
    }
    const observed = observedState(props, parseObserved(stdout));
    if (JSON.stringify(observed.environment) === JSON.stringify(props.environment)) return { id, props };
    // A drift: inputs too, so the plan of the next up shows it ("ROLE: manager => worker").
    return { id, props: observed, inputs: inputsOf(observed) };
  },

  async delete(_id: string, props: ScriptState): Promise<void> {
    if (!props.delete) return;
    try {
      const target = { ...props, hostKeys: recordedHostKeys(props.hostKeys, props) };
      // A node that may be gone for good gets a few attempts, not the patience a booting one needs.
      await runRemote(target, props.delete, undefined, props.skipDeleteWhenUnreachable ? 3 : undefined);
    } catch (err) {
      if (props.skipDeleteWhenUnreachable && isRemoteError(err, "unreachable")) return;
      throw err;
    }
  },
};

/** The state after a run: the inputs (stdin a secret output: see RemoteScript), stdout, host keys; no legacy hash. */
function stateOf(inputs: ScriptInputs, stdout: string, hostKeys: Record<string, string>): ScriptState {
  const { stdinHash: _legacy, ...rest } = inputs as ScriptInputs & { stdinHash?: string };
  return { ...rest, stdout, hostKeys };
}

/**
 * Whether `stdin` differs from what the last run had: compared with the stdin kept in state (a
 * secret), or, for a stack made before that, with the legacy hash (a match is no change, so
 * upgrading re-runs nothing).
 */
function stdinChanged(olds: Pick<ScriptState, "stdin" | "stdinHash">, stdin: string | undefined): boolean {
  if (olds.stdin === undefined && olds.stdinHash !== undefined) {
    return stdin === undefined || sha256Hex(stdin) !== olds.stdinHash;
  }
  return (olds.stdin ?? null) !== (stdin ?? null);
}

/**
 * The inputs a drifted resource gets in state: its state without what only outputs hold (stdout,
 * stdinHash, hostKeys) and without stdin: the engine encrypts stdin as a secret output, but
 * inputs a read returns are taken as they come, so stdin stays out of them (the plan shows it
 * coming back: `+ stdin: [secret]`).
 */
function inputsOf(state: ScriptState): ScriptInputs {
  const { stdout: _stdout, stdin: _stdin, stdinHash: _stdinHash, hostKeys: _hostKeys, ...inputs } = state;
  return inputs;
}

/**
 * A read refused by a host key: the same error, and how a refresh gets past a key that changed
 * for a good reason (it checks the key in state, which only a run of the step replaces).
 */
function readRefused(err: RemoteError): RemoteError {
  const how =
    "A refresh checks the key kept in state: apply the fix with `pulumi up` (without --refresh), then refresh.";
  return remoteError("hostKey", `${err.message} ${how}`, { seenKey: err.seenKey });
}

/** The warning when a resource could not be read: it names the node and keeps the resource. */
export function readSkipped(props: Pick<ScriptState, "node" | "read">, err: Error): string {
  const step = stepName(props.read ?? "");
  return `swarmcloud: refresh could not ${step} on node ${props.node}; left as it was in state: ${err.message}`;
}

/**
 * A read script's stdout as key -> value: `KEY=value` lines (KEY in capitals, digits and _),
 * a key printed on several lines gets those lines joined with newlines; other lines are ignored.
 */
export function parseObserved(stdout: string): Map<string, string> {
  const seen = new Map<string, string[]>();
  for (const line of stdout.split("\n")) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.replace(/\r$/, ""));
    if (!m) continue;
    const values = seen.get(m[1]!) ?? [];
    values.push(m[2]!);
    seen.set(m[1]!, values);
  }
  return new Map([...seen].map(([k, v]) => [k, v.join("\n")]));
}

/**
 * The state with what a read observed: declared keys of `environment` it printed take the
 * observed value (the others stay as declared), and `DRIFT` is added when printed. Nothing else
 * changes: `stdout`, `stdin` and the connections stay; no undeclared key gets in.
 */
export function observedState(props: ScriptState, seen: Map<string, string>): ScriptState {
  // A DRIFT from an earlier refresh goes: this read says whether there still is one.
  const declared = Object.fromEntries(Object.entries(props.environment ?? {}).filter(([k]) => k !== DRIFT_KEY));
  const environment: Record<string, string> = { ...declared };
  for (const [k, v] of seen) {
    if (Object.prototype.hasOwnProperty.call(declared, k)) environment[k] = v;
  }
  const drift = seen.get(DRIFT_KEY);
  if (drift !== undefined) environment[DRIFT_KEY] = drift;
  return { ...props, environment };
}

/** `host:port` of a connection: what recorded host keys are keyed by. */
export function hostAddress(c: Pick<Conn, "host" | "port">): string {
  return `${c.host}:${c.port ?? 22}`;
}

/**
 * Whether `SWARMCLOUD_FORGET_HOST_KEYS` (a list of `host:port` or `host`, comma or space
 * separated) names this address: its recorded key is dropped and learnt again on first use.
 */
export function forgetsHostKey(address: string, list = process.env.SWARMCLOUD_FORGET_HOST_KEYS): boolean {
  const host = address.slice(0, address.lastIndexOf(":"));
  return (list ?? "").split(/[\s,]+/).some((entry) => entry !== "" && (entry === address || entry === host));
}

/** The recorded keys still enforced: of the resource's current connections, not forgotten. */
function recordedHostKeys(
  recorded: Record<string, string> | undefined,
  target: Pick<ScriptState, "connection" | "fallbackConnections">,
): Record<string, string> {
  const current = new Set([target.connection, ...(target.fallbackConnections ?? [])].map(hostAddress));
  return Object.fromEntries(Object.entries(recorded ?? {}).filter(([a]) => current.has(a) && !forgetsHostKey(a)));
}

/**
 * The keys of forgotten addresses (SWARMCLOUD_FORGET_HOST_KEYS) that this resource recorded and
 * still uses, learnt again now by a key exchange without login (`scanHostKey`), so that the
 * resource does not wait, unpinned, for its next run. An address that does not answer is left
 * out: its next connection records the key it sees.
 */
async function relearnForgotten(
  recorded: Record<string, string> | undefined,
  target: Pick<ScriptState, "connection" | "fallbackConnections">,
  known: Record<string, string>,
): Promise<Record<string, string>> {
  const learnt: Record<string, string> = {};
  for (const c of [target.connection, ...(target.fallbackConnections ?? [])]) {
    const address = hostAddress(c);
    const old = recorded?.[address];
    if (!old || known[address] || learnt[address] || !forgetsHostKey(address)) continue;
    const key = await scanHostKey(c, old.split(" ")[0]!);
    if (key) learnt[address] = key;
  }
  return learnt;
}

/** Keys pinned in config, as recorded keys: a pin later removed leaves its key enforced. */
function pinnedHostKeys(target: Pick<ScriptState, "connection" | "fallbackConnections">): Record<string, string> {
  const pins: Record<string, string> = {};
  for (const c of [target.connection, ...(target.fallbackConnections ?? [])]) {
    if (c.hostKey) pins[hostAddress(c)] = expectedKey(c, undefined)!.line;
  }
  return pins;
}

/** Hex SHA-256 of a text: what tells private keys apart in the pool (and the legacy stdin hash). */
export function sha256Hex(text: string): string {
  const { createHash } = require("crypto") as typeof import("crypto");
  return createHash("sha256").update(text).digest("hex");
}

/** The step a script names in its `# swarmcloud: <step>` header line; `script` without one. */
export function stepName(script: string): string {
  const header = script.split("\n").find((l) => l.startsWith("# swarmcloud:")) ?? "";
  return header.replace("# swarmcloud:", "").trim() || "script";
}

/**
 * The command line sent over SSH: the environment exported ahead of the script, all run by
 * `bash -c` (through `sudo -n` unless the login is root); `$0` is `swarmcloud`.
 */
export function commandLine(user: string, environment: Record<string, string> | undefined, script: string): string {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const exports = Object.entries(environment ?? {})
    .map(([k, v]) => `export ${k}=${quote(String(v))}`)
    .join("\n");
  return `${user === "root" ? "" : "sudo -n "}bash -c ${quote(`${exports}\n${script}`)} swarmcloud`;
}

/** With SWARMCLOUD_TRACE_FILE set (benchmarks): one line per connect and per script run. */
function trace(started: number, where: string, what: string): void {
  const file = process.env.SWARMCLOUD_TRACE_FILE;
  if (!file) return;
  const seconds = ((Date.now() - started) / 1000).toFixed(2);
  (require("fs") as typeof import("fs")).appendFileSync(
    file,
    `${new Date(started).toISOString()} ${seconds}s ${where} ${what}\n`,
  );
}

/** What went wrong with a remote script, for callers that branch on it (never on the message). */
export type RemoteFailure = "unreachable" | "failed" | "timeout" | "notHere" | "notStarted" | "hostKey";

/**
 * A plain `Error` tagged with its `failure`. Not a subclass: Pulumi's closure serializer turns
 * `class X extends Error` into a function that calls `Error.call(this, message)`, so once the
 * provider is re-loaded from state its errors lose their message and are no `Error` at all. No
 * `name`, `code`, `id` or `details` either: the provider host prints `${err}` and turns those
 * fields into the gRPC status, and users must keep seeing exactly the texts they see today.
 */
export interface RemoteError extends Error {
  failure: RemoteFailure;
  /** For `failed`: the step from the script's header and its exit code (or signal). */
  step?: string;
  exitCode?: number | string;
  /** For `hostKey`: the key line the server showed. */
  seenKey?: string;
}

export function isRemoteError(err: unknown, failure: RemoteFailure): err is RemoteError {
  return err instanceof Error && (err as Partial<RemoteError>).failure === failure;
}

function remoteError(failure: RemoteFailure, message: string, more: Partial<RemoteError> = {}): RemoteError {
  return Object.assign(new Error(message), { ...more, failure });
}

/** No connection to the node answered within the attempts allowed. */
export function unreachableError(node: string, conns: Conn[], attempts: number, lastError: unknown): RemoteError {
  const where = conns.map((c) => `${c.user ?? "root"}@${c.host}:${c.port ?? 22}`).join(", ");
  return remoteError(
    "unreachable",
    `node ${node} (${where}) is unreachable over SSH after ${attempts} attempts: ${String(lastError)}`,
  );
}

/** The key a connection must show: pinned (in config, or made by the program), else recorded in state. */
interface Expected {
  line: string;
  from: HostKeySource | "state";
}

/** A connection as it is dialled: with the host key it must show, when one is known. */
export type Dial = Conn & { expect?: Expected };

/** The key `c` must show: its pin (`hostKey`), else the one recorded for its address. */
function expectedKey(c: Conn, recorded: Record<string, string> | undefined): Expected | undefined {
  if (c.hostKey) {
    const k = parseHostKey(c.hostKey);
    if ("problem" in k) throw new Error(`hostKey of ${hostAddress(c)} = ${JSON.stringify(c.hostKey)}: ${k.problem}`);
    return { line: k.line, from: c.hostKeySource ?? "config" };
  }
  const line = recorded?.[hostAddress(c)];
  return line ? { line, from: "state" } : undefined;
}

/** `SHA256:...` of a `<type> <base64>` line. */
function fingerprintOf(line: string): string {
  return hostKeyFingerprint(Buffer.from(line.split(" ")[1] ?? "", "base64"));
}

/**
 * The server at `c` showed another host key than the expected one: refused before login, so no
 * credentials and no stdin reached it. Names the node the connection reaches (and the node whose
 * step it was, when another), says both fingerprints and how to accept a changed key.
 */
export function hostKeyError(node: string, c: Dial, seenKey: string): RemoteError {
  const expected = c.expect!;
  const owner = c.node ?? node;
  const address = hostAddress(c);
  const [seenType] = seenKey.split(" ");
  const file = `/etc/ssh/ssh_host_${(seenType ?? "").replace(/^ssh-|-sha2-.*$/g, "")}_key.pub`;
  const check = `check the fingerprint on the node itself (ssh-keygen -lf ${file})`;
  const pin = `set hostKey: "${seenKey}" on the node at ${c.host} in swarmcloud:nodes`;
  const origin = {
    config: "pinned in swarmcloud:nodes",
    program: "made by this program and given to the node when it was created",
    state: "recorded on the first connection",
  }[expected.from];
  const fix = {
    config: `If the node's key changed for a good reason (reinstalled, re-created), ${check} and pin it: ${pin}`,
    state:
      `If the node's key changed for a good reason (reinstalled, re-created), ${check} and accept it: ` +
      `run \`SWARMCLOUD_FORGET_HOST_KEYS=${address} pulumi up\` (forgets the recorded key and records the one the node shows now), or pin it: ${pin}`,
    program:
      "The node gets that key whenever Pulumi creates it, so it shows another only when it was re-created " +
      "outside Pulumi or is not the node: re-create it with Pulumi, `pulumi up --replace <URN of its container or droplet>` " +
      "(`pulumi stack --show-urns` lists them), and it has its key again",
  }[expected.from];
  const via = owner === node ? "" : ` (for a step of node ${node})`;
  return remoteError(
    "hostKey",
    `node ${owner}: refused ${c.user ?? "root"}@${address}${via}: it shows the SSH host key ${fingerprintOf(seenKey)} ` +
      `but ${fingerprintOf(expected.line)} was expected (${origin}). ` +
      `Nothing was sent: no login, no script. Another machine may be answering on that address. ${fix}`,
    { seenKey },
  );
}

/** The script ran and exited non-zero (or was killed by a signal). */
export function scriptFailedError(node: string, script: string, exitCode: number | string, tail: string): RemoteError {
  const step = stepName(script);
  return remoteError("failed", `node ${node}: ${step} failed (exit ${exitCode}):\n${tail}`, { step, exitCode });
}

// One SSH connection per node and login, shared by the scripts that run on it (up to 8 at once,
// below sshd's default MaxSessions of 10), closed after 10 s without a script. A handshake is
// the costly part of a short script, and a first manager that serves every node's manager-side
// steps would otherwise see a burst of logins (sshd's MaxStartups drops some of them).

/** One pooled connection. */
export interface Pooled {
  ready: Promise<SshClient>;
  channels: number;
  /** Scripts started on it so far: a failure on a fresh connection is the node's, not the pool's. */
  uses: number;
  closed: boolean;
  idle?: ReturnType<typeof setTimeout>;
  /** Shared acquisitions waiting for a session on it (see `acquireShared`), woken on any release. */
  waiters: (() => void)[];
  /** The host key the server showed (`<type> <base64>`), once connected. */
  hostKey?: string;
}

/**
 * The process's pool, keyed by login, address, key and the host key expected. It lives in
 * `globalThis`, not in this module: the provider is serialized and re-loaded, and must capture no
 * state of its own.
 */
function sshPool(): Map<string, Pooled[]> {
  const g = globalThis as { __swarmcloudSsh?: Map<string, Pooled[]> };
  return (g.__swarmcloudSsh ??= new Map<string, Pooled[]>());
}

/**
 * Opens a connection. The server's host key is checked during the key exchange, before any
 * login: a key other than `c.expect` fails the dial with a `hostKey` error; the key shown is
 * handed to `seen`. Expecting a key offers only its type, so the server shows that one.
 */
function dial(c: Dial, seen: (key: string) => void): Promise<SshClient> {
  const { Client } = require("ssh2") as typeof import("ssh2");
  return new Promise<SshClient>((resolve, reject) => {
    const client = new Client();
    let refused: RemoteError | undefined;
    const verify = (blob: Buffer): boolean => {
      const shown = hostKeyOfBlob(blob);
      if (c.expect && shown.line !== c.expect.line) {
        refused = remoteError("hostKey", `host key ${shown.fingerprint} is not the expected one`, {
          seenKey: shown.line,
        });
        return false;
      }
      seen(shown.line);
      return true;
    };
    const serverHostKey = c.expect && hostKeyAlgorithms(c.expect.line.split(" ")[0]!);
    const algorithms = serverHostKey ? { serverHostKey } : undefined;
    client
      .on("ready", () => resolve(client))
      .on("error", (err: Error) => reject(refused ?? err))
      .connect({
        hostVerifier: verify,
        ...(algorithms ? { algorithms: algorithms as ConnectConfig["algorithms"] } : {}),
        host: c.host,
        port: c.port ?? 22,
        username: c.user ?? "root",
        privateKey: c.privateKey,
        readyTimeout: (c.perDialTimeout ?? 15) * 1000,
        keepaliveInterval: 10000,
      });
  });
}

/**
 * The host key the server at `c` shows for key type `type`, read during a key exchange that is
 * then broken off: no login, nothing sent (what `ssh-keyscan -t <type>` does). Undefined when
 * the server does not answer or has no key of that type. One scan per address and type per
 * process: the resources that forgot an address in one `pulumi up` share it.
 */
function scanHostKey(c: Conn, type: string): Promise<string | undefined> {
  const g = globalThis as { __swarmcloudScans?: Map<string, Promise<string | undefined>> };
  const scans = (g.__swarmcloudScans ??= new Map<string, Promise<string | undefined>>());
  const id = `${hostAddress(c)}#${type}`;
  const known = scans.get(id);
  if (known) return known;
  const { Client } = require("ssh2") as typeof import("ssh2");
  const scan = new Promise<string | undefined>((resolve) => {
    const client = new Client();
    let key: string | undefined;
    const done = () => {
      client.end();
      resolve(key);
    };
    const serverHostKey = hostKeyAlgorithms(type);
    client
      .on("error", done)
      .on("close", done)
      .on("ready", done)
      .connect({
        host: c.host,
        port: c.port ?? 22,
        username: c.user ?? "root",
        hostVerifier: (blob: Buffer) => {
          key = hostKeyOfBlob(blob).line;
          return false;
        },
        ...(serverHostKey ? { algorithms: { serverHostKey } as ConnectConfig["algorithms"] } : {}),
        readyTimeout: (c.perDialTimeout ?? 15) * 1000,
      });
  });
  scans.set(id, scan);
  return scan;
}

/**
 * The pool's list of connections for one login and address, verified against one host key (or
 * none): a connection verified against one key never serves a script that expects another, or none.
 */
function pooledFor(c: Dial, pool: Map<string, Pooled[]>): Pooled[] {
  const verified = c.expect ? sha256Hex(c.expect.line) : "unverified";
  const key = `${c.user ?? "root"}@${hostAddress(c)}#${sha256Hex(c.privateKey)}#${verified}`;
  const list = pool.get(key) ?? [];
  pool.set(key, list);
  return list;
}

/** Wakes every shared acquisition waiting on the connection (each looks again). */
function wakeWaiters(p: Pooled): void {
  for (const wake of p.waiters.splice(0)) wake();
}

/**
 * A connection for one script: a pooled one with a free session, or a new one being dialled.
 * Keyed by the host key expected too (see `pooledFor`).
 */
export function acquire(c: Dial, pool = sshPool(), dialTo = dial): Pooled {
  const list = pooledFor(c, pool);
  const free = list.find((p) => !p.closed && p.channels < SESSIONS_PER_CONNECTION);
  if (free) {
    free.channels++;
    free.uses++;
    if (free.idle) clearTimeout(free.idle);
    return free;
  }
  const p: Pooled = { ready: dialTo(c, (k) => (p.hostKey = k)), channels: 1, uses: 1, closed: false, waiters: [] };
  const forget = () => {
    p.closed = true;
    const i = list.indexOf(p);
    if (i >= 0) list.splice(i, 1);
    wakeWaiters(p);
  };
  list.push(p);
  p.ready.then((client) => client.on("close", forget).on("error", forget), forget);
  return p;
}

/**
 * A connection for one read (refresh): like `acquire`, but while the node's open connection has
 * no free session it waits for one rather than dialling another, so reads open at most one
 * connection per node and login however many run at once.
 */
export async function acquireShared(c: Dial, pool = sshPool(), dialTo = dial): Promise<Pooled> {
  for (;;) {
    const open = pooledFor(c, pool).filter((p) => !p.closed);
    if (open.length === 0 || open.some((p) => p.channels < SESSIONS_PER_CONNECTION)) return acquire(c, pool, dialTo);
    await new Promise<void>((wake) => open[0]!.waiters.push(wake));
  }
}

/** Gives a session back; `broken`: no new scripts on it, those still running finish first. */
export function release(p: Pooled, broken = false): void {
  p.channels--;
  if (broken) p.closed = true;
  wakeWaiters(p);
  if (p.channels > 0) return;
  const close = () => {
    p.closed = true;
    void p.ready.then(
      (client) => client.end(),
      () => undefined,
    );
  };
  if (p.closed) return close();
  p.idle = setTimeout(close, IDLE_CLOSE_MS);
  p.idle.unref?.();
}

/** How one script run on an open connection ended: exit code (or signal), stdout, stderr's tail. */
type Ran = [code: number | string, stdout: string, tail: string];

/**
 * Runs a command over one open connection. Rejects with a `notStarted` error when no
 * session opens within `openSeconds` (a shared connection to a node that vanished, with no reset
 * and packets dropped, never answers: give up after perDialTimeout instead of waiting for TCP).
 */
export function execScript(
  client: Pick<SshClient, "exec">,
  run: { node: string; command: string; stdin?: string; openSeconds: number; timeoutSeconds: number },
): Promise<Ran> {
  const notStarted = (why: string) => remoteError("notStarted", `node ${run.node}: could not start the script: ${why}`);
  return new Promise<Ran>((resolve, reject) => {
    let gaveUp = false;
    const openTimer = setTimeout(() => {
      gaveUp = true;
      reject(notStarted(`no answer to the session request within ${run.openSeconds} s`));
    }, run.openSeconds * 1000);
    const opened = (err: Error | undefined, stream: ClientChannel) => {
      clearTimeout(openTimer);
      if (gaveUp) return stream?.close();
      if (err) return reject(notStarted(err.message));
      const out: Buffer[] = [];
      const errOut: Buffer[] = [];
      const timer = setTimeout(() => {
        stream.close();
        reject(remoteError("timeout", `node ${run.node}: script did not finish within ${run.timeoutSeconds}s`));
      }, run.timeoutSeconds * 1000);
      stream.on("data", (d: Buffer) => out.push(d));
      stream.stderr.on("data", (d: Buffer) => errOut.push(d));
      stream.on("close", (code: number | null, signal?: string) => {
        clearTimeout(timer);
        const stdout = Buffer.concat(out).toString("utf8").trim();
        const tail = (Buffer.concat(errOut).toString("utf8").trim() || stdout).split("\n").slice(-20).join("\n");
        resolve([code ?? signal ?? "unknown", stdout, tail]);
      });
      stream.end(run.stdin ?? "");
    };
    // A pooled connection whose socket closed a moment ago throws "Not connected" at once.
    try {
      client.exec(run.command, opened);
    } catch (err) {
      opened(err instanceof Error ? err : new Error(String(err)), undefined as unknown as ClientChannel);
    }
  });
}

/** One script for one node, whichever connection runs it. */
interface Job {
  node: string;
  script: string;
  stdin?: string;
  environment?: Record<string, string>;
  timeout?: number;
  /** Other connections remain to try, so exit 75 means "not here" rather than failure. */
  mayFallBack: boolean;
  /** A read: waits for a session on the node's open connection rather than dialling another. */
  shared?: boolean;
}

/** What one attempt on one connection came to (a failed script throws instead). */
export type Attempt =
  | { kind: "ran"; stdout: string }
  | { kind: "notHere"; tail: string }
  | { kind: "dialFailed"; error: unknown }
  /** A shared connection that died while idle: not the node's fault, it has left the pool. */
  | { kind: "stale" };

/**
 * Runs the job once over connection `c` (pooled); a failed script throws (`failed`, `timeout`),
 * and so does a host key other than the one expected (`hostKey`): no retry, no fallback. The
 * host key the connection showed goes in `seen`, by address.
 */
async function attemptOn(c: Dial, job: Job, seen: Record<string, string>): Promise<Attempt> {
  const pooled = job.shared ? await acquireShared(c) : acquire(c);
  const where = `${job.node}@${c.host}`;
  let client: SshClient;
  try {
    const dialStart = Date.now();
    client = await pooled.ready;
    trace(dialStart, where, "ssh connect");
  } catch (error) {
    release(pooled, true);
    if (isRemoteError(error, "hostKey")) throw hostKeyError(job.node, c, error.seenKey!);
    return { kind: "dialFailed", error };
  }
  if (pooled.hostKey) seen[hostAddress(c)] = pooled.hostKey;
  let broken = false;
  try {
    const started = Date.now();
    const [code, stdout, tail] = await execScript(client, {
      node: job.node,
      command: commandLine(c.user ?? "root", job.environment, job.script),
      stdin: job.stdin,
      openSeconds: c.perDialTimeout ?? 15,
      timeoutSeconds: job.timeout ?? 900,
    });
    trace(started, where, stepName(job.script));
    if (code === 0) return { kind: "ran", stdout };
    if (code === NOT_HERE_EXIT && job.mayFallBack) return { kind: "notHere", tail };
    throw scriptFailedError(job.node, job.script, code, tail);
  } catch (err) {
    // On a fresh connection the failure to start is the node's: report it.
    if (!isRemoteError(err, "notStarted") || pooled.uses <= 1) throw err;
    broken = true;
    return { kind: "stale" };
  } finally {
    release(pooled, broken);
  }
}

/** How trying the connections in turn ended. */
export type Tried = { stdout: string } | { notHere: string } | { unreachable: unknown };

/**
 * Tries connections 0..count-1 in turn, round after round, until one runs the script: a dead
 * first manager costs one attempt, not all of them. Dial failures count against `limit`, with a
 * pause between rounds (1 s, 2 s, ... at most 5 s); a connection whose script said "not here" is
 * not tried again; a stale pooled connection is retried at once, uncounted (it has left the pool,
 * so the retry dials afresh). Script failures are thrown by `attempt` and end it all.
 */
export async function tryInTurn(
  count: number,
  limit: number,
  attempt: (i: number) => Promise<Attempt>,
  pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
): Promise<Tried> {
  const notHere = new Set<number>();
  let lastError: unknown;
  let lastNotHere = "";
  let attempts = 0;
  for (let round = 0; attempts < limit && notHere.size < count; round++) {
    for (let i = 0; i < count && attempts < limit; i++) {
      if (notHere.has(i)) continue;
      attempts++;
      let r = await attempt(i);
      while (r.kind === "stale") r = await attempt(i);
      if (r.kind === "ran") return { stdout: r.stdout };
      if (r.kind === "notHere") {
        notHere.add(i);
        lastNotHere = r.tail;
      } else {
        lastError = r.error;
      }
    }
    if (notHere.size < count && attempts < limit) await pause(Math.min(1000 * (round + 1), 5000));
  }
  return notHere.size > 0 ? { notHere: lastNotHere } : { unreachable: lastError };
}

/**
 * Runs one script on one node; resolves to its trimmed stdout and the host keys the connections
 * showed (by address), rejects with the node named. Each connection must show its pinned key,
 * else the one in `hostKeys`; with neither, the key it shows is trusted (first use).
 * `shared`: a read, which waits for a session on an open connection rather than dialling more.
 */
async function runRemote(
  target: Pick<
    ScriptState,
    "node" | "connection" | "fallbackConnections" | "environment" | "context" | "timeout" | "hostKeys" | "awaitSeconds"
  >,
  script: string,
  stdin: string | undefined,
  dialLimit?: number,
  shared = false,
): Promise<{ stdout: string; seen: Record<string, string> }> {
  const conns: Dial[] = [target.connection, ...(target.fallbackConnections ?? [])].map((c) => {
    const expect = expectedKey(c, target.hostKeys);
    return expect ? { ...c, expect } : c;
  });
  const seen: Record<string, string> = {};
  const limit = Math.max(dialLimit ?? target.connection.dialErrorLimit ?? 10, conns.length);
  const { node, timeout } = target;
  const environment = target.context ? { ...target.context, ...target.environment } : target.environment;
  // A step that awaits (awaitSeconds) says "not yet" with 75 on its one connection too.
  const mayFallBack = conns.length > 1 || (target.awaitSeconds ?? 0) > 0;
  const job: Job = { node, script, stdin, environment, timeout, mayFallBack, shared };
  const end = await tryInTurn(conns.length, limit, (i) => attemptOn(conns[i]!, job, seen));
  if ("stdout" in end) return { stdout: end.stdout, seen };
  if ("notHere" in end) {
    const message = `node ${target.node}: no connection could run the script (each said "not here"): ${end.notHere}`;
    throw remoteError("notHere", message);
  }
  throw unreachableError(target.node, conns, limit, end.unreachable);
}

/**
 * Whether an error of a run is a "not yet" of a step that awaits its node: the script said 75,
 * no connection answered, or the session ended without an exit status (the node went down while
 * the script ran).
 */
export function notYet(err: unknown): boolean {
  if (isRemoteError(err, "notHere") || isRemoteError(err, "unreachable")) return true;
  return isRemoteError(err, "failed") && typeof err.exitCode !== "number";
}

/**
 * `runRemote` for create and update: with `awaitSeconds`, a "not yet" (`notYet`) runs the script
 * again after a pause (`pauseMs`) until that many seconds have passed since the first run; then
 * the last error stands. Without it, one run.
 */
export async function runAwaiting(
  target: Parameters<typeof runRemote>[0],
  script: string,
  stdin: string | undefined,
  run: typeof runRemote = runRemote,
  pauseMs = 3000,
): Promise<{ stdout: string; seen: Record<string, string> }> {
  const deadline = Date.now() + (target.awaitSeconds ?? 0) * 1000;
  const seen: Record<string, string> = {};
  for (;;) {
    try {
      const ran = await run({ ...target, hostKeys: { ...target.hostKeys, ...seen } }, script, stdin);
      return { stdout: ran.stdout, seen: { ...seen, ...ran.seen } };
    } catch (err) {
      if (!target.awaitSeconds || Date.now() + pauseMs >= deadline || !notYet(err)) throw err;
    }
    await new Promise<void>((r) => setTimeout(r, pauseMs));
  }
}

/**
 * One idempotent shell script run on one node over SSH, with create / update / delete phases,
 * like @pulumi/command's `remote.Command` but with the semantics this program needs:
 * a change of the script re-runs it in place (no delete of the old one), secrets go in on stdin
 * (kept in state only as a secret, encrypted), and only `triggers` replace the resource.
 */
export class RemoteScript extends pulumi.dynamic.Resource {
  /** Trimmed standard output of the last run (secret when `secretStdout`). */
  declare public readonly stdout: pulumi.Output<string>;
  /** Host keys by `host:port` (pinned, or seen on the first connection), enforced on later runs. */
  declare public readonly hostKeys: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: RemoteScriptArgs, opts?: pulumi.CustomResourceOptions) {
    const { secretStdout, stdin, ...props } = args;
    super(
      remoteScriptProvider,
      name,
      {
        ...props,
        // A secret whatever the caller passed: encrypted in the inputs and outputs of the state.
        ...(stdin === undefined ? {} : { stdin: pulumi.secret(stdin) }),
        stdout: undefined,
        hostKeys: undefined,
      },
      {
        ...opts,
        additionalSecretOutputs: ["connection", "stdin", ...(secretStdout ? ["stdout"] : [])],
      },
      "swarmcloud",
      "RemoteScript",
    );
  }
}
