/**
 * VagrantCommand's provider (components/nodes/vagrant-command.ts), run for real: /bin/sh runs
 * the scripts on this machine; what they did is read back from files they write.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { runLocal, vagrantCommandProvider as provider } from "../../components/nodes/vagrant-command";

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-vagrant-command-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const inputs = (create: string, extra: Record<string, unknown> = {}) => ({
  create,
  environment: { OUT: path.join(dir, "out") },
  ...extra,
});
const out = () => fs.readFileSync(path.join(dir, "out"), "utf8");

describe("runLocal", () => {
  it("runs the script under /bin/sh with its environment over the engine's and stdin, and returns stdout", async () => {
    const stdout = await runLocal(
      "t",
      'read -r line; printf "%s %s %s\\n" "$A" "$line" "${PATH:+path}"',
      { A: "a" },
      "in\n",
    );
    expect(stdout).toBe("a in path\n");
  });

  it("fails with the exit code and the tail of stderr (stdout when stderr is empty)", async () => {
    await expect(runLocal("vagrant up", "echo partial; echo 'no box' >&2; exit 3")).rejects.toThrow(
      "vagrant up failed (exit 3):\nno box",
    );
    await expect(runLocal("x", "seq 1 50; exit 1")).rejects.toThrow(/failed \(exit 1\):\n21\n22\n[^]*\n50$/);
  });

  it("returns when the shell exits, though a process it left behind holds the pipes (vagrant's ssh tunnels)", async () => {
    const t0 = Date.now();
    const stdout = await runLocal("t", "sleep 30 & echo done");
    expect(stdout).toBe("done\n");
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 20_000);

  it("stops a script that runs past its timeout, with what it started", async () => {
    const pidFile = path.join(dir, "pid");
    await expect(runLocal("slow", `sleep 60 & echo $! > '${pidFile}'; wait`, {}, undefined, 1)).rejects.toThrow(
      "slow failed (timed out after 1 s)",
    );
    const pid = Number(fs.readFileSync(pidFile, "utf8"));
    await new Promise((r) => setTimeout(r, 300));
    // Gone, or a zombie waiting for whoever adopted it.
    const state = fs.existsSync(`/proc/${pid}/stat`)
      ? fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(" ")[2]
      : "gone";
    expect(["gone", "Z"]).toContain(state);
  }, 20_000);
});

describe("the provider", () => {
  it("create runs the script and keeps its stdout; delete runs the delete script", async () => {
    const created = await provider.create!(
      inputs('echo created > "$OUT"; echo hello', { delete: 'echo deleted > "$OUT"', stdin: "x" }),
    );
    expect(out()).toBe("created\n");
    expect(created.outs).toMatchObject({ stdout: "hello\n", stdin: "x", delete: 'echo deleted > "$OUT"' });
    await provider.delete!(created.id, created.outs);
    expect(out()).toBe("deleted\n");
  });

  it("a failed create fails the resource", async () => {
    await expect(provider.create!(inputs("echo nope >&2; exit 1"))).rejects.toThrow("create failed (exit 1):\nnope");
  });

  it("diff: triggers replace (delete first); create, stdin or environment change in place; nothing else is a change", async () => {
    const olds = { ...inputs("a", { stdin: "s", triggers: ["t"] }), stdout: "o" };
    expect(await provider.diff!("id", olds, inputs("a", { stdin: "s", triggers: ["t"] }))).toEqual({
      changes: false,
      replaces: [],
      deleteBeforeReplace: true,
    });
    expect(await provider.diff!("id", olds, inputs("a", { stdin: "s", triggers: ["u"] }))).toMatchObject({
      changes: true,
      replaces: ["triggers"],
      deleteBeforeReplace: true,
    });
    for (const changed of [
      inputs("b", { stdin: "s", triggers: ["t"] }),
      inputs("a", { stdin: "z", triggers: ["t"] }),
    ]) {
      expect(await provider.diff!("id", olds, changed)).toMatchObject({ changes: true, replaces: [] });
    }
  });

  it("update runs the create script again when it, stdin or the environment changed, and only then", async () => {
    const olds = { ...inputs('echo one > "$OUT"; echo first'), stdout: "first\n" };
    const same = await provider.update!("id", olds, { ...inputs('echo one > "$OUT"; echo first'), delete: "true" });
    expect(fs.existsSync(path.join(dir, "out"))).toBe(false);
    expect(same.outs).toMatchObject({ stdout: "first\n", delete: "true" });
    const rerun = await provider.update!("id", olds, inputs('echo two > "$OUT"; echo second'));
    expect(out()).toBe("two\n");
    expect(rerun.outs).toMatchObject({ stdout: "second\n" });
  });

  it("delete without a delete script runs nothing", async () => {
    await provider.delete!("id", { ...inputs('echo x > "$OUT"'), stdout: "" });
    expect(fs.existsSync(path.join(dir, "out"))).toBe(false);
  });
});
