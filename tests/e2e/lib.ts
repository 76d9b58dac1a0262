/**
 * Shared helpers of the lab suites: the real Pulumi CLI against a throw-away file backend, the
 * lab harness (tests/lab/lab.sh), SSH to lab nodes, and the JSON report.
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";

/** The repository root: the nearest folder above this file with a Pulumi.yaml (also from bin/). */
function findRepo(dir: string): string {
  for (let d = dir; ; d = path.dirname(d)) {
    if (fs.existsSync(path.join(d, "Pulumi.yaml"))) return d;
    if (path.dirname(d) === d) throw new Error(`no Pulumi.yaml above ${dir}`);
  }
}
export const REPO = findRepo(__dirname);
export const LAB = path.join(REPO, "tests", "lab", "lab.sh");
export const LAB_DIR = process.env.SWARMCLOUD_LAB_DIR ?? "/tmp/swarmcloud-lab";
/**
 * The Debian release of the lab's nodes and images (SWARMCLOUD_LAB_DEBIAN, read by lab.sh and
 * tests/lab/images/build.sh too): trixie (Debian 13, default) or bookworm (Debian 12).
 */
export const LAB_DEBIAN = process.env.SWARMCLOUD_LAB_DEBIAN ?? "trixie";
/** The tag of every image the lab builds: lab-<release>, so both releases' images live side by side. */
export const LAB_TAG = `lab-${LAB_DEBIAN}`;
/** The node image lab.sh builds from node-image/ (its SWARMCLOUD_LAB_IMAGE default). */
export const LAB_NODE_IMAGE = `swarmcloud-node:${LAB_TAG}`;
const DOCKER = "/usr/bin/docker";

export interface LabNode {
  name: string;
  container: string;
  role: "manager" | "worker";
  address: string;
  /** The SSH host key lab.sh made for the node (`ssh-ed25519 <base64>`), for a suite that pins it. */
  hostKey?: string;
}
export interface Inventory {
  privateKeyPath: string;
  nodes: LabNode[];
}

export function sh(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? REPO,
    env: opts.env ?? process.env,
    input: opts.input,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** Runs the lab harness; throws with its output when it fails. */
export function lab(...args: string[]): string {
  const r = sh("bash", [LAB, ...args]);
  if (r.code !== 0) throw new Error(`lab.sh ${args.join(" ")} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

export function inventory(): Inventory {
  return JSON.parse(fs.readFileSync(path.join(LAB_DIR, "inventory.json"), "utf8")) as Inventory;
}

/** ssh's arguments to run COMMAND on a lab node as root (lab keys, no host key check). */
function sshArgs(node: LabNode, inv: Inventory, command: string): string[] {
  return [
    ...["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"],
    ...["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "-i", inv.privateKeyPath],
    `root@${node.address}`,
    command,
  ];
}

/** Runs a command on a lab node as root over SSH; returns stdout, throws on failure. */
export function onNode(node: LabNode, command: string, inv = inventory()): string {
  const r = sh("ssh", sshArgs(node, inv, command));
  if (r.code !== 0) throw new Error(`${node.name}: '${command}' failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

/** What a lab node runs: its Debian release (VERSION_CODENAME), Docker's and GlusterFS's versions. */
export interface NodePlatform {
  debian: string;
  docker: string;
  gluster: string;
}

/** Asks a lab node what it runs (for the suites' reports: the release their numbers were measured on). */
export function nodePlatform(node: LabNode, inv = inventory()): NodePlatform {
  const out = onNode(
    node,
    ". /etc/os-release && echo \"$VERSION_CODENAME\" && docker version --format '{{.Server.Version}}' && " +
      "glusterd --version | awk 'NR == 1 { print $2 }'",
    inv,
  );
  const [debian = "", docker = "", gluster = ""] = out.split("\n").map((l) => l.trim());
  return { debian, docker, gluster };
}

/**
 * Runs shell on a lab node as root over SSH with the given environment exported first, the way
 * RemoteScript does (the text goes on stdin). Returns the exit code and output; never throws on
 * a failing script.
 */
export function runOnNode(
  node: LabNode,
  text: string,
  env: Record<string, string> = {},
  inv = inventory(),
): { code: number; stdout: string; stderr: string } {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const exports = Object.entries(env)
    .map(([k, v]) => `export ${k}=${quote(v)}`)
    .join("\n");
  return sh("ssh", sshArgs(node, inv, "bash -s"), { input: `${exports}\n${text}` });
}

/** Accepted SSH logins on a node so far (sshd logs to the container's log). */
export function sshLogins(node: LabNode): number {
  return sshLog(node).filter((l) => l.includes("Accepted publickey")).length;
}

/** The lines of a node's container log (sshd logs there), all or since an RFC 3339 time. */
export function sshLog(node: LabNode, since?: string): string[] {
  const r = sh(DOCKER, ["logs", ...(since ? ["--since", since] : []), node.container]);
  return (r.stdout + r.stderr).split("\n");
}

/** A Pulumi CLI bound to one stack in a file backend. */
export class PulumiCli {
  readonly env: NodeJS.ProcessEnv;
  readonly stateDir: string;

  /** The Pulumi home (plugins, credentials) of this CLI. */
  readonly home: string;

  /**
   * A fresh backend and Pulumi home, or those of a stack another suite handed off (`LabHandoff`),
   * or `stateDir` alone (made when missing) for a suite that keeps its stack for a later run of it.
   */
  constructor(
    readonly stack: string,
    engineBin: string,
    dirs: { stateDir?: string; home?: string } = {},
  ) {
    if (dirs.stateDir) fs.mkdirSync(dirs.stateDir, { recursive: true });
    this.stateDir = dirs.stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-state-"));
    const home = dirs.home ?? fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-home-"));
    this.home = home;
    this.env = {
      ...process.env,
      PATH: `${engineBin}:${path.join(REPO, "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
      PULUMI_HOME: home,
      PULUMI_BACKEND_URL: `file://${this.stateDir}`,
      PULUMI_CONFIG_PASSPHRASE: "swarmcloud-lab-passphrase",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
      PULUMI_SKIP_CONFIRMATIONS: "true",
      // Type checking is `npm run build`'s job; the engine only needs the JavaScript.
      PULUMI_NODEJS_TRANSPILE_ONLY: "true",
    };
  }

  /** Runs the CLI; `env` adds variables (e.g. SWARMCLOUD_FORGET_HOST_KEYS) for this run only. */
  run(args: string[], input?: string, env: NodeJS.ProcessEnv = {}) {
    return sh("pulumi", [...args, "--stack", this.stack, "--non-interactive"], { env: { ...this.env, ...env }, input });
  }

  /** Runs and throws with the CLI's output on failure. */
  must(args: string[], input?: string, env: NodeJS.ProcessEnv = {}): string {
    const r = this.run(args, input, env);
    if (r.code !== 0) throw new Error(`pulumi ${args.join(" ")} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  }

  init(): void {
    const r = sh("pulumi", ["stack", "init", this.stack, "--non-interactive"], { env: this.env });
    if (r.code !== 0) throw new Error(`pulumi stack init failed: ${r.stderr}${r.stdout}`);
  }

  /** The stack's settings file in the project directory (git-ignored for lab stacks). */
  get stackFile(): string {
    return path.join(REPO, `Pulumi.${this.stack}.yaml`);
  }

  /** Sets plain (non-secret) values, structured ones included, by editing the stack file. */
  setConfig(values: Record<string, unknown>): void {
    const doc = (yaml.load(fs.readFileSync(this.stackFile, "utf8")) ?? {}) as { config?: Record<string, unknown> };
    doc.config = doc.config ?? {};
    for (const [k, v] of Object.entries(values)) doc.config[`swarmcloud:${k}`] = v;
    fs.writeFileSync(this.stackFile, yaml.dump(doc));
  }

  /** Sets a secret through the CLI (encrypted with the passphrase), value on stdin. */
  setSecret(key: string, value: string): void {
    this.must(["config", "set", "--secret", `swarmcloud:${key}`], value);
  }

  removeStack(): void {
    this.run(["stack", "rm", "--yes", "--force"]);
    fs.rmSync(this.stackFile, { force: true });
  }

  /** Timed `pulumi up`; returns seconds and the JSON summary of the operation. */
  up(extra: string[] = [], env: NodeJS.ProcessEnv = {}): { seconds: number; output: string } {
    const t0 = Date.now();
    const output = this.must(["up", "--yes", "--skip-preview", "--parallel", "64", ...extra], undefined, env);
    return { seconds: (Date.now() - t0) / 1000, output };
  }

  /** `pulumi up` that may fail: exit code, seconds and everything it printed. */
  tryUp(env: NodeJS.ProcessEnv = {}): { code: number; seconds: number; output: string } {
    const t0 = Date.now();
    const r = this.run(["up", "--yes", "--skip-preview", "--parallel", "64"], undefined, env);
    return { code: r.code, seconds: (Date.now() - t0) / 1000, output: `${r.stdout}\n${r.stderr}` };
  }

  preview(extra: string[] = []): { seconds: number; steps: PreviewStep[] } {
    const t0 = Date.now();
    const out = this.must(["preview", "--json", "--parallel", "64", ...extra]);
    const seconds = (Date.now() - t0) / 1000;
    const parsed = JSON.parse(out) as { steps?: PreviewStep[] };
    return { seconds, steps: parsed.steps ?? [] };
  }

  destroy(): number {
    const t0 = Date.now();
    this.must(["destroy", "--yes", "--skip-preview", "--parallel", "64"]);
    return (Date.now() - t0) / 1000;
  }

  outputs(): Record<string, unknown> {
    return JSON.parse(this.must(["stack", "output", "--json", "--show-secrets"])) as Record<string, unknown>;
  }

  exportState(): string {
    return this.must(["stack", "export"]);
  }
}

export interface PreviewStep {
  op: string;
  urn: string;
}

/** Steps that change something (not `same`, not a `read`), as "op name" strings. */
export function changes(steps: PreviewStep[]): string[] {
  return steps.filter((s) => s.op !== "same" && s.op !== "read").map((s) => `${s.op} ${s.urn.split("::").pop()}`);
}

/** The Pulumi engine's bin dir (built from Go modules when no pulumi is on PATH). */
export function engineBin(): string {
  const out = execFileSync("bash", [path.join(REPO, "tools", "engine.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  return out.trim().split("\n").pop()!;
}

/** Collects named timings and facts; written to reports/<suite>-<time>.json at the end. */
export class Report {
  readonly data: Record<string, unknown> = {};
  constructor(readonly suite: string) {
    this.data.suite = suite;
    this.data.startedAt = new Date().toISOString();
  }
  set(key: string, value: unknown): void {
    this.data[key] = value;
  }
  write(): string {
    const dir = path.join(REPO, "reports");
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${this.suite}-${Date.now()}.json`);
    fs.writeFileSync(file, JSON.stringify(this.data, null, 2));
    fs.writeFileSync(path.join(dir, `${this.suite}-latest.json`), JSON.stringify(this.data, null, 2));
    return file;
  }
}

/** Lab-only images (tests/lab/images): no registry here, so the lab builds what it runs. */
export const LAB_IMAGES = {
  ghost: `swarmcloud-lab/ghost:${LAB_TAG}`,
  db: `swarmcloud-lab/mariadb:${LAB_TAG}`,
  portainer: `swarmcloud-lab/portainer-standin:${LAB_TAG}`,
  portainerAgent: `swarmcloud-lab/portainer-agent-standin:${LAB_TAG}`,
  /** The front door's Caddy (built with WITH_EDGE=1). */
  caddy: `swarmcloud-lab/caddy:${LAB_TAG}`,
  /** The backup's restic (built with WITH_BACKUP=1). */
  restic: `swarmcloud-lab/restic:${LAB_TAG}`,
};

/**
 * The stack configuration for lab nodes: the `ssh` environment over the lab inventory. With
 * apps, the lab images, host-mode ports and dnsrr (no IPVS here: no ingress mesh, no VIPs).
 */
export function labConfig(
  inv: Inventory,
  opts: {
    apps: boolean;
    ghostReplicas?: number;
    /** Pin each node's host key (the inventory's `hostKey`, made by lab.sh). Default false: trust on first use. */
    pinHostKeys?: boolean;
    /** Extra swarm labels, by node name. */
    labels?: Record<string, Record<string, string>>;
  },
): Record<string, unknown> {
  const networking = { publishMode: "host", endpointMode: "dnsrr" };
  return {
    environment: "ssh",
    nodes: inv.nodes.map((n) => ({
      name: n.name,
      role: n.role,
      address: n.address,
      ...(opts.pinHostKeys && n.hostKey ? { hostKey: n.hostKey } : {}),
      labels: {
        "swarmcloud.lab": "true",
        tier: n.role === "manager" ? "control" : "app",
        ...(opts.labels?.[n.name] ?? {}),
      },
    })),
    // The lab's kernel has no ESP (an encrypted overlay passes nothing there): off, chosen, so no warning.
    swarm: { resolveImage: "never", encryptOverlay: false },
    deployTimeout: 600,
    ghost: opts.apps
      ? {
          enabled: true,
          image: LAB_IMAGES.ghost,
          dbImage: LAB_IMAGES.db,
          replicas: opts.ghostReplicas ?? 1,
          owner: LAB_OWNER,
          ...networking,
        }
      : { enabled: false },
    portainer: opts.apps
      ? { enabled: true, image: LAB_IMAGES.portainer, agentImage: LAB_IMAGES.portainerAgent, ...networking }
      : { enabled: false },
    // Backups follow Ghost by default; these suites measure the cluster without the backup
    // service (the backup suite's own config replaces this key, and leaves `enabled` unset).
    ...(opts.apps ? { backup: { enabled: false } } : {}),
  };
}

/** Ghost's owner in the lab (swarmcloud:ghost.owner); the program sets it up, the suites log in as it. */
export const LAB_OWNER = { name: "Lab Owner", email: "owner@swarmcloud.test", blogTitle: "swarmcloud lab" };

/** Lab passwords, given as config secrets (the random provider's plugin cannot be built here). */
export const LAB_PASSWORDS = {
  ghostDbPassword: `ghost-db-${process.pid}-Xq7`,
  dbRootPassword: `db-root-${process.pid}-Zr4`,
  portainerAdminPassword: `portainer-${process.pid}-Wm9`,
  // Ghost takes 10 characters or more, not a common word.
  ghostOwnerPassword: `Owner-${process.pid}-Vq8-tundra`,
};

/** Polls `probe` (sync or async) every 500 ms until it returns a value other than undefined/false. */
export async function waitFor<T>(
  what: string,
  seconds: number,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out after ${seconds}s waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

/**
 * A deployed lab stack one suite leaves to the next (`SWARMCLOUD_LAB_HANDOFF=1`): the apps suite
 * keeps its cluster and writes this file; the security and drift suites attach to it instead of
 * deploying their own, and keep it too, for the suite after them. No suite of the chain destroys
 * it: the file is kept in the lab dir, so `lab.sh down` removes it with the nodes (CI runs that
 * after the last suite that takes the cluster; every suite starts with it when it deploys).
 */
export interface LabHandoff {
  stack: string;
  stateDir: string;
  home: string;
  /** The suite that deployed it. */
  by: string;
}

const HANDOFF_FILE = path.join(LAB_DIR, "handoff.json");

/** Whether this run hands its cluster on (and takes one handed to it). */
export function handingOff(): boolean {
  return process.env.SWARMCLOUD_LAB_HANDOFF === "1";
}

export function writeHandoff(cli: PulumiCli, by: string): void {
  const handoff: LabHandoff = { stack: cli.stack, stateDir: cli.stateDir, home: cli.home, by };
  fs.writeFileSync(HANDOFF_FILE, JSON.stringify(handoff, null, 2));
}

/** The stack handed off by an earlier suite, when this run takes one and there is one. */
export function readHandoff(): LabHandoff | undefined {
  if (!handingOff() || !fs.existsSync(HANDOFF_FILE)) return undefined;
  return JSON.parse(fs.readFileSync(HANDOFF_FILE, "utf8")) as LabHandoff;
}

/**
 * The apps suites' cluster, up to the first `pulumi up`: the lab images, 3 managers and 2
 * workers (lab.sh down first), the images loaded on every node, a fresh stack with the apps
 * config, the lab key and passwords. Used by apps.e2e.ts and security.e2e.ts.
 */
export function prepareAppsLab(stack: string, report: Report): { cli: PulumiCli; inv: Inventory } {
  const bin = engineBin();
  lab("engine");
  lab("image");
  const t0 = Date.now();
  const built = sh("bash", [path.join(REPO, "tests/lab/images/build.sh"), "all"]);
  if (built.code !== 0) throw new Error(`lab images: ${built.stderr}${built.stdout}`);
  report.set("labImagesSeconds", (Date.now() - t0) / 1000);
  lab("down");
  lab("up", "3", "2");
  const t1 = Date.now();
  const loaded = sh("bash", [path.join(REPO, "tests/lab/images/build.sh"), "load-inventory"]);
  if (loaded.code !== 0) throw new Error(`loading lab images: ${loaded.stderr}${loaded.stdout}`);
  report.set("imageLoadSeconds", (Date.now() - t1) / 1000);
  const inv = inventory();
  const cli = new PulumiCli(stack, bin);
  cli.init();
  cli.setConfig(labConfig(inv, { apps: true }));
  cli.setSecret("sshPrivateKey", fs.readFileSync(inv.privateKeyPath, "utf8"));
  for (const [k, v] of Object.entries(LAB_PASSWORDS)) cli.setSecret(k, v);
  return { cli, inv };
}

/**
 * What a failed `pulumi up` said about its failure: the Diagnostics section (each failed
 * resource's error) without the Outputs and Resources summary that follows it, so a long
 * outputs diff cannot push the error out of a test's message. The tail when there is none.
 */
export function diagnostics(out: string, max = 6000): string {
  const start = out.indexOf("Diagnostics:");
  if (start < 0) return out.slice(-max);
  const rest = out.slice(start);
  const end = rest.search(/\n[^\n]*(Outputs:|Resources:)/);
  return (end < 0 ? rest : rest.slice(0, end)).slice(0, max);
}

/**
 * Samples every process's command line on a node (`ps -eww -o args`) every `every` seconds
 * in the background until stopped; `stop()` returns everything seen. For checks that a secret
 * never reaches a command line while a step runs there.
 */
export function watchProcesses(node: LabNode, every = 0.1): { stop: () => string } {
  const log = `/tmp/swarmcloud-ps-${process.pid}.log`;
  const started = runOnNode(
    node,
    `nohup bash -c 'while :; do ps -eww -o args; sleep ${every}; done' >${log} 2>&1 </dev/null &\necho $! >${log}.pid`,
  );
  if (started.code !== 0) throw new Error(`${node.name}: the process watcher did not start: ${started.stderr}`);
  return {
    stop: () => {
      onNode(node, `kill $(cat ${log}.pid) 2>/dev/null || true`);
      return onNode(node, `cat ${log}; rm -f ${log} ${log}.pid`);
    },
  };
}

/** The lab node with this swarm hostname. */
export function byHostname(hostname: string): LabNode {
  const n = inventory().nodes.find((x) => x.name === hostname);
  if (!n) throw new Error(`no lab node ${hostname}`);
  return n;
}

/** A manager that answers, for swarm-side checks. */
export function anyManager(except?: string): LabNode {
  for (const m of inventory().nodes.filter((n) => n.role === "manager" && n.name !== except)) {
    try {
      if (onNode(m, "docker info --format '{{.Swarm.ControlAvailable}}'") === "true") return m;
    } catch {
      // try the next one
    }
  }
  throw new Error("no manager answers");
}

/** Nodes where a service has a running task. */
export function runningOn(service: string, except?: string): LabNode[] {
  const out = onNode(
    anyManager(except),
    `docker service ps ${service} --filter desired-state=running --format '{{.Node}} {{.CurrentState}}'`,
  );
  return out
    .split("\n")
    .filter((l) => / Running /.test(` ${l} `))
    .map((l) => byHostname(l.split(" ")[0]!));
}
