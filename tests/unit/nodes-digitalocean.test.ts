/**
 * DigitalOceanNodes under Pulumi mocks: SSH key, VPC, droplets (tags, VPC, key, the host key in
 * their cloud-init user data), the EXACT firewall rules, parents, dependencies, the pinned host
 * keys, and that the private keys stay secrets.
 */
import * as pulumi from "@pulumi/pulumi";
import * as yaml from "js-yaml";
import { parseConfig } from "../../components/config";
import {
  DigitalOceanNodes,
  firewallInboundRules,
  firewallOutboundRules,
  hostKeyUserData,
  roleTag,
} from "../../components/nodes/digitalocean";
import { generateEd25519 } from "../../components/generated-key";
import { mockGeneratedKey, recorded, RecordedResource, recordedNamed, settled, setupMocks, valueOf } from "./mocks";

setupMocks();

const PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMockKey me@laptop";
const parsed = parseConfig(
  {
    environment: "digitalocean",
    sshPublicKey: PUBLIC_KEY,
    digitalocean: { adminCidrs: ["198.51.100.7/32", "203.0.113.0/28"] },
  },
  { sshPrivateKey: true, digitaloceanToken: true },
);
const { config } = parsed;
const PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nmock\n-----END OPENSSH PRIVATE KEY-----\n";
const ANY = ["0.0.0.0/0", "::/0"];
const VPC = ["10.20.0.0/24"];

const SWARM_AND_GLUSTER = [
  { protocol: "tcp", portRange: "2377", sourceAddresses: VPC },
  { protocol: "tcp", portRange: "7946", sourceAddresses: VPC },
  { protocol: "udp", portRange: "7946", sourceAddresses: VPC },
  { protocol: "udp", portRange: "4789", sourceAddresses: VPC },
  { protocol: "tcp", portRange: "24007-24008", sourceAddresses: VPC },
  { protocol: "tcp", portRange: "49152-49251", sourceAddresses: VPC },
];

describe("firewall rules", () => {
  it("opens swarm and Gluster to the VPC only, and no SSH when there are no admin CIDRs", () => {
    expect(firewallInboundRules({ vpcCidr: "10.20.0.0/24", adminCidrs: [] })).toEqual(SWARM_AND_GLUSTER);
  });

  it("opens SSH to the admin CIDRs and the public ports to the world, in port order, once each", () => {
    expect(
      firewallInboundRules({ vpcCidr: "10.20.0.0/24", adminCidrs: ["198.51.100.7/32"] }, [9443, 2368, 9443]),
    ).toEqual([
      ...SWARM_AND_GLUSTER,
      { protocol: "tcp", portRange: "22", sourceAddresses: ["198.51.100.7/32"] },
      { protocol: "tcp", portRange: "2368", sourceAddresses: ANY },
      { protocol: "tcp", portRange: "9443", sourceAddresses: ANY },
    ]);
  });

  it("opens the admin ports (Portainer's) to the admin CIDRs only, after SSH; with no admin CIDRs, to nobody", () => {
    const admins = ["198.51.100.7/32", "203.0.113.0/28"];
    expect(firewallInboundRules({ vpcCidr: "10.20.0.0/24", adminCidrs: admins }, [2368], 4789, [9443, 9000])).toEqual([
      ...SWARM_AND_GLUSTER,
      { protocol: "tcp", portRange: "22", sourceAddresses: admins },
      { protocol: "tcp", portRange: "9000", sourceAddresses: admins },
      { protocol: "tcp", portRange: "9443", sourceAddresses: admins },
      { protocol: "tcp", portRange: "2368", sourceAddresses: ANY },
    ]);
    expect(firewallInboundRules({ vpcCidr: "10.20.0.0/24", adminCidrs: [] }, [2368], 4789, [9443])).toEqual([
      ...SWARM_AND_GLUSTER,
      { protocol: "tcp", portRange: "2368", sourceAddresses: ANY },
    ]);
  });

  it("uses the configured VXLAN data-path port", () => {
    const rules = firewallInboundRules({ vpcCidr: "10.1.0.0/16", adminCidrs: [] }, [], 4790);
    expect(rules.filter((r) => r.protocol === "udp")).toEqual([
      { protocol: "udp", portRange: "7946", sourceAddresses: ["10.1.0.0/16"] },
      { protocol: "udp", portRange: "4790", sourceAddresses: ["10.1.0.0/16"] },
    ]);
  });

  it("allows all outbound traffic", () => {
    expect(firewallOutboundRules()).toEqual([
      { protocol: "tcp", portRange: "1-65535", destinationAddresses: ANY },
      { protocol: "udp", portRange: "1-65535", destinationAddresses: ANY },
      { protocol: "icmp", destinationAddresses: ANY },
    ]);
  });
});

describe("DigitalOceanNodes (defaults: 3 managers + 2 workers)", () => {
  let comp: DigitalOceanNodes;
  let component: RecordedResource;
  const names = ["manager-1", "manager-2", "manager-3", "worker-1", "worker-2"];

  beforeAll(async () => {
    expect(parsed.errors).toEqual([]);
    comp = new DigitalOceanNodes("do", {
      nodes: config.nodes,
      settings: config.digitalocean,
      sshPublicKey: PUBLIC_KEY,
      sshPrivateKey: PRIVATE_KEY, // plain on purpose: the component must make it secret
      publicPorts: [2368],
      adminPorts: [9443],
      dataPathPort: config.swarm.dataPathPort,
    });
    await settled();
    component = recordedNamed("do");
  });

  it("is a swarmcloud:nodes:DigitalOceanNodes component whose resources are all its children", () => {
    expect(component.type).toBe("swarmcloud:nodes:DigitalOceanNodes");
    const children = recorded.filter((r) => r.parent === component.urn);
    expect(children.map((r) => [r.type, r.name]).sort()).toEqual(
      [
        ["digitalocean:index/sshKey:SshKey", "do-ssh"],
        ["digitalocean:index/vpc:Vpc", "do-vpc"],
        ...names.map((n) => ["digitalocean:index/droplet:Droplet", `do-${n}`]),
        ["digitalocean:index/firewall:Firewall", "do-firewall"],
        ...names.map((n) => ["pulumi-nodejs:dynamic/swarmcloud:GeneratedKey", `do-${n}-host-key`]),
      ].sort(),
    );
  });

  it("registers the public key and a VPC in the region with the configured range", () => {
    expect(recordedNamed("do-ssh").inputs).toEqual({ publicKey: PUBLIC_KEY });
    expect(recordedNamed("do-vpc").inputs).toMatchObject({ region: "ams3", ipRange: "10.20.0.0/24" });
  });

  it("makes one droplet per node in the VPC, with the key and the tags", () => {
    const key = recordedNamed("do-ssh");
    const vpc = recordedNamed("do-vpc");
    for (const n of config.nodes) {
      const d = recordedNamed(`do-${n.name}`);
      const hostKey = mockGeneratedKey(`do-${n.name}-host-key`);
      expect(d.inputs).toEqual({
        name: n.name,
        image: "debian-13-x64",
        region: "ams3",
        size: "s-2vcpu-2gb",
        vpcUuid: "do-vpc_id",
        sshKeys: [key.state.fingerprint],
        tags: ["swarmcloud", n.role === "manager" ? "swarmcloud-manager" : "swarmcloud-worker"],
        userData: hostKeyUserData(hostKey.privateKey, hostKey.publicKey),
      });
      expect(d.secretInputs).toEqual(["userData"]);
      expect(d.dependencies).toEqual(
        expect.arrayContaining([key.urn, vpc.urn, recordedNamed(`do-${n.name}-host-key`).urn]),
      );
    }
    expect(roleTag("worker")).toBe("swarmcloud-worker");
  });

  it("puts the exact firewall on every droplet", () => {
    const fw = recordedNamed("do-firewall");
    const droplets = names.map((n) => recordedNamed(`do-${n}`));
    // Droplet IDs are integers in the API; the firewall takes them as numbers.
    expect(fw.inputs.dropletIds).toEqual(droplets.map((d) => Number(d.id)));
    for (const id of fw.inputs.dropletIds) expect(Number.isInteger(id)).toBe(true);
    expect(new Set(fw.inputs.dropletIds).size).toBe(5);
    expect(fw.dependencies).toEqual(expect.arrayContaining(droplets.map((d) => d.urn)));
    expect(fw.inputs.inboundRules).toEqual([
      ...SWARM_AND_GLUSTER,
      { protocol: "tcp", portRange: "22", sourceAddresses: ["198.51.100.7/32", "203.0.113.0/28"] },
      { protocol: "tcp", portRange: "9443", sourceAddresses: ["198.51.100.7/32", "203.0.113.0/28"] },
      { protocol: "tcp", portRange: "2368", sourceAddresses: ANY },
    ]);
    expect(fw.inputs.outboundRules).toEqual([
      { protocol: "tcp", portRange: "1-65535", destinationAddresses: ANY },
      { protocol: "udp", portRange: "1-65535", destinationAddresses: ANY },
      { protocol: "icmp", destinationAddresses: ANY },
    ]);
  });

  it("turns every droplet into a ClusterNode reached as root on its public address", async () => {
    expect(comp.nodes.map((n) => [n.name, n.role])).toEqual(config.nodes.map((n) => [n.name, n.role]));
    for (const n of comp.nodes) {
      const d = recordedNamed(`do-${n.name}`);
      expect(await valueOf(n.connection.host)).toBe(d.state.ipv4Address);
      expect(await valueOf(n.publicAddress)).toBe(d.state.ipv4Address);
      expect(await valueOf(n.privateAddress)).toBe(d.state.ipv4AddressPrivate);
      expect(d.state.ipv4Address).toMatch(/^203\.0\.113\./);
      expect(d.state.ipv4AddressPrivate).toMatch(/^10\.20\.0\./);
      expect(n.connection.port).toBe(22);
      expect(n.connection.user).toBe("root");
      const deps = await Promise.all(n.dependsOn.map((r) => valueOf(r.urn)));
      expect(deps).toEqual([d.urn, recordedNamed("do-firewall").urn]);
    }
  });

  it("makes each droplet's host key and pins its connection to it, as made by the program", async () => {
    const pins = new Set<string>();
    for (const n of comp.nodes) {
      const made = recordedNamed(`do-${n.name}-host-key`);
      expect(made.parent).toBe(component.urn);
      expect(made.inputs).toMatchObject({ algorithm: "ed25519" });
      expect(made.options.additionalSecretOutputs).toEqual(["privateKey"]);
      const pin = await valueOf(n.connection.hostKey!);
      expect(pin).toBe(mockGeneratedKey(`do-${n.name}-host-key`).publicKey);
      expect(n.connection.hostKeySource).toBe("program");
      expect(n.connection.node).toBe(n.name);
      pins.add(pin);
    }
    expect(pins.size).toBe(comp.nodes.length);
  });

  it("keeps the private key a secret even when it was passed in plain", async () => {
    for (const n of comp.nodes) {
      const key = pulumi.output(n.connection.privateKey);
      expect(await pulumi.isSecret(key)).toBe(true);
      expect(await valueOf(key)).toBe(PRIVATE_KEY);
    }
    // The login key reaches no resource input; the only private keys in any are the droplets'
    // own host keys, in their (secret) user data.
    for (const d of recorded.filter((x) => x.type === "digitalocean:index/droplet:Droplet")) {
      expect(JSON.stringify({ ...d.inputs, userData: undefined })).not.toContain("PRIVATE KEY");
    }
    // PRIVATE_KEY's body, as JSON writes it.
    expect(JSON.stringify(recorded.map((r) => r.inputs))).not.toContain("\\nmock\\n");
    for (const r of recorded.filter((x) => x.type === "digitalocean:index/droplet:Droplet")) {
      expect(r.inputs.userData).toContain(mockGeneratedKey(`${r.name}-host-key`).privateKey.trim().split("\n")[1]);
    }
  });
});

describe("hostKeyUserData", () => {
  it("is cloud-config that installs the key as sshd's only host key, and reads back exactly", () => {
    const key = generateEd25519();
    const text = hostKeyUserData(key.privateKey, key.publicKey);
    expect(text.startsWith("#cloud-config\n")).toBe(true);
    expect(yaml.load(text)).toEqual({
      ssh_deletekeys: true,
      ssh_genkeytypes: [],
      ssh_keys: { ed25519_private: key.privateKey, ed25519_public: key.publicKey },
    });
  });
});
