/**
 * The whole program (`main`) with node upgrades on (swarmcloud:upgrade), under Pulumi mocks, for
 * the local stack file: the walk after every node's membership and mount, managers first, each
 * node's first step after the last step of the node before; on the stack's first update every
 * node is new (recorded, not walked), later only the nodes the last node list did not have.
 */
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { main, ProgramInputs } from "../../components/program";
import { clusterStepState, clearRecorded, recorded, settled, setupMocks } from "./mocks";

setupMocks({ state: (args) => clusterStepState(args) });

const REPO = path.join(__dirname, "..", "..");
const REMOTE_SCRIPT = "pulumi-nodejs:dynamic/swarmcloud:RemoteScript";
const UPGRADE = { "swarmcloud:upgrade": JSON.stringify({ run: "2026-12", reboot: "always" }) };

function inputs(previousNodes?: string[]): ProgramInputs {
  const doc = yaml.load(fs.readFileSync(path.join(REPO, "Pulumi.local.yaml"), "utf8")) as {
    config: Record<string, unknown>;
  };
  const config = Object.fromEntries(
    Object.entries(doc.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
  return {
    stack: "local",
    config: { ...config, ...UPGRADE },
    isSecret: () => false,
    repoDir: REPO,
    previousOutput: async (name) =>
      name === "nodeList" && previousNodes ? previousNodes.map((n) => ({ name: n, role: "manager" })) : undefined,
  };
}

const walk = () => recorded.filter((r) => r.type === REMOTE_SCRIPT && r.name.startsWith("local-upgrade-"));

beforeEach(async () => {
  await settled();
  clearRecorded();
});

test("the walk: managers first, chained, after every node's membership and mount; a first update records every node as new", async () => {
  await main(inputs());
  await settled();
  const steps = walk();
  expect(steps.map((s) => s.name)).toEqual(
    ["manager-1", "manager-2", "manager-3", "worker-1", "worker-2"].flatMap((n) =>
      ["drain", "upgrade", "return"].map((s) => `local-upgrade-${n}-${s}`),
    ),
  );
  const first = steps[0]!;
  const members = recorded.filter((r) => r.name.endsWith("-member")).map((r) => r.urn);
  const mounts = recorded.filter((r) => r.name.endsWith("-mount")).map((r) => r.urn);
  expect(members).toHaveLength(5);
  expect(mounts).toHaveLength(5);
  expect(first.dependencies).toEqual(expect.arrayContaining([...members, ...mounts]));
  for (let i = 1; i < steps.length; i++) expect(steps[i]!.dependencies).toContain(steps[i - 1]!.urn);
  expect(steps.every((s) => s.inputs.context.FRESH === "true")).toBe(true);
  expect(steps.find((s) => s.name.endsWith("-upgrade"))!.inputs.context.REBOOT).toBe("always");
});

test("later updates: the nodes of the last node list are walked, a new one is recorded only", async () => {
  await main(inputs(["manager-1", "manager-2", "manager-3", "worker-1"]));
  await settled();
  const fresh = walk().filter((s) => s.inputs.context.FRESH === "true");
  expect(fresh.map((s) => s.name)).toEqual([
    "local-upgrade-worker-2-drain",
    "local-upgrade-worker-2-upgrade",
    "local-upgrade-worker-2-return",
  ]);
});

test("without upgrade.run nothing of it is made", async () => {
  const none = inputs();
  delete none.config["swarmcloud:upgrade"];
  await main(none);
  await settled();
  expect(walk()).toEqual([]);
  expect(recorded.filter((r) => r.type === "swarmcloud:upgrade:NodeUpgrades")).toEqual([]);
});
