/**
 * The one typed configuration model of swarmcloud, and the pure functions that parse and
 * validate it. Nothing here touches Pulumi resources: `index.ts` reads the engine's config,
 * `main` (program.ts) hands the raw values to `parseConfig`, and only builds the graph when
 * `errors` is empty.
 *
 * Every problem names the config key, the bad value and the fix, and all of them are reported
 * at once so a user fixes a stack file in one pass.
 */
import {
  ENDPOINT_MODES,
  EndpointMode,
  networkingErrors,
  PUBLISH_MODES,
  PublishMode,
  UPDATE_ORDERS,
  UpdateOrder,
} from "../stacks/compose";
import { DB_UPDATE_ORDER } from "../stacks/ghost";
import { PORTAINER_AGENT_PORT } from "../stacks/portainer";
import { parseHostKey } from "./hostkey";

export const ENVIRONMENTS = ["local", "ssh", "vagrant", "digitalocean"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

/** The `docker stack deploy --resolve-image` values. */
export const RESOLVE_IMAGES = ["always", "changed", "never"] as const;
export type ResolveImage = (typeof RESOLVE_IMAGES)[number];

/** Who may hold the front door's floating address and run its Caddy: the managers, or the nodes labelled `edge=true`. */
export const EDGE_HOLDERS = ["managers", "labelled"] as const;
export type EdgeHolders = (typeof EDGE_HOLDERS)[number];

/** When a node upgrade reboots the node: when the packages ask for it (/var/run/reboot-required), always, or never. */
export const REBOOT_POLICIES = ["if-needed", "always", "never"] as const;
export type RebootPolicy = (typeof REBOOT_POLICIES)[number];

/** Where the backup repository lives: a folder on one node's own disk, an SFTP server, an S3-compatible bucket. */
export const BACKUP_TARGETS = ["local", "sftp", "s3"] as const;
export type BackupTarget = (typeof BACKUP_TARGETS)[number];

export type Role = "manager" | "worker";
export type Availability = "active" | "pause" | "drain";

/** One node as the user describes it; sources fill in what they create themselves. */
export interface NodeSpec {
  name: string;
  role: Role;
  /** Address a person (and the program, over SSH) reaches. Required for `ssh`. */
  address?: string;
  /** Address the cluster talks on (swarm advertise, Gluster). Defaults to `address`. */
  privateAddress?: string;
  /** SSH user for this node; defaults to `sshUser`. */
  user?: string;
  /** SSH port for this node; defaults to `sshPort`. */
  port?: number;
  /** The SSH host key the node must show (`<type> <base64>`); none: trusted on first use and recorded. */
  hostKey?: string;
  labels: Record<string, string>;
  availability: Availability;
}

export interface LocalSettings {
  /** Subnet of the bridge network the node containers live on. */
  subnet: string;
  /** Tag of the node image built from `node-image/Dockerfile`. */
  image: string;
  /** Host port that reaches Ghost on the first manager. */
  ghostHostPort: number;
  /** Host port that reaches Portainer on the first manager. */
  portainerHostPort: number;
}

/** The Vagrant providers the rendered Vagrantfile has settings for. */
export const VAGRANT_PROVIDERS = ["virtualbox", "libvirt"] as const;
export type VagrantProvider = (typeof VAGRANT_PROVIDERS)[number];
/** libvirt's domain types: kvm (hardware virtualisation) or qemu (software emulation, no KVM needed). */
export const LIBVIRT_DRIVERS = ["kvm", "qemu"] as const;
export type LibvirtDriver = (typeof LIBVIRT_DRIVERS)[number];

export interface VagrantSettings {
  box: string;
  /** The Vagrant provider the machines run on: virtualbox (the tutorial's) or libvirt (most Linux hosts). */
  provider: VagrantProvider;
  /** libvirt only: kvm, or qemu on a machine without KVM (software emulation, several times slower). */
  driver: LibvirtDriver;
  memory: number;
  cpus: number;
  /** First three octets of the private network, e.g. `192.168.56`. */
  networkPrefix: string;
  /** Host part of the first manager; workers start at `firstHost + 20`. */
  firstHost: number;
  /** guest port -> host port, forwarded on the first manager only. */
  forwardedPorts: Record<string, number>;
}

export interface DigitalOceanSettings {
  region: string;
  size: string;
  image: string;
  vpcCidr: string;
  /** CIDRs allowed to reach SSH (22/tcp). Empty means SSH is closed to the world. */
  adminCidrs: string[];
  tags: string[];
}

export interface SwarmSettings {
  /** UDP port of the VXLAN data path (docker default 4789). */
  dataPathPort: number;
  /** Address pools for overlay networks (`--default-addr-pool`), empty for Docker's default. */
  defaultAddrPool: string[];
  /** Encrypt the application overlay networks (IPsec, `--opt encrypted`). */
  encryptOverlay: boolean;
  /** `docker stack deploy --resolve-image`: `never` where nodes reach no registry. */
  resolveImage: ResolveImage;
  /**
   * Keep the image digest a service runs when its stack is deployed again: an `image:` without a
   * digest that a service of the stack already runs as `<image>@sha256:...` is deployed with that
   * digest (stack-deploy.sh), so a tag that moved on the registry does not move the service.
   */
  pinImages: boolean;
  /**
   * Export the manager join token in the `joinTokens` output. Off: nothing the program does needs
   * it, and whoever holds it can make any machine a manager of the swarm (root on every node).
   */
  exportManagerToken: boolean;
}

export interface GlusterSettings {
  volume: string;
  replica: number;
  /** Make the last brick of each replica set an arbiter (metadata only). */
  arbiter: boolean;
  /** Nodes that hold a brick; empty means managers first, then workers, `replica` of them. */
  brickNodes: string[];
  brickPath: string;
  mountPath: string;
  options: Record<string, string>;
  /** On destroy, delete the brick directories (data gone) instead of keeping them aside. */
  purgeOnDestroy: boolean;
  /**
   * TLS on Gluster's management and I/O paths (secure-access, server.ssl/client.ssl) with a
   * certificate per node, admitted by name (auth.ssl-allow). Opt-in: a new volume only.
   */
  tls: boolean;
}

export interface ServiceNetworking {
  publishMode: PublishMode;
  endpointMode: EndpointMode;
}

export interface GhostSettings extends ServiceNetworking {
  enabled: boolean;
  image: string;
  dbImage: string;
  replicas: number;
  dbReplicas: number;
  port: number;
  /** Placement constraints of the database service. */
  dbPlacement: string[];
  /** Public URL of the blog; defaults to http://<first manager public address>:<port>. */
  url?: string;
  /** The blog's owner, set up by the deploy before Ghost's port is published (its password: `ghostOwnerPassword`). */
  owner: GhostOwner;
  /**
   * How an update replaces Ghost's tasks: `start-first` (default: the new task healthy before the
   * old one stops, so readers never meet a gap) or `stop-first` (for an upgrade whose
   * migrations the old version must not run beside, such as a new major version).
   */
  updateOrder: UpdateOrder;
  /** The database's update order: `stop-first`, the only value accepted (two servers on one data folder corrupt it). */
  dbUpdateOrder: UpdateOrder;
}

/** Ghost's owner account and the blog's title, as Ghost's setup takes them. */
export interface GhostOwner {
  /** Shown as the author of the owner's posts. */
  name: string;
  /** The owner's login. */
  email: string;
  blogTitle: string;
}

export interface PortainerSettings extends ServiceNetworking {
  enabled: boolean;
  image: string;
  agentImage: string;
  httpsPort: number;
  /** Also publish Portainer's plain HTTP port 9000 (off by default). */
  httpPort?: number;
}

/** The swarm node label (`edge=true`) that marks a node as an edge node when `edge.holders` is `labelled`. */
export const EDGE_LABEL = "edge";

/**
 * The front door (opt-in): a floating address (keepalived on local, ssh and vagrant; a load
 * balancer on DigitalOcean) in front of Caddy on every edge node, HTTPS for Ghost and Portainer.
 */
export interface EdgeSettings {
  /** Off by default: with it off the program builds exactly what it built before. */
  enabled: boolean;
  /** The floating IPv4 address (local, ssh, vagrant); DigitalOcean's load balancer brings its own. */
  address?: string;
  /** The interface the address goes on; detected on each node (the one holding its private address) when unset. */
  interface?: string;
  /** Which nodes hold the address and run Caddy. */
  holders: EdgeHolders;
  /** The VRRP router id (1-255), unique on the network. */
  routerId: number;
  /** The blog's host name: certificates from ACME; unset: Caddy's internal CA for the address. */
  domain?: string;
  /** The e-mail address the ACME account is registered with. */
  acmeEmail?: string;
  /** The ACME directory URL; unset: Let's Encrypt. */
  acmeDirectory?: string;
  /** PEM of the CA certificate that signs `acmeDirectory`'s own HTTPS certificate (a private ACME server). */
  acmeRoot?: string;
  /** Caddy's image. */
  image: string;
  /** The edge's port that serves Portainer over HTTPS. */
  portainerPort: number;
}

/**
 * Backups (opt-in until their lab suite runs in CI): a restic service in the swarm that dumps
 * Ghost's database and copies Ghost's content and Portainer's data to a repository off the volume.
 */
export interface BackupSettings {
  /** Off by default: with it off the program builds exactly what it built before. */
  enabled: boolean;
  /** An image with restic, a POSIX shell and mysqldump or mariadb-dump. */
  image: string;
  /** Where the repository lives. */
  target: BackupTarget;
  /** `local`: the node whose disk holds the repository; unset: the first manager. */
  node?: string;
  /** `local`: the repository's folder on that node, outside the Gluster volume and bricks. */
  path: string;
  /** `sftp`/`s3`: the repository in restic's own words, `sftp:user@host:/path` or `s3:https://host/bucket/path`. */
  repository?: string;
  /** `sftp`: the server's SSH host key (`<type> <base64>`), which the backup checks on every connection. */
  sftpHostKey?: string;
  /** Hours between backups; a backup also runs whenever the service (re)starts. */
  intervalHours: number;
  /** Retention: `restic forget --keep-daily/--keep-weekly/--keep-monthly`. */
  keepDaily: number;
  keepWeekly: number;
  keepMonthly: number;
  /** `latest` or a snapshot id: restored by `pulumi up` before Ghost and Portainer start, when their folders are empty. */
  restoreFrom?: string;
  /** With `restoreFrom`: also restore over data that exists (moved aside first). */
  restoreOverExisting: boolean;
}

/**
 * Node upgrades (opt-in): when `run` changes, `pulumi up` walks the nodes one at a time (managers
 * first, then workers): drain, packages upgraded, reboot, wait for the node's return, availability
 * back (README, "Node upgrades").
 */
export interface UpgradeSettings {
  /** Any text: a new value walks every node at the next `pulumi up`; unset: no walk (the section is off). */
  run?: string;
  /** Upgrade the packages (`apt-get upgrade`, Docker and GlusterFS included) on each node. */
  packages: boolean;
  /** When the node reboots. */
  reboot: RebootPolicy;
  /** Seconds one node may take to come back from its reboot (SSH, Docker, glusterd, the mount, the heal). */
  returnSeconds: number;
}

export interface SwarmcloudConfig {
  environment: Environment;
  nodes: NodeSpec[];
  sshUser: string;
  sshPort: number;
  /** Whether a private key was supplied (the key itself stays a secret Output in program.ts). */
  hasSshPrivateKey: boolean;
  local: LocalSettings;
  vagrant: VagrantSettings;
  digitalocean: DigitalOceanSettings;
  swarm: SwarmSettings;
  gluster: GlusterSettings;
  ghost: GhostSettings;
  portainer: PortainerSettings;
  /** The front door; present only when `edge.enabled` is true. */
  edge?: EdgeSettings;
  /** Backups; present when `backup.enabled` is true, or unset with Ghost enabled. */
  backup?: BackupSettings;
  /** Node upgrades; present only when `upgrade.run` is set. */
  upgrade?: UpgradeSettings;
  /** Seconds to wait for a stack's services to reach their replicas. */
  deployTimeout: number;
}

/** Raw config values as `pulumi.Config` returns them (key without the project prefix). */
export type RawConfig = Record<string, unknown>;

/** What parseConfig needs to know beyond the raw values; program.ts reads it from the engine's config. */
export interface ConfigInputs {
  /** Whether `swarmcloud:sshPrivateKey` is set (the key itself never reaches the parser). */
  sshPrivateKey: boolean;
  /** Whether `digitalocean:token` (or DIGITALOCEAN_TOKEN) is set; absent means not set. */
  digitaloceanToken?: boolean;
  /** Raw keys the engine holds as secrets: their values show as [secret] in every message. */
  secretKeys?: readonly string[];
  /** Which backup secrets are set (`backupPassword`, `backupSftpKey`, ...); absent means none. */
  backupSecrets?: readonly BackupSecretKey[];
}

export interface ParseResult {
  config: SwarmcloudConfig;
  errors: string[];
  warnings: string[];
}

export const DEFAULT_SSH_USER: Record<Environment, string> = {
  local: "root",
  ssh: "root",
  vagrant: "vagrant",
  digitalocean: "root",
};

/**
 * Defaults of every setting. Pulumi.yaml declares the same values; tests/unit/config-defaults.test.ts
 * fails when the two differ.
 */
export const DEFAULTS = {
  managers: 3,
  workers: 2,
  sshPort: 22,
  deployTimeout: 300,
  local: {
    subnet: "172.30.0.0/24",
    image: "swarmcloud-node:latest",
    ghostHostPort: 2368,
    portainerHostPort: 9443,
  } satisfies LocalSettings,
  vagrant: {
    box: "bento/debian-13",
    provider: "virtualbox",
    driver: "kvm",
    memory: 2048,
    cpus: 2,
    networkPrefix: "192.168.56",
    firstHost: 11,
    forwardedPorts: { "2368": 2368, "9443": 9443 },
  } satisfies VagrantSettings,
  digitalocean: {
    region: "ams3",
    size: "s-2vcpu-2gb",
    image: "debian-13-x64",
    vpcCidr: "10.20.0.0/24",
    adminCidrs: [] as string[],
    tags: ["swarmcloud"],
  } satisfies DigitalOceanSettings,
  swarm: {
    dataPathPort: 4789,
    defaultAddrPool: [] as string[],
    encryptOverlay: false,
    resolveImage: "always",
    pinImages: true,
    exportManagerToken: false,
  } satisfies SwarmSettings,
  gluster: {
    volume: "swarmcloud",
    replica: 3,
    arbiter: false,
    brickNodes: [] as string[],
    brickPath: "/srv/swarmcloud/brick",
    mountPath: "/mnt/swarmcloud",
    /**
     * Merged under the user's `gluster.options` (theirs win). Clients wait `network.ping-timeout`
     * seconds before giving up on a brick whose node vanished without closing its connections
     * (power loss, a killed VM); Gluster's 42 s default freezes every write, and so the
     * database, for that long. 10 s keeps a small cluster's apps answering through a node loss.
     */
    options: { "network.ping-timeout": "10" } as Record<string, string>,
    purgeOnDestroy: false,
    tls: false,
  } satisfies GlusterSettings,
  ghost: {
    enabled: true,
    image: "ghost:5",
    dbImage: "mysql:8.4",
    replicas: 1,
    dbReplicas: 1,
    port: 2368,
    dbPlacement: ["node.role==manager"],
    publishMode: "ingress",
    endpointMode: "vip",
    owner: { name: "swarmcloud owner", email: "owner@swarmcloud.local", blogTitle: "swarmcloud" },
    updateOrder: "start-first",
    dbUpdateOrder: "stop-first",
  } satisfies GhostSettings,
  portainer: {
    enabled: true,
    image: "portainer/portainer-ce:2.27.9",
    agentImage: "portainer/agent:2.27.9",
    httpsPort: 9443,
    publishMode: "ingress",
    endpointMode: "vip",
  } satisfies PortainerSettings,
  edge: {
    enabled: false,
    holders: "managers",
    routerId: 51,
    image: "caddy:2",
    portainerPort: 8443,
  } satisfies EdgeSettings,
  backup: {
    enabled: false,
    image: "restic/restic:0.17.3",
    target: "local",
    path: "/srv/swarmcloud-backup",
    intervalHours: 24,
    keepDaily: 7,
    keepWeekly: 4,
    keepMonthly: 6,
    restoreOverExisting: false,
  } satisfies BackupSettings,
  upgrade: {
    packages: true,
    reboot: "if-needed",
    returnSeconds: 900,
  } satisfies UpgradeSettings,
};

/** The secret settings: program.ts reads them as secrets, and the parser never sees their values. */
export const SECRET_KEYS = [
  "sshPrivateKey",
  "ghostDbPassword",
  "dbRootPassword",
  "portainerAdminPassword",
  "ghostOwnerPassword",
  "backupPassword",
  "backupSftpKey",
  "backupS3AccessKeyId",
  "backupS3SecretAccessKey",
] as const;
export type SecretKey = (typeof SECRET_KEYS)[number];
/** The backup's secret settings: the repository's password, the SFTP login key, the S3 keys. */
export type BackupSecretKey = Extract<SecretKey, `backup${string}`>;
export const BACKUP_SECRET_KEYS = SECRET_KEYS.filter((k): k is BackupSecretKey => k.startsWith("backup"));

/** Words of a key name that holds a secret. */
const SECRET_NAME = /pas+w|pwd|secret|token|private.?key/i;

/**
 * Whether a key's name says it holds a secret: a secret word in it, or a typo (two edits or
 * fewer) of a secret setting, so a mistyped secret key is never echoed, stored in plaintext or not.
 */
function secretName(key: string): boolean {
  const name = key.slice(key.lastIndexOf(".") + 1).toLowerCase();
  return SECRET_NAME.test(key) || SECRET_KEYS.some((k) => editDistance(name, k.toLowerCase()) <= 2);
}

/** Levenshtein distance: the fewest inserts, deletes and substitutions that turn a into b. */
export function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}

/** Collects problems while the parser walks the raw values. */
class Problems {
  readonly errors: string[] = [];
  readonly warnings: string[] = [];
  constructor(private readonly secretKeys: readonly string[] = []) {}

  /** `<namespace>:<key> = <value>: <fix>`; a value under a secret key is shown as [secret]. */
  error(key: string, value: unknown, fix: string, namespace = "swarmcloud"): void {
    const shown = value !== undefined && this.isSecret(key) ? "[secret]" : show(value);
    this.errors.push(`${namespace}:${key} = ${shown}: ${fix}`);
  }

  /** True for a key stored as a secret, a key below one, or a key named like a secret. */
  isSecret(key: string): boolean {
    const root = key.split(/[.[]/)[0] ?? key;
    return this.secretKeys.includes(root) || secretName(key);
  }

  warn(key: string, message: string): void {
    this.warnings.push(`swarmcloud:${key}: ${message}`);
  }
}

function show(value: unknown): string {
  if (value === undefined) return "(not set)";
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const HOSTNAME =
  /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const NODE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** True for a dotted-quad IPv4 address with every octet in 0-255 and no leading zeros. */
export function isIPv4(value: string): boolean {
  const parts = value.split(".");
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/** True for an IPv4 address or a DNS hostname (what SSH can reach). */
export function isHost(value: string): boolean {
  if (/^[0-9.]+$/.test(value)) return isIPv4(value);
  return HOSTNAME.test(value);
}

/** True for an IPv4 CIDR such as 10.0.0.0/24. */
export function isCidr(value: string): boolean {
  const [ip, bits, ...rest] = value.split("/");
  return (
    rest.length === 0 &&
    ip !== undefined &&
    isIPv4(ip) &&
    bits !== undefined &&
    /^(0|[1-9][0-9]?)$/.test(bits) &&
    Number(bits) <= 32
  );
}

/** The `local` environment: host part of the first node on the bridge network (.11, .12, ... in node order). */
export const FIRST_NODE_HOST = 11;

/** The `n`-th address of an IPv4 subnet (n = 1 is the first host); throws when it falls outside. */
export function subnetHost(subnet: string, n: number): string {
  if (!isCidr(subnet))
    throw new Error(`swarmcloud:local.subnet = ${JSON.stringify(subnet)}: must be an IPv4 CIDR such as 172.30.0.0/24`);
  const [ip, bits] = subnet.split("/") as [string, string];
  const prefix = Number(bits);
  const size = 2 ** (32 - prefix);
  const base = ip.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const network = base - (base % size);
  if (!Number.isInteger(n) || n < 1 || n >= size - 1) {
    throw new Error(
      `swarmcloud:local.subnet = "${subnet}": has no host number ${n} (it holds ${Math.max(size - 2, 0)} hosts); use a larger subnet such as a /24`,
    );
  }
  const addr = network + n;
  return [24, 16, 8, 0].map((shift) => Math.floor(addr / 2 ** shift) % 256).join(".");
}

/** Fixed IPv4 address of the node at `index` (0-based, node order) on the bridge network. */
export function nodeAddress(subnet: string, index: number): string {
  return subnetHost(subnet, FIRST_NODE_HOST + index);
}

/** What a Reader's converter returns for a value it refuses: the fix the problem names. */
class Refusal {
  constructor(readonly fix: string) {}
}

/** A number, or a string that holds one (config values set on the command line are text). */
function numeric(v: unknown): number | undefined {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  return typeof n === "number" ? n : undefined;
}

/** True for a whole number from 1 to 65535. */
function isPort(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** True for a plain object (a map of settings), not a list. */
function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Reads typed values out of one raw object, reporting problems against full key paths. */
class Reader {
  constructor(
    private readonly raw: Record<string, unknown>,
    private readonly prefix: string,
    private readonly problems: Problems,
  ) {}

  key(name: string): string {
    return this.prefix ? `${this.prefix}.${name}` : name;
  }

  value(name: string): unknown {
    return this.raw[name];
  }

  has(name: string): boolean {
    return this.raw[name] !== undefined && this.raw[name] !== null;
  }

  /** Reports a problem with the setting `name` of this object. */
  error(name: string, value: unknown, fix: string): void {
    this.problems.error(this.key(name), value, fix);
  }

  /** Warns about the setting `name` of this object. */
  warn(name: string, message: string): void {
    this.problems.warn(this.key(name), message);
  }

  /**
   * The one way a setting is read: `fallback` when it is unset (undefined or null), otherwise
   * what `convert` makes of the raw value. A value `convert` refuses is reported (key, value,
   * the refusal's fix) and `fallback` used instead, so one bad setting never hides the others.
   */
  private read<T>(name: string, fallback: T, convert: (v: unknown) => T | Refusal): T {
    if (!this.has(name)) return fallback;
    const v = this.raw[name];
    const value = convert(v);
    if (value instanceof Refusal) {
      this.problems.error(this.key(name), v, value.fix);
      return fallback;
    }
    return value;
  }

  string(name: string, fallback: string): string {
    return this.read(name, fallback, (v) =>
      typeof v === "string" && v.trim() !== "" ? v.trim() : new Refusal("must be a non-empty string"),
    );
  }

  optionalString(name: string): string | undefined {
    return this.has(name) ? this.string(name, "") || undefined : undefined;
  }

  integer(name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const range = max === Number.MAX_SAFE_INTEGER ? `${min} or more` : `between ${min} and ${max}`;
    return this.read(name, fallback, (v) => {
      const n = numeric(v);
      if (n === undefined || !Number.isInteger(n)) return new Refusal(`must be a whole number (${range})`);
      return n < min || n > max ? new Refusal(`must be ${range}`) : n;
    });
  }

  port(name: string, fallback: number): number {
    return this.read(name, fallback, (v) => {
      const n = numeric(v);
      return n !== undefined && isPort(n) ? n : new Refusal("must be a TCP/UDP port between 1 and 65535");
    });
  }

  boolean(name: string, fallback: boolean): boolean {
    return this.read(name, fallback, (v) => {
      if (v === true || v === "true") return true;
      if (v === false || v === "false") return false;
      return new Refusal("must be true or false");
    });
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    return this.read(name, fallback, (v) =>
      typeof v === "string" && (allowed as readonly string[]).includes(v)
        ? (v as T)
        : new Refusal(`must be one of ${allowed.join(", ")}`),
    );
  }

  strings(name: string, fallback: string[]): string[] {
    return this.read(name, fallback, (v) =>
      Array.isArray(v) && v.every((s) => typeof s === "string")
        ? (v as string[])
        : new Refusal("must be a list of strings"),
    );
  }

  /** A map of names to strings; numbers and booleans become text, and each other entry is reported and left out. */
  stringMap(name: string, fallback: Record<string, string>): Record<string, string> {
    return this.read(name, fallback, (v) => {
      if (!isMap(v)) return new Refusal("must be a map of names to string values");
      const out: Record<string, string> = {};
      for (const [k, val] of Object.entries(v)) {
        if (typeof val === "string" || typeof val === "number" || typeof val === "boolean") {
          out[k] = String(val);
        } else {
          this.problems.error(`${this.key(name)}.${k}`, val, "must be a string");
        }
      }
      return out;
    });
  }

  /** A map of guest port to host port; each entry with a bad port is reported and left out. */
  portMap(name: string, fallback: Record<string, number>): Record<string, number> {
    return this.read(name, fallback, (v) => {
      if (!isMap(v)) return new Refusal("must be a map of guest port to host port");
      const out: Record<string, number> = {};
      for (const [guest, host] of Object.entries(v)) {
        if (isPort(Number(guest)) && isPort(Number(host))) {
          out[guest] = Number(host);
        } else {
          this.problems.error(`${this.key(name)}.${guest}`, host, "guest and host ports must be between 1 and 65535");
        }
      }
      return out;
    });
  }

  /** A nested object; a wrong type is reported and treated as empty. */
  object(name: string): Reader {
    const v = this.raw[name];
    if (this.has(name) && !isMap(v)) this.problems.error(this.key(name), v, "must be an object (a map of settings)");
    return new Reader(isMap(v) ? v : {}, this.key(name), this.problems);
  }

  /** Reports keys the program does not know, so a typo does not silently fall back to a default. */
  rejectUnknown(known: readonly string[]): void {
    for (const k of Object.keys(this.raw)) {
      if (!known.includes(k)) {
        this.problems.error(this.key(k), this.raw[k], `unknown setting; known settings here: ${known.join(", ")}`);
      }
    }
  }
}

function parseNodes(r: Reader, environment: Environment, problems: Problems): NodeSpec[] {
  const managers = r.integer("managers", DEFAULTS.managers, 0);
  const workers = r.integer("workers", DEFAULTS.workers, 0);
  const given = r.value("nodes");
  const raw = Array.isArray(given) && given.length === 0 ? undefined : given;
  if (raw === undefined || raw === null) {
    if (environment === "ssh") {
      problems.error("nodes", raw, "the ssh environment needs a list of hosts: [{name, role, address}]");
      return [];
    }
    return [
      ...Array.from({ length: managers }, (_, i) => defaultNode(`manager-${i + 1}`, "manager")),
      ...Array.from({ length: workers }, (_, i) => defaultNode(`worker-${i + 1}`, "worker")),
    ];
  }
  if (!Array.isArray(raw)) {
    problems.error("nodes", raw, "must be a list of nodes: [{name, role, address}]");
    return [];
  }
  return raw.map((item, i) => parseNode(item, i, environment, problems));
}

function defaultNode(name: string, role: Role): NodeSpec {
  return { name, role, labels: {}, availability: "active" };
}

function parseNode(item: unknown, i: number, environment: Environment, problems: Problems): NodeSpec {
  const key = `nodes[${i}]`;
  if (!isMap(item)) {
    problems.error(key, item, "must be an object such as {name: manager-1, role: manager, address: 10.0.0.11}");
    return defaultNode(`invalid-${i}`, "worker");
  }
  const r = new Reader(item, key, problems);
  r.rejectUnknown(["name", "role", "address", "privateAddress", "user", "port", "hostKey", "labels", "availability"]);
  const name = r.string("name", `invalid-${i}`);
  if (r.has("name") && !NODE_NAME.test(name)) {
    problems.error(`${key}.name`, name, "must be a lowercase hostname label (a-z, 0-9, '-'), at most 63 characters");
  }
  if (!r.has("name")) problems.error(`${key}.name`, undefined, "every node needs a name");
  const role = r.oneOf<Role>("role", ["manager", "worker"], "worker");
  if (!r.has("role")) problems.error(`${key}.role`, undefined, "set role to manager or worker");
  const address = r.optionalString("address");
  if (address !== undefined && !isHost(address)) {
    problems.error(`${key}.address`, address, "must be an IPv4 address (e.g. 192.168.1.21) or a hostname");
  }
  if (environment === "ssh" && address === undefined) {
    problems.error(`${key}.address`, undefined, "the ssh environment needs the address SSH reaches this host on");
  }
  const privateAddress = r.optionalString("privateAddress");
  if (privateAddress !== undefined && !isIPv4(privateAddress)) {
    problems.error(
      `${key}.privateAddress`,
      privateAddress,
      "must be an IPv4 address: swarm's --advertise-addr takes an address, not a name",
    );
  }
  if (
    environment === "ssh" &&
    privateAddress === undefined &&
    address !== undefined &&
    isHost(address) &&
    !isIPv4(address)
  ) {
    problems.error(
      `${key}.privateAddress`,
      undefined,
      `address ${address} is a name; set privateAddress to the IPv4 address the cluster talks on`,
    );
  }
  const node: NodeSpec = {
    name,
    role,
    labels: r.stringMap("labels", {}),
    availability: r.oneOf<Availability>("availability", ["active", "pause", "drain"], "active"),
  };
  if (address !== undefined) node.address = address;
  if (privateAddress !== undefined) node.privateAddress = privateAddress;
  const user = r.optionalString("user");
  if (user !== undefined) node.user = user;
  if (r.has("port")) node.port = r.port("port", DEFAULTS.sshPort);
  const hostKey = parseNodeHostKey(r, name, address, environment);
  if (hostKey !== undefined) node.hostKey = hostKey;
  return node;
}

/** Environments whose nodes the program makes, with a host key it makes and pins itself. */
const MADE_HOST_KEYS: readonly Environment[] = ["local", "digitalocean"];

/** A node's `hostKey`: an OpenSSH public key line, kept as `<type> <base64>`. */
function parseNodeHostKey(
  r: Reader,
  name: string,
  address: string | undefined,
  environment: Environment,
): string | undefined {
  const text = r.optionalString("hostKey");
  if (text === undefined) return undefined;
  if (MADE_HOST_KEYS.includes(environment)) {
    r.error(
      "hostKey",
      text,
      `node ${name}: the ${environment} environment makes each node's host key itself, gives it to the node and pins it; remove hostKey`,
    );
    return undefined;
  }
  const key = parseHostKey(text);
  if (!("problem" in key)) return key.line;
  const scan = `ssh-keyscan -t ed25519 ${address ?? "<address>"}`;
  r.error(
    "hostKey",
    text,
    `node ${name}: ${key.problem}; use the line \`${scan}\` prints (without the address), or /etc/ssh/ssh_host_ed25519_key.pub on the node, or remove hostKey to trust the key seen first`,
  );
  return undefined;
}

/** Every top-level key, in the order the unknown-key message lists them. */
const TOP_LEVEL_KEYS = [
  "environment",
  "managers",
  "workers",
  "nodes",
  "sshUser",
  "sshPort",
  "sshPrivateKey",
  "sshPublicKey",
  "local",
  "vagrant",
  "digitalocean",
  "swarm",
  "gluster",
  "ghost",
  "portainer",
  "edge",
  "backup",
  "upgrade",
  "deployTimeout",
  // The secrets but the SSH key, listed above with the other SSH settings.
  ...SECRET_KEYS.filter((k) => k !== "sshPrivateKey"),
];

/** Parses and validates every setting; never throws. */
export function parseConfig(raw: RawConfig, inputs: ConfigInputs): ParseResult {
  const problems = new Problems(inputs.secretKeys);
  const r = new Reader(raw, "", problems);
  r.rejectUnknown(TOP_LEVEL_KEYS);
  const environment = r.oneOf<Environment>("environment", ENVIRONMENTS, "local");
  const nodes = parseNodes(r, environment, problems);
  const sections = {
    local: readSection(r, "local"),
    vagrant: readSection(r, "vagrant"),
    digitalocean: readSection(r, "digitalocean"),
    swarm: readSection(r, "swarm"),
    gluster: readSection(r, "gluster"),
    ghost: readSection(r, "ghost"),
    portainer: readSection(r, "portainer"),
  };
  const edge = readSection(r, "edge");
  const backup = readSection(r, "backup");
  // Backups follow Ghost unless the stack says otherwise: on with Ghost, off without it.
  // (Pulumi hands in Pulumi.yaml's default, which declares no `enabled`, for a stack that sets none.)
  const given = raw["backup"];
  const backupOn = isMap(given) && given["enabled"] != null ? backup.enabled : sections.ghost.enabled;
  // Whether the stack set its backup up itself: a setting other than the defaults.
  const backupChosen =
    isMap(given) &&
    Object.entries(given).some(
      ([k, v]) => JSON.stringify(v) !== JSON.stringify((DEFAULTS.backup as Record<string, unknown>)[k]),
    );
  const upgrade = readSection(r, "upgrade");
  const config: SwarmcloudConfig = {
    environment,
    nodes,
    sshUser:
      r.value("sshUser") === "" ? DEFAULT_SSH_USER[environment] : r.string("sshUser", DEFAULT_SSH_USER[environment]),
    sshPort: r.port("sshPort", DEFAULTS.sshPort),
    hasSshPrivateKey: inputs.sshPrivateKey,
    ...sections,
    // Off: left out, so a stack without the front door parses exactly as before.
    ...(edge.enabled ? { edge } : {}),
    // Off: left out too, so a stack without Ghost, or with backup.enabled false, parses as before.
    ...(backupOn ? { backup: { ...backup, enabled: true } } : {}),
    // No run: left out, so a stack without node upgrades makes no resource for them.
    ...(upgrade.run !== undefined ? { upgrade } : {}),
    deployTimeout: r.integer("deployTimeout", DEFAULTS.deployTimeout, 10),
  };
  const sshPublicKey = raw["sshPublicKey"] !== undefined && raw["sshPublicKey"] !== "";
  validateCluster(config, { ...inputs, sshPublicKey }, problems);
  if (config.backup !== undefined)
    validateBackup(config, config.backup, inputs.backupSecrets ?? [], problems, backupChosen);
  warnPlainOverlay(environment, raw, problems);
  return { config, errors: problems.errors, warnings: problems.warnings };
}

/**
 * On the networks of `ssh` and `vagrant` (a LAN, a host-only network) others may listen: unless
 * the stack chose `swarm.encryptOverlay` itself, say that app traffic between nodes is readable
 * there. The default stays off: the lab's kernel has no ESP, so encryption is untested there
 * (README, "Security"). Pulumi.yaml declares no default for the key, so "not set" is seen here.
 */
function warnPlainOverlay(environment: Environment, raw: RawConfig, problems: Problems): void {
  if (environment !== "ssh" && environment !== "vagrant") return;
  const swarm = raw["swarm"];
  const chosen = isMap(swarm) && swarm["encryptOverlay"] !== undefined && swarm["encryptOverlay"] !== null;
  if (chosen) return;
  problems.warn(
    "swarm.encryptOverlay",
    `not set: the apps' overlay traffic between the ${environment} nodes (Ghost to its database included) is not encrypted, and anyone on their network can read it. Turn it on with swarm.encryptOverlay: true (\`pulumi config set --path swarmcloud:swarm.encryptOverlay true\`; IPsec, which needs ESP in the nodes' kernels: the project's lab kernel has none, so it is untested there; README, "Security"), or set it to false to keep it off without this warning`,
  );
}

/** The settings sections: each one object key of the config, read through its entry in SECTIONS. */
type Section =
  "local" | "vagrant" | "digitalocean" | "swarm" | "gluster" | "ghost" | "portainer" | "edge" | "backup" | "upgrade";

/** The settings of every section, by section (edge's and backup's as read, before parseConfig leaves them out when off). */
type SectionSettings = Pick<SwarmcloudConfig, Exclude<Section, "edge" | "backup" | "upgrade">> & {
  edge: EdgeSettings;
  backup: BackupSettings;
  upgrade: UpgradeSettings;
};

/**
 * How one setting is read: from its section's Reader, under its key, with its default (the
 * section's DEFAULTS entry; undefined for a setting without one). A bad value is reported (key,
 * value, fix) and the default used instead. `undefined` leaves the setting out.
 */
type Field<T> = (s: Reader, key: string, fallback: T) => T;

/**
 * A section's field table: one Field per setting of T. A setting added to the settings interface
 * without a line here, or a line that names no setting, fails to compile.
 */
type Fields<T> = { [K in keyof T]-?: Field<T[K]> };

/** A non-empty string (trimmed). */
const text: Field<string> = (s, key, fallback) => s.string(key, fallback);
/** A TCP/UDP port, 1-65535. */
const port: Field<number> = (s, key, fallback) => s.port(key, fallback);
/** true or false (also as text). */
const flag: Field<boolean> = (s, key, fallback) => s.boolean(key, fallback);
/** A list of strings. */
const list: Field<string[]> = (s, key, fallback) => s.strings(key, fallback);
/** A map of guest port to host port. */
const portMap: Field<Record<string, number>> = (s, key, fallback) => s.portMap(key, fallback);
/** A string without a default: left out when unset (or empty). */
const optionalText: Field<string | undefined> = (s, key) => s.optionalString(key);

/** Ghost's owner, an object of its own: name, e-mail and blog title, each a non-empty string. */
const ghostOwner: Field<GhostOwner> = (s, key, fallback) => {
  const o = s.object(key);
  o.rejectUnknown(["name", "email", "blogTitle"]);
  return {
    name: o.string("name", fallback.name),
    email: o.string("email", fallback.email),
    blogTitle: o.string("blogTitle", fallback.blogTitle),
  };
};

/** A whole number from `min` (up to `max`, when given). */
function wholeNumber(min: number, max?: number): Field<number> {
  return (s, key, fallback) => s.integer(key, fallback, min, max);
}

/** One of the `allowed` words. */
function oneOf<T extends string>(allowed: readonly T[]): Field<T> {
  return (s, key, fallback) => s.oneOf(key, allowed, fallback);
}

/** A port without a default: left out when unset; `whenBad` stands in for a bad value. */
function optionalPort(whenBad: number): Field<number | undefined> {
  return (s, key) => (s.has(key) ? s.port(key, whenBad) : undefined);
}

/** A map of names to strings laid over the default map: the user's entries win, the other defaults stay. */
const overDefaults: Field<Record<string, string>> = (s, key, fallback) => ({ ...fallback, ...s.stringMap(key, {}) });

/** An app's publish and endpoint modes; whether they go together is checked by validatePorts. */
const NETWORKING: Fields<ServiceNetworking> = {
  publishMode: oneOf(PUBLISH_MODES),
  endpointMode: oneOf(ENDPOINT_MODES),
};

/** What the parser knows of one section. */
interface SectionSpec<T> {
  /**
   * How each setting is read, in the order its problems are reported (a section's checks come
   * after its fields); its keys are also the section's known keys, in the order the
   * unknown-setting message lists them.
   */
  fields: Fields<T>;
  /** The section's own checks on the values read; checks that span sections are in validateCluster. */
  check?: (settings: T, s: Reader) => void;
}

/**
 * Every settings section: its field table and its own checks. Defaults live in DEFAULTS (the
 * values Pulumi.yaml declares too); a setting without a default is read by an optional Field.
 */
const SECTIONS: { [S in Section]: SectionSpec<SectionSettings[S]> } = {
  local: {
    fields: { subnet: text, image: text, ghostHostPort: port, portainerHostPort: port },
    check: (local, s) => {
      if (!isCidr(local.subnet)) s.error("subnet", local.subnet, "must be an IPv4 CIDR such as 172.30.0.0/24");
    },
  },
  vagrant: {
    fields: {
      box: text,
      provider: oneOf(VAGRANT_PROVIDERS),
      driver: oneOf(LIBVIRT_DRIVERS),
      memory: wholeNumber(512),
      cpus: wholeNumber(1),
      networkPrefix: text,
      firstHost: wholeNumber(2, 200),
      forwardedPorts: portMap,
    },
    check: (vagrant, s) => {
      if (!isIPv4(`${vagrant.networkPrefix}.1`)) {
        s.error("networkPrefix", vagrant.networkPrefix, "must be three octets such as 192.168.56");
      }
    },
  },
  digitalocean: {
    fields: { region: text, size: text, image: text, vpcCidr: text, adminCidrs: list, tags: list },
    check: (digitalocean, s) => {
      if (!isCidr(digitalocean.vpcCidr)) {
        s.error("vpcCidr", digitalocean.vpcCidr, "must be an IPv4 CIDR such as 10.20.0.0/24");
      }
      cidrList(s, "adminCidrs", digitalocean.adminCidrs, "203.0.113.7/32");
    },
  },
  swarm: {
    fields: {
      dataPathPort: port,
      defaultAddrPool: list,
      encryptOverlay: flag,
      resolveImage: oneOf(RESOLVE_IMAGES),
      pinImages: flag,
      exportManagerToken: flag,
    },
    check: (swarm, s) => cidrList(s, "defaultAddrPool", swarm.defaultAddrPool, "10.10.0.0/16"),
  },
  gluster: {
    fields: {
      volume: text,
      replica: wholeNumber(1),
      arbiter: flag,
      brickNodes: list,
      brickPath: text,
      mountPath: text,
      // Our defaults (network.ping-timeout) stay unless the user sets the same option.
      options: overDefaults,
      purgeOnDestroy: flag,
      tls: flag,
    },
    check: checkGluster,
  },
  ghost: {
    fields: {
      enabled: flag,
      image: text,
      dbImage: text,
      replicas: wholeNumber(0),
      dbReplicas: wholeNumber(0),
      port: port,
      dbPlacement: list,
      ...NETWORKING,
      // Defaults to http://<first manager public address>:<port>, known only once the nodes are.
      url: optionalText,
      owner: ghostOwner,
      updateOrder: oneOf(UPDATE_ORDERS),
      dbUpdateOrder: oneOf(UPDATE_ORDERS),
    },
    check: checkGhost,
  },
  portainer: {
    fields: {
      enabled: flag,
      image: text,
      agentImage: text,
      httpsPort: port,
      ...NETWORKING,
      // Portainer's plain HTTP port is published only when asked for.
      httpPort: optionalPort(9000),
    },
  },
  edge: {
    fields: {
      enabled: flag,
      address: optionalText,
      interface: optionalText,
      holders: oneOf(EDGE_HOLDERS),
      routerId: wholeNumber(1, 255),
      domain: optionalText,
      acmeEmail: optionalText,
      acmeDirectory: optionalText,
      acmeRoot: optionalText,
      image: text,
      portainerPort: port,
    },
    check: checkEdge,
  },
  backup: {
    fields: {
      enabled: flag,
      image: text,
      target: oneOf(BACKUP_TARGETS),
      node: optionalText,
      path: text,
      repository: optionalText,
      sftpHostKey: optionalText,
      intervalHours: wholeNumber(1, 24 * 31),
      keepDaily: wholeNumber(0),
      keepWeekly: wholeNumber(0),
      keepMonthly: wholeNumber(0),
      restoreFrom: optionalText,
      restoreOverExisting: flag,
    },
    check: checkBackup,
  },
  upgrade: {
    fields: {
      run: optionalText,
      packages: flag,
      reboot: oneOf(REBOOT_POLICIES),
      returnSeconds: wholeNumber(60, 7200),
    },
  },
};

/** DEFAULTS seen as each section's settings type (what SECTIONS reads). */
const SECTION_DEFAULTS: SectionSettings = DEFAULTS;

/**
 * One settings section read through its SECTIONS entry: unknown keys reported, every setting
 * read (its default when unset), then the section's own checks.
 */
function readSection<S extends Section>(r: Reader, name: S): SectionSettings[S] {
  const { fields, check } = SECTIONS[name];
  const defaults = SECTION_DEFAULTS[name];
  const s = r.object(name);
  s.rejectUnknown(Object.keys(fields));
  const settings = {} as SectionSettings[S];
  for (const key of Object.keys(fields) as (keyof SectionSettings[S] & string)[]) {
    const value = fields[key](s, key, defaults[key]);
    if (value !== undefined) settings[key] = value;
  }
  check?.(settings, s);
  return settings;
}

/** Every entry of a list setting must be an IPv4 CIDR; `example` goes in the fix. */
function cidrList(s: Reader, key: string, cidrs: string[], example: string): void {
  cidrs.forEach((c, i) => {
    if (!isCidr(c)) s.error(`${key}[${i}]`, c, `must be an IPv4 CIDR such as ${example}`);
  });
}

function checkGluster(gluster: GlusterSettings, s: Reader): void {
  for (const k of ["brickPath", "mountPath"] as const) {
    if (!/^\/[A-Za-z0-9._/-]+$/.test(gluster[k]) || gluster[k] === "/") {
      s.error(k, gluster[k], "must be an absolute path below / (letters, digits, . _ - /)");
    }
  }
  if (!/^[A-Za-z0-9_-]+$/.test(gluster.volume)) {
    s.error("volume", gluster.volume, "must be a plain name (letters, digits, _ and -)");
  }
  // The program keeps auth.allow equal to the node addresses (gluster-allow.sh): a value here would fight it.
  if (gluster.options["auth.allow"] !== undefined) {
    s.error(
      "options.auth.allow",
      gluster.options["auth.allow"],
      `swarmcloud keeps auth.allow equal to the cluster's node addresses (README, "Security"); remove it`,
    );
  }
  // With gluster.tls the program sets these from the node list (components/gluster.ts tlsOptions).
  for (const key of GLUSTER_TLS_OPTIONS) {
    if (gluster.options[key] !== undefined) {
      s.error(
        `options.${key}`,
        gluster.options[key],
        "is set by swarmcloud: use gluster.tls (true or false); remove it",
      );
    }
  }
}

/** The volume options gluster.tls sets: a user's value would fight the program's. */
export const GLUSTER_TLS_OPTIONS = ["server.ssl", "client.ssl", "auth.ssl-allow"] as const;

/** The front door's own settings: an address, an interface name, a domain, the ACME settings that need it. */
function checkEdge(edge: EdgeSettings, s: Reader): void {
  if (edge.address !== undefined && !isIPv4(edge.address)) {
    s.error(
      "address",
      edge.address,
      "must be an IPv4 address such as 192.168.1.250 (a free one on the nodes' network)",
    );
  }
  if (edge.interface !== undefined && !/^[A-Za-z0-9_.@-]{1,15}$/.test(edge.interface)) {
    s.error("interface", edge.interface, "must be a network interface name such as eth0 (at most 15 characters)");
  }
  if (
    edge.domain !== undefined &&
    (!HOSTNAME.test(edge.domain) || !edge.domain.includes(".") || /^[0-9.]+$/.test(edge.domain))
  ) {
    s.error("domain", edge.domain, "must be a DNS name such as blog.example.com that points at the front door");
  }
  if (edge.acmeEmail !== undefined && !EMAIL.test(edge.acmeEmail)) {
    s.error("acmeEmail", edge.acmeEmail, "must be an e-mail address such as you@example.com");
  }
  if (edge.acmeDirectory !== undefined) {
    if (!/^https:\/\/[^\s/]+(\/\S*)?$/.test(edge.acmeDirectory)) {
      s.error(
        "acmeDirectory",
        edge.acmeDirectory,
        "must be an https:// URL such as https://acme-staging-v02.api.letsencrypt.org/directory",
      );
    }
    if (edge.domain === undefined) {
      s.error(
        "acmeDirectory",
        edge.acmeDirectory,
        "needs edge.domain: without a domain Caddy's internal CA signs the address; set edge.domain or remove acmeDirectory",
      );
    }
  }
  if (edge.acmeRoot !== undefined) {
    if (!edge.acmeRoot.includes("-----BEGIN CERTIFICATE-----")) {
      s.error(
        "acmeRoot",
        edge.acmeRoot,
        "must be a PEM certificate (-----BEGIN CERTIFICATE----- ...): the CA that signs the ACME server's own HTTPS certificate",
      );
    }
    if (edge.acmeDirectory === undefined) {
      s.error(
        "acmeRoot",
        "[PEM]",
        "needs edge.acmeDirectory: Let's Encrypt needs no root of its own; set acmeDirectory or remove acmeRoot",
      );
    }
  }
}

/** A restic snapshot id as `restoreFrom` takes it: `latest`, or 8 to 64 hex digits (the short id or the whole one). */
const SNAPSHOT = /^(latest|[0-9a-f]{8,64})$/;

/** What `backup.repository` must look like for each remote target (restic's own repository syntax). */
const BACKUP_REPOSITORY: Record<Exclude<BackupTarget, "local">, [RegExp, string]> = {
  sftp: [/^sftp:(\/\/)?[^\s@/]+@[^\s]+$/, "sftp:backup@192.168.1.5:/srv/restic"],
  s3: [/^s3:(https?:\/\/)?[^\s/]+\/[^\s]+$/, "s3:https://ams3.digitaloceanspaces.com/my-bucket/swarmcloud"],
};

/** The backup's own settings: the repository for its target, the restore keys, the retention. */
function checkBackup(backup: BackupSettings, s: Reader): void {
  if (backup.target === "local") {
    if (backup.repository !== undefined) {
      s.error(
        "repository",
        backup.repository,
        "the local target keeps the repository in backup.path on backup.node; remove repository, or set backup.target: sftp or s3",
      );
    }
    if (!/^\/[A-Za-z0-9._/-]+$/.test(backup.path) || backup.path === "/") {
      s.error("path", backup.path, "must be an absolute path below / (letters, digits, . _ - /)");
    }
  } else {
    const [pattern, example] = BACKUP_REPOSITORY[backup.target];
    if (backup.repository === undefined || !pattern.test(backup.repository)) {
      s.error(
        "repository",
        backup.repository,
        `the ${backup.target} target needs the repository in restic's words, such as ${example}`,
      );
    }
  }
  if (backup.target === "sftp") checkSftpHostKey(backup, s);
  else if (backup.sftpHostKey !== undefined)
    s.error("sftpHostKey", backup.sftpHostKey, `is for the sftp target only; remove it`);
  if (backup.keepDaily + backup.keepWeekly + backup.keepMonthly === 0) {
    s.error(
      "keepDaily",
      0,
      "with keepDaily, keepWeekly and keepMonthly all 0 every snapshot would be forgotten; keep at least one",
    );
  }
  if (backup.restoreFrom !== undefined && !SNAPSHOT.test(backup.restoreFrom)) {
    s.error(
      "restoreFrom",
      backup.restoreFrom,
      "must be latest or a snapshot id (8 to 64 hex digits, as restic snapshots prints it)",
    );
  }
  if (backup.restoreOverExisting && backup.restoreFrom === undefined) {
    s.error(
      "restoreOverExisting",
      true,
      "says what restoreFrom may replace, and restoreFrom is not set; set restoreFrom or remove restoreOverExisting",
    );
  }
}

/** The SFTP server's host key: required (a container has nobody to ask "trust this key?"), an OpenSSH public key line. */
function checkSftpHostKey(backup: BackupSettings, s: Reader): void {
  const host = backup.repository?.replace(/^sftp:(\/\/)?[^@]*@/, "").replace(/[:/].*$/, "") ?? "<host>";
  const scan = `ssh-keyscan -t ed25519 ${host}`;
  if (backup.sftpHostKey === undefined) {
    s.error(
      "sftpHostKey",
      undefined,
      `the sftp target needs the server's SSH host key, checked on every connection: the line \`${scan}\` prints (without the address)`,
    );
    return;
  }
  const key = parseHostKey(backup.sftpHostKey);
  if ("problem" in key)
    s.error("sftpHostKey", backup.sftpHostKey, `${key.problem}; use the line \`${scan}\` prints (without the address)`);
}

/** True when `path` is `dir` or lies below it. */
function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir.replace(/\/$/, "")}/`);
}

/** The backup secrets each target needs besides the repository password. */
const BACKUP_TARGET_SECRETS: Record<BackupTarget, BackupSecretKey[]> = {
  local: [],
  sftp: ["backupSftpKey"],
  s3: ["backupS3AccessKeyId", "backupS3SecretAccessKey"],
};

/**
 * The backup against the rest: Ghost to back up, the target node and folder, the secrets its
 * target and a restore need. `chosen`: the stack has a backup section (not only the default).
 */
function validateBackup(
  c: SwarmcloudConfig,
  backup: BackupSettings,
  secrets: readonly BackupSecretKey[],
  problems: Problems,
  chosen: boolean,
): void {
  if (!c.ghost.enabled) {
    problems.error(
      "backup.enabled",
      true,
      "backs up Ghost's database and content, and ghost.enabled is false; enable Ghost or remove backup.enabled",
    );
  }
  if (backup.target === "local") {
    const node = backup.node ?? c.nodes.find((n) => n.role === "manager")?.name;
    if (backup.node !== undefined && !c.nodes.some((n) => n.name === backup.node)) {
      problems.error(
        "backup.node",
        backup.node,
        `is not a node name; nodes are: ${c.nodes.map((n) => n.name).join(", ")}`,
      );
    }
    for (const [key, dir] of [
      ["gluster.mountPath", c.gluster.mountPath],
      ["gluster.brickPath", c.gluster.brickPath],
    ] as const) {
      if (within(backup.path, dir) || within(dir, backup.path)) {
        problems.error(
          "backup.path",
          backup.path,
          `overlaps ${key} ${dir}: a backup on the volume it backs up is lost with it; pick a folder outside it, such as ${DEFAULTS.backup.path}`,
        );
      }
    }
    // Said only to a stack that set the backup up itself: the default (on with Ghost, the local
    // target) is in the README, and a warning on every preview of every stack would be noise.
    if (c.environment === "local" && node !== undefined && chosen) {
      problems.warn(
        "backup.target",
        `the local environment's nodes are containers that pulumi destroy removes, with ${node}'s ${backup.path}: use an sftp or s3 target for backups that outlive the cluster`,
      );
    }
  }
  for (const key of BACKUP_TARGET_SECRETS[backup.target]) {
    if (!secrets.includes(key)) {
      problems.error(
        key,
        undefined,
        `the ${backup.target} target needs it: pulumi config set --secret swarmcloud:${key} ${key === "backupSftpKey" ? "< ~/.ssh/backup_key" : "<value>"}`,
      );
    }
  }
  if (backup.restoreFrom !== undefined && !secrets.includes("backupPassword")) {
    problems.error(
      "backupPassword",
      undefined,
      "backup.restoreFrom reads a repository made before this stack, whose password a new stack cannot know: set it (the backupRepositoryPassword output of the stack that made it) with pulumi config set --secret swarmcloud:backupPassword",
    );
  }
}

function checkGhost(ghost: GhostSettings, s: Reader): void {
  if (ghost.url !== undefined && !/^https?:\/\/[^\s/]+(\/\S*)?$/.test(ghost.url)) {
    s.error("url", ghost.url, "must be an http:// or https:// URL such as https://blog.example.com");
  }
  checkGhostOwner(ghost.owner, s);
  if (ghost.dbReplicas !== 1) {
    s.error(
      "dbReplicas",
      ghost.dbReplicas,
      "must be 1: two MySQL servers on the same shared files corrupt each other; remove the setting",
    );
  }
  if (ghost.dbUpdateOrder !== DB_UPDATE_ORDER) {
    s.error(
      "dbUpdateOrder",
      ghost.dbUpdateOrder,
      `must be ${DB_UPDATE_ORDER}: a start-first update runs the new database beside the old one on the same data folder, which corrupts it; remove the setting (Ghost itself updates start-first: ghost.updateOrder)`,
    );
  }
  if (ghost.replicas > 1) {
    s.warn(
      "replicas",
      `${ghost.replicas} Ghost replicas share one content folder and one database; Ghost is built as a single writer (scheduler, migrations, uploads), and a new post answers 404 from the other replicas until they restart (each process keeps its own routes): put a load balancer that retries 404 elsewhere in front (docs/load-balancer.md), or keep 1`,
    );
  }
}

/** An e-mail address as Ghost takes one for a login: something@domain.tld, no spaces. */
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** Ghost's owner as its setup takes it: fields within Ghost's lengths, a real e-mail address. */
function checkGhostOwner(owner: GhostOwner, s: Reader): void {
  const limits = { name: 191, email: 191, blogTitle: 150 } as const;
  for (const field of ["name", "email", "blogTitle"] as const) {
    const value = owner[field];
    const control = [...value].some((c) => c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127);
    if (value.length > limits[field] || control) {
      s.error(`owner.${field}`, value, `must be at most ${limits[field]} characters, without control characters`);
    }
  }
  if (!EMAIL.test(owner.email)) {
    s.error("owner.email", owner.email, "must be an e-mail address such as you@example.com (the owner's login)");
  }
}

/** Whether each credential the environments need is set; the values themselves stay in program.ts. */
interface Credentials {
  sshPrivateKey: boolean;
  sshPublicKey: boolean;
  digitaloceanToken?: boolean;
}

/** Checks that span several settings: quorum, names, addresses, ports, bricks, credentials. */
function validateCluster(c: SwarmcloudConfig, credentials: Credentials, problems: Problems): void {
  validateManagers(c, problems);
  const seen = new Map<string, number>();
  c.nodes.forEach((n, i) => {
    const first = seen.get(n.name);
    if (first !== undefined) {
      problems.error(`nodes[${i}].name`, n.name, `duplicates nodes[${first}].name; every node needs its own name`);
    } else {
      seen.set(n.name, i);
    }
  });
  const addresses = new Map<string, string>();
  for (const n of c.nodes) {
    const a = n.privateAddress ?? n.address;
    if (a === undefined) continue;
    const other = addresses.get(a);
    if (other !== undefined) {
      problems.error(`nodes`, a, `nodes ${other} and ${n.name} share the address ${a}; give each its own`);
    }
    addresses.set(a, n.name);
  }
  validateCredentials(c.environment, credentials, problems);
  if (c.environment === "digitalocean" && c.digitalocean.adminCidrs.length === 0) {
    problems.error(
      "digitalocean.adminCidrs",
      [],
      'the program provisions droplets over SSH from your machine, and the firewall admits SSH only from these CIDRs; add your address, e.g. ["203.0.113.7/32"]',
    );
  }
  validateGluster(c, problems);
  validatePorts(c, problems);
  validateGhostUpdates(c, problems);
  if (c.edge !== undefined) validateEdge(c, c.edge, problems);
  if (c.upgrade !== undefined) validateUpgrade(c, problems);
}

/**
 * A node upgrade takes one node out at a time: its manager out of Raft, its brick out of the
 * volume, its tasks onto the other nodes. Refused where that loses the swarm's quorum, the
 * volume's quorum, or the room a drained Ghost task needs.
 */
function validateUpgrade(c: SwarmcloudConfig, problems: Problems): void {
  const run = c.upgrade!.run;
  const managers = c.nodes.filter((n) => n.role === "manager").length;
  if (c.nodes.length > 0 && managers < 3) {
    problems.error(
      "upgrade.run",
      run,
      `a node upgrade takes each manager down in turn, and a swarm of ${managers} manager(s) loses its quorum while one is down; run 3 or more managers (swarmcloud:managers or roles in swarmcloud:nodes), or upgrade these nodes by hand`,
    );
  }
  const bricks = brickNodes(c).length;
  if (c.nodes.length > 0 && bricks < 3) {
    problems.error(
      "upgrade.run",
      run,
      `a node upgrade takes each brick node down in turn, and a volume of ${bricks} brick(s) keeps its quorum (writes go on) only with 3 bricks, one of which may be down; set gluster.replica: 3 (or 3 with gluster.arbiter: true)`,
    );
  }
  const g = c.ghost;
  const active = c.nodes.filter((n) => n.availability === "active").length;
  if (c.nodes.length > 0 && g.enabled && g.publishMode === "host" && g.replicas >= active) {
    problems.error(
      "upgrade.run",
      run,
      `with ghost.publishMode host each Ghost task holds port ${g.port} on its own node, and ${g.replicas} replica(s) on ${active} active node(s) leave no node for the task of a drained one while a node is upgraded; lower ghost.replicas to ${Math.max(active - 1, 1)} or add a node`,
    );
  }
}

/**
 * A start-first update of Ghost published in host mode needs a node whose port is free: each task
 * holds `ghost.port` on its own node, so the new task can only start where no Ghost runs, and
 * with as many replicas as active nodes Swarm could never place it (the update would hang).
 */
function validateGhostUpdates(c: SwarmcloudConfig, problems: Problems): void {
  const g = c.ghost;
  if (!g.enabled || g.publishMode !== "host" || g.updateOrder !== "start-first") return;
  const active = c.nodes.filter((n) => n.availability === "active").length;
  if (g.replicas < active) return;
  problems.error(
    "ghost.updateOrder",
    g.updateOrder,
    `with ghost.publishMode host every Ghost task holds port ${g.port} on its node, so a start-first update needs a node without one, and ${g.replicas} replica(s) on ${active} active node(s) leave none; set ghost.updateOrder: stop-first, lower ghost.replicas, or add a node`,
  );
}

/** The nodes that may hold the front door's address and run its Caddy: the managers, or the nodes labelled edge=true. */
export function edgeNodes<N extends Pick<NodeSpec, "role" | "labels">>(
  nodes: N[],
  edge: Pick<EdgeSettings, "holders">,
): N[] {
  return edge.holders === "managers"
    ? nodes.filter((n) => n.role === "manager")
    : nodes.filter((n) => n.labels[EDGE_LABEL] === "true");
}

/** True when the IPv4 `address` lies inside the IPv4 CIDR `cidr`. */
export function inSubnet(address: string, cidr: string): boolean {
  const [ip, bits] = cidr.split("/") as [string, string];
  const n = (a: string) => a.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - Number(bits));
  return Math.floor(n(address) / size) === Math.floor(n(ip) / size);
}

/** The front door's address on the `local` network: inside the subnet, not the gateway's, no node container's. */
function localEdgeAddress(c: SwarmcloudConfig, address: string, problems: Problems): void {
  const subnet = c.local.subnet;
  if (!inSubnet(address, subnet)) {
    problems.error("edge.address", address, `must lie inside local.subnet ${subnet}, the nodes' network`);
    return;
  }
  // A subnet too small for the nodes is local.ts's error to report; here only what exists counts.
  const host = (n: number): string | undefined => {
    try {
      return subnetHost(subnet, n);
    } catch {
      return undefined;
    }
  };
  const taken = [host(1), ...c.nodes.map((_, i) => host(FIRST_NODE_HOST + i))];
  if (taken.includes(address)) {
    problems.error(
      "edge.address",
      address,
      `is the network's gateway or a node container's address (${taken[0]}, then ${taken[1]} onwards); pick a free one${host(200) === undefined ? "" : ` such as ${host(200)}`}`,
    );
  }
}

/** The front door against the rest: its address per environment, its holders among the nodes. */
function validateEdge(c: SwarmcloudConfig, edge: EdgeSettings, problems: Problems): void {
  if (c.environment === "digitalocean") {
    for (const key of ["address", "interface"] as const) {
      if (edge[key] !== undefined) {
        problems.error(
          `edge.${key}`,
          edge[key],
          "DigitalOcean's load balancer is the front door's address there; remove it",
        );
      }
    }
  } else if (edge.address === undefined) {
    problems.error(
      "edge.address",
      undefined,
      `the ${c.environment} environment needs a floating address for the front door: a free IPv4 address on the nodes' network that no DHCP server hands out${c.environment === "local" ? ` (inside local.subnet ${c.local.subnet})` : ""}`,
    );
  } else if (isIPv4(edge.address)) {
    const taken = c.nodes.find((n) => (n.privateAddress ?? n.address) === edge.address || n.address === edge.address);
    if (taken !== undefined) {
      problems.error("edge.address", edge.address, `is node ${taken.name}'s address; pick a free one`);
    }
    if (c.environment === "local" && isCidr(c.local.subnet)) localEdgeAddress(c, edge.address, problems);
    if (c.environment === "vagrant" && !edge.address.startsWith(`${c.vagrant.networkPrefix}.`)) {
      problems.error(
        "edge.address",
        edge.address,
        `must lie on the VMs' network ${c.vagrant.networkPrefix}.0/24 (vagrant.networkPrefix)`,
      );
    }
  }
  const holders = edgeNodes(c.nodes, edge);
  if (c.nodes.length > 0 && holders.length === 0) {
    problems.error(
      "edge.holders",
      edge.holders,
      `no node is labelled ${EDGE_LABEL}=true; add labels: {${EDGE_LABEL}: "true"} to two or more nodes in swarmcloud:nodes, or set edge.holders: managers`,
    );
  } else if (holders.length === 1) {
    problems.warn(
      "edge.holders",
      `only ${holders[0]!.name} may hold the front door: its address has nowhere to move when that node is down; mark two or more`,
    );
  }
}

/** A swarm needs managers, and an odd count of at most 7 of them. */
function validateManagers(c: SwarmcloudConfig, problems: Problems): void {
  const managers = c.nodes.filter((n) => n.role === "manager");
  if (c.nodes.length === 0) {
    // The ssh environment already reported its missing host list.
    if (c.environment !== "ssh") problems.error("managers", 0, "a swarm needs at least one manager; use 1, 3 or 5");
  } else if (managers.length === 0) {
    problems.error(
      "managers",
      0,
      "a swarm needs at least one manager; use 1, 3 or 5 (or set role: manager on a node in swarmcloud:nodes)",
    );
  } else if (managers.length > 0 && managers.length % 2 === 0) {
    const tolerated = Math.floor((managers.length - 1) / 2);
    problems.warn(
      "managers",
      `${managers.length} managers tolerate the loss of ${tolerated} (a swarm of N managers survives (N-1)/2 losses, so ${managers.length} is no safer than ${managers.length - 1}); use an odd count such as ${managers.length + 1} or ${managers.length - 1}`,
    );
  }
  if (managers.length > 7) {
    problems.warn("managers", `${managers.length} managers slow every Raft write; Docker recommends at most 7`);
  }
}

/** The credentials an environment cannot start without: the ssh key, DigitalOcean's token and key pair. */
function validateCredentials(environment: Environment, credentials: Credentials, problems: Problems): void {
  if (environment === "ssh" && !credentials.sshPrivateKey) {
    problems.error(
      "sshPrivateKey",
      undefined,
      "the ssh environment needs a private key: pulumi config set --secret swarmcloud:sshPrivateKey < ~/.ssh/id_ed25519",
    );
  }
  if (environment !== "digitalocean") return;
  if (!credentials.digitaloceanToken) {
    problems.error(
      "token",
      undefined,
      "the digitalocean environment needs an API token: pulumi config set --secret digitalocean:token (or export DIGITALOCEAN_TOKEN)",
      "digitalocean",
    );
  }
  if (!credentials.sshPublicKey || !credentials.sshPrivateKey) {
    problems.error(
      credentials.sshPublicKey ? "sshPrivateKey" : "sshPublicKey",
      undefined,
      'the digitalocean environment needs an SSH key pair: pulumi config set swarmcloud:sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)" and pulumi config set --secret swarmcloud:sshPrivateKey < ~/.ssh/id_ed25519',
    );
  }
}

function validateGluster(c: SwarmcloudConfig, problems: Problems): void {
  const g = c.gluster;
  const names = new Set(c.nodes.map((n) => n.name));
  g.brickNodes.forEach((b, i) => {
    if (!names.has(b)) {
      problems.error(`gluster.brickNodes[${i}]`, b, `is not a node name; nodes are: ${[...names].join(", ")}`);
    }
  });
  if (new Set(g.brickNodes).size !== g.brickNodes.length) {
    problems.error("gluster.brickNodes", g.brickNodes, "lists a node twice; each node holds at most one brick");
  }
  const holders = g.brickNodes.length > 0 ? g.brickNodes.length : c.nodes.length;
  if (c.nodes.length > 0 && g.replica > holders) {
    problems.error(
      "gluster.replica",
      g.replica,
      `needs ${g.replica} nodes that hold bricks but only ${holders} do; lower the replica or add nodes`,
    );
  }
  if (g.brickNodes.length > 0 && g.brickNodes.length !== g.replica) {
    problems.error(
      "gluster.brickNodes",
      g.brickNodes,
      `lists ${g.brickNodes.length} nodes but gluster.replica is ${g.replica}: the volume keeps one copy on each brick node, so list exactly ${g.replica} nodes or set gluster.replica to ${g.brickNodes.length}`,
    );
  }
  if (g.replica === 2 && !g.arbiter) {
    problems.warn(
      "gluster.replica",
      "replica 2 invites split-brain (two copies cannot outvote each other); use 3, or 3 with gluster.arbiter: true",
    );
  }
  if (g.arbiter && g.replica !== 3) {
    problems.error(
      "gluster.arbiter",
      true,
      "an arbiter volume is replica 3 (two data bricks + one arbiter); set gluster.replica: 3",
    );
  }
}

/** The ports the front door's Caddy publishes on every edge node (host mode). */
export const EDGE_HTTP_PORT = 80;
export const EDGE_HTTPS_PORT = 443;

/** Who a published port is for: everyone (the blog), or the cluster's admins only (Portainer: root on every node). */
export type PortAudience = "public" | "admin";

/**
 * The ports the enabled apps publish on every node, each with the key that sets it and who it is
 * for: the DigitalOcean firewall opens the public ones to the world and the admin ones to
 * `digitalocean.adminCidrs` (nodes/source.ts), and validatePorts keeps them apart.
 */
export function appPorts(
  c: Pick<SwarmcloudConfig, "ghost" | "portainer" | "edge">,
): [key: string, port: number, audience: PortAudience][] {
  const ports: [string, number, PortAudience][] = [];
  // With the front door on, the world comes in on 80 and 443 only; Ghost's own port is for admins.
  if (c.ghost.enabled) ports.push(["ghost.port", c.ghost.port, c.edge === undefined ? "public" : "admin"]);
  if (c.portainer.enabled) {
    ports.push(["portainer.httpsPort", c.portainer.httpsPort, "admin"]);
    if (c.portainer.httpPort !== undefined) ports.push(["portainer.httpPort", c.portainer.httpPort, "admin"]);
  }
  if (c.edge !== undefined) {
    ports.push(["edge (HTTP)", EDGE_HTTP_PORT, "public"], ["edge (HTTPS)", EDGE_HTTPS_PORT, "public"]);
    if (c.portainer.enabled) ports.push(["edge.portainerPort", c.edge.portainerPort, "admin"]);
  }
  return ports;
}

function validatePorts(c: SwarmcloudConfig, problems: Problems): void {
  const published: [string, number][] = appPorts(c).map(([key, port]) => [key, port]);
  // The Portainer agent listens on its port on every node.
  if (c.portainer.enabled) published.push(["portainer agent", PORTAINER_AGENT_PORT]);
  published.push(["swarm.dataPathPort", c.swarm.dataPathPort]);
  const reserved: [string, number][] = [
    ["swarm management (2377)", 2377],
    ["swarm gossip (7946)", 7946],
    ["gluster daemon (24007)", 24007],
  ];
  const byPort = new Map<number, string>();
  for (const [key, port] of [...reserved, ...published]) {
    const other = byPort.get(port);
    if (other !== undefined) {
      problems.error(key, port, `port ${port} is already taken by ${other}; pick another port`);
    } else {
      byPort.set(port, key);
    }
  }
  for (const [key, settings] of [
    ["ghost", c.ghost],
    ["portainer", c.portainer],
  ] as const) {
    if (settings.enabled) problems.errors.push(...networkingErrors(key, settings));
  }
  if (c.environment === "local") {
    const l = c.local;
    if (l.ghostHostPort === l.portainerHostPort) {
      problems.error(
        "local.portainerHostPort",
        l.portainerHostPort,
        "is also local.ghostHostPort; pick another host port",
      );
    }
  }
}

/** The nodes that hold Gluster bricks, in brick order. */
export function brickNodes(c: Pick<SwarmcloudConfig, "nodes" | "gluster">): NodeSpec[] {
  if (c.gluster.brickNodes.length > 0) {
    return c.gluster.brickNodes
      .map((name) => c.nodes.find((n) => n.name === name))
      .filter((n): n is NodeSpec => n !== undefined);
  }
  const ordered = [...c.nodes.filter((n) => n.role === "manager"), ...c.nodes.filter((n) => n.role === "worker")];
  return ordered.slice(0, c.gluster.replica);
}

/**
 * Refuses a new `gluster.volume` on a stack whose volume has another name: the program would make
 * a new, empty volume and move the bricks of the one holding the data aside. `previous` is the
 * volume name the last update exported (undefined on the first update, or one made before the
 * name was exported). Returns the problem, or undefined.
 */
export function volumeRenameProblem(previous: unknown, next: string): string | undefined {
  if (typeof previous !== "string" || previous === "" || previous === next) return undefined;
  return (
    `swarmcloud:gluster.volume = ${JSON.stringify(next)}: this stack's volume is ${JSON.stringify(previous)}, and ` +
    `its bricks hold the applications' data (the database, Ghost's content, Portainer's); a new name would make a ` +
    `new, empty volume and move those bricks aside. Set gluster.volume back to ${JSON.stringify(previous)}. To ` +
    `start afresh under another name, copy the data out, run pulumi destroy, then pulumi up with the new name.`
  );
}

/** Raft fault tolerance of a manager count: N managers survive floor((N-1)/2) losses. */
export function quorumTolerance(managers: number): number {
  return managers <= 0 ? 0 : Math.floor((managers - 1) / 2);
}

/**
 * Refuses a manager change that would lose the swarm's quorum: of the managers the swarm has
 * now, more than (N-1)/2 demoted or removed in one update. Returns the problem, or undefined.
 * `previous` is the node list the last update exported (undefined on the first one).
 */
export function quorumProblem(
  previous: { name: string; role: string }[] | undefined,
  next: Pick<NodeSpec, "name" | "role">[],
): string | undefined {
  if (previous === undefined) return undefined;
  const before = previous.filter((n) => n.role === "manager").map((n) => n.name);
  const stillManagers = new Set(next.filter((n) => n.role === "manager").map((n) => n.name));
  const leaving = before.filter((name) => !stillManagers.has(name));
  const tolerated = quorumTolerance(before.length);
  if (leaving.length === 0 || leaving.length <= tolerated) return undefined;
  const remaining = before.length - leaving.length;
  return (
    `swarmcloud:nodes: this update removes or demotes ${leaving.length} of the swarm's ${before.length} managers ` +
    `(${leaving.join(", ")}), leaving ${remaining}; a swarm of ${before.length} managers keeps its quorum only while ` +
    `${Math.floor(before.length / 2) + 1} remain, so Raft could lose its majority mid-change. Change at most ${tolerated} ` +
    `manager(s) per pulumi up (add the new managers first, then retire the old ones in steps).`
  );
}
