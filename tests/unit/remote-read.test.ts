/**
 * The RemoteScript provider's `read` (what `pulumi refresh` calls) against a real SSH server on
 * loopback (tests/unit/ssh-server.ts): the observed values replace the declared ones and nothing
 * else, a read goes through the pool and never opens a second connection to a node, a node that
 * cannot be read is named and left as it was, no secret gets in, and host keys are checked as
 * create and delete check them (none recorded by a read).
 */
import * as pulumi from "@pulumi/pulumi";
import { hostKeyFingerprint } from "../../components/hostkey";
import { DRIFT_KEY, observedState, parseObserved, remoteScriptProvider as provider } from "../../components/remote";
import { clientKey, keyPair, Lab, sshServer } from "./ssh-server";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const requireFromString = require("require-from-string") as (code: string) => unknown;

// Generous: CI runs these on a machine whose two cores are busy with the lab.
jest.setTimeout(30_000);

const connectionTo = (lab: Lab, more: Record<string, unknown> = {}) => ({
  host: "127.0.0.1",
  port: lab.port,
  user: "root",
  privateKey: clientKey.private,
  dialErrorLimit: 2,
  perDialTimeout: 2,
  ...more,
});

/** A resource's state as create leaves it, with a read script. */
function stateOn(lab: Lab, read: string, more: Record<string, unknown> = {}) {
  return {
    node: "worker-1",
    connection: connectionTo(lab),
    create: "echo created",
    read,
    environment: { NODE_NAME: "worker-1", ROLE: "worker", LABELS: "a=1\nb=2" },
    stdout: "created",
    ...more,
  };
}

let labs: Lab[] = [];
const server = async (opts: Parameters<typeof sshServer>[0] = {}) => {
  const lab = await sshServer(opts);
  labs.push(lab);
  return lab;
};
let warnings: string[];
beforeEach(() => {
  warnings = [];
  jest.spyOn(console, "error").mockImplementation((...args: unknown[]) => void warnings.push(args.join(" ")));
});
afterEach(async () => {
  jest.restoreAllMocks();
  await Promise.all(labs.map((l) => l.close()));
  labs = [];
});

describe("parseObserved and observedState", () => {
  test("KEY=value lines; a key on several lines gets them joined; other lines are ignored", () => {
    const seen = parseObserved("ROLE=manager\nnoise here\nLABELS=a=1\nLABELS=\nLABELS=c=3\r\nlower=x\nEMPTY=");
    expect([...seen]).toEqual([
      ["ROLE", "manager"],
      ["LABELS", "a=1\n\nc=3"],
      ["EMPTY", ""],
    ]);
    expect(parseObserved("")).toEqual(new Map());
  });

  test("only declared keys take the observed value; DRIFT is added, and dropped when no longer printed", () => {
    const props = { node: "n", connection: { host: "h", privateKey: "K" }, create: "c", stdout: "out" };
    const declared = { ...props, environment: { ROLE: "worker", AVAILABILITY: "active" } };
    const read = observedState(declared, parseObserved("ROLE=manager\nTOKEN=x\nDRIFT=gone\nstdout=changed"));
    expect(read).toEqual({ ...props, environment: { ROLE: "manager", AVAILABILITY: "active", [DRIFT_KEY]: "gone" } });
    expect(observedState(read, parseObserved("ROLE=worker")).environment).toEqual({
      ROLE: "worker",
      AVAILABILITY: "active",
    });
    expect(observedState(props, parseObserved("DRIFT=x")).environment).toEqual({ DRIFT: "x" });
  });
});

describe("read", () => {
  test("with no read script it runs nothing and returns the state as it is", async () => {
    const lab = await server();
    const props = { ...stateOn(lab, ""), read: undefined };
    expect(await provider.read!("id-1", props)).toEqual({ id: "id-1", props });
    expect(lab.connections).toBe(0);
  });

  test("runs the read script with the declared environment; what it prints replaces the declared values", async () => {
    const lab = await server();
    const props = stateOn(lab, 'echo "ROLE=manager"; echo "LABELS=a=1"; echo "SEEN=$NODE_NAME $ROLE"');
    const result = await provider.read!("id-1", props);
    expect(result.id).toBe("id-1");
    const environment = { ...props.environment, ROLE: "manager", LABELS: "a=1" };
    expect(result.props).toEqual({ ...props, environment });
    // A drift: the inputs too (state without stdout), so the plan shows "ROLE: manager => worker".
    const { stdout, ...inputs } = props;
    void stdout;
    expect(result.inputs).toEqual({ ...inputs, environment });
    expect(lab.sessions).toBe(1);
  });

  test("a read that sees what was declared returns the state unchanged, so the next up changes nothing", async () => {
    const lab = await server();
    const props = stateOn(lab, 'printf "ROLE=%s\\n" "$ROLE"; printf "%s\\n" "$LABELS" | sed "s/^/LABELS=/"');
    const result = await provider.read!("id-1", props);
    expect(result.props).toEqual(props);
    expect(result.inputs).toBeUndefined();
    const news = { ...props, stdout: undefined };
    expect((await provider.diff!("id-1", result.props, news)).changes).toBe(false);
  });

  test("a drift makes the next up update in place and re-run the create script (the repair)", async () => {
    const lab = await server();
    const props = stateOn(lab, "echo ROLE=manager; echo DRIFT=left the swarm", { create: "echo repaired" });
    const refreshed = (await provider.read!("id-1", props)).props;
    const news = { ...props, stdout: undefined };
    const diff = await provider.diff!("id-1", refreshed, news);
    expect(diff).toMatchObject({ changes: true, replaces: [] });
    const updated = await provider.update!("id-1", refreshed, news);
    expect(updated.outs.stdout).toBe("repaired");
    expect(updated.outs.environment).toEqual(props.environment);
    expect(lab.commands.filter((c) => c.includes("echo repaired"))).toHaveLength(1);
  });

  test("stdin never reaches a read and stays out of the refreshed inputs; stdout is not replaced", async () => {
    const lab = await server();
    // The read prints what it gets on stdin (nothing) and tries to pass a made-up secret off as
    // an undeclared key and as stdout.
    const props = stateOn(lab, 'echo "STDIN=$(cat)"; echo "TOKEN=SWMTKN-$((6 * 7))"; echo "stdout=SWMTKN-$((6 * 7))"', {
      stdin: "SWMTKN-1-the-stdin-token\n",
      stdout: "SWMTKN-1-the-real-token",
      environment: { NODE_NAME: "worker-1", STDIN: "declared" },
    });
    const { props: read, inputs } = await provider.read!("id-1", props);
    expect(read).toEqual({ ...props, environment: { NODE_NAME: "worker-1", STDIN: "" } });
    expect(JSON.stringify([read, inputs])).not.toContain("SWMTKN-42");
    expect(inputs.stdin ?? inputs.stdinHash ?? inputs.stdout).toBeUndefined();
    expect(JSON.stringify(inputs)).not.toContain("the-stdin-token");
    expect(lab.commands.join("\n")).not.toContain("SWMTKN-1-the-real-token");
    expect(lab.commands.join("\n")).not.toContain("the-stdin-token");
  });

  test("the provider, serialized and re-loaded as Pulumi does, reads the same", async () => {
    const { text } = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
    const loaded = (requireFromString(text) as { handler: () => pulumi.dynamic.ResourceProvider }).handler();
    const lab = await server();
    const props = stateOn(lab, "echo ROLE=manager; echo DRIFT=x");
    expect((await loaded.read!("id-1", props)).props.environment).toEqual({
      ...props.environment,
      ROLE: "manager",
      DRIFT: "x",
    });
  });
});

describe("a node that cannot be read", () => {
  test("unreachable: a warning names it, the state is returned as it was (never deleted)", async () => {
    const lab = await server();
    const props = stateOn(lab, "echo ROLE=manager", { node: "worker-9" });
    props.connection = connectionTo(lab, { port: 1 });
    const result = await provider.read!("id-9", props);
    expect(result).toEqual({ id: "id-9", props });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^warning: swarmcloud: refresh could not script on node worker-9; left as it was in state: node worker-9 \(root@127\.0\.0\.1:1\) is unreachable over SSH after 3 attempts/,
    );
  });

  test("a read script that fails: a warning with its step and error, the state as it was", async () => {
    const lab = await server();
    const props = stateOn(lab, '# swarmcloud: read the thing\necho "ROLE=manager"; echo "docker is down" >&2; exit 1');
    const result = await provider.read!("id-1", props);
    expect(result.props).toEqual(props);
    expect(warnings.join("\n")).toContain(
      "refresh could not read the thing on node worker-1; left as it was in state: node worker-1: read the thing failed (exit 1):\ndocker is down",
    );
  });

  test("manager-side: a node that says 'not here' sends the read to the next manager", async () => {
    const first = await server();
    const second = await server();
    const marker = `/tmp/swarmcloud-read-75-${process.pid}-${Date.now()}`;
    const read = `if mkdir ${marker} 2>/dev/null; then echo "not a manager" >&2; exit 75; fi; rmdir ${marker}; echo ROLE=manager`;
    const result = await provider.read!("id-1", {
      ...stateOn(first, read),
      fallbackConnections: [connectionTo(second)],
    });
    expect(result.props.environment.ROLE).toBe("manager");
    expect([first.sessions, second.sessions]).toEqual([1, 1]);
  });
});

describe("one connection per node", () => {
  test("twenty reads at once on one node share one connection, at most 8 sessions at a time", async () => {
    const lab = await server();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        provider.read!(`id-${i}`, stateOn(lab, `sleep 0.2; echo ROLE=r${i}`, { node: "manager-1" })),
      ),
    );
    expect(results.map((r) => r.props.environment.ROLE)).toEqual(Array.from({ length: 20 }, (_, i) => `r${i}`));
    expect(lab.logins).toBe(1);
    expect(lab.sessions).toBe(20);
    expect(lab.maxPerConnection).toBeLessThanOrEqual(8);
  });

  test("reads of two nodes at once: one connection each", async () => {
    const a = await server();
    const b = await server();
    await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => provider.read!(`a${i}`, stateOn(a, "sleep 0.1; echo ROLE=a"))),
      ...Array.from({ length: 10 }, (_, i) => provider.read!(`b${i}`, stateOn(b, "sleep 0.1; echo ROLE=b"))),
    ]);
    expect([a.logins, b.logins]).toEqual([1, 1]);
    expect([a.sessions, b.sessions]).toEqual([10, 10]);
  });

  test("a connection that died while idle is replaced by one new connection for all the reads waiting", async () => {
    const lab = await server();
    await provider.read!("first", stateOn(lab, "echo ROLE=x"));
    lab.dropAll();
    await Promise.all(Array.from({ length: 12 }, (_, i) => provider.read!(`r${i}`, stateOn(lab, "echo ROLE=y"))));
    expect(lab.logins).toBe(2);
    expect(warnings).toEqual([]);
  });
});

/**
 * Host keys on read, checked as create and delete check them: the node must show its pin (from
 * config, or made by the program) or else the key recorded in state, before any login. A read
 * records no key and returns `hostKeys` as it was in state; with no key known it reads the node
 * as a first run would, and the next run of the step records the key.
 */
describe("host keys", () => {
  const address = (lab: Lab) => `127.0.0.1:${lab.port}`;
  /** State as create leaves it: the node's key recorded, plus an old address's kept as it was. */
  const recordedOn = (lab: Lab, read: string, more: Record<string, unknown> = {}) => {
    const hostKeys = { [address(lab)]: lab.hostKey.line, "10.9.9.9:22": "ssh-ed25519 AAAAold" };
    return { ...stateOn(lab, read, more), hostKeys };
  };
  /** Another machine now answers on the lab's address. */
  const impostorFor = async (lab: Lab) => {
    await lab.close();
    labs = labs.filter((l) => l !== lab);
    return server({ port: lab.port });
  };
  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: Error) => e,
    );
  /** The server saw one connection and nothing after the key exchange. */
  const expectNothingSent = (lab: Lab) =>
    expect([lab.connections, lab.authAttempts, lab.logins, lab.sessions, lab.commands]).toEqual([1, 0, 0, 0, []]);

  test("the key recorded in state: the read runs, hostKeys come back as they were, and the drift's inputs hold none", async () => {
    const lab = await server();
    const props = recordedOn(lab, "echo ROLE=manager");
    const result = await provider.read!("id-1", props);
    expect(result.props.environment.ROLE).toBe("manager");
    expect(result.props.hostKeys).toEqual(props.hostKeys);
    expect(Object.keys(result.inputs)).not.toContain("hostKeys");
    // No drift: the state exactly as it was.
    expect(await provider.read!("id-1", recordedOn(lab, "echo ROLE=worker"))).toEqual({
      id: "id-1",
      props: recordedOn(lab, "echo ROLE=worker"),
    });
  });

  test("another key than the recorded one: the refresh fails before login, naming the node, both keys and the way out", async () => {
    const lab = await server();
    const props = recordedOn(lab, "echo ROLE=manager");
    const impostor = await impostorFor(lab);
    const error = await refusal(provider.read!("id-1", props));
    expect(error).toMatchObject({ failure: "hostKey", seenKey: impostor.hostKey.line });
    expect(error!.message).toMatch(
      new RegExp(
        `^node worker-1: refused root@127\\.0\\.0\\.1:${lab.port}: it shows the SSH host key ${escape(hostKeyFingerprint(impostor.hostKey.publicSSH))} ` +
          `but ${escape(hostKeyFingerprint(lab.hostKey.publicSSH))} was expected \\(recorded on the first connection\\)`,
      ),
    );
    expect(error!.message).toContain(`SWARMCLOUD_FORGET_HOST_KEYS=${address(lab)} pulumi up`);
    expect(error!.message).toContain("A refresh checks the key kept in state");
    expectNothingSent(impostor);
    // Not a warning that leaves the state as it was: the refresh itself fails, as create and delete do.
    expect(warnings).toEqual([]);
  });

  test("a pin, from config or made by the program, is checked on read: a match reads, another key is refused", async () => {
    const lab = await server();
    const pinned = (hostKey: string, hostKeySource?: string) =>
      stateOn(lab, "echo ROLE=manager", { connection: connectionTo(lab, { hostKey, hostKeySource }) });
    expect((await provider.read!("id-1", pinned(lab.hostKey.line, "program"))).props.environment.ROLE).toBe("manager");
    const before = [lab.authAttempts, lab.sessions];
    const other = keyPair();
    for (const [source, origin] of [
      ["config", "pinned in swarmcloud:nodes"],
      ["program", "made by this program and given to the node when it was created"],
    ]) {
      const error = await refusal(provider.read!("id-1", pinned(other.line, source)));
      expect(error?.message).toContain(
        `${hostKeyFingerprint(lab.hostKey.publicSSH)} but ${hostKeyFingerprint(other.publicSSH)} was expected (${origin})`,
      );
    }
    // The pin is enforced even over a recorded key that would match.
    const both = { ...pinned(other.line), hostKeys: { [address(lab)]: lab.hostKey.line } };
    await expect(provider.read!("id-1", both)).rejects.toThrow(/pinned in swarmcloud:nodes/);
    // Refused three times before login: no authentication, no session since the first read.
    expect([lab.authAttempts, lab.sessions]).toEqual(before);
  });

  test("a wrong key on the first manager fails the read: the next manager is not asked instead", async () => {
    const first = await server();
    const second = await server();
    const props = {
      ...recordedOn(first, "echo ROLE=manager"),
      fallbackConnections: [connectionTo(second)],
    };
    const impostor = await impostorFor(first);
    await expect(provider.read!("id-1", props)).rejects.toThrow(/recorded on the first connection/);
    expectNothingSent(impostor);
    expect(second.connections).toBe(0);
  });

  test("no key known (a stack from before host keys): the read runs as a first run would and records nothing; the repair records it", async () => {
    const lab = await server();
    const props = stateOn(lab, "echo ROLE=manager", { create: "echo repaired" });
    const refreshed = await provider.read!("id-1", props);
    expect(refreshed.props.environment.ROLE).toBe("manager");
    expect(refreshed.props.hostKeys).toBeUndefined();
    const updated = await provider.update!("id-1", refreshed.props, { ...props, stdout: undefined });
    expect(updated.outs).toMatchObject({ stdout: "repaired", hostKeys: { [address(lab)]: lab.hostKey.line } });
  });

  test("SWARMCLOUD_FORGET_HOST_KEYS: a forgotten address is read with the key it shows now; the state keeps the old key until the next up", async () => {
    const lab = await server();
    const props = recordedOn(lab, "echo ROLE=manager", { create: "echo repaired" });
    const replaced = await impostorFor(lab);
    process.env.SWARMCLOUD_FORGET_HOST_KEYS = address(lab);
    try {
      const refreshed = await provider.read!("id-1", props);
      expect(refreshed.props.environment.ROLE).toBe("manager");
      expect(refreshed.props.hostKeys).toEqual(props.hostKeys);
      expect((await provider.diff!("id-1", refreshed.props, props)).changes).toBe(true);
      const updated = await provider.update!("id-1", refreshed.props, { ...props, stdout: undefined });
      expect(updated.outs.hostKeys).toEqual({ [address(lab)]: replaced.hostKey.line });
    } finally {
      delete process.env.SWARMCLOUD_FORGET_HOST_KEYS;
    }
  });

  test("reads that expect the same key share one verified connection; one that knows no key does not get it", async () => {
    const lab = await server();
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => provider.read!(`id-${i}`, recordedOn(lab, `sleep 0.1; echo ROLE=r${i}`))),
    );
    expect([lab.logins, lab.sessions]).toEqual([1, 12]);
    await provider.read!("unknown", stateOn(lab, "echo ROLE=x"));
    expect(lab.logins).toBe(2);
  });

  test("the provider, serialized and re-loaded as Pulumi does, refuses on read the same way", async () => {
    const { text } = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
    const loaded = (requireFromString(text) as { handler: () => pulumi.dynamic.ResourceProvider }).handler();
    const lab = await server();
    const props = recordedOn(lab, "echo ROLE=manager");
    expect((await loaded.read!("id-1", props)).props.hostKeys).toEqual(props.hostKeys);
    const impostor = await impostorFor(lab);
    await expect(loaded.read!("id-1", props)).rejects.toThrow(/recorded on the first connection/);
    expectNothingSent(impostor);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
