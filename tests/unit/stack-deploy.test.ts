/**
 * stack-deploy.sh's wait for an update, run in bash against a stand-in `docker`: it waits while
 * a service updates, succeeds once the update has completed, and when Swarm rolled the update
 * back (or paused it) fails at once, naming the service and the error of the task that failed
 * (`docker service ps --no-trunc`'s Error column).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { script } from "../../components/remote-scripts";

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
 */
const DOCKER = [
  'echo "$*" >>"$STAND_IN_DIR/docker.log"',
  `TASKS='img:old|ghost_ghost.1 on worker-2: "task: non-zero exit (2)"'$'\\n''img:broken|ghost_ghost.2 on worker-1: "task: non-zero exit (1)"'$'\\n''img:new|ghost_ghost.2 on worker-2: '`,
  'case "$*" in',
  '  "info --format {{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}") echo "active true" ;;',
  '  "stack deploy "*) cat >/dev/null ;;',
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

function deploy(
  states: string[],
  message = "",
): { code: number | null; stdout: string; stderr: string; polls: number } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-deploy-"));
  try {
    fs.writeFileSync(path.join(dir, "docker"), `#!/usr/bin/env bash\n${DOCKER}\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, "sleep"), "#!/usr/bin/env bash\nexit 0\n", { mode: 0o755 });
    fs.writeFileSync(path.join(dir, "hostname"), "#!/usr/bin/env bash\necho manager-1\n", { mode: 0o755 });
    fs.writeFileSync(path.join(dir, "states"), `${states.join("\n")}\n`);
    fs.writeFileSync(path.join(dir, "message"), `${message}\n`);
    const r = spawnSync("bash", ["-c", script("stack-deploy"), "swarmcloud"], {
      env: {
        ...process.env,
        STACK: "ghost",
        COMPOSE: "services: {}",
        TIMEOUT: "60",
        STAND_IN_DIR: dir,
        PATH: `${dir}:${process.env.PATH}`,
      },
      input: "",
      encoding: "utf8",
    });
    const polls = Number(fs.readFileSync(path.join(dir, "polls"), "utf8"));
    return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim(), polls };
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
