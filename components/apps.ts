import * as pulumi from "@pulumi/pulumi";
import { ghostCompose, GhostContext, GHOST_PORT, GHOST_SETUP_CLIENT } from "../stacks/ghost";
import {
  agentArgs,
  PORTAINER_AGENT_SECRET_VARIABLE,
  PORTAINER_EDGE_NETWORK,
  PORTAINER_HTTPS_PORT,
  portainerCompose,
} from "../stacks/portainer";
import { ComposePort, renderCompose, withoutPorts } from "../stacks/compose";
import {
  BACKUP_DIRS,
  BackupPlace,
  backupFolders,
  BackupSecretValues,
  backupStack,
  repositoryPassword,
  restoreStep,
  targetStep,
} from "./backup";
import { BackupSettings, edgeNodes, SwarmcloudConfig } from "./config";
import { EDGE_DIR, FrontDoor } from "./edge";
import { GeneratedSecret } from "./generated-secret";
import { GlusterVolume } from "./gluster";
import { ClusterNode } from "./nodes/types";
import { RemoteScript } from "./remote";
import { script } from "./remote-scripts";
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
    ghostOwner?: pulumi.Output<string>;
    /** The backup repository's password; made by the program where unset (backup on). */
    backup?: pulumi.Output<string>;
    /** The backup target's keys (backup on: sftp, s3). */
    backupSftpKey?: pulumi.Output<string>;
    backupS3AccessKeyId?: pulumi.Output<string>;
    backupS3SecretAccessKey?: pulumi.Output<string>;
  };
  /** The front door, when `edge` is on: where it answers, and the nodes' provisioning steps. Default: none. */
  frontDoor?: FrontDoorPlace;
}

/** What the front door needs from the program beyond the config. */
export interface FrontDoorPlace {
  /** The name or address it answers on: the domain, else the floating or load balancer address. */
  site: pulumi.Input<string>;
  /** keepalived holds `edge.address` (local, ssh, vagrant); false on DigitalOcean (its load balancer). */
  floating: boolean;
  /**
   * Per node name, the node's swarm membership: keepalived starts after it and, on a node's
   * removal, is released before it (the member's delete drains the node and stops its Caddy, so
   * the address must have left first, or requests to it would fail until keepalived's check saw
   * Caddy gone).
   */
  memberReady: Record<string, pulumi.Resource>;
}

export interface AppsOutputs {
  ghostUrl?: pulumi.Output<string>;
  ghostAdminUrl?: pulumi.Output<string>;
  ghostOwnerEmail?: pulumi.Output<string>;
  ghostOwnerPassword?: pulumi.Output<string>;
  portainerUrl?: pulumi.Output<string>;
  portainerAdminPassword?: pulumi.Output<string>;
  ghostDbPassword?: pulumi.Output<string>;
  dbRootPassword?: pulumi.Output<string>;
  /** The front door's address or name (edge on). */
  frontDoorUrl?: pulumi.Output<string>;
  /** The root certificate to trust (edge on, no domain: Caddy's internal CA). */
  edgeRootCertificate?: pulumi.Output<string>;
  /** The backup repository's password (backup on): keep it apart from the cluster. */
  backupRepositoryPassword?: pulumi.Output<string>;
}

/** Folders on the Gluster mount, one per application (made by GlusterVolume on every node). */
export const APP_DIRS = { ghostContent: "ghost/content", ghostDb: "ghost/mysql", portainer: "portainer" } as const;

/** The folders on the Gluster mount: the apps', and the front door's and the backup's when they are on. */
export function appDirs(config: Pick<SwarmcloudConfig, "edge" | "backup">): string[] {
  return [
    ...Object.values(APP_DIRS),
    ...(config.edge === undefined ? [] : [EDGE_DIR]),
    ...(config.backup === undefined ? [] : Object.values(BACKUP_DIRS)),
  ];
}

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

/** Where an app deploys: the stack's name, its config, the managers, what every stack waits for. */
interface AppPlace {
  stack: string;
  config: SwarmcloudConfig;
  manager: ClusterNode;
  fallbackManagers: ClusterNode[];
  dependsOn: pulumi.Resource[];
  /** The app stacks made so far (the front door waits for them). */
  stacks: SwarmStack[];
}

/** Deploys the enabled application stacks (Portainer, Ghost + MySQL) on the swarm. */
export async function deployApps(stack: string, config: SwarmcloudConfig, args: AppsArgs): Promise<AppsOutputs> {
  const managers = args.nodes.filter((n) => n.role === "manager");
  const [manager, ...fallbackManagers] = managers;
  if (manager === undefined) return {};
  // No stack before the swarm is formed and the volume is mounted everywhere.
  const dependsOn = [...args.swarm.ready, ...args.storage.ready];
  const place: AppPlace = { stack, config, manager, fallbackManagers, dependsOn, stacks: [] };
  const backup = config.backup === undefined ? undefined : prepareBackup(place, config.backup, args);
  const outputs: AppsOutputs = {
    ...(config.ghost.enabled ? await deployGhost(place, args) : {}),
    ...(config.portainer.enabled ? await deployPortainer(place, args) : {}),
  };
  if (backup !== undefined) Object.assign(outputs, deployBackup(backup, outputs, place.stacks));
  if (config.edge === undefined || args.frontDoor === undefined) return outputs;
  return { ...outputs, ...deployFrontDoor(place, args, args.frontDoor) };
}

/** The backup's place and secrets, prepared before the apps deploy. */
interface PreparedBackup {
  place: BackupPlace;
  values: BackupSecretValues;
  /** What the backup stack waits for besides the apps: the local target's folder. */
  ready: pulumi.Resource[];
}

/**
 * Before the apps: the local target's folder and, with restoreFrom, the restore, which the apps'
 * stacks then wait for (place.dependsOn), so that Ghost and Portainer start on restored data.
 */
function prepareBackup(place: AppPlace, backup: BackupSettings, args: AppsArgs): PreparedBackup {
  const p = args.passwords;
  const values: BackupSecretValues = {
    password: repositoryPassword(place.stack, p.backup),
    ...(p.backupSftpKey === undefined ? {} : { sftpKey: p.backupSftpKey }),
    ...(p.backupS3AccessKeyId === undefined ? {} : { s3AccessKeyId: p.backupS3AccessKeyId }),
    ...(p.backupS3SecretAccessKey === undefined ? {} : { s3SecretAccessKey: p.backupS3SecretAccessKey }),
  };
  const backupPlace: BackupPlace = {
    ...place,
    backup,
    nodes: args.nodes,
    folders: backupFolders(place.config, APP_DIRS),
  };
  const target = targetStep(backupPlace);
  const ready = target === undefined ? [] : [target];
  if (backup.restoreFrom !== undefined) place.dependsOn = [...place.dependsOn, restoreStep(backupPlace, values, ready)];
  return { place: backupPlace, values, ready };
}

/** The backup stack after the apps' (it joins Ghost's database network), and the password output. */
function deployBackup(prepared: PreparedBackup, outputs: AppsOutputs, stacks: SwarmStack[]): AppsOutputs {
  const dbPassword = outputs.ghostDbPassword;
  if (dbPassword === undefined) return {};
  const deployed = stacks.map((s) => s.deployed);
  backupStack(prepared.place, { ...prepared.values, dbPassword }, [...prepared.ready, ...deployed]);
  return { backupRepositoryPassword: prepared.values.password };
}

/** The front door's HTTPS address: `https://<site>` (and `:<port>` for another port). */
export function frontDoorUrl(site: pulumi.Input<string>, port?: number): pulumi.Output<string> {
  return pulumi.interpolate`https://${site}${port === undefined ? "" : `:${port}`}`;
}

/** The front door in front of the apps deployed: keepalived on the edge nodes, Caddy, the root to trust. */
function deployFrontDoor(place: AppPlace, args: AppsArgs, door: FrontDoorPlace): AppsOutputs {
  const { stack, config } = place;
  const edge = config.edge!;
  const front = new FrontDoor(`${stack}-edge`, {
    holders: edgeNodes(args.nodes, edge),
    memberReady: door.memberReady,
    settings: edge,
    site: door.site,
    floating: door.floating,
    manager: place.manager,
    fallbackManagers: place.fallbackManagers,
    mountPath: config.gluster.mountPath,
    ghost: config.ghost.enabled ? { service: "ghost_ghost", port: GHOST_PORT, network: "ghost_frontend" } : undefined,
    portainer: config.portainer.enabled
      ? { service: "portainer_portainer", port: PORTAINER_HTTPS_PORT, network: PORTAINER_EDGE_NETWORK, https: true }
      : undefined,
    timeout: config.deployTimeout,
    resolveImage: config.swarm.resolveImage,
    pinImages: config.swarm.pinImages,
    // The apps' stacks make the networks Caddy joins.
    dependsOn: [...place.dependsOn, ...place.stacks.map((s) => s.deployed)],
  });
  const deployed = front.caddy.services;
  return {
    frontDoorUrl: pulumi.all([frontDoorUrl(door.site), deployed]).apply(([u]) => u),
    ...(front.rootCertificate === undefined ? {} : { edgeRootCertificate: front.rootCertificate }),
  };
}

/**
 * Ghost + MySQL, and Ghost's owner: the stack's first deploy publishes no port, the setup step
 * completes Ghost's setup from inside the swarm and only then publishes Ghost's ports.
 */
async function deployGhost(place: AppPlace, args: AppsArgs): Promise<AppsOutputs> {
  const { stack, config } = place;
  const dbPassword = await password(`${stack}-ghost-db-password`, args.passwords.ghostDb);
  const dbRootPassword = await password(`${stack}-db-root-password`, args.passwords.dbRoot);
  const ownerPassword = await password(`${stack}-ghost-owner-password`, args.passwords.ghostOwner);
  const url = config.ghost.url
    ? pulumi.output(config.ghost.url)
    : args.frontDoor !== undefined
      ? frontDoorUrl(args.frontDoor.site)
      : pulumi.interpolate`http://${args.entryAddress}:${config.ghost.port}`;
  const mount = config.gluster.mountPath;
  // The same versioned names SwarmStack gives the secrets (one-way digests, not secret).
  const spec = pulumi
    .all([
      url,
      versionedSecretName("ghost-db-password", dbPassword),
      versionedSecretName("ghost-db-root-password", dbRootPassword),
    ])
    .apply(([u, dbName, rootName]) =>
      ghostCompose(config.ghost, {
        contentPath: `${mount}/${APP_DIRS.ghostContent}`,
        dbPath: `${mount}/${APP_DIRS.ghostDb}`,
        url: u,
        encryptOverlay: config.swarm.encryptOverlay,
        secretNames: { dbPassword: dbName, dbRootPassword: rootName },
        ...(config.backup === undefined ? {} : { initDbPath: `${mount}/${BACKUP_DIRS.initdb}` }),
      } satisfies GhostContext),
    );
  const ghost = new SwarmStack(`${stack}-ghost`, {
    manager: place.manager,
    fallbackManagers: place.fallbackManagers,
    stackName: "ghost",
    secrets: { "ghost-db-password": dbPassword, "ghost-db-root-password": dbRootPassword },
    compose: spec.apply(renderCompose),
    closedCompose: spec.apply((file) => renderCompose(withoutPorts(file))),
    timeout: config.deployTimeout,
    resolveImage: config.swarm.resolveImage,
    pinImages: config.swarm.pinImages,
    dependsOn: place.dependsOn,
  });
  place.stacks.push(ghost);
  const ports = spec.apply((file) => file.services.ghost?.ports ?? []);
  const setup = ghostSetup(place, { ghost, url, ports, ownerPassword });
  const ghostUrl = pulumi.all([url, setup.stdout]).apply(([u]) => u);
  return {
    ghostUrl,
    ghostAdminUrl: ghostUrl.apply((u) => `${u.replace(/\/$/, "")}/ghost/`),
    ghostOwnerEmail: setup.stdout.apply(() => config.ghost.owner.email),
    ghostOwnerPassword: ownerPassword,
    ghostDbPassword: dbPassword,
    dbRootPassword,
  };
}

/** `docker service update --publish-add` specs of ports, one per line, as the compose file publishes them. */
export function publishSpecs(ports: ComposePort[]): string {
  return ports
    .map(
      (p) => `published=${p.published},target=${p.target},protocol=${p.protocol ?? "tcp"},mode=${p.mode ?? "ingress"}`,
    )
    .join("\n");
}

/**
 * The step that sets up Ghost's owner (ghost-setup.sh), on a manager after the deploy: the
 * password on stdin, the rest in the environment; then it publishes Ghost's ports.
 */
function ghostSetup(
  place: AppPlace,
  a: {
    ghost: SwarmStack;
    url: pulumi.Output<string>;
    ports: pulumi.Output<ComposePort[]>;
    ownerPassword: pulumi.Output<string>;
  },
): RemoteScript {
  const { stack, config } = place;
  const owner = config.ghost.owner;
  return new RemoteScript(
    `${stack}-ghost-setup`,
    {
      node: place.manager.name,
      connection: place.manager.connection,
      fallbackConnections: place.fallbackManagers.map((m) => m.connection),
      create: script("ghost-setup"),
      read: script("ghost-setup-read"),
      stdin: a.ownerPassword,
      environment: {
        STACK: "ghost",
        SERVICE: "ghost_ghost",
        NETWORK: "ghost_frontend",
        GHOST: `http://ghost_ghost:${GHOST_PORT}`,
        URL: a.url,
        OWNER_NAME: owner.name,
        OWNER_EMAIL: owner.email,
        BLOG_TITLE: owner.blogTitle,
        PUBLISH: a.ports.apply(publishSpecs),
        CLIENT: GHOST_SETUP_CLIENT,
        TIMEOUT: String(config.deployTimeout),
      },
      // The image the one-shot runs in (Ghost's own): a fact, not a reason to set up again, so
      // a new Ghost image is an update of the stack alone (the deploy rolls it out).
      context: { IMAGE: config.ghost.image, RESOLVE_IMAGE: config.swarm.resolveImage },
      // the one-shot's wait, and the update that publishes the ports
      timeout: config.deployTimeout * 2 + 120,
    },
    { parent: a.ghost, dependsOn: [a.ghost.deployed] },
  );
}

/** Portainer server + agents, the agents answering only the server (the agent secret). */
async function deployPortainer(place: AppPlace, args: AppsArgs): Promise<AppsOutputs> {
  const { stack, config } = place;
  const adminPassword = await password(`${stack}-portainer-admin-password`, args.passwords.portainerAdmin);
  // What the server signs its requests with and every agent checks: no person types it.
  const agentSecret = new GeneratedSecret(`${stack}-portainer-agent-secret`).value;
  const portainer = new SwarmStack(`${stack}-portainer`, {
    manager: place.manager,
    fallbackManagers: place.fallbackManagers,
    stackName: "portainer",
    secrets: {
      "portainer-admin-password": adminPassword,
      "portainer-agent-args": agentSecret.apply(agentArgs),
    },
    deployVariables: { [PORTAINER_AGENT_SECRET_VARIABLE]: agentSecret },
    compose: (names) =>
      renderCompose(
        portainerCompose(config.portainer, {
          dataPath: `${config.gluster.mountPath}/${APP_DIRS.portainer}`,
          encryptOverlay: config.swarm.encryptOverlay,
          adminPasswordSecret: names["portainer-admin-password"]!,
          agentArgsSecret: names["portainer-agent-args"]!,
          ...(args.frontDoor === undefined ? {} : { edgeNetwork: true }),
        }),
      ),
    timeout: config.deployTimeout,
    resolveImage: config.swarm.resolveImage,
    pinImages: config.swarm.pinImages,
    dependsOn: place.dependsOn,
  });
  place.stacks.push(portainer);
  const door = args.frontDoor;
  return {
    // Through the front door where its address takes Portainer's edge port: not a DigitalOcean
    // load balancer, which forwards 80 and 443 only (Portainer stays on its own port, for adminCidrs).
    portainerUrl:
      door === undefined || config.edge === undefined || !door.floating
        ? pulumi
            .all([args.entryAddress, portainer.services])
            .apply(([address]) => `https://${address}:${config.portainer.httpsPort}`)
        : pulumi.all([frontDoorUrl(door.site, config.edge.portainerPort), portainer.services]).apply(([u]) => u),
    portainerAdminPassword: adminPassword,
  };
}
