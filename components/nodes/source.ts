import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { appPorts, edgeNodes, SwarmcloudConfig } from "../config";
import { SshNodes } from "./ssh";
import { ClusterNode, NodeSource } from "./types";

/** What a node source needs beyond the parsed config. */
export interface NodeSourceArgs {
  /** The stack's name; the node component takes it as its name, so its resources' names start with it. */
  stack: string;
  config: SwarmcloudConfig;
  /** `swarmcloud:sshPrivateKey` (a secret); required by `ssh` and `digitalocean`, and parseConfig reports it missing. */
  sshPrivateKey?: pulumi.Output<string>;
  /** `swarmcloud:sshPublicKey`; required by `digitalocean`, and parseConfig reports it missing. */
  sshPublicKey?: string;
  /** The repository's root: `node-image/` (local) and `.vagrant-stacks/<stack>` (vagrant) lie under it. */
  repoDir: string;
}

/** The nodes of the chosen environment, and the address in the Ghost and Portainer URLs. */
export interface NodeSourceResult {
  nodes: ClusterNode[];
  entryAddress: pulumi.Input<string>;
  /** The front door's address where the source makes one (DigitalOcean's load balancer, edge on). */
  frontDoorAddress?: pulumi.Input<string>;
}

/**
 * The nodes of the chosen environment, and the address in the Ghost and Portainer URLs: the
 * source's `entryAddress` where it publishes the apps somewhere of its own (local: 127.0.0.1),
 * otherwise the first node's public address.
 */
export async function nodeSource(args: NodeSourceArgs): Promise<NodeSourceResult> {
  const source = await sourceComponent(args);
  return {
    nodes: source.nodes,
    entryAddress: source.entryAddress ?? source.nodes[0]!.publicAddress,
    ...(source.frontDoorAddress === undefined ? {} : { frontDoorAddress: source.frontDoorAddress }),
  };
}

/**
 * The node source component of the chosen environment, ending in the one ClusterNode[] contract.
 * Each source is loaded only when chosen, so an SSH stack never loads the Docker or DigitalOcean
 * SDKs.
 */
async function sourceComponent(args: NodeSourceArgs): Promise<NodeSource> {
  const { stack, config: c } = args;
  switch (c.environment) {
    case "ssh":
      return new SshNodes(stack, {
        nodes: c.nodes,
        user: c.sshUser,
        port: c.sshPort,
        privateKey: required(args.sshPrivateKey, "sshPrivateKey"),
      });
    case "local": {
      const { LocalNodes } = await import("./local");
      return new LocalNodes(stack, {
        nodes: c.nodes,
        settings: c.local,
        contextDir: path.join(args.repoDir, "node-image"),
        ghostPort: c.ghost.port,
        portainerPort: c.portainer.httpsPort,
      });
    }
    case "vagrant": {
      const { VagrantNodes } = await import("./vagrant");
      return new VagrantNodes(stack, {
        nodes: c.nodes,
        settings: c.vagrant,
        workDir: path.join(args.repoDir, ".vagrant-stacks", stack),
      });
    }
    case "digitalocean": {
      const { DigitalOceanNodes } = await import("./digitalocean");
      return new DigitalOceanNodes(stack, {
        nodes: c.nodes,
        settings: c.digitalocean,
        sshPublicKey: required(args.sshPublicKey, "sshPublicKey"),
        sshPrivateKey: required(args.sshPrivateKey, "sshPrivateKey"),
        dataPathPort: c.swarm.dataPathPort,
        publicPorts: appPorts(c)
          .filter(([, , audience]) => audience === "public")
          .map(([, port]) => port),
        adminPorts: appPorts(c)
          .filter(([, , audience]) => audience === "admin")
          .map(([, port]) => port),
        ...(c.edge === undefined ? {} : { frontDoor: { holders: edgeNodes(c.nodes, c.edge).map((n) => n.name) } }),
      });
    }
  }
}

/**
 * A credential parseConfig has already checked for (validateCredentials reports a missing one
 * with every other problem), so a missing one here is a bug in the caller, not a user error.
 */
function required<T>(value: T | undefined, key: string): T {
  if (value === undefined) throw new Error(`nodeSource: swarmcloud:${key} is missing; parseConfig should have said so`);
  return value;
}
