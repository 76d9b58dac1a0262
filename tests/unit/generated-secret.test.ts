/**
 * GeneratedSecret's provider, called directly: a fresh random hex value of the asked length on
 * each create, never changed by an update, replaced only by a new byte count; and the resource
 * keeps the value a secret output.
 */
import { generatedSecretProvider as provider } from "../../components/generated-secret";

test("create draws 32 random bytes as 64 hex characters by default, a new value each time", async () => {
  const a = await provider.create!({});
  const b = await provider.create!({});
  expect(a.outs.value).toMatch(/^[0-9a-f]{64}$/);
  expect(b.outs.value).not.toBe(a.outs.value);
  expect(a.id).not.toBe(b.id);
  expect((await provider.create!({ bytes: 16 })).outs.value).toMatch(/^[0-9a-f]{32}$/);
});

test("too few or too many bytes are refused, naming the count", async () => {
  await expect(provider.create!({ bytes: 8 })).rejects.toThrow(
    "GeneratedSecret: bytes 8: a whole number from 16 to 64",
  );
  await expect(provider.create!({ bytes: 65 })).rejects.toThrow(/bytes 65/);
});

test("the same byte count is no change; another replaces it; a refresh keeps it", async () => {
  const olds = { bytes: 32, value: "v" };
  expect(await provider.diff!("id", olds, { bytes: 32 })).toMatchObject({ changes: false, replaces: [] });
  expect(await provider.diff!("id", olds, {})).toMatchObject({ changes: false });
  expect(await provider.diff!("id", olds, { bytes: 48 })).toMatchObject({ changes: true, replaces: ["bytes"] });
  expect(await provider.read!("id", olds)).toEqual({ id: "id", props: olds });
});
