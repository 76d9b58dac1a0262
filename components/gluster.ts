import * as pulumi from "@pulumi/pulumi";
import { GLUSTER_TLS_OPTIONS, GlusterSettings } from "./config";
import { GeneratedCa } from "./generated-ca";
import { ClusterNode } from "./nodes/types";
import { keyValueLines, script, words } from "./remote-scripts";
import { nodeStep, NodeStepArgs } from "./step";

export interface GlusterVolumeArgs {
  /** Every node; each mounts the volume. */
  nodes: ClusterNode[];
  /** The nodes that hold a brick, in order; the first one runs the pool and volume commands. */
  bricks: ClusterNode[];
  /** Per node name, the resource after which GlusterFS is installed and running on it. */
  hostReady: Record<string, pulumi.Resource>;
  /** Volume name, arbiter, brick path, mount path, options, purge on destroy, TLS. */
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
    // With TLS, a node is ready for Gluster once it trusts every node's certificate (and its
    // glusterd restarted with TLS); without, once GlusterFS runs on it.
    const ready = s.tls ? tlsSteps(name, args, this) : args.hostReady;
    const hostReady = (node: ClusterNode) => ready[node.name]!;

    // The steps in the order they run: a brick on each brick node, the other brick nodes probed
    // into the pool from the first, the volume, each node's address allowed and its mount, and
    // last the removal of bricks that leave. What each step runs is in its function below
    // (brickStep...); here, its name and what it waits for.
    const members = words(args.nodes.map((n) => n.privateAddress));
    const bricks = args.bricks.map((node) =>
      nodeStep(`${name}-${node.name}-brick`, brickStep(node, s), { parent: this, dependsOn: [hostReady(node)] }),
    );
    const probes = args.bricks.slice(1).map((node) =>
      nodeStep(`${name}-${node.name}-peer`, peerStep(node, first), {
        parent: this,
        dependsOn: [hostReady(node), hostReady(first)],
      }),
    );
    const volume = nodeStep(`${name}-volume`, volumeStep(args.bricks, members, volumeOptions(args.nodes, s), s), {
      parent: this,
      dependsOn: [...bricks, ...probes],
    });
    const fstab = pulumi
      .all(args.bricks.map((b) => b.privateAddress))
      .apply((servers) => fstabLine(servers, s.volume, s.mountPath));
    const subdirs = (args.appDirs ?? []).join(" ");
    // Each node's address in auth.allow before it mounts, out again after it unmounted.
    const mounts = args.nodes.map((node) => {
      const allow = nodeStep(`${name}-${node.name}-allow`, allowStep(node, args.bricks, s, members), {
        parent: this,
        dependsOn: [volume],
      });
      return nodeStep(`${name}-${node.name}-mount`, mountStep(node, s, fstab, subdirs), {
        parent: this,
        dependsOn: [volume, hostReady(node), allow],
      });
    });
    this.ready = mounts;
    // Bricks leave last: once every node, a new one included, has the volume mounted.
    nodeStep(`${name}-shrink`, shrinkStep(args.bricks, members, s), { parent: this, dependsOn: [volume, ...mounts] });

    const mounted = pulumi.all(mounts.map((m) => m.stdout));
    this.mountPath = mounted.apply(() => s.mountPath);
    this.appPaths = mounted.apply(() =>
      Object.fromEntries((args.appDirs ?? []).map((d) => [d, `${s.mountPath}/${d}`])),
    );
    this.registerOutputs({ mountPath: this.mountPath, appPaths: this.appPaths });
  }
}

/**
 * The TLS steps of every node: the cluster's CA (made once by the program), each node's key and
 * certificate (the key made on the node and never leaving it, the certificate signed there by
 * the CA, whose key reaches the node on stdin only), then the node's trust of the CA. Every
 * node's CA file is the one CA certificate, so a node that comes or goes changes no other node's
 * files (Gluster reads them only when it starts). Returns, per node name, its trust step.
 */
function tlsSteps(name: string, args: GlusterVolumeArgs, parent: pulumi.Resource): Record<string, pulumi.Resource> {
  const s = args.settings;
  const ca = new GeneratedCa(`${name}-tls-ca`, { commonName: `swarmcloud ${s.volume} CA` }, { parent });
  return Object.fromEntries(
    args.nodes.map((node) => {
      const cert = nodeStep(`${name}-${node.name}-tls-cert`, certStep(node, s, ca), {
        parent,
        dependsOn: [args.hostReady[node.name]!],
      });
      const trust = nodeStep(`${name}-${node.name}-tls-trust`, trustStep(node, s, ca.certificate), {
        parent,
        dependsOn: [cert],
      });
      return [node.name, trust];
    }),
  );
}

/**
 * Makes the node's key, and its certificate (CN = its name) signed by the cluster's CA; prints the
 * certificate's subject, issuer and fingerprint.
 */
function certStep(node: ClusterNode, s: GlusterSettings, ca: GeneratedCa): NodeStepArgs {
  return {
    node,
    create: script("gluster-tls-cert"),
    environment: { VOLUME: s.volume, CA_CERT: ca.certificate },
    stdin: ca.privateKey,
  };
}

/**
 * Writes the node's CA file (`ca`: the cluster's CA certificate) and secure-access, restarting
 * glusterd when either changed. Deleting it changes nothing on the node (see the README).
 */
function trustStep(node: ClusterNode, s: GlusterSettings, ca: pulumi.Input<string>): NodeStepArgs {
  return { node, create: script("gluster-tls-trust"), environment: { VOLUME: s.volume, CA: ca } };
}

/**
 * The volume options: the user's, and with TLS the I/O path encrypted both ways and the
 * volume admitting only the nodes' certificate names (their common names are the node names).
 */
export function volumeOptions(nodes: Pick<ClusterNode, "name">[], s: GlusterSettings): Record<string, string> {
  if (!s.tls) return s.options;
  // Typed by the keys config.ts refuses in gluster.options, so the two lists cannot drift apart.
  const tls: Record<(typeof GLUSTER_TLS_OPTIONS)[number], string> = {
    "server.ssl": "on",
    "client.ssl": "on",
    "auth.ssl-allow": nodes.map((n) => n.name).join(","),
  };
  return { ...s.options, ...tls };
}

/** The node's brick folder, made ready for the volume; removed (purged when asked) on delete. */
function brickStep(node: ClusterNode, s: GlusterSettings): NodeStepArgs {
  return {
    node,
    create: script("gluster-brick"),
    delete: script("gluster-brick-delete"),
    environment: { BRICK_PATH: s.brickPath, VOLUME: s.volume, PURGE: String(s.purgeOnDestroy) },
    skipDeleteWhenUnreachable: true,
  };
}

/** Probes the node into the pool from the first brick node; detaches it on delete. */
function peerStep(node: ClusterNode, first: ClusterNode): NodeStepArgs {
  return {
    node,
    runsOn: { connection: first.connection },
    create: script("gluster-probe"),
    delete: script("gluster-detach"),
    read: script("gluster-probe-read"),
    environment: { PEER_ADDR: node.privateAddress },
  };
}

/**
 * The node's address in the volume's auth.allow (added before it mounts, removed after it
 * unmounted), on the first brick node, or the next brick node when that one does not know the
 * volume (it left the pool). One step per node, so adding or removing a node runs only its own
 * on one node. `members` (every node's address) is context: consulted only while the volume
 * still admits every address, so a new node changes no other node's step.
 */
function allowStep(
  node: ClusterNode,
  bricks: ClusterNode[],
  s: GlusterSettings,
  members: pulumi.Input<string>,
): NodeStepArgs {
  return {
    node,
    runsOn: { connection: bricks[0]!.connection, fallbackConnections: bricks.slice(1).map((b) => b.connection) },
    create: script("gluster-allow"),
    delete: script("gluster-disallow"),
    read: script("gluster-allow-read"),
    environment: { VOLUME: s.volume, ADDRESS: node.privateAddress },
    context: { MEMBERS: members },
    skipDeleteWhenUnreachable: true,
  };
}

/**
 * The volume over every brick (replica = brick count), created, grown and started from the
 * first brick node. `members` (every node's address) is context: the volume's first auth.allow,
 * so each node's allow step finds its address there on a new cluster (no change, no waiting for
 * a turn), and a node added later changes no step but its own.
 */
function volumeStep(
  bricks: ClusterNode[],
  members: pulumi.Input<string>,
  options: Record<string, string>,
  s: GlusterSettings,
): NodeStepArgs {
  return {
    node: bricks[0]!,
    create: script("gluster-volume"),
    delete: script("gluster-volume-delete"),
    read: script("gluster-volume-read"),
    environment: {
      VOLUME: s.volume,
      BRICKS: brickPaths(bricks, s),
      ARBITER: String(s.arbiter),
      OPTIONS: keyValueLines(options),
      // The state the read checks (the script starts the volume).
      STATUS: "Started",
    },
    context: { MEMBERS: members },
  };
}

/** The path "address:brick path" of each brick, in order, space-separated. */
function brickPaths(bricks: ClusterNode[], s: GlusterSettings): pulumi.Output<string> {
  return words(bricks.map((b) => pulumi.interpolate`${b.privateAddress}:${s.brickPath}`));
}

/**
 * Removes, from the first brick node, the bricks of nodes no longer in the brick list: each
 * one's node drained first, the volume healed, then remove-brick and detach. Runs after every
 * mount, so the drained tasks can start anywhere; does nothing when no brick leaves. `members`
 * is every node's address, space-separated: it tells a brick node that leaves from one that stays.
 */
function shrinkStep(bricks: ClusterNode[], members: pulumi.Input<string>, s: GlusterSettings): NodeStepArgs {
  return {
    node: bricks[0]!,
    create: script("gluster-shrink"),
    read: script("gluster-shrink-read"),
    environment: { VOLUME: s.volume, BRICKS: brickPaths(bricks, s) },
    // Consulted only when a brick leaves; adding a node does not re-run this step.
    context: { MEMBERS: members },
    // its two heal waits (600 s and 300 s at most) and the drain between them (300 s at most)
    timeout: 1500,
  };
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

/**
 * Mounts the volume on the node (fstab with backup volfile servers) and makes the app folders.
 * `fstab` is its fstab entry (`fstabLine`: the volfile server and its backups); `subdirs` the
 * application folders to make under the mount path, space-separated.
 */
function mountStep(node: ClusterNode, s: GlusterSettings, fstab: pulumi.Input<string>, subdirs: string): NodeStepArgs {
  return {
    node,
    create: script("gluster-mount"),
    delete: script("gluster-unmount"),
    read: script("gluster-mount-read"),
    environment: {
      VOLUME: s.volume,
      MOUNT_PATH: s.mountPath,
      FSTAB_LINE: fstab,
      SUBDIRS: subdirs,
      // The state the read checks (the script mounts it).
      MOUNTED: "true",
    },
    skipDeleteWhenUnreachable: true,
  };
}
