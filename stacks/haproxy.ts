/**
 * An haproxy.cfg that fronts every node's host-published ports, the way a cloud load balancer
 * fronts droplets: one frontend per service, one backend server per node, HTTP health checks so
 * a node that does not run the service (or is down) gets no traffic, and retries on another
 * node for a request that found a dying one.
 *
 * This is the documented pattern for `publishMode: host` (see docs/load-balancer.md): without
 * the ingress routing mesh a published port answers only on the nodes that run a task, so
 * something in front has to know which ones do. A pure function: the caller writes the text
 * to a file and runs `haproxy -f FILE` (reload with `-sf` when the node list changes).
 */

export interface LbNode {
  /** Server name in the backend (the node name). */
  name: string;
  /** Address the load balancer reaches the node on. */
  address: string;
}

export interface LbHealthCheck {
  /** Path of the HTTP check, e.g. /ghost/api/admin/site/. */
  path: string;
  /** Status the check expects. Default 200. */
  expectStatus?: number;
  /** Host header of the check. Default: the service name. */
  host?: string;
  /** Milliseconds between checks. Default 1000. */
  interMs?: number;
  /** Failed checks before a server is taken out. Default 2. */
  fall?: number;
  /** Passed checks before it is put back. Default 1. */
  rise?: number;
}

export interface LbService {
  /** Frontend/backend name: letters, digits, _ and -. */
  name: string;
  /** Port the load balancer listens on. */
  listenPort: number;
  /** Port each node publishes (host mode). */
  targetPort: number;
  /** `http` (retries and HTTP checks) or `tcp` (TCP checks only). Default `http`. */
  mode?: "http" | "tcp";
  /** HTTP health check; required in http mode. */
  healthCheck?: LbHealthCheck;
  /**
   * More HTTP statuses replayed on another server (http mode), on top of connection failures,
   * empty answers and 5xx. [404] for Ghost at 2+ replicas: each Ghost process learns of a new
   * post only in the process that wrote it (or at its next start), so the others answer 404.
   */
  retryOnStatus?: number[];
}

export interface HaproxySettings {
  /** Address every frontend binds to. Default 0.0.0.0 (127.0.0.1 in the lab). */
  bindAddress?: string;
  /** The nodes that may publish the services (all of them: health checks find the live ones). */
  nodes: LbNode[];
  services: LbService[];
  /** Admin socket (`show stat`, state for reloads). Default: none. */
  statsSocket?: string;
  /**
   * File the caller saves `show servers state` to before a reload (`-sf`), so the new process
   * starts with the servers' known health instead of assuming every one is up. Default: none.
   */
  serverStateFile?: string;
  /** Attempts per request; the later ones go to another server. Default 3. */
  retries?: number;
  /** Milliseconds to wait for a TCP connection to a node. Default 1000. */
  connectTimeoutMs?: number;
  /** Milliseconds to wait for a node's response. Default 15000. */
  serverTimeoutMs?: number;
}

const NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** The statuses HAProxy's retry-on takes besides the 5xx that all-retryable-errors covers. */
const RETRYABLE_STATUSES = [401, 403, 404, 408, 425, 501];
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/;
/** A Host header: a name or address, optionally with a port. */
const HOST_HEADER = /^[A-Za-z0-9][A-Za-z0-9.-]{0,252}(:\d{1,5})?$/;
const PATH = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$/;

function isPort(p: number): boolean {
  return Number.isInteger(p) && p >= 1 && p <= 65535;
}

/** Every problem with the settings, each naming the field; empty when the settings are good. */
export function haproxyErrors(s: HaproxySettings): string[] {
  const errors: string[] = [];
  if (s.nodes.length === 0) errors.push("nodes: at least one node is needed");
  const names = new Set<string>();
  for (const [i, n] of s.nodes.entries()) {
    if (!NAME.test(n.name)) errors.push(`nodes[${i}].name ${JSON.stringify(n.name)}: letters, digits, _ and - only`);
    if (names.has(n.name)) errors.push(`nodes[${i}].name ${JSON.stringify(n.name)}: listed twice`);
    names.add(n.name);
    if (!IPV4.test(n.address) && !HOST.test(n.address)) {
      errors.push(`nodes[${i}].address ${JSON.stringify(n.address)}: not an IPv4 address or host name`);
    }
  }
  if (s.services.length === 0) errors.push("services: at least one service is needed");
  const services = new Set<string>();
  const ports = new Set<number>();
  for (const [i, svc] of s.services.entries()) {
    const where = `services[${i}]`;
    if (!NAME.test(svc.name)) errors.push(`${where}.name ${JSON.stringify(svc.name)}: letters, digits, _ and - only`);
    if (services.has(svc.name)) errors.push(`${where}.name ${JSON.stringify(svc.name)}: listed twice`);
    services.add(svc.name);
    for (const key of ["listenPort", "targetPort"] as const) {
      if (!isPort(svc[key])) errors.push(`${where}.${key} ${svc[key]}: must be 1-65535`);
    }
    if (ports.has(svc.listenPort)) errors.push(`${where}.listenPort ${svc.listenPort}: used by another service`);
    ports.add(svc.listenPort);
    const mode = svc.mode ?? "http";
    if (mode === "http" && svc.healthCheck === undefined) {
      errors.push(`${where}.healthCheck: an http service needs an HTTP health check (path and expected status)`);
    }
    for (const status of svc.retryOnStatus ?? []) {
      if (mode !== "http") errors.push(`${where}.retryOnStatus: only an http service can retry on a status`);
      else if (!RETRYABLE_STATUSES.includes(status))
        errors.push(
          `${where}.retryOnStatus ${status}: HAProxy retries on ${RETRYABLE_STATUSES.join(", ")} (5xx always)`,
        );
    }
    const hc = svc.healthCheck;
    if (hc !== undefined) {
      if (!PATH.test(hc.path))
        errors.push(`${where}.healthCheck.path ${JSON.stringify(hc.path)}: must be an absolute URL path`);
      if (hc.host !== undefined && !HOST_HEADER.test(hc.host))
        errors.push(`${where}.healthCheck.host ${JSON.stringify(hc.host)}: not a host name`);
      const status = hc.expectStatus ?? 200;
      if (!Number.isInteger(status) || status < 100 || status > 599)
        errors.push(`${where}.healthCheck.expectStatus ${status}: not an HTTP status`);
      for (const key of ["interMs", "fall", "rise"] as const) {
        const v = hc[key];
        if (v !== undefined && (!Number.isInteger(v) || v < 1))
          errors.push(`${where}.healthCheck.${key} ${v}: must be a whole number, 1 or more`);
      }
    }
  }
  if (s.bindAddress !== undefined && !IPV4.test(s.bindAddress)) {
    errors.push(`bindAddress ${JSON.stringify(s.bindAddress)}: must be an IPv4 address`);
  }
  for (const key of ["retries", "connectTimeoutMs", "serverTimeoutMs"] as const) {
    const v = s[key];
    if (v !== undefined && (!Number.isInteger(v) || v < (key === "retries" ? 0 : 1)))
      errors.push(`${key} ${v}: must be a whole number`);
  }
  for (const key of ["statsSocket", "serverStateFile"] as const) {
    const v = s[key];
    if (v !== undefined && !/^\/[A-Za-z0-9._/-]+$/.test(v))
      errors.push(`${key} ${JSON.stringify(v)}: must be an absolute path`);
  }
  return errors;
}

/** The haproxy.cfg text (deterministic: same settings, same text). Throws listing every problem. */
export function renderHaproxyConfig(s: HaproxySettings): string {
  const errors = haproxyErrors(s);
  if (errors.length > 0) throw new Error(`invalid load balancer settings:\n  - ${errors.join("\n  - ")}`);
  const bind = s.bindAddress ?? "0.0.0.0";
  const lines: string[] = [
    "# generated by swarmcloud (stacks/haproxy.ts): every node's host-published ports, health-checked",
    "global",
    "  maxconn 1024",
  ];
  if (s.statsSocket !== undefined) lines.push(`  stats socket ${s.statsSocket} mode 600 level admin`);
  if (s.serverStateFile !== undefined) lines.push(`  server-state-file ${s.serverStateFile}`);
  lines.push("", "defaults", "  mode http");
  if (s.serverStateFile !== undefined) lines.push("  load-server-state-from-file global");
  lines.push(
    "  option dontlognull",
    `  timeout connect ${s.connectTimeoutMs ?? 1000}ms`,
    "  timeout client 30s",
    `  timeout server ${s.serverTimeoutMs ?? 15000}ms`,
    "  timeout check 2s",
    `  retries ${s.retries ?? 3}`,
    "  # each retry goes to another server: a node that just went away costs a retry, not an error",
    "  option redispatch 1",
  );
  for (const svc of s.services) {
    const mode = svc.mode ?? "http";
    const hc = svc.healthCheck;
    lines.push(
      "",
      `frontend ${svc.name}`,
      `  mode ${mode}`,
      `  bind ${bind}:${svc.listenPort}`,
      `  default_backend ${svc.name}`,
    );
    lines.push("", `backend ${svc.name}`, `  mode ${mode}`, "  balance roundrobin");
    if (mode === "http") {
      lines.push(
        "  # idempotent requests that found a dying task (reset, empty answer, 5xx) are replayed elsewhere",
        `  retry-on ${["all-retryable-errors", ...(svc.retryOnStatus ?? [])].join(" ")}`,
        "  option httpchk",
        `  http-check send meth GET uri ${hc!.path} ver HTTP/1.1 hdr Host ${hc!.host ?? svc.name}`,
        `  http-check expect status ${hc!.expectStatus ?? 200}`,
      );
    } else if (hc !== undefined) {
      lines.push(
        "  option httpchk",
        `  http-check send meth GET uri ${hc.path} ver HTTP/1.1 hdr Host ${hc.host ?? svc.name}`,
        `  http-check expect status ${hc.expectStatus ?? 200}`,
      );
    }
    lines.push(`  default-server check inter ${hc?.interMs ?? 1000}ms fall ${hc?.fall ?? 2} rise ${hc?.rise ?? 1}`);
    for (const n of s.nodes) lines.push(`  server ${n.name} ${n.address}:${svc.targetPort}`);
  }
  return `${lines.join("\n")}\n`;
}
