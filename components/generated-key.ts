import * as pulumi from "@pulumi/pulumi";
import { hostKeyFingerprint } from "./hostkey";

/**
 * An SSH key pair made by this program: a node's host key, given to the node when it is created
 * (a local container, a droplet) and pinned in its connection, so the first connection is
 * already verified. A dynamic resource of our own rather than @pulumi/tls, whose provider plugin
 * cannot be had in the lab; made once, kept in state (the private key as a secret), never
 * changed: only a new `algorithm` (or `pulumi up --replace`) makes a new key.
 */
export interface GeneratedKeyArgs {
  /** Key type. Default `ed25519` (the only one: what every OpenSSH since 6.5 serves). */
  algorithm?: pulumi.Input<"ed25519">;
}

/** What the provider keeps in state. */
interface KeyState {
  algorithm: "ed25519";
  /** OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`), a secret. */
  privateKey: string;
  /** `ssh-ed25519 <base64>`: what the node shows, and what its connection pins. */
  publicKey: string;
  /** `SHA256:<base64>`, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

/** A drawn key pair, as ssh2's `utils.generateKeyPairSync` returns it. */
type Drawn = { private: string; public: string };

/** Bytes of an ed25519 public key blob: the type string `ssh-ed25519` and the 32-byte key, each length-prefixed. */
const ED25519_BLOB_BYTES = 4 + 11 + 4 + 32;

/**
 * A new ed25519 key pair in OpenSSH format, checked before it is used: ssh2's generator drops the
 * leading zero byte of a public key that starts with one (about 1 key in 250), and neither ssh2
 * nor OpenSSH reads such a key back, so a key whose halves do not parse into one 32-byte public
 * key is drawn again. `draw` is ssh2's generator (a parameter for tests).
 */
export function generateEd25519(
  draw: () => Drawn = () => (require("ssh2") as typeof import("ssh2")).utils.generateKeyPairSync("ed25519"),
): Omit<KeyState, "algorithm"> {
  const { utils } = require("ssh2") as typeof import("ssh2");
  for (let attempt = 0; attempt < 50; attempt++) {
    const k = draw();
    const priv = utils.parseKey(k.private);
    const pub = utils.parseKey(k.public);
    if (priv instanceof Error || pub instanceof Error || Array.isArray(priv) || Array.isArray(pub)) continue;
    const blob = priv.getPublicSSH();
    if (priv.type !== "ssh-ed25519" || blob.length !== ED25519_BLOB_BYTES || !blob.equals(pub.getPublicSSH())) continue;
    return {
      privateKey: k.private,
      publicKey: `ssh-ed25519 ${blob.toString("base64")}`,
      fingerprint: hostKeyFingerprint(blob),
    };
  }
  throw new Error("could not generate a readable ed25519 key in 50 attempts");
}

/**
 * The provider: `create` makes the key; `diff` replaces it only when the algorithm changes;
 * there is nothing to delete. Free of captured state, like RemoteScript's (it is serialized).
 */
export const generatedKeyProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: { algorithm?: "ed25519" }): Promise<pulumi.dynamic.CreateResult> {
    const algorithm = inputs.algorithm ?? "ed25519";
    if (algorithm !== "ed25519") throw new Error(`GeneratedKey: algorithm ${String(algorithm)}: only ed25519`);
    const key = generateEd25519();
    const outs: KeyState = { algorithm, ...key };
    return { id: key.fingerprint, outs };
  },

  async diff(_id: string, olds: KeyState, news: { algorithm?: "ed25519" }): Promise<pulumi.dynamic.DiffResult> {
    const replaces = (olds.algorithm ?? "ed25519") === (news.algorithm ?? "ed25519") ? [] : ["algorithm"];
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
  },

  async read(id: string, props: KeyState): Promise<pulumi.dynamic.ReadResult> {
    return { id, props };
  },
};

/** An SSH key pair made once by this program; see `GeneratedKeyArgs`. */
export class GeneratedKey extends pulumi.dynamic.Resource {
  /** OpenSSH private key (a secret). */
  declare public readonly privateKey: pulumi.Output<string>;
  /** `ssh-ed25519 <base64>`. */
  declare public readonly publicKey: pulumi.Output<string>;
  /** `SHA256:<base64>`, as `ssh-keygen -lf` prints it. */
  declare public readonly fingerprint: pulumi.Output<string>;

  constructor(name: string, args: GeneratedKeyArgs = {}, opts?: pulumi.CustomResourceOptions) {
    super(
      generatedKeyProvider,
      name,
      { algorithm: args.algorithm ?? "ed25519", privateKey: undefined, publicKey: undefined, fingerprint: undefined },
      { ...opts, additionalSecretOutputs: ["privateKey"] },
      "swarmcloud",
      "GeneratedKey",
    );
  }
}
