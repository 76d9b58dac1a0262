/**
 * The backup stack's compose file (stacks/backup.ts) for each target: the job as entrypoint, the
 * folders it reads (read-only) and writes, Ghost's database network, the secrets by file name
 * only, the placement of the local target; and the whole rendered file as a snapshot.
 */
import * as yaml from "js-yaml";
import { BackupSettings, DEFAULTS } from "../../components/config";
import { BACKUP_JOB, backupCompose, BackupContext } from "../../stacks/backup";
import { renderCompose } from "../../stacks/compose";
import { ghostCompose } from "../../stacks/ghost";

const CTX: BackupContext = {
  folders: {
    ghostContent: "/mnt/swarmcloud/ghost/content",
    portainer: "/mnt/swarmcloud/portainer",
    status: "/mnt/swarmcloud/backup/status",
    initdb: "/mnt/swarmcloud/backup/initdb",
  },
  defaultNode: "manager-1",
  endpointMode: "vip",
  encryptOverlay: false,
  secretNames: {
    password: "backup-restic-password-aaaa",
    dbPassword: "backup-db-password-bbbb",
    sftpKey: "backup-sftp-key-cccc",
    s3AccessKeyId: "backup-s3-access-key-id-dddd",
    s3SecretAccessKey: "backup-s3-secret-access-key-eeee",
  },
};
const settings = (more: Partial<BackupSettings>): BackupSettings => ({ ...DEFAULTS.backup, enabled: true, ...more });
const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJKbm0Jnmq6qkN2FhmcWAdsx0tZ4ZXkWyS2vh+H6SoIv";

describe("backupCompose", () => {
  test("local: the job on the target node, its folder bound at /repository, content and Portainer read-only", () => {
    const file = backupCompose(settings({}), CTX);
    const svc = file.services.backup!;
    expect(svc.entrypoint).toEqual(["/bin/sh", "-c", BACKUP_JOB, "swarmcloud-backup"]);
    expect(svc.command).toEqual(["run"]);
    expect(svc.deploy?.placement).toEqual({ constraints: ["node.hostname==manager-1"] });
    expect(svc.volumes).toEqual([
      { type: "bind", source: "/mnt/swarmcloud/ghost/content", target: "/backup/ghost-content", read_only: true },
      { type: "bind", source: "/mnt/swarmcloud/portainer", target: "/backup/portainer", read_only: true },
      { type: "bind", source: "/mnt/swarmcloud/backup/status", target: "/status" },
      { type: "bind", source: "/mnt/swarmcloud/backup/initdb", target: "/initdb" },
      { type: "bind", source: "/srv/swarmcloud-backup", target: "/repository" },
    ]);
    expect(svc.networks).toEqual(["ghost"]);
    expect(file.networks).toEqual({ ghost: { external: true, name: "ghost_backend" } });
    expect(svc.environment).toMatchObject({
      RESTIC_REPOSITORY: "/repository",
      RESTIC_PASSWORD_FILE: "/run/secrets/restic_password",
      DB_HOST: "ghost_db",
      DB_PASSWORD_FILE: "/run/secrets/db_password",
      INTERVAL_HOURS: "24",
    });
    expect(Object.keys(file.secrets!)).toEqual(["restic_password", "db_password"]);
    expect(backupCompose(settings({ node: "worker-2" }), CTX).services.backup!.deploy?.placement).toEqual({
      constraints: ["node.hostname==worker-2"],
    });
  });

  test("sftp: anywhere in the swarm, its own way out, the login key a secret, the host key pinned", () => {
    const file = backupCompose(
      settings({ target: "sftp", repository: "sftp:b@10.0.0.9:/srv/r", sftpHostKey: HOST_KEY }),
      CTX,
    );
    const svc = file.services.backup!;
    expect(svc.deploy?.placement).toEqual({ constraints: [] });
    expect(svc.networks).toEqual(["ghost", "egress"]);
    expect(svc.environment).toMatchObject({
      RESTIC_REPOSITORY: "sftp:b@10.0.0.9:/srv/r",
      SFTP_KEY_FILE: "/run/secrets/sftp_key",
      SFTP_HOST_KEY: HOST_KEY,
    });
    expect(svc.volumes?.map((v) => v.target)).not.toContain("/repository");
    expect(file.secrets!.sftp_key).toEqual({ external: true, name: "backup-sftp-key-cccc" });
  });

  test("s3: the keys as secret files; Portainer off: no Portainer folder", () => {
    const { portainer: _, ...folders } = CTX.folders;
    const file = backupCompose(settings({ target: "s3", repository: "s3:https://h/b/p" }), { ...CTX, folders });
    const svc = file.services.backup!;
    expect(svc.environment).toMatchObject({
      S3_ACCESS_KEY_ID_FILE: "/run/secrets/s3_access_key_id",
      S3_SECRET_ACCESS_KEY_FILE: "/run/secrets/s3_secret_access_key",
    });
    expect(Object.keys(file.secrets!)).toEqual([
      "restic_password",
      "db_password",
      "s3_access_key_id",
      "s3_secret_access_key",
    ]);
    expect(svc.volumes?.map((v) => v.target)).not.toContain("/backup/portainer");
  });

  test("the rendered file: valid, the job's $ escaped for compose, as the snapshot", () => {
    const text = renderCompose(backupCompose(settings({}), CTX));
    const back = yaml.load(text) as { services: { backup: { entrypoint: string[] } } };
    expect(back.services.backup.entrypoint[2]).toBe(BACKUP_JOB.replace(/\$/g, "$$$$"));
    expect(text).toMatchSnapshot();
  });

  test("Ghost's database reads the restored dump from the backup's folder only when backup is on", () => {
    const ghost = (initDbPath?: string) =>
      ghostCompose(DEFAULTS.ghost, {
        contentPath: "/c",
        dbPath: "/d",
        url: "http://x",
        encryptOverlay: false,
        secretNames: { dbPassword: "p", dbRootPassword: "r" },
        ...(initDbPath === undefined ? {} : { initDbPath }),
      }).services.db!.volumes;
    expect(ghost()).toEqual([{ type: "bind", source: "/d", target: "/var/lib/mysql" }]);
    expect(ghost("/mnt/swarmcloud/backup/initdb")).toEqual([
      { type: "bind", source: "/d", target: "/var/lib/mysql" },
      { type: "bind", source: "/mnt/swarmcloud/backup/initdb", target: "/docker-entrypoint-initdb.d", read_only: true },
    ]);
  });
});
