import * as pulumi from "@pulumi/pulumi";

/**
 * A random secret made by this program, for what no person ever types (the shared secret of
 * Portainer's server and agents): a dynamic resource of our own rather than @pulumi/random, whose
 * provider plugin cannot be had in the lab. Made once, kept in state as a secret, never changed:
 * only `pulumi up --replace` (or a new `bytes`) makes a new one.
 */
export interface GeneratedSecretArgs {
  /** Random bytes; the value is their hex, twice as many characters. Default 32. */
  bytes?: pulumi.Input<number>;
}

/** What the provider keeps in state: the value (a secret output). */
interface SecretState {
  bytes: number;
  value: string;
}

/** The provider: `create` draws the bytes; only a new byte count replaces it; nothing to delete. */
export const generatedSecretProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: { bytes?: number }): Promise<pulumi.dynamic.CreateResult> {
    const bytes = inputs.bytes ?? 32;
    if (!Number.isInteger(bytes) || bytes < 16 || bytes > 64) {
      throw new Error(`GeneratedSecret: bytes ${String(bytes)}: a whole number from 16 to 64`);
    }
    const { randomBytes, randomUUID } = require("crypto") as typeof import("crypto");
    const outs: SecretState = { bytes, value: randomBytes(bytes).toString("hex") };
    return { id: randomUUID(), outs };
  },

  async diff(_id: string, olds: SecretState, news: { bytes?: number }): Promise<pulumi.dynamic.DiffResult> {
    const replaces = olds.bytes === (news.bytes ?? 32) ? [] : ["bytes"];
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
  },

  // A refresh has nothing to read back: the value lives only in state.
  async read(id: string, props: SecretState): Promise<pulumi.dynamic.ReadResult> {
    return { id, props };
  },
};

/** A random hex secret made once by this program; see `GeneratedSecretArgs`. */
export class GeneratedSecret extends pulumi.dynamic.Resource {
  /** The secret, `bytes` random bytes as hex (a Pulumi secret). */
  declare public readonly value: pulumi.Output<string>;

  constructor(name: string, args: GeneratedSecretArgs = {}, opts?: pulumi.CustomResourceOptions) {
    super(
      generatedSecretProvider,
      name,
      { bytes: args.bytes ?? 32, value: undefined },
      { ...opts, additionalSecretOutputs: ["value"] },
      "swarmcloud",
      "GeneratedSecret",
    );
  }
}
