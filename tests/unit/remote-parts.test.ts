/**
 * The parts of the RemoteScript provider, each on its own with fakes: the command line sent over
 * SSH, the script header, the hash, the typed errors, the fallback-and-retry loop, the
 * connection pool and one run on an open connection.
 */
import { execFileSync } from "child_process";
import { EventEmitter } from "events";
import type { Client } from "ssh2";
import {
  acquire,
  acquireShared,
  Attempt,
  commandLine,
  execScript,
  isRemoteError,
  Pooled,
  release,
  scriptFailedError,
  sha256Hex,
  stepName,
  tryInTurn,
  unreachableError,
} from "../../components/remote";

describe("commandLine", () => {
  test("root runs bash directly, any other login through sudo -n; $0 is swarmcloud", () => {
    expect(commandLine("root", undefined, "echo hi")).toBe("bash -c '\necho hi' swarmcloud");
    expect(commandLine("pi", undefined, "echo hi")).toBe("sudo -n bash -c '\necho hi' swarmcloud");
  });

  test("the environment is exported ahead of the script, quoted so any value survives", () => {
    const env = { A: "1", B: "it's $HOME `id`", C: "two\nlines" };
    expect(commandLine("root", { A: "1" }, "true")).toBe("bash -c 'export A='\\''1'\\''\ntrue' swarmcloud");
    // What a shell makes of it: each value exactly as given, the script's quotes intact.
    const script = `printf '%s|' "$0" "$A" "$B" "$C"`;
    expect(execFileSync("sh", ["-c", commandLine("root", env, script)]).toString()).toBe(
      "swarmcloud|1|it's $HOME `id`|two\nlines|",
    );
  });
});

describe("stepName", () => {
  test("the first '# swarmcloud:' line names the step, wherever it is", () => {
    expect(stepName("#!/usr/bin/env bash\n# swarmcloud: join the swarm\nset -e\n# swarmcloud: later")).toBe(
      "join the swarm",
    );
    expect(stepName("# swarmcloud:   padded   \ntrue")).toBe("padded");
  });

  test("no header, an empty one or a look-alike: 'script'", () => {
    expect(stepName("echo hi")).toBe("script");
    expect(stepName("# swarmcloud:\ntrue")).toBe("script");
    expect(stepName("#swarmcloud: no space\n  # swarmcloud: indented")).toBe("script");
  });
});

test("sha256Hex is SHA-256 in hex", () => {
  expect(sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

describe("errors", () => {
  const conns = [
    { host: "10.0.0.1", privateKey: "K" },
    { host: "10.0.0.2", port: 2222, user: "pi", privateKey: "K" },
  ];

  test("keep today's texts and are plain Errors, told apart by their tag", () => {
    const unreachable = unreachableError("m1", conns, 10, new Error("connect ECONNREFUSED"));
    expect(unreachable.message).toBe(
      "node m1 (root@10.0.0.1:22, pi@10.0.0.2:2222) is unreachable over SSH after 10 attempts: " +
        "Error: connect ECONNREFUSED",
    );
    expect(String(unreachable)).toBe(`Error: ${unreachable.message}`);
    const failed = scriptFailedError("w1", "# swarmcloud: join the swarm\nexit 4", 4, "no token");
    expect(failed.message).toBe("node w1: join the swarm failed (exit 4):\nno token");
    expect(failed).toMatchObject({ failure: "failed", step: "join the swarm", exitCode: 4 });
    expect(isRemoteError(unreachable, "unreachable")).toBe(true);
    expect(isRemoteError(failed, "unreachable")).toBe(false);
  });

  test("a message that merely says 'unreachable over SSH' is not an unreachable node", () => {
    const lookalike = scriptFailedError("w1", "true", 1, "host is unreachable over SSH");
    expect(isRemoteError(lookalike, "unreachable")).toBe(false);
    expect(isRemoteError(new Error("node x (y) is unreachable over SSH"), "unreachable")).toBe(false);
  });

  test("carry no field Pulumi's provider host would turn into a gRPC status", () => {
    const failed = scriptFailedError("w1", "true", 75, "");
    for (const key of ["code", "details", "id", "properties", "reasons", "name"]) {
      expect(Object.prototype.hasOwnProperty.call(failed, key)).toBe(false);
    }
  });
});

describe("tryInTurn", () => {
  /** Answers attempt i with the next of `answers[i]`, and records every attempt and pause. */
  function fake(answers: Attempt[][]) {
    const calls: number[] = [];
    const pauses: number[] = [];
    const attempt = async (i: number) => {
      calls.push(i);
      const next = answers[i]!.length > 1 ? answers[i]!.shift()! : answers[i]![0]!;
      return next;
    };
    const pause = async (ms: number) => void pauses.push(ms);
    return { calls, pauses, attempt, pause };
  }
  const ran = (stdout: string): Attempt => ({ kind: "ran", stdout });
  const notHere = (tail: string): Attempt => ({ kind: "notHere", tail });
  const dialFailed = (error: string): Attempt => ({ kind: "dialFailed", error });
  const stale: Attempt = { kind: "stale" };

  test("the first connection runs it: one attempt, no pause", async () => {
    const f = fake([[ran("ok")], [ran("never")]]);
    expect(await tryInTurn(2, 10, f.attempt, f.pause)).toEqual({ stdout: "ok" });
    expect(f.calls).toEqual([0]);
    expect(f.pauses).toEqual([]);
  });

  test("exit 75 on the first connection: the next one runs it at once", async () => {
    const f = fake([[notHere("not a manager")], [ran("ok")]]);
    expect(await tryInTurn(2, 10, f.attempt, f.pause)).toEqual({ stdout: "ok" });
    expect(f.calls).toEqual([0, 1]);
    expect(f.pauses).toEqual([]);
  });

  test("a connection that said 'not here' is not asked again while the others are retried", async () => {
    const f = fake([[notHere("no")], [dialFailed("refused"), dialFailed("refused"), ran("ok")]]);
    expect(await tryInTurn(2, 10, f.attempt, f.pause)).toEqual({ stdout: "ok" });
    expect(f.calls).toEqual([0, 1, 1, 1]);
    expect(f.pauses).toEqual([1000, 2000]);
  });

  test("every connection says 'not here': each asked once, the last stderr reported", async () => {
    const f = fake([[notHere("first")], [notHere("second")]]);
    expect(await tryInTurn(2, 10, f.attempt, f.pause)).toEqual({ notHere: "second" });
    expect(f.calls).toEqual([0, 1]);
    expect(f.pauses).toEqual([]);
  });

  test("'not here' from one and no answer from the other reports 'not here'", async () => {
    const f = fake([[notHere("no")], [dialFailed("refused")]]);
    expect(await tryInTurn(2, 4, f.attempt, f.pause)).toEqual({ notHere: "no" });
    expect(f.calls).toEqual([0, 1, 1, 1]);
  });

  test("a dead first manager costs one attempt, not a round", async () => {
    const f = fake([[dialFailed("refused")], [ran("ok")]]);
    expect(await tryInTurn(2, 10, f.attempt, f.pause)).toEqual({ stdout: "ok" });
    expect(f.calls).toEqual([0, 1]);
    expect(f.pauses).toEqual([]);
  });

  test("dial failures use up the limit, pausing 1 s, 2 s, ... at most 5 s between rounds", async () => {
    const f = fake([[dialFailed("first")], [dialFailed("second")]]);
    expect(await tryInTurn(2, 5, f.attempt, f.pause)).toEqual({ unreachable: "first" });
    expect(f.calls).toEqual([0, 1, 0, 1, 0]);
    expect(f.pauses).toEqual([1000, 2000]);
    const g = fake([[dialFailed("down")]]);
    expect(await tryInTurn(1, 8, g.attempt, g.pause)).toEqual({ unreachable: "down" });
    expect(g.pauses).toEqual([1000, 2000, 3000, 4000, 5000, 5000, 5000]);
  });

  test("a stale pooled connection is retried at once on the same connection, uncounted", async () => {
    const f = fake([[stale, stale, ran("ok")]]);
    expect(await tryInTurn(1, 1, f.attempt, f.pause)).toEqual({ stdout: "ok" });
    expect(f.calls).toEqual([0, 0, 0]);
    expect(f.pauses).toEqual([]);
  });

  test("a failed script ends it: no other connection is tried", async () => {
    const calls: number[] = [];
    const attempt = async (i: number): Promise<Attempt> => {
      calls.push(i);
      throw scriptFailedError("n", "true", 1, "boom");
    };
    await expect(tryInTurn(2, 10, attempt, async () => undefined)).rejects.toThrow("node n: script failed (exit 1)");
    expect(calls).toEqual([0]);
  });
});

describe("the SSH pool", () => {
  /** Stands in for an ssh2 Client: `end()` closes it, as ssh2's does. */
  class FakeClient extends EventEmitter {
    ended = false;
    end() {
      this.ended = true;
      this.emit("close");
      return this;
    }
  }
  const conn: { host: string; port?: number; user: string; privateKey: string } = {
    host: "10.0.0.1",
    user: "root",
    privateKey: "KEY",
  };
  let pool: Map<string, Pooled[]>;
  let clients: FakeClient[];
  const dialTo = () => {
    const client = new FakeClient();
    clients.push(client);
    return Promise.resolve(client as unknown as Client);
  };
  const take = async (c = conn) => {
    const p = acquire(c, pool, dialTo);
    await p.ready;
    return p;
  };

  beforeEach(() => {
    jest.useFakeTimers();
    pool = new Map();
    clients = [];
  });
  afterEach(() => jest.useRealTimers());

  test("one connection per node and login, shared by up to 8 scripts", async () => {
    const taken = await Promise.all(Array.from({ length: 9 }, () => take()));
    expect(clients).toHaveLength(2);
    expect(taken.filter((p) => p === taken[0])).toHaveLength(8);
    expect(taken[0]).toMatchObject({ channels: 8, uses: 8 });
    await take({ ...conn, user: "pi" });
    await take({ ...conn, privateKey: "OTHER KEY" });
    await take({ ...conn, port: 2222 });
    expect(clients).toHaveLength(5);
  });

  test("closed after 10 s without a script; a script in the meantime keeps it", async () => {
    const p = await take();
    release(p);
    jest.advanceTimersByTime(9_999);
    expect(await take()).toBe(p);
    release(p);
    jest.advanceTimersByTime(9_999);
    expect(clients[0]!.ended).toBe(false);
    jest.advanceTimersByTime(1);
    await p.ready; // end() is called once the connection is ready, a microtask later
    expect(clients[0]!.ended).toBe(true);
    await take();
    expect(clients).toHaveLength(2);
  });

  test("a broken connection takes no new scripts and closes once its last one ends", async () => {
    const p = await take();
    await take();
    release(p, true);
    expect(await take()).not.toBe(p);
    expect(clients[0]!.ended).toBe(false);
    release(p);
    await p.ready;
    expect(clients[0]!.ended).toBe(true);
  });

  test("a connection that closes or fails to dial leaves the pool", async () => {
    const p = await take();
    clients[0]!.emit("close");
    expect(p.closed).toBe(true);
    expect(await take()).not.toBe(p);
    const failing = acquire({ ...conn, host: "10.0.0.9" }, pool, () => Promise.reject(new Error("refused")));
    await expect(failing.ready).rejects.toThrow("refused");
    expect(pool.get([...pool.keys()].find((k) => k.includes("10.0.0.9"))!)).toEqual([]);
  });
});

describe("the SSH pool for reads (acquireShared)", () => {
  class FakeClient extends EventEmitter {
    end() {
      this.emit("close");
      return this;
    }
  }
  const conn = { host: "10.0.0.1", user: "root", privateKey: "KEY" };
  let pool: Map<string, Pooled[]>;
  let dials: number;
  const dialTo = () => {
    dials++;
    return Promise.resolve(new FakeClient() as unknown as Client);
  };
  beforeEach(() => {
    pool = new Map();
    dials = 0;
  });
  /** Whether a promise has settled after the pending microtasks ran. */
  const settledYet = async (p: Promise<unknown>) => {
    let done = false;
    void p.then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    return done;
  };

  test("a ninth read waits for a session on the one connection instead of dialling another", async () => {
    const first = await Promise.all(Array.from({ length: 8 }, () => acquireShared(conn, pool, dialTo)));
    expect(dials).toBe(1);
    const ninth = acquireShared(conn, pool, dialTo);
    expect(await settledYet(ninth)).toBe(false);
    release(first[3]!);
    expect(await ninth).toBe(first[0]);
    expect(dials).toBe(1);
    expect(first[0]).toMatchObject({ channels: 8, uses: 9 });
  });

  test("reads waiting on a connection that breaks dial one new connection between them", async () => {
    const first = await Promise.all(Array.from({ length: 8 }, () => acquireShared(conn, pool, dialTo)));
    const waiting = Array.from({ length: 3 }, () => acquireShared(conn, pool, dialTo));
    release(first[0]!, true);
    const next = await Promise.all(waiting);
    expect(new Set(next).size).toBe(1);
    expect(next[0]).not.toBe(first[0]);
    expect(dials).toBe(2);
  });

  test("with no connection yet it dials, and reads arriving meanwhile share that dial", async () => {
    const [a, b] = await Promise.all([acquireShared(conn, pool, dialTo), acquireShared(conn, pool, dialTo)]);
    expect(a).toBe(b);
    expect(dials).toBe(1);
  });
});

describe("execScript", () => {
  /** Stands in for an ssh2 exec channel. */
  class FakeStream extends EventEmitter {
    stderr = new EventEmitter();
    stdin: unknown;
    closed = false;
    end(data: unknown) {
      this.stdin = data;
    }
    close() {
      this.closed = true;
    }
  }
  type ExecCallback = (err: Error | undefined, stream: FakeStream) => void;
  const client = (onExec: (command: string, cb: ExecCallback) => void) =>
    ({ exec: onExec }) as unknown as Pick<Client, "exec">;
  const run = { node: "n1", command: "cmd", stdin: "secret", openSeconds: 0.05, timeoutSeconds: 900 };

  test("resolves to exit code, trimmed stdout and the last 20 lines of stderr; stdin goes in", async () => {
    const stream = new FakeStream();
    const ran = execScript(
      client((command, cb) => {
        expect(command).toBe("cmd");
        cb(undefined, stream);
      }),
      run,
    );
    stream.emit("data", Buffer.from("  out\n"));
    stream.stderr.emit("data", Buffer.from(Array.from({ length: 25 }, (_, i) => `e${i}`).join("\n")));
    stream.emit("close", 3);
    const [code, stdout, tail] = await ran;
    expect([code, stdout, tail.split("\n")[0], tail.split("\n").length]).toEqual([3, "out", "e5", 20]);
    expect(stream.stdin).toBe("secret");
  });

  test("a connection that closed a moment ago (exec throws at once) is notStarted, so the pool retries", async () => {
    const ran = execScript(
      client(() => {
        throw new Error("Not connected");
      }),
      run,
    );
    await expect(ran).rejects.toMatchObject({
      failure: "notStarted",
      message: "node n1: could not start the script: Not connected",
    });
  });

  test("with no stderr the tail is stdout's; a signal stands in for the exit code", async () => {
    const stream = new FakeStream();
    const ran = execScript(
      client((_c, cb) => cb(undefined, stream)),
      run,
    );
    stream.emit("data", Buffer.from("only out"));
    stream.emit("close", null, "KILL");
    expect(await ran).toEqual(["KILL", "only out", "only out"]);
  });

  test("no session within openSeconds: notStarted, and a session that opens late is closed", async () => {
    let late: ExecCallback | undefined;
    const ran = execScript(
      client((_c, cb) => (late = cb)),
      run,
    );
    await expect(ran).rejects.toThrow(
      "node n1: could not start the script: no answer to the session request within 0.05 s",
    );
    await ran.catch((err) => expect(isRemoteError(err, "notStarted")).toBe(true));
    const stream = new FakeStream();
    late!(undefined, stream);
    expect(stream.closed).toBe(true);
  });

  test("a refused session is notStarted; a script past its timeout is stopped and reported", async () => {
    const refused = execScript(
      client((_c, cb) => cb(new Error("open failed"), undefined as unknown as FakeStream)),
      run,
    );
    await expect(refused).rejects.toThrow("node n1: could not start the script: open failed");
    const stream = new FakeStream();
    const slow = execScript(
      client((_c, cb) => cb(undefined, stream)),
      { ...run, timeoutSeconds: 0.05 },
    );
    await expect(slow).rejects.toThrow("node n1: script did not finish within 0.05s");
    await slow.catch((err) => expect(isRemoteError(err, "timeout")).toBe(true));
    expect(stream.closed).toBe(true);
  });
});
