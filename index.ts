/**
 * swarmcloud: config -> node source -> DockerHost per node -> Swarm -> GlusterVolume -> stacks -> outputs.
 * This is the only file that reads pulumi.Config; everything below takes plain typed args.
 */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import {
  appPorts,
  brickNodes,
  parseConfig,
  quorumProblem,
  RawConfig,
  SECRET_KEYS,
  SecretKey,
  SwarmcloudConfig,
} from "./components/config";
import { GlusterVolume } from "./components/gluster";
import { DockerHost } from "./components/host";
import { ClusterNode } from "./components/nodes/types";
import { SshNodes } from "./components/nodes/ssh";
import { Swarm } from "./components/swarm";
import { APP_DIRS, deployApps } from "./components/apps";

const PREFIX = "swarmcloud:";

/** Whether the engine holds a config key encrypted (true when the SDK cannot tell). */
function isConfigSecret(fullKey: string): boolean {
  // isConfigSecret is not in the SDK's typings; it reads the engine's list of encrypted keys.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const runtimeConfig = require("@pulumi/pulumi/runtime/config") as { isConfigSecret?: (k: string) => boolean };
  return runtimeConfig.isConfigSecret ? runtimeConfig.isConfigSecret(fullKey) : true;
}

/**
 * Every swarmcloud:* value the stack sets (secrets excluded), JSON-decoded where it is JSON, and
 * the keys among them stored as secrets (a mistyped secret key), whose values no message shows.
 */
function readRawConfig(): { raw: RawConfig; secretKeys: string[] } {
  const raw: RawConfig = {};
  const secretKeys: string[] = [];
  for (const [fullKey, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (!fullKey.startsWith(PREFIX)) continue;
    const key = fullKey.slice(PREFIX.length);
    if ((SECRET_KEYS as readonly string[]).includes(key)) continue;
    if (isConfigSecret(fullKey)) secretKeys.push(key);
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
function readSecrets(): { values: Partial<Record<SecretKey, pulumi.Output<string>>>; errors: string[] } {
  const values: Partial<Record<SecretKey, pulumi.Output<string>>> = {};
  const errors: string[] = [];
  for (const key of SECRET_KEYS) {
    const value = pulumi.runtime.getConfig(`${PREFIX}${key}`);
    if (value === undefined || value === "") continue;
    if (!isConfigSecret(`${PREFIX}${key}`)) {
      errors.push(
        `swarmcloud:${key} is stored in plaintext: set it again with pulumi config set --secret swarmcloud:${key}`,
      );
    }
    values[key] = pulumi.secret(value);
  }
  return { values, errors };
}

const cfg = new pulumi.Config("swarmcloud");
const secretConfig = readSecrets();
const secrets = secretConfig.values;
const { raw, secretKeys } = readRawConfig();
const parsed = parseConfig(raw, {
  sshPrivateKey: secrets.sshPrivateKey !== undefined,
  digitaloceanToken: Boolean(pulumi.runtime.getConfig("digitalocean:token") ?? process.env.DIGITALOCEAN_TOKEN),
  secretKeys,
});
parsed.errors.push(...secretConfig.errors);
for (const warning of parsed.warnings) pulumi.log.warn(warning);
if (parsed.errors.length > 0) {
  throw new pulumi.RunError(
    `swarmcloud: ${parsed.errors.length} configuration problem(s):\n  - ${parsed.errors.join("\n  - ")}`,
  );
}
const config: SwarmcloudConfig = parsed.config;
const stack = pulumi.getStack();

/**
 * The node source of the chosen environment, ending in the one ClusterNode[] contract. Each
 * source is loaded only when chosen, so an SSH stack never loads the Docker or DigitalOcean SDKs.
 */
async function nodeSource(c: SwarmcloudConfig): Promise<{ nodes: ClusterNode[]; entryAddress: pulumi.Input<string> }> {
  switch (c.environment) {
    case "ssh": {
      const src = new SshNodes(stack, {
        nodes: c.nodes,
        user: c.sshUser,
        port: c.sshPort,
        privateKey: secrets.sshPrivateKey!,
      });
      return { nodes: src.nodes, entryAddress: src.nodes[0]!.publicAddress };
    }
    case "local": {
      const { LocalNodes } = await import("./components/nodes/local");
      const src = new LocalNodes(stack, {
        nodes: c.nodes,
        settings: c.local,
        contextDir: path.join(__dirname, "node-image"),
        ghostPort: c.ghost.port,
        portainerPort: c.portainer.httpsPort,
      });
      return { nodes: src.nodes, entryAddress: src.entryAddress };
    }
    case "vagrant": {
      const { VagrantNodes } = await import("./components/nodes/vagrant");
      const src = new VagrantNodes(stack, {
        nodes: c.nodes,
        settings: c.vagrant,
        workDir: path.join(__dirname, ".vagrant-stacks", stack),
      });
      return { nodes: src.nodes, entryAddress: src.nodes[0]!.publicAddress };
    }
    case "digitalocean": {
      // parseConfig has reported a missing token or key pair, so both are set here.
      const { DigitalOceanNodes } = await import("./components/nodes/digitalocean");
      const src = new DigitalOceanNodes(stack, {
        nodes: c.nodes,
        settings: c.digitalocean,
        sshPublicKey: cfg.require("sshPublicKey"),
        sshPrivateKey: secrets.sshPrivateKey!,
        dataPathPort: c.swarm.dataPathPort,
        publicPorts: appPorts(c).map(([, port]) => port),
      });
      return { nodes: src.nodes, entryAddress: src.nodes[0]!.publicAddress };
    }
  }
}

/** The node list this stack exported last time (undefined on its first update). */
async function previousNodeList(): Promise<{ name: string; role: string }[] | undefined> {
  const self = new pulumi.StackReference(`${pulumi.getOrganization()}/${pulumi.getProject()}/${stack}`);
  const details = await self.getOutputDetails("nodeList");
  return (details.value ?? undefined) as { name: string; role: string }[] | undefined;
}

/** Builds the whole graph; the returned object is the stack's outputs. */
async function main(): Promise<Record<string, unknown>> {
  const quorum = quorumProblem(await previousNodeList(), config.nodes);
  if (quorum !== undefined) throw new pulumi.RunError(quorum);
  const source = await nodeSource(config);
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
    appDirs: Object.values(APP_DIRS),
  });
  const apps = await deployApps(stack, config, {
    nodes,
    entryAddress: source.entryAddress,
    swarm,
    storage,
    passwords: {
      ghostDb: secrets.ghostDbPassword,
      dbRoot: secrets.dbRootPassword,
      portainerAdmin: secrets.portainerAdminPassword,
    },
  });

  /** Stack outputs; the application ones only when that application is enabled. */
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
    joinTokens: pulumi.secret({ worker: swarm.workerToken, manager: swarm.managerToken }),
    glusterMountPath: storage.mountPath,
    ...apps,
  };
  return Object.fromEntries(Object.entries(outputs).filter(([, v]) => v !== undefined));
}

export = main();
