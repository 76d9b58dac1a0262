/**
 * The `backup` section (components/config.ts): on with Ghost unless set off, and absent from the
 * config when off (so a stack without Ghost builds what it built before), every target's settings and secrets, the
 * restore keys, and each problem naming the key, the value and the fix.
 */
import { DEFAULTS, parseConfig, RawConfig } from "../../components/config";

const parse = (backup: Record<string, unknown>, secrets: string[] = [], extra: RawConfig = {}) =>
  parseConfig(
    {
      environment: "ssh",
      nodes: [{ name: "m1", role: "manager", address: "10.0.0.1" }],
      gluster: { replica: 1 },
      swarm: { encryptOverlay: false },
      backup,
      ...extra,
    },
    { sshPrivateKey: true, backupSecrets: secrets as never },
  );

const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJKbm0Jnmq6qkN2FhmcWAdsx0tZ4ZXkWyS2vh+H6SoIv";

describe("backup settings", () => {
  test("on with Ghost by default (enabled unset), off without Ghost or when set false: then absent", () => {
    expect(parseConfig({}, { sshPrivateKey: false }).config.backup).toEqual({ ...DEFAULTS.backup, enabled: true });
    expect(parse({}).config.backup).toEqual({ ...DEFAULTS.backup, enabled: true });
    expect(parse({ target: "local", keepDaily: 3 }).config.backup?.keepDaily).toBe(3);
    const noGhost = parse({}, [], { ghost: { enabled: false } });
    expect([noGhost.config.backup, noGhost.errors]).toEqual([undefined, []]);
    expect(parse({ enabled: false, target: "s3" }).config.backup).toBeUndefined();
    expect(parse({ enabled: true }, [], { ghost: { enabled: false } }).errors).toEqual([
      "swarmcloud:backup.enabled = true: backs up Ghost's database and content, and ghost.enabled is false; enable Ghost or remove backup.enabled",
    ]);
  });

  test("local environment: the default backup says nothing, a backup the stack set up warns that destroy takes it", () => {
    const { enabled: _, ...declared } = DEFAULTS.backup;
    expect(parseConfig({ backup: declared }, { sshPrivateKey: false }).warnings).toEqual([]);
    expect(parseConfig({}, { sshPrivateKey: false }).warnings).toEqual([]);
    expect(parseConfig({ backup: { ...declared, keepDaily: 3 } }, { sshPrivateKey: false }).warnings).toEqual([
      "swarmcloud:backup.target: the local environment's nodes are containers that pulumi destroy removes, with manager-1's /srv/swarmcloud-backup: use an sftp or s3 target for backups that outlive the cluster",
    ]);
  });

  test("on with the defaults: a local folder on the first manager, daily, 7/4/6 kept", () => {
    const { config, errors, warnings } = parse({ enabled: true });
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
    expect(config.backup).toEqual({ ...DEFAULTS.backup, enabled: true });
  });

  test("sftp needs its repository, the server's host key and the login key", () => {
    expect(parse({ enabled: true, target: "sftp" }).errors).toEqual([
      "swarmcloud:backup.repository = (not set): the sftp target needs the repository in restic's words, such as sftp:backup@192.168.1.5:/srv/restic",
      "swarmcloud:backup.sftpHostKey = (not set): the sftp target needs the server's SSH host key, checked on every connection: the line `ssh-keyscan -t ed25519 <host>` prints (without the address)",
      "swarmcloud:backupSftpKey = (not set): the sftp target needs it: pulumi config set --secret swarmcloud:backupSftpKey < ~/.ssh/backup_key",
    ]);
    const ok = parse(
      { enabled: true, target: "sftp", repository: "sftp:backup@10.0.0.9:/srv/restic", sftpHostKey: HOST_KEY },
      ["backupSftpKey"],
    );
    expect(ok.errors).toEqual([]);
    expect(ok.config.backup?.sftpHostKey).toBe(HOST_KEY);
  });

  test("s3 needs an s3: repository and both keys; a local target takes no repository", () => {
    expect(parse({ enabled: true, target: "s3", repository: "sftp:x@y:/z" }, ["backupS3AccessKeyId"]).errors).toEqual([
      'swarmcloud:backup.repository = "sftp:x@y:/z": the s3 target needs the repository in restic\'s words, such as s3:https://ams3.digitaloceanspaces.com/my-bucket/swarmcloud',
      "swarmcloud:backupS3SecretAccessKey = (not set): the s3 target needs it: pulumi config set --secret swarmcloud:backupS3SecretAccessKey <value>",
    ]);
    expect(parse({ enabled: true, repository: "s3:https://h/b/p" }).errors[0]).toMatch(
      /^swarmcloud:backup.repository = "s3:https:\/\/h\/b\/p": the local target keeps the repository in backup.path/,
    );
  });

  test("a local folder on the Gluster volume or its bricks is refused, and an unknown node", () => {
    const { errors } = parse({ enabled: true, path: "/mnt/swarmcloud/backups", node: "w9" });
    expect(errors).toEqual([
      'swarmcloud:backup.node = "w9": is not a node name; nodes are: m1',
      'swarmcloud:backup.path = "/mnt/swarmcloud/backups": overlaps gluster.mountPath /mnt/swarmcloud: a backup on the volume it backs up is lost with it; pick a folder outside it, such as /srv/swarmcloud-backup',
    ]);
    expect(parse({ enabled: true, path: "/srv" }).errors[0]).toMatch(/overlaps gluster.brickPath/);
  });

  test("restoreFrom: latest or a snapshot id, and the repository's password set; restoreOverExisting only with it", () => {
    expect(parse({ enabled: true, restoreFrom: "latest" }, ["backupPassword"]).errors).toEqual([]);
    expect(parse({ enabled: true, restoreFrom: "4f2a9c1d" }, ["backupPassword"]).errors).toEqual([]);
    expect(parse({ enabled: true, restoreFrom: "newest" }, ["backupPassword"]).errors).toEqual([
      'swarmcloud:backup.restoreFrom = "newest": must be latest or a snapshot id (8 to 64 hex digits, as restic snapshots prints it)',
    ]);
    expect(parse({ enabled: true, restoreFrom: "latest" }).errors).toEqual([
      expect.stringMatching(
        /^swarmcloud:backupPassword = \(not set\): backup.restoreFrom reads a repository made before this stack/,
      ),
    ]);
    expect(parse({ enabled: true, restoreOverExisting: true }).errors).toEqual([
      "swarmcloud:backup.restoreOverExisting = true: says what restoreFrom may replace, and restoreFrom is not set; set restoreFrom or remove restoreOverExisting",
    ]);
  });

  test("Ghost off, nothing kept, an unknown key, a bad interval: each reported", () => {
    const { errors } = parse(
      { enabled: true, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, intervalHours: 0, every: "1d" },
      [],
      { ghost: { enabled: false } },
    );
    expect(errors).toEqual([
      'swarmcloud:backup.every = "1d": unknown setting; known settings here: enabled, image, target, node, path, repository, sftpHostKey, intervalHours, keepDaily, keepWeekly, keepMonthly, restoreFrom, restoreOverExisting',
      "swarmcloud:backup.intervalHours = 0: must be between 1 and 744",
      "swarmcloud:backup.keepDaily = 0: with keepDaily, keepWeekly and keepMonthly all 0 every snapshot would be forgotten; keep at least one",
      "swarmcloud:backup.enabled = true: backs up Ghost's database and content, and ghost.enabled is false; enable Ghost or remove backup.enabled",
    ]);
  });

  test("the local environment is warned that its nodes' disks go with pulumi destroy", () => {
    const { warnings } = parseConfig({ backup: { enabled: true } }, { sshPrivateKey: false });
    expect(warnings).toEqual([
      expect.stringMatching(/^swarmcloud:backup.target: the local environment's nodes are containers/),
    ]);
  });
});
