/**
 * Node upgrades (swarmcloud:upgrade): the config (on only with a run; refused where a node down
 * would lose the swarm's or the volume's quorum, or leave no room for a drained Ghost task), the
 * walk's order and its preview line, and NodeUpgrades under Pulumi mocks: per node, in walk order,
 * its steps chained one after the other (the edge holders' address given away first), each with
 * only RUN in its environment (the rest is context: no re-run), the upgrade step awaiting the
 * node's reboot.
 */
import * as pulumi from "@pulumi/pulumi";
import { DEFAULTS, parseConfig, UpgradeSettings } from "../../components/config";
import { sshClusterNodes } from "../../components/nodes/ssh";
import { script } from "../../components/remote-scripts";
import { NodeUpgrades, walkMessage, walkOrder } from "../../components/upgrade";
import { clearRecorded, recorded, settled, setupMocks } from "./mocks";

setupMocks();

/** What the walk waits for (a custom resource: a component without children is no dependency). */
class Ready extends pulumi.CustomResource {
  constructor(name: string) {
    super("test:index:Ready", name, {});
  }
}

const REMOTE_SCRIPT = "pulumi-nodejs:dynamic/swarmcloud:RemoteScript";
const ON: UpgradeSettings = { ...DEFAULTS.upgrade, run: "2026-12" };

function specs(managers: number, workers: number, labelled: string[] = []) {
  return [
    ...Array.from({ length: managers }, (_, i) => ({ name: `manager-${i + 1}`, role: "manager" as const })),
    ...Array.from({ length: workers }, (_, i) => ({ name: `worker-${i + 1}`, role: "worker" as const })),
  ].map((n, i) => ({
    ...n,
    address: `10.0.0.${i + 11}`,
    labels: (labelled.includes(n.name) ? { edge: "true" } : {}) as Record<string, string>,
    availability: "active" as const,
  }));
}

function parse(nodes: ReturnType<typeof specs>, upgrade: Record<string, unknown>, more: Record<string, unknown> = {}) {
  return parseConfig(
    { environment: "ssh", nodes, swarm: { encryptOverlay: false }, upgrade, ...more },
    { sshPrivateKey: true },
  );
}

beforeEach(async () => {
  await settled();
  clearRecorded();
});

describe("swarmcloud:upgrade", () => {
  test("off without a run: no upgrade in the config; with one, the defaults fill the rest", () => {
    expect(parse(specs(3, 0), {}).config.upgrade).toBeUndefined();
    const r = parse(specs(3, 0), { run: "2026-12" });
    expect(r.errors).toEqual([]);
    expect(r.config.upgrade).toEqual({ run: "2026-12", packages: true, reboot: "if-needed", returnSeconds: 900 });
  });

  test("a reboot policy other than if-needed, always or never is refused, naming the key", () => {
    const r = parse(specs(3, 0), { run: "x", reboot: "sometimes" });
    expect(r.errors.join("\n")).toContain('swarmcloud:upgrade.reboot = "sometimes"');
  });

  test("fewer than 3 managers, or fewer than 3 bricks, are refused: one node down would lose a quorum", () => {
    const few = parse(specs(1, 2), { run: "x" }, { gluster: { replica: 3 } });
    expect(few.errors.join("\n")).toContain(
      'swarmcloud:upgrade.run = "x": a node upgrade takes each manager down in turn, and a swarm of 1 manager(s) loses its quorum',
    );
    const bricks = parse(specs(3, 0), { run: "x" }, { gluster: { replica: 1 } });
    expect(bricks.errors.join("\n")).toContain("a volume of 1 brick(s) keeps its quorum");
  });

  test("Ghost in host mode with a replica on every active node is refused: a drained task has nowhere to go", () => {
    const r = parse(
      specs(3, 0),
      { run: "x" },
      { ghost: { replicas: 3, publishMode: "host", updateOrder: "stop-first" } },
    );
    expect(r.errors.join("\n")).toContain("lower ghost.replicas to 2 or add a node");
  });
});

describe("the walk", () => {
  test("managers first, then workers, each in config order", () => {
    const nodes = [
      { name: "w1", role: "worker" as const },
      { name: "m1", role: "manager" as const },
      { name: "w2", role: "worker" as const },
      { name: "m2", role: "manager" as const },
    ];
    expect(walkOrder(nodes).map((n) => n.name)).toEqual(["m1", "m2", "w1", "w2"]);
  });

  test("preview's line names the run, the order and what each node goes through", () => {
    expect(walkMessage({ ...ON, reboot: "always" }, [{ name: "m1" }, { name: "w1" }])).toBe(
      'swarmcloud: node upgrade run "2026-12": when it changes, pulumi up walks one node at a time, in this order: ' +
        "m1 -> w1 (each: drain, packages upgraded, reboot always, its return waited for, availability back); " +
        "a failure stops the walk at that node",
    );
  });
});

describe("NodeUpgrades", () => {
  const nodes = sshClusterNodes({ nodes: specs(3, 2, ["worker-1", "worker-2"]), privateKey: "KEY" });
  const door = { address: "10.0.0.240", holders: nodes.filter((n) => n.role === "worker") };

  function build(name: string, known?: string[]) {
    const after = new Ready(`${name}-ready`);
    new NodeUpgrades(name, {
      nodes,
      settings: ON,
      bricks: ["manager-1", "manager-2", "manager-3"],
      gluster: { volume: "vol", mountPath: "/mnt/x" },
      frontDoor: door,
      known,
      after: [after],
    });
    return after;
  }

  test("per node in walk order: (release,) drain, upgrade, return, each depending on the step before", async () => {
    const after = build(
      "up",
      nodes.map((n) => n.name),
    );
    await settled();
    const component = recorded.find((r) => r.type === "swarmcloud:upgrade:NodeUpgrades")!;
    const steps = recorded.filter((r) => r.type === REMOTE_SCRIPT);
    expect(steps.map((s) => s.name)).toEqual([
      ...["manager-1", "manager-2", "manager-3"].flatMap((n) =>
        ["drain", "upgrade", "return"].map((s) => `up-${n}-${s}`),
      ),
      ...["worker-1", "worker-2"].flatMap((n) => ["release", "drain", "upgrade", "return"].map((s) => `up-${n}-${s}`)),
    ]);
    const afterUrn = recorded.find((r) => r.name === "up-ready")!.urn;
    expect(after).toBeDefined();
    steps.forEach((s, i) => {
      expect(s.parent).toBe(component.urn);
      expect(s.dependencies).toEqual([i === 0 ? afterUrn : steps[i - 1]!.urn]);
      // Only the run re-runs a step (NODE_NAME is the step's node).
      expect(Object.keys(s.inputs.environment).sort()).toEqual(["NODE_NAME", "RUN"]);
      expect(s.inputs.environment.RUN).toBe("2026-12");
    });
  });

  test("what each step runs, where, and with what context", async () => {
    build(
      "up2",
      nodes.map((n) => n.name),
    );
    await settled();
    const step = (name: string) => recorded.find((r) => r.name === name)!;
    const drain = step("up2-manager-2-drain");
    expect(drain.inputs.create).toBe(script("upgrade-drain"));
    expect(drain.inputs.connection.host).toBe("10.0.0.11");
    expect(drain.inputs.fallbackConnections.map((c: { host: string }) => c.host)).toEqual(["10.0.0.12", "10.0.0.13"]);
    expect(drain.inputs.context).toEqual({ ADVERTISE_ADDR: "10.0.0.12", FRESH: "false" });
    const upgrade = step("up2-manager-2-upgrade");
    expect(upgrade.inputs.create).toBe(script("upgrade-node"));
    expect(upgrade.inputs.connection.host).toBe("10.0.0.12");
    expect(upgrade.inputs.fallbackConnections).toBeUndefined();
    expect(upgrade.inputs.awaitSeconds).toBe(900);
    expect(upgrade.inputs.context).toEqual({
      PACKAGES: "true",
      REBOOT: "if-needed",
      VOLUME: "vol",
      MOUNT_PATH: "/mnt/x",
      BRICK: "true",
      FRESH: "false",
    });
    expect(step("up2-worker-1-upgrade").inputs.context.BRICK).toBe("false");
    const back = step("up2-worker-1-return");
    expect(back.inputs.create).toBe(script("upgrade-return"));
    expect(back.inputs.connection.host).toBe("10.0.0.11");
    expect(back.inputs.context).toEqual({
      ADVERTISE_ADDR: "10.0.0.14",
      ROLE: "worker",
      AVAILABILITY: "active",
      FRESH: "false",
    });
    const release = step("up2-worker-1-release");
    expect(release.inputs.create).toBe(script("upgrade-release"));
    expect(release.inputs.connection.host).toBe("10.0.0.14");
    expect(release.inputs.context).toEqual({
      FRESH: "false",
      VIP: "10.0.0.240",
      PEERS: "10.0.0.15",
      CHECK_PORT: "80",
      CHECK_PATH: "/healthz",
    });
  });

  test("a node the stack did not have before is fresh: its steps record the run without upgrading it", async () => {
    build("up3", ["manager-1", "manager-2", "manager-3", "worker-1"]);
    await settled();
    const fresh = recorded.filter((r) => r.type === REMOTE_SCRIPT && r.inputs.context.FRESH === "true");
    expect(fresh.map((r) => r.name)).toEqual([
      "up3-worker-2-release",
      "up3-worker-2-drain",
      "up3-worker-2-upgrade",
      "up3-worker-2-return",
    ]);
  });
});
