/**
 * GeneratedKey: the host keys this program makes for the nodes it creates. Each key must be one
 * OpenSSH reads (ssh-keygen, as sshd would), whose public half and fingerprint are what the
 * node's connection pins; a server that holds the key is accepted on the very first connection,
 * and any other is refused before login.
 */
import * as pulumi from "@pulumi/pulumi";
import { execFileSync } from "child_process";
import { mkdtempSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { utils } from "ssh2";
import { generatedKeyProvider as provider, generateEd25519 } from "../../components/generated-key";
import { parseHostKey } from "../../components/hostkey";
import { remoteScriptProvider } from "../../components/remote";
import { clientKey, KeyPair, Lab, sshServer } from "./ssh-server";

/** How Pulumi's dynamic-provider host loads a serialized provider (a dependency of @pulumi/pulumi). */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const requireFromString = require("require-from-string") as (code: string) => unknown;

jest.setTimeout(30_000);

const dir = mkdtempSync(join(tmpdir(), "swarmcloud-genkey-"));

/** What OpenSSH makes of a private key: the public line `ssh-keygen -y` derives, and its fingerprint. */
function openssh(privateKey: string, name: string): { line: string; fingerprint: string } {
  const file = join(dir, name);
  writeFileSync(file, privateKey, { mode: 0o600 });
  const line = execFileSync("ssh-keygen", ["-y", "-f", file]).toString().trim().split(" ").slice(0, 2).join(" ");
  writeFileSync(`${file}.pub`, `${line}\n`);
  const fingerprint = execFileSync("ssh-keygen", ["-lf", `${file}.pub`])
    .toString()
    .split(" ")[1]!;
  return { line, fingerprint };
}

test("every key is one OpenSSH reads: its public half and fingerprint are what ssh-keygen derives", () => {
  for (let i = 0; i < 12; i++) {
    const key = generateEd25519();
    expect(key.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    expect(key.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43}$/);
    expect(openssh(key.privateKey, `k${i}`)).toEqual({ line: key.publicKey, fingerprint: key.fingerprint });
    expect(parseHostKey(key.publicKey)).toEqual({
      type: "ssh-ed25519",
      line: key.publicKey,
      fingerprint: key.fingerprint,
    });
  }
});

test("a drawn pair that does not read back, or whose halves differ, is drawn again; 50 bad draws fail", () => {
  const a = utils.generateKeyPairSync("ed25519");
  const b = utils.generateKeyPairSync("ed25519");
  // What ssh2's generator makes of a public key whose first byte is zero: 31 bytes, unreadable.
  const truncated = {
    private: "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    public: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAH5HWrIPEgdOhCTYjXK0uIUgvZ0ttNZpKl5CkOfB3QsQ=",
  };
  const draws = [truncated, { private: a.private, public: b.public }, a];
  let drawn = 0;
  const key = generateEd25519(() => draws[drawn++]!);
  expect(drawn).toBe(3);
  expect(key.privateKey).toBe(a.private);
  expect(`${key.publicKey} `).toBe(`${a.public.split(" ").slice(0, 2).join(" ")} `);
  expect(() => generateEd25519(() => truncated)).toThrow(/could not generate a readable ed25519 key in 50 attempts/);
});

test("the provider makes a key once: same algorithm, no change; another algorithm replaces it", async () => {
  const made = await provider.create!({ algorithm: "ed25519" });
  expect(made.id).toBe(made.outs.fingerprint);
  expect(Object.keys(made.outs).sort()).toEqual(["algorithm", "fingerprint", "privateKey", "publicKey"]);
  expect(openssh(made.outs.privateKey, "made").fingerprint).toBe(made.outs.fingerprint);
  expect(await provider.diff!(made.id, made.outs, { algorithm: "ed25519" })).toEqual({
    changes: false,
    replaces: [],
    deleteBeforeReplace: false,
  });
  expect(await provider.diff!(made.id, made.outs, {})).toMatchObject({ changes: false });
  expect(await provider.diff!(made.id, made.outs, { algorithm: "rsa" as "ed25519" })).toMatchObject({
    changes: true,
    replaces: ["algorithm"],
  });
  await expect(provider.create!({ algorithm: "rsa" })).rejects.toThrow(/only ed25519/);
  // Two keys are two keys.
  expect((await provider.create!({})).outs.fingerprint).not.toBe(made.outs.fingerprint);
});

test("the provider, serialized and re-loaded as Pulumi does, makes readable keys", async () => {
  const { text } = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
  const loaded = (requireFromString(text) as { handler: () => pulumi.dynamic.ResourceProvider }).handler();
  const made = await loaded.create!({ algorithm: "ed25519" });
  expect(openssh(made.outs.privateKey, "loaded")).toEqual({
    line: made.outs.publicKey,
    fingerprint: made.outs.fingerprint,
  });
});

describe("a node that holds its generated key", () => {
  let lab: Lab;
  afterEach(() => lab?.close());

  /** The generated key as the test server's host key. */
  function hostKeyPair(key: ReturnType<typeof generateEd25519>): KeyPair {
    const blob = Buffer.from(key.publicKey.split(" ")[1]!, "base64");
    return { private: key.privateKey, public: key.publicKey, publicSSH: blob, line: key.publicKey };
  }
  const run = (publicKey: string, port: number) =>
    remoteScriptProvider.create!({
      node: "manager-1",
      connection: {
        host: "127.0.0.1",
        port,
        user: "root",
        privateKey: clientKey.private,
        dialErrorLimit: 2,
        perDialTimeout: 2,
        hostKey: publicKey,
        hostKeySource: "program",
        node: "manager-1",
      },
      create: "cat",
      stdin: "SECRET",
    });

  test("is verified on the very first connection", async () => {
    const key = generateEd25519();
    lab = await sshServer({ hostKey: hostKeyPair(key) });
    const r = await run(key.publicKey, lab.port);
    expect(r.outs.stdout).toBe("SECRET");
    expect(r.outs.hostKeys).toEqual({ [`127.0.0.1:${lab.port}`]: key.publicKey });
  });

  test("another machine on its address is refused before login, told the key was made by the program", async () => {
    const key = generateEd25519();
    lab = await sshServer();
    const error = await run(key.publicKey, lab.port).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(
      new RegExp(
        `^node manager-1: refused root@127\\.0\\.0\\.1:${lab.port}: it shows the SSH host key SHA256:\\S+ but ${key.fingerprint.replace(/[+/]/g, "\\$&")} was expected \\(made by this program and given to the node when it was created\\)`,
      ),
    );
    expect(error?.message).toContain("pulumi up --replace <URN of its container or droplet>");
    expect(error?.message).not.toContain("SWARMCLOUD_FORGET_HOST_KEYS");
    expect([lab.connections, lab.authAttempts, lab.sessions]).toEqual([1, 0, 0]);
  });
});
