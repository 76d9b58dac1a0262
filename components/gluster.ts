import * as pulumi from "@pulumi/pulumi";
import { GlusterSettings } from "./config";
import { ClusterNode } from "./nodes/types";
import { RemoteScript } from "./remote";
import { keyValueLines, script, words } from "./scripts";

export interface GlusterVolumeArgs {
  /** Every node; each mounts the volume. */
  nodes: ClusterNode[];
  /** The nodes that hold a brick, in order; the first one runs the pool and volume commands. */
  bricks: ClusterNode[];
  /** Per node name, the resource after which GlusterFS is installed and running on it. */
  hostReady: Record<string, pulumi.Resource>;
  /** Volume name, arbiter, brick path, mount path, options, purge on destroy. */
  settings: GlusterSettings;
  /** Application folders made under the mount path (e.g. ghost/content). Default none. */
  appDirs?: string[];
}

/**
 * A replicated GlusterFS volume: bricks on the chosen nodes, peers probed from the first brick
 * node, one brick per brick node (so the replica count follows the brick nodes: add-brick and
 * remove-brick change it), mounted on every node with backup volfile servers in fstab.
 */
export class GlusterVolume extends pulumi.ComponentResource {
  /** Where the volume is mounted on every node; resolves only once every mount is done. */
  public readonly mountPath: pulumi.Output<string>;
  /** Absolute path of each application folder, keyed by folder; resolves after the mounts. */
  public readonly appPaths: pulumi.Output<Record<string, string>>;
  /** Depend on these before using the volume. */
  public readonly ready: pulumi.Resource[];

  constructor(name: string, args: GlusterVolumeArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmcloud:storage:GlusterVolume", name, {}, opts);
    const s = args.settings;
    const first = args.bricks[0];
    if (first === undefined) {
      throw new pulumi.ResourceError("swarmcloud: a Gluster volume needs at least one brick node", this);
    }
    const hostReady = (node: ClusterNode) => args.hostReady[node.name]!;

    const bricks = args.bricks.map((node) =>
      createBrick(`${name}-${node.name}`, { node, settings: s, hostReady: hostReady(node) }, this),
    );
    const probes = args.bricks
      .slice(1)
      .map((node) =>
        createPeerProbe(`${name}-${node.name}`, { node, first, dependsOn: [hostReady(node), hostReady(first)] }, this),
      );
    const volume = createVolume(name, { bricks: args.bricks, settings: s, dependsOn: [...bricks, ...probes] }, this);
    const fstab = pulumi
      .all(args.bricks.map((b) => b.privateAddress))
      .apply((servers) => fstabLine(servers, s.volume, s.mountPath));
    const subdirs = (args.appDirs ?? []).join(" ");
    const mounts = args.nodes.map((node) =>
      createMount(
        `${name}-${node.name}`,
        { node, settings: s, fstab, subdirs, dependsOn: [volume, hostReady(node)] },
        this,
      ),
    );
    this.ready = mounts;
    // Bricks leave last: once every node, a new one included, has the volume mounted.
    createShrink(
      name,
      {
        bricks: args.bricks,
        members: words(args.nodes.map((n) => n.privateAddress)),
        settings: s,
        dependsOn: [volume, ...mounts],
      },
      this,
    );

    const mounted = pulumi.all(mounts.map((m) => m.stdout));
    this.mountPath = mounted.apply(() => s.mountPath);
    this.appPaths = mounted.apply(() =>
      Object.fromEntries((args.appDirs ?? []).map((d) => [d, `${s.mountPath}/${d}`])),
    );
    this.registerOutputs({ mountPath: this.mountPath, appPaths: this.appPaths });
  }
}

/** The node's brick folder, made ready for the volume; removed (purged when asked) on delete. */
function createBrick(
  name: string,
  args: { node: ClusterNode; settings: GlusterSettings; hostReady: pulumi.Resource },
  parent: pulumi.Resource,
): RemoteScript {
  const { node, settings: s } = args;
  return new RemoteScript(
    `${name}-brick`,
    {
      node: node.name,
      connection: node.connection,
      create: script("gluster-brick"),
      delete: script("gluster-brick-delete"),
      environment: {
        NODE_NAME: node.name,
        BRICK_PATH: s.brickPath,
        VOLUME: s.volume,
        PURGE: String(s.purgeOnDestroy),
      },
      skipDeleteWhenUnreachable: true,
    },
    { parent, dependsOn: [args.hostReady] },
  );
}

/** Probes the node into the pool from the first brick node; detaches it on delete. */
function createPeerProbe(
  name: string,
  args: { node: ClusterNode; first: ClusterNode; dependsOn: pulumi.Resource[] },
  parent: pulumi.Resource,
): RemoteScript {
  const { node } = args;
  return new RemoteScript(
    `${name}-peer`,
    {
      node: node.name,
      connection: args.first.connection,
      create: script("gluster-probe"),
      delete: script("gluster-detach"),
      read: script("gluster-probe-read"),
      environment: { NODE_NAME: node.name, PEER_ADDR: node.privateAddress },
    },
    { parent, dependsOn: args.dependsOn },
  );
}

/** The volume over every brick (replica = brick count), created, grown and started from the first brick node. */
function createVolume(
  name: string,
  args: { bricks: ClusterNode[]; settings: GlusterSettings; dependsOn: pulumi.Resource[] },
  parent: pulumi.Resource,
): RemoteScript {
  const s = args.settings;
  const first = args.bricks[0]!;
  const brickList = brickPaths(args.bricks, s);
  return new RemoteScript(
    `${name}-volume`,
    {
      node: first.name,
      connection: first.connection,
      create: script("gluster-volume"),
      delete: script("gluster-volume-delete"),
      read: script("gluster-volume-read"),
      environment: {
        NODE_NAME: first.name,
        VOLUME: s.volume,
        BRICKS: brickList,
        ARBITER: String(s.arbiter),
        OPTIONS: keyValueLines(s.options),
        // The state the read checks (the script starts the volume).
        STATUS: "Started",
      },
    },
    { parent, dependsOn: args.dependsOn },
  );
}

/** The path "address:brick path" of each brick, in order, space-separated. */
function brickPaths(bricks: ClusterNode[], s: GlusterSettings): pulumi.Output<string> {
  return words(bricks.map((b) => pulumi.interpolate`${b.privateAddress}:${s.brickPath}`));
}

/**
 * Removes, from the first brick node, the bricks of nodes no longer in the brick list: each
 * one's node drained first, the volume healed, then remove-brick and detach. Runs after every
 * mount, so the drained tasks can start anywhere; does nothing when no brick leaves.
 */
function createShrink(
  name: string,
  args: {
    bricks: ClusterNode[];
    /** Every node's address, space-separated: tells a brick node that leaves from one that stays. */
    members: pulumi.Input<string>;
    settings: GlusterSettings;
    dependsOn: pulumi.Resource[];
  },
  parent: pulumi.Resource,
): RemoteScript {
  const s = args.settings;
  const first = args.bricks[0]!;
  return new RemoteScript(
    `${name}-shrink`,
    {
      node: first.name,
      connection: first.connection,
      create: script("gluster-shrink"),
      read: script("gluster-shrink-read"),
      environment: { NODE_NAME: first.name, VOLUME: s.volume, BRICKS: brickPaths(args.bricks, s) },
      // Consulted only when a brick leaves; adding a node does not re-run this step.
      context: { MEMBERS: args.members },
    },
    { parent, dependsOn: args.dependsOn },
  );
}

/**
 * The fstab entry of the mount: the first brick server, the others as backup volfile servers
 * (the mount survives the loss of the first), `_netdev` so a booting host mounts it once the
 * network is up.
 */
export function fstabLine(servers: string[], volume: string, mountPath: string): string {
  const [first, ...backups] = servers;
  const options = [
    "defaults",
    "_netdev",
    ...(backups.length > 0 ? [`backup-volfile-servers=${backups.join(":")}`] : []),
  ];
  return `${first}:/${volume} ${mountPath} glusterfs ${options.join(",")} 0 0`;
}

interface MountArgs {
  node: ClusterNode;
  settings: GlusterSettings;
  /** The fstab entry (`fstabLine`). */
  fstab: pulumi.Input<string>;
  /** Application folders to make under the mount path, space-separated. */
  subdirs: string;
  dependsOn: pulumi.Resource[];
}

/** Mounts the volume on the node (fstab with backup volfile servers) and makes the app folders. */
function createMount(name: string, args: MountArgs, parent: pulumi.Resource): RemoteScript {
  const { node, settings: s } = args;
  return new RemoteScript(
    `${name}-mount`,
    {
      node: node.name,
      connection: node.connection,
      create: script("gluster-mount"),
      delete: script("gluster-unmount"),
      read: script("gluster-mount-read"),
      environment: {
        NODE_NAME: node.name,
        VOLUME: s.volume,
        MOUNT_PATH: s.mountPath,
        FSTAB_LINE: args.fstab,
        SUBDIRS: args.subdirs,
        // The state the read checks (the script mounts it).
        MOUNTED: "true",
      },
      skipDeleteWhenUnreachable: true,
    },
    { parent, dependsOn: args.dependsOn },
  );
}
