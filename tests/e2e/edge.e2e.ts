/**
 * The front door, for real (swarmcloud:edge): keepalived on two edge nodes
 * (the workers, labelled edge=true, so the database, on a manager, never shares a node with the
 * address) holding a floating address on the lab network, Caddy on each (the lab's image of
 * Debian's caddy), a certificate from Pebble (Debian's pebble, the ACME test server, run on this
 * machine at the lab network's gateway: the lab has no DNS, so PEBBLE_VA_ALWAYS_VALID skips the
 * challenge), checked with openssl s_client against Pebble's root; the HTTP redirect and HSTS;
 * headless Chromium opening https://<lab domain>/ with the lab CA trusted; then the holder of
 * the address killed while a load loop asks the front door every 100 ms over HTTPS, and the
 * failed requests and seconds measured; destroy. `npm run test:edge`, on a cluster of its own.
 */
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { render } from "./ghost";
import {
  engineBin,
  inventory,
  Inventory,
  lab,
  LAB_IMAGES,
  LAB_OWNER,
  LAB_PASSWORDS,
  labConfig,
  LabNode,
  onNode,
  PulumiCli,
  REPO,
  Report,
  sh,
  waitFor,
} from "./lib";

const STACK = "lab-edge";
const DOMAIN = "blog.swarmcloud.test";
const CADDY_IMAGE = LAB_IMAGES.caddy;
const EDGE_NODES = ["worker-1", "worker-2"];
const report = new Report("edge");
const BUILD = path.join(REPO, "tests/lab/images/build.sh");
/** build.sh with the front door's image included. */
const WITH_EDGE = { ...process.env, WITH_EDGE: "1" };

let cli: PulumiCli;
let inv: Inventory;
let gateway: string;
let vip: string;
let pebble: ChildProcess | undefined;
let upEnded = 0;
/** The edge node killed while it held the address (the fault test), for the test after it. */
let killed: LabNode | undefined;

/** Pebble's files: the CA that signs its listener (the stack's acmeRoot), and the issuing root and intermediate. */
const pki = {
  dir: fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-pebble-")),
  get ca() {
    return path.join(this.dir, "ca.pem");
  },
  get root() {
    return path.join(this.dir, "pebble-root.pem");
  },
  get intermediate() {
    return path.join(this.dir, "pebble-intermediate.pem");
  },
};

function must(r: { code: number; stdout: string; stderr: string }, what: string): string {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A CA and Pebble's listener certificate for the gateway's address, made with openssl. */
function makePebbleCerts(address: string): void {
  const d = pki.dir;
  const ossl = (...args: string[]) => must(sh("openssl", args, { cwd: d }), `openssl ${args[0]}`);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  ossl(
    "req",
    "-x509",
    ...ec,
    "-subj",
    "/CN=swarmcloud lab ACME listener CA",
    "-days",
    "2",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
  );
  ossl("req", ...ec, "-subj", "/CN=pebble", "-keyout", "key.pem", "-out", "req.csr");
  fs.writeFileSync(
    path.join(d, "ext"),
    `subjectAltName=IP:${address}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`,
  );
  ossl(
    "x509",
    "-req",
    "-in",
    "req.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    "ext",
    "-out",
    "cert.pem",
  );
  fs.writeFileSync(
    path.join(d, "pebble.json"),
    JSON.stringify({
      pebble: {
        listenAddress: `${address}:14000`,
        managementListenAddress: `${address}:15000`,
        certificate: path.join(d, "cert.pem"),
        privateKey: path.join(d, "key.pem"),
        httpPort: 5002,
        tlsPort: 5001,
        ocspResponderURL: "",
        externalAccountBindingRequired: false,
      },
    }),
  );
}

/** Pebble on the gateway (this machine, as the nodes see it), its log in reports/. */
async function startPebble(address: string): Promise<void> {
  fs.mkdirSync(path.join(REPO, "reports"), { recursive: true });
  const log = fs.openSync(path.join(REPO, "reports", "edge-pebble.log"), "w");
  pebble = spawn("pebble", ["-config", path.join(pki.dir, "pebble.json")], {
    env: { ...process.env, PEBBLE_VA_ALWAYS_VALID: "1", PEBBLE_VA_NOSLEEP: "1" },
    stdio: ["ignore", log, log],
  });
  await waitFor("Pebble's directory", 30, () => {
    const r = sh("curl", ["-sf", "--max-time", "2", "--cacert", pki.ca, `https://${address}:14000/dir`]);
    return r.code === 0 && r.stdout.includes("newOrder");
  });
  // The issuing root and intermediate (Pebble makes new ones at every start).
  for (const [route, file] of [
    ["roots/0", pki.root],
    ["intermediates/0", pki.intermediate],
  ] as const) {
    fs.writeFileSync(file, must(sh("curl", ["-sf", "--cacert", pki.ca, `https://${address}:15000/${route}`]), route));
  }
}

/** The SPKI digest Chromium's --ignore-certificate-errors-spki-list takes: the lab CA trusted by its key. */
function spki(pem: string): string {
  return must(
    sh("bash", [
      "-c",
      `openssl x509 -pubkey -noout -in '${pem}' | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`,
    ]),
    "spki",
  ).trim();
}

/** One request to the front door: to the floating address, the lab domain as SNI and Host, Pebble's root trusted. */
function viaFrontDoor(
  pathname: string,
  opts: { timeoutMs?: number; plain?: boolean } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const common = {
      host: vip,
      path: pathname,
      headers: { Host: DOMAIN, Connection: "close" },
      agent: false as const,
      timeout: opts.timeoutMs ?? 20_000,
    };
    const done = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    };
    const req = opts.plain
      ? http.get({ ...common, port: 80 }, done)
      : https.get(
          {
            ...common,
            port: 443,
            servername: DOMAIN,
            ca: [fs.readFileSync(pki.root, "utf8"), fs.readFileSync(pki.intermediate, "utf8")],
          },
          done,
        );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${opts.timeoutMs ?? 20_000} ms`)));
    req.on("error", reject);
  });
}

/** The edge nodes (but `except`) that hold the floating address now (exactly one, when all is well). */
function holders(except = ""): LabNode[] {
  return inventory().nodes.filter((n) => {
    if (!EDGE_NODES.includes(n.name) || n.name === except) return false;
    try {
      return onNode(n, `ip -4 -o addr show | grep -c ' ${vip}/32 ' || true`) !== "0";
    } catch {
      return false;
    }
  });
}

/** openssl s_client against the floating address with the lab domain: the verify line and the chain. */
function sClient(): { verified: boolean; text: string } {
  const r = sh("bash", [
    "-c",
    `echo | timeout 10 openssl s_client -connect ${vip}:443 -servername ${DOMAIN} -CAfile '${pki.root}' -showcerts 2>&1`,
  ]);
  return { verified: /Verify return code: 0 \(ok\)/.test(r.stdout), text: r.stdout };
}

/**
 * What each edge node's Caddy said about the lock, the storage and the issuance, with the node's
 * mount of the volume and the lock and certificate files as that node sees them: the evidence
 * when the two edge nodes serve different certificates (CI saw it once, 2026-12-03, on the
 * cluster the drift suite handed on; the shared lock should make the second Caddy load the first
 * one's certificate instead of asking for its own).
 */
function certificateRace(): Record<string, string[]> {
  return Object.fromEntries(
    EDGE_NODES.map((name) => {
      const node = inv.nodes.find((n) => n.name === name)!;
      const logs = onNode(
        node,
        "findmnt -n -o SOURCE,FSTYPE /mnt/swarmcloud || echo 'no mount at /mnt/swarmcloud'; " +
          "for c in $(docker ps -aq --filter label=com.docker.swarm.service.name=edge_caddy); do " +
          "docker logs --timestamps \"$c\" 2>&1 | grep -iE 'lock|obtain|storage|certificate|error' | tail -n 40; done; " +
          "find /mnt/swarmcloud/edge -type f \\( -path '*/locks/*' -o -name '*.crt' \\) -printf '%TT %s %p\\n' 2>/dev/null | sort | tail -n 20 || true",
      );
      return [name, logs.split("\n")];
    }),
  );
}

beforeAll(async () => {
  // Debian's pebble, the ACME test server, on this machine (the nodes reach it at the gateway).
  if (sh("bash", ["-c", "command -v pebble"]).code !== 0) {
    must(sh("apt-get", ["install", "-y", "-qq", "--no-install-recommends", "pebble"]), "apt-get install pebble");
  }
  const bin = engineBin();
  lab("engine");
  lab("image");
  const t0 = Date.now();
  must(sh("bash", [BUILD, "all"], { env: WITH_EDGE }), "lab images");
  report.set("labImagesSeconds", (Date.now() - t0) / 1000);
  // A cluster of its own, also in CI: on the cluster the drift suite hands on, two of the last
  // three runs failed (2026-12-03: the two edge nodes served two certificates; a killed holder's
  // requests failed for 5.1 s), while its runs on a cluster of its own passed. Why the chain
  // differs is open (README, "Known gaps").
  lab("down");
  lab("up", "3", "2");
  cli = new PulumiCli(STACK, bin);
  cli.init();
  must(sh("bash", [BUILD, "load-inventory"], { env: WITH_EDGE }), "loading lab images");
  inv = inventory();
  const prefix = inv.nodes[0]!.address.split(".").slice(0, 3).join(".");
  gateway = `${prefix}.1`;
  vip = `${prefix}.200`;
  makePebbleCerts(gateway);
  await startPebble(gateway);
  const labels = Object.fromEntries(EDGE_NODES.map((n) => [n, { edge: "true" }]));
  cli.setConfig({
    ...labConfig(inv, { apps: true, ghostReplicas: 2, labels }),
    edge: {
      enabled: true,
      address: vip,
      holders: "labelled",
      domain: DOMAIN,
      acmeEmail: LAB_OWNER.email,
      acmeDirectory: `https://${gateway}:14000/dir`,
      acmeRoot: fs.readFileSync(pki.ca, "utf8"),
      image: CADDY_IMAGE,
    },
  });
  cli.setSecret("sshPrivateKey", fs.readFileSync(inv.privateKeyPath, "utf8"));
  for (const [k, v] of Object.entries(LAB_PASSWORDS)) cli.setSecret(k, v);
}, 3600_000);

afterAll(() => {
  const file = report.write();
  console.log(`edge report: ${file}\n${JSON.stringify(report.data, null, 2)}`);
  pebble?.kill();
  if (cli && process.env.SWARMCLOUD_KEEP_LAB !== "1") {
    cli.run(["destroy", "--yes", "--skip-preview"]);
    cli.removeStack();
  }
  if (process.env.SWARMCLOUD_KEEP_LAB !== "1") {
    lab("down");
    fs.rmSync(pki.dir, { recursive: true, force: true });
  }
}, 900_000);

test("pulumi up with the front door: keepalived on the edge nodes, one holder of the address, Caddy on each edge node", async () => {
  const { seconds } = cli.up();
  upEnded = Date.now();
  report.set("upSeconds", seconds);
  const outputs = cli.outputs();
  expect(outputs.ghostUrl).toBe(`https://${DOMAIN}`);
  expect(outputs.ghostAdminUrl).toBe(`https://${DOMAIN}/ghost/`);
  expect(outputs.frontDoorUrl).toBe(`https://${DOMAIN}`);
  expect(outputs.portainerUrl).toBe(`https://${DOMAIN}:8443`);
  expect(outputs.managerAddress).toBe(inv.nodes[0]!.address);
  expect(outputs.edgeRootCertificate).toBeUndefined();
  for (const name of EDGE_NODES) {
    const node = inv.nodes.find((n) => n.name === name)!;
    expect([name, onNode(node, "pgrep -x keepalived >/dev/null && echo running")]).toEqual([name, "running"]);
  }
  const held = await waitFor("one edge node holding the address", 60, () => holders().length === 1 && holders());
  report.set("holder", held[0]!.name);
  const manager = inv.nodes.find((n) => n.role === "manager")!;
  const tasks = onNode(manager, "docker service ps edge_caddy --filter desired-state=running --format '{{.Node}}'");
  expect(tasks.split("\n").length).toBe(EDGE_NODES.length);
});

test("a certificate from the lab's ACME server (Pebble): openssl s_client verifies the chain against Pebble's root", async () => {
  const seen = await waitFor("a certificate that verifies", 300, () => {
    const r = sClient();
    return r.verified && r;
  });
  report.set("firstCertificateSeconds", (Date.now() - upEnded) / 1000);
  expect(seen.text).toMatch(/subject=CN\s*=\s*blog\.swarmcloud\.test/);
  expect(seen.text).toMatch(/issuer=CN\s*=\s*Pebble Intermediate CA/);
  // Both edge nodes serve the same certificate: the storage on the volume is shared.
  const serials = new Set(
    EDGE_NODES.map((name) => {
      const node = inv.nodes.find((n) => n.name === name)!;
      return must(
        sh("bash", [
          "-c",
          `echo | timeout 10 openssl s_client -connect ${node.address}:443 -servername ${DOMAIN} 2>/dev/null | openssl x509 -noout -serial`,
        ]),
        `serial on ${name}`,
      ).trim();
    }),
  );
  const issued = fs.readFileSync(path.join(REPO, "reports", "edge-pebble.log"), "utf8").match(/Issued certificate/g);
  report.set("certificatesIssued", issued?.length ?? 0);
  if (serials.size !== 1) report.set("certificateRace", certificateRace());
  expect(serials.size).toBe(1);
});

test("HTTP redirects to HTTPS, and HTTPS answers with HSTS", async () => {
  const plain = await viaFrontDoor("/some/page/?q=1", { plain: true });
  expect(plain.status).toBe(308);
  expect(plain.headers.location).toBe(`https://${DOMAIN}/some/page/?q=1`);
  const home = await waitFor("Ghost through the front door", 300, async () => {
    const r = await viaFrontDoor("/");
    return r.status === 200 && r;
  });
  expect(home.headers["strict-transport-security"]).toBe("max-age=31536000");
  expect(home.body).toContain(LAB_OWNER.blogTitle);
  // Ghost builds its links from the front door's address.
  expect(home.body).toContain(`https://${DOMAIN}/`);
});

test("Chromium renders the blog at https://<lab domain>/ with the lab CA trusted", () => {
  const flags = [
    `--host-resolver-rules=MAP ${DOMAIN} ${vip}`,
    `--ignore-certificate-errors-spki-list=${spki(pki.root)},${spki(pki.intermediate)}`,
  ];
  const page = render(`https://${DOMAIN}/`, path.join(REPO, "reports", "edge-home.png"), flags);
  expect(page.dom).toContain(LAB_OWNER.blogTitle);
  expect(fs.statSync(page.screenshot).size).toBeGreaterThan(10_000);
  // Without the lab CA, Chromium refuses the page: the trust above is what made it render.
  let refused = "";
  try {
    refused = render(`https://${DOMAIN}/`, path.join(REPO, "reports", "edge-untrusted.png"), flags.slice(0, 1)).dom;
  } catch (err) {
    refused = String(err);
  }
  expect(refused).not.toContain(LAB_OWNER.blogTitle);
});

test("a second pulumi up changes nothing", () => {
  const { steps } = cli.preview(["--expect-no-changes"]);
  expect(steps.filter((s) => s.op !== "same" && s.op !== "read").map((s) => s.urn)).toEqual([]);
});

/** Every 100 ms a GET of / through the front door over HTTPS, each on a new connection. */
function loadLoop(): { stop: () => Promise<Record<string, unknown>> } {
  const t0 = Date.now();
  let sent = 0;
  let failed = 0;
  let first = -1;
  let last = -1;
  const failures: string[] = [];
  const inflight = new Set<Promise<void>>();
  const timer = setInterval(() => {
    sent++;
    const started = Date.now();
    const p = viaFrontDoor("/", { timeoutMs: 20_000 })
      .then((r) => {
        if (r.status !== 200) throw new Error(`status ${r.status}`);
      })
      .catch((err: Error) => {
        failed++;
        if (first < 0) first = started;
        last = Math.max(last, Date.now());
        if (failures.length < 20) failures.push(`+${((started - t0) / 1000).toFixed(1)}s ${err.message}`);
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  }, 100);
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.all([...inflight]);
      return {
        seconds: (Date.now() - t0) / 1000,
        sent,
        failed,
        errorWindowSeconds: failed === 0 ? 0 : (last - first) / 1000,
        failures,
      };
    },
  };
}

/**
 * Every 0.3 s on an edge node, from inside its container (docker exec: no SSH session): whether
 * it holds the floating address and what keepalived's check script says. `changes(t0)`: each
 * change of either, as seconds from t0 (the kill) — whether the survivor kept the address once it
 * had it, or let it go when its check failed.
 */
function startWatch(node: LabNode): { changes: (t0: number) => string[] } {
  const file = "/tmp/swarmcloud-edge-watch";
  const loop =
    `rm -f ${file}; while :; do held=$(ip -4 -o addr show | grep -c ' ${vip}/32 '); ` +
    "if /etc/keepalived/swarmcloud-edge-check.sh >/dev/null 2>&1; then check=ok; else check=failed; fi; " +
    `echo "$(date +%s%3N) held=$held check=$check" >>${file}; sleep 0.3; done`;
  sh("docker", ["exec", "-d", node.container, "bash", "-c", loop]);
  return {
    changes: (t0) => {
      const lines = sh("docker", ["exec", node.container, "cat", file]).stdout.trim().split("\n");
      sh("docker", ["exec", node.container, "pkill", "-f", "swarmcloud-edge-watch"]);
      const out: string[] = [];
      let last = "";
      for (const line of lines) {
        const [ms, ...state] = line.split(" ");
        const now = state.join(" ");
        if (now === last) continue;
        last = now;
        out.push(`${((Number(ms) - t0) / 1000).toFixed(1)}s ${node.name} ${now}`);
      }
      return out;
    },
  };
}

test("killing the holder of the floating address: it moves to the other edge node, requests fail for at most 5 s", async () => {
  const [victim] = holders();
  expect(victim).toBeDefined();
  killed = victim;
  const survivor = inv.nodes.find((n) => EDGE_NODES.includes(n.name) && n.name !== victim!.name)!;
  const watch = startWatch(survivor);
  const loop = loadLoop();
  await new Promise((r) => setTimeout(r, 10_000));
  const t0 = Date.now();
  lab("stop", victim!.container, "--kill");
  let result: Record<string, unknown>;
  try {
    // Asked of the other edge node only: an SSH attempt at the killed one would wait out its timeout.
    const next = await waitFor("another edge node holding the address", 60, () => {
      const h = holders(victim!.name);
      return h.length === 1 && h[0];
    });
    report.set("addressMoveSeconds", (Date.now() - t0) / 1000);
    report.set("addressMove", { from: victim!.name, to: next.name });
    await new Promise((r) => setTimeout(r, 30_000));
  } finally {
    result = await loop.stop();
    report.set("holderKilled", result);
    report.set("survivorWatch", watch.changes(t0));
    lab("start", victim!.container);
  }
  expect(result.sent as number).toBeGreaterThan(300);
  expect(result.errorWindowSeconds as number).toBeLessThanOrEqual(5);
});

test("the killed node comes back with keepalived started by itself, as a rebooted host would; up --refresh changes nothing there", async () => {
  expect(killed).toBeDefined();
  const back = killed!;
  await waitFor("the restarted node to answer SSH", 120, () => onNode(back, "true") === "");
  await waitFor(
    "keepalived running again, started by the node itself",
    60,
    () => onNode(back, "pgrep -x keepalived >/dev/null && echo running || true") === "running",
  );
  const r = cli.up(["--refresh"]);
  report.set("refreshUpSeconds", r.seconds);
  expect(onNode(back, "pgrep -x keepalived >/dev/null && echo running")).toBe("running");
  // The address stays where it moved (nopreempt): one holder, not two.
  await waitFor("one holder", 30, () => holders().length === 1);
  expect((await viaFrontDoor("/")).status).toBe(200);
});

test("destroy takes the front door down (no keepalived, no address) and leaves every node outside any swarm", () => {
  report.set("destroySeconds", cli.destroy());
  for (const name of EDGE_NODES) {
    const node = inv.nodes.find((n) => n.name === name)!;
    expect(onNode(node, "pgrep -x keepalived || echo none")).toBe("none");
    expect(onNode(node, `ip -4 -o addr show | grep -c ' ${vip}/32 ' || true`)).toBe("0");
  }
  for (const n of inventory().nodes) {
    expect([n.name, onNode(n, "docker info --format '{{.Swarm.LocalNodeState}}'")]).toEqual([n.name, "inactive"]);
  }
});
