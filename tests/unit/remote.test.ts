/**
 * The RemoteScript provider's decisions, called directly: what re-runs a script, what replaces
 * the resource, what is kept in state (stdin as a secret output, never a hash), and how an unreachable node is reported.
 */
import { remoteScriptProvider as provider } from "../../components/remote";

const conn = { host: "127.0.0.1", port: 1, user: "root", privateKey: "KEY", dialErrorLimit: 1, perDialTimeout: 1 };
const base = { node: "n1", connection: conn, create: "echo create", delete: "echo delete" };

async function diff(olds: Record<string, unknown>, news: Record<string, unknown>) {
  // The provider keeps stdin in state (a secret output): build olds the way create would.
  const state = { ...olds, stdout: "" } as Record<string, unknown>;
  return provider.diff!("id", state, news);
}

/** The state a stack made before stdin was kept: a bare SHA-256 of it instead. */
async function legacyState(olds: Record<string, unknown>): Promise<Record<string, unknown>> {
  const { createHash } = await import("crypto");
  const { stdin, ...rest } = olds;
  return { ...rest, stdout: "before", stdinHash: createHash("sha256").update(String(stdin)).digest("hex") };
}

test("nothing changed: no changes", async () => {
  expect((await diff(base, base)).changes).toBe(false);
});

test("a changed script or environment updates in place, never replaces", async () => {
  for (const news of [
    { ...base, create: "echo other" },
    { ...base, environment: { A: "1" } },
  ]) {
    const d = await diff(base, news);
    expect(d.changes).toBe(true);
    expect(d.replaces).toEqual([]);
  }
});

test("a changed context alone runs nothing: no change, and an update for another reason keeps the old output", async () => {
  const olds = { ...base, context: { MEMBERS: "10.0.0.1" } };
  const news = { ...base, context: { MEMBERS: "10.0.0.1 10.0.0.2" } };
  expect((await diff(olds, news)).changes).toBe(false);
  // Port 1 on loopback refuses: had the update run the script, it would have thrown.
  const result = await provider.update!("id", { ...olds, stdout: "before" }, { ...news, delete: "echo other" });
  expect(result.outs).toMatchObject({ stdout: "before", context: { MEMBERS: "10.0.0.1 10.0.0.2" } });
});

test("a changed stdin re-runs the script; stdin is kept in state (a secret output), never a hash of it", async () => {
  expect((await diff({ ...base, stdin: "a" }, { ...base, stdin: "a" })).changes).toBe(false);
  expect((await diff({ ...base, stdin: "a" }, { ...base, stdin: "b" })).changes).toBe(true);
  expect((await diff({ ...base, stdin: "a" }, base)).changes).toBe(true);
  // An update for another reason keeps stdin and runs nothing (port 1 on loopback refuses).
  const result = await provider.update!(
    "id",
    { ...base, stdin: "a", stdout: "x" },
    { ...base, stdin: "a", delete: "rm" },
  );
  expect(result.outs.stdin).toBe("a");
  expect(result.outs.stdinHash).toBeUndefined();
});

test("a stack made before keeps a legacy stdin hash: the same stdin runs nothing and the next update drops the hash", async () => {
  const olds = await legacyState({ ...base, stdin: "secret" });
  const same = await provider.diff!("id", olds, { ...base, stdin: "secret" });
  expect(same.changes).toBe(true);
  expect(same.replaces).toEqual([]);
  // Had the update run the script, port 1 on loopback would have refused it.
  const result = await provider.update!("id", olds, { ...base, stdin: "secret" });
  expect(result.outs).toMatchObject({ stdout: "before", stdin: "secret" });
  expect(result.outs.stdinHash).toBeUndefined();
  // Another stdin than the hashed one is a change that runs the script.
  await expect(provider.update!("id", olds, { ...base, stdin: "other" })).rejects.toThrow(/unreachable/);
});

test("only triggers replace, deleting first", async () => {
  const d = await diff({ ...base, triggers: [1] }, { ...base, triggers: [2] });
  expect(d.replaces).toEqual(["triggers"]);
  expect(d.deleteBeforeReplace).toBe(true);
});

test("a new connection or delete script is stored without running anything", async () => {
  const olds = { ...base, stdout: "before" };
  const news = { ...base, connection: { ...conn, host: "127.0.0.2" }, delete: "echo new delete" };
  expect((await diff(base, news)).changes).toBe(true);
  // Port 1 on loopback refuses: had the update tried to run a script, it would have thrown.
  const result = await provider.update!("id", olds, news);
  expect(result.outs).toMatchObject({ stdout: "before", delete: "echo new delete" });
  expect(result.outs.connection.host).toBe("127.0.0.2");
});

test("a new read script is a change stored without running anything (as a new delete script is)", async () => {
  const withRead = { ...base, read: "echo ROLE=worker" };
  expect((await diff(base, withRead)).changes).toBe(true);
  expect((await diff(withRead, withRead)).changes).toBe(false);
  // Port 1 on loopback refuses: had the update tried to run a script, it would have thrown.
  const result = await provider.update!("id", { ...base, stdout: "before" }, withRead);
  expect(result.outs).toMatchObject({ stdout: "before", read: "echo ROLE=worker" });
});

test("state keeps a hash of stdin, never stdin itself", async () => {
  const news = { ...base, create: "echo changed", stdin: "SECRET-TOKEN" };
  await expect(provider.update!("id", { ...base, stdout: "" }, news)).rejects.toThrow(/unreachable/);
});

test("an unreachable node is named in the error", async () => {
  await expect(provider.create!({ ...base, node: "worker-9" })).rejects.toThrow(
    /node worker-9 \(root@127\.0\.0\.1:1\) is unreachable over SSH after 1 attempts/,
  );
});

test("delete of an unreachable node fails, unless told to skip it", async () => {
  await expect(provider.delete!("id", { ...base, stdout: "" })).rejects.toThrow(/unreachable/);
  await expect(
    provider.delete!("id", { ...base, stdout: "", skipDeleteWhenUnreachable: true }),
  ).resolves.toBeUndefined();
});
