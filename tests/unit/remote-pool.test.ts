/**
 * The RemoteScript provider against a real SSH server on loopback (ssh2's own server, running
 * each command with the local shell): scripts on one node share a connection, at most 8 at a
 * time; a connection that died while idle, or a server that allows one session per connection,
 * costs a new connection, never a failed script.
 */
import { remoteScriptProvider as provider } from "../../components/remote";
import { mkdtempSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import * as pulumi from "@pulumi/pulumi";
import { clientKey, Lab, sshServer } from "./ssh-server";

/** How Pulumi's dynamic-provider host loads a serialized provider (a dependency of @pulumi/pulumi). */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const requireFromString = require("require-from-string") as (code: string) => unknown;

const script = (lab: Lab, create: string, node = "n1") => ({
  node,
  connection: {
    host: "127.0.0.1",
    port: lab.port,
    user: "root",
    privateKey: clientKey.private,
    dialErrorLimit: 2,
    perDialTimeout: 2,
  },
  create,
});

// Generous: CI runs these on a machine whose two cores are busy with the lab.
jest.setTimeout(30_000);

let lab: Lab;
afterEach(async () => lab?.close());

test("scripts on one node, one after another, share one connection", async () => {
  lab = await sshServer();
  for (let i = 0; i < 5; i++) {
    const r = await provider.create!(script(lab, `echo "run ${i}"`));
    expect(r.outs.stdout).toBe(`run ${i}`);
  }
  expect(lab.sessions).toBe(5);
  expect(lab.logins).toBe(1);
});

test("twelve scripts at once use two connections, never more than 8 sessions on one", async () => {
  lab = await sshServer();
  const results = await Promise.all(
    Array.from({ length: 12 }, (_, i) => provider.create!(script(lab, `sleep 0.3; echo "at once ${i}"`))),
  );
  expect(results.map((r) => r.outs.stdout)).toEqual(Array.from({ length: 12 }, (_, i) => `at once ${i}`));
  expect(lab.logins).toBe(2);
  expect(lab.maxPerConnection).toBeLessThanOrEqual(8);
});

test("a connection that died while idle is replaced, not reported as a failure", async () => {
  lab = await sshServer();
  expect((await provider.create!(script(lab, "echo first"))).outs.stdout).toBe("first");
  lab.dropAll();
  expect((await provider.create!(script(lab, "echo second"))).outs.stdout).toBe("second");
  expect(lab.logins).toBe(2);
});

test("a server that allows one session per connection still runs every script", async () => {
  lab = await sshServer({ sessionsPerConnection: 1 });
  const results = await Promise.all(
    Array.from({ length: 3 }, (_, i) => provider.create!(script(lab, `sleep 0.2; echo "one ${i}"`))),
  );
  expect(results.map((r) => r.outs.stdout)).toEqual(["one 0", "one 1", "one 2"]);
  expect(lab.maxPerConnection).toBe(1);
});

test("a failing script still fails, with the node named, and its connection stays usable", async () => {
  lab = await sshServer();
  await expect(provider.create!(script(lab, "# swarmcloud: fail on purpose\nexit 3", "worker-7"))).rejects.toThrow(
    /node worker-7: fail on purpose failed \(exit 3\)/,
  );
  expect((await provider.create!(script(lab, "echo after", "worker-7"))).outs.stdout).toBe("after");
  expect(lab.logins).toBe(1);
});

test("a shared connection whose node stopped answering costs perDialTimeout, not the script timeout", async () => {
  lab = await sshServer({ silentAfter: 1 });
  expect((await provider.create!(script(lab, "echo first"))).outs.stdout).toBe("first");
  const t0 = Date.now();
  // The shared connection gets no answer; a fresh one is dialled and gets none either: the node
  // is reported within a few perDialTimeouts (2 s here), never after the 900 s script timeout.
  await expect(provider.create!(script(lab, "echo second", "worker-8"))).rejects.toThrow(
    /node worker-8.*(could not start the script: no answer|unreachable)/s,
  );
  expect((Date.now() - t0) / 1000).toBeLessThan(10);
});

// A script that exits 75 says "not here" (a manager-side step on a node that is no longer a
// manager): the next connection in `fallbackConnections` is tried. Both servers run the script
// on this machine; a marker directory tells the first run from the second.
let other: Lab | undefined;
afterEach(async () => {
  await other?.close();
  other = undefined;
});

function notHereOnce(): string {
  const marker = join(mkdtempSync(join(tmpdir(), "swarmcloud-75-")), "asked");
  return `# swarmcloud: find a manager\nif mkdir ${marker} 2>/dev/null; then echo "not a manager" >&2; exit 75; fi\necho "ran here"`;
}

const withFallback = (first: Lab, second: Lab, create: string, node = "n1") => ({
  ...script(first, create, node),
  fallbackConnections: [script(second, create).connection],
});

test("a script that exits 75 on the first connection runs on the next one", async () => {
  lab = await sshServer();
  other = await sshServer();
  const r = await provider.create!(withFallback(lab, other, notHereOnce()));
  expect(r.outs.stdout).toBe("ran here");
  expect([lab.sessions, other.sessions]).toEqual([1, 1]);
});

test("when every connection says 'not here', each is asked once and the node is named", async () => {
  lab = await sshServer();
  other = await sshServer();
  const create = `echo "not a manager either" >&2; exit 75`;
  await expect(provider.create!(withFallback(lab, other, create, "worker-3"))).rejects.toThrow(
    'node worker-3: no connection could run the script (each said "not here"): not a manager either',
  );
  expect([lab.sessions, other.sessions]).toEqual([1, 1]);
});

test("with no connection to fall back on, exit 75 is a failure like any other", async () => {
  lab = await sshServer();
  await expect(provider.create!(script(lab, notHereOnce(), "worker-4"))).rejects.toThrow(
    "node worker-4: find a manager failed (exit 75):\nnot a manager",
  );
});

test("a dead first connection costs one attempt: the fallback runs the script at once", async () => {
  lab = await sshServer();
  const dead = { ...script(lab, "").connection, port: 1 };
  const t0 = Date.now();
  const r = await provider.create!({
    ...script(lab, "echo fallback"),
    connection: dead,
    fallbackConnections: [script(lab, "").connection],
  });
  expect(r.outs.stdout).toBe("fallback");
  expect(Date.now() - t0).toBeLessThan(1000); // no pause between rounds
});

// Pulumi stores the provider as text (closure serialization) and the provider host re-loads it
// with require-from-string: what runs in `pulumi up` is that copy, not this module.
test("the provider, serialized and re-loaded as Pulumi does, runs, falls back and fails with the same texts", async () => {
  const { text } = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
  const loaded = (requireFromString(text) as { handler: () => pulumi.dynamic.ResourceProvider }).handler();
  lab = await sshServer();
  other = await sshServer();
  expect((await loaded.create!(script(lab, "echo reloaded"))).outs.stdout).toBe("reloaded");
  expect((await loaded.create!(withFallback(lab, other, notHereOnce()))).outs.stdout).toBe("ran here");
  await expect(loaded.create!(script(lab, "# swarmcloud: fail on purpose\nexit 3", "worker-7"))).rejects.toThrow(
    /^node worker-7: fail on purpose failed \(exit 3\):/,
  );
  const gone = {
    ...script(lab, ""),
    node: "gone",
    connection: { ...script(lab, "").connection, port: 1, dialErrorLimit: 1 },
  };
  const props = { ...gone, delete: "true", stdout: "" };
  await expect(loaded.delete!("id", props)).rejects.toThrow(
    /^node gone \(root@127\.0\.0\.1:1\) is unreachable over SSH/,
  );
  await expect(loaded.delete!("id", { ...props, skipDeleteWhenUnreachable: true })).resolves.toBeUndefined();
});
