/**
 * A typed subset of the Compose specification (the parts `docker stack deploy` honours that
 * swarmcloud uses) and its deterministic rendering as YAML, written by js-yaml.
 *
 * The rendered text is what `pulumi preview` diffs, so the rendering is stable by construction:
 * keys come out in one fixed order whatever order the builder added them in, every string value
 * is double-quoted (no `yes`/`no`/`1.10` surprises), and each scalar sits on its own line, so a
 * replica change is a one-line diff.
 *
 * Values in the model are literal. `docker stack deploy` interpolates `${VAR}` in every value of
 * a compose file, so every `$` is written as `$$` (composeValues); a shell wrapper written here
 * reaches the container exactly as typed. The one exception is a `DeployVariable`, written as
 * `${NAME}` for the deploy to fill in.
 */
import * as yaml from "js-yaml";

/**
 * An environment value `docker stack deploy` fills in from its own environment as it reads the
 * file, written `${NAME}`: for a secret an image reads from its environment only (Portainer's
 * AGENT_SECRET), which must not sit in the compose text (the text is in Pulumi's state and its
 * diffs). SwarmStack's `deployVariables` sends the value on stdin; the service's spec holds it,
 * where only those who manage the swarm (root on every node already) can read it.
 */
export class DeployVariable {
  constructor(readonly name: string) {}
}

/** The names of the DeployVariables a rendered compose text uses (`${NAME}`, not an escaped `$${NAME}`). */
export function deployVariableNames(text: string): string[] {
  const names = [...text.matchAll(/(?<!\$)(?:\$\$)*\$\{([A-Z][A-Z0-9_]*)\}/g)].map((m) => m[1]!);
  return [...new Set(names)].sort();
}

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

/**
 * How Swarm replaces a task in an update: the old one stopped before the new one starts
 * (`stop-first`, Swarm's default), or the new one started, and healthy where the service has a
 * health check, before the old one stops (`start-first`: no moment without a task, but two run
 * side by side for a while).
 */
export const UPDATE_ORDERS = ["stop-first", "start-first"] as const;
export type UpdateOrder = (typeof UPDATE_ORDERS)[number];

export interface ComposeUpdateConfig {
  parallelism?: number;
  delay?: string;
  failure_action?: "continue" | "rollback" | "pause";
  monitor?: string;
  max_failure_ratio?: number;
  order?: UpdateOrder;
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

/**
 * The one update policy of every service, in its own order: one task at a time (`delay` apart,
 * default none); a new task that fails, or stops being healthy, within `monitor` of its start
 * fails the update, and Swarm rolls the whole service back to its previous spec, in the same
 * order (so a start-first service keeps its old tasks serving through the rollback too). A
 * rollback that fails in turn pauses, for a person to look at. stack-deploy.sh waits for the
 * update to complete and fails naming the service and its task's error when it was rolled back.
 */
export function rolling(
  order: UpdateOrder,
  monitor: string,
  delay?: string,
): Required<Pick<ComposeDeploy, "update_config" | "rollback_config">> {
  const common = { parallelism: 1, ...(delay === undefined ? {} : { delay }), order, monitor };
  return {
    update_config: { ...common, failure_action: "rollback" },
    rollback_config: { ...common, failure_action: "pause" },
  };
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
  /**
   * Plain settings only: secrets never go here, they go in `secrets` and are read from files; a
   * secret an image takes from its environment only is a DeployVariable.
   */
  environment?: Record<string, string | DeployVariable>;
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
  /** Standalone containers (`docker run --network`) may join. Off here: only the stack's services. */
  attachable?: boolean;
  /** No route out of the cluster: only services on the network talk to each other. */
  internal?: boolean;
  /** `encrypted` turns on IPsec between nodes for this network. */
  driver_opts?: Record<string, string>;
}

/** A network another stack made (the front door joins the apps' networks), by its Docker name. */
export interface ComposeExternalNetwork {
  external: true;
  name: string;
  /** Docker refuses a driver or options on an external network. */
  driver?: never;
  driver_opts?: never;
}

/** A secret made outside the stack (by the deploy script), under its versioned Docker name. */
export interface ComposeSecret {
  external: true;
  name: string;
}

export interface ComposeFile {
  version: "3.8";
  services: Record<string, ComposeService>;
  networks?: Record<string, ComposeNetwork | ComposeExternalNetwork>;
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
      if (v instanceof DeployVariable) {
        if (!/^[A-Z][A-Z0-9_]*$/.test(v.name))
          errors.push(`${where}: deploy variable ${JSON.stringify(v.name)} is invalid`);
      } else if (typeof v !== "string") {
        errors.push(`${where}: environment ${k} must be a string`);
      }
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

/**
 * Claims every plain scalar that starts with a digit, a sign or a dot, so js-yaml quotes such a
 * key. js-yaml knows YAML 1.2 and, in its compat mode, YAML 1.1's yes/no/on/off words and base-60
 * numbers, but not 1.1's underscored numbers: the Docker CLI's Go YAML readers (yaml.v2 and
 * yaml.v3 alike) read a plain key `1_000` as the integer 1000. Every YAML 1.1 number starts with
 * one of these characters. Only the dumper asks this type; nothing is ever loaded with it.
 */
const NUMBER_LIKE = new yaml.Type("tag:swarmcloud,2025:number-like", {
  kind: "scalar",
  resolve: (text: string | null) => text !== null && /^[-+.0-9]/.test(text),
});

/** js-yaml's default schema, plus the rule above. */
const DUMP_SCHEMA = yaml.DEFAULT_SCHEMA.extend({ implicit: [NUMBER_LIKE] });

/** A JSON-like value as the model holds it; `undefined` marks a field left out. */
type Yaml = string | number | boolean | undefined | DeployVariable | Yaml[] | { [key: string]: Yaml };

/**
 * The compose-specific pre-pass, the one part of the YAML that is ours: every `$` of a string
 * value doubled (compose interpolates `${VAR}` in values, not in keys), a DeployVariable written
 * `${NAME}`, fields left `undefined` dropped, and numbers YAML cannot hold as numbers refused.
 */
function composeValues(value: Yaml): Yaml {
  if (typeof value === "string") return value.replace(/\$/g, "$$$$");
  if (value instanceof DeployVariable) return `\${${value.name}}`;
  if (typeof value === "number" && !Number.isFinite(value)) throw new Error(`cannot write ${value} to YAML`);
  if (Array.isArray(value)) return value.map(composeValues);
  if (typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, composeValues(v)]),
  );
}

/**
 * Any JSON-like value as compose YAML: `$` doubled (composeValues), then block YAML written by
 * js-yaml with keys in a fixed order, two-space indent, a trailing newline, and every string
 * value double-quoted, so no YAML reader, 1.1 or 1.2, takes `yes`, `0755`, `1e3` or `a: b` for
 * anything but a string, and each scalar stays on one line (line breaks and control characters
 * as escapes). Keys stay plain unless a reader would misread them.
 */
export function toYaml(value: object): string {
  return yaml.dump(composeValues(value as Yaml), {
    schema: DUMP_SCHEMA,
    sortKeys: compareKeys,
    indent: 2,
    lineWidth: -1,
    noRefs: true,
    forceQuotes: true,
    quotingType: '"',
  });
}

/**
 * The same file with no port published: what a stack's first deploy runs while the app is set up
 * from inside the swarm (Ghost's owner), before anyone else can reach it.
 */
export function withoutPorts(file: ComposeFile): ComposeFile {
  const services = Object.fromEntries(
    Object.entries(file.services).map(([name, { ports: _ports, ...service }]) => [name, service]),
  );
  return { ...file, services };
}

/** Validates and renders a compose file; throws listing every problem. */
export function renderCompose(file: ComposeFile): string {
  const errors = validateCompose(file);
  if (errors.length > 0) throw new Error(`invalid compose file:\n  - ${errors.join("\n  - ")}`);
  return toYaml(file);
}
