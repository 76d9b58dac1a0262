/**
 * The whole program (`main`) with backups on (swarmcloud:backup), under Pulumi mocks, for the
 * local stack file: the local target's folder made on its node, the restore (restoreFrom) on a
 * manager before Ghost's and Portainer's stacks, the backup stack after them, the repository
 * password a secret output, and no secret value in any input but stdin. Without the key, backups
 * follow Ghost (on, the password generated); with backup.enabled false the program builds none of it.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as yaml from "js-yaml";
import { main, ProgramInputs } from "../../components/program";
import { script } from "../../components/remote-scripts";
import { BACKUP_JOB } from "../../stacks/backup";
import { clearRecorded, clusterStepState, recorded, RecordedResource, settled, setupMocks } from "./mocks";

setupMocks({ state: clusterStepState });

const REPO = path.join(__dirname, "..", "..");
const REMOTE_SCRIPT = "pulumi-nodejs:dynamic/swarmcloud:RemoteScript";
const PASSWORD = "repository-password-in-config";

function inputsFor(plain: Record<string, string>, secret: Record<string, string> = {}): ProgramInputs {
  const doc = yaml.load(fs.readFileSync(path.join(REPO, "Pulumi.local.yaml"), "utf8")) as {
    config: Record<string, unknown>;
  };
  const config = Object.fromEntries(
    Object.entries(doc.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
  return {
    stack: "local",
    config: { ...config, ...plain, ...secret },
    isSecret: (key) => key in secret,
    repoDir: REPO,
    previousOutput: async () => undefined,
  };
}

function named(name: string): RecordedResource {
  const found = recorded.filter((r) => r.type === REMOTE_SCRIPT && r.name === name);
  if (found.length !== 1) throw new Error(`expected one RemoteScript named ${name}, found ${found.length}`);
  return found[0]!;
}

describe("local, backup on with restoreFrom latest", () => {
  let outputs: Record<string, unknown>;
  const backup = { enabled: true, restoreFrom: "latest" };

  beforeAll(async () => {
    await settled();
    clearRecorded();
    outputs = await main(
      inputsFor({ "swarmcloud:backup": JSON.stringify(backup) }, { "swarmcloud:backupPassword": PASSWORD }),
    );
    await settled();
  });

  test("the local target's folder is made on the first manager, after the volume", () => {
    const target = named("local-backup-target");
    expect(target.inputs.create).toBe(script("backup-target"));
    expect(target.inputs.connection.host).toBe("172.30.0.11");
    expect(target.inputs.environment).toEqual({ NODE_NAME: "manager-1", REPOSITORY_DIR: "/srv/swarmcloud-backup" });
  });

  test("the restore runs on a manager after the target's folder, and Ghost and Portainer deploy after it", () => {
    const restore = named("local-backup-restore");
    expect(restore.inputs.create).toBe(script("backup-restore"));
    expect(restore.inputs.connection.host).toBe("172.30.0.11");
    expect(restore.dependencies).toContain(named("local-backup-target").urn);
    expect(restore.inputs.environment).toMatchObject({
      RESTORE_FROM: "latest",
      OVERWRITE: "false",
      REPLACES: "nothing: the restore runs only where the folders are empty",
      DATA_DIRS: "/mnt/swarmcloud/ghost/mysql\n/mnt/swarmcloud/ghost/content\n/mnt/swarmcloud/portainer",
      INITDB_DIR: "/mnt/swarmcloud/backup/initdb",
      JOB: BACKUP_JOB,
      CONSTRAINT: "node.hostname==manager-1",
      MOUNTS: [
        "type=bind,source=/mnt/swarmcloud/ghost/content,target=/backup/ghost-content",
        "type=bind,source=/mnt/swarmcloud/portainer,target=/backup/portainer",
        "type=bind,source=/mnt/swarmcloud/backup/initdb,target=/backup/database",
        "type=bind,source=/srv/swarmcloud-backup,target=/repository",
      ].join("\n"),
    });
    expect(restore.inputs.stdin).toBe(`restic_password=${Buffer.from(PASSWORD).toString("base64")}\n`);
    for (const stack of ["ghost", "portainer"]) {
      expect(named(`local-${stack}-deploy`).dependencies).toContain(restore.urn);
    }
  });

  test("the backup stack deploys after Ghost's and Portainer's; Ghost's database reads the restored dump", () => {
    const deploy = named("local-backup-deploy");
    expect(deploy.inputs.environment.STACK).toBe("backup");
    expect(deploy.dependencies).toEqual(
      expect.arrayContaining([named("local-ghost-deploy").urn, named("local-portainer-deploy").urn]),
    );
    const ghost = yaml.load(named("local-ghost-deploy").inputs.environment.COMPOSE) as {
      services: { db: { volumes: { target: string }[] } };
    };
    expect(ghost.services.db.volumes.map((v) => v.target)).toContain("/docker-entrypoint-initdb.d");
  });

  test("the repository password is a secret output; no secret value sits in any input but stdin", async () => {
    expect(await pulumi.isSecret(outputs.backupRepositoryPassword as pulumi.Output<string>)).toBe(true);
    for (const r of recorded) {
      const { stdin: _, ...rest } = r.inputs ?? {};
      expect([r.name, JSON.stringify(rest).includes(PASSWORD)]).toEqual([r.name, false]);
    }
  });
});

describe("local, backup left out: on with Ghost", () => {
  test("the backup stack is made, with a generated repository password exported as a secret", async () => {
    await settled();
    clearRecorded();
    const outputs = await main(inputsFor({}));
    await settled();
    expect(named("local-backup-deploy").inputs.environment.STACK).toBe("backup");
    expect(recorded.filter((r) => r.name === "local-backup-password")).toHaveLength(1);
    expect(await pulumi.isSecret(outputs.backupRepositoryPassword as pulumi.Output<string>)).toBe(true);
  });
});

describe("local, backup.enabled false", () => {
  test("no backup resource, no backup output, Ghost's database as before", async () => {
    await settled();
    clearRecorded();
    const outputs = await main(inputsFor({ "swarmcloud:backup": JSON.stringify({ enabled: false }) }));
    await settled();
    expect(recorded.filter((r) => r.name.includes("backup"))).toEqual([]);
    expect(outputs.backupRepositoryPassword).toBeUndefined();
    const ghost = yaml.load(named("local-ghost-deploy").inputs.environment.COMPOSE) as {
      services: { db: { volumes: { target: string }[] } };
    };
    expect(ghost.services.db.volumes.map((v) => v.target)).toEqual(["/var/lib/mysql"]);
  });
});
