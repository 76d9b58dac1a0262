/**
 * Backups (backup.enabled): the restic service in the swarm (stacks/backup.ts), the folder of the
 * local target on its node, and the restore that `backup.restoreFrom` makes part of the declared
 * state, run before Ghost's and Portainer's stacks deploy.
 */
import * as pulumi from "@pulumi/pulumi";
import {
  BACKUP_JOB,
  BACKUP_PATHS,
  BACKUP_SECRET_KEYS,
  BackupFolders,
  backupCompose,
  backupConstraints,
  backupEnvironment,
  backupNode,
  BackupSecret,
  backupSecrets,
  repositoryMounts,
} from "../stacks/backup";
import { renderCompose } from "../stacks/compose";
import { BackupSettings, SwarmcloudConfig } from "./config";
import { GeneratedSecret } from "./generated-secret";
import { ClusterNode } from "./nodes/types";
import { RemoteScript } from "./remote";
import { script } from "./remote-scripts";
import { SwarmStack } from "./stack";
import { nodeStep } from "./step";

/** The backup's folders on the Gluster mount (made by GlusterVolume on every node when backup is on). */
export const BACKUP_DIRS = { status: "backup/status", initdb: "backup/initdb" } as const;

/** The apps' folders a backup holds, relative to the mount (APP_DIRS of apps.ts, passed in to keep one home). */
export interface AppFolders {
  ghostContent: string;
  ghostDb: string;
  portainer: string;
}

/** The folders on the node the job and the restore use, from the mount path. */
export function backupFolders(config: SwarmcloudConfig, apps: AppFolders): BackupFolders & { ghostDb: string } {
  const at = (dir: string) => `${config.gluster.mountPath}/${dir}`;
  return {
    ghostContent: at(apps.ghostContent),
    ghostDb: at(apps.ghostDb),
    ...(config.portainer.enabled ? { portainer: at(apps.portainer) } : {}),
    status: at(BACKUP_DIRS.status),
    initdb: at(BACKUP_DIRS.initdb),
  };
}

/** Secret values by the job's secret: the repository password and the target's keys (config secrets). */
export type BackupSecretValues = Partial<Record<BackupSecret, pulumi.Output<string>>>;

/** Where the backup runs: the managers, the nodes, what it waits for. */
export interface BackupPlace {
  stack: string;
  config: SwarmcloudConfig;
  backup: BackupSettings;
  nodes: ClusterNode[];
  manager: ClusterNode;
  fallbackManagers: ClusterNode[];
  dependsOn: pulumi.Resource[];
  folders: BackupFolders & { ghostDb: string };
}

/** The repository password: the config secret, else one made by the program (kept in state, exported). */
export function repositoryPassword(stack: string, given: pulumi.Output<string> | undefined): pulumi.Output<string> {
  return pulumi.secret(given ?? new GeneratedSecret(`${stack}-backup-password`).value);
}

/** The local target's folder on its node, made before anything binds it; nothing for sftp and s3. */
export function targetStep(place: BackupPlace): RemoteScript | undefined {
  const { backup } = place;
  if (backup.target !== "local") return undefined;
  const name = backupNode(backup, place.manager.name);
  const node = place.nodes.find((n) => n.name === name);
  if (node === undefined)
    throw new Error(`swarmcloud: backup.node ${name} is not a node; parseConfig should have said so`);
  return nodeStep(
    `${place.stack}-backup-target`,
    { node, create: script("backup-target"), environment: { REPOSITORY_DIR: backup.path } },
    { dependsOn: place.dependsOn },
  );
}

/** The secret lines the restore reads on stdin: `<key>=<base64>` per secret the job reads, but the database's. */
function restoreStdin(backup: BackupSettings, values: BackupSecretValues): pulumi.Output<string> {
  const keys = backupSecrets(backup).filter((s) => s !== "dbPassword");
  return pulumi.secret(
    pulumi
      .all(keys.map((k) => values[k]!))
      .apply((v) =>
        keys.map((k, i) => `${BACKUP_SECRET_KEYS[k]}=${Buffer.from(v[i]!, "utf8").toString("base64")}\n`).join(""),
      ),
  );
}

/** The one-shot restore's `--mount` specs: the data folders where the snapshot holds them, the local repository. */
export function restoreMounts(backup: BackupSettings, folders: BackupFolders): string {
  const bind = (source: string, target: string) => `type=bind,source=${source},target=${target}`;
  return [
    bind(folders.ghostContent, BACKUP_PATHS.ghostContent),
    ...(folders.portainer === undefined ? [] : [bind(folders.portainer, BACKUP_PATHS.portainer)]),
    bind(folders.initdb, BACKUP_PATHS.database),
    ...repositoryMounts(backup).map((m) => bind(m.source, m.target)),
  ].join("\n");
}

/** What a restore over existing data replaces: shown in the preview as the step's REPLACES. */
export function restoreReplaces(backup: BackupSettings, folders: BackupFolders & { ghostDb: string }): string {
  if (!backup.restoreOverExisting) return "nothing: the restore runs only where the folders are empty";
  const dirs = [folders.ghostDb, folders.ghostContent, ...(folders.portainer === undefined ? [] : [folders.portainer])];
  return `the data in ${dirs.join(", ")} (moved aside as <folder>.replaced-<time>) by snapshot ${backup.restoreFrom}`;
}

/**
 * The restore (backup.restoreFrom), on a manager before Ghost's and Portainer's stacks: it restores
 * where their folders are empty, does nothing where they hold data (so the key may stay set), and
 * replaces that data only with restoreOverExisting. Re-runs when its settings change.
 */
export function restoreStep(place: BackupPlace, values: BackupSecretValues, after: pulumi.Resource[]): RemoteScript {
  const { backup, folders, config } = place;
  const dataDirs = [folders.ghostDb, folders.ghostContent, ...(folders.portainer ? [folders.portainer] : [])];
  return new RemoteScript(
    `${place.stack}-backup-restore`,
    {
      node: place.manager.name,
      connection: place.manager.connection,
      fallbackConnections: place.fallbackManagers.map((m) => m.connection),
      create: script("backup-restore"),
      stdin: restoreStdin(backup, values),
      environment: {
        RESTORE_FROM: backup.restoreFrom!,
        OVERWRITE: String(backup.restoreOverExisting),
        REPLACES: restoreReplaces(backup, folders),
        DATA_DIRS: dataDirs.join("\n"),
        INITDB_DIR: folders.initdb,
        SERVICES: ["ghost_ghost", "ghost_db", "portainer_portainer", "backup_backup"].join("\n"),
        IMAGE: backup.image,
        RESOLVE_IMAGE: config.swarm.resolveImage,
        JOB: BACKUP_JOB,
        JOB_ENV: Object.entries(backupEnvironment(backup))
          .map(([k, v]) => `${k}=${v}`)
          .join("\n"),
        MOUNTS: restoreMounts(backup, folders),
        CONSTRAINT: backupConstraints(backup, place.manager.name).join(""),
        TIMEOUT: String(config.deployTimeout * 2),
      },
      timeout: config.deployTimeout * 2 + 180,
    },
    { dependsOn: [...place.dependsOn, ...after] },
  );
}

/** The backup stack, after Ghost's (it joins Ghost's database network). */
export function backupStack(
  place: BackupPlace,
  values: BackupSecretValues & { dbPassword: pulumi.Output<string> },
  after: pulumi.Resource[],
): SwarmStack {
  const { backup, config } = place;
  const base = (s: BackupSecret) => `backup-${BACKUP_SECRET_KEYS[s].replace(/_/g, "-")}`;
  const secrets = backupSecrets(backup);
  return new SwarmStack(`${place.stack}-backup`, {
    manager: place.manager,
    fallbackManagers: place.fallbackManagers,
    stackName: "backup",
    secrets: Object.fromEntries(secrets.map((s) => [base(s), values[s]!])),
    compose: (names) =>
      renderCompose(
        backupCompose(backup, {
          folders: place.folders,
          defaultNode: place.manager.name,
          endpointMode: config.ghost.endpointMode,
          encryptOverlay: config.swarm.encryptOverlay,
          secretNames: Object.fromEntries(secrets.map((s) => [s, names[base(s)]!])),
        }),
      ),
    timeout: config.deployTimeout,
    resolveImage: config.swarm.resolveImage,
    pinImages: config.swarm.pinImages,
    dependsOn: [...place.dependsOn, ...after],
  });
}
