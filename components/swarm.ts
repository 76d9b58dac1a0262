import * as pulumi from "@pulumi/pulumi";
import { Role, SwarmSettings } from "./config";
import { ClusterNode } from "./nodes/types";
import { RemoteScript } from "./remote";
import { keyValueLines, script, words } from "./scripts";

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
    if (first === undefined) throw new Error("swarmcloud: a swarm needs at least one manager");
    const managerSide = {
      connection: first.connection,
      fallbackConnections: managers.slice(1).map((m) => m.connection),
    };
    const parent = { parent: this };

    // Ensures a swarm exists (init on the first manager, or adopt the one it manages) and
    // reads the join tokens. It is not tied to one node: with the first manager replaced or
    // down, it runs on another manager, which already manages the same swarm.
    const bootstrap = new RemoteScript(
      `${name}-bootstrap`,
      {
        node: first.name,
        ...managerSide,
        create: script("swarm-init"),
        delete: script("swarm-teardown"),
        environment: {
          NODE_NAME: first.name,
          ADVERTISE_ADDR: first.privateAddress,
          DATA_PATH_PORT: String(args.settings.dataPathPort),
          DEFAULT_ADDR_POOL: args.settings.defaultAddrPool.join(" "),
        },
        secretStdout: true,
        skipDeleteWhenUnreachable: true,
      },
      { ...parent, dependsOn: managers.map((m) => args.hostReady[m.name]!) },
    );
    const fields = bootstrap.stdout.apply((s) => s.split(/\s+/));
    this.clusterId = pulumi.unsecret(fields.apply((f) => f[0] ?? ""));
    this.workerToken = pulumi.secret(fields.apply((f) => f[2] ?? ""));
    this.managerToken = pulumi.secret(fields.apply((f) => f[3] ?? ""));
    const managerAddrs = words(managers.map((m) => m.privateAddress));

    // Every node, the first manager included, has the same three steps, so any node can be
    // removed or replaced the same way: slot (created first, deleted last: removes the node
    // from the list after it left), join (on the node: join, or leave on delete) and member
    // (on a manager: role, availability, labels; drain and demote on delete).
    this.ready = args.nodes.map((node) => {
      const slot = new RemoteScript(
        `${name}-${node.name}-slot`,
        {
          node: node.name,
          ...managerSide,
          // Nothing to do on create: the slot exists to remove the node from the list last.
          create: "",
          delete: script("swarm-forget"),
          environment: { NODE_NAME: node.name, ADVERTISE_ADDR: node.privateAddress },
          skipDeleteWhenUnreachable: true,
        },
        { ...parent, dependsOn: [bootstrap] },
      );
      const join = new RemoteScript(
        `${name}-${node.name}-join`,
        {
          node: node.name,
          connection: node.connection,
          create: script("swarm-join"),
          delete: script("swarm-leave"),
          stdin: pulumi.secret(pulumi.interpolate`${this.clusterId} ${this.workerToken}\n`),
          environment: { NODE_NAME: node.name, ADVERTISE_ADDR: node.privateAddress, MANAGER_ADDRS: managerAddrs },
          skipDeleteWhenUnreachable: true,
        },
        { ...parent, dependsOn: [slot, args.hostReady[node.name]!] },
      );
      return new RemoteScript(
        `${name}-${node.name}-member`,
        {
          node: node.name,
          ...managerSide,
          create: script("swarm-member"),
          delete: script("swarm-release"),
          environment: {
            NODE_NAME: node.name,
            NODE_ID: join.stdout,
            ROLE: node.role,
            AVAILABILITY: node.availability,
            LABELS: keyValueLines(node.labels),
          },
          skipDeleteWhenUnreachable: true,
        },
        { ...parent, dependsOn: [join] },
      );
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
