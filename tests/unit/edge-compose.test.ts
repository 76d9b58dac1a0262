/**
 * The front door's Caddy (stacks/edge.ts): the Caddyfile for a domain (ACME) and for an address
 * (Caddy's internal CA), checked by the real `caddy validate` where Debian's caddy is installed;
 * the edge stack's compose file (global on the edge nodes, host-mode ports, the apps' networks
 * as external, storage on the shared mount), and Ghost's and Portainer's specs unchanged unless
 * the front door is on.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DEFAULTS, EdgeSettings } from "../../components/config";
import { renderCompose } from "../../stacks/compose";
import {
  EDGE_ACME_ROOT_FILE,
  EDGE_DATA_DIR,
  EDGE_HEALTH_PATH,
  EDGE_HEALTHCHECK,
  edgeCaddyfile,
  edgeCompose,
  EdgeContext,
} from "../../stacks/edge";

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
const ON: EdgeSettings = { ...DEFAULTS.edge, enabled: true, address: "172.30.0.200" };
const CTX: EdgeContext = {
  site: "172.30.0.200",
  dataPath: "/mnt/swarmcloud/edge",
  placement: "node.role==manager",
  ghost: { service: "ghost_ghost", port: 2368, network: "ghost_frontend" },
  portainer: { service: "portainer_portainer", port: 9443, network: "portainer_edge", https: true },
};
const ACME: EdgeSettings = {
  ...ON,
  domain: "blog.lab.test",
  acmeEmail: "owner@lab.test",
  acmeDirectory: "https://172.30.0.1:14000/dir",
  acmeRoot: PEM,
};

const caddy = ["/usr/bin/caddy", "/usr/local/bin/caddy"].find((p) => fs.existsSync(p));

/**
 * `caddy validate` of a Caddyfile, with the container's paths moved into a temporary folder (the
 * storage, the ACME root: validate provisions them). Undefined when caddy is not installed.
 */
function validate(text: string): { code: number | null; output: string } | undefined {
  if (caddy === undefined) return undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edge-caddy-"));
  // A real certificate: provisioning adds the root to a trust pool.
  spawnSync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-subj",
    "/CN=lab ACME root",
    "-days",
    "1",
    "-keyout",
    path.join(dir, "root.key"),
    "-out",
    path.join(dir, "root.pem"),
  ]);
  const moved = text
    .split(EDGE_ACME_ROOT_FILE)
    .join(path.join(dir, "root.pem"))
    .split(`storage file_system ${EDGE_DATA_DIR}`)
    .join(`storage file_system ${path.join(dir, "data")}`);
  fs.writeFileSync(path.join(dir, "Caddyfile"), moved);
  const run = spawnSync(caddy, ["validate", "--adapter", "caddyfile", "--config", path.join(dir, "Caddyfile")], {
    encoding: "utf8",
    env: { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir },
    timeout: 60_000,
  });
  fs.rmSync(dir, { recursive: true, force: true });
  return { code: run.status, output: `${run.stdout}${run.stderr}` };
}

describe("the front door's Caddyfile", () => {
  test("no domain: Caddy's internal CA for the address, served without SNI; HTTP redirects; HSTS; both apps with retries", () => {
    const text = edgeCaddyfile(ON, CTX);
    expect(text).toMatchSnapshot();
    expect(text).toContain("\tdefault_sni 172.30.0.200\n");
    expect(text).toContain(
      '\thandle /healthz {\n\t\trespond "ok" 200\n\t}\n\thandle {\n\t\tredir https://{host}{uri} 308',
    );
    // keepalived's check: Ghost's site settings through this Caddy, tried for 1 s.
    expect(text).toContain(
      "http:// {\n\thandle /healthz/app {\n\t\trewrite * /ghost/api/admin/site/\n\t\treverse_proxy {\n\t\t\tdynamic a {\n\t\t\t\tname tasks.ghost_ghost\n",
    );
    expect(text).toContain("\t\t\tlb_try_duration 1s\n");
    expect(text.match(/\ttls internal\n/g)).toHaveLength(2);
    expect(text.match(/Strict-Transport-Security/g)).toHaveLength(2);
    expect(text).toContain("172.30.0.200:8443 {");
    expect(text).toContain("\t\t\tname tasks.ghost_ghost\n\t\t\tport 2368\n");
    expect(text).toContain("\t\tlb_try_duration 15s\n");
    expect(text).not.toMatch(/acme_ca|email/);
  });

  test("a domain: ACME from the directory given, its root, the account's e-mail; no internal CA", () => {
    const text = edgeCaddyfile(ACME, { ...CTX, site: "blog.lab.test" });
    expect(text).toContain(`\tacme_ca https://172.30.0.1:14000/dir\n\tacme_ca_root ${EDGE_ACME_ROOT_FILE}\n`);
    expect(text).toContain("\temail owner@lab.test\n");
    expect(text).not.toMatch(/tls internal|default_sni/);
    expect(text).toContain("blog.lab.test {");
    // Let's Encrypt by default: no directory, no root.
    expect(edgeCaddyfile({ ...ON, domain: "blog.example.com" }, { ...CTX, site: "blog.example.com" })).not.toMatch(
      /acme_ca/,
    );
  });

  test("only the enabled apps get a site", () => {
    const text = edgeCaddyfile(ON, { ...CTX, portainer: undefined });
    expect(text).not.toContain(":8443");
    expect(text).toContain("tasks.ghost_ghost");
  });

  const validator = caddy === undefined ? test.skip : test;
  if (caddy === undefined) {
    console.warn(
      "edge-compose.test.ts: caddy is not installed (apt-get install caddy): the Caddyfiles are not run through `caddy validate`",
    );
  }
  validator.each([
    ["internal CA", ON, CTX],
    ["ACME with a private directory", ACME, { ...CTX, site: "blog.lab.test" }],
    [
      "Ghost only, Let's Encrypt",
      { ...ON, domain: "blog.example.com" },
      { ...CTX, site: "blog.example.com", portainer: undefined },
    ],
  ] as [string, EdgeSettings, EdgeContext][])("caddy validate accepts the Caddyfile: %s", (_name, s, ctx) => {
    const result = validate(edgeCaddyfile(s, ctx))!;
    expect([result.code, result.output]).toEqual([0, expect.stringContaining("Valid configuration")]);
  });
});

describe("the edge stack", () => {
  const file = edgeCompose(ON, CTX);
  const caddySvc = file.services.caddy!;

  test("one Caddy on every edge node, ports 80, 443 and Portainer's in host mode, one node at a time", () => {
    expect(caddySvc.deploy).toEqual({
      mode: "global",
      endpoint_mode: "dnsrr",
      placement: { constraints: ["node.role==manager"] },
      restart_policy: { condition: "any", delay: "2s" },
      // stop-first: the new task cannot bind the host ports 80 and 443 while the old one holds them.
      update_config: { parallelism: 1, delay: "10s", order: "stop-first", failure_action: "rollback", monitor: "15s" },
      rollback_config: { parallelism: 1, delay: "10s", order: "stop-first", failure_action: "pause", monitor: "15s" },
    });
    expect(caddySvc.ports).toEqual([
      { target: 80, published: 80, protocol: "tcp", mode: "host" },
      { target: 443, published: 443, protocol: "tcp", mode: "host" },
      { target: 8443, published: 8443, protocol: "tcp", mode: "host" },
    ]);
    expect(caddySvc.image).toBe("caddy:2");
  });

  test("a health check: wget of the health route Caddy serves on port 80, from inside the task", () => {
    expect(caddySvc.healthcheck).toEqual({
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:80/healthz"],
      interval: "10s",
      timeout: "5s",
      retries: 3,
      start_period: "30s",
    });
    expect(EDGE_HEALTHCHECK.at(-1)).toBe(`http://127.0.0.1:80${EDGE_HEALTH_PATH}`);
    // The route answers on the plain-HTTP site, whatever the host asked for.
    expect(edgeCaddyfile(ON, CTX)).toContain(`\n\thandle ${EDGE_HEALTH_PATH} {\n\t\trespond "ok" 200`);
  });

  test("on the apps' networks (made by their stacks), storage on the shared mount, the Caddyfile in its environment", () => {
    expect(file.networks).toEqual({
      ghost_frontend: { external: true, name: "ghost_frontend" },
      portainer_edge: { external: true, name: "portainer_edge" },
    });
    expect(caddySvc.networks).toEqual(["ghost_frontend", "portainer_edge"]);
    expect(caddySvc.volumes).toEqual([{ type: "bind", source: "/mnt/swarmcloud/edge", target: "/data" }]);
    expect(caddySvc.environment?.CADDYFILE).toBe(edgeCaddyfile(ON, CTX));
    expect(edgeCompose(ACME, CTX).services.caddy!.environment?.ACME_ROOT_PEM).toBe(PEM);
  });

  test("the whole rendered file: every $ of the wrapper doubled for the deploy", () => {
    const text = renderCompose(file);
    expect(text).toContain("printf '%s\\\\n' \\\"$$CADDYFILE\\\"");
    expect(text).not.toMatch(/[^$]\$[^$]/);
    expect(text).toMatchSnapshot();
  });
});
