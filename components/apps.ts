import * as pulumi from "@pulumi/pulumi";
import { ghostCompose } from "../compose/ghost";
import { portainerCompose } from "../compose/portainer";
import { renderCompose } from "../compose/compose";
import { SwarmcloudConfig } from "./config";
import { GlusterVolume } from "./gluster";
import { ClusterNode } from "./nodes/types";
import { SwarmStack, versionedSecretName } from "./stack";
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

/** Folders on the Gluster mount, one per application (made by GlusterVolume on every node). */
export const APP_DIRS = { ghostContent: "ghost/content", ghostDb: "ghost/mysql", portainer: "portainer" } as const;

/**
 * A password from config, or a generated one. @pulumi/random is loaded only when a password is
 * actually generated, so a stack that supplies all of them never needs the random provider.
 */
async function password(name: string, given: pulumi.Output<string> | undefined): Promise<pulumi.Output<string>> {
  if (given !== undefined) return pulumi.secret(given);
  const random = await import("@pulumi/random");
  // Letters and digits only: the value travels through env files and shell without quoting.
  const generated = new random.RandomPassword(name, { length: 32, special: false });
  return pulumi.secret(generated.result);
}

/** Deploys the enabled application stacks (Portainer, Ghost + MySQL) on the swarm. */
export async function deployApps(stack: string, config: SwarmcloudConfig, args: AppsArgs): Promise<AppsOutputs> {
  const managers = args.nodes.filter((n) => n.role === "manager");
  const [manager, ...fallbackManagers] = managers;
  if (manager === undefined) return {};
  const mount = config.gluster.mountPath;
  // No stack before the swarm is formed and the volume is mounted everywhere.
  const dependsOn = [...args.swarm.ready, ...args.storage.ready];
  const resolveImage = config.swarm.resolveImage;
  const outputs: AppsOutputs = {};

  if (config.ghost.enabled) {
    const dbPassword = await password(`${stack}-ghost-db-password`, args.passwords.ghostDb);
    const dbRootPassword = await password(`${stack}-db-root-password`, args.passwords.dbRoot);
    const url = config.ghost.url
      ? pulumi.output(config.ghost.url)
      : pulumi.interpolate`http://${args.entryAddress}:${config.ghost.port}`;
    const ghost = new SwarmStack(`${stack}-ghost`, {
      manager,
      fallbackManagers,
      stackName: "ghost",
      secrets: { "ghost-db-password": dbPassword, "ghost-db-root-password": dbRootPassword },
      // The same versioned names SwarmStack gives the secrets (one-way digests, not secret).
      compose: pulumi
        .all([
          url,
          versionedSecretName("ghost-db-password", dbPassword),
          versionedSecretName("ghost-db-root-password", dbRootPassword),
        ])
        .apply(([u, dbName, rootName]) =>
          renderCompose(
            ghostCompose(config.ghost, {
              contentPath: `${mount}/${APP_DIRS.ghostContent}`,
              dbPath: `${mount}/${APP_DIRS.ghostDb}`,
              url: u,
              encryptOverlay: config.swarm.encryptOverlay,
              secretNames: { dbPassword: dbName, dbRootPassword: rootName },
            }),
          ),
        ),
      timeout: config.deployTimeout,
      resolveImage,
      dependsOn,
    });
    outputs.ghostUrl = pulumi.all([url, ghost.services]).apply(([u]) => u);
    outputs.ghostAdminUrl = outputs.ghostUrl.apply((u) => `${u.replace(/\/$/, "")}/ghost/`);
    outputs.ghostDbPassword = dbPassword;
    outputs.dbRootPassword = dbRootPassword;
  }

  if (config.portainer.enabled) {
    const adminPassword = await password(`${stack}-portainer-admin-password`, args.passwords.portainerAdmin);
    const portainer = new SwarmStack(`${stack}-portainer`, {
      manager,
      fallbackManagers,
      stackName: "portainer",
      secrets: { "portainer-admin-password": adminPassword },
      compose: (names) =>
        renderCompose(
          portainerCompose(config.portainer, {
            dataPath: `${mount}/${APP_DIRS.portainer}`,
            encryptOverlay: config.swarm.encryptOverlay,
            adminPasswordSecret: names["portainer-admin-password"]!,
          }),
        ),
      timeout: config.deployTimeout,
      resolveImage,
      dependsOn,
    });
    outputs.portainerUrl = pulumi
      .all([args.entryAddress, portainer.services])
      .apply(([address]) => `https://${address}:${config.portainer.httpsPort}`);
    outputs.portainerAdminPassword = adminPassword;
  }
  return outputs;
}
