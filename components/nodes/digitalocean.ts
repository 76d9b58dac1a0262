import * as digitalocean from "@pulumi/digitalocean";
import * as pulumi from "@pulumi/pulumi";
import { EDGE_HEALTH_PATH } from "../../stacks/edge";
import { DigitalOceanSettings, EDGE_HTTP_PORT, EDGE_HTTPS_PORT, NodeSpec } from "../config";
import { GeneratedKey } from "../generated-key";
import { ClusterNode, clusterNode, NodeSource } from "./types";

export interface DigitalOceanNodesArgs {
  /** Nodes as validated by parseConfig (no default: the config supplies 3 managers + 2 workers). */
  nodes: NodeSpec[];
  /** Region, size, image, VPC range, admin CIDRs and tags (defaults in config.ts: ams3, s-2vcpu-2gb, debian-13-x64, 10.20.0.0/24, none, [swarmcloud]). */
  settings: DigitalOceanSettings;
  /** OpenSSH public key installed for root on every droplet (no default). */
  sshPublicKey: pulumi.Input<string>;
  /** The matching private key; kept a secret (no default). */
  sshPrivateKey: pulumi.Input<string>;
  /** TCP ports opened to the whole internet (IPv4 and IPv6), e.g. Ghost's. Default none. */
  publicPorts?: number[];
  /** TCP ports opened to `settings.adminCidrs` only, e.g. Portainer's (root on every node). Default none. */
  adminPorts?: number[];
  /** UDP port of the swarm's VXLAN data path, opened inside the VPC. Default 4789. */
  dataPathPort?: number;
  /** The front door (edge on): a load balancer forwarding 80 and 443 to these nodes (names). Default: none. */
  frontDoor?: { holders: string[] };
}

/** The front door's health check: Caddy's health route on port 80 (stacks/edge.ts), every 3 s. */
export const FRONT_DOOR_HEALTHCHECK = {
  protocol: "http",
  port: EDGE_HTTP_PORT,
  path: EDGE_HEALTH_PATH,
  checkIntervalSeconds: 3,
  responseTimeoutSeconds: 3,
  unhealthyThreshold: 2,
  healthyThreshold: 2,
};

/**
 * The load balancer's forwarding: 80 and 443 as TCP to the same ports on the edge droplets, so
 * TLS ends at Caddy (its certificates, HSTS) and HTTP reaches its redirect and ACME's challenge.
 */
export const FRONT_DOOR_FORWARDING = [EDGE_HTTP_PORT, EDGE_HTTPS_PORT].map((port) => ({
  entryProtocol: "tcp",
  entryPort: port,
  targetProtocol: "tcp",
  targetPort: port,
}));

export type FirewallInboundRule = {
  protocol: "tcp" | "udp" | "icmp";
  portRange?: string;
  sourceAddresses: string[];
};

export type FirewallOutboundRule = {
  protocol: "tcp" | "udp" | "icmp";
  portRange?: string;
  destinationAddresses: string[];
};

const ANYWHERE = ["0.0.0.0/0", "::/0"];

/** Gluster's brick ports: one per brick from 49152; 100 leaves room for many volumes. */
export const GLUSTER_BRICK_PORTS = "49152-49251";

/**
 * The cloud firewall's inbound rules: swarm and Gluster only from inside the VPC, SSH and the
 * admin ports (Portainer's) only from the admin CIDRs (no rule when there are none), the public
 * ports from anywhere.
 *
 * Not expressible: DigitalOcean cloud firewalls know tcp, udp and icmp only, so IP protocol 50
 * (ESP) cannot be allowed; swarm's encrypted overlay networks (`--opt encrypted`) therefore do
 * not carry traffic between droplets behind this firewall. Keep swarm.encryptOverlay off here.
 */
export function firewallInboundRules(
  settings: Pick<DigitalOceanSettings, "vpcCidr" | "adminCidrs">,
  publicPorts: number[] = [],
  dataPathPort = 4789,
  adminPorts: number[] = [],
): FirewallInboundRule[] {
  const vpc = [settings.vpcCidr];
  const rules: FirewallInboundRule[] = [
    { protocol: "tcp", portRange: "2377", sourceAddresses: vpc },
    { protocol: "tcp", portRange: "7946", sourceAddresses: vpc },
    { protocol: "udp", portRange: "7946", sourceAddresses: vpc },
    { protocol: "udp", portRange: String(dataPathPort), sourceAddresses: vpc },
    { protocol: "tcp", portRange: "24007-24008", sourceAddresses: vpc },
    { protocol: "tcp", portRange: GLUSTER_BRICK_PORTS, sourceAddresses: vpc },
  ];
  const inOrder = (ports: number[]) => [...new Set(ports)].sort((a, b) => a - b);
  if (settings.adminCidrs.length > 0) {
    for (const port of [22, ...inOrder(adminPorts)]) {
      rules.push({ protocol: "tcp", portRange: String(port), sourceAddresses: [...settings.adminCidrs] });
    }
  }
  for (const port of inOrder(publicPorts)) {
    rules.push({ protocol: "tcp", portRange: String(port), sourceAddresses: ANYWHERE });
  }
  return rules;
}

/** Outbound: everything, anywhere (package mirrors, image registries, NTP, DNS). */
export function firewallOutboundRules(): FirewallOutboundRule[] {
  return [
    { protocol: "tcp", portRange: "1-65535", destinationAddresses: ANYWHERE },
    { protocol: "udp", portRange: "1-65535", destinationAddresses: ANYWHERE },
    { protocol: "icmp", destinationAddresses: ANYWHERE },
  ];
}

/**
 * The droplet's cloud-init user data: its SSH host key, made by this program, installed on first
 * boot (`ssh_keys`), the image's own keys deleted and no other generated, so sshd serves that key
 * only and the first connection is already verified. The private key is in it: keep the result
 * a secret.
 */
export function hostKeyUserData(privateKey: string, publicKey: string): string {
  const block = privateKey
    .trim()
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n");
  return [
    "#cloud-config",
    "ssh_deletekeys: true",
    "ssh_genkeytypes: []",
    "ssh_keys:",
    "  ed25519_private: |",
    block,
    `  ed25519_public: ${JSON.stringify(publicKey.trim())}`,
    "",
  ].join("\n");
}

/** The front door's load balancer: 80 and 443 to the edge droplets, health-checked on Caddy's health route. */
function frontDoorLoadBalancer(
  name: string,
  s: DigitalOceanSettings,
  vpc: digitalocean.Vpc,
  droplets: digitalocean.Droplet[],
  parent: pulumi.Resource,
): digitalocean.LoadBalancer {
  return new digitalocean.LoadBalancer(
    `${name}-front-door`,
    {
      name: `${name}-front-door`,
      region: s.region,
      vpcUuid: vpc.id,
      dropletIds: droplets.map((d) => d.id.apply((id) => Number(id))),
      forwardingRules: FRONT_DOOR_FORWARDING,
      healthcheck: FRONT_DOOR_HEALTHCHECK,
    },
    { parent },
  );
}

/** The role tag every droplet carries next to `settings.tags`. */
export function roleTag(role: NodeSpec["role"]): string {
  return `swarmcloud-${role}`;
}

/**
 * Droplets in their own VPC, reachable with one SSH key, behind a cloud firewall. The droplet
 * is named after the node, so its hostname is the node name. Each droplet's SSH host key is made
 * here (`GeneratedKey`), installed through cloud-init user data and pinned in its connection.
 *
 * DigitalOcean refuses an SSH public key that is already on the account ("SSH Key is already
 * in use"), and a VPC range that overlaps another VPC in the account.
 */
export class DigitalOceanNodes extends pulumi.ComponentResource implements NodeSource {
  public readonly nodes: ClusterNode[];
  /** ID of the VPC the droplets talk in. */
  public readonly vpcId: pulumi.Output<string>;
  /** The load balancer's public address (edge on). */
  public readonly frontDoorAddress?: pulumi.Output<string>;

  constructor(name: string, args: DigitalOceanNodesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmcloud:nodes:DigitalOceanNodes", name, {}, opts);
    const parent = { parent: this };
    const s = args.settings;
    const privateKey = pulumi.secret(args.sshPrivateKey);

    const key = new digitalocean.SshKey(`${name}-ssh`, { publicKey: args.sshPublicKey }, parent);
    const vpc = new digitalocean.Vpc(
      `${name}-vpc`,
      { region: s.region, ipRange: s.vpcCidr, description: `swarmcloud ${name}` },
      parent,
    );

    const hostKeys = args.nodes.map((node) => new GeneratedKey(`${name}-${node.name}-host-key`, {}, parent));
    const droplets = args.nodes.map(
      (node, i) =>
        new digitalocean.Droplet(
          `${name}-${node.name}`,
          {
            name: node.name,
            image: s.image,
            region: s.region,
            size: s.size,
            vpcUuid: vpc.id,
            sshKeys: [key.fingerprint],
            tags: [...new Set([...s.tags, roleTag(node.role)])],
            // Read by cloud-init on first boot; a new key replaces the droplet.
            userData: pulumi.secret(
              pulumi
                .all([hostKeys[i]!.privateKey, hostKeys[i]!.publicKey])
                .apply(([priv, pub]) => hostKeyUserData(priv, pub)),
            ),
          },
          parent,
        ),
    );

    const firewall = new digitalocean.Firewall(
      `${name}-firewall`,
      {
        dropletIds: droplets.map((d) => d.id.apply((id) => Number(id))),
        inboundRules: firewallInboundRules(s, args.publicPorts ?? [], args.dataPathPort ?? 4789, args.adminPorts ?? []),
        outboundRules: firewallOutboundRules(),
      },
      parent,
    );

    this.nodes = args.nodes.map((node, i) => {
      const droplet = droplets[i]!;
      return clusterNode(node, {
        host: droplet.ipv4Address,
        user: "root",
        privateKey,
        // A droplet is "active" some seconds before sshd answers.
        dialErrorLimit: 30,
        privateAddress: droplet.ipv4AddressPrivate,
        // The firewall too: provisioning then always meets the rules it will live with.
        dependsOn: [droplet, firewall],
        hostKey: hostKeys[i]!.publicKey,
      });
    });

    if (args.frontDoor !== undefined) {
      const edge = new Set(args.frontDoor.holders);
      const edgeDroplets = droplets.filter((_, i) => edge.has(args.nodes[i]!.name));
      this.frontDoorAddress = frontDoorLoadBalancer(name, s, vpc, edgeDroplets, this).ip;
    }
    this.vpcId = vpc.id;
    this.registerOutputs({
      vpcId: this.vpcId,
      firewallId: firewall.id,
      ...(this.frontDoorAddress === undefined ? {} : { frontDoorAddress: this.frontDoorAddress }),
    });
  }
}
