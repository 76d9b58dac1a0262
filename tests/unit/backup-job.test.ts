/**
 * The backup job (stacks/backup-job.sh) run in sh against stand-ins for restic and mariadb-dump
 * that log every call: a first run makes the repository, a wrong password or an unreachable
 * target fails the run visibly (the status files, the log line) without making or writing
 * anything, the next run after the target is back succeeds, a restore with a wrong password
 * restores nothing, and no secret reaches a command line.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BACKUP_JOB } from "../../stacks/backup";

/** restic as the job meets it; the repository's state ("missing", "ok", "wrong", "down") is the file `state`. */
const RESTIC = `
printf 'restic %s\\n' "$*" >>"$STAND_IN_DIR/calls.log"
state=$(cat "$STAND_IN_DIR/state")
for a in "$@"; do
  case "$a" in
    cat | init | backup | forget | check | restore) cmd=$a; break ;;
  esac
done
case "$cmd:$state" in
  init:missing) echo ok >"$STAND_IN_DIR/state"; echo "created restic repository" ;;
  *:missing) printf 'Fatal: unable to open config file: stat /repository/config: no such file or directory\\nIs there a repository at the following location?\\n/repository\\n' >&2; exit 1 ;;
  *:wrong) echo "Fatal: wrong password or no key found" >&2; exit 1 ;;
  *:down) echo "Fatal: unable to open repository at sftp:b@h:/r: unable to start the sftp session, error: EOF" >&2; exit 1 ;;
  backup:ok) echo "Added to the repository: 1.2 MiB"; echo "snapshot 1a2b3c4d saved" ;;
  *:ok) ;;
esac
`;
const DUMP = `
printf 'mariadb-dump %s\\n' "$*" >>"$STAND_IN_DIR/calls.log"
grep -q '^password="db-secret-value"$' "\${1#--defaults-extra-file=}" || { echo "no password" >&2; exit 1; }
echo '/*M!999999\\- enable the sandbox mode */ '
echo "-- the ghost database"
`;

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-backup-"));
  for (const [name, body] of Object.entries({ restic: RESTIC, "mariadb-dump": DUMP })) {
    fs.writeFileSync(path.join(dir, name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
  }
  fs.writeFileSync(path.join(dir, "password"), "repo-secret-value\n");
  fs.writeFileSync(path.join(dir, "dbpassword"), "db-secret-value\n");
  for (const d of ["status", "initdb", "root", "tmp", "restored"]) fs.mkdirSync(path.join(dir, d));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs the job as the service would (`sh -c <job> swarmcloud-backup <args>`); `run` is stopped after one round. */
function job(state: string, ...args: string[]) {
  return jobWith({}, state, ...args);
}

/** `job` with more environment (a target's settings). */
function jobWith(more: Record<string, string>, state: string, ...args: string[]) {
  fs.writeFileSync(path.join(dir, "state"), state);
  fs.rmSync(path.join(dir, "calls.log"), { force: true });
  const r = spawnSync("sh", ["-c", BACKUP_JOB, "swarmcloud-backup", ...args], {
    encoding: "utf8",
    timeout: args[0] === "run" ? 3000 : 20000,
    env: {
      PATH: `${dir}:/usr/bin:/bin`,
      STAND_IN_DIR: dir,
      TMPDIR: path.join(dir, "tmp"),
      BACKUP_ROOT: path.join(dir, "root"),
      RESTORE_TARGET: path.join(dir, "restored"),
      RESTIC_REPOSITORY: "/repository",
      RESTIC_PASSWORD_FILE: path.join(dir, "password"),
      DB_HOST: "ghost_db",
      DB_USER: "ghost",
      DB_NAME: "ghost",
      DB_PASSWORD_FILE: path.join(dir, "dbpassword"),
      INTERVAL_HOURS: "24",
      KEEP_DAILY: "7",
      KEEP_WEEKLY: "4",
      KEEP_MONTHLY: "6",
      STATUS_DIR: path.join(dir, "status"),
      INITDB_DIR: path.join(dir, "initdb"),
      ...more,
    },
  });
  const read = (f: string) => (fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), "utf8") : "");
  return { ...r, calls: read("calls.log").trim().split("\n"), read };
}

/** One round of the schedule (`once`: what `run` does before it sleeps). */
function oneRun(state: string) {
  const r = job(state, "once");
  return { ...r, line: r.stdout.split("\n")[0] ?? "" };
}

describe("backup-job.sh", () => {
  test("the first run makes the repository, dumps the database, backs up, forgets and checks; the status says so", () => {
    fs.writeFileSync(path.join(dir, "initdb", "ghost.sql"), "-- restored");
    const r = oneRun("missing");
    expect(r.line).toMatch(/^BACKUP=ok \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ 1a2b3c4d \d+s$/);
    expect(r.calls.map((c) => c.split(" ").slice(0, 2).join(" "))).toEqual([
      "restic cat",
      "restic init",
      "mariadb-dump --defaults-extra-file=" + path.join(dir, "tmp", "swarmcloud-backup", "my.cnf"),
      "restic backup",
      "restic forget",
      "restic check",
    ]);
    expect(r.calls).toContain(`restic backup --host swarmcloud --tag swarmcloud ${path.join(dir, "root")}`);
    expect(r.calls).toContain(
      "restic forget --host swarmcloud --prune --keep-daily 7 --keep-weekly 4 --keep-monthly 6",
    );
    expect(r.calls.find((c) => c.startsWith("mariadb-dump"))).toContain("--single-transaction --no-tablespaces ghost");
    // Without mariadb-dump's "sandbox mode" line, which MySQL refuses.
    expect(r.read("root/database/ghost.sql")).toBe("-- the ghost database\n");
    expect(fs.existsSync(path.join(dir, "root", "database", "ghost.sql.part"))).toBe(false);
    expect(r.read("status/last-success")).toBe(`${r.line.replace("BACKUP=ok ", "")}\n`);
    expect(r.read("status/last-run")).toBe(`${r.line.replace("BACKUP=", "")}\n`);
    // The restored dump has been taken in by the database that just answered.
    expect(fs.existsSync(path.join(dir, "initdb", "ghost.sql"))).toBe(false);
  });

  test("a wrong password fails the run visibly and makes nothing: no init, no dump, no backup", () => {
    const r = oneRun("wrong");
    expect(r.line).toMatch(/^BACKUP=failed \S+ the repository's password is wrong/);
    expect(r.calls).toEqual(["restic cat config"]);
    expect(r.read("status/last-run")).toMatch(/^failed /);
    expect(r.read("status/last-success")).toBe("");
  });

  test("an unreachable target fails the run with restic's words; the next run after it is back succeeds", () => {
    const down = oneRun("down");
    expect(down.line).toMatch(/^BACKUP=failed \S+ the repository does not answer: Fatal: unable to open repository/);
    expect(down.calls).toEqual(["restic cat config"]);
    const back = oneRun("ok");
    expect(back.line).toMatch(/^BACKUP=ok /);
    expect(back.read("status/last-run")).toMatch(/^ok /);
  });

  test("restore: a wrong password restores nothing and says why; a good one restores the snapshot", () => {
    const wrong = job("wrong", "restore", "latest");
    expect(wrong.status).toBe(1);
    expect(wrong.stdout.trim()).toMatch(/^RESTORE=failed the repository's password is wrong/);
    expect(wrong.calls).toEqual(["restic cat config"]);
    const missing = job("missing", "restore", "latest");
    expect(missing.stdout.trim()).toBe("RESTORE=failed there is no repository at /repository");
    expect(missing.calls).not.toContain("restic init");
    const ok = job("ok", "restore", "4f2a9c1d");
    expect(ok.status).toBe(0);
    expect(ok.stdout.trim()).toBe("RESTORE=ok 4f2a9c1d");
    expect(ok.calls).toContain(`restic restore 4f2a9c1d --target ${path.join(dir, "restored")}`);
    expect(job("ok", "restore", "latest").calls).toContain(
      `restic restore latest --host swarmcloud --target ${path.join(dir, "restored")}`,
    );
  });

  test("run: backs up at once, then sleeps until the next round (stopped here by SIGTERM)", () => {
    const r = job("ok", "run");
    expect(r.stdout).toMatch(/^BACKUP=ok /);
    expect(r.calls.filter((c) => c.startsWith("restic backup"))).toHaveLength(1);
  });

  test("run: a failed run is tried again after RETRY_SECONDS, a good one waits the whole interval", () => {
    const failing = jobWith({ RETRY_SECONDS: "1" }, "down", "run");
    expect(failing.stdout.match(/^BACKUP=failed /gm)?.length ?? 0).toBeGreaterThanOrEqual(2);
    const good = jobWith({ RETRY_SECONDS: "1" }, "ok", "run");
    expect(good.stdout.match(/^BACKUP=/gm)).toHaveLength(1);
  });

  test("sftp: the login key copied with its last newline back, the pinned host key, ssh started by restic with both", () => {
    fs.writeFileSync(path.join(dir, "sftpkey"), "-----BEGIN KEY-----\nabc\n-----END KEY-----");
    const hostKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJKbm0Jnmq6qkN2FhmcWAdsx0tZ4ZXkWyS2vh+H6SoIv";
    const r = jobWith(
      {
        RESTIC_REPOSITORY: "sftp://backup@10.0.0.9:2222//srv/restic",
        SFTP_KEY_FILE: path.join(dir, "sftpkey"),
        SFTP_HOST_KEY: hostKey,
      },
      "ok",
      "once",
    );
    const work = path.join(dir, "tmp", "swarmcloud-backup");
    expect(r.read("tmp/swarmcloud-backup/sftp_key")).toBe("-----BEGIN KEY-----\nabc\n-----END KEY-----\n");
    expect(fs.statSync(path.join(work, "sftp_key")).mode & 0o777).toBe(0o600);
    expect(r.read("tmp/swarmcloud-backup/known_hosts")).toBe(`[10.0.0.9]:2222 ${hostKey}\n`);
    expect(r.calls[0]).toBe(
      `restic -o sftp.command=ssh -i ${work}/sftp_key -p 2222 -o UserKnownHostsFile=${work}/known_hosts ` +
        "-o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=15 -o ServerAliveInterval=15 " +
        "-l backup 10.0.0.9 -s sftp cat config",
    );
  });

  test("no secret on a command line, in the output or in the status", () => {
    const r = oneRun("missing");
    const seen = [r.stdout, r.stderr, ...r.calls, r.read("status/last-run")].join("\n");
    for (const secret of ["repo-secret-value", "db-secret-value"]) expect(seen).not.toContain(secret);
  });
});
