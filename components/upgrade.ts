import * as pulumi from "@pulumi/pulumi";
import { EDGE_HTTP_PORT, GlusterSettings, UpgradeSettings } from "./config";
import { ClusterNode } from "./nodes/types";
import { script, words } from "./remote-scripts";
import { nodeStep, NodeStepArgs, RunsOn } from "./step";
import { EDGE_HEALTH_PATH } from "../stacks/edge";

/** The front door's floating address and the nodes that may hold it (keepalived), when there is one. */
export interface FloatingDoor {
  address: string;
  holders: ClusterNode[];
}

export interface NodeUpgradesArgs {
  /** Every node; walked in `walkOrder`. */
  nodes: ClusterNode[];
  /** The run and how each node is upgraded. */
  settings: UpgradeSettings;
  /** Names of the nodes that hold a Gluster brick: their heal is waited for. */
  bricks: string[];
  /** The volume and its mount path, waited for on each node after its upgrade. */
  gluster: Pick<GlusterSettings, "volume" | "mountPath">;
  /** The front door's floating address, handed to another holder before a holder is drained. Default none. */
  frontDoor?: FloatingDoor;
  /**
   * Names of the nodes the stack had before this update. A node not among them joined now, just
   * installed: its steps record the run without upgrading it. Default: every node is known.
   */
  known?: string[];
  /** The walk begins after these: every node joined and its volume mounted. */
  after: pulumi.Resource[];
}

/**
 * The order of the walk: the managers first, then the workers, each in config order. Managers
 * first, as Docker's own upgrade guidance has it (a manager runs an engine at least as new as its
 * workers'), and a failure on a manager, where quorum is at stake, stops the walk before any
 * worker is touched.
 */
export function walkOrder<N extends Pick<ClusterNode, "role">>(nodes: N[]): N[] {
  return [...nodes.filter((n) => n.role === "manager"), ...nodes.filter((n) => n.role === "worker")];
}

/** What preview prints: the run and the order of the walk. */
export function walkMessage(settings: UpgradeSettings, order: Pick<ClusterNode, "name">[]): string {
  return (
    `swarmcloud: node upgrade run ${JSON.stringify(settings.run)}: when it changes, pulumi up walks one node ` +
    `at a time, in this order: ${order.map((n) => n.name).join(" -> ")} (each: drain, ` +
    `${settings.packages ? "packages upgraded, " : ""}reboot ${settings.reboot}, its return waited for, ` +
    `availability back); a failure stops the walk at that node`
  );
}

/**
 * Node upgrades: for each node in `walkOrder`, one after the other (each node's first step
 * depends on the last step of the node before, so a failure leaves the rest untouched): the
 * front door's address given away (edge holders), drain, the upgrade and reboot on the node (its
 * step awaits the node's return), and the node back in service. Every step re-runs only when
 * `run` changes: the other settings are context.
 */
export class NodeUpgrades extends pulumi.ComponentResource {
  /** The last step of the walk. */
  public readonly done: pulumi.Resource;

  constructor(name: string, args: NodeUpgradesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmcloud:upgrade:NodeUpgrades", name, {}, opts);
    const managers = args.nodes.filter((n) => n.role === "manager");
    const first = managers[0];
    if (first === undefined) throw new pulumi.ResourceError("swarmcloud: node upgrades need a manager", this);
    const managerSide: RunsOn = {
      connection: first.connection,
      fallbackConnections: managers.slice(1).map((m) => m.connection),
    };
    const order = walkOrder(args.nodes);
    pulumi.log.info(walkMessage(args.settings, order), this);
    const holders = new Set((args.frontDoor?.holders ?? []).map((h) => h.name));
    let previous: pulumi.Resource[] = args.after;
    for (const node of order) {
      const plan = upgradePlan(node, args, managerSide);
      const step = (suffix: string, stepArgs: NodeStepArgs) => {
        previous = [nodeStep(`${name}-${node.name}-${suffix}`, stepArgs, { parent: this, dependsOn: previous })];
      };
      if (holders.has(node.name) && args.frontDoor) step("release", releaseStep(node, args.frontDoor, plan));
      step("drain", plan.drain);
      step("upgrade", plan.upgrade);
      step("return", plan.back);
    }
    this.done = previous[0]!;
    this.registerOutputs({});
  }
}

/** The three steps every node has: their args. */
function upgradePlan(
  node: ClusterNode,
  args: NodeUpgradesArgs,
  managerSide: RunsOn,
): { run: string; fresh: string; drain: NodeStepArgs; upgrade: NodeStepArgs; back: NodeStepArgs } {
  const s = args.settings;
  const run = s.run ?? "";
  const fresh = String(args.known !== undefined && !args.known.includes(node.name));
  return {
    run,
    fresh,
    drain: {
      node,
      runsOn: managerSide,
      create: script("upgrade-drain"),
      environment: { RUN: run },
      context: { ADVERTISE_ADDR: node.privateAddress, FRESH: fresh },
    },
    upgrade: {
      node,
      create: script("upgrade-node"),
      environment: { RUN: run },
      context: {
        PACKAGES: String(s.packages),
        REBOOT: s.reboot,
        VOLUME: args.gluster.volume,
        MOUNT_PATH: args.gluster.mountPath,
        BRICK: String(args.bricks.includes(node.name)),
        FRESH: fresh,
      },
      // The reboot ends a run with "not yet": the step runs again until the node is back.
      awaitSeconds: s.returnSeconds,
      // One run upgrades the packages, or waits for the node's heal (600 s at most).
      timeout: 1800,
    },
    back: {
      node,
      runsOn: managerSide,
      create: script("upgrade-return"),
      environment: { RUN: run },
      context: { ADVERTISE_ADDR: node.privateAddress, ROLE: node.role, AVAILABILITY: node.availability, FRESH: fresh },
    },
  };
}

/** On an edge holder, before its drain: the floating address handed to another holder. */
function releaseStep(node: ClusterNode, door: FloatingDoor, plan: { run: string; fresh: string }): NodeStepArgs {
  return {
    node,
    create: script("upgrade-release"),
    environment: { RUN: plan.run },
    context: {
      FRESH: plan.fresh,
      VIP: door.address,
      PEERS: words(door.holders.filter((h) => h.name !== node.name).map((h) => h.privateAddress)),
      CHECK_PORT: String(EDGE_HTTP_PORT),
      CHECK_PATH: EDGE_HEALTH_PATH,
    },
  };
}
