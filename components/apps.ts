import * as pulumi from "@pulumi/pulumi";
import { SwarmcloudConfig } from "./config";
import { GlusterVolume } from "./gluster";
import { ClusterNode } from "./nodes/types";
import { Swarm } from "./swarm";

export interface AppsArgs {
  nodes: ClusterNode[];
  /** Address a person uses to reach published ports. */
  entryAddress: pulumi.Input<string>;
  swarm: Swarm;
  storage: GlusterVolume;
  /** Config secrets; generated with @pulumi/random where unset. */
  passwords: {
    ghostDb?: pulumi.Output<string>;
    dbRoot?: pulumi.Output<string>;
    portainerAdmin?: pulumi.Output<string>;
  };
}

export interface AppsOutputs {
  ghostUrl?: pulumi.Output<string>;
  ghostAdminUrl?: pulumi.Output<string>;
  portainerUrl?: pulumi.Output<string>;
  portainerAdminPassword?: pulumi.Output<string>;
  ghostDbPassword?: pulumi.Output<string>;
  dbRootPassword?: pulumi.Output<string>;
}

/** Deploys the enabled application stacks (Portainer, Ghost + MySQL) on the swarm. */
export function deployApps(_stack: string, config: SwarmcloudConfig, _args: AppsArgs): AppsOutputs {
  if (!config.ghost.enabled && !config.portainer.enabled) return {};
  throw new pulumi.RunError("swarmcloud: application stacks are not wired in yet");
}
