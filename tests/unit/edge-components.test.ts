/**
 * The front door's components under Pulumi mocks: FrontDoor (keepalived per holder as its
 * children, the edge stack, the root step only without a domain, no keepalived where a load
 * balancer is the address, refused without holders) and DigitalOceanNodes' load balancer (only
 * when asked for, forwarding 80/443 to the edge droplets, health-checked on Caddy's route).
 */
import * as pulumi from "@pulumi/pulumi";
import { DEFAULTS, EdgeSettings, parseConfig } from "../../components/config";
import { FrontDoor, edgePlacement } from "../../components/edge";
import { DigitalOceanNodes } from "../../components/nodes/digitalocean";
import { sshClusterNodes } from "../../components/nodes/ssh";
import { script } from "../../components/remote-scripts";
import { clearRecorded, recorded, settled, setupMocks, valueOf } from "./mocks";

setupMocks({
  state: (args) => {
    if (args.type === "digitalocean:index/loadBalancer:LoadBalancer") return { ip: "203.0.113.80" };
    if (args.type.includes("RemoteScript")) return { stdout: args.name.endsWith("-root") ? "PEM" : "" };
    return undefined;
  },
});

const REMOTE_SCRIPT = "pulumi-nodejs:dynamic/swarmcloud:RemoteScript";
const nodes = sshClusterNodes({
  nodes: [1, 2, 3].map((k) => ({
    name: `m${k}`,
    role: "manager" as const,
    address: `10.0.0.${k}`,
    labels: {},
    availability: "active" as const,
  })),
  privateKey: "KEY",
});
const ON: EdgeSettings = { ...DEFAULTS.edge, enabled: true, address: "10.0.0.200" };
const ready = () =>
  Object.fromEntries(nodes.map((n) => [n.name, new pulumi.ComponentResource("test:index:Ready", `r-${n.name}`)]));

function frontDoor(name: string, settings: EdgeSettings, floating = true): FrontDoor {
  return new FrontDoor(name, {
    holders: nodes,
    memberReady: ready(),
    settings,
    site: settings.domain ?? "10.0.0.200",
    floating,
    manager: nodes[0]!,
    fallbackManagers: nodes.slice(1),
    mountPath: "/mnt/swarmcloud",
    ghost: { service: "ghost_ghost", port: 2368, network: "ghost_frontend" },
  });
}

beforeEach(async () => {
  await settled();
  clearRecorded();
});

test("FrontDoor: keepalived per holder and the edge stack as its children, the root made before the deploy", async () => {
  const door = frontDoor("fd", ON);
  await settled();
  const component = recorded.find((r) => r.type === "swarmcloud:edge:FrontDoor" && r.name === "fd")!;
  const vrrp = recorded.filter((r) => r.type === REMOTE_SCRIPT && r.name.endsWith("-vrrp"));
  expect(vrrp.map((r) => r.name).sort()).toEqual(["fd-m1-vrrp", "fd-m2-vrrp", "fd-m3-vrrp"]);
  for (const r of vrrp) {
    expect(r.parent).toBe(component.urn);
    expect(r.inputs.create).toBe(script("edge-keepalived"));
    expect(r.inputs.skipDeleteWhenUnreachable).toBe(true);
  }
  const stack = recorded.find((r) => r.type === "swarmcloud:stack:SwarmStack" && r.name === "fd-caddy")!;
  expect(stack.parent).toBe(component.urn);
  const root = recorded.find((r) => r.name === "fd-root")!;
  expect(root.parent).toBe(component.urn);
  expect(root.inputs.fallbackConnections.map((c: { host: string }) => c.host)).toEqual(["10.0.0.2", "10.0.0.3"]);
  // Made before any Caddy starts: two starting at once would each make a root of their own.
  expect(recorded.find((r) => r.name === "fd-caddy-deploy")!.dependencies).toContain(root.urn);
  expect(root.dependencies).not.toContain(recorded.find((r) => r.name === "fd-caddy-deploy")!.urn);
  expect(await valueOf(door.rootCertificate!)).toBe("PEM");
});

test("FrontDoor: a domain makes no root step; no floating address (DigitalOcean) makes no keepalived", async () => {
  const door = frontDoor("fd2", { ...ON, address: undefined, domain: "blog.example.com" }, false);
  await settled();
  expect(door.rootCertificate).toBeUndefined();
  expect(recorded.filter((r) => r.name.endsWith("-vrrp") || r.name === "fd2-root")).toEqual([]);
  expect(recorded.find((r) => r.name === "fd2-caddy-deploy")!.inputs.environment.COMPOSE).toContain(
    "blog.example.com {",
  );
});

test("FrontDoor refuses to be made without an edge node, naming itself", () => {
  let thrown: unknown;
  try {
    new FrontDoor("fd3", {
      holders: [],
      memberReady: {},
      settings: ON,
      site: "10.0.0.200",
      manager: nodes[0]!,
      mountPath: "/mnt/swarmcloud",
    });
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(pulumi.ResourceError);
  expect((thrown as Error).message).toMatch(/the front door needs at least one edge node/);
});

test("edgePlacement: the managers, or the labelled nodes", () => {
  expect(edgePlacement({ holders: "managers" })).toBe("node.role==manager");
  expect(edgePlacement({ holders: "labelled" })).toBe("node.labels.edge==true");
});

describe("DigitalOceanNodes' load balancer", () => {
  const { config } = parseConfig(
    {
      environment: "digitalocean",
      sshPublicKey: "ssh-ed25519 AAAA me",
      digitalocean: { adminCidrs: ["203.0.113.7/32"] },
    },
    { sshPrivateKey: true, digitaloceanToken: true },
  );
  const args = {
    nodes: config.nodes,
    settings: config.digitalocean,
    sshPublicKey: "ssh-ed25519 AAAA me",
    sshPrivateKey: "K",
  };

  test("none without the front door", async () => {
    const source = new DigitalOceanNodes("plain", args);
    await settled();
    expect(recorded.filter((r) => r.type === "digitalocean:index/loadBalancer:LoadBalancer")).toEqual([]);
    expect(source.frontDoorAddress).toBeUndefined();
  });

  test("with it: 80 and 443 as TCP to the edge droplets only, Caddy's health route, in the droplets' region and VPC", async () => {
    const source = new DigitalOceanNodes("edge", { ...args, frontDoor: { holders: ["manager-1", "manager-2"] } });
    await settled();
    const lbs = recorded.filter((r) => r.type === "digitalocean:index/loadBalancer:LoadBalancer");
    expect(lbs).toHaveLength(1);
    const lb = lbs[0]!;
    const component = recorded.find((r) => r.type === "swarmcloud:nodes:DigitalOceanNodes" && r.name === "edge")!;
    expect(lb.parent).toBe(component.urn);
    expect(lb.inputs).toMatchObject({
      name: "edge-front-door",
      region: "ams3",
      forwardingRules: [
        { entryProtocol: "tcp", entryPort: 80, targetProtocol: "tcp", targetPort: 80 },
        { entryProtocol: "tcp", entryPort: 443, targetProtocol: "tcp", targetPort: 443 },
      ],
      healthcheck: {
        protocol: "http",
        port: 80,
        path: "/healthz",
        checkIntervalSeconds: 3,
        responseTimeoutSeconds: 3,
        unhealthyThreshold: 2,
        healthyThreshold: 2,
      },
    });
    const droplet = (n: string) => recorded.find((r) => r.name === `edge-${n}` && r.type.includes("Droplet"))!.urn;
    expect(lb.dependencies).toEqual(expect.arrayContaining([droplet("manager-1"), droplet("manager-2")]));
    expect(lb.dependencies).not.toContain(droplet("manager-3"));
    expect(lb.dependencies).toContain(recorded.find((r) => r.name === "edge-vpc")!.urn);
    expect(await valueOf(source.frontDoorAddress!)).toBe("203.0.113.80");
  });
});
