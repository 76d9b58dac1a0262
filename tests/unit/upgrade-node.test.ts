/**
 * upgrade-node.sh in bash against stand-in `gluster` and `docker` commands that keep the heal
 * backlog in a file and log every call: a node that joined in this update records the run and
 * waits for nothing; a brick node waits for the heal before its upgrade and asks the self-heal
 * daemon to heal meanwhile (it would otherwise crawl only every cluster.heal-timeout, 600 s).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { script } from "../../components/remote-scripts";

const GLUSTER = `
f="$STAND_IN_DIR"
case "$*" in
  "--mode=script volume info swarmcloud") printf 'Brick1: 10.0.0.11:/b\\nBrick2: 10.0.0.12:/b\\nBrick3: 10.0.0.13:/b\\n' ;;
  "--mode=script volume status swarmcloud detail") printf 'Online               : Y\\n%.0s' 1 2 3 ;;
  "--mode=script volume heal swarmcloud") ;;
  "--mode=script pool list") ;;
  "--mode=script volume heal swarmcloud info")
    n=$(head -n 1 "$f/pending"); [ -n "$n" ] || n=0
    [ "$(wc -l <"$f/pending")" -gt 1 ] && sed -i 1d "$f/pending"
    for b in 10.0.0.11 10.0.0.12 10.0.0.13; do printf 'Brick %s:/b\\nStatus: Connected\\nNumber of entries: %s\\n\\n' "$b" "$n"; done ;;
  *) echo "unexpected: gluster $*" >&2; exit 1 ;;
esac`;

const DOCKER = `
case "$*" in
  "info --format {{.Swarm.LocalNodeState}}") echo active ;;
  *) echo "unexpected: docker $*" >&2; exit 1 ;;
esac`;

/** Runs upgrade-node.sh on a brick node with one heal-info count per sample. */
function upgradeNode(pending: number[], env: Record<string, string>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-upgrade-node-"));
  try {
    fs.writeFileSync(path.join(dir, "pending"), pending.join("\n") + "\n");
    fs.writeFileSync(path.join(dir, "calls.log"), "");
    for (const [cmd, body] of Object.entries({ gluster: GLUSTER, docker: DOCKER })) {
      const log = `printf '%s\\n' "${cmd} $*" >>"$STAND_IN_DIR/calls.log"`;
      fs.writeFileSync(path.join(dir, cmd), `#!/usr/bin/env bash\n${log}\n${body}\n`, { mode: 0o755 });
    }
    const r = spawnSync("bash", ["-c", script("upgrade-node")], {
      env: {
        ...process.env,
        NODE_NAME: "manager-1",
        RUN: "2026-12",
        PACKAGES: "false",
        REBOOT: "never",
        VOLUME: "swarmcloud",
        // Not in /etc/fstab: the mount is not waited for.
        MOUNT_PATH: path.join(dir, "mnt"),
        BRICK: "true",
        STATE_DIR: path.join(dir, "state"),
        STAND_IN_DIR: dir,
        PATH: `${dir}:${process.env.PATH}`,
        ...env,
      },
      encoding: "utf8",
      timeout: 60_000,
    });
    const calls = fs.readFileSync(path.join(dir, "calls.log"), "utf8").trim().split("\n").filter(Boolean);
    const state = fs.readFileSync(path.join(dir, "state", "upgrade-run"), "utf8").trim();
    return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr, calls, state };
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}

test("a node that joined in this update records the run and waits for nothing, whatever the heal", () => {
  const r = upgradeNode([3], { FRESH: "true" });
  expect([r.code, r.stdout]).toEqual([0, "rebooted=no packages=skipped"]);
  expect(r.stderr).toContain("manager-1 joined in this update: no upgrade");
  expect(r.calls).toEqual([]);
  expect(r.state).toMatch(/^[0-9a-f]{16} done$/);
});

test("a brick node waits for the heal before its upgrade, asking the self-heal daemon to heal meanwhile", () => {
  // Two samples with entries pending, then none (before the upgrade), then none (after it).
  const r = upgradeNode([2, 1, 0], {});
  expect(r.stderr).not.toContain("unexpected");
  expect([r.code, r.stdout]).toEqual([0, "rebooted=no packages=skipped"]);
  const samples = r.calls.flatMap((c, i) => (c === "gluster --mode=script volume heal swarmcloud info" ? [i] : []));
  expect(samples.length).toBeGreaterThanOrEqual(3);
  // Asked to heal after the first sample that saw entries pending, before the one that saw none.
  const prod = r.calls.indexOf("gluster --mode=script volume heal swarmcloud");
  expect(prod).toBeGreaterThan(samples[0]!);
  expect(prod).toBeLessThan(samples[2]!);
  expect(r.state).toMatch(/^[0-9a-f]{16} done$/);
}, 60_000);
