/**
 * The front door (opt-in, `swarmcloud:edge`): one address for the whole cluster and HTTPS in
 * front of Ghost and Portainer.
 *
 * - keepalived on each edge node (one step per node) holds a floating address and moves it to
 *   another edge node within seconds when the holder, or its Caddy, stops answering; on
 *   DigitalOcean a load balancer (components/nodes/digitalocean.ts) takes its place;
 * - Caddy on every edge node (the `edge` stack, stacks/edge.ts) answers on 80 and 443,
 *   redirects HTTP to HTTPS and proxies to the apps' tasks over the overlay;
 * - without a domain, Caddy's internal CA signs the address; its root is made by the program
 *   before any Caddy starts, and is a stack output.
 */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { EDGE_HTTP_PORT, EdgeSettings, ResolveImage } from "./config";
import { EDGE_APP_HEALTH_PATH, EDGE_INTERNAL_ROOT, edgeCompose, EdgeUpstream } from "../stacks/edge";
import { renderCompose } from "../stacks/compose";
import { ClusterNode } from "./nodes/types";
import { RemoteScript } from "./remote";
import { script } from "./remote-scripts";
import { SwarmStack } from "./stack";
import { nodeStep, NodeStepArgs } from "./step";

/** The folder of the edge's Caddy (certificates, ACME account, internal CA) on the Gluster mount. */
export const EDGE_DIR = "edge";

/** The common name of the root the program makes for Caddy's internal CA. */
export const EDGE_ROOT_NAME = "swarmcloud front door root";

export interface FrontDoorArgs {
  /** The edge nodes: they hold the floating address and run Caddy (no default). */
  holders: ClusterNode[];
  /** Per node name, the node's swarm membership: keepalived comes after it, and goes before it (no default). */
  memberReady: Record<string, pulumi.Resource>;
  /** The front door's settings, as parseConfig read them (no default). */
  settings: EdgeSettings;
  /** The name or address the front door answers on: the domain, else the floating or load balancer address (no default). */
  site: pulumi.Input<string>;
  /** Whether keepalived holds `settings.address` on the holders; false on DigitalOcean (its load balancer). Default true. */
  floating?: boolean;
  /** The manager the edge stack is deployed from, and the ones tried after it (no default). */
  manager: ClusterNode;
  fallbackManagers?: ClusterNode[];
  /** Where the Gluster volume is mounted on every node (no default). */
  mountPath: string;
  /** The apps behind the front door; an app left out gets no site. Default: none. */
  ghost?: EdgeUpstream;
  portainer?: EdgeUpstream;
  /** Seconds the edge stack's deploy waits. Default 300. */
  timeout?: number;
  /** `docker stack deploy --resolve-image`. Default `always`. */
  resolveImage?: ResolveImage;
  /** Keep the digest the edge stack's service runs (SwarmStackArgs.pinImages). Default true. */
  pinImages?: boolean;
  /** What the edge stack waits for: the swarm, the mounts, the apps' stacks (their networks). Default none. */
  dependsOn?: pulumi.Resource[];
}

/** The swarm placement constraint of the edge nodes. */
export function edgePlacement(settings: Pick<EdgeSettings, "holders">): string {
  return settings.holders === "managers" ? "node.role==manager" : "node.labels.edge==true";
}

/**
 * A holder's VRRP priority, 50-249, from its own address alone (so a holder added or removed
 * changes no other holder's step). Holders at one priority that lose the address's holder at the
 * same moment (a priority-0 advertisement as it leaves) both wait the same skew time and both
 * claim the address until one hears the other, up to a second later: the neighbours' ARP caches
 * flip between them and connections begun on one are reset by the other (seen while a holder
 * was replaced, three holders up). Distinct priorities make the backups' waits differ, so the
 * highest takes the address and the others hear it first. The multiplier 47 spreads addresses a
 * few apart (typical for a LAN's nodes) at least 11 priorities (43 ms of skew) apart; two
 * addresses 200 apart share a priority, as every holder did before.
 */
export function vrrpPriority(address: string): number {
  const octets = address.split(".").map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o))) return 100;
  const n = octets[2]! * 256 + octets[3]!;
  return 50 + ((n * 47) % 200);
}

/**
 * keepalived on one edge node, advertising by multicast from its own address. Nothing of the
 * other holders is in its config: every holder hears every other, one added later included, so a
 * holder added or removed runs its own step and no other node's. (With unicast peers each holder
 * had to list the others; while a holder was replaced, the old one did not know the new one, and
 * the two could both claim the address.)
 */
export function vrrpStep(node: ClusterNode, s: EdgeSettings): NodeStepArgs {
  return {
    node,
    create: script("edge-keepalived"),
    delete: script("edge-keepalived-delete"),
    read: script("edge-keepalived-read"),
    environment: {
      VIP: s.address ?? "",
      ROUTER_ID: String(s.routerId),
      PRIORITY: pulumi.output(node.privateAddress).apply((a) => String(vrrpPriority(a))),
      SRC_ADDR: node.privateAddress,
      INTERFACE: s.interface ?? "",
      CHECK_PORT: String(EDGE_HTTP_PORT),
      CHECK_PATH: EDGE_APP_HEALTH_PATH,
    },
    skipDeleteWhenUnreachable: true,
  };
}

export class FrontDoor extends pulumi.ComponentResource {
  /** The edge stack (Caddy). */
  public readonly caddy: SwarmStack;
  /** keepalived on each holder, by node name (none on DigitalOcean). */
  public readonly vrrp: Record<string, RemoteScript>;
  /** The root certificate of Caddy's internal CA (PEM), when no domain is set. */
  public readonly rootCertificate?: pulumi.Output<string>;

  constructor(name: string, args: FrontDoorArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmcloud:edge:FrontDoor", name, {}, opts);
    const s = args.settings;
    if (args.holders.length === 0) {
      throw new pulumi.ResourceError("swarmcloud: the front door needs at least one edge node", this);
    }
    const floating = args.floating ?? true;
    this.vrrp = Object.fromEntries(
      floating
        ? args.holders.map((node) => [
            node.name,
            nodeStep(`${name}-${node.name}-vrrp`, vrrpStep(node, s), {
              parent: this,
              dependsOn: [args.memberReady[node.name]!],
            }),
          ])
        : [],
    );
    const dataPath = `${args.mountPath}/${EDGE_DIR}`;
    // Without a domain: Caddy's internal CA, its root made by the program before any Caddy starts
    // (two Caddy instances starting at once would each make one; edge-root.sh says more).
    const root =
      s.domain === undefined
        ? nodeStep(
            `${name}-root`,
            {
              node: args.manager,
              runsOn: {
                connection: args.manager.connection,
                fallbackConnections: (args.fallbackManagers ?? []).map((m) => m.connection),
              },
              create: script("edge-root"),
              environment: { CA_DIR: `${dataPath}/${path.posix.dirname(EDGE_INTERNAL_ROOT)}`, CN: EDGE_ROOT_NAME },
              timeout: 120,
            },
            { parent: this, dependsOn: args.dependsOn },
          )
        : undefined;
    this.rootCertificate = root?.stdout;
    this.caddy = new SwarmStack(
      `${name}-caddy`,
      {
        manager: args.manager,
        fallbackManagers: args.fallbackManagers,
        stackName: "edge",
        compose: pulumi.output(args.site).apply((site) =>
          renderCompose(
            edgeCompose(s, {
              site,
              dataPath,
              placement: edgePlacement(s),
              ghost: args.ghost,
              portainer: args.portainer,
            }),
          ),
        ),
        timeout: args.timeout,
        resolveImage: args.resolveImage,
        pinImages: args.pinImages,
        dependsOn: [...(args.dependsOn ?? []), ...(root ? [root] : [])],
      },
      { parent: this },
    );
    this.registerOutputs({ rootCertificate: this.rootCertificate });
  }
}
