import * as pulumi from "@pulumi/pulumi";
import { NodeSpec } from "../config";
import { ClusterNode, clusterNode, NodeSource } from "./types";

export interface SshNodesArgs {
  /** Hosts as validated by parseConfig; each needs `address`. */
  nodes: NodeSpec[];
  /** Default SSH user for hosts that do not set one. Default `root`. */
  user?: string;
  /** Default SSH port for hosts that do not set one. Default 22. */
  port?: number;
  /** Private key (a Pulumi secret) that every host accepts. */
  privateKey: pulumi.Input<string>;
}

/**
 * Existing hosts reached over SSH: Raspberry Pis, bare metal, any VM, lab nodes. Nothing is
 * created; each host simply becomes a ClusterNode.
 */
export class SshNodes extends pulumi.ComponentResource implements NodeSource {
  public readonly nodes: ClusterNode[];

  constructor(name: string, args: SshNodesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmcloud:nodes:SshNodes", name, {}, opts);
    this.nodes = sshClusterNodes(args);
    this.registerOutputs({});
  }
}

/** Pure mapping from host specs to ClusterNodes (exported for tests). */
export function sshClusterNodes(args: SshNodesArgs): ClusterNode[] {
  const key = pulumi.secret(args.privateKey);
  return args.nodes.map((n) => {
    if (n.address === undefined) throw new Error(`swarmcloud:nodes: ${n.name} has no address`);
    return clusterNode(n, {
      host: n.address,
      port: n.port ?? args.port,
      user: n.user ?? args.user ?? "root",
      privateKey: key,
      dialErrorLimit: 10,
      privateAddress: n.privateAddress,
    });
  });
}
