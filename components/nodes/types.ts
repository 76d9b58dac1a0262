import * as pulumi from "@pulumi/pulumi";
import { Availability, Role } from "../config";
import { SshConnection } from "../remote";

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
}
