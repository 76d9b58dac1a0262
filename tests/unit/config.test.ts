/**
 * Unit tests of the pure config parser. Every bad input asserts the message names the key
 * (`swarmcloud:<key> = <value>`), shows the bad value and says the fix, so removing or
 * weakening a check fails a test here.
 */
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as path from "path";
import {
  brickNodes,
  isCidr,
  isHost,
  isIPv4,
  parseConfig,
  quorumTolerance,
  type ParseResult,
  type RawConfig,
  volumeRenameProblem,
} from "../../components/config";

const NO_KEY = { sshPrivateKey: false };
const WITH_KEY = { sshPrivateKey: true };

function parse(raw: RawConfig, secrets = NO_KEY): ParseResult {
  return parseConfig(raw, secrets);
}

/** Four Raspberry Pis: one manager and three workers, reached on the LAN. */
function piNodes(): Record<string, unknown>[] {
  return [
    { name: "pi-1", role: "manager", address: "192.168.1.21" },
    { name: "pi-2", role: "worker", address: "192.168.1.22" },
    { name: "pi-3", role: "worker", address: "192.168.1.23" },
    { name: "pi-4", role: "worker", address: "192.168.1.24" },
  ];
}

/** A valid ssh config (with a key) that a test changes in one place. */
function sshConfig(nodes: Record<string, unknown>[] = piNodes()): RawConfig {
  return { environment: "ssh", sshUser: "pi", nodes };
}

/** The one message that starts with `prefix`; fails with every message listed when there is none. */
function find(messages: string[], prefix: string): string {
  const hits = messages.filter((m) => m.startsWith(prefix));
  if (hits.length !== 1) {
    throw new Error(
      `expected exactly one message starting with ${JSON.stringify(prefix)}, got:\n${messages.join("\n")}`,
    );
  }
  return hits[0]!;
}

describe("parseConfig defaults", () => {
  test("{} is a local cluster of 3 managers and 2 workers with replica 3 and nothing to report", () => {
    const { config, errors, warnings } = parse({});
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
    expect(config.environment).toBe("local");
    expect(config.nodes.map((n) => [n.name, n.role])).toEqual([
      ["manager-1", "manager"],
      ["manager-2", "manager"],
      ["manager-3", "manager"],
      ["worker-1", "worker"],
      ["worker-2", "worker"],
    ]);
    expect(config.nodes.every((n) => n.availability === "active" && Object.keys(n.labels).length === 0)).toBe(true);
    expect(config.gluster.replica).toBe(3);
    expect(config.gluster.arbiter).toBe(false);
    expect(config.ghost.dbReplicas).toBe(1);
    // Ghost updates start-first, its database stop-first (README, "Updates without downtime").
    expect([config.ghost.updateOrder, config.ghost.dbUpdateOrder]).toEqual(["start-first", "stop-first"]);
    expect(parse({ ghost: { updateOrder: "stop-first" } })).toMatchObject({
      errors: [],
      config: { ghost: { updateOrder: "stop-first", dbUpdateOrder: "stop-first" } },
    });
    expect(config.sshUser).toBe("root");
    expect(config.sshPort).toBe(22);
    expect(config.hasSshPrivateKey).toBe(false);
    expect(brickNodes(config).map((n) => n.name)).toEqual(["manager-1", "manager-2", "manager-3"]);
  });

  test("Gluster options: a short ping-timeout by default, the user's values added and winning", () => {
    expect(parse({}).config.gluster.options).toEqual({ "network.ping-timeout": "10" });
    const { config, errors } = parse({
      gluster: { options: { "network.ping-timeout": 42, "performance.cache-size": "64MB" } },
    });
    expect(errors).toEqual([]);
    expect(config.gluster.options).toEqual({ "network.ping-timeout": "42", "performance.cache-size": "64MB" });
  });

  test("the default SSH user follows the environment", () => {
    expect(parse({ environment: "vagrant" }).config.sshUser).toBe("vagrant");
    expect(parse({ environment: "digitalocean" }).config.sshUser).toBe("root");
  });

  test("numbers given as strings (as `pulumi config set` stores them) are accepted", () => {
    const { config, errors } = parse({ managers: "5", workers: "0", ghost: { port: "8080" } });
    expect(errors).toEqual([]);
    expect(config.nodes.filter((n) => n.role === "manager")).toHaveLength(5);
    expect(config.nodes.filter((n) => n.role === "worker")).toHaveLength(0);
    expect(config.ghost.port).toBe(8080);
  });
});

describe("parseConfig ssh environment", () => {
  test("4 Raspberry Pis with a key (and the overlay's encryption chosen) parse without errors or warnings", () => {
    const { config, errors, warnings } = parse({ ...sshConfig(), swarm: { encryptOverlay: false } }, WITH_KEY);
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
    expect(config.environment).toBe("ssh");
    expect(config.sshUser).toBe("pi");
    expect(config.hasSshPrivateKey).toBe(true);
    expect(config.nodes.map((n) => [n.name, n.role, n.address])).toEqual([
      ["pi-1", "manager", "192.168.1.21"],
      ["pi-2", "worker", "192.168.1.22"],
      ["pi-3", "worker", "192.168.1.23"],
      ["pi-4", "worker", "192.168.1.24"],
    ]);
    expect(brickNodes(config).map((n) => n.name)).toEqual(["pi-1", "pi-2", "pi-3"]);
  });

  test("a hostname address is fine when privateAddress gives the cluster an IPv4 address", () => {
    const nodes = piNodes();
    nodes[0] = { name: "pi-1", role: "manager", address: "pi-1.lan", privateAddress: "192.168.1.21", port: 2222 };
    const { config, errors } = parse(sshConfig(nodes), WITH_KEY);
    expect(errors).toEqual([]);
    expect(config.nodes[0]).toMatchObject({ address: "pi-1.lan", privateAddress: "192.168.1.21", port: 2222 });
  });

  test("a node's hostKey is kept as `<type> <base64>`, from a .pub or an ssh-keyscan line", () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZrKH1OAtkn2SogC3YLDkb/+iSABClMOmOoH5ma6dxE";
    const nodes = piNodes();
    nodes[0] = { ...nodes[0], hostKey: `${key} root@pi-1` };
    nodes[1] = { ...nodes[1], hostKey: `192.168.1.22 ${key}` };
    const { config, errors } = parse(sshConfig(nodes), WITH_KEY);
    expect(errors).toEqual([]);
    expect(config.nodes.map((n) => n.hostKey)).toEqual([key, key, undefined, undefined]);
  });

  test("a hostKey that is no OpenSSH public key line is an error naming the node, the key and the fix", () => {
    const nodes = piNodes();
    nodes[1] = { ...nodes[1], hostKey: "SHA256:bDlA6dlvinXc25qoWwkl4JfEKM55S0jrPnY3B2TCxH8" };
    nodes[2] = { ...nodes[2], hostKey: "ssh-ed25519 AAAA" };
    const { errors } = parse(sshConfig(nodes), WITH_KEY);
    expect(errors).toHaveLength(2);
    expect(find(errors, 'swarmcloud:nodes[1].hostKey = "SHA256:bDlA6dlvinXc25qoWwkl4JfEKM55S0jrPnY3B2TCxH8": ')).toBe(
      'swarmcloud:nodes[1].hostKey = "SHA256:bDlA6dlvinXc25qoWwkl4JfEKM55S0jrPnY3B2TCxH8": node pi-2: ' +
        "is not an OpenSSH public key line: expected `<type> <base64>` with type ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa; " +
        "use the line `ssh-keyscan -t ed25519 192.168.1.22` prints (without the address), or /etc/ssh/ssh_host_ed25519_key.pub on the node, " +
        "or remove hostKey to trust the key seen first",
    );
    expect(find(errors, 'swarmcloud:nodes[2].hostKey = "ssh-ed25519 AAAA": ')).toContain(
      "node pi-3: the key data is no SSH key, not ssh-ed25519",
    );
  });

  test("a hostKey in an environment that makes its nodes' keys is an error: the program pins them itself", () => {
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZrKH1OAtkn2SogC3YLDkb/+iSABClMOmOoH5ma6dxE";
    const nodes = [{ name: "manager-1", role: "manager", hostKey: key }];
    for (const environment of ["local", "digitalocean"]) {
      const raw = {
        environment,
        nodes,
        sshPublicKey: key,
        gluster: { replica: 1 },
        digitalocean: { adminCidrs: ["203.0.113.7/32"] },
      };
      const { errors } = parseConfig(raw, { ...WITH_KEY, digitaloceanToken: true });
      expect(errors).toHaveLength(1);
      expect(find(errors, "swarmcloud:nodes[0].hostKey = ")).toMatch(
        `: node manager-1: the ${environment} environment makes each node's host key itself, gives it to the node and pins it; remove hostKey`,
      );
    }
    // Vagrant VMs make their own keys: a pin is the user's to set.
    expect(parse({ environment: "vagrant", nodes }).config.nodes[0]!.hostKey).toBe(key);
  });

  test("without a private key it is an error that shows the command to set one", () => {
    const { errors } = parse(sshConfig(), NO_KEY);
    expect(errors).toHaveLength(1);
    const e = find(errors, "swarmcloud:sshPrivateKey = (not set): ");
    expect(e).toContain("the ssh environment needs a private key");
    expect(e).toContain("pulumi config set --secret swarmcloud:sshPrivateKey");
  });

  test.each([
    ["no node list", { environment: "ssh" }],
    ["an empty node list", sshConfig([])],
  ])("%s is an error that shows the shape of one", (_title, raw) => {
    const { errors } = parse(raw, WITH_KEY);
    expect(errors).toEqual([
      "swarmcloud:nodes = (not set): the ssh environment needs a list of hosts: [{name, role, address}]",
    ]);
  });

  test("a node list that is not a list is an error", () => {
    expect(parse({ ...sshConfig(), nodes: "pi-1" }, WITH_KEY).errors).toEqual([
      'swarmcloud:nodes = "pi-1": must be a list of nodes: [{name, role, address}]',
    ]);
  });

  test("a node without an address is an error", () => {
    const nodes = piNodes();
    delete nodes[1]!.address;
    const e = find(parse(sshConfig(nodes), WITH_KEY).errors, "swarmcloud:nodes[1].address = (not set): ");
    expect(e).toContain("needs the address SSH reaches this host on");
  });

  test("a hostname address without privateAddress asks for the IPv4 address", () => {
    const nodes = piNodes();
    nodes[2] = { name: "pi-3", role: "worker", address: "pi-3.lan" };
    const { errors } = parse(sshConfig(nodes), WITH_KEY);
    expect(errors).toHaveLength(1);
    expect(find(errors, "swarmcloud:nodes[2].privateAddress = (not set): ")).toContain(
      "address pi-3.lan is a name; set privateAddress to the IPv4 address the cluster talks on",
    );
  });

  // Known bug in components/config.ts (see report): a malformed IP such as 10.0.0.256 without a
  // privateAddress also gets "address 10.0.0.256 is a name; set privateAddress ...", which is
  // wrong advice. Turn this into test() once that check only fires for a valid hostname.
  test("a malformed IP address yields one error, not a second one calling it a name", () => {
    const nodes = piNodes();
    nodes[0] = { name: "pi-1", role: "manager", address: "10.0.0.256" };
    expect(parse(sshConfig(nodes), WITH_KEY).errors).toEqual([
      'swarmcloud:nodes[0].address = "10.0.0.256": must be an IPv4 address (e.g. 192.168.1.21) or a hostname',
    ]);
  });
});

type Row = [title: string, raw: RawConfig, prefix: string, fix: string];

const sshNode = (address: unknown, extra: Record<string, unknown> = {}): RawConfig => {
  const nodes = piNodes();
  nodes[0] = { name: "pi-1", role: "manager", address, privateAddress: "192.168.1.21", ...extra };
  return sshConfig(nodes);
};

/** Each row changes one thing in an otherwise valid config and must produce exactly one error. */
const ERRORS: Row[] = [
  // environment
  [
    "unknown environment",
    { environment: "aws" },
    'swarmcloud:environment = "aws": ',
    "must be one of local, ssh, vagrant, digitalocean",
  ],
  // vagrant
  [
    "unknown Vagrant provider",
    { environment: "vagrant", vagrant: { provider: "vmware_desktop" } },
    'swarmcloud:vagrant.provider = "vmware_desktop": ',
    "must be one of virtualbox, libvirt",
  ],
  [
    "unknown libvirt driver",
    { environment: "vagrant", vagrant: { provider: "libvirt", driver: "xen" } },
    'swarmcloud:vagrant.driver = "xen": ',
    "must be one of kvm, qemu",
  ],
  // manager count
  [
    "zero managers",
    { managers: 0, workers: 3 },
    "swarmcloud:managers = 0: ",
    "a swarm needs at least one manager; use 1, 3 or 5",
  ],
  ["negative managers", { managers: -1 }, "swarmcloud:managers = -1: ", "must be 0 or more"],
  ["non-integer workers", { workers: 1.5 }, "swarmcloud:workers = 1.5: ", "must be a whole number (0 or more)"],
  [
    "non-numeric managers",
    { managers: "three" },
    'swarmcloud:managers = "three": ',
    "must be a whole number (0 or more)",
  ],
  // node names
  [
    "duplicate node names",
    {
      nodes: [
        { name: "node-1", role: "manager" },
        { name: "node-2", role: "worker" },
        { name: "node-1", role: "worker" },
      ],
    },
    'swarmcloud:nodes[2].name = "node-1": ',
    "duplicates nodes[0].name; every node needs its own name",
  ],
  [
    "a node name that is not a hostname label",
    { nodes: [{ name: "Manager_1", role: "manager" }], gluster: { replica: 1 } },
    'swarmcloud:nodes[0].name = "Manager_1": ',
    "must be a lowercase hostname label",
  ],
  [
    "two nodes on one address",
    sshConfig([
      { name: "pi-1", role: "manager", address: "192.168.1.21" },
      { name: "pi-2", role: "worker", address: "192.168.1.22" },
      { name: "pi-3", role: "worker", address: "192.168.1.21" },
    ]),
    'swarmcloud:nodes = "192.168.1.21": ',
    "nodes pi-1 and pi-3 share the address 192.168.1.21; give each its own",
  ],
  // addresses
  ...["10.0.0.256", "1.2.3", "1.2.3.4.5", "-bad-.example", "bad_host.lan", "a..b"].map((address): Row => [
    `malformed address ${address}`,
    sshNode(address),
    `swarmcloud:nodes[0].address = ${JSON.stringify(address)}: `,
    "must be an IPv4 address (e.g. 192.168.1.21) or a hostname",
  ]),
  ...["1.2.3", "10.0.0.256", "pi-1.lan"].map((privateAddress): Row => [
    `privateAddress ${privateAddress}`,
    sshNode("192.168.1.21", { privateAddress }),
    `swarmcloud:nodes[0].privateAddress = ${JSON.stringify(privateAddress)}: `,
    "must be an IPv4 address: swarm's --advertise-addr takes an address, not a name",
  ]),
  // ports
  ...[0, 70000, -1, 80.5, "abc"].map((port): Row => [
    `ghost.port ${JSON.stringify(port)}`,
    { ghost: { port } },
    `swarmcloud:ghost.port = ${JSON.stringify(port)}: `,
    "must be a TCP/UDP port between 1 and 65535",
  ]),
  [
    "portainer.httpsPort 0",
    { portainer: { httpsPort: 0 } },
    "swarmcloud:portainer.httpsPort = 0: ",
    "must be a TCP/UDP port between 1 and 65535",
  ],
  ["sshPort 70000", { sshPort: 70000 }, "swarmcloud:sshPort = 70000: ", "must be a TCP/UDP port between 1 and 65535"],
  [
    "ghost and portainer on one published port",
    { ghost: { port: 9443 } },
    "swarmcloud:portainer.httpsPort = 9443: ",
    "port 9443 is already taken by ghost.port; pick another port",
  ],
  [
    "portainer httpPort on the agent port",
    { portainer: { httpPort: 9001 } },
    "swarmcloud:portainer agent = 9001: ",
    "port 9001 is already taken by portainer.httpPort; pick another port",
  ],
  [
    "ghost on the swarm management port",
    { ghost: { port: 2377 } },
    "swarmcloud:ghost.port = 2377: ",
    "port 2377 is already taken by swarm management (2377); pick another port",
  ],
  [
    "local host ports collide",
    { local: { ghostHostPort: 8080, portainerHostPort: 8080 } },
    "swarmcloud:local.portainerHostPort = 8080: ",
    "is also local.ghostHostPort; pick another host port",
  ],
  // gluster
  [
    "replica larger than the nodes",
    { managers: 1, workers: 1 },
    "swarmcloud:gluster.replica = 3: ",
    "needs 3 nodes that hold bricks but only 2 do; lower the replica or add nodes",
  ],
  [
    "arbiter without replica 3",
    { gluster: { replica: 2, arbiter: true } },
    "swarmcloud:gluster.arbiter = true: ",
    "an arbiter volume is replica 3 (two data bricks + one arbiter); set gluster.replica: 3",
  ],
  [
    "a brick node that does not exist",
    { gluster: { brickNodes: ["manager-1", "manager-2", "manager-9"] } },
    'swarmcloud:gluster.brickNodes[2] = "manager-9": ',
    "is not a node name; nodes are: manager-1, manager-2, manager-3, worker-1, worker-2",
  ],
  [
    "more brick nodes than the replica",
    { gluster: { replica: 2, brickNodes: ["manager-1", "manager-2", "manager-3"] } },
    'swarmcloud:gluster.brickNodes = ["manager-1","manager-2","manager-3"]: ',
    "lists 3 nodes but gluster.replica is 2: the volume keeps one copy on each brick node, " +
      "so list exactly 2 nodes or set gluster.replica to 3",
  ],
  [
    "a non-absolute brick path",
    { gluster: { brickPath: "srv/brick" } },
    'swarmcloud:gluster.brickPath = "srv/brick": ',
    "must be an absolute path below /",
  ],
  // database
  ...[0, 2, 3].map((dbReplicas): Row => [
    `ghost.dbReplicas ${dbReplicas}`,
    { ghost: { dbReplicas } },
    `swarmcloud:ghost.dbReplicas = ${dbReplicas}: `,
    "must be 1: two MySQL servers on the same shared files corrupt each other; remove the setting",
  ]),
  // updates
  [
    "the database asked to update start-first",
    { ghost: { dbUpdateOrder: "start-first" } },
    'swarmcloud:ghost.dbUpdateOrder = "start-first": ',
    "must be stop-first: a start-first update runs the new database beside the old one on the same data folder, " +
      "which corrupts it; remove the setting (Ghost itself updates start-first: ghost.updateOrder)",
  ],
  [
    "Ghost start-first in host mode with a replica on every node (no node to start the new task on)",
    {
      managers: 1,
      workers: 1,
      gluster: { replica: 2 },
      ghost: { publishMode: "host", endpointMode: "dnsrr", replicas: 2 },
    },
    'swarmcloud:ghost.updateOrder = "start-first": ',
    "with ghost.publishMode host every Ghost task holds port 2368 on its node, so a start-first update needs a node " +
      "without one, and 2 replica(s) on 2 active node(s) leave none; set ghost.updateOrder: stop-first, lower ghost.replicas, or add a node",
  ],
  [
    "an update order that is not one",
    { ghost: { updateOrder: "rolling" } },
    'swarmcloud:ghost.updateOrder = "rolling": ',
    "must be one of stop-first, start-first",
  ],
  // unknown keys
  [
    "a typo in a gluster key",
    { gluster: { replcia: 2 } },
    "swarmcloud:gluster.replcia = 2: ",
    "unknown setting; known settings here: volume, replica, arbiter,",
  ],
  [
    "a typo in a top-level key",
    { manager: 3 },
    "swarmcloud:manager = 3: ",
    "unknown setting; known settings here: environment, managers,",
  ],
  [
    "a typo in a node key",
    sshNode("192.168.1.21", { adress: "192.168.1.99" }),
    'swarmcloud:nodes[0].adress = "192.168.1.99": ',
    "unknown setting; known settings here: name, role, address,",
  ],
  // CIDRs and other shapes
  [
    "a bad local subnet",
    { local: { subnet: "172.30.0.0/33" } },
    'swarmcloud:local.subnet = "172.30.0.0/33": ',
    "must be an IPv4 CIDR",
  ],
  [
    "a bad admin CIDR",
    { digitalocean: { adminCidrs: ["203.0.113.7"] } },
    'swarmcloud:digitalocean.adminCidrs[0] = "203.0.113.7": ',
    "must be an IPv4 CIDR",
  ],
  [
    "a bad ghost url",
    { ghost: { url: "blog.example.com" } },
    'swarmcloud:ghost.url = "blog.example.com": ',
    "must be an http:// or https:// URL",
  ],
  [
    "a non-boolean",
    { swarm: { encryptOverlay: "yes" } },
    'swarmcloud:swarm.encryptOverlay = "yes": ',
    "must be true or false",
  ],
  [
    "a section that is not an object",
    { gluster: "replica 3" },
    'swarmcloud:gluster = "replica 3": ',
    "must be an object (a map of settings)",
  ],
];

describe("parseConfig errors", () => {
  test.each(ERRORS)("%s", (_title, raw, prefix, fix) => {
    const { errors } = parse(raw, WITH_KEY);
    const e = find(errors, prefix);
    expect(e.slice(prefix.length)).toContain(fix);
    // Each row changes exactly one thing, so exactly one problem is reported.
    expect(errors).toEqual([e]);
  });

  test("all problems are reported at once", () => {
    const { errors } = parse({ environment: "aws", ghost: { dbReplicas: 2 }, gluster: { replcia: 3 } });
    expect(errors).toHaveLength(3);
    find(errors, 'swarmcloud:environment = "aws": ');
    find(errors, "swarmcloud:ghost.dbReplicas = 2: ");
    find(errors, "swarmcloud:gluster.replcia = 3: ");
  });

  test("Ghost start-first in host mode needs a node without a Ghost task: fewer replicas than active nodes, or stop-first", () => {
    const host = { publishMode: "host", endpointMode: "dnsrr" };
    const two = { managers: 1, workers: 1, gluster: { replica: 2 } };
    expect(parse({ ...two, ghost: { ...host, replicas: 1 } }, WITH_KEY).errors).toEqual([]);
    expect(parse({ ...two, ghost: { ...host, replicas: 2, updateOrder: "stop-first" } }, WITH_KEY).errors).toEqual([]);
    // Through the ingress mesh no task holds a port of its node.
    expect(parse({ ...two, ghost: { replicas: 2 } }, WITH_KEY).errors).toEqual([]);
    // A drained node takes no new task.
    const drained = {
      nodes: [
        { name: "manager-1", role: "manager", address: "10.0.0.11" },
        { name: "worker-1", role: "worker", address: "10.0.0.31" },
        { name: "worker-2", role: "worker", address: "10.0.0.32", availability: "drain" },
      ],
      environment: "ssh",
    };
    expect(
      find(parse({ ...drained, ghost: { ...host, replicas: 2 } }, WITH_KEY).errors, "swarmcloud:ghost.updateOrder"),
    ).toContain("2 replica(s) on 2 active node(s) leave none");
  });

  test("a replica larger than the listed brick nodes counts only those nodes", () => {
    const { errors } = parse({ gluster: { replica: 3, brickNodes: ["manager-1", "worker-1"] } });
    expect(find(errors, "swarmcloud:gluster.replica = 3: ")).toContain("needs 3 nodes that hold bricks but only 2 do");
  });

  test("parseConfig never throws, whatever it is given", () => {
    const junk: RawConfig = {
      nodes: [null, 7, "x", [1]],
      ghost: [],
      portainer: 5,
      managers: {},
      gluster: { options: [] },
    };
    expect(() => parse(junk)).not.toThrow();
    expect(parse(junk).errors.length).toBeGreaterThanOrEqual(7);
  });

  // Known bug in components/config.ts (see report): with no nodes at all the "at least one
  // manager" check is skipped, so this config passes with no error. Turn into test() once fixed.
  test("zero managers and zero workers is an error", () => {
    find(parse({ managers: 0, workers: 0 }).errors, "swarmcloud:managers = 0: ");
  });
});

describe("parseConfig warnings", () => {
  describe("an unencrypted overlay on a network others share", () => {
    const vagrant = { environment: "vagrant" };
    test.each([
      ["ssh", sshConfig()],
      ["vagrant", vagrant],
      ["ssh with other swarm settings", { ...sshConfig(), swarm: { resolveImage: "never" } }],
      ["vagrant with encryptOverlay: null", { ...vagrant, swarm: { encryptOverlay: null } }],
    ])("%s: one warning naming the key, the risk, the fix and the lab", (_, raw) => {
      const { errors, warnings } = parse(raw, WITH_KEY);
      expect(errors).toEqual([]);
      const w = find(warnings, "swarmcloud:swarm.encryptOverlay: not set: ");
      expect(warnings).toEqual([w]);
      expect(w).toContain("is not encrypted");
      expect(w).toContain("swarm.encryptOverlay: true");
      expect(w).toContain("pulumi config set --path swarmcloud:swarm.encryptOverlay true");
      expect(w).toContain("lab kernel has none");
    });

    test.each([
      ["ssh, off", { ...sshConfig(), swarm: { encryptOverlay: false } }],
      ["ssh, on", { ...sshConfig(), swarm: { encryptOverlay: true } }],
      ["vagrant, off as the CLI stores it", { ...vagrant, swarm: { encryptOverlay: "false" } }],
      ["local", {}],
      ["digitalocean", { environment: "digitalocean", digitalocean: { adminCidrs: ["203.0.113.7/32"] } }],
    ])("%s: no warning", (_, raw) => {
      expect(parse(raw, WITH_KEY).warnings).toEqual([]);
    });

    test("the value Pulumi.yaml's default hands in is no choice: the default declares no encryptOverlay", () => {
      const declared = yaml.load(fs.readFileSync(path.join(__dirname, "../../Pulumi.yaml"), "utf8")) as {
        config: Record<string, { default?: Record<string, unknown> }>;
      };
      const swarm = declared.config["swarmcloud:swarm"]?.default;
      expect(swarm).toBeDefined();
      const { warnings } = parse({ ...sshConfig(), swarm }, WITH_KEY);
      expect(warnings).toHaveLength(1);
    });
  });

  test.each([
    [2, 0, 1, 3],
    [4, 1, 3, 5],
    [6, 2, 5, 7],
  ])("%i managers warn and explain quorum", (managers, tolerated, lower, higher) => {
    const { errors, warnings } = parse({ managers });
    expect(errors).toEqual([]);
    expect(warnings).toEqual([
      `swarmcloud:managers: ${managers} managers tolerate the loss of ${tolerated} ` +
        `(a swarm of N managers survives (N-1)/2 losses, so ${managers} is no safer than ${lower}); ` +
        `use an odd count such as ${higher} or ${lower}`,
    ]);
  });

  test.each([1, 3, 5, 7])("%i managers do not warn", (managers) => {
    expect(parse({ managers }).warnings).toEqual([]);
  });

  test("more than 7 managers warn about Raft write cost", () => {
    const w = find(parse({ managers: 9 }).warnings, "swarmcloud:managers: ");
    expect(w).toContain("9 managers slow every Raft write; Docker recommends at most 7");
  });

  test("replica 2 warns about split-brain and says the fix", () => {
    const { errors, warnings } = parse({ gluster: { replica: 2 } });
    expect(errors).toEqual([]);
    expect(warnings).toEqual([
      "swarmcloud:gluster.replica: replica 2 invites split-brain (two copies cannot outvote each other); " +
        "use 3, or 3 with gluster.arbiter: true",
    ]);
  });

  test("replica 3 with an arbiter is valid and does not warn", () => {
    const { errors, warnings } = parse({ gluster: { replica: 3, arbiter: true } });
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
  });

  test("replica 2 with an arbiter does not warn about split-brain (it errors on the arbiter instead)", () => {
    const { errors, warnings } = parse({ gluster: { replica: 2, arbiter: true } });
    expect(warnings).toEqual([]);
    find(errors, "swarmcloud:gluster.arbiter = true: ");
  });

  test("an explicit node list wins over managers/workers (which Pulumi.yaml always supplies)", () => {
    const raw = { ...sshConfig(), managers: 3, workers: 2, swarm: { encryptOverlay: false } };
    const { config, errors, warnings } = parse(raw, WITH_KEY);
    expect(errors).toEqual([]);
    expect(warnings).toEqual([]);
    expect(config.nodes.map((n) => n.name)).toEqual(["pi-1", "pi-2", "pi-3", "pi-4"]);
  });

  test("an empty node list outside ssh falls back to managers/workers", () => {
    const { config, errors } = parse({ nodes: [], managers: 1, workers: 0, gluster: { replica: 1 } });
    expect(errors).toEqual([]);
    expect(config.nodes.map((n) => n.name)).toEqual(["manager-1"]);
  });

  test("more than one Ghost replica warns, naming the stale-post 404s and the load balancer fix", () => {
    const warning = find(parse({ ghost: { replicas: 2 } }).warnings, "swarmcloud:ghost.replicas: ");
    expect(warning).toContain("Ghost is built as a single writer");
    expect(warning).toContain("a new post answers 404 from the other replicas");
    expect(warning).toContain("docs/load-balancer.md");
    expect(parse({ ghost: { replicas: 1 } }).warnings.some((w) => w.includes("ghost.replicas"))).toBe(false);
  });
});

describe("brickNodes", () => {
  const nodes = [
    { name: "w-1", role: "worker" as const, labels: {}, availability: "active" as const },
    { name: "m-1", role: "manager" as const, labels: {}, availability: "active" as const },
    { name: "w-2", role: "worker" as const, labels: {}, availability: "active" as const },
    { name: "m-2", role: "manager" as const, labels: {}, availability: "active" as const },
  ];
  const gluster = (replica: number, list: string[] = []) => ({
    ...parse({}).config.gluster,
    replica,
    brickNodes: list,
  });

  test("defaults to managers first, then workers, in config order, replica of them", () => {
    expect(brickNodes({ nodes, gluster: gluster(3) }).map((n) => n.name)).toEqual(["m-1", "m-2", "w-1"]);
    expect(brickNodes({ nodes, gluster: gluster(1) }).map((n) => n.name)).toEqual(["m-1"]);
    expect(brickNodes({ nodes, gluster: gluster(9) }).map((n) => n.name)).toEqual(["m-1", "m-2", "w-1", "w-2"]);
  });

  test("an explicit list keeps its own order and skips unknown names", () => {
    expect(brickNodes({ nodes, gluster: gluster(2, ["w-2", "m-1", "nope", "w-1"]) }).map((n) => n.name)).toEqual([
      "w-2",
      "m-1",
      "w-1",
    ]);
  });
});

describe("quorumTolerance", () => {
  test.each([
    [-1, 0],
    [0, 0],
    [1, 0],
    [2, 0],
    [3, 1],
    [4, 1],
    [5, 2],
    [6, 2],
    [7, 3],
  ])("%i managers survive %i losses", (managers, tolerated) => {
    expect(quorumTolerance(managers)).toBe(tolerated);
  });
});

describe("address helpers", () => {
  test.each([
    ["0.0.0.0", true],
    ["10.0.0.1", true],
    ["255.255.255.255", true],
    ["192.168.1.21", true],
    ["10.0.0.256", false],
    ["1.2.3", false],
    ["1.2.3.4.5", false],
    ["1.2.3.", false],
    ["01.2.3.4", false],
    ["1.2.3.-4", false],
    ["1.2.3.4 ", false],
    ["a.b.c.d", false],
    ["", false],
  ])("isIPv4(%j) is %s", (value, expected) => {
    expect(isIPv4(value)).toBe(expected);
  });

  test.each([
    ["192.168.1.21", true],
    ["localhost", true],
    ["pi-1", true],
    ["pi-1.lan", true],
    ["node1.example.com", true],
    ["a".repeat(63) + ".example", true],
    ["a".repeat(64) + ".example", false],
    ["-bad-.example", false],
    ["bad-.example", false],
    ["bad_host.lan", false],
    ["a..b", false],
    ["example.com.", false],
    ["10.0.0.256", false],
    ["1.2.3", false],
    ["has space", false],
    ["", false],
  ])("isHost(%j) is %s", (value, expected) => {
    expect(isHost(value)).toBe(expected);
  });

  test.each([
    ["10.0.0.0/24", true],
    ["0.0.0.0/0", true],
    ["203.0.113.7/32", true],
    ["10.0.0.0/33", false],
    ["10.0.0.0/08", false],
    ["10.0.0.0/", false],
    ["10.0.0.0", false],
    ["10.0.0.0/24/8", false],
    ["10.0.0.256/24", false],
    ["/24", false],
    ["10.0.0.0/-1", false],
  ])("isCidr(%j) is %s", (value, expected) => {
    expect(isCidr(value)).toBe(expected);
  });
});

describe("volumeRenameProblem: the volume's name is kept", () => {
  test("no earlier name (first update, or a stack from before it was exported), or the same: fine", () => {
    expect(volumeRenameProblem(undefined, "swarmcloud")).toBeUndefined();
    expect(volumeRenameProblem("", "swarmcloud")).toBeUndefined();
    expect(volumeRenameProblem("swarmcloud", "swarmcloud")).toBeUndefined();
  });

  test("another name: refused, naming both and the way back", () => {
    expect(volumeRenameProblem("swarmcloud", "data")).toBe(
      'swarmcloud:gluster.volume = "data": this stack\'s volume is "swarmcloud", and its bricks hold the ' +
        "applications' data (the database, Ghost's content, Portainer's); a new name would make a new, empty volume " +
        'and move those bricks aside. Set gluster.volume back to "swarmcloud". To start afresh under another name, ' +
        "copy the data out, run pulumi destroy, then pulumi up with the new name.",
    );
  });
});

describe("the security settings", () => {
  test("swarm.exportManagerToken is off unless set", () => {
    expect(parseConfig({}, { sshPrivateKey: false }).config.swarm.exportManagerToken).toBe(false);
    expect(
      parseConfig({ swarm: { exportManagerToken: "true" } }, { sshPrivateKey: false }).config.swarm.exportManagerToken,
    ).toBe(true);
  });

  test("ghost.owner: defaults, a partial object keeps the other defaults, bad values named", () => {
    expect(parseConfig({}, { sshPrivateKey: false }).config.ghost.owner).toEqual({
      name: "swarmcloud owner",
      email: "owner@swarmcloud.local",
      blogTitle: "swarmcloud",
    });
    const partial = parseConfig({ ghost: { owner: { email: "me@example.com" } } }, { sshPrivateKey: false });
    expect(partial.errors).toEqual([]);
    expect(partial.config.ghost.owner).toEqual({
      name: "swarmcloud owner",
      email: "me@example.com",
      blogTitle: "swarmcloud",
    });
    const bad = parseConfig(
      { ghost: { owner: { name: "x".repeat(192), email: "a@b", blogTitle: "line\nbreak" } } },
      { sshPrivateKey: false },
    );
    expect(bad.errors).toEqual([
      `swarmcloud:ghost.owner.name = "${"x".repeat(76)}...: must be at most 191 characters, without control characters`,
      'swarmcloud:ghost.owner.blogTitle = "line\\nbreak": must be at most 150 characters, without control characters',
      'swarmcloud:ghost.owner.email = "a@b": must be an e-mail address such as you@example.com (the owner\'s login)',
    ]);
  });

  test("swarm.pinImages is on unless set to false; anything but a boolean is refused", () => {
    expect(parseConfig({}, { sshPrivateKey: false }).config.swarm.pinImages).toBe(true);
    expect(parseConfig({ swarm: { pinImages: "false" } }, { sshPrivateKey: false }).config.swarm.pinImages).toBe(false);
    expect(parseConfig({ swarm: { pinImages: "maybe" } }, { sshPrivateKey: false }).errors).toEqual([
      'swarmcloud:swarm.pinImages = "maybe": must be true or false',
    ]);
  });

  test("every image setting takes an image pinned by digest (<image>@sha256:<64 hex>) as given", () => {
    const pin = (image: string) => `${image}@sha256:${"0123456789abcdef".repeat(4)}`;
    const r = parseConfig(
      {
        ghost: { image: pin("ghost:5"), dbImage: pin("mysql:8.4") },
        portainer: { image: pin("portainer/portainer-ce:2.27.9"), agentImage: pin("portainer/agent:2.27.9") },
        edge: { image: pin("caddy:2") },
        backup: { image: pin("restic/restic:0.17.3") },
      },
      { sshPrivateKey: false },
    );
    expect(r.errors).toEqual([]);
    expect([r.config.ghost.image, r.config.ghost.dbImage]).toEqual([pin("ghost:5"), pin("mysql:8.4")]);
    expect([r.config.portainer.image, r.config.portainer.agentImage]).toEqual([
      pin("portainer/portainer-ce:2.27.9"),
      pin("portainer/agent:2.27.9"),
    ]);
    expect(r.config.backup?.image).toBe(pin("restic/restic:0.17.3"));
  });

  test("gluster.options may not set auth.allow: the program keeps it", () => {
    expect(
      parseConfig({ gluster: { options: { "auth.allow": "10.0.0.*" } } }, { sshPrivateKey: false }).errors,
    ).toEqual([
      'swarmcloud:gluster.options.auth.allow = "10.0.0.*": swarmcloud keeps auth.allow equal to the cluster\'s node addresses (README, "Security"); remove it',
    ]);
  });
});
