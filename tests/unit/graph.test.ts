/**
 * The whole cluster graph of the local environment (LocalNodes -> DockerHost -> Swarm ->
 * GlusterVolume) under Pulumi mocks, as one snapshot: every resource's type, name, parent,
 * dependencies, options and a digest of its inputs. A refactoring that must not change what
 * `pulumi up` does (names, parents, dependsOn, inputs, options) must leave this snapshot alone.
 * Also snapshots parseConfig's result for a full config and a broken one, problems in order.
 */
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "crypto";
import { brickNodes, parseConfig } from "../../components/config";
import { GlusterVolume } from "../../components/gluster";
import { DockerHost } from "../../components/host";
import { LocalNodes } from "../../components/nodes/local";
import { sshClusterNodes } from "../../components/nodes/ssh";
import { SwarmStack } from "../../components/stack";
import { Swarm } from "../../components/swarm";
import { recorded, settled, setupMocks } from "./mocks";

setupMocks({
  state: (args) => {
    if (!args.type.includes("RemoteScript")) return undefined;
    if (args.name.endsWith("-bootstrap")) return { stdout: "CLUSTER1 NODE1 SWMTKN-worker SWMTKN-manager" };
    if (args.name.endsWith("-join")) return { stdout: `ID-${args.name}` };
    return { stdout: "" };
  },
});

/** JSON with object keys sorted at every depth, so only values count, not the order keys were written in. */
function canonical(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v && typeof v === "object") {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return JSON.stringify(sort(value));
}

const digest = (value: unknown) => createHash("sha256").update(canonical(value)).digest("hex").slice(0, 16);

test("the local cluster graph: names, types, parents, dependencies, options and inputs", async () => {
  const { config, errors } = parseConfig(
    { environment: "local", nodes: [], gluster: { replica: 3 }, managers: 3, workers: 2 },
    { sshPrivateKey: false },
  );
  expect(errors).toEqual([]);
  const source = new LocalNodes("g", { nodes: config.nodes, settings: config.local, contextDir: "/repo/node-image" });
  const nodes = source.nodes;
  const hosts = Object.fromEntries(nodes.map((n) => [n.name, new DockerHost(`g-${n.name}`, { node: n, nodes }).ready]));
  new Swarm("g-swarm", { nodes, hostReady: hosts, settings: config.swarm });
  const bricks = brickNodes(config).map((b) => nodes.find((n) => n.name === b.name)!);
  new GlusterVolume("g-gluster", {
    nodes,
    bricks,
    hostReady: hosts,
    settings: config.gluster,
    appDirs: ["ghost/content", "portainer"],
  });
  await settled();

  const graph = [...recorded]
    .sort((a, b) => a.urn.localeCompare(b.urn))
    .map((r) => ({
      urn: r.urn,
      parent: r.parent,
      dependencies: [...r.dependencies].sort(),
      options: r.options,
      inputs: digest(r.inputs),
    }));
  expect(graph).toHaveLength(recorded.length);
  expect(graph).toMatchSnapshot();
});

test("parseConfig: a full config and a broken one, every problem in order", () => {
  const full = parseConfig(
    {
      environment: "ssh",
      nodes: [
        { name: "m1", role: "manager", address: "10.0.0.1", labels: { a: "b" } },
        { name: "m2", role: "manager", address: "pi-2.lan", privateAddress: "10.0.0.2", user: "pi", port: 2222 },
        { name: "w1", role: "worker", address: "10.0.0.3", availability: "drain" },
      ],
      sshUser: "pi",
      local: { subnet: "10.5.0.0/24" },
      vagrant: { memory: 2048 },
      digitalocean: { adminCidrs: ["203.0.113.7/32"] },
      swarm: { defaultAddrPool: ["10.11.0.0/16"] },
      gluster: { replica: 3, options: { "x.y": "z" } },
      ghost: { replicas: 2, url: "https://blog.example.com" },
      portainer: { httpPort: 9000 },
      deployTimeout: 120,
    },
    { sshPrivateKey: true },
  );
  const broken = parseConfig(
    {
      environment: "ssh",
      bogus: 1,
      nodes: [{ name: "Bad Name", address: "x y" }, { role: "manager", address: "pi.lan" }, 7],
      local: { subnet: "nope", extra: 1 },
      vagrant: { networkPrefix: "1.2", memory: 1 },
      digitalocean: { vpcCidr: "v", adminCidrs: ["a"] },
      swarm: { defaultAddrPool: ["p"], resolveImage: "sometimes" },
      gluster: { volume: "a b", brickPath: "/", mountPath: "rel", replica: 0, options: { "auth.allow": "*" } },
      ghost: { url: "ftp://x", dbReplicas: 2, publishMode: "udp", owner: { email: "nobody", title: "x" } },
      portainer: { httpPort: 0, endpointMode: "x" },
      deployTimeout: 1,
      sshPort: 70000,
    },
    { sshPrivateKey: false },
  );
  expect({ full, broken }).toMatchSnapshot();
});

test("components refuse bad args with a pulumi.ResourceError that names the component", () => {
  const { config } = parseConfig({ environment: "local" }, { sshPrivateKey: false });
  const [worker] = sshClusterNodes({
    nodes: [{ name: "w1", role: "worker", address: "10.0.0.9", labels: {}, availability: "active" }],
    privateKey: "KEY",
  });
  const attempts: [() => unknown, RegExp][] = [
    [
      () => new Swarm("bad-swarm", { nodes: [worker!], hostReady: {}, settings: config.swarm }),
      /a swarm needs at least one manager/,
    ],
    [
      () => new GlusterVolume("bad-gluster", { nodes: [worker!], bricks: [], hostReady: {}, settings: config.gluster }),
      /a Gluster volume needs at least one brick node/,
    ],
    [() => new SwarmStack("bad-stack", { manager: worker!, stackName: "Bad", compose: "" }), /stack name "Bad"/],
  ];
  for (const [attempt, message] of attempts) {
    let thrown: unknown;
    try {
      attempt();
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(pulumi.ResourceError);
    expect((thrown as Error).message).toMatch(message);
  }
});
