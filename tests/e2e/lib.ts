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
const DOCKER = "/usr/bin/docker";

export interface LabNode {
  name: string;
  container: string;
  role: "manager" | "worker";
  address: string;
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
  const r = sh(DOCKER, ["logs", node.container]);
  return (r.stdout + r.stderr).split("\n").filter((l) => l.includes("Accepted publickey")).length;
}

/**
 * A Pulumi CLI bound to one stack in a file backend: a fresh one, or `stateDir` (made when
 * missing) for a suite that keeps its stack to share it with a later run.
 */
export class PulumiCli {
  readonly env: NodeJS.ProcessEnv;
  readonly stateDir: string;

  constructor(
    readonly stack: string,
    engineBin: string,
    opts: { stateDir?: string } = {},
  ) {
    if (opts.stateDir) fs.mkdirSync(opts.stateDir, { recursive: true });
    this.stateDir = opts.stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-state-"));
    const home = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-home-"));
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

  run(args: string[], input?: string) {
    return sh("pulumi", [...args, "--stack", this.stack, "--non-interactive"], { env: this.env, input });
  }

  /** Runs and throws with the CLI's output on failure. */
  must(args: string[], input?: string): string {
    const r = this.run(args, input);
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
  up(extra: string[] = []): { seconds: number; output: string } {
    const t0 = Date.now();
    const output = this.must(["up", "--yes", "--skip-preview", "--parallel", "64", ...extra]);
    return { seconds: (Date.now() - t0) / 1000, output };
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
  const out = execFileSync("bash", [path.join(REPO, "scripts", "engine.sh")], {
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
  ghost: "swarmcloud-lab/ghost:lab",
  db: "swarmcloud-lab/mariadb:lab",
  portainer: "swarmcloud-lab/portainer-standin:lab",
  portainerAgent: "swarmcloud-lab/portainer-agent-standin:lab",
};

/**
 * The stack configuration for lab nodes: the `ssh` environment over the lab inventory. With
 * apps, the lab images, host-mode ports and dnsrr (no IPVS here: no ingress mesh, no VIPs).
 */
export function labConfig(inv: Inventory, opts: { apps: boolean; ghostReplicas?: number }): Record<string, unknown> {
  const networking = { publishMode: "host", endpointMode: "dnsrr" };
  return {
    environment: "ssh",
    nodes: inv.nodes.map((n) => ({
      name: n.name,
      role: n.role,
      address: n.address,
      labels: { "swarmcloud.lab": "true", tier: n.role === "manager" ? "control" : "app" },
    })),
    swarm: { resolveImage: "never" },
    deployTimeout: 600,
    ghost: opts.apps
      ? {
          enabled: true,
          image: LAB_IMAGES.ghost,
          dbImage: LAB_IMAGES.db,
          replicas: opts.ghostReplicas ?? 1,
          ...networking,
        }
      : { enabled: false },
    portainer: opts.apps
      ? { enabled: true, image: LAB_IMAGES.portainer, agentImage: LAB_IMAGES.portainerAgent, ...networking }
      : { enabled: false },
  };
}

/** Lab passwords, given as config secrets (the random provider's plugin cannot be built here). */
export const LAB_PASSWORDS = {
  ghostDbPassword: `ghost-db-${process.pid}-Xq7`,
  dbRootPassword: `db-root-${process.pid}-Zr4`,
  portainerAdminPassword: `portainer-${process.pid}-Wm9`,
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
