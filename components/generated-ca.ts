import * as pulumi from "@pulumi/pulumi";

/**
 * A certificate authority made by this program: the cluster's own CA, which signs each node's
 * Gluster TLS certificate on the node (gluster-tls-cert.sh), so that every node's CA file holds
 * this one certificate and stays the same as nodes come and go (Gluster reads it only when it
 * starts). A dynamic resource of our own rather than @pulumi/tls, whose provider plugin cannot
 * be had in the lab; the certificate is built with node-forge (X.509 in plain JavaScript; Node's
 * crypto makes keys and signatures but not certificates). Made once, kept in state (the private
 * key as a secret), never changed: only a new `commonName` or `days` (or `pulumi up --replace`)
 * makes a new CA, and with it a new certificate on every node.
 */
export interface GeneratedCaArgs {
  /** The CA certificate's subject common name. */
  commonName: pulumi.Input<string>;
  /** Days the CA certificate is valid. Default 7300 (twenty years: nothing renews it). */
  days?: pulumi.Input<number>;
}

/** What the provider keeps in state. */
interface CaState {
  commonName: string;
  days: number;
  /** The self-signed CA certificate, PEM: public, written to every node's CA file. */
  certificate: string;
  /** The CA's RSA private key, PKCS#8 PEM: a secret, sent to a node only on stdin to sign its certificate. */
  privateKey: string;
}

type CaInputs = { commonName: string; days?: number };

/** Days a CA certificate is valid unless `days` says otherwise: twenty years, as nothing renews it. */
const DEFAULT_DAYS = 7300;

/** Bits of the CA's RSA key (Gluster's guide and OpenSSL's defaults: RSA; 3072 is NIST's 128-bit level). */
const CA_KEY_BITS = 3072;

/**
 * A new CA: an RSA key from Node's crypto and a self-signed certificate from node-forge, marked
 * as a CA that may sign certificates (basicConstraints CA:TRUE, keyUsage keyCertSign), with a
 * random positive 128-bit serial. `now` is a parameter for tests.
 */
export function generateCa(
  commonName: string,
  days: number,
  now: Date = new Date(),
): Omit<CaState, "commonName" | "days"> {
  const crypto = require("crypto") as typeof import("crypto");
  const forge = require("node-forge") as typeof import("node-forge");
  if (!/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/.test(commonName)) {
    throw new Error(`GeneratedCa: commonName ${JSON.stringify(commonName)}: 1-64 letters, digits, space . _ -`);
  }
  if (!Number.isInteger(days) || days < 1 || days > 36500) {
    throw new Error(`GeneratedCa: days ${String(days)}: a whole number from 1 to 36500`);
  }
  const { privateKey } = crypto.generateKeyPairSync("rsa", {
    modulusLength: CA_KEY_BITS,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  const key = forge.pki.privateKeyFromPem(privateKey);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  // A positive INTEGER: the first byte below 0x80.
  const serial = crypto.randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  cert.serialNumber = serial.toString("hex");
  cert.validity.notBefore = new Date(now.getTime() - 60 * 60 * 1000); // an hour of clock skew
  cert.validity.notAfter = new Date(now.getTime() + days * 24 * 60 * 60 * 1000);
  const subject = [{ name: "commonName", value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return { certificate: forge.pki.certificateToPem(cert), privateKey };
}

/**
 * The provider: `create` makes the CA; `diff` replaces it when its name or lifetime changes;
 * there is nothing to delete. Free of captured state, like RemoteScript's (it is serialized).
 */
export const generatedCaProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: CaInputs): Promise<pulumi.dynamic.CreateResult> {
    const days = inputs.days ?? DEFAULT_DAYS;
    const ca = generateCa(inputs.commonName, days);
    const outs: CaState = { commonName: inputs.commonName, days, ...ca };
    const { randomUUID } = require("crypto") as typeof import("crypto");
    return { id: randomUUID(), outs };
  },

  async diff(_id: string, olds: CaState, news: CaInputs): Promise<pulumi.dynamic.DiffResult> {
    const replaces: string[] = [];
    if (olds.commonName !== news.commonName) replaces.push("commonName");
    if (olds.days !== (news.days ?? DEFAULT_DAYS)) replaces.push("days");
    return { changes: replaces.length > 0, replaces, deleteBeforeReplace: false };
  },

  // A refresh has nothing to read back: the CA lives only in state.
  async read(id: string, props: CaState): Promise<pulumi.dynamic.ReadResult> {
    return { id, props };
  },
};

/** A certificate authority made once by this program; see `GeneratedCaArgs`. */
export class GeneratedCa extends pulumi.dynamic.Resource {
  /** The CA certificate, PEM (public). */
  declare public readonly certificate: pulumi.Output<string>;
  /** The CA's private key, PEM (a Pulumi secret). */
  declare public readonly privateKey: pulumi.Output<string>;

  constructor(name: string, args: GeneratedCaArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      generatedCaProvider,
      name,
      { commonName: args.commonName, days: args.days ?? DEFAULT_DAYS, certificate: undefined, privateKey: undefined },
      { ...opts, additionalSecretOutputs: ["privateKey"] },
      "swarmcloud",
      "GeneratedCa",
    );
  }
}
