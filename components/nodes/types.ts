import * as pulumi from "@pulumi/pulumi";
import { Availability, NodeSpec, Role } from "../config";
import { HostKeySource, SshConnection } from "../remote";

/**
 * The one contract every node source ends in. Everything downstream (DockerHost, Swarm,
 * GlusterVolume, stacks) sees only this, never where a node came from.
 */
export interface ClusterNode {
  /** Cluster-wide unique name; becomes the hostname and the swarm node name. */
  name: string;
  role: Role;
  /** How the program reaches the node over SSH. */
  connection: SshConnection;
  /** IPv4 address the cluster talks on (swarm advertise address, Gluster peers). */
  privateAddress: pulumi.Input<string>;
  /** Address a person reaches (published ports, SSH from their machine). */
  publicAddress: pulumi.Input<string>;
  /** Swarm node labels. */
  labels: Record<string, string>;
  availability: Availability;
  /** Resources that must exist before the node answers SSH (its container, droplet or VM). */
  dependsOn: pulumi.Resource[];
}

/** What every node source component exposes. */
export interface NodeSource {
  readonly nodes: ClusterNode[];
  /**
   * Where the apps' published ports answer (the address in the Ghost and Portainer URLs), for a
   * source that publishes them somewhere of its own. Default: the first node's public address.
   */
  readonly entryAddress?: pulumi.Input<string>;
  /** The front door's address, for a source that makes one (DigitalOcean's load balancer, edge on). Default: none. */
  readonly frontDoorAddress?: pulumi.Input<string>;
}

/** How a node source reaches one node; `clusterNode` fills in the rest from the node's spec. */
export interface NodeReach {
  /** Address SSH connects to; also the node's public address. */
  host: pulumi.Input<string>;
  /** SSH port. Default 22. */
  port?: pulumi.Input<number>;
  user: pulumi.Input<string>;
  /** Private key (a secret). */
  privateKey: pulumi.Input<string>;
  /** Connection attempts before giving up: how long the source's nodes take to answer SSH. */
  dialErrorLimit: number;
  /** Address the cluster talks on. Default `host`. */
  privateAddress?: pulumi.Input<string>;
  /** Resources that must exist before the node answers SSH. Default none. */
  dependsOn?: pulumi.Resource[];
  /**
   * The SSH host key the node must show, made by the source and given to the node (`local`,
   * `digitalocean`). Default: the spec's `hostKey` (pinned in config), else none (trust on first use).
   */
  hostKey?: pulumi.Input<string>;
}

/**
 * The ClusterNode every source builds: name, role, labels, availability and the pinned host key
 * from the spec, the rest from `reach`. The connection carries the node's name, so an error
 * about it (its host key) names this node even when another node's step used it.
 */
export function clusterNode(
  spec: Pick<NodeSpec, "name" | "role" | "labels" | "availability" | "hostKey">,
  reach: NodeReach,
): ClusterNode {
  const hostKey = reach.hostKey ?? spec.hostKey;
  const hostKeySource: HostKeySource = reach.hostKey === undefined ? "config" : "program";
  return {
    name: spec.name,
    role: spec.role,
    connection: {
      host: reach.host,
      port: reach.port ?? 22,
      user: reach.user,
      privateKey: reach.privateKey,
      dialErrorLimit: reach.dialErrorLimit,
      perDialTimeout: 15,
      ...(hostKey === undefined ? {} : { hostKey, hostKeySource }),
      node: spec.name,
    },
    privateAddress: reach.privateAddress ?? reach.host,
    publicAddress: reach.host,
    labels: spec.labels,
    availability: spec.availability,
    dependsOn: reach.dependsOn ?? [],
  };
}
