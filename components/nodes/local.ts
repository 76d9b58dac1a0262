import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { LocalSettings, nodeAddress, NodeSpec, subnetHost } from "../config";
import { GeneratedKey } from "../generated-key";
import { nodeContainerInputs, NodeVolume, nodeVolumeNames } from "./node-container";
import { ClusterNode, clusterNode, NodeSource } from "./types";

export interface LocalNodesArgs {
  /** Nodes as validated by parseConfig (no default: the config supplies 3 managers + 2 workers). */
  nodes: NodeSpec[];
  /** Subnet, image tag and host ports (defaults in config.ts: 172.30.0.0/24, swarmcloud-node:latest, 2368, 9443). */
  settings: LocalSettings;
  /** Path to the repository's `node-image/` directory, the image's build context (no default). */
  contextDir: string;
  /** Port Ghost listens on inside the first manager, published on `settings.ghostHostPort`. Default 2368. */
  ghostPort?: number;
  /** Port Portainer (HTTPS) listens on inside the first manager, published on `settings.portainerHostPort`. Default 9443. */
  portainerPort?: number;
}

/**
 * Where a node container finds the SSH host key the program made for it; the image's entrypoint
 * installs it as /etc/ssh/ssh_host_ed25519_key and starts sshd with that key only. Not under
 * /run: that is a tmpfs, mounted over what was copied into the container before it started.
 */
export const HOST_KEY_FILE = "/etc/swarmcloud/ssh_host_ed25519_key";

// The local nodes' fixed addresses: one home in config.ts, which also checks the front door's address against them.
export { FIRST_NODE_HOST, nodeAddress, subnetHost } from "../config";

/**
 * The default environment: containers on the user's own Docker engine acting as cluster nodes
 * (sshd + dockerd + glusterd inside, from `node-image/`), on a bridge network with fixed
 * addresses, reached over SSH with a key this component generates. Each node's SSH host key is
 * made here too (`GeneratedKey`), copied into its container and pinned in its connection, so the
 * first connection is already verified; a re-created container gets the same key.
 *
 * The containers run WITHOUT --privileged, with the recipe of node-container.json (shared with
 * the lab harness; see node-container.ts). One flag of that recipe,
 * `--device-cgroup-rule 'a *:* rwm'`, has no input in @pulumi/docker 4.11.2; the nested dockerd
 * is instead given its own cgroup parent (`--cgroup-parent=/swarmcloud/<container>`, reachable
 * through `--cgroupns host` and the rw /sys/fs/cgroup bind), so the containers it starts are not
 * under the node container's device rules.
 *
 * SSH reaches a node on its bridge address, port 22: that works where the Docker engine runs on
 * the user's machine (Linux). Docker Desktop (macOS, Windows) does not route to bridge
 * addresses; there only the host-published ports on `entryAddress` answer.
 */
export class LocalNodes extends pulumi.ComponentResource implements NodeSource {
  public readonly nodes: ClusterNode[];
  /** Address of the host-published ports (Ghost, Portainer) on the user's machine. */
  public readonly entryAddress: pulumi.Output<string>;
  /** Private key (secret, OpenSSH format) that logs in as root on every node. */
  public readonly sshPrivateKey: pulumi.Output<string>;
  /** Public key installed for root on every node. */
  public readonly sshPublicKey: pulumi.Output<string>;

  constructor(name: string, args: LocalNodesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmcloud:nodes:LocalNodes", name, {}, opts);
    const s = args.settings;
    const addresses = args.nodes.map((_, i) => nodeAddress(s.subnet, i));
    const firstManager = args.nodes.find((n) => n.role === "manager");

    const key = new tls.PrivateKey(`${name}-ssh`, { algorithm: "ED25519" }, { parent: this });
    this.sshPrivateKey = pulumi.secret(key.privateKeyOpenssh);
    this.sshPublicKey = key.publicKeyOpenssh.apply((k) => k.trim());
    const network = createNetwork(name, { subnet: s.subnet }, this);
    const image = createImage(name, { imageName: s.image, contextDir: args.contextDir }, this);

    this.nodes = args.nodes.map((node, i) => {
      const hostKey = new GeneratedKey(`${name}-${node.name}-host-key`, {}, { parent: this });
      const container = createNodeContainer(
        `${name}-${node.name}`,
        {
          node,
          address: addresses[i]!,
          network,
          image,
          sshPublicKey: this.sshPublicKey,
          hostKey,
          ports: node === firstManager ? entryPorts(args) : [],
        },
        this,
      );
      return clusterNode(node, {
        host: addresses[i]!,
        user: "root",
        privateKey: this.sshPrivateKey,
        dialErrorLimit: 20,
        dependsOn: [container],
        hostKey: hostKey.publicKey,
      });
    });

    this.entryAddress = pulumi.output("127.0.0.1");
    this.registerOutputs({
      entryAddress: this.entryAddress,
      sshPrivateKey: this.sshPrivateKey,
      sshPublicKey: this.sshPublicKey,
      addresses,
    });
  }
}

/** The bridge network `name` with its fixed subnet; the gateway is the subnet's first host. */
function createNetwork(name: string, args: { subnet: string }, parent: pulumi.Resource): docker.Network {
  return new docker.Network(
    `${name}-net`,
    {
      name,
      driver: "bridge",
      ipamConfigs: [{ subnet: args.subnet, gateway: subnetHost(args.subnet, 1) }],
      labels: [{ label: "swarmcloud.network", value: name }],
    },
    // A fixed subnet cannot exist twice: remove the old network before making the new one.
    { parent, deleteBeforeReplace: true },
  );
}

/** The node image, built from `contextDir` on the local engine and never pushed. */
function createImage(
  name: string,
  args: { imageName: string; contextDir: string },
  parent: pulumi.Resource,
): docker.Image {
  return new docker.Image(
    `${name}-image`,
    {
      imageName: args.imageName,
      // `dockerfile` is left out on purpose: the provider then uses <context>/Dockerfile;
      // a relative `dockerfile` would be resolved against the working directory instead.
      build: { context: args.contextDir },
      skipPush: true,
    },
    { parent },
  );
}

/** A host port mapping of the entry node, reachable from the user's machine only. */
type PortMapping = { internal: number; external: number; ip: string; protocol: string };

/** Ghost's and Portainer's ports, published on 127.0.0.1 of the user's machine. */
function entryPorts(args: LocalNodesArgs): PortMapping[] {
  const s = args.settings;
  return [
    { internal: args.ghostPort ?? 2368, external: s.ghostHostPort, ip: "127.0.0.1", protocol: "tcp" },
    { internal: args.portainerPort ?? 9443, external: s.portainerHostPort, ip: "127.0.0.1", protocol: "tcp" },
  ];
}

/**
 * The named volumes that keep a node's state across container replacements (one per volume of
 * node-container.json); returns their names, which the container's mounts take as sources.
 */
function createNodeVolumes(
  containerName: string,
  args: { node: NodeSpec },
  parent: pulumi.Resource,
): Record<NodeVolume, pulumi.Output<string>> {
  const names = nodeVolumeNames(containerName);
  const volume = (v: NodeVolume) =>
    new docker.Volume(
      names[v],
      {
        name: names[v],
        labels: [
          { label: "swarmcloud.node", value: args.node.name },
          { label: "swarmcloud.volume", value: v },
        ],
      },
      { parent },
    ).name;
  const keys = Object.keys(names) as NodeVolume[];
  return Object.fromEntries(keys.map((v) => [v, volume(v)])) as Record<NodeVolume, pulumi.Output<string>>;
}

interface NodeContainerArgs {
  node: NodeSpec;
  /** Its fixed address on the bridge network. */
  address: string;
  network: docker.Network;
  image: docker.Image;
  sshPublicKey: pulumi.Output<string>;
  /** The node's SSH host key, copied into the container at `HOST_KEY_FILE` (mode 600). */
  hostKey: GeneratedKey;
  /** Host ports to publish (the entry node's; none elsewhere). */
  ports: PortMapping[];
}

/** One node: its volumes and the container named `containerName` (sshd + dockerd + glusterd inside). */
function createNodeContainer(
  containerName: string,
  args: NodeContainerArgs,
  parent: pulumi.Resource,
): docker.Container {
  const { node } = args;
  const volumes = createNodeVolumes(containerName, { node }, parent);
  const { envs, ...recipe } = nodeContainerInputs(containerName, volumes);
  return new docker.Container(
    containerName,
    {
      name: containerName,
      hostname: node.name,
      // The image ID: a rebuilt image replaces the container (its volumes stay).
      image: args.image.repoDigest,
      restart: "unless-stopped",
      networksAdvanced: [{ name: args.network.name, ipv4Address: args.address }],
      envs: [pulumi.interpolate`SSH_AUTHORIZED_KEY=${args.sshPublicKey}`, ...envs],
      // Capabilities, confinement, /dev/fuse, cgroups, /run, the volumes' mounts, the stop timeout.
      ...recipe,
      // Copied in before the container starts; a new key replaces the container (its volumes stay).
      uploads: [{ file: HOST_KEY_FILE, content: pulumi.secret(args.hostKey.privateKey), permissions: "0600" }],
      ports: args.ports,
      labels: [
        { label: "swarmcloud.node", value: node.name },
        { label: "swarmcloud.role", value: node.role },
      ],
      // dockerd and glusterd inside need time to stop cleanly, on destroy as on stop.
      destroyGraceSeconds: recipe.stopTimeout,
    },
    // The fixed address (and name) cannot be held twice: delete before replacing.
    { parent, deleteBeforeReplace: true },
  );
}
