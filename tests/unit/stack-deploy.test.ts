/**
 * stack-deploy.sh run in bash against a stand-in `docker`:
 *
 * - its wait for an update: it waits while a service updates, succeeds once the update has
 *   completed, and when Swarm rolled the update back (or paused it) fails at once, naming the
 *   service and the error of the task that failed (`docker service ps --no-trunc`'s Error column);
 * - PIN_IMAGES: the compose text `docker stack deploy` reads on its stdin keeps the digest a
 *   service of the stack runs for an image given without one, and nothing else changes.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DEFAULTS } from "../../components/config";
import { script } from "../../components/remote-scripts";
import { renderCompose, withoutPorts } from "../../stacks/compose";
import { ghostCompose } from "../../stacks/ghost";

/** A Swarm task ID as `docker service ps --no-trunc` prints it: 25 lowercase letters and digits. */
const TASK = "k2m9q4w1e8r5t3y6u0i2o4p7z";
const NS = "label=com.docker.stack.namespace=ghost";

/**
 * A manager with one service, ghost_ghost (id1, 2/2 running). Each poll of its update state
 * takes the next line of the file `states` (the last one repeats); its message is Swarm's: the
 * file `message` until the rollback has completed, "rollback completed" after. Its spec's image
 * is img:paused, the spec a rollback left behind img:broken. Its tasks, newest first, their
 * errors quoted as the Docker CLI prints them: an older task of img:old that exited 2, then the
 * failed task TASK of img:broken, then one without an error. `sleep` returns at once.
 * The images the stack's services run: one "<id> <service> <image>" line each in the file
 * `running` (none without it). `docker stack deploy` keeps its stdin in the file `deployed`; the
 * config ghost-opened exists when the file `opened` does.
 */
const DOCKER = [
  'echo "$*" >>"$STAND_IN_DIR/docker.log"',
  `TASKS='img:old|ghost_ghost.1 on worker-2: "task: non-zero exit (2)"'$'\\n''img:broken|ghost_ghost.2 on worker-1: "task: non-zero exit (1)"'$'\\n''img:new|ghost_ghost.2 on worker-2: '`,
  'case "$*" in',
  '  "info --format {{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}") echo "active true" ;;',
  '  "stack deploy "*) cat >"$STAND_IN_DIR/deployed" ;;',
  `  "service ls -q --filter ${NS}") cut -d" " -f1 "$STAND_IN_DIR/running" 2>/dev/null || true ;;`,
  '  "service inspect --format {{.Spec.Name}} {{.Spec.TaskTemplate.ContainerSpec.Image}} "*)',
  '    shift 4; for id in "$@"; do grep "^$id " "$STAND_IN_DIR/running" | cut -d" " -f2-; done ;;',
  '  "config inspect ghost-opened") [ -e "$STAND_IN_DIR/opened" ] || { echo "Error: No such config" >&2; exit 1; } ;;',
  `  "service ls --filter ${NS} --format {{.ID}} {{.Name}} {{.Replicas}}") echo "id1 ghost_ghost 2/2" ;;`,
  '  "service inspect --format {{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}} id1")',
  '    n=$(($(cat "$STAND_IN_DIR/polls" 2>/dev/null || echo 0) + 1)); echo "$n" >"$STAND_IN_DIR/polls"',
  '    line=$(sed -n "${n}p" "$STAND_IN_DIR/states"); [ -n "$line" ] || line=$(tail -n 1 "$STAND_IN_DIR/states")',
  '    echo "$line" >"$STAND_IN_DIR/state"; [ "$line" = none ] || echo "$line" ;;',
  '  "service inspect --format {{.UpdateStatus.Message}} id1")',
  '    if [ "$(cat "$STAND_IN_DIR/state")" = rollback_completed ]; then echo "rollback completed"; else cat "$STAND_IN_DIR/message"; fi ;;',
  '  "service inspect --format {{.PreviousSpec.TaskTemplate.ContainerSpec.Image}} ghost_ghost") echo img:broken ;;',
  '  "service inspect --format {{.Spec.TaskTemplate.ContainerSpec.Image}} ghost_ghost") echo img:paused ;;',
  `  "service ps --no-trunc --filter id=${TASK} --format {{.Image}}|{{.Name}} on {{.Node}}: {{.Error}} ghost_ghost")`,
  '    printf "%s\\n" "$TASKS" | sed -n 2p ;;',
  '  "service ps --no-trunc --filter id="*) ;;',
  '  "service ps --no-trunc --format {{.Image}}|{{.Name}} on {{.Node}}: {{.Error}} ghost_ghost") printf "%s\\n" "$TASKS" ;;',
  '  "service ps --no-trunc --format "*) echo "  ghost_ghost.2 worker-1 Failed task: non-zero exit (1)" ;;',
  `  "service ls --filter ${NS} --format {{.Name}}") echo ghost_ghost ;;`,
  '  "secret ls "*) ;;',
  `  "service ls --filter ${NS} --format {{.Name}} {{.Mode}} {{.Replicas}}") echo "ghost_ghost replicated 2/2" ;;`,
  '  *) echo "unexpected: docker $*" >&2; exit 1 ;;',
  "esac",
].join("\n");

/** What a deploy is given besides the update states: its environment, the services running, the stack opened. */
interface DeployOptions {
  env?: Record<string, string>;
  /** "<id> <service> <image>" of each service of the stack now. */
  running?: string[];
  opened?: boolean;
}

function deploy(
  states: string[],
  message = "",
  opts: DeployOptions = {},
): { code: number | null; stdout: string; stderr: string; polls: number; deployed: string; calls: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-deploy-"));
  try {
    fs.writeFileSync(path.join(dir, "docker"), `#!/usr/bin/env bash\n${DOCKER}\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, "sleep"), "#!/usr/bin/env bash\nexit 0\n", { mode: 0o755 });
    fs.writeFileSync(path.join(dir, "hostname"), "#!/usr/bin/env bash\necho manager-1\n", { mode: 0o755 });
    fs.writeFileSync(path.join(dir, "states"), `${states.join("\n")}\n`);
    fs.writeFileSync(path.join(dir, "message"), `${message}\n`);
    if (opts.running !== undefined) fs.writeFileSync(path.join(dir, "running"), `${opts.running.join("\n")}\n`);
    if (opts.opened) fs.writeFileSync(path.join(dir, "opened"), "opened\n");
    const r = spawnSync("bash", ["-c", script("stack-deploy"), "swarmcloud"], {
      env: {
        ...process.env,
        STACK: "ghost",
        COMPOSE: "services: {}",
        TIMEOUT: "60",
        ...opts.env,
        STAND_IN_DIR: dir,
        PATH: `${dir}:${process.env.PATH}`,
      },
      input: "",
      encoding: "utf8",
    });
    const read = (name: string) =>
      fs.existsSync(path.join(dir, name)) ? fs.readFileSync(path.join(dir, name), "utf8") : "";
    return {
      code: r.status,
      stdout: r.stdout.trim(),
      stderr: r.stderr.trim(),
      polls: Number(read("polls")),
      deployed: read("deployed"),
      calls: read("docker.log").trim().split("\n"),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("stack-deploy.sh: the wait for each service's update", () => {
  test("no update started (an unchanged service): converged after two clean polls", () => {
    const r = deploy(["none"]);
    expect(r).toMatchObject({ code: 0, stdout: "ghost_ghost replicated 2/2", polls: 2 });
  });

  test("waits while the update runs, succeeds once it has completed", () => {
    const r = deploy(["updating", "updating", "updating", "completed"]);
    expect(r.code).toBe(0);
    // Three polls updating, then two clean ones.
    expect(r.polls).toBe(5);
    expect(r.stdout).toBe("ghost_ghost replicated 2/2");
  });

  test("a rollback in progress is waited for; once Swarm rolled back, it fails naming the service and the task its rollback named", () => {
    const message = `update rolled back due to failure or early termination of task ${TASK}`;
    const r = deploy(["updating", "rollback_started", "rollback_started", "rollback_completed"], message);
    expect(r.code).toBe(1);
    expect(r.polls).toBe(4);
    expect(r.stderr.split("\n").slice(-2)).toEqual([
      "service ghost_ghost: the update failed and Swarm rolled it back (the previous spec runs): rollback completed",
      "  failed task ghost_ghost.2 on worker-1: task: non-zero exit (1)",
    ]);
    expect(r.stderr).toContain("stack ghost did not converge:");
  });

  test("rolled back before a poll saw it roll back: the newest failed task of the image that failed, not an older failure", () => {
    const r = deploy(["updating", "rollback_completed"], "update in progress");
    expect(r.code).toBe(1);
    expect(r.stderr.split("\n").slice(-1)).toEqual([
      "  failed task ghost_ghost.2 on worker-1: task: non-zero exit (1)",
    ]);
  });

  test("a paused update whose image has no failed task: the newest task with an error is named", () => {
    const r = deploy(["paused"], "update paused due to failure or early termination of a task");
    expect(r.code).toBe(1);
    expect(r.stderr.split("\n").slice(-2)).toEqual([
      "service ghost_ghost: the update stopped (paused): update paused due to failure or early termination of a task",
      "  failed task ghost_ghost.1 on worker-2: task: non-zero exit (2)",
    ]);
  });
});

/** Two digests as Docker writes them: sha256 and 64 hex digits. */
const DIGEST = `sha256:${"0123456789abcdef".repeat(4)}`;
const OTHER = `sha256:${"fedcba9876543210".repeat(4)}`;

/** Ghost's compose text as the program renders it (stacks/ghost.ts), with Ghost's image `image`. */
function ghostText(image: string, closed = false): string {
  const file = ghostCompose(
    { ...DEFAULTS.ghost, image },
    {
      contentPath: "/mnt/swarmcloud/ghost/content",
      dbPath: "/mnt/swarmcloud/ghost/mysql",
      url: "http://10.0.0.11:2368",
      encryptOverlay: false,
      secretNames: { dbPassword: "ghost-db-password-0123456789", dbRootPassword: "ghost-db-root-password-abcdefabcd" },
    },
  );
  return renderCompose(closed ? withoutPorts(file) : file);
}

/** `text` with the service line `    image: "<from>"` made `    image: "<to>"` (the line must be there). */
function withImage(text: string, from: string, to: string): string {
  const line = `    image: "${from}"\n`;
  expect(text).toContain(line);
  return text.replace(line, `    image: "${to}"\n`);
}

/** The services Ghost's stack runs after a first deploy that resolved Ghost's image (the database's was not). */
const GHOST_RUNS = [`id1 ghost_ghost ghost:5@${DIGEST}`, "id2 ghost_db mysql:8.4"];

describe("stack-deploy.sh: PIN_IMAGES keeps the digest each service runs", () => {
  test("a redeploy of ghost:5, which ghost_ghost runs at a digest: deployed at that digest, the rest of the text as it was", () => {
    const compose = ghostText("ghost:5");
    const r = deploy(["none"], "", { env: { COMPOSE: compose, PIN_IMAGES: "1" }, running: GHOST_RUNS });
    expect(r.code).toBe(0);
    expect(r.deployed).toBe(withImage(compose, "ghost:5", `ghost:5@${DIGEST}`));
    // The database's image, which its service runs without a digest, is left to the deploy.
    expect(r.deployed).toContain('    image: "mysql:8.4"\n');
    expect(r.stderr.split("\n")).toContain(
      `ghost_ghost: kept ghost:5 at ${DIGEST} (pinned when first deployed; change the tag, give a digest, or set swarm.pinImages false to move)`,
    );
    expect(r.stderr).not.toContain("kept mysql");
  });

  test("PIN_IMAGES unset is on (the config's default)", () => {
    const compose = ghostText("ghost:5");
    const r = deploy(["none"], "", { env: { COMPOSE: compose }, running: GHOST_RUNS });
    expect(r.code).toBe(0);
    expect(r.deployed).toBe(withImage(compose, "ghost:5", `ghost:5@${DIGEST}`));
  });

  test("a stack not set up yet: the closed text is the one pinned and deployed; once opened, the full one", () => {
    const compose = ghostText("ghost:5");
    const closed = ghostText("ghost:5", true);
    expect(closed).not.toBe(compose);
    const env = { COMPOSE: compose, CLOSED_COMPOSE: closed, PIN_IMAGES: "1" };
    const first = deploy(["none"], "", { env, running: GHOST_RUNS });
    expect(first.code).toBe(0);
    expect(first.deployed).toBe(withImage(closed, "ghost:5", `ghost:5@${DIGEST}`));
    const opened = deploy(["none"], "", { env, running: GHOST_RUNS, opened: true });
    expect(opened.deployed).toBe(withImage(compose, "ghost:5", `ghost:5@${DIGEST}`));
  });

  test("a changed tag (ghost:6 where ghost:5 runs): left as given, resolved by the deploy", () => {
    const compose = ghostText("ghost:6");
    const r = deploy(["none"], "", { env: { COMPOSE: compose, PIN_IMAGES: "1" }, running: GHOST_RUNS });
    expect(r.code).toBe(0);
    expect(r.deployed.trimEnd()).toBe(compose.trimEnd());
    expect(r.stderr).not.toContain("kept");
  });

  test("an image given with its own digest: left exactly as given, whatever runs", () => {
    for (const runs of [GHOST_RUNS, [`id1 ghost_ghost ghost:5@${OTHER}`]]) {
      const compose = ghostText(`ghost:5@${OTHER}`);
      expect(compose).toContain(`    image: "ghost:5@${OTHER}"\n`);
      const r = deploy(["none"], "", { env: { COMPOSE: compose, PIN_IMAGES: "1" }, running: runs });
      expect(r.code).toBe(0);
      expect(r.deployed.trimEnd()).toBe(compose.trimEnd());
      expect(r.stderr).not.toContain("kept");
    }
  });

  test("a new stack (no service runs yet): left as given", () => {
    const compose = ghostText("ghost:5");
    const r = deploy(["none"], "", { env: { COMPOSE: compose, PIN_IMAGES: "1" } });
    expect(r.code).toBe(0);
    expect(r.deployed.trimEnd()).toBe(compose.trimEnd());
  });

  test("PIN_IMAGES=0: the text as given, and the services' images are not asked for", () => {
    const compose = ghostText("ghost:5");
    const r = deploy(["none"], "", { env: { COMPOSE: compose, PIN_IMAGES: "0" }, running: GHOST_RUNS });
    expect(r.code).toBe(0);
    expect(r.deployed.trimEnd()).toBe(compose.trimEnd());
    expect(r.calls.filter((c) => c.startsWith("service ls -q") || c.includes("ContainerSpec.Image"))).toEqual([]);
  });

  test("a service's own digest first; a new service of the stack takes the digest another runs the same image at", () => {
    const compose = [
      "services:",
      "  web:",
      '    image: "nginx:1"',
      "  admin:",
      '    image: "nginx:1"',
      "  worker:",
      '    image: "nginx:1"',
      "",
    ].join("\n");
    const r = deploy(["none"], "", {
      env: { COMPOSE: compose, PIN_IMAGES: "1" },
      running: [`id1 ghost_admin nginx:1@${OTHER}`, `id2 ghost_web nginx:1@${DIGEST}`],
    });
    expect(r.code).toBe(0);
    expect(r.deployed).toBe(
      [
        "services:",
        "  web:",
        `    image: "nginx:1@${DIGEST}"`,
        "  admin:",
        `    image: "nginx:1@${OTHER}"`,
        "  worker:",
        // Not running yet: the first service (by name) that runs nginx:1 pinned.
        `    image: "nginx:1@${OTHER}"`,
        "",
      ].join("\n"),
    );
  });

  test("Docker Hub's long name matches the short one Docker writes in the spec", () => {
    const compose = ghostText("docker.io/library/ghost:5");
    const r = deploy(["none"], "", { env: { COMPOSE: compose, PIN_IMAGES: "1" }, running: GHOST_RUNS });
    expect(r.deployed).toBe(withImage(compose, "docker.io/library/ghost:5", `docker.io/library/ghost:5@${DIGEST}`));
  });

  test("an image: key elsewhere than a service's own (an environment variable named image) is not touched", () => {
    const compose = [
      "services:",
      "  web:",
      '    image: "nginx:1"',
      "    environment:",
      '      image: "nginx:1"',
      "x-note:",
      '    image: "nginx:1"',
      "",
    ].join("\n");
    const r = deploy(["none"], "", {
      env: { COMPOSE: compose, PIN_IMAGES: "1" },
      running: [`id1 ghost_web nginx:1@${DIGEST}`],
    });
    expect(r.deployed).toBe(compose.replace('    image: "nginx:1"', `    image: "nginx:1@${DIGEST}"`));
  });

  test("PIN_IMAGES other than 1 or 0 is refused before anything is deployed", () => {
    const r = deploy(["none"], "", { env: { PIN_IMAGES: "yes" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("PIN_IMAGES must be 1 or 0, not yes");
    expect(r.deployed).toBe("");
  });
});
