/**
 * Shared Pulumi mocks for unit tests. Call `setupMocks()` once at the top of a test file (before
 * any resource is constructed); every resource the program registers is then recorded with its
 * type, name, inputs, parent and options, so tests can assert on the graph.
 *
 *   const { recorded, resourcesOfType, settled } = setupMocks();  // or import them
 *   new LocalNodes("swarmcloud", args);
 *   await settled();
 *   expect(resourcesOfType("docker:index/container:Container")).toHaveLength(5);
 *
 * Resources get `id = name + "_id"` (DigitalOcean droplets get a numeric id, as the real API
 * does) and `state = inputs` plus the computed outputs of the types listed in `computed`.
 * Provider function calls (invokes) THROW unless the test passes a handler for their token.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- a test double: inputs and state are whatever each provider takes */
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "crypto";

export interface RecordedResource {
  /** Type token, e.g. `docker:index/container:Container`. */
  type: string;
  /** Logical (Pulumi) name. */
  name: string;
  /** URN as the mock monitor builds it (the parent's type is folded into it). */
  urn: string;
  /** Inputs as the engine receives them (secrets unwrapped, unknowns undefined). */
  inputs: Record<string, any>;
  /** Paths of the inputs that arrived as secrets, e.g. `uploads[0].content`. */
  secretInputs: string[];
  /** ID the mock gave it ("" for components). */
  id: string;
  /** Outputs the mock returned (inputs plus computed values such as a droplet's address). */
  state: Record<string, any>;
  /** False for component resources. */
  custom: boolean;
  /** URN of the parent resource ("" when it is the stack). */
  parent: string;
  /** URNs of the resources it depends on (explicit `dependsOn` and inputs' resources). */
  dependencies: string[];
  /** The resource options that matter for tests. */
  options: {
    deleteBeforeReplace: boolean;
    additionalSecretOutputs: string[];
    ignoreChanges: string[];
    replaceOnChanges: string[];
    protect: boolean;
  };
}

export interface SetupOptions {
  /** Extra computed outputs for a resource (merged over inputs and the built-in computed ones). */
  state?: (args: pulumi.runtime.MockResourceArgs) => Record<string, unknown> | undefined;
  /** Handlers for provider function calls, by token; any other call throws. */
  calls?: Record<string, (inputs: Record<string, any>) => Record<string, unknown>>;
}

/**
 * What a cluster's RemoteScripts print under mocks, for the tests that run the whole program: the
 * swarm's bootstrap and join ids, the mount path, each stack deploy's services; undefined for
 * any other type.
 */
export function clusterStepState(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> | undefined {
  if (!args.type.includes("RemoteScript")) return undefined;
  if (args.name.endsWith("-bootstrap")) return { stdout: "CLUSTER1 NODE1 SWMTKN-worker SWMTKN-manager" };
  if (args.name.endsWith("-join")) return { stdout: `ID-${args.name}` };
  if (args.name.endsWith("-mount")) return { stdout: "/mnt/swarmcloud" };
  if (args.name.endsWith("-deploy")) return { stdout: `${args.inputs.environment.STACK}_x replicated 1/1` };
  return { stdout: "" };
}

/** Every resource registered since `setupMocks()` (or the last `clearRecorded()`), in order. */
export const recorded: RecordedResource[] = [];

/** Recorded resources of one type token. */
export function resourcesOfType(type: string): RecordedResource[] {
  return recorded.filter((r) => r.type === type);
}

/** Forgets what has been recorded so far (resources stay registered with the mock monitor). */
export function clearRecorded(): void {
  recorded.length = 0;
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const SECRET_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** Replaces Pulumi's secret envelopes with their values, at any depth (as a provider sees inputs). */
function unwrapSecrets(value: any): any {
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value && typeof value === "object") {
    if (value[SECRET_SIG] === SECRET_VALUE) return unwrapSecrets(value.value);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
  }
  return value;
}

/** Paths (`a.b[0].c`) of the secret envelopes in a value, at any depth. */
function secretPaths(value: any, path = ""): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => secretPaths(v, `${path}[${i}]`));
  if (value && typeof value === "object") {
    if (value[SECRET_SIG] === SECRET_VALUE) return [path];
    return Object.entries(value).flatMap(([k, v]) => secretPaths(v, path === "" ? k : `${path}.${k}`));
  }
  return [];
}

/** A short deterministic hex digest, for fake keys, digests and addresses. */
function digest(text: string, length = 16): string {
  return createHash("sha256").update(text).digest("hex").slice(0, length);
}

/** Computed outputs that real providers return and our components read. */
function computed(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
  const { type, name, inputs } = args;
  switch (type) {
    case "tls:index/privateKey:PrivateKey":
      return {
        privateKeyOpenssh: `-----BEGIN OPENSSH PRIVATE KEY-----\nmock-${name}\n-----END OPENSSH PRIVATE KEY-----\n`,
        privateKeyPem: `-----BEGIN PRIVATE KEY-----\nmock-${name}\n-----END PRIVATE KEY-----\n`,
        publicKeyOpenssh: `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA${digest(name, 24)}\n`,
        publicKeyPem: `-----BEGIN PUBLIC KEY-----\nmock-${name}\n-----END PUBLIC KEY-----\n`,
        publicKeyFingerprintSha256: `SHA256:${digest(name, 43)}`,
      };
    case "docker:index/image:Image":
      return { repoDigest: `sha256:${digest(name, 64)}`, baseImageName: inputs.imageName };
    case "docker:index/network:Network":
    case "docker:index/volume:Volume":
    case "docker:index/container:Container":
      return { name: inputs.name ?? name };
    case "digitalocean:index/sshKey:SshKey":
      return { fingerprint: `fp:${digest(name, 32)}` };
    case "digitalocean:index/vpc:Vpc":
      return { urn: `do:vpc:${name}_id` };
    case "digitalocean:index/droplet:Droplet": {
      const n = parseInt(digest(name, 4), 16) % 250;
      return { ipv4Address: `203.0.113.${n + 1}`, ipv4AddressPrivate: `10.20.0.${n + 1}`, urn: `do:droplet:${name}` };
    }
    case "random:index/randomPassword:RandomPassword":
      return { result: `mock-password-${digest(name, 12)}` };
    case "pulumi-nodejs:dynamic/swarmcloud:GeneratedKey":
      return mockGeneratedKey(name);
    case "pulumi-nodejs:dynamic/swarmcloud:GeneratedSecret":
      return { value: mockGeneratedSecret(name) };
    case "command:local:Command":
    case "command:remote:Command":
      return { stdout: "", stderr: "" };
    default:
      return {};
  }
}

/**
 * A GeneratedKey's outputs, fixed per name: a well-formed ed25519 public key line (its 32 key
 * bytes are a digest of the name, so it parses like a real one), its OpenSSH fingerprint and a
 * stand-in private key.
 */
export function mockGeneratedKey(name: string): { privateKey: string; publicKey: string; fingerprint: string } {
  const field = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  const blob = Buffer.concat([field(Buffer.from("ssh-ed25519")), field(createHash("sha256").update(name).digest())]);
  const fingerprint = `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\nmock-${name}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${blob.toString("base64")}`,
    fingerprint,
  };
}

/** A GeneratedSecret's value, fixed per name: 64 hex characters. */
export function mockGeneratedSecret(name: string): string {
  return createHash("sha256").update(`secret:${name}`).digest("hex");
}

function idOf(args: pulumi.runtime.MockResourceArgs): string {
  // DigitalOcean droplet ids are integers; components convert them with Number().
  if (args.type === "digitalocean:index/droplet:Droplet") return String(parseInt(digest(args.name, 6), 16));
  return `${args.name}_id`;
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getCustom(): boolean;
  getParent(): string;
  getDependenciesList(): string[];
  getDeletebeforereplace(): boolean;
  getAdditionalsecretoutputsList(): string[];
  getIgnorechangesList(): string[];
  getReplaceonchangesList(): string[];
  getProtect(): boolean;
}

let installed = false;
let pending = 0;
let registrations = 0;

/**
 * Installs the mocks (once per test file; a second call only returns the helpers) and starts
 * recording. Returns the helpers for convenience.
 */
export function setupMocks(options: SetupOptions = {}) {
  if (!installed) {
    installed = true;
    // Dynamic providers (RemoteScript) are serialized into state by the real engine; that needs
    // V8's inspector, which jest's module system hides. The provider's logic is tested directly.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const closure = require("@pulumi/pulumi/runtime/closure/serializeClosure") as {
      serializeFunction: (...args: unknown[]) => Promise<unknown>;
    };
    closure.serializeFunction = async () => ({
      text: "/* provider serialized by the engine */",
      exportName: "handler",
      containsSecrets: false,
    });
    const seen = new Map<
      string,
      { id: string; inputs: Record<string, any>; secretInputs: string[]; state: Record<string, any> }
    >();
    void pulumi.runtime.setMocks(
      {
        newResource(args: pulumi.runtime.MockResourceArgs): pulumi.runtime.MockResourceResult {
          const state = { ...args.inputs, ...computed(args), ...(options.state?.(args) ?? {}) };
          const id = idOf(args);
          seen.set(`${args.type}::${args.name}`, {
            id,
            inputs: unwrapSecrets(args.inputs),
            secretInputs: secretPaths(args.inputs),
            state,
          });
          return { id, state };
        },
        call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
          const handler = options.calls?.[args.token];
          if (handler === undefined) {
            throw new Error(`unmocked provider call ${args.token}(${JSON.stringify(args.inputs)})`);
          }
          return handler(args.inputs);
        },
      },
      "swarmcloud",
      "test",
    );
    // Wrap the mock monitor's registerResource to see what MockResourceArgs leaves out:
    // the parent, dependencies and options of every resource.
    const monitor = pulumi.runtime.getMonitor() as unknown as {
      registerResource(
        req: RegisterRequest,
        cb: (err: unknown, res: { getUrn(): string } | undefined) => void,
      ): Promise<void>;
    };
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = async (req, cb) => {
      pending++;
      registrations++;
      try {
        await original(req, (err, res) => {
          if (!err && res) {
            const known = seen.get(`${req.getType()}::${req.getName()}`);
            recorded.push({
              type: req.getType(),
              name: req.getName(),
              urn: res.getUrn(),
              inputs: known?.inputs ?? {},
              secretInputs: known?.secretInputs ?? [],
              state: known?.state ?? {},
              id: known?.id ?? "",
              custom: req.getCustom(),
              parent: req.getParent(),
              dependencies: req.getDependenciesList(),
              options: {
                deleteBeforeReplace: req.getDeletebeforereplace(),
                additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                ignoreChanges: req.getIgnorechangesList(),
                replaceOnChanges: req.getReplaceonchangesList(),
                protect: req.getProtect(),
              },
            });
          }
          cb(err, res);
        });
      } finally {
        pending--;
      }
    };
  }
  return { recorded, resourcesOfType, clearRecorded, settled };
}

/** Resolves once every resource constructed so far (and those it led to) is registered. */
export async function settled(): Promise<void> {
  let quiet = 0;
  let seen = -1;
  for (let i = 0; i < 2000 && quiet < 5; i++) {
    await new Promise((r) => setImmediate(r));
    if (pending === 0 && registrations === seen) quiet++;
    else quiet = 0;
    seen = registrations;
  }
  if (pending !== 0) throw new Error(`mocks: ${pending} resource registrations never finished`);
}

/** The value of an Output (tests only; unknown values resolve to undefined). */
export function valueOf<T>(output: pulumi.Input<T>): Promise<T> {
  return new Promise((resolve) => pulumi.output(output).apply((v) => resolve(v as T)));
}

/** The recorded resource with this logical name (throws when there is none or several). */
export function recordedNamed(name: string): RecordedResource {
  const found = recorded.filter((r) => r.name === name);
  if (found.length !== 1) {
    throw new Error(
      `expected one resource named ${name}, found ${found.length}: ${recorded.map((r) => r.name).join(", ")}`,
    );
  }
  return found[0]!;
}
