/**
 * SSH host keys as OpenSSH writes them: the one place that reads a key line, names a key by its
 * fingerprint and says which signature algorithms make a server show that key. Pure; used by
 * the config parser (validation) and by the RemoteScript provider (pinning). No module state:
 * the provider that calls these is serialized by Pulumi and re-loaded.
 */

/** A parsed host key. */
export interface HostKey {
  /** Key type, e.g. `ssh-ed25519`. */
  type: string;
  /** The key as `<type> <base64>`, without host or comment: what is pinned and recorded. */
  line: string;
  /** OpenSSH's `SHA256:<base64 without padding>` of the key blob, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

/**
 * Signature algorithms (ssh2's `serverHostKey`) for each host key type ssh2 can verify. A client
 * expecting a key of one type offers only these, so a server with several keys shows that one.
 */
export function hostKeyAlgorithms(type: string): string[] | undefined {
  if (type === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  const single = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"];
  return single.includes(type) ? [type] : undefined;
}

/** `SHA256:<base64 without padding>` of a key blob. */
export function hostKeyFingerprint(blob: Buffer): string {
  const { createHash } = require("crypto") as typeof import("crypto");
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** The key blob ssh2 hands its `hostVerifier`, as a host key; its type is read from the blob. */
export function hostKeyOfBlob(blob: Buffer): HostKey {
  const type = blobType(blob) ?? "unknown";
  return { type, line: `${type} ${blob.toString("base64")}`, fingerprint: hostKeyFingerprint(blob) };
}

/** The type string at the start of a key blob (uint32 length, then the name). */
function blobType(blob: Buffer): string | undefined {
  if (blob.length < 4) return undefined;
  const n = blob.readUInt32BE(0);
  if (n === 0 || n > 64 || blob.length <= 4 + n) return undefined;
  return blob.subarray(4, 4 + n).toString("latin1");
}

/**
 * Reads an OpenSSH public key line: `<type> <base64> [comment]` (a `.pub` file,
 * `/etc/ssh/ssh_host_ed25519_key.pub`), or `<host> <type> <base64>` as `ssh-keyscan` prints it.
 * Returns the key, or why the text is not one.
 */
export function parseHostKey(text: string): HostKey | { problem: string } {
  const words = text.trim().split(/\s+/);
  const at = hostKeyAlgorithms(words[0] ?? "") ? 0 : hostKeyAlgorithms(words[1] ?? "") ? 1 : -1;
  if (at < 0) {
    return {
      problem:
        "is not an OpenSSH public key line: expected `<type> <base64>` with type ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa",
    };
  }
  const type = words[at]!;
  const data = words[at + 1] ?? "";
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data) || data.length % 4 !== 0) {
    return { problem: `the key data after ${type} is not base64` };
  }
  const blob = Buffer.from(data, "base64");
  const inner = blobType(blob);
  if (inner !== type) {
    return { problem: `the key data is ${inner === undefined ? "no SSH key" : `a ${inner} key`}, not ${type}` };
  }
  return { type, line: `${type} ${data}`, fingerprint: hostKeyFingerprint(blob) };
}
