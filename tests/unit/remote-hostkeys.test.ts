/**
 * Host key pinning in the RemoteScript provider, against real ssh2 servers on loopback: a node
 * must show the key pinned for it (`hostKey`) or, without a pin, the key recorded in state on the
 * first connection. Any other key is refused during the key exchange: the server sees no login
 * attempt and no command, so no credentials and no stdin secret reach it.
 */
import * as pulumi from "@pulumi/pulumi";
import { mkdtempSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { hostKeyFingerprint, hostKeyOfBlob, parseHostKey } from "../../components/hostkey";
import { sshClusterNodes } from "../../components/nodes/ssh";
import { forgetsHostKey, remoteScriptProvider as provider } from "../../components/remote";
import { clientKey, keyPair, Lab, sshServer } from "./ssh-server";

/** How Pulumi's dynamic-provider host loads a serialized provider (a dependency of @pulumi/pulumi). */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const requireFromString = require("require-from-string") as (code: string) => unknown;

// Generous: CI runs these on a machine whose two cores are busy with the lab.
jest.setTimeout(30_000);

/** A key made by `ssh-keygen -t ed25519`, with the fingerprint `ssh-keygen -lf` prints for it. */
const OPENSSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZrKH1OAtkn2SogC3YLDkb/+iSABClMOmOoH5ma6dxE";
const OPENSSH_FINGERPRINT = "SHA256:bDlA6dlvinXc25qoWwkl4JfEKM55S0jrPnY3B2TCxH8";
const ECDSA_KEY =
  "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBMl/o1fV3qgDoIpgoaM3VZHf7Bg7y6Br7NpLAcLd2gD4hXdO0Pquo7zCPzJgK/m6gD3MaLcgU3Uh+2byr7/yrAU=";

describe("parseHostKey", () => {
  test("reads a .pub line, an ssh-keyscan line and an ecdsa key, with OpenSSH's fingerprint", () => {
    for (const text of [OPENSSH_KEY, `${OPENSSH_KEY} root@pi-1`, `192.168.1.21 ${OPENSSH_KEY}`, `  ${OPENSSH_KEY}\n`]) {
      expect(parseHostKey(text)).toEqual({ type: "ssh-ed25519", line: OPENSSH_KEY, fingerprint: OPENSSH_FINGERPRINT });
    }
    expect(parseHostKey(ECDSA_KEY)).toEqual({
      type: "ecdsa-sha2-nistp256",
      line: ECDSA_KEY,
      fingerprint: "SHA256:vIukxMkkNtWEjB4Imwf0vaXG2hyvFr4EbIhbwtbYsQQ",
    });
    expect(hostKeyFingerprint(Buffer.from(OPENSSH_KEY.split(" ")[1]!, "base64"))).toBe(OPENSSH_FINGERPRINT);
  });

  test("says why a text is no key", () => {
    const [, data] = OPENSSH_KEY.split(" ");
    expect(parseHostKey("AAAAC3NzaC1lZDI1NTE5")).toEqual({ problem: expect.stringMatching(/not an OpenSSH public/) });
    expect(parseHostKey("ssh-dss AAAAB3NzaC1kc3M=")).toEqual({ problem: expect.stringMatching(/not an OpenSSH/) });
    expect(parseHostKey("ssh-ed25519 not-base64!")).toEqual({
      problem: "the key data after ssh-ed25519 is not base64",
    });
    expect(parseHostKey(`ssh-rsa ${data}`)).toEqual({ problem: "the key data is a ssh-ed25519 key, not ssh-rsa" });
    expect(parseHostKey("ssh-ed25519 AAAA")).toEqual({ problem: "the key data is no SSH key, not ssh-ed25519" });
    // A type with no key data after it.
    expect(parseHostKey("ssh-ed25519")).toEqual({ problem: "the key data after ssh-ed25519 is not base64" });
  });

  test("a key blob a server shows: its type read from the blob, 'unknown' when the blob is malformed", () => {
    const blob = Buffer.from(OPENSSH_KEY.split(" ")[1]!, "base64");
    expect(hostKeyOfBlob(blob)).toEqual({ type: "ssh-ed25519", line: OPENSSH_KEY, fingerprint: OPENSSH_FINGERPRINT });
    const length = (n: number) => Buffer.from([0, 0, 0, n]);
    for (const bad of [
      Buffer.from([0, 0]), // shorter than a length
      Buffer.concat([length(0), Buffer.from("x")]), // an empty type name
      Buffer.concat([length(99), Buffer.alloc(120)]), // a type name longer than any
      Buffer.concat([length(11), Buffer.from("ssh-ed25519")]), // the name and nothing after it
    ]) {
      const key = hostKeyOfBlob(bad);
      expect(key.type).toBe("unknown");
      expect(key.fingerprint).toBe(hostKeyFingerprint(bad));
    }
  });
});

test("a node's hostKey goes into its connection, pinned from config; without one there is no hostKey at all", () => {
  const nodes = sshClusterNodes({
    nodes: [
      { name: "pi-1", role: "manager", address: "10.0.0.1", hostKey: OPENSSH_KEY, labels: {}, availability: "active" },
      { name: "pi-2", role: "worker", address: "10.0.0.2", labels: {}, availability: "active" },
    ],
    privateKey: "KEY",
  });
  expect(nodes[0]!.connection).toMatchObject({ hostKey: OPENSSH_KEY, hostKeySource: "config", node: "pi-1" });
  expect(Object.keys(nodes[1]!.connection)).not.toContain("hostKey");
  expect(Object.keys(nodes[1]!.connection)).not.toContain("hostKeySource");
  expect(nodes[1]!.connection.node).toBe("pi-2");
});

test("a connection that gains its node's name (an upgraded stack) is no change; one that gains a pin is", async () => {
  const conn = { host: "10.0.0.1", port: 22, user: "root", privateKey: "KEY", dialErrorLimit: 10, perDialTimeout: 15 };
  const olds = { node: "n1", connection: conn, fallbackConnections: [conn], create: "true", stdout: "" };
  const named = { ...conn, node: "pi-1" };
  const news = { node: "n1", connection: named, fallbackConnections: [named], create: "true" };
  expect((await provider.diff!("id", olds, news)).changes).toBe(false);
  const pinned = { ...named, hostKey: OPENSSH_KEY, hostKeySource: "config" as const };
  expect(await provider.diff!("id", olds, { ...news, connection: pinned })).toMatchObject({ changes: true });
});

test("SWARMCLOUD_FORGET_HOST_KEYS names addresses, or hosts on any port", () => {
  expect(forgetsHostKey("10.0.0.1:22", "10.0.0.1:22")).toBe(true);
  expect(forgetsHostKey("10.0.0.1:2222", "10.0.0.2:22, 10.0.0.1")).toBe(true);
  expect(forgetsHostKey("10.0.0.1:22", "10.0.0.1:2222,10.0.0.11")).toBe(false);
  expect(forgetsHostKey("10.0.0.1:22", undefined)).toBe(false);
});

let labs: Lab[] = [];
afterEach(async () => {
  await Promise.all(labs.map((l) => l.close()));
  labs = [];
  // Host key scans are kept per process (one per address in a `pulumi up`); tests reuse ports.
  delete (globalThis as { __swarmcloudScans?: unknown }).__swarmcloudScans;
});
async function server(opts: Parameters<typeof sshServer>[0] = {}): Promise<Lab> {
  const lab = await sshServer(opts);
  labs.push(lab);
  return lab;
}

const connection = (lab: Lab, hostKey?: string) => ({
  host: "127.0.0.1",
  port: lab.port,
  user: "root",
  privateKey: clientKey.private,
  dialErrorLimit: 3,
  perDialTimeout: 2,
  ...(hostKey === undefined ? {} : { hostKey }),
});
const script = (lab: Lab, create: string, hostKey?: string, node = "n1") => ({
  node,
  connection: connection(lab, hostKey),
  create,
  stdin: "SECRET-PASSWORD",
});
const address = (lab: Lab) => `127.0.0.1:${lab.port}`;

/** The server saw a connection and nothing after the key exchange: no login attempt, no command. */
function expectRefusedBeforeLogin(lab: Lab): void {
  expect(lab.connections).toBe(1); // refused once: no retry, no fallback
  expect([lab.authAttempts, lab.logins, lab.sessions, lab.commands]).toEqual([0, 0, 0, []]);
}

test("a pinned key that matches: the script runs and the key is recorded", async () => {
  const lab = await server();
  const r = await provider.create!(script(lab, "cat", lab.hostKey.line));
  expect(r.outs.stdout).toBe("SECRET-PASSWORD");
  expect(r.outs.hostKeys).toEqual({ [address(lab)]: lab.hostKey.line });
});

test("a pinned key that differs: refused before login, both fingerprints and the fix in the message", async () => {
  const lab = await server();
  const pinned = keyPair().line;
  const error = await provider.create!(script(lab, "cat", pinned, "pi-1")).then(
    () => undefined,
    (e: Error) => e,
  );
  expect(error).toBeInstanceOf(Error);
  expect(error!.message).toMatch(/^node pi-1: refused root@127\.0\.0\.1:\d+: it shows the SSH host key SHA256:/);
  expect(error!.message).toContain(hostKeyFingerprint(lab.hostKey.publicSSH));
  expect(error!.message).toContain(`but ${(parseHostKey(pinned) as { fingerprint: string }).fingerprint} was expected`);
  expect(error!.message).toContain("(pinned in swarmcloud:nodes)");
  expect(error!.message).toContain(`set hostKey: "${lab.hostKey.line}" on the node at 127.0.0.1 in swarmcloud:nodes`);
  expect(error!.message).toContain("Nothing was sent: no login, no script.");
  expect(error).toMatchObject({ failure: "hostKey", seenKey: lab.hostKey.line });
  expectRefusedBeforeLogin(lab);
});

test("trust on first use: the first run records the key, a later run against another key is refused", async () => {
  const first = await server();
  const created = await provider.create!({ ...script(first, "echo first"), delete: "echo delete" });
  expect(created.outs.hostKeys).toEqual({ [address(first)]: first.hostKey.line });

  // Another machine answers on the same address.
  await first.close();
  labs = [];
  const impostor = await server({ port: first.port });
  const olds = created.outs;
  const news = { ...script(impostor, "echo changed"), delete: "echo delete" };
  await expect(provider.update!("id", olds, news)).rejects.toThrow(
    new RegExp(
      `^node n1: refused root@127\\.0\\.0\\.1:${first.port}: it shows the SSH host key ${escape(hostKeyFingerprint(impostor.hostKey.publicSSH))} ` +
        `but ${escape(hostKeyFingerprint(first.hostKey.publicSSH))} was expected \\(recorded on the first connection\\)`,
    ),
  );
  await expect(provider.delete!("id", olds)).rejects.toThrow(
    /recorded on the first connection.*SWARMCLOUD_FORGET_HOST_KEYS=127\.0\.0\.1:\d+ pulumi up/s,
  );
  expect([impostor.connections, impostor.authAttempts, impostor.sessions]).toEqual([2, 0, 0]);
});

test("the recorded key alone changes nothing; forgetting it is a change, and the next run records the new key", async () => {
  const first = await server();
  const inputs = script(first, "echo first");
  const created = await provider.create!(inputs);
  expect((await provider.diff!("id", created.outs, inputs)).changes).toBe(false);

  await first.close();
  labs = [];
  const replaced = await server({ port: first.port });
  process.env.SWARMCLOUD_FORGET_HOST_KEYS = address(first);
  try {
    expect((await provider.diff!("id", created.outs, inputs)).changes).toBe(true);
    const updated = await provider.update!("id", created.outs, { ...inputs, create: "echo again" });
    expect(updated.outs.stdout).toBe("again");
    expect(updated.outs.hostKeys).toEqual({ [address(first)]: replaced.hostKey.line });
  } finally {
    delete process.env.SWARMCLOUD_FORGET_HOST_KEYS;
  }
});

test("forgetting a key without a re-run learns the new one at once, by a key exchange without login", async () => {
  const first = await server();
  const inputs = script(first, "echo first");
  const created = await provider.create!(inputs);
  await first.close();
  labs = [];
  const replaced = await server({ port: first.port });
  process.env.SWARMCLOUD_FORGET_HOST_KEYS = address(first);
  try {
    const updated = await provider.update!("id", created.outs, inputs);
    expect(updated.outs.stdout).toBe("first");
    expect(updated.outs.hostKeys).toEqual({ [address(first)]: replaced.hostKey.line });
    // The scan saw the key and broke off: no login, no session, nothing sent.
    expect([replaced.connections, replaced.authAttempts, replaced.sessions]).toEqual([1, 0, 0]);
  } finally {
    delete process.env.SWARMCLOUD_FORGET_HOST_KEYS;
  }
  // From now on the new key is enforced like any recorded one.
  expect((await provider.diff!("id", created.outs, inputs)).changes).toBe(false);
});

test("a forgotten address that does not answer is left unrecorded: its next connection records the key", async () => {
  const first = await server();
  const inputs = script(first, "echo first");
  const created = await provider.create!(inputs);
  await first.close();
  labs = [];
  process.env.SWARMCLOUD_FORGET_HOST_KEYS = address(first);
  try {
    const updated = await provider.update!("id", created.outs, inputs);
    expect(updated.outs.hostKeys).toEqual({});
  } finally {
    delete process.env.SWARMCLOUD_FORGET_HOST_KEYS;
  }
});

test("a wrong key on a manager reached for another node's step names that manager, and the step's node", async () => {
  const manager = await server();
  const error = await provider.create!({
    node: "worker-2",
    connection: { ...connection(manager, keyPair().line), node: "manager-1" },
    create: "echo member",
    stdin: "SECRET-PASSWORD",
  }).then(
    () => undefined,
    (e: Error) => e,
  );
  expect(error?.message).toMatch(
    new RegExp(
      `^node manager-1: refused root@127\\.0\\.0\\.1:${manager.port} \\(for a step of node worker-2\\): it shows`,
    ),
  );
  expectRefusedBeforeLogin(manager);
});

test("a pin removed later leaves its key enforced; keys of connections no longer used are dropped", async () => {
  const lab = await server();
  const other = keyPair().line;
  const olds = {
    node: "n1",
    connection: connection(lab, lab.hostKey.line),
    create: "echo x",
    stdout: "x",
    hostKeys: { [address(lab)]: lab.hostKey.line, "10.9.9.9:22": other },
  };
  const news = { node: "n1", connection: connection(lab), create: "echo x" }; // hostKey removed: no rerun
  const updated = await provider.update!("id", olds, news);
  expect(updated.outs.hostKeys).toEqual({ [address(lab)]: lab.hostKey.line });
  expect(lab.connections).toBe(0);
});

test("a connection opened without a known key is never shared with a script that expects one", async () => {
  const lab = await server();
  expect((await provider.create!(script(lab, "echo unverified"))).outs.stdout).toBe("unverified");
  // The unverified connection is still pooled (idle); a wrong pin must not get it.
  await expect(provider.create!(script(lab, "echo pinned", keyPair().line))).rejects.toThrow(/refused/);
  expect(lab.sessions).toBe(1);
  // The right pin dials its own, verified connection.
  expect((await provider.create!(script(lab, "echo pinned", lab.hostKey.line))).outs.stdout).toBe("pinned");
  expect(lab.logins).toBe(2);
});

test("fallback connections record their keys too, and a wrong key on the first is not skipped over", async () => {
  const a = await server();
  const b = await server();
  // Both servers run commands on this machine: the first to get here says "not here" (exit 75).
  const marker = join(mkdtempSync(join(tmpdir(), "swarmcloud-hk-")), "asked");
  const ran = await provider.create!({
    node: "n1",
    connection: connection(a),
    fallbackConnections: [connection(b)],
    create: `if mkdir ${marker} 2>/dev/null; then exit 75; fi; echo ran`,
  });
  expect(ran.outs.stdout).toBe("ran");
  expect(ran.outs.hostKeys).toEqual({ [address(a)]: a.hostKey.line, [address(b)]: b.hostKey.line });
  // A wrong key on the first manager fails the step: the other managers are not tried.
  await expect(
    provider.create!({
      node: "n1",
      connection: connection(a, keyPair().line),
      fallbackConnections: [connection(b)],
      create: "echo ran",
    }),
  ).rejects.toThrow(/refused/);
  expect([a.sessions, b.sessions]).toEqual([1, 1]);
});

test("the provider, serialized and re-loaded as Pulumi does, pins and records the same way", async () => {
  const { text } = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
  const loaded = (requireFromString(text) as { handler: () => pulumi.dynamic.ResourceProvider }).handler();
  const lab = await server();
  const created = await loaded.create!({ ...script(lab, "cat"), delete: "echo delete" });
  expect(created.outs).toMatchObject({ stdout: "SECRET-PASSWORD", hostKeys: { [address(lab)]: lab.hostKey.line } });
  const wrong = keyPair();
  await expect(loaded.create!(script(lab, "cat", wrong.line, "pi-2"))).rejects.toThrow(
    new RegExp(
      `^node pi-2: refused .*${escape(hostKeyFingerprint(lab.hostKey.publicSSH))} but ${escape(hostKeyFingerprint(wrong.publicSSH))} was expected \\(pinned`,
    ),
  );
  await lab.close();
  labs = [];
  const impostor = await server({ port: lab.port });
  await expect(loaded.delete!("id", created.outs)).rejects.toThrow(/recorded on the first connection/);
  expect([impostor.authAttempts, impostor.sessions]).toEqual([0, 0]);
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
