import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { appPorts, SwarmcloudConfig } from "../config";
import { SshNodes } from "./ssh";
import { ClusterNode } from "./types";

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
}

/**
 * The node source of the chosen environment, ending in the one ClusterNode[] contract. Each
 * source is loaded only when chosen, so an SSH stack never loads the Docker or DigitalOcean SDKs.
 */
export async function nodeSource(args: NodeSourceArgs): Promise<NodeSourceResult> {
  const { stack, config: c } = args;
  switch (c.environment) {
    case "ssh": {
      const src = new SshNodes(stack, {
        nodes: c.nodes,
        user: c.sshUser,
        port: c.sshPort,
        privateKey: required(args.sshPrivateKey, "sshPrivateKey"),
      });
      return { nodes: src.nodes, entryAddress: src.nodes[0]!.publicAddress };
    }
    case "local": {
      const { LocalNodes } = await import("./local");
      const src = new LocalNodes(stack, {
        nodes: c.nodes,
        settings: c.local,
        contextDir: path.join(args.repoDir, "node-image"),
        ghostPort: c.ghost.port,
        portainerPort: c.portainer.httpsPort,
      });
      return { nodes: src.nodes, entryAddress: src.entryAddress };
    }
    case "vagrant": {
      const { VagrantNodes } = await import("./vagrant");
      const src = new VagrantNodes(stack, {
        nodes: c.nodes,
        settings: c.vagrant,
        workDir: path.join(args.repoDir, ".vagrant-stacks", stack),
      });
      return { nodes: src.nodes, entryAddress: src.nodes[0]!.publicAddress };
    }
    case "digitalocean": {
      const { DigitalOceanNodes } = await import("./digitalocean");
      const src = new DigitalOceanNodes(stack, {
        nodes: c.nodes,
        settings: c.digitalocean,
        sshPublicKey: required(args.sshPublicKey, "sshPublicKey"),
        sshPrivateKey: required(args.sshPrivateKey, "sshPrivateKey"),
        dataPathPort: c.swarm.dataPathPort,
        publicPorts: appPorts(c).map(([, port]) => port),
      });
      return { nodes: src.nodes, entryAddress: src.nodes[0]!.publicAddress };
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
