/**
 * The whole program (`main`) with the front door on (swarmcloud:edge), under Pulumi mocks, for
 * the local, pi (ssh) and do (digitalocean) stack files: keepalived on each edge node (not on
 * DigitalOcean, where a load balancer is the address), the edge stack after the apps' stacks,
 * Ghost's url and the URL outputs through the front door, the internal CA's root as an output
 * without a domain, the DigitalOcean firewall open to the world on 80 and 443 only, and
 * swarm.pinImages reaching every stack's deploy (the edge's, the apps' and the backup's). The same
 * stacks without the key build what they built before: tests/unit/program.test.ts and the
 * graph snapshot (tests/unit/graph.test.ts) check that.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as yaml from "js-yaml";
import { main, ProgramInputs } from "../../components/program";
import { script } from "../../components/remote-scripts";
import { edgeCaddyfile } from "../../stacks/edge";
import { DEFAULTS } from "../../components/config";
import { vrrpPriority } from "../../components/edge";
import { clusterStepState, clearRecorded, recorded, RecordedResource, settled, setupMocks, valueOf } from "./mocks";

const PRIVATE_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
const PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockKey me@laptop";
const ROOT_PEM = "-----BEGIN CERTIFICATE-----\nMIIBroot\n-----END CERTIFICATE-----";

setupMocks({
  state: (args) => {
    if (args.type === "digitalocean:index/loadBalancer:LoadBalancer") return { ip: "203.0.113.80" };
    if (args.name.endsWith("-edge-root")) return { stdout: ROOT_PEM };
    return clusterStepState(args);
  },
});

const REPO = path.join(__dirname, "..", "..");
const REMOTE_SCRIPT = "pulumi-nodejs:dynamic/swarmcloud:RemoteScript";

function engineConfig(stackFile: string): Record<string, string> {
  const doc = yaml.load(fs.readFileSync(path.join(REPO, stackFile), "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(
    Object.entries(doc.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
}

function inputsFor(stack: string, plain: Record<string, string>, secret: Record<string, string> = {}): ProgramInputs {
  return {
    stack,
    config: { ...engineConfig(`Pulumi.${stack}.yaml`), ...plain, ...secret },
    isSecret: (key) => key in secret,
    repoDir: REPO,
    previousOutput: async () => undefined,
  };
}

function named(type: string, name: string): RecordedResource {
  const found = recorded.filter((r) => r.type === type && r.name === name);
  if (found.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${found.length}`);
  return found[0]!;
}

const LOCAL_ADDRESS = (i: number) => `172.30.0.${11 + i}`;

describe("local, edge on without a domain: keepalived on the managers, Caddy's internal CA", () => {
  let outputs: Record<string, unknown>;
  const edge = { enabled: true, address: "172.30.0.200" };

  beforeAll(async () => {
    await settled();
    clearRecorded();
    outputs = await main(inputsFor("local", { "swarmcloud:edge": JSON.stringify(edge) }));
    await settled();
  });

  test("one keepalived step per manager, on that manager, naming no other holder", () => {
    const door = named("swarmcloud:edge:FrontDoor", "local-edge");
    const steps = recorded
      .filter((r) => r.type === REMOTE_SCRIPT && r.name.endsWith("-vrrp"))
      .sort((a, b) => a.name.localeCompare(b.name));
    expect(steps.map((s) => s.name)).toEqual([1, 2, 3].map((k) => `local-edge-manager-${k}-vrrp`));
    steps.forEach((step, i) => {
      expect(step.parent).toBe(door.urn);
      expect(step.inputs.connection.host).toBe(LOCAL_ADDRESS(i));
      expect(step.inputs.create).toBe(script("edge-keepalived"));
      expect(step.inputs.delete).toBe(script("edge-keepalived-delete"));
      expect(step.inputs.read).toBe(script("edge-keepalived-read"));
      expect(step.inputs.environment).toEqual({
        NODE_NAME: `manager-${i + 1}`,
        VIP: "172.30.0.200",
        ROUTER_ID: "51",
        PRIORITY: String(vrrpPriority(LOCAL_ADDRESS(i))),
        SRC_ADDR: LOCAL_ADDRESS(i),
        INTERFACE: "",
        CHECK_PORT: "80",
        CHECK_PATH: "/healthz/app",
      });
      // After the node's swarm membership, so that on removal keepalived lets the address go
      // before the member's delete drains the node and stops its Caddy.
      expect(step.dependencies).toContain(named(REMOTE_SCRIPT, `local-swarm-manager-${i + 1}-member`).urn);
    });
    // Each holder at a priority of its own: when the holder leaves, two backups never claim the address at once.
    expect(new Set(steps.map((s) => s.inputs.environment.PRIORITY)).size).toBe(steps.length);
  });

  test("a holder's VRRP priority comes from its own address, in keepalived's range, apart from its neighbours'", () => {
    const lan = Array.from({ length: 16 }, (_, k) => vrrpPriority(`192.168.1.${10 + k}`));
    for (const p of lan) expect(p >= 50 && p <= 249).toBe(true);
    // Any two of 16 addresses in a row at least 11 apart: 43 ms of skew between their claims.
    for (let a = 0; a < lan.length; a++)
      for (let b = a + 1; b < lan.length; b++) expect(Math.abs(lan[a]! - lan[b]!)).toBeGreaterThanOrEqual(11);
    // The same address, the same priority, whatever else the cluster holds; not an IPv4 address: 100.
    expect(vrrpPriority("192.168.1.10")).toBe(lan[0]);
    expect(vrrpPriority("fd00::1")).toBe(100);
  });

  test("the edge stack: deployed after Ghost's and Portainer's (their networks), the Caddyfile for the address", () => {
    const deploy = named(REMOTE_SCRIPT, "local-edge-caddy-deploy");
    expect(deploy.inputs.environment.STACK).toBe("edge");
    expect(deploy.dependencies).toEqual(
      expect.arrayContaining([
        named(REMOTE_SCRIPT, "local-ghost-deploy").urn,
        named(REMOTE_SCRIPT, "local-portainer-deploy").urn,
      ]),
    );
    const compose = yaml.load(deploy.inputs.environment.COMPOSE) as {
      services: { caddy: { environment: { CADDYFILE: string }; deploy: { placement: unknown } } };
    };
    expect(compose.services.caddy.environment.CADDYFILE).toBe(
      edgeCaddyfile(
        { ...DEFAULTS.edge, ...edge },
        {
          site: "172.30.0.200",
          dataPath: "/mnt/swarmcloud/edge",
          placement: "node.role==manager",
          ghost: { service: "ghost_ghost", port: 2368, network: "ghost_frontend" },
          portainer: { service: "portainer_portainer", port: 9443, network: "portainer_edge", https: true },
        },
      ),
    );
    expect(compose.services.caddy.deploy.placement).toEqual({ constraints: ["node.role==manager"] });
  });

  test("Ghost's url is the front door's; Portainer's server joins the edge network; the volume has the edge folder", () => {
    const ghost = yaml.load(named(REMOTE_SCRIPT, "local-ghost-deploy").inputs.environment.COMPOSE) as {
      services: { ghost: { environment: { url: string } } };
    };
    expect(ghost.services.ghost.environment.url).toBe("https://172.30.0.200");
    expect(named(REMOTE_SCRIPT, "local-ghost-setup").inputs.environment.URL).toBe("https://172.30.0.200");
    const portainer = yaml.load(named(REMOTE_SCRIPT, "local-portainer-deploy").inputs.environment.COMPOSE) as {
      services: { portainer: { networks: string[] } };
      networks: Record<string, unknown>;
    };
    expect(portainer.services.portainer.networks).toEqual(["agent_network", "edge"]);
    expect(portainer.networks.edge).toEqual({ driver: "overlay", attachable: false });
    const mount = named(REMOTE_SCRIPT, "local-gluster-manager-1-mount");
    expect(JSON.stringify(mount.inputs.environment)).toContain("edge");
  });

  test("the outputs: URLs through the front door, the root certificate to trust, the manager address kept", async () => {
    expect(await valueOf(outputs.ghostUrl as pulumi.Output<string>)).toBe("https://172.30.0.200");
    expect(await valueOf(outputs.ghostAdminUrl as pulumi.Output<string>)).toBe("https://172.30.0.200/ghost/");
    expect(await valueOf(outputs.portainerUrl as pulumi.Output<string>)).toBe("https://172.30.0.200:8443");
    expect(await valueOf(outputs.frontDoorUrl as pulumi.Output<string>)).toBe("https://172.30.0.200");
    expect(await valueOf(outputs.edgeRootCertificate as pulumi.Output<string>)).toBe(ROOT_PEM);
    expect(await valueOf(outputs.managerAddress as pulumi.Output<string>)).toBe(LOCAL_ADDRESS(0));
    const root = named(REMOTE_SCRIPT, "local-edge-root");
    expect(root.inputs.create).toBe(script("edge-root"));
    expect(root.inputs.environment).toEqual({
      NODE_NAME: "manager-1",
      CA_DIR: "/mnt/swarmcloud/edge/pki/authorities/local",
      CN: "swarmcloud front door root",
    });
    // Before Caddy: the edge stack's deploy waits for the root, which waits for the mounts.
    expect(named(REMOTE_SCRIPT, "local-edge-caddy-deploy").dependencies).toContain(root.urn);
  });

  test("every stack's deploy keeps the digests its services run (swarm.pinImages, on by default)", () => {
    expect(stackDeploys()).toEqual([
      ["local-backup-deploy", "1"],
      ["local-edge-caddy-deploy", "1"],
      ["local-ghost-deploy", "1"],
      ["local-portainer-deploy", "1"],
    ]);
  });
});

/** Each stack deploy step (stack-deploy.sh) by name, with its PIN_IMAGES. */
function stackDeploys(): [string, string][] {
  return recorded
    .filter((r) => r.type === REMOTE_SCRIPT && r.inputs.create === script("stack-deploy"))
    .map((r): [string, string] => [r.name, r.inputs.environment.PIN_IMAGES])
    .sort(([a], [b]) => (a < b ? -1 : 1));
}

describe("local, edge on, swarm.pinImages false: no stack's deploy pins", () => {
  beforeAll(async () => {
    await settled();
    clearRecorded();
    await main(
      inputsFor("local", {
        "swarmcloud:edge": JSON.stringify({ enabled: true, address: "172.30.0.200" }),
        "swarmcloud:swarm": JSON.stringify({ pinImages: false }),
      }),
    );
    await settled();
  });

  test("PIN_IMAGES 0 for the apps', the backup's and the edge's stacks", () => {
    expect(stackDeploys()).toEqual([
      ["local-backup-deploy", "0"],
      ["local-edge-caddy-deploy", "0"],
      ["local-ghost-deploy", "0"],
      ["local-portainer-deploy", "0"],
    ]);
  });
});

describe("pi (ssh), edge on with a domain and labelled edge nodes: ACME, no root output", () => {
  let outputs: Record<string, unknown>;

  beforeAll(async () => {
    await settled();
    clearRecorded();
    const nodes = JSON.parse(engineConfig("Pulumi.pi.yaml")["swarmcloud:nodes"]!) as {
      name: string;
      labels?: Record<string, string>;
    }[];
    for (const n of nodes.slice(1, 3)) n.labels = { ...n.labels, edge: "true" };
    outputs = await main(
      inputsFor(
        "pi",
        {
          "swarmcloud:nodes": JSON.stringify(nodes),
          "swarmcloud:edge": JSON.stringify({
            enabled: true,
            address: "192.168.1.250",
            interface: "eth0",
            holders: "labelled",
            domain: "blog.example.com",
          }),
        },
        { "swarmcloud:sshPrivateKey": PRIVATE_KEY },
      ),
    );
    await settled();
  });

  test("keepalived on the labelled nodes only, each from its own address on the interface given", () => {
    const steps = recorded
      .filter((r) => r.type === REMOTE_SCRIPT && r.name.endsWith("-vrrp"))
      .sort((a, b) => a.name.localeCompare(b.name));
    expect(steps.map((s) => [s.name, s.inputs.environment.SRC_ADDR, s.inputs.environment.PEERS])).toEqual([
      ["pi-edge-pinode02-vrrp", "192.168.1.102", undefined],
      ["pi-edge-pinode03-vrrp", "192.168.1.103", undefined],
    ]);
    for (const s of steps) expect(s.inputs.environment.INTERFACE).toBe("eth0");
  });

  test("Caddy on the labelled nodes, ACME for the domain; Ghost at https://<domain>; no root certificate step", async () => {
    const compose = named(REMOTE_SCRIPT, "pi-edge-caddy-deploy").inputs.environment.COMPOSE as string;
    expect(compose).toContain('"node.labels.edge==true"');
    expect(compose).toContain("blog.example.com {");
    expect(compose).not.toContain("tls internal");
    expect(recorded.filter((r) => r.name === "pi-edge-root")).toEqual([]);
    expect(outputs.edgeRootCertificate).toBeUndefined();
    expect(await valueOf(outputs.ghostUrl as pulumi.Output<string>)).toBe("https://blog.example.com");
    // The labels reach the nodes' swarm membership (placement).
    expect(named(REMOTE_SCRIPT, "pi-swarm-pinode02-member").inputs.environment.LABELS).toMatch(/edge=true/);
  });
});

describe("do (digitalocean), edge on: a load balancer is the address, no keepalived, 80/443 the only ports for the world", () => {
  let outputs: Record<string, unknown>;

  beforeAll(async () => {
    await settled();
    clearRecorded();
    outputs = await main(
      inputsFor(
        "do",
        { "swarmcloud:sshPublicKey": PUBLIC_KEY, "swarmcloud:edge": JSON.stringify({ enabled: true }) },
        { "swarmcloud:sshPrivateKey": PRIVATE_KEY, "digitalocean:token": "dop_v1_mock" },
      ),
    );
    await settled();
  });

  test("the load balancer: a child of the droplets' component, 80 and 443 to the managers, Caddy's health route", () => {
    const lb = named("digitalocean:index/loadBalancer:LoadBalancer", "do-front-door");
    expect(lb.parent).toBe(named("swarmcloud:nodes:DigitalOceanNodes", "do").urn);
    expect(lb.inputs.region).toBe("ams3");
    expect(lb.inputs.forwardingRules).toEqual([
      { entryProtocol: "tcp", entryPort: 80, targetProtocol: "tcp", targetPort: 80 },
      { entryProtocol: "tcp", entryPort: 443, targetProtocol: "tcp", targetPort: 443 },
    ]);
    expect(lb.inputs.healthcheck).toMatchObject({ protocol: "http", port: 80, path: "/healthz" });
    const managers = ["manager-1", "manager-2", "manager-3"].map(
      (n) => named("digitalocean:index/droplet:Droplet", `do-${n}`).urn,
    );
    expect(lb.dependencies).toEqual(expect.arrayContaining(managers));
    expect(lb.dependencies).not.toContain(named("digitalocean:index/droplet:Droplet", "do-worker-1").urn);
    expect(recorded.filter((r) => r.name.endsWith("-vrrp"))).toEqual([]);
  });

  test("the firewall: 80 and 443 to the world; Ghost's own port, Portainer's and the edge's Portainer port to admins only", () => {
    const rules = named("digitalocean:index/firewall:Firewall", "do-firewall").inputs.inboundRules as {
      portRange?: string;
      sourceAddresses: string[];
    }[];
    const toWorld = rules.filter((r) => r.sourceAddresses.includes("0.0.0.0/0")).map((r) => r.portRange);
    expect(toWorld).toEqual(["80", "443"]);
    const toAdmins = rules.filter((r) => r.sourceAddresses.includes("203.0.113.7/32")).map((r) => r.portRange);
    expect(toAdmins).toEqual(["22", "2368", "8443", "9443"]);
  });

  test("Ghost's url and the outputs are the load balancer's address", async () => {
    expect(await valueOf(outputs.ghostUrl as pulumi.Output<string>)).toBe("https://203.0.113.80");
    expect(await valueOf(outputs.frontDoorUrl as pulumi.Output<string>)).toBe("https://203.0.113.80");
    // The load balancer forwards 80 and 443 only: Portainer stays at its own port, for adminCidrs.
    expect(await valueOf(outputs.portainerUrl as pulumi.Output<string>)).toMatch(/^https:\/\/[^/]+:9443$/);
    expect(await valueOf(outputs.portainerUrl as pulumi.Output<string>)).not.toContain("203.0.113.80");
    const compose = named(REMOTE_SCRIPT, "do-edge-caddy-deploy").inputs.environment.COMPOSE as string;
    expect(compose).toContain("default_sni 203.0.113.80");
  });
});
