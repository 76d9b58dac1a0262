/**
 * LocalNodes under Pulumi mocks: the exact containers, network, image, volumes and keys it
 * creates, their parents and dependencies, that each node's host key goes into its container
 * and is pinned in its connection, and that the private keys stay secrets.
 */
import * as pulumi from "@pulumi/pulumi";
import { parseConfig } from "../../components/config";
import { parseHostKey } from "../../components/hostkey";
import { HOST_KEY_FILE, LocalNodes, nodeAddress, subnetHost } from "../../components/nodes/local";
import {
  mockGeneratedKey,
  recorded,
  RecordedResource,
  recordedNamed,
  resourcesOfType,
  settled,
  setupMocks,
  valueOf,
} from "./mocks";

setupMocks();

const { config, errors } = parseConfig({ environment: "local" }, { sshPrivateKey: false });
const CONTEXT = "/repo/node-image";

describe("nodeAddress / subnetHost", () => {
  it("numbers nodes from .11 in node order", () => {
    expect([0, 1, 2, 3, 4].map((i) => nodeAddress("172.30.0.0/24", i))).toEqual([
      "172.30.0.11",
      "172.30.0.12",
      "172.30.0.13",
      "172.30.0.14",
      "172.30.0.15",
    ]);
  });

  it("counts from the network address, not the address written in the CIDR", () => {
    expect(nodeAddress("172.30.0.7/24", 0)).toBe("172.30.0.11");
    expect(subnetHost("10.1.0.0/16", 1)).toBe("10.1.0.1");
  });

  it("carries into the next octet in larger subnets", () => {
    expect(nodeAddress("10.1.0.0/16", 300)).toBe("10.1.1.55");
  });

  it("accepts the last host and refuses the broadcast address", () => {
    expect(nodeAddress("192.168.7.0/27", 19)).toBe("192.168.7.30");
    expect(() => nodeAddress("192.168.7.0/27", 20)).toThrow(/local\.subnet.*no host number 31.*30 hosts/);
  });

  it("refuses a subnet too small for the nodes, and a malformed one", () => {
    expect(() => nodeAddress("172.30.0.0/28", 4)).toThrow(/no host number 15/);
    expect(() => nodeAddress("172.30.0.0", 0)).toThrow(/local\.subnet.*IPv4 CIDR/);
  });
});

describe("LocalNodes (defaults: 3 managers + 2 workers)", () => {
  let comp: LocalNodes;
  let component: RecordedResource;
  const names = ["manager-1", "manager-2", "manager-3", "worker-1", "worker-2"];

  beforeAll(async () => {
    expect(errors).toEqual([]);
    comp = new LocalNodes("lab", { nodes: config.nodes, settings: config.local, contextDir: CONTEXT });
    new LocalNodes("alt", {
      nodes: config.nodes.slice(0, 2),
      settings: { ...config.local, subnet: "10.9.0.0/24", ghostHostPort: 8080, portainerHostPort: 8443 },
      contextDir: CONTEXT,
      ghostPort: 3000,
      portainerPort: 9444,
    });
    await settled();
    component = recordedNamed("lab");
  });

  const children = () => recorded.filter((r) => r.parent === component.urn);
  const ofType = (type: string) => resourcesOfType(type).filter((r) => r.parent === component.urn);

  it("is a swarmcloud:nodes:LocalNodes component whose resources are all its children", () => {
    expect(component.type).toBe("swarmcloud:nodes:LocalNodes");
    expect(component.custom).toBe(false);
    const counts: Record<string, number> = {};
    for (const r of children()) counts[r.type] = (counts[r.type] ?? 0) + 1;
    expect(counts).toEqual({
      "tls:index/privateKey:PrivateKey": 1,
      "pulumi-nodejs:dynamic/swarmcloud:GeneratedKey": 5,
      "docker:index/network:Network": 1,
      "docker:index/image:Image": 1,
      "docker:index/volume:Volume": 10,
      "docker:index/container:Container": 5,
    });
    // Nothing of this component escaped to the stack.
    expect(recorded.filter((r) => r.name.startsWith("lab-") && r.parent !== component.urn)).toEqual([]);
  });

  it("generates an ED25519 key", () => {
    expect(recordedNamed("lab-ssh").inputs).toEqual({ algorithm: "ED25519" });
  });

  it("makes a bridge network with the fixed subnet, replaced delete-first", () => {
    const net = recordedNamed("lab-net");
    expect(net.type).toBe("docker:index/network:Network");
    expect(net.inputs).toMatchObject({
      name: "lab",
      driver: "bridge",
      ipamConfigs: [{ subnet: "172.30.0.0/24", gateway: "172.30.0.1" }],
    });
    expect(net.options.deleteBeforeReplace).toBe(true);
  });

  it("builds the node image from the context dir without pushing it", () => {
    const img = recordedNamed("lab-image");
    expect(img.inputs).toMatchObject({
      imageName: "swarmcloud-node:latest",
      skipPush: true,
      build: { context: CONTEXT },
    });
    expect(img.inputs.build.dockerfile).toBeUndefined();
  });

  it("makes named volumes for /var/lib/docker and /var/lib/glusterd per node", () => {
    const vols = ofType("docker:index/volume:Volume")
      .map((v) => v.inputs.name)
      .sort();
    expect(vols).toEqual(names.flatMap((n) => [`lab-${n}-docker`, `lab-${n}-glusterd`]).sort());
  });

  it("runs each node with the unprivileged nested-docker recipe", async () => {
    const publicKey = (await valueOf(comp.sshPublicKey)).trim();
    expect(publicKey).toMatch(/^ssh-ed25519 AAAA/);
    names.forEach((n, i) => {
      const c = recordedNamed(`lab-${n}`);
      expect(c.type).toBe("docker:index/container:Container");
      expect(c.parent).toBe(component.urn);
      expect(c.inputs).toMatchObject({
        name: `lab-${n}`,
        hostname: n,
        restart: "unless-stopped",
        networksAdvanced: [{ name: "lab", ipv4Address: `172.30.0.${11 + i}` }],
        capabilities: { adds: ["ALL"], drops: ["SYS_RESOURCE"] },
        securityOpts: ["seccomp=unconfined", "apparmor=unconfined", "systempaths=unconfined"],
        devices: [{ hostPath: "/dev/fuse", containerPath: "/dev/fuse", permissions: "rwm" }],
        cgroupnsMode: "host",
        tmpfs: { "/run": "rw,nosuid,nodev,exec,size=256m" },
        mounts: [
          { type: "bind", source: "/sys/fs/cgroup", target: "/sys/fs/cgroup", readOnly: false },
          { type: "volume", source: `lab-${n}-docker`, target: "/var/lib/docker" },
          { type: "volume", source: `lab-${n}-glusterd`, target: "/var/lib/glusterd" },
        ],
      });
      expect(c.inputs.privileged).toBeUndefined();
      // The built image's ID (repoDigest of a local image), so a rebuild replaces the node.
      expect(c.inputs.image).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(c.inputs.image).toBe(recordedNamed("lab-image").state.repoDigest);
      expect(c.inputs.envs).toEqual([
        `SSH_AUTHORIZED_KEY=${publicKey}`,
        `SWARMCLOUD_DOCKERD_ARGS=--cgroup-parent=/swarmcloud/lab-${n}`,
      ]);
      expect(c.options.deleteBeforeReplace).toBe(true);
      expect(c.dependencies).toEqual(
        expect.arrayContaining([
          recordedNamed("lab-image").urn,
          recordedNamed("lab-net").urn,
          recordedNamed("lab-ssh").urn,
          recordedNamed(`lab-${n}-docker`).urn,
          recordedNamed(`lab-${n}-glusterd`).urn,
          recordedNamed(`lab-${n}-host-key`).urn,
        ]),
      );
    });
  });

  it("makes each node's SSH host key and copies it into that node's container only, as a secret", () => {
    names.forEach((n) => {
      const key = recordedNamed(`lab-${n}-host-key`);
      expect(key.type).toBe("pulumi-nodejs:dynamic/swarmcloud:GeneratedKey");
      expect(key.parent).toBe(component.urn);
      expect(key.inputs).toMatchObject({ algorithm: "ed25519" });
      expect(key.options.additionalSecretOutputs).toEqual(["privateKey"]);
      const c = recordedNamed(`lab-${n}`);
      // What node-image/entrypoint.sh installs as sshd's only host key.
      expect(HOST_KEY_FILE).toBe("/etc/swarmcloud/ssh_host_ed25519_key");
      expect(c.inputs.uploads).toEqual([
        { file: HOST_KEY_FILE, content: mockGeneratedKey(`lab-${n}-host-key`).privateKey, permissions: "0600" },
      ]);
      // The SDK marks the whole list secret: the private key is encrypted in state, nothing else is.
      expect(c.secretInputs).toEqual(["uploads"]);
    });
  });

  it("pins each node's connection to its own host key, made by the program", async () => {
    for (const n of comp.nodes) {
      const made = mockGeneratedKey(`lab-${n.name}-host-key`);
      expect(await valueOf(n.connection.hostKey!)).toBe(made.publicKey);
      expect(parseHostKey(made.publicKey)).toMatchObject({ type: "ssh-ed25519", fingerprint: made.fingerprint });
      expect(n.connection.hostKeySource).toBe("program");
      expect(n.connection.node).toBe(n.name);
    }
    const pins = await Promise.all(comp.nodes.map((n) => valueOf(n.connection.hostKey!)));
    expect(new Set(pins).size).toBe(comp.nodes.length);
  });

  it("publishes Ghost and Portainer on the host from the first manager only", () => {
    expect(recordedNamed("lab-manager-1").inputs.ports).toEqual([
      { internal: 2368, external: 2368, ip: "127.0.0.1", protocol: "tcp" },
      { internal: 9443, external: 9443, ip: "127.0.0.1", protocol: "tcp" },
    ]);
    for (const n of names.slice(1)) expect(recordedNamed(`lab-${n}`).inputs.ports).toEqual([]);
  });

  it("maps configured container ports to configured host ports", () => {
    expect(recordedNamed("alt-manager-1").inputs.ports).toEqual([
      { internal: 3000, external: 8080, ip: "127.0.0.1", protocol: "tcp" },
      { internal: 9444, external: 8443, ip: "127.0.0.1", protocol: "tcp" },
    ]);
    expect(recordedNamed("alt-net").inputs.ipamConfigs).toEqual([{ subnet: "10.9.0.0/24", gateway: "10.9.0.1" }]);
    expect(recordedNamed("alt-manager-2").inputs.networksAdvanced).toEqual([{ name: "alt", ipv4Address: "10.9.0.12" }]);
  });

  it("turns every node into a ClusterNode reached as root on its bridge address", async () => {
    expect(comp.nodes.map((n) => [n.name, n.role])).toEqual([
      ["manager-1", "manager"],
      ["manager-2", "manager"],
      ["manager-3", "manager"],
      ["worker-1", "worker"],
      ["worker-2", "worker"],
    ]);
    for (const [i, n] of comp.nodes.entries()) {
      const ip = `172.30.0.${11 + i}`;
      expect(n.connection.host).toBe(ip);
      expect(n.connection.port).toBe(22);
      expect(n.connection.user).toBe("root");
      expect(n.privateAddress).toBe(ip);
      expect(n.publicAddress).toBe(ip);
      expect(n.availability).toBe("active");
      expect(n.dependsOn).toHaveLength(1);
      expect(await valueOf(n.dependsOn[0]!.urn)).toBe(recordedNamed(`lab-${n.name}`).urn);
    }
    expect(await valueOf(comp.entryAddress)).toBe("127.0.0.1");
  });

  it("keeps the private key a secret everywhere it goes", async () => {
    expect(await pulumi.isSecret(comp.sshPrivateKey)).toBe(true);
    for (const n of comp.nodes) {
      const key = pulumi.output(n.connection.privateKey);
      expect(await pulumi.isSecret(key)).toBe(true);
      expect(await valueOf(key)).toMatch(/BEGIN OPENSSH PRIVATE KEY/);
    }
    // The public key is not a secret; no input of any container carries the login key, and the
    // only private key a container gets is its own host key (above).
    expect(await pulumi.isSecret(comp.sshPublicKey)).toBe(false);
    for (const c of ofType("docker:index/container:Container")) {
      const { uploads, ...rest } = c.inputs;
      expect(JSON.stringify(rest)).not.toMatch(/PRIVATE KEY/);
      expect(JSON.stringify(uploads)).not.toContain("mock-lab-ssh");
    }
  });
});
