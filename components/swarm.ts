import * as pulumi from "@pulumi/pulumi";
import { Role, SwarmSettings } from "./config";
import { ClusterNode } from "./nodes/types";
import { keyValueLines, script, words } from "./remote-scripts";
import { nodeStep, NodeStepArgs, RunsOn } from "./step";

export interface SwarmArgs {
  /** Every node; the first manager initialises the swarm. */
  nodes: ClusterNode[];
  /** Per node name, the resource after which Docker is ready on it (DockerHost.ready). */
  hostReady: Record<string, pulumi.Resource>;
  /** Data-path port, address pools, overlay encryption. */
  settings: SwarmSettings;
}

export interface SwarmNodeInfo {
  name: string;
  role: Role;
  address: string;
}

/**
 * A Docker Swarm over the nodes: init on the first manager, every node joined through a
 * resource of its own (so adding a node touches only that node), roles, availability and labels
 * set from a manager in place. Removing a node drains it, demotes it if it manages, makes it
 * leave and removes it from the node list, in that order.
 */
export class Swarm extends pulumi.ComponentResource {
  /** Private address of the first manager. */
  public readonly managerAddress: pulumi.Output<string>;
  /** Every node with its role and cluster address. */
  public readonly nodeList: pulumi.Output<SwarmNodeInfo[]>;
  /** Join tokens (secrets). */
  public readonly workerToken: pulumi.Output<string>;
  public readonly managerToken: pulumi.Output<string>;
  /** Swarm cluster ID. */
  public readonly clusterId: pulumi.Output<string>;
  /** Depend on these before deploying to the swarm: every node joined and configured. */
  public readonly ready: pulumi.Resource[];

  constructor(name: string, args: SwarmArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmcloud:swarm:Swarm", name, {}, opts);
    const managers = args.nodes.filter((n) => n.role === "manager");
    const first = managers[0];
    if (first === undefined) throw new pulumi.ResourceError("swarmcloud: a swarm needs at least one manager", this);
    // Manager-side steps run on the first manager, and on the other managers when it cannot.
    const managerSide: RunsOn = {
      connection: first.connection,
      fallbackConnections: managers.slice(1).map((m) => m.connection),
    };

    const bootstrap = nodeStep(`${name}-bootstrap`, bootstrapStep(first, managerSide, args.settings), {
      parent: this,
      dependsOn: managers.map((m) => args.hostReady[m.name]!),
    });
    const fields = bootstrap.stdout.apply((s) => s.split(/\s+/));
    this.clusterId = pulumi.unsecret(fields.apply((f) => f[0] ?? ""));
    this.workerToken = pulumi.secret(fields.apply((f) => f[2] ?? ""));
    this.managerToken = pulumi.secret(fields.apply((f) => f[3] ?? ""));
    const managerAddrs = words(managers.map((m) => m.privateAddress));
    const joinSecret = pulumi.secret(pulumi.interpolate`${this.clusterId} ${this.workerToken}\n`);

    // Every node, the first manager included, has the same three steps, so any node can be
    // removed or replaced the same way: slot (created first, deleted last: removes the node
    // from the list after it left), join (on the node: join, or leave on delete) and member
    // (on a manager: role, availability, labels; drain and demote on delete).
    this.ready = args.nodes.map((node) => {
      const nodeName = `${name}-${node.name}`;
      const slot = nodeStep(`${nodeName}-slot`, slotStep(node, managerSide, managerAddrs), {
        parent: this,
        dependsOn: [bootstrap],
      });
      const join = nodeStep(`${nodeName}-join`, joinStep(node, joinSecret, managerAddrs), {
        parent: this,
        dependsOn: [slot, args.hostReady[node.name]!],
      });
      return nodeStep(`${nodeName}-member`, memberStep(node, managerSide, join.stdout), {
        parent: this,
        dependsOn: [join],
      });
    });

    this.managerAddress = pulumi.output(first.privateAddress);
    this.nodeList = pulumi.all(
      args.nodes.map((n) =>
        pulumi.output(n.privateAddress).apply((address) => ({ name: n.name, role: n.role, address })),
      ),
    );
    this.registerOutputs({
      managerAddress: this.managerAddress,
      nodeList: this.nodeList,
      workerToken: this.workerToken,
      managerToken: this.managerToken,
    });
  }
}

/**
 * Ensures a swarm exists (init on the first manager, or adopt the one it manages) and reads the
 * join tokens. It is not tied to one node: with the first manager replaced or down, it runs on
 * another manager, which already manages the same swarm.
 */
function bootstrapStep(first: ClusterNode, managerSide: RunsOn, settings: SwarmSettings): NodeStepArgs {
  return {
    node: first,
    runsOn: managerSide,
    create: script("swarm-init"),
    delete: script("swarm-teardown"),
    environment: {
      ADVERTISE_ADDR: first.privateAddress,
      DATA_PATH_PORT: String(settings.dataPathPort),
      DEFAULT_ADDR_POOL: settings.defaultAddrPool.join(" "),
    },
    secretStdout: true,
    skipDeleteWhenUnreachable: true,
  };
}

/**
 * The node's place in the node list, kept on a manager: removes the node from the list on delete
 * (last). The managers' addresses are context (consulted, never a reason to run): the node being
 * removed hands the removal to another manager, unless there is none (the swarm goes with it).
 */
function slotStep(node: ClusterNode, managerSide: RunsOn, managerAddrs: pulumi.Input<string>): NodeStepArgs {
  return {
    node,
    runsOn: managerSide,
    // Nothing to do on create: the slot exists to remove the node from the list last.
    create: "",
    delete: script("swarm-forget"),
    environment: { ADVERTISE_ADDR: node.privateAddress },
    context: { MANAGER_ADDRS: managerAddrs },
    skipDeleteWhenUnreachable: true,
  };
}

/**
 * On the node itself: joins the swarm, leaves it on delete; prints the node ID. `joinSecret` is
 * `<cluster id> <worker token>\n`, a secret, for stdin; `managerAddrs` the managers' addresses,
 * space-separated.
 */
function joinStep(
  node: ClusterNode,
  joinSecret: pulumi.Output<string>,
  managerAddrs: pulumi.Input<string>,
): NodeStepArgs {
  return {
    node,
    create: script("swarm-join"),
    delete: script("swarm-leave"),
    read: script("swarm-join-read"),
    stdin: joinSecret,
    environment: { ADVERTISE_ADDR: node.privateAddress, MANAGER_ADDRS: managerAddrs },
    skipDeleteWhenUnreachable: true,
  };
}

/** On a manager: the node's role, availability and labels (`nodeId` from its join); drain and demote on delete. */
function memberStep(node: ClusterNode, managerSide: RunsOn, nodeId: pulumi.Output<string>): NodeStepArgs {
  return {
    node,
    runsOn: managerSide,
    create: script("swarm-member"),
    delete: script("swarm-release"),
    read: script("swarm-member-read"),
    environment: {
      NODE_ID: nodeId,
      ROLE: node.role,
      AVAILABILITY: node.availability,
      LABELS: keyValueLines(node.labels),
    },
    skipDeleteWhenUnreachable: true,
  };
}
