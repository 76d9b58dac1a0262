/**
 * The whole program as one function: the engine's config in, the graph and the stack outputs
 * out. config -> node source -> DockerHost per node -> Swarm -> GlusterVolume -> stacks -> outputs.
 *
 * index.ts reads the engine (config map, which keys are secret, the previous node list) and
 * calls `main`; a unit test calls it with each stack file's config under Pulumi mocks.
 */
import * as pulumi from "@pulumi/pulumi";
import { appDirs, AppsOutputs, deployApps, FrontDoorPlace } from "./apps";
import {
  BACKUP_SECRET_KEYS,
  brickNodes,
  edgeNodes,
  parseConfig,
  quorumProblem,
  RawConfig,
  SECRET_KEYS,
  SecretKey,
  SwarmcloudConfig,
  volumeRenameProblem,
} from "./config";
import { GlusterVolume } from "./gluster";
import { DockerHost } from "./host";
import { nodeSource } from "./nodes/source";
import { ClusterNode } from "./nodes/types";
import { Swarm } from "./swarm";
import { FloatingDoor, NodeUpgrades } from "./upgrade";

/** What the program reads from the engine and its surroundings; index.ts fills it in. */
export interface ProgramInputs {
  /** The stack's name; every resource's name starts with it. */
  stack: string;
  /**
   * The stack's config as the engine hands it over (`pulumi.runtime.allConfig()`): full keys
   * such as `swarmcloud:nodes`, values as text (objects and lists as JSON, secrets decrypted).
   */
  config: Record<string, string>;
  /** Whether the engine holds a full key encrypted. */
  isSecret: (fullKey: string) => boolean;
  /** DIGITALOCEAN_TOKEN from the environment: the provider's token where `digitalocean:token` is unset. */
  digitaloceanTokenEnv?: string;
  /** The repository's root (node-image/, .vagrant-stacks/). */
  repoDir: string;
  /**
   * What this stack exported last time under an output name (`nodeList`, `glusterVolume`):
   * undefined on its first update, or when that update did not export it.
   */
  previousOutput: (name: string) => Promise<unknown>;
}

type Secrets = Partial<Record<SecretKey, pulumi.Output<string>>>;

const PREFIX = "swarmcloud:";

/**
 * Every swarmcloud:* value the stack sets (secrets excluded), JSON-decoded where it is JSON, and
 * the keys among them stored as secrets (a mistyped secret key), whose values no message shows.
 */
function readRawConfig(inputs: Pick<ProgramInputs, "config" | "isSecret">): {
  raw: RawConfig;
  secretKeys: string[];
} {
  const raw: RawConfig = {};
  const secretKeys: string[] = [];
  for (const [fullKey, value] of Object.entries(inputs.config)) {
    if (!fullKey.startsWith(PREFIX)) continue;
    const key = fullKey.slice(PREFIX.length);
    if ((SECRET_KEYS as readonly string[]).includes(key)) continue;
    if (inputs.isSecret(fullKey)) secretKeys.push(key);
    try {
      raw[key] = JSON.parse(value);
    } catch {
      raw[key] = value;
    }
  }
  return { raw, secretKeys };
}

/**
 * Secret settings: empty (the declared default) means unset. A value stored in plaintext is
 * refused, so a password never sits readable in a stack file.
 */
function readSecrets(inputs: Pick<ProgramInputs, "config" | "isSecret">): {
  values: Secrets;
  errors: string[];
} {
  const values: Secrets = {};
  const errors: string[] = [];
  for (const key of SECRET_KEYS) {
    const value = inputs.config[`${PREFIX}${key}`];
    if (value === undefined || value === "") continue;
    if (!inputs.isSecret(`${PREFIX}${key}`)) {
      errors.push(
        `swarmcloud:${key} is stored in plaintext: set it again with pulumi config set --secret swarmcloud:${key}`,
      );
    }
    // Ghost refuses a shorter one at setup, after the whole cluster is up: say so now (no value shown).
    if (key === "ghostOwnerPassword" && value.length < 10) {
      errors.push(
        `swarmcloud:${key} is shorter than 10 characters, which Ghost refuses: set a longer one with pulumi config set --secret swarmcloud:${key}`,
      );
    }
    values[key] = pulumi.secret(value);
  }
  return { values, errors };
}

/** The parsed config and the secrets; throws a RunError listing every problem at once. */
function configFrom(inputs: ProgramInputs): { config: SwarmcloudConfig; secrets: Secrets; sshPublicKey?: string } {
  const secrets = readSecrets(inputs);
  const { raw, secretKeys } = readRawConfig(inputs);
  const parsed = parseConfig(raw, {
    sshPrivateKey: secrets.values.sshPrivateKey !== undefined,
    backupSecrets: BACKUP_SECRET_KEYS.filter((key) => secrets.values[key] !== undefined),
    digitaloceanToken: Boolean(inputs.config["digitalocean:token"] ?? inputs.digitaloceanTokenEnv),
    secretKeys,
  });
  const errors = [...parsed.errors, ...secrets.errors];
  for (const warning of parsed.warnings) pulumi.log.warn(warning);
  if (errors.length > 0) {
    throw new pulumi.RunError(`swarmcloud: ${errors.length} configuration problem(s):\n  - ${errors.join("\n  - ")}`);
  }
  const sshPublicKey = typeof raw.sshPublicKey === "string" ? raw.sshPublicKey : undefined;
  return { config: parsed.config, secrets: secrets.values, sshPublicKey };
}

/**
 * Changes the program refuses before any resource, read against what the last update exported:
 * a manager change that would lose the swarm's quorum, a renamed Gluster volume.
 */
async function refuseUnsafeChange(
  inputs: ProgramInputs,
  config: SwarmcloudConfig,
): Promise<{ name: string; role: string }[] | undefined> {
  const previousNodes = (await inputs.previousOutput("nodeList")) as { name: string; role: string }[] | undefined;
  const problems = [
    quorumProblem(previousNodes ?? undefined, config.nodes),
    volumeRenameProblem(await inputs.previousOutput("glusterVolume"), config.gluster.volume),
  ].filter((p): p is string => p !== undefined);
  if (problems.length > 0) throw new pulumi.RunError(problems.join("\n"));
  return previousNodes ?? undefined;
}

/** Builds the whole graph; the returned object is the stack's outputs. */
export async function main(inputs: ProgramInputs): Promise<Record<string, unknown>> {
  const { stack } = inputs;
  const { config, secrets, sshPublicKey } = configFrom(inputs);
  const previousNodes = await refuseUnsafeChange(inputs, config);
  const source = await nodeSource({
    stack,
    config,
    sshPrivateKey: secrets.sshPrivateKey,
    sshPublicKey,
    repoDir: inputs.repoDir,
  });
  const nodes = source.nodes;
  const hosts = Object.fromEntries(
    nodes.map((node) => [node.name, new DockerHost(`${stack}-${node.name}`, { node, nodes }).ready]),
  );
  const swarm = new Swarm(`${stack}-swarm`, { nodes, hostReady: hosts, settings: config.swarm });
  const bricks = brickNodes(config).map((spec) => nodes.find((n) => n.name === spec.name)!);
  const storage = new GlusterVolume(`${stack}-gluster`, {
    nodes,
    bricks,
    hostReady: hosts,
    settings: config.gluster,
    appDirs: appDirs(config),
  });
  if (config.upgrade !== undefined) {
    new NodeUpgrades(`${stack}-upgrade`, {
      nodes,
      settings: config.upgrade,
      bricks: bricks.map((b) => b.name),
      gluster: config.gluster,
      frontDoor: floatingDoor(config, nodes),
      // On a stack's first update every node is new; later, those not in the last node list.
      known: (previousNodes ?? []).map((n) => n.name),
      after: [...swarm.ready, ...storage.ready],
    });
  }
  const apps = await deployApps(stack, config, {
    nodes,
    entryAddress: source.entryAddress,
    swarm,
    storage,
    passwords: {
      ghostDb: secrets.ghostDbPassword,
      dbRoot: secrets.dbRootPassword,
      portainerAdmin: secrets.portainerAdminPassword,
      ghostOwner: secrets.ghostOwnerPassword,
      backup: secrets.backupPassword,
      backupSftpKey: secrets.backupSftpKey,
      backupS3AccessKeyId: secrets.backupS3AccessKeyId,
      backupS3SecretAccessKey: secrets.backupS3SecretAccessKey,
    },
    frontDoor: frontDoorPlace(config, source.frontDoorAddress, memberReady(nodes, swarm)),
  });
  return stackOutputs(config, { nodes, swarm, storage, apps });
}

/** The front door's floating address and its holders (keepalived: not on DigitalOcean), when the edge is on. */
function floatingDoor(config: SwarmcloudConfig, nodes: ClusterNode[]): FloatingDoor | undefined {
  const edge = config.edge;
  if (edge === undefined || edge.address === undefined || config.environment === "digitalocean") return undefined;
  return { address: edge.address, holders: edgeNodes(nodes, edge) };
}

/** Per node name, the node's swarm membership step (Swarm.ready is in the nodes' order). */
function memberReady(nodes: ClusterNode[], swarm: Swarm): Record<string, pulumi.Resource> {
  return Object.fromEntries(nodes.map((n, i) => [n.name, swarm.ready[i]!]));
}

/**
 * Where the front door answers (edge on): the domain when set, else the floating address
 * (keepalived) or, on DigitalOcean, the load balancer's address. Undefined when the edge is off.
 */
function frontDoorPlace(
  config: SwarmcloudConfig,
  loadBalancer: pulumi.Input<string> | undefined,
  memberReady: Record<string, pulumi.Resource>,
): FrontDoorPlace | undefined {
  const edge = config.edge;
  if (edge === undefined) return undefined;
  const floating = config.environment !== "digitalocean";
  const address = floating ? edge.address : loadBalancer;
  if (address === undefined)
    throw new Error("swarmcloud: the front door has no address; parseConfig should have said so");
  return { site: edge.domain ?? address, floating, memberReady };
}

/** Stack outputs; the application ones only when that application is enabled. */
function stackOutputs(
  config: SwarmcloudConfig,
  built: { nodes: ClusterNode[]; swarm: Swarm; storage: GlusterVolume; apps: AppsOutputs },
): Record<string, unknown> {
  const { nodes, swarm, storage, apps } = built;
  const outputs: Record<string, unknown> = {
    environment: config.environment,
    managerAddress: swarm.managerAddress,
    nodeList: swarm.nodeList,
    sshCommands: pulumi.all(
      nodes.map((n) =>
        pulumi
          .all([n.connection.host, n.connection.port ?? 22, n.connection.user ?? "root"])
          .apply(([host, port, user]) => `${n.name}: ssh -p ${port} ${user}@${host}`),
      ),
    ),
    // The manager token only when asked for (swarm.exportManagerToken): it makes any machine a manager.
    joinTokens: pulumi.secret({
      worker: swarm.workerToken,
      ...(config.swarm.exportManagerToken ? { manager: swarm.managerToken } : {}),
    }),
    glusterMountPath: storage.mountPath,
    // Read back by the next update: a renamed volume is refused (volumeRenameProblem).
    glusterVolume: config.gluster.volume,
    ...apps,
  };
  return Object.fromEntries(Object.entries(outputs).filter(([, v]) => v !== undefined));
}
