/**
 * RemoteScript's awaitSeconds (components/remote.ts runAwaiting): a step that reboots its own
 * node says "not yet" (exit 75), and its node then does not answer or drops the session; the
 * script runs again after a pause until it succeeds or the time is up. Any other failure ends it
 * at once, and without awaitSeconds nothing is tried again.
 */
import { isRemoteError, notYet, runAwaiting, scriptFailedError, unreachableError } from "../../components/remote";

const target = {
  node: "worker-1",
  connection: { host: "10.0.0.1", privateKey: "KEY" },
  awaitSeconds: 60,
};
const notHere = Object.assign(new Error("node worker-1: no connection could run the script"), { failure: "notHere" });
const unreachable = unreachableError("worker-1", [target.connection], 10, new Error("ECONNREFUSED"));
const lost = scriptFailedError("worker-1", "# swarmcloud: upgrade\n", "unknown", "");
const failed = scriptFailedError("worker-1", "# swarmcloud: upgrade\n", 1, "apt-get update failed");

/** A run that fails with each of `errors` in turn, then prints "back". */
function runs(errors: Error[]) {
  const calls: unknown[] = [];
  const run = async (t: unknown) => {
    calls.push(t);
    const err = errors[calls.length - 1];
    if (err) throw err;
    return { stdout: "back", seen: { "10.0.0.1:22": "ssh-ed25519 AAAA" } };
  };
  return { calls, run: run as unknown as Parameters<typeof runAwaiting>[3] };
}

test("not yet: 75, an unreachable node, a session lost without an exit status; a script's own failure is not", () => {
  expect([notHere, unreachable, lost].map(notYet)).toEqual([true, true, true]);
  expect(notYet(failed)).toBe(false);
  expect(notYet(new Error("other"))).toBe(false);
});

test("each 'not yet' runs the script again after the pause, until it succeeds", async () => {
  const { calls, run } = runs([notHere, unreachable, lost]);
  const r = await runAwaiting(target, "script", undefined, run, 1);
  expect(r.stdout).toBe("back");
  expect(r.seen).toEqual({ "10.0.0.1:22": "ssh-ed25519 AAAA" });
  expect(calls).toHaveLength(4);
});

test("a failure of the script itself ends it at once", async () => {
  const { calls, run } = runs([notHere, failed]);
  await expect(runAwaiting(target, "script", undefined, run, 1)).rejects.toThrow("apt-get update failed");
  expect(calls).toHaveLength(2);
});

test("after awaitSeconds the last 'not yet' stands", async () => {
  const { calls, run } = runs(Array.from({ length: 100 }, () => notHere));
  const err = await runAwaiting({ ...target, awaitSeconds: 0.05 }, "script", undefined, run, 20).catch((e) => e);
  expect(isRemoteError(err, "notHere")).toBe(true);
  expect(calls.length).toBeGreaterThanOrEqual(2);
  expect(calls.length).toBeLessThan(10);
});

test("without awaitSeconds there is one run", async () => {
  const { calls, run } = runs([notHere]);
  const err = await runAwaiting({ ...target, awaitSeconds: undefined }, "script", undefined, run, 1).catch((e) => e);
  expect(isRemoteError(err, "notHere")).toBe(true);
  expect(calls).toHaveLength(1);
});
