import * as pulumi from "@pulumi/pulumi";
import { ClusterNode } from "./nodes/types";
import { RemoteScript } from "./remote";
import { script } from "./remote-scripts";
import { nodeStep } from "./step";

export interface DockerHostArgs {
  /** The node to prepare. */
  node: ClusterNode;
  /** Every node of the cluster, for the /etc/hosts block. */
  nodes: ClusterNode[];
}

/**
 * Lines of the managed /etc/hosts block for one node: itself and every manager. Managers are
 * what people and services address by name; workers are reached through the swarm, so adding a
 * worker touches no other node.
 */
export function hostsBlock(node: ClusterNode, nodes: ClusterNode[]): pulumi.Output<string> {
  const entries = nodes.filter((n) => n.role === "manager" || n.name === node.name);
  return pulumi
    .all(entries.map((n) => pulumi.interpolate`${n.privateAddress} ${n.name}`))
    .apply((lines) => lines.join("\n"));
}

/**
 * One node made ready for the cluster: hostname, /etc/hosts, Docker engine (installed where
 * missing, started and enabled, usable by the SSH user) and GlusterFS server and client.
 */
export class DockerHost extends pulumi.ComponentResource {
  /** The provisioning step; depend on it before using Docker or Gluster on the node. */
  public readonly ready: RemoteScript;

  constructor(name: string, args: DockerHostArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmcloud:host:DockerHost", name, {}, opts);
    const { node } = args;
    this.ready = nodeStep(
      `${name}-provision`,
      {
        node,
        create: script("host"),
        read: script("host-read"),
        environment: { HOSTS_BLOCK: hostsBlock(node, args.nodes), SSH_USER: node.connection.user ?? "root" },
      },
      { parent: this, dependsOn: node.dependsOn },
    );
    this.registerOutputs({});
  }
}
