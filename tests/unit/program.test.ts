/**
 * The whole program (`main` in components/program.ts, what index.ts runs) under Pulumi mocks,
 * once per stack file: Pulumi.local.yaml (local), Pulumi.dev.yaml (vagrant), Pulumi.pi.yaml
 * (ssh) and Pulumi.do.yaml (digitalocean), each with the credentials its header comment asks
 * for. Checks the node source chosen, which providers' resources appear, each node's host
 * script and its connection, where the swarm starts, what the app stacks wait for and deploy,
 * and the stack outputs; then that bad config is refused with every problem at once, before
 * any resource, and the quorum guard.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as yaml from "js-yaml";
import { main, ProgramInputs } from "../../components/program";
import { script } from "../../components/remote-scripts";
import { GHOST_SETUP_CLIENT } from "../../stacks/ghost";
import { KEY_MARKER } from "../../components/nodes/vagrant";
import {
  clusterStepState,
  clearRecorded,
  mockGeneratedSecret,
  recorded,
  RecordedResource,
  settled,
  setupMocks,
  valueOf,
} from "./mocks";

const VAGRANT_COMMAND = "pulumi-nodejs:dynamic/swarmcloud:VagrantCommand";
const PRIVATE_KEY =
  "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

setupMocks({
  state: (args) => {
    if (args.type === VAGRANT_COMMAND && args.name.endsWith("-ssh-config")) {
      const node = args.inputs.environment.SWARMCLOUD_NODE;
      return {
        stdout: `Host ${node}\n  HostName 127.0.0.1\n  User vagrant\n  IdentityFile /w/${node}/private_key\n${KEY_MARKER}\n${PRIVATE_KEY}`,
      };
    }
    return clusterStepState(args);
  },
});

const REPO = path.join(__dirname, "..", "..");
const REMOTE_SCRIPT = "pulumi-nodejs:dynamic/swarmcloud:RemoteScript";
const PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockKey me@laptop";

/** A stack file's config as the engine hands it to the program: values as text, objects as JSON. */
function engineConfig(stackFile: string): Record<string, string> {
  const doc = yaml.load(fs.readFileSync(path.join(REPO, stackFile), "utf8")) as { config: Record<string, unknown> };
  return Object.fromEntries(
    Object.entries(doc.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
}

/** Inputs for `main` from a stack file, plus settings (`secret` ones held encrypted). */
function inputsFor(
  stack: string,
  extra: { plain?: Record<string, string>; secret?: Record<string, string> } = {},
): ProgramInputs {
  const secretKeys = new Set(Object.keys(extra.secret ?? {}));
  return {
    stack,
    config: { ...engineConfig(`Pulumi.${stack}.yaml`), ...extra.plain, ...extra.secret },
    isSecret: (key) => secretKeys.has(key),
    repoDir: REPO,
    previousOutput: async () => undefined,
  };
}

/** The one recorded resource of this type and name. */
function named(type: string, name: string): RecordedResource {
  const found = recorded.filter((r) => r.type === type && r.name === name);
  if (found.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${found.length}`);
  return found[0]!;
}

/** Resource counts by type. */
function typeCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of recorded) counts[r.type] = (counts[r.type] ?? 0) + 1;
  return counts;
}

interface Case {
  stack: string;
  environment: string;
  settings?: { plain?: Record<string, string>; secret?: Record<string, string> };
  /** The node source's component type. */
  source: string;
  /** Resource counts of the node source's own types. */
  sourceResources: Record<string, number>;
  /** [name, role] in node order. */
  nodes: [string, "manager" | "worker"][];
  user: string;
  /** Node name -> the address SSH reaches it on (read from the recorded graph where a provider makes it). */
  address: (node: string) => string;
  /** Node name -> the address the cluster talks on. */
  privateAddress: (node: string) => string;
  entryAddress: string;
  /** Inputs only this source has: where its files come from, what it publishes. */
  sourceInputs: () => void;
}

const DEFAULT_NODES: Case["nodes"] = [
  ["manager-1", "manager"],
  ["manager-2", "manager"],
  ["manager-3", "manager"],
  ["worker-1", "worker"],
  ["worker-2", "worker"],
];
const LOCAL_ADDRESS = (node: string) => `172.30.0.${11 + DEFAULT_NODES.findIndex(([n]) => n === node)}`;
const VAGRANT_ADDRESS = (node: string) => {
  const [role, k] = node.split("-") as [string, string];
  return `192.168.56.${(role === "manager" ? 10 : 30) + Number(k)}`;
};
const PI_ADDRESS = (node: string) => `192.168.1.${100 + Number(node.slice(-2))}`;
const droplet = (node: string) => named("digitalocean:index/droplet:Droplet", `do-${node}`).state;

const CASES: Case[] = [
  {
    stack: "local",
    environment: "local",
    source: "swarmcloud:nodes:LocalNodes",
    sourceResources: {
      "docker:index/container:Container": 5,
      "docker:index/volume:Volume": 10,
      "docker:index/network:Network": 1,
      "docker:index/image:Image": 1,
      "tls:index/privateKey:PrivateKey": 1,
    },
    nodes: DEFAULT_NODES,
    user: "root",
    address: LOCAL_ADDRESS,
    privateAddress: LOCAL_ADDRESS,
    entryAddress: "127.0.0.1",
    sourceInputs: () => {
      expect(named("docker:index/image:Image", "local-image").inputs.build.context).toBe(path.join(REPO, "node-image"));
      expect(named("docker:index/container:Container", "local-manager-1").inputs.ports).toEqual([
        { internal: 2368, external: 2368, ip: "127.0.0.1", protocol: "tcp" },
        { internal: 9443, external: 9443, ip: "127.0.0.1", protocol: "tcp" },
      ]);
    },
  },
  {
    stack: "dev",
    environment: "vagrant",
    source: "swarmcloud:nodes:VagrantNodes",
    sourceResources: { [VAGRANT_COMMAND]: 6 },
    nodes: DEFAULT_NODES,
    user: "vagrant",
    address: VAGRANT_ADDRESS,
    privateAddress: VAGRANT_ADDRESS,
    entryAddress: "192.168.56.11",
    sourceInputs: () => {
      const up = named(VAGRANT_COMMAND, "dev-up");
      expect(up.inputs.environment.SWARMCLOUD_VAGRANT_DIR).toBe(path.join(REPO, ".vagrant-stacks", "dev"));
      expect(up.inputs.environment.SWARMCLOUD_VAGRANT_PROVIDER).toBe("virtualbox");
      expect(up.inputs.stdin).toMatch(/config\.vm\.box = "bento\/debian-13"/);
    },
  },
  {
    stack: "pi",
    environment: "ssh",
    settings: { secret: { "swarmcloud:sshPrivateKey": PRIVATE_KEY } },
    source: "swarmcloud:nodes:SshNodes",
    sourceResources: {},
    nodes: [
      ["pinode01", "manager"],
      ["pinode02", "manager"],
      ["pinode03", "manager"],
      ["pinode04", "worker"],
    ],
    user: "pi",
    address: PI_ADDRESS,
    privateAddress: PI_ADDRESS,
    entryAddress: "192.168.1.101",
    sourceInputs: () => {
      // The stack file's label on pinode04 reaches its swarm membership.
      expect(named(REMOTE_SCRIPT, "pi-swarm-pinode04-member").inputs.environment.LABELS).toMatch(/storage=sd-card/);
    },
  },
  {
    stack: "do",
    environment: "digitalocean",
    settings: {
      plain: { "swarmcloud:sshPublicKey": PUBLIC_KEY },
      secret: { "swarmcloud:sshPrivateKey": PRIVATE_KEY, "digitalocean:token": "dop_v1_mock" },
    },
    source: "swarmcloud:nodes:DigitalOceanNodes",
    sourceResources: {
      "digitalocean:index/droplet:Droplet": 5,
      "digitalocean:index/sshKey:SshKey": 1,
      "digitalocean:index/vpc:Vpc": 1,
      "digitalocean:index/firewall:Firewall": 1,
    },
    nodes: DEFAULT_NODES,
    user: "root",
    address: (node) => droplet(node).ipv4Address,
    privateAddress: (node) => droplet(node).ipv4AddressPrivate,
    entryAddress: "", // the first droplet's address, read in the test
    sourceInputs: () => {
      expect(named("digitalocean:index/sshKey:SshKey", "do-ssh").inputs.publicKey).toBe(PUBLIC_KEY);
      expect(named("digitalocean:index/droplet:Droplet", "do-worker-2").inputs).toMatchObject({
        region: "ams3",
        size: "s-2vcpu-2gb",
        image: "debian-13-x64",
      });
      // The firewall plan of Pulumi.do.yaml: only Ghost's port open to the world; SSH and Portainer
      // (root on every node) to adminCidrs only; swarm and Gluster inside the VPC only.
      const rules = named("digitalocean:index/firewall:Firewall", "do-firewall").inputs.inboundRules as {
        protocol: string;
        portRange?: string;
        sourceAddresses: string[];
      }[];
      const toWorld = rules.filter((r) => r.sourceAddresses.some((a) => a === "0.0.0.0/0" || a === "::/0"));
      expect(toWorld.map((r) => `${r.protocol}/${r.portRange}`)).toEqual(["tcp/2368"]);
      const toAdmins = rules.filter((r) => r.sourceAddresses.includes("203.0.113.7/32"));
      expect(toAdmins.map((r) => [r.portRange, r.sourceAddresses])).toEqual([
        ["22", ["203.0.113.7/32"]],
        ["9443", ["203.0.113.7/32"]],
      ]);
      const rest = rules.filter((r) => !toWorld.includes(r) && !toAdmins.includes(r));
      expect(rest.map((r) => `${r.protocol}/${r.portRange}`).sort()).toEqual(
        ["tcp/2377", "tcp/7946", "udp/7946", "udp/4789", "tcp/24007-24008", "tcp/49152-49251"].sort(),
      );
      for (const r of rest) expect(r.sourceAddresses).toEqual(["10.20.0.0/24"]);
    },
  },
];

describe.each(CASES)("the $stack stack ($environment)", (c) => {
  let outputs: Record<string, unknown>;
  const managers = () => c.nodes.filter(([, role]) => role === "manager").map(([n]) => n);
  const entry = () => c.entryAddress || c.address(c.nodes[0]![0]);

  let warned: string[];

  beforeAll(async () => {
    await settled();
    clearRecorded();
    const warn = jest.spyOn(pulumi.log, "warn");
    try {
      outputs = await main(inputsFor(c.stack, c.settings));
      await settled();
      warned = warn.mock.calls.map((call) => String(call[0]));
    } finally {
      warn.mockRestore();
    }
  });

  test("the unencrypted-overlay warning: once where nodes share a network with others (ssh, vagrant), never elsewhere", () => {
    const overlay = warned.filter((w) => w.startsWith("swarmcloud:swarm.encryptOverlay: not set"));
    expect(overlay).toHaveLength(c.environment === "ssh" || c.environment === "vagrant" ? 1 : 0);
  });

  test("the environment's node source, and no other provider's resources", () => {
    const source = named(c.source, c.stack);
    expect(source.parent).toBe("");
    const counts = typeCounts();
    for (const [type, n] of Object.entries(c.sourceResources)) expect([type, counts[type]]).toEqual([type, n]);
    const mine = new Set(Object.keys(c.sourceResources).map((t) => t.split(":")[0]));
    const providers = new Set(Object.keys(counts).map((t) => t.split(":")[0]!));
    for (const p of ["docker", "tls", "command", "digitalocean"])
      expect([p, providers.has(p)]).toEqual([p, mine.has(p)]);
    // Everything of the source is its child.
    for (const type of Object.keys(c.sourceResources)) {
      for (const r of recorded.filter((x) => x.type === type)) expect(r.parent).toBe(source.urn);
    }
  });

  test("the source's own inputs, from the stack file and the repository", () => {
    c.sourceInputs();
  });

  test("one DockerHost per node, its host script run on that node with the source's login", () => {
    expect(typeCounts()["swarmcloud:host:DockerHost"]).toBe(c.nodes.length);
    for (const [node] of c.nodes) {
      const host = named("swarmcloud:host:DockerHost", `${c.stack}-${node}`);
      expect(host.parent).toBe("");
      const provision = named(REMOTE_SCRIPT, `${c.stack}-${node}-provision`);
      expect(provision.parent).toBe(host.urn);
      expect(provision.inputs.connection).toMatchObject({ host: c.address(node), user: c.user, port: 22 });
      expect(provision.inputs.environment.NODE_NAME).toBe(node);
    }
  });

  test("the swarm starts on the first manager, every node joins, the volume spans the managers", () => {
    const [first] = managers();
    const bootstrap = named(REMOTE_SCRIPT, `${c.stack}-swarm-bootstrap`);
    expect(bootstrap.inputs.connection.host).toBe(c.address(first!));
    expect(bootstrap.parent).toBe(named("swarmcloud:swarm:Swarm", `${c.stack}-swarm`).urn);
    for (const [node] of c.nodes) expect(named(REMOTE_SCRIPT, `${c.stack}-swarm-${node}-join`)).toBeDefined();
    const volume = named("swarmcloud:storage:GlusterVolume", `${c.stack}-gluster`);
    const bricks = recorded.filter((r) => r.type === REMOTE_SCRIPT && r.name.endsWith("-brick"));
    expect(bricks.map((b) => b.name).sort()).toEqual(managers().map((m) => `${c.stack}-gluster-${m}-brick`));
    for (const b of bricks) expect(b.parent).toBe(volume.urn);
  });

  test("Ghost and Portainer deploy from the first manager after the swarm and the volume, with the entry address", () => {
    // Every node a swarm member in its role, the volume mounted on every node.
    const ready = c.nodes.flatMap(([node]) => [
      named(REMOTE_SCRIPT, `${c.stack}-swarm-${node}-member`).urn,
      named(REMOTE_SCRIPT, `${c.stack}-gluster-${node}-mount`).urn,
    ]);
    for (const app of ["ghost", "portainer"]) {
      const stack = named("swarmcloud:stack:SwarmStack", `${c.stack}-${app}`);
      const deploy = named(REMOTE_SCRIPT, `${c.stack}-${app}-deploy`);
      expect(deploy.parent).toBe(stack.urn);
      expect(deploy.inputs.connection.host).toBe(c.address(managers()[0]!));
      expect(deploy.inputs.environment.STACK).toBe(app);
      expect(deploy.dependencies).toEqual(expect.arrayContaining(ready));
    }
    const compose = named(REMOTE_SCRIPT, `${c.stack}-ghost-deploy`).inputs.environment.COMPOSE as string;
    expect(yaml.load(compose)).toMatchObject({
      services: { ghost: { environment: { url: `http://${entry()}:2368` } } },
    });
    expect(typeCounts()["random:index/randomPassword:RandomPassword"]).toBe(4);
  });

  test("Ghost's owner: set up from a manager after the deploy, the password on stdin only; the first deploy publishes no port", () => {
    const deploy = named(REMOTE_SCRIPT, `${c.stack}-ghost-deploy`);
    const setup = named(REMOTE_SCRIPT, `${c.stack}-ghost-setup`);
    expect(setup.parent).toBe(named("swarmcloud:stack:SwarmStack", `${c.stack}-ghost`).urn);
    expect(setup.dependencies).toContain(deploy.urn);
    expect(setup.inputs.connection.host).toBe(c.address(managers()[0]!));
    expect(setup.inputs.fallbackConnections.map((f: { host: string }) => f.host)).toEqual(
      managers().slice(1).map(c.address),
    );
    expect(setup.inputs.create).toBe(script("ghost-setup"));
    expect(setup.inputs.read).toBe(script("ghost-setup-read"));
    expect(setup.inputs.environment).toMatchObject({
      STACK: "ghost",
      SERVICE: "ghost_ghost",
      NETWORK: "ghost_frontend",
      GHOST: "http://ghost_ghost:2368",
      URL: `http://${entry()}:2368`,
      OWNER_NAME: "swarmcloud owner",
      OWNER_EMAIL: "owner@swarmcloud.local",
      BLOG_TITLE: "swarmcloud",
      PUBLISH: "published=2368,target=2368,protocol=tcp,mode=ingress",
      CLIENT: GHOST_SETUP_CLIENT,
    });
    // The image the one-shot runs in is a fact, not a reason to run: a new Ghost image is the deploy's alone.
    expect(setup.inputs.environment.IMAGE).toBeUndefined();
    expect(setup.inputs.context).toEqual({ IMAGE: "ghost:5", RESOLVE_IMAGE: "always" });
    // The generated password (the mocks return a RandomPassword's inputs: no result) on stdin only.
    const owner = named("random:index/randomPassword:RandomPassword", `${c.stack}-ghost-owner-password`);
    expect(owner.inputs).toMatchObject({ length: 32, special: false });
    expect(setup.options.additionalSecretOutputs).toEqual(["connection", "stdin"]);
    // The deploy holds a text without ports until the stack is opened: a fact (context), not a reason to run.
    const closed = yaml.load(deploy.inputs.context.CLOSED_COMPOSE) as { services: Record<string, { ports?: unknown }> };
    const open = yaml.load(deploy.inputs.environment.COMPOSE) as { services: Record<string, { ports?: unknown }> };
    expect(Object.values(closed.services).map((svc) => svc.ports)).toEqual([undefined, undefined]);
    expect(open.services.ghost!.ports).toEqual([{ target: 2368, published: 2368, protocol: "tcp", mode: "ingress" }]);
    expect({ ...open, services: {} }).toEqual({ ...closed, services: {} });
  });

  test("Portainer's agent secret: made by the program, on the deploy's stdin only (a Docker secret for the agents, a deploy variable for the server)", () => {
    const made = named("pulumi-nodejs:dynamic/swarmcloud:GeneratedSecret", `${c.stack}-portainer-agent-secret`);
    expect(made.options.additionalSecretOutputs).toEqual(["value"]);
    const secret = mockGeneratedSecret(`${c.stack}-portainer-agent-secret`);
    const deploy = named(REMOTE_SCRIPT, `${c.stack}-portainer-deploy`);
    const stdin = deploy.inputs.stdin as string;
    expect(stdin).toContain(`env:PORTAINER_AGENT_SECRET=${Buffer.from(secret).toString("base64")}\n`);
    expect(stdin).toContain(`=${Buffer.from(`--secret=${secret}\n`).toString("base64")}\n`);
    const compose = deploy.inputs.environment.COMPOSE as string;
    expect(compose).toContain('AGENT_SECRET: "${PORTAINER_AGENT_SECRET}"');
    expect(compose).toContain('- "@/run/secrets/portainer_agent_args"');
    for (const r of recorded) {
      const { stdin: _stdin, ...rest } = r.inputs as Record<string, unknown>;
      expect([r.name, JSON.stringify(rest).includes(secret)]).toEqual([r.name, false]);
    }
  });

  test("the stack outputs: environment, manager, nodes, SSH commands, URLs, secrets kept secret", async () => {
    expect(Object.keys(outputs).sort()).toEqual(
      [
        "environment",
        "managerAddress",
        "nodeList",
        "sshCommands",
        "joinTokens",
        "glusterMountPath",
        "glusterVolume",
        "ghostUrl",
        "ghostAdminUrl",
        "ghostOwnerEmail",
        "ghostOwnerPassword",
        "ghostDbPassword",
        "dbRootPassword",
        "portainerUrl",
        "portainerAdminPassword",
        // Backups are on with Ghost by default; the repository's password is generated.
        "backupRepositoryPassword",
      ].sort(),
    );
    expect(outputs.environment).toBe(c.environment);
    expect(await valueOf(outputs.managerAddress as pulumi.Output<string>)).toBe(c.privateAddress(managers()[0]!));
    expect(await valueOf(outputs.sshCommands as pulumi.Output<string[]>)).toEqual(
      c.nodes.map(([node]) => `${node}: ssh -p 22 ${c.user}@${c.address(node)}`),
    );
    expect(await valueOf(outputs.ghostUrl as pulumi.Output<string>)).toBe(`http://${entry()}:2368`);
    expect(await valueOf(outputs.ghostOwnerEmail as pulumi.Output<string>)).toBe("owner@swarmcloud.local");
    expect(await valueOf(outputs.portainerUrl as pulumi.Output<string>)).toBe(`https://${entry()}:9443`);
    for (const key of [
      "joinTokens",
      "ghostDbPassword",
      "dbRootPassword",
      "portainerAdminPassword",
      "ghostOwnerPassword",
      "backupRepositoryPassword",
    ]) {
      expect([key, await pulumi.isSecret(outputs[key] as pulumi.Output<unknown>)]).toEqual([key, true]);
    }
    // The manager token only when swarm.exportManagerToken asks for it.
    expect(await valueOf(outputs.joinTokens as pulumi.Output<Record<string, string>>)).toEqual({
      worker: "SWMTKN-worker",
    });
    expect(outputs.glusterVolume).toBe("swarmcloud");
  });
});

describe("refused before any resource is made", () => {
  beforeEach(async () => {
    await settled();
    clearRecorded();
  });

  test("every configuration problem at once: credentials, a plaintext password, bad settings, one stored as a secret", async () => {
    const inputs = inputsFor("do");
    inputs.config["swarmcloud:ghostDbPassword"] = "hunter2";
    inputs.config["swarmcloud:workers"] = "-1";
    inputs.config["swarmcloud:deployTimeout"] = "7";
    inputs.isSecret = (key) => key === "swarmcloud:deployTimeout";
    const run = main(inputs);
    await expect(run).rejects.toBeInstanceOf(pulumi.RunError);
    const message = await run.catch((e: Error) => e.message);
    expect(message).toMatch(/^swarmcloud: 5 configuration problem\(s\):/);
    expect(message).toMatch(/digitalocean:token.*needs an API token/);
    expect(message).toMatch(/needs an SSH key pair/);
    expect(message).toMatch(/swarmcloud:workers = -1/);
    expect(message).toMatch(/swarmcloud:deployTimeout = \[secret\]/);
    expect(message).toMatch(/swarmcloud:ghostDbPassword is stored in plaintext/);
    expect(message).not.toMatch(/hunter2/);
    await settled();
    expect(recorded).toEqual([]);
  });

  test("an owner password Ghost would refuse (under 10 characters) is refused before any resource, without showing it", async () => {
    const inputs = inputsFor("pi", {
      secret: { "swarmcloud:sshPrivateKey": PRIVATE_KEY, "swarmcloud:ghostOwnerPassword": "Short-9ch" },
    });
    const message = await main(inputs).catch((e: Error) => e.message);
    expect(message).toContain(
      "swarmcloud:ghostOwnerPassword is shorter than 10 characters, which Ghost refuses: set a longer one with pulumi config set --secret swarmcloud:ghostOwnerPassword",
    );
    expect(message).not.toContain("Short-9ch");
    await settled();
    expect(recorded).toEqual([]);
  });

  test("DIGITALOCEAN_TOKEN in the environment stands in for digitalocean:token", async () => {
    const message = await main({ ...inputsFor("do"), digitaloceanTokenEnv: "dop_v1_env" }).catch(
      (e: Error) => e.message,
    );
    expect(message).toMatch(/1 configuration problem/);
    expect(message).not.toMatch(/API token/);
  });

  test("an update that would take more than (N-1)/2 managers away at once", async () => {
    const inputs = inputsFor("pi", { secret: { "swarmcloud:sshPrivateKey": PRIVATE_KEY } });
    inputs.previousOutput = async (name) =>
      name === "nodeList"
        ? [
            { name: "old-1", role: "manager" },
            { name: "old-2", role: "manager" },
            { name: "old-3", role: "manager" },
          ]
        : undefined;
    await expect(main(inputs)).rejects.toThrow(/removes or demotes 3 of the swarm's 3 managers/);
    await settled();
    expect(recorded).toEqual([]);
  });

  test("a renamed Gluster volume: refused with the name to set back, read from the last update's output", async () => {
    const inputs = inputsFor("pi", {
      plain: { "swarmcloud:gluster": JSON.stringify({ volume: "renamed" }) },
      secret: { "swarmcloud:sshPrivateKey": PRIVATE_KEY },
    });
    const asked: string[] = [];
    inputs.previousOutput = async (name) => {
      asked.push(name);
      return name === "glusterVolume" ? "swarmcloud" : undefined;
    };
    const message = await main(inputs).catch((e: Error) => e.message);
    expect(message).toContain('swarmcloud:gluster.volume = "renamed": this stack\'s volume is "swarmcloud"');
    expect(message).toContain('Set gluster.volume back to "swarmcloud"');
    expect(asked).toEqual(expect.arrayContaining(["nodeList", "glusterVolume"]));
    await settled();
    expect(recorded).toEqual([]);
  });
});
