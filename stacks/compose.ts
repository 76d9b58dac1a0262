/**
 * A typed subset of the Compose specification (the parts `docker stack deploy` honours that
 * swarmcloud uses) and a deterministic YAML emitter for it.
 *
 * The rendered text is what `pulumi preview` diffs, so the emitter is stable by construction:
 * keys come out in one fixed order whatever order the builder added them in, every string is
 * double-quoted (no `yes`/`no`/`1.10` surprises), and each scalar sits on its own line, so a
 * replica change is a one-line diff.
 *
 * Values in the model are literal. `docker stack deploy` interpolates `${VAR}` everywhere in a
 * compose file, so the emitter writes every `$` as `$$`; a shell wrapper written here reaches the
 * container exactly as typed.
 */

/** How a port is published: on every node through the routing mesh, or on the task's node only. */
export const PUBLISH_MODES = ["ingress", "host"] as const;
export type PublishMode = (typeof PUBLISH_MODES)[number];
/** How a service is reached inside the swarm: one virtual IP, or DNS round-robin over its tasks. */
export const ENDPOINT_MODES = ["vip", "dnsrr"] as const;
export type EndpointMode = (typeof ENDPOINT_MODES)[number];

export interface ComposePort {
  /** Port inside the container. */
  target: number;
  /** Port on the node (host mode) or on every node through the routing mesh (ingress mode). */
  published?: number;
  protocol?: "tcp" | "udp";
  mode?: PublishMode;
}

/** A bind mount: a path on the node mounted into the container. */
export interface ComposeBind {
  type: "bind";
  source: string;
  target: string;
  read_only?: boolean;
}

/** A secret the service reads at `/run/secrets/<source>` (or `target`). */
export interface ComposeServiceSecret {
  /** Key under the top-level `secrets:`. */
  source: string;
  target?: string;
  /** File mode as a decimal number (0o444 = 292). */
  mode?: number;
}

export interface ComposeRestartPolicy {
  condition?: "none" | "on-failure" | "any";
  delay?: string;
  max_attempts?: number;
  window?: string;
}

/** The apps' restart policy: whatever stopped a task, start it again 5 s later. */
export const RESTART_ANY: ComposeRestartPolicy = { condition: "any", delay: "5s" };

export interface ComposeUpdateConfig {
  parallelism?: number;
  delay?: string;
  failure_action?: "continue" | "rollback" | "pause";
  monitor?: string;
  max_failure_ratio?: number;
  order?: "stop-first" | "start-first";
}

export interface ComposeDeploy {
  /** Replicated services only; leave out with `mode: global`. */
  replicas?: number;
  mode?: "replicated" | "global";
  endpoint_mode?: EndpointMode;
  placement?: { constraints?: string[] };
  restart_policy?: ComposeRestartPolicy;
  update_config?: ComposeUpdateConfig;
  rollback_config?: ComposeUpdateConfig;
}

export interface ComposeHealthcheck {
  /** `["CMD", ...]` or `["CMD-SHELL", "one shell line"]`. */
  test: string[];
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
}

export interface ComposeService {
  image: string;
  /** Replaces the image's entrypoint. */
  entrypoint?: string[];
  /** Replaces the image's command (arguments to the entrypoint). */
  command?: string[];
  /** Plain settings only: secrets never go here, they go in `secrets` and are read from files. */
  environment?: Record<string, string>;
  secrets?: ComposeServiceSecret[];
  volumes?: ComposeBind[];
  /** Keys under the top-level `networks:`. */
  networks?: string[];
  ports?: ComposePort[];
  deploy?: ComposeDeploy;
  healthcheck?: ComposeHealthcheck;
  /** Seconds-style duration Swarm waits after SIGTERM before SIGKILL. */
  stop_grace_period?: string;
}

export interface ComposeNetwork {
  driver: "overlay";
  /** Standalone containers (`docker run --network`) may join, for debugging. */
  attachable?: boolean;
  /** No route out of the cluster: only services on the network talk to each other. */
  internal?: boolean;
  /** `encrypted` turns on IPsec between nodes for this network. */
  driver_opts?: Record<string, string>;
}

/** A secret made outside the stack (by the deploy script), under its versioned Docker name. */
export interface ComposeSecret {
  external: true;
  name: string;
}

export interface ComposeFile {
  version: "3.8";
  services: Record<string, ComposeService>;
  networks?: Record<string, ComposeNetwork>;
  secrets?: Record<string, ComposeSecret>;
}

// ---------------------------------------------------------------------------------------------
// Validation

/**
 * Problems `docker stack deploy` would only report half-way through a deploy (or not at all),
 * found before anything runs. Each names the service and the fix.
 */
export function validateCompose(file: ComposeFile): string[] {
  const errors: string[] = [];
  const nets = new Set(Object.keys(file.networks ?? {}));
  const secrets = new Set(Object.keys(file.secrets ?? {}));
  const published = new Map<string, string>();
  for (const [name, svc] of Object.entries(file.services)) {
    const where = `service ${name}`;
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name)) errors.push(`${where}: invalid service name`);
    if (!svc.image) errors.push(`${where}: image is empty`);
    const d = svc.deploy ?? {};
    if (d.mode === "global" && d.replicas !== undefined) {
      errors.push(`${where}: deploy.replicas cannot be set with deploy.mode global (one task per node)`);
    }
    if (d.replicas !== undefined && (!Number.isInteger(d.replicas) || d.replicas < 0)) {
      errors.push(`${where}: deploy.replicas must be a whole number, 0 or more`);
    }
    for (const p of svc.ports ?? []) {
      if (p.published !== undefined && dnsrrRefusesIngress(d.endpoint_mode, p.mode ?? "ingress")) {
        errors.push(
          `${where}: endpoint_mode dnsrr cannot be combined with a port published in ingress mode ` +
            `(${p.published}->${p.target}); publish in host mode or use endpoint_mode vip`,
        );
      }
      for (const port of [p.target, p.published]) {
        if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
          errors.push(`${where}: port ${port} must be between 1 and 65535`);
        }
      }
      if (p.published !== undefined) {
        const key = `${p.published}/${p.protocol ?? "tcp"}`;
        const other = published.get(key);
        if (other !== undefined) errors.push(`${where}: published port ${key} is also published by service ${other}`);
        else published.set(key, name);
      }
    }
    for (const n of svc.networks ?? []) {
      if (!nets.has(n)) errors.push(`${where}: network ${n} is not defined under networks`);
    }
    for (const s of svc.secrets ?? []) {
      if (!secrets.has(s.source)) errors.push(`${where}: secret ${s.source} is not defined under secrets`);
    }
    for (const [k, v] of Object.entries(svc.environment ?? {})) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
        errors.push(`${where}: environment name ${JSON.stringify(k)} is invalid`);
      if (typeof v !== "string") errors.push(`${where}: environment ${k} must be a string`);
    }
    for (const v of svc.volumes ?? []) {
      if (!v.source.startsWith("/") || !v.target.startsWith("/")) {
        errors.push(`${where}: bind mount ${v.source}:${v.target} needs absolute paths`);
      }
    }
  }
  for (const [key, s] of Object.entries(file.secrets ?? {})) {
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(s.name)) {
      errors.push(
        `secret ${key}: Docker secret name ${JSON.stringify(s.name)} is invalid (letters, digits, _ . -; 64 at most)`,
      );
    }
  }
  return errors;
}

/**
 * The one networking rule a stack setting can break: Docker refuses `endpoint_mode: dnsrr` on a
 * service whose ports are published through the ingress routing mesh. validateCompose,
 * networkingErrors and the config parser all ask this function.
 */
export function dnsrrRefusesIngress(endpointMode: EndpointMode | undefined, publishMode: PublishMode): boolean {
  return endpointMode === "dnsrr" && publishMode === "ingress";
}

/** The networking rule as a config error of the settings under `key` (`ghost`, `portainer`). */
export function networkingErrors(key: string, s: { publishMode: PublishMode; endpointMode: EndpointMode }): string[] {
  if (!dnsrrRefusesIngress(s.endpointMode, s.publishMode)) return [];
  return [
    `swarmcloud:${key}.endpointMode = "dnsrr": cannot be combined with ${key}.publishMode ingress ` +
      `(Docker refuses ingress-published ports on a dnsrr service); set ${key}.publishMode: host, or ${key}.endpointMode: vip`,
  ];
}

// ---------------------------------------------------------------------------------------------
// YAML

/** Keys that read best first; all other keys follow in alphabetical order. */
const KEY_ORDER = ["version", "services", "image", "entrypoint", "command"];

function compareKeys(a: string, b: string): number {
  const ia = KEY_ORDER.indexOf(a);
  const ib = KEY_ORDER.indexOf(b);
  if (ia !== -1 || ib !== -1) return (ia === -1 ? KEY_ORDER.length : ia) - (ib === -1 ? KEY_ORDER.length : ib);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Words a YAML 1.1 parser (the one in the Docker CLI) would not read as a plain string. */
const YAML_WORDS = /^(y|yes|n|no|true|false|on|off|null|~)$/i;

function yamlKey(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_.\-/]*$/.test(key) && !YAML_WORDS.test(key) ? key : yamlString(key);
}

/**
 * A double-quoted YAML scalar. JSON escapes are valid YAML escapes; characters YAML parsers
 * reject or re-interpret (C0/C1 controls, DEL, line/paragraph separators, BOM, lone surrogates)
 * are written as \uXXXX. `$` is doubled for compose interpolation.
 */
export function yamlString(value: string): string {
  let out = '"';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    const code = value.charCodeAt(i);
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\r") out += "\\r";
    else if (ch === "$") out += "$$";
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < value.length) {
      const next = value.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += ch + value[i + 1]!;
        i++;
      } else {
        out += `\\u${code.toString(16).padStart(4, "0")}`;
      }
    } else if (
      code < 0x20 ||
      (code >= 0x7f && code <= 0x9f) ||
      code === 0x2028 ||
      code === 0x2029 ||
      code === 0xfeff ||
      (code >= 0xd800 && code <= 0xdfff)
    ) {
      out += `\\u${code.toString(16).padStart(4, "0")}`;
    } else {
      out += ch;
    }
  }
  return `${out}"`;
}

type Yaml = string | number | boolean | Yaml[] | { [key: string]: Yaml | undefined };

function scalar(v: string | number | boolean): string {
  if (typeof v === "string") return yamlString(v);
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error(`cannot write ${v} to YAML`);
    return String(v);
  }
  return v ? "true" : "false";
}

function isEmpty(v: Yaml): boolean {
  return Array.isArray(v) ? v.length === 0 : typeof v === "object" && Object.keys(v).length === 0;
}

function entries(obj: { [key: string]: Yaml | undefined }): [string, Yaml][] {
  return Object.entries(obj)
    .filter((e): e is [string, Yaml] => e[1] !== undefined)
    .sort(([a], [b]) => compareKeys(a, b));
}

function emit(value: Yaml, indent: number, lines: string[]): void {
  const pad = " ".repeat(indent);
  if (Array.isArray(value)) {
    for (const item of value) {
      if (typeof item !== "object") {
        lines.push(`${pad}- ${scalar(item)}`);
      } else if (isEmpty(item)) {
        lines.push(`${pad}- ${Array.isArray(item) ? "[]" : "{}"}`);
      } else {
        // Nested block under a dash: render at indent+2, then put the dash on its first line.
        const inner: string[] = [];
        emit(item, indent + 2, inner);
        inner[0] = `${pad}- ${inner[0]!.slice(indent + 2)}`;
        lines.push(...inner);
      }
    }
    return;
  }
  if (typeof value !== "object") throw new Error("a YAML document must be a map or a list");
  for (const [k, v] of entries(value)) {
    if (typeof v !== "object") lines.push(`${pad}${yamlKey(k)}: ${scalar(v)}`);
    else if (isEmpty(v)) lines.push(`${pad}${yamlKey(k)}: ${Array.isArray(v) ? "[]" : "{}"}`);
    else {
      lines.push(`${pad}${yamlKey(k)}:`);
      emit(v, indent + 2, lines);
    }
  }
}

/** Any JSON-like value as block YAML, keys in a fixed order, two-space indent, trailing newline. */
export function toYaml(value: object): string {
  const lines: string[] = [];
  emit(value as Yaml, 0, lines);
  return `${lines.join("\n")}\n`;
}

/** Validates and renders a compose file; throws listing every problem. */
export function renderCompose(file: ComposeFile): string {
  const errors = validateCompose(file);
  if (errors.length > 0) throw new Error(`invalid compose file:\n  - ${errors.join("\n  - ")}`);
  return toYaml(file);
}
