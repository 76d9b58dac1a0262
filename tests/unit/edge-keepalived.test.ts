/**
 * The front door's node scripts in bash against stand-ins (`ip`, `pgrep`, `kill`, `apt-get`,
 * and `keepalived`, which hands `-t` to Debian's real keepalived where it is installed):
 * edge-keepalived.sh writes a VRRP config keepalived accepts (multicast from the node's
 * address, no peer list, advert_int 1, nopreempt, the Caddy check failing until it first passes,
 * gratuitous ARPs repeated), detects the interface, starts keepalived once and reloads it only
 * when the config changed; the delete leaves a config it did not write alone; the read reports
 * the source address and a keepalived that does not run; edge-root makes Caddy's root once.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseObserved } from "../../components/remote";
import { script } from "../../components/remote-scripts";

const REAL_KEEPALIVED = ["/usr/sbin/keepalived", "/usr/bin/keepalived"].find((p) => fs.existsSync(p));
if (REAL_KEEPALIVED === undefined) {
  console.warn(
    "edge-keepalived.test.ts: keepalived is not installed (apt-get install keepalived): configs are not checked by `keepalived -t`",
  );
}

/** Stand-ins: a node whose eth0 holds 172.30.0.11, keepalived running or not (file `running`). */
const STAND_INS: Record<string, string> = {
  ip: `printf '1: lo    inet 127.0.0.1/8 scope host lo\\n2: eth0    inet 172.30.0.11/24 brd 172.30.0.255 scope global eth0\\n'`,
  pgrep: `[ -e "$STAND_IN_DIR/running" ] && echo 4242`,
  pkill: `[ "$1" = -HUP ] || rm -f "$STAND_IN_DIR/running"`,
  "apt-get": `true`,
  keepalived: REAL_KEEPALIVED
    ? `if [ "$1" = -t ]; then exec ${REAL_KEEPALIVED} "$@"; fi; touch "$STAND_IN_DIR/running"`
    : `[ "$1" = -t ] && exit 0; touch "$STAND_IN_DIR/running"`,
};

function standIns(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-edge-"));
  fs.mkdirSync(path.join(dir, "bin"));
  for (const [cmd, body] of Object.entries(STAND_INS)) {
    const log = `printf '%s\\n' "${cmd} $*" >>"$STAND_IN_DIR/calls.log"`;
    fs.writeFileSync(path.join(dir, "bin", cmd), `#!/usr/bin/env bash\n${log}\n${body}\n`, { mode: 0o755 });
  }
  return dir;
}

function run(dir: string, name: string, env: Record<string, string> = {}) {
  const r = spawnSync("bash", ["-c", script(name)], {
    encoding: "utf8",
    env: {
      ...process.env,
      PATH: `${path.join(dir, "bin")}:${process.env.PATH}`,
      STAND_IN_DIR: dir,
      KEEPALIVED_DIR: path.join(dir, "etc"),
      NODE_NAME: "manager-1",
      VIP: "172.30.0.200",
      ROUTER_ID: "51",
      PRIORITY: "147",
      SRC_ADDR: "172.30.0.11",
      ...env,
    },
  });
  const calls = fs.existsSync(path.join(dir, "calls.log"))
    ? fs.readFileSync(path.join(dir, "calls.log"), "utf8").trim().split("\n")
    : [];
  fs.rmSync(path.join(dir, "calls.log"), { force: true });
  return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr, calls };
}

describe("edge-keepalived.sh", () => {
  let dir: string;
  beforeEach(() => {
    dir = standIns();
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  const conf = () => fs.readFileSync(path.join(dir, "etc", "keepalived.conf"), "utf8");

  test("writes the VRRP instance keepalived accepts, on the interface holding the node's address, and starts keepalived", () => {
    const r = run(dir, "edge-keepalived");
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toBe("interface=eth0 changed=check,config,started");
    expect(r.calls.filter((c) => c.startsWith("keepalived"))).toEqual([
      expect.stringMatching(/^keepalived -t -f .*keepalived\.conf\.new\./),
      `keepalived -f ${dir}/etc/keepalived.conf`,
    ]);
    const text = conf();
    expect(text).toContain(
      [
        "vrrp_instance swarmcloud_edge {",
        "  state BACKUP",
        "  interface eth0",
        "  virtual_router_id 51",
        "  priority 147",
        "  nopreempt",
        "  advert_int 1",
        "  mcast_src_ip 172.30.0.11",
        "  garp_master_delay 1",
        "  garp_master_refresh 5",
        "  garp_lower_prio_repeat 5",
        "  virtual_ipaddress {",
        "    172.30.0.200/32 dev eth0",
        "  }",
        "  track_script {",
        "    swarmcloud_edge",
        "  }",
        "}",
      ].join("\n"),
    );
    expect(text).toContain(`  script "${dir}/etc/swarmcloud-edge-check.sh"\n  interval 1\n`);
    // A node whose Caddy has not answered yet (a new or restarted one) claims nothing.
    expect(text).toMatch(/vrrp_script swarmcloud_edge \{[^}]*\n {2}init_fail\n\}/);
    // No holder lists the others: one added later is heard by all.
    expect(text).not.toMatch(/unicast/);
    const check = fs.readFileSync(path.join(dir, "etc", "swarmcloud-edge-check.sh"), "utf8");
    expect(check).toContain("exec 3<>/dev/tcp/127.0.0.1/80 || exit 1");
    expect(check).toContain("GET /healthz HTTP/1.0");
    expect(fs.statSync(path.join(dir, "etc", "swarmcloud-edge-check.sh")).mode & 0o777).toBe(0o755);
  });

  test("the check: an answer of Caddy's or of an app passes; Caddy's 502, 503, 504 (no app reached) and silence fail", () => {
    run(dir, "edge-keepalived", { CHECK_PATH: "/healthz/app" });
    const check = path.join(dir, "etc", "swarmcloud-edge-check.sh");
    // The check's verdict on a status line, by its own `case` line run in bash.
    const verdict = fs
      .readFileSync(check, "utf8")
      .split("\n")
      .find((l) => l.startsWith('case "$status"'))!;
    const statusOf = (status: number) =>
      spawnSync("bash", ["-c", `status=$1; ${verdict}; exit 1`, "x", `HTTP/1.1 ${status} X\r`]).status;
    expect(fs.readFileSync(check, "utf8")).toContain("GET /healthz/app HTTP/1.0");
    expect([200, 301, 500].map(statusOf)).toEqual([0, 0, 0]);
    expect([502, 503, 504].map(statusOf)).toEqual([1, 1, 1]);
    // No status line at all (the read timed out, a garbled answer): a failure too.
    expect(spawnSync("bash", ["-c", `status=garbage; ${verdict}; exit 1`]).status).toBe(1);
  });

  test("idempotent: run again it changes nothing and reloads nothing; a new address rewrites the config and reloads", () => {
    run(dir, "edge-keepalived");
    const again = run(dir, "edge-keepalived");
    expect(again.stdout).toBe("interface=eth0 changed=none");
    expect(again.calls.filter((c) => /^pkill|^keepalived -f/.test(c))).toEqual([]);
    const moved = run(dir, "edge-keepalived", { VIP: "172.30.0.201" });
    expect(moved.stdout).toBe("interface=eth0 changed=config");
    expect(moved.calls).toContain("pkill -HUP -x -o keepalived");
    expect(conf()).toContain("    172.30.0.201/32 dev eth0\n");
  });

  test("an interface given is used as is, nothing detected", () => {
    const r = run(dir, "edge-keepalived", { INTERFACE: "eth0" });
    expect(r.code).toBe(0);
    expect(r.calls.filter((c) => c.startsWith("ip "))).toEqual([]);
    expect(conf()).toContain("    172.30.0.200/32 dev eth0\n");
  });

  test("no interface holds the node's address: it fails naming the setting", () => {
    const r = run(dir, "edge-keepalived", { SRC_ADDR: "10.9.9.9" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no interface of manager-1 holds 10.9.9.9; set swarmcloud:edge.interface");
  });

  (REAL_KEEPALIVED ? test : test.skip)(
    "a config keepalived refuses is not installed, and keepalived's words are shown",
    () => {
      const r = run(dir, "edge-keepalived", { ROUTER_ID: "300" });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("keepalived refuses the config written for manager-1");
      expect(r.stderr).toMatch(/300/);
      expect(fs.existsSync(path.join(dir, "etc", "keepalived.conf"))).toBe(false);
    },
  );

  test("the read: the source address as the config has it; DRIFT when keepalived does not run or the config is gone", () => {
    run(dir, "edge-keepalived");
    const ok = run(dir, "edge-keepalived-read");
    expect(Object.fromEntries(parseObserved(ok.stdout))).toEqual({ SRC_ADDR: "172.30.0.11" });
    fs.rmSync(path.join(dir, "running"));
    expect(run(dir, "edge-keepalived-read").stdout).toContain("DRIFT=keepalived does not run on manager-1");
    fs.rmSync(path.join(dir, "etc", "keepalived.conf"));
    expect(run(dir, "edge-keepalived-read").stdout).toBe("DRIFT=keepalived has no config on manager-1");
  });

  test("the delete: stops keepalived and removes what it wrote; a config of someone else's is left alone", () => {
    run(dir, "edge-keepalived");
    const r = run(dir, "edge-keepalived-delete");
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(dir, "etc", "keepalived.conf"))).toBe(false);
    expect(fs.existsSync(path.join(dir, "running"))).toBe(false);
    fs.writeFileSync(path.join(dir, "etc", "keepalived.conf"), "# mine\n");
    expect(run(dir, "edge-keepalived-delete").stderr).toContain("nothing to release");
    expect(fs.readFileSync(path.join(dir, "etc", "keepalived.conf"), "utf8")).toBe("# mine\n");
  });
});

describe("edge-root.sh (the real openssl)", () => {
  const run = (caDir: string) =>
    spawnSync("bash", ["-c", script("edge-root")], {
      encoding: "utf8",
      env: { ...process.env, NODE_NAME: "manager-1", CA_DIR: caDir, CN: "swarmcloud front door root" },
    });
  const x509 = (file: string) =>
    spawnSync("openssl", ["x509", "-in", file, "-noout", "-text"], { encoding: "utf8" }).stdout;

  test("makes a CA root and its key where Caddy looks, prints the root; a re-run keeps them", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-root-"));
    const ca = path.join(dir, "pki", "authorities", "local");
    try {
      const first = run(ca);
      expect([first.status, first.stderr]).toEqual([0, `manager-1: the front door's root certificate made in ${ca}\n`]);
      expect(first.stdout).toBe(fs.readFileSync(path.join(ca, "root.crt"), "utf8"));
      const text = x509(path.join(ca, "root.crt"));
      expect(text).toContain("Subject: CN = swarmcloud front door root");
      expect(text).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
      expect(text).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
      expect(text).toContain("ASN1 OID: prime256v1");
      expect(fs.statSync(path.join(ca, "root.key")).mode & 0o777).toBe(0o600);
      // Nothing of the making is left beside them.
      expect(fs.readdirSync(ca).sort()).toEqual(["root.crt", "root.key"]);
      const again = run(ca);
      expect([again.status, again.stdout, again.stderr]).toEqual([0, first.stdout, ""]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a root without its key is made again, and the intermediate of the old one dropped", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-root-"));
    try {
      const old = run(dir).stdout;
      fs.rmSync(path.join(dir, "root.key"));
      fs.writeFileSync(path.join(dir, "intermediate.crt"), "old");
      fs.writeFileSync(path.join(dir, "intermediate.key"), "old");
      const again = run(dir);
      expect(again.status).toBe(0);
      expect(again.stdout).not.toBe(old);
      expect(fs.readdirSync(dir).sort()).toEqual(["root.crt", "root.key"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
