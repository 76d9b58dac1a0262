import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { haproxyErrors, HaproxySettings, renderHaproxyConfig } from "../../stacks/haproxy";

const ghost: HaproxySettings = {
  bindAddress: "127.0.0.1",
  nodes: [
    { name: "manager-1", address: "172.31.250.11" },
    { name: "worker-1", address: "172.31.250.31" },
  ],
  services: [
    {
      name: "ghost",
      listenPort: 8080,
      targetPort: 2368,
      healthCheck: { path: "/ghost/api/admin/site/", host: "blog.example.com" },
    },
  ],
};

describe("renderHaproxyConfig", () => {
  test("one health-checked server per node on the published port, retries elsewhere", () => {
    const cfg = renderHaproxyConfig(ghost);
    const lines = cfg.split("\n");
    expect(lines).toContain("  bind 127.0.0.1:8080");
    expect(lines).toContain("  server manager-1 172.31.250.11:2368");
    expect(lines).toContain("  server worker-1 172.31.250.31:2368");
    expect(lines).toContain("  default-server check inter 1000ms fall 2 rise 1");
    expect(lines).toContain(
      "  http-check send meth GET uri /ghost/api/admin/site/ ver HTTP/1.1 hdr Host blog.example.com",
    );
    expect(lines).toContain("  http-check expect status 200");
    expect(lines).toContain("  option redispatch 1");
    expect(lines).toContain("  retry-on all-retryable-errors");
    expect(lines).toContain("  retries 3");
    expect(cfg.endsWith("\n")).toBe(true);
  });

  test("is deterministic and follows the node list", () => {
    expect(renderHaproxyConfig(ghost)).toBe(renderHaproxyConfig({ ...ghost }));
    const more = renderHaproxyConfig({
      ...ghost,
      nodes: [...ghost.nodes, { name: "worker-3", address: "172.31.250.33" }],
    });
    expect(more).toContain("server worker-3 172.31.250.33:2368");
    const fewer = renderHaproxyConfig({ ...ghost, nodes: ghost.nodes.slice(1) });
    expect(fewer).not.toContain("manager-1");
  });

  test("more statuses to retry elsewhere: 404 for Ghost replicas that have not seen a post yet", () => {
    const svc = { ...ghost.services[0]!, retryOnStatus: [404] };
    const lines = renderHaproxyConfig({ ...ghost, services: [svc] }).split("\n");
    expect(lines).toContain("  retry-on all-retryable-errors 404");
    expect(haproxyErrors({ ...ghost, services: [{ ...svc, retryOnStatus: [418] }] })).toEqual([
      expect.stringMatching(/^services\[0\]\.retryOnStatus 418: HAProxy retries on 401, 403, 404/),
    ]);
    expect(
      haproxyErrors({
        ...ghost,
        services: [{ name: "db", listenPort: 3306, targetPort: 3306, mode: "tcp", retryOnStatus: [404] }],
      }),
    ).toEqual([expect.stringMatching(/^services\[0\]\.retryOnStatus: only an http service/)]);
  });

  test("tcp services get TCP checks, settings override the defaults", () => {
    const cfg = renderHaproxyConfig({
      nodes: ghost.nodes,
      services: [{ name: "portainer", listenPort: 9443, targetPort: 9443, mode: "tcp" }],
      statsSocket: "/run/lb/admin.sock",
      retries: 5,
      connectTimeoutMs: 500,
    });
    expect(cfg).toContain("  bind 0.0.0.0:9443");
    expect(cfg).toContain("  mode tcp");
    expect(cfg).not.toContain("httpchk");
    expect(cfg).not.toContain("retry-on");
    expect(cfg).toContain("  stats socket /run/lb/admin.sock mode 600 level admin");
    expect(cfg).toContain("  retries 5");
    expect(cfg).toContain("  timeout connect 500ms");
  });

  test("every bad setting is reported at once, naming the field", () => {
    const errors = haproxyErrors({
      bindAddress: "localhost",
      nodes: [
        { name: "a b", address: "1.2.3.4" },
        { name: "n", address: "bad address" },
        { name: "n", address: "10.0.0.1" },
      ],
      services: [
        { name: "web", listenPort: 0, targetPort: 80 },
        { name: "web", listenPort: 8080, targetPort: 70000, mode: "tcp", healthCheck: { path: "health", fall: 0 } },
      ],
    });
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^nodes\[0\]\.name/),
        expect.stringMatching(/^nodes\[1\]\.address/),
        expect.stringMatching(/^nodes\[2\]\.name .*listed twice/),
        expect.stringMatching(/^services\[0\]\.listenPort 0/),
        expect.stringMatching(/^services\[0\]\.healthCheck: an http service/),
        expect.stringMatching(/^services\[1\]\.name .*listed twice/),
        expect.stringMatching(/^services\[1\]\.targetPort 70000/),
        expect.stringMatching(/^services\[1\]\.healthCheck\.path/),
        expect.stringMatching(/^services\[1\]\.healthCheck\.fall/),
        expect.stringMatching(/^bindAddress/),
      ]),
    );
    expect(() => renderHaproxyConfig({ nodes: [], services: [] })).toThrow(/nodes: at least one node/);
    expect(haproxyErrors(ghost)).toEqual([]);
  });

  const haproxy = "/usr/sbin/haproxy";
  (fs.existsSync(haproxy) ? test : test.skip)("HAProxy itself accepts the generated file (haproxy -c)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-haproxy-"));
    try {
      const file = path.join(dir, "haproxy.cfg");
      const services = [{ ...ghost.services[0]!, retryOnStatus: [404] }];
      fs.writeFileSync(file, renderHaproxyConfig({ ...ghost, services, statsSocket: path.join(dir, "admin.sock") }));
      const r = spawnSync(haproxy, ["-c", "-f", file], { encoding: "utf8" });
      expect(`${r.stdout}${r.stderr}`).not.toMatch(/\[(ALERT|WARNING)\]/);
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
