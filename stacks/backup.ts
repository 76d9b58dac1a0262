import * as fs from "fs";
import * as path from "path";
import type { BackupSettings, BackupTarget } from "../components/config";
import {
  ComposeBind,
  ComposeFile,
  ComposeNetwork,
  ComposeServiceSecret,
  EndpointMode,
  RESTART_ANY,
  rolling,
} from "./compose";
import { GHOST_DB_NAME, GHOST_DB_USER } from "./ghost";

/**
 * The backup job (stacks/backup-job.sh, a POSIX shell script kept in a file of its own so that
 * shellcheck reads it): the backup service's entrypoint and the restore one-shot's.
 */
export const BACKUP_JOB = fs.readFileSync(path.join(__dirname, "backup-job.sh"), "utf8");

/** The entrypoint that runs the job from the compose text, whatever the image's own entrypoint (restic's). */
export const BACKUP_ENTRYPOINT = ["/bin/sh", "-c", BACKUP_JOB, "swarmcloud-backup"];

/** Keys under `secrets:`; each mounted at /run/secrets/<key>. */
export const BACKUP_SECRET_KEYS = {
  password: "restic_password",
  dbPassword: "db_password",
  sftpKey: "sftp_key",
  s3AccessKeyId: "s3_access_key_id",
  s3SecretAccessKey: "s3_secret_access_key",
} as const;
export type BackupSecret = keyof typeof BACKUP_SECRET_KEYS;

/** The secrets each target reads besides the repository password and the database's. */
export const TARGET_SECRETS: Record<BackupTarget, BackupSecret[]> = {
  local: [],
  sftp: ["sftpKey"],
  s3: ["s3AccessKeyId", "s3SecretAccessKey"],
};

/** Where the folders a snapshot holds are mounted in the job's container (the paths inside the snapshot). */
export const BACKUP_PATHS = {
  ghostContent: "/backup/ghost-content",
  portainer: "/backup/portainer",
  database: "/backup/database",
  status: "/status",
  initdb: "/initdb",
  localRepository: "/repository",
} as const;

/** The Docker name of Ghost's database network, which the backup joins to reach the database. */
export const GHOST_BACKEND_NETWORK = "ghost_backend";
/** The database service as another stack reaches it. */
export const GHOST_DB_SERVICE = "ghost_db";

/** Folders on the node (the Gluster mount, the local target's disk) the job reads and writes. */
export interface BackupFolders {
  /** Ghost's content folder on the Gluster mount. */
  ghostContent: string;
  /** Portainer's data folder; unset when Portainer is off. */
  portainer?: string;
  /** Where the last run and the last success are written (on the volume: readable from every node). */
  status: string;
  /** The database's first-start folder (`/docker-entrypoint-initdb.d`), where a restore leaves its dump. */
  initdb: string;
}

export interface BackupContext {
  folders: BackupFolders;
  /** The first manager's name: where the local target's repository lives unless `backup.node` says. */
  defaultNode: string;
  /** Ghost's endpoint mode (the lab has no IPVS: dnsrr). */
  endpointMode: EndpointMode;
  /** Encrypt the backup's own overlay network (IPsec between nodes). */
  encryptOverlay: boolean;
  /** Versioned Docker secret names, by secret. */
  secretNames: Partial<Record<BackupSecret, string>>;
}

/** The repository as restic names it: the local target's folder as mounted in the container, else the configured one. */
export function resticRepository(settings: Pick<BackupSettings, "target" | "repository">): string {
  return settings.target === "local" ? BACKUP_PATHS.localRepository : settings.repository!;
}

/** The node the local target's repository lives on. */
export function backupNode(settings: Pick<BackupSettings, "node">, defaultNode: string): string {
  return settings.node ?? defaultNode;
}

/** The job's environment: the repository, the database, the schedule, the target's options; secrets as file names only. */
export function backupEnvironment(settings: BackupSettings): Record<string, string> {
  const file = (s: BackupSecret) => `/run/secrets/${BACKUP_SECRET_KEYS[s]}`;
  return {
    RESTIC_REPOSITORY: resticRepository(settings),
    RESTIC_PASSWORD_FILE: file("password"),
    RESTIC_CACHE_DIR: "/tmp/restic-cache",
    DB_HOST: GHOST_DB_SERVICE,
    DB_USER: GHOST_DB_USER,
    DB_NAME: GHOST_DB_NAME,
    DB_PASSWORD_FILE: file("dbPassword"),
    ...(settings.target === "sftp"
      ? { SFTP_KEY_FILE: file("sftpKey"), SFTP_HOST_KEY: settings.sftpHostKey! }
      : settings.target === "s3"
        ? { S3_ACCESS_KEY_ID_FILE: file("s3AccessKeyId"), S3_SECRET_ACCESS_KEY_FILE: file("s3SecretAccessKey") }
        : {}),
  };
}

/** The secrets the job reads: the repository password, the database's, and its target's. */
export function backupSecrets(settings: Pick<BackupSettings, "target">): BackupSecret[] {
  return ["password", "dbPassword", ...TARGET_SECRETS[settings.target]];
}

/** The local target's repository folder, bound into the container; nothing for sftp and s3. */
export function repositoryMounts(settings: Pick<BackupSettings, "target" | "path">): ComposeBind[] {
  return settings.target === "local"
    ? [{ type: "bind", source: settings.path, target: BACKUP_PATHS.localRepository }]
    : [];
}

/** Where the job must run: on the local target's node; anywhere for sftp and s3 (it survives a node's loss). */
export function backupConstraints(settings: Pick<BackupSettings, "target" | "node">, defaultNode: string): string[] {
  return settings.target === "local" ? [`node.hostname==${backupNode(settings, defaultNode)}`] : [];
}

/**
 * The backup stack: one `backup` service running the job's schedule (`run`).
 *
 * - It reaches the database on Ghost's `backend` network (internal: no route out) and, for an
 *   sftp or s3 target, the outside world on an overlay network of its own.
 * - It reads Ghost's content and Portainer's data read-only, writes the result of each run to
 *   the status folder on the volume, and removes a restored dump once the database answers.
 * - Passwords and keys are Docker secrets read from files by the job; the spec names files only.
 * - One replica, restarted whatever stopped it: a restart backs up at once, which is also the
 *   on-demand run (`docker service update --force backup_backup`).
 */
export function backupCompose(settings: BackupSettings, ctx: BackupContext): ComposeFile {
  const remote = settings.target !== "local";
  const folders = ctx.folders;
  const secrets = backupSecrets(settings);
  const serviceSecrets: ComposeServiceSecret[] = secrets.map((s) => ({ source: BACKUP_SECRET_KEYS[s] }));
  const egress: ComposeNetwork = {
    driver: "overlay",
    ...(ctx.encryptOverlay ? { driver_opts: { encrypted: "true" } } : {}),
  };
  return {
    version: "3.8",
    services: {
      backup: {
        image: settings.image,
        entrypoint: BACKUP_ENTRYPOINT,
        command: ["run"],
        environment: {
          ...backupEnvironment(settings),
          INTERVAL_HOURS: String(settings.intervalHours),
          KEEP_DAILY: String(settings.keepDaily),
          KEEP_WEEKLY: String(settings.keepWeekly),
          KEEP_MONTHLY: String(settings.keepMonthly),
          STATUS_DIR: BACKUP_PATHS.status,
          INITDB_DIR: BACKUP_PATHS.initdb,
        },
        secrets: serviceSecrets,
        volumes: [
          { type: "bind", source: folders.ghostContent, target: BACKUP_PATHS.ghostContent, read_only: true },
          ...(folders.portainer === undefined
            ? []
            : [{ type: "bind", source: folders.portainer, target: BACKUP_PATHS.portainer, read_only: true } as const]),
          { type: "bind", source: folders.status, target: BACKUP_PATHS.status },
          { type: "bind", source: folders.initdb, target: BACKUP_PATHS.initdb },
          ...repositoryMounts(settings),
        ],
        networks: remote ? ["ghost", "egress"] : ["ghost"],
        deploy: {
          replicas: 1,
          endpoint_mode: ctx.endpointMode,
          placement: { constraints: backupConstraints(settings, ctx.defaultNode) },
          restart_policy: RESTART_ANY,
          // Stop-first: two jobs would run the same backup against one repository at once.
          ...rolling("stop-first", "15s"),
        },
        // The job stops at once on SIGTERM, between runs or in one (restic leaves no half snapshot).
        stop_grace_period: "30s",
      },
    },
    networks: {
      ghost: { external: true, name: GHOST_BACKEND_NETWORK },
      ...(remote ? { egress } : {}),
    },
    secrets: Object.fromEntries(
      secrets.map((s) => [BACKUP_SECRET_KEYS[s], { external: true as const, name: ctx.secretNames[s]! }]),
    ),
  };
}
