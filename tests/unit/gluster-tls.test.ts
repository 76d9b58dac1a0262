/**
 * Gluster TLS (`gluster.tls`, opt-in):
 *
 * - the graph under mocks: the cluster's CA, a certificate step per node (the CA's key on its
 *   stdin) and a trust step per node fed the CA's certificate alone, everything Gluster does on a
 *   node after its trust step, and the volume's TLS options; none of it without `gluster.tls`;
 * - the CA (generateCa, node-forge) and gluster-tls-cert.sh with the real openssl: the key made
 *   once, the certificate named for the node and signed by the CA there, with the CA's key read
 *   from stdin and written nowhere, a running volume without TLS refused before anything is
 *   written;
 * - gluster-tls-trust.sh against stand-ins for gluster, pgrep, pkill and glusterd (no real
 *   process is ever signalled): glusterd restarted only when the CA file or secure-access
 *   changed, a changed CA under a running brick refused.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { recordedNamed, settled, setupMocks, valueOf } from "./mocks";

/** A stand-in certificate (the trust script only compares and counts them). */
const pem = (name: string) => `-----BEGIN CERTIFICATE-----\n${name}\n-----END CERTIFICATE-----`;

setupMocks({
  state: (args) => {
    if (args.name.endsWith("-tls-ca")) return { certificate: pem("the CA"), privateKey: "CA KEY" };
    if (!args.type.includes("RemoteScript")) return undefined;
    return { stdout: "" };
  },
});

import { GLUSTER_TLS_OPTIONS, parseConfig } from "../../components/config";
import { generateCa } from "../../components/generated-ca";
import { GlusterVolume, volumeOptions } from "../../components/gluster";
import { script } from "../../components/remote-scripts";
import { sshClusterNodes } from "../../components/nodes/ssh";
import { nodeStep } from "../../components/step";

const NODES = [
  { name: "manager-1", role: "manager", address: "10.0.0.11" },
  { name: "manager-2", role: "manager", address: "10.0.0.12" },
  { name: "manager-3", role: "manager", address: "10.0.0.13" },
  { name: "worker-1", role: "worker", address: "10.0.0.31" },
];

function cluster(tls: boolean) {
  const parsed = parseConfig({ environment: "ssh", nodes: NODES, gluster: { tls } }, { sshPrivateKey: true });
  expect(parsed.errors).toEqual([]);
  const nodes = sshClusterNodes({ nodes: parsed.config.nodes, user: "root", port: 22, privateKey: pulumi.secret("K") });
  return { settings: parsed.config.gluster, nodes };
}

describe("the graph", () => {
  const on = cluster(true);
  const off = cluster(false);
  const host = (prefix: string) =>
    Object.fromEntries(
      on.nodes.map((n) => [n.name, nodeStep(`${prefix}-${n.name}-host`, { node: n, create: "true" }, {})]),
    );
  const hostsOn = host("on");
  new GlusterVolume("tls", {
    nodes: on.nodes,
    bricks: on.nodes.slice(0, 3),
    hostReady: hostsOn,
    settings: on.settings,
  });
  new GlusterVolume("plain", {
    nodes: off.nodes,
    bricks: off.nodes.slice(0, 3),
    hostReady: host("off"),
    settings: off.settings,
  });
  const r = recordedNamed;
  beforeAll(settled);

  test("one CA for the volume, its private key a secret", () => {
    const ca = r("tls-tls-ca");
    expect(ca.inputs.commonName).toBe("swarmcloud swarmcloud CA");
    expect(ca.options.additionalSecretOutputs).toEqual(["privateKey"]);
    expect(ca.parent).toBe(r("tls").urn);
  });

  test("each node makes its certificate on itself, after its host step, the CA's key on stdin only", () => {
    for (const n of on.nodes) {
      const cert = r(`tls-${n.name}-tls-cert`);
      expect(cert.inputs.create).toBe(script("gluster-tls-cert"));
      expect(cert.inputs.delete).toBeUndefined();
      expect(cert.inputs.connection.host).toBe(n.privateAddress);
      expect(cert.inputs.environment).toEqual({ NODE_NAME: n.name, VOLUME: "swarmcloud", CA_CERT: pem("the CA") });
      expect(cert.inputs.stdin).toBe("CA KEY");
      expect(cert.secretInputs).toContain("stdin");
      expect(cert.dependencies).toEqual(expect.arrayContaining([r(`on-${n.name}-host`).urn, r("tls-tls-ca").urn]));
      expect(cert.dependencies).toHaveLength(2);
      expect(cert.parent).toBe(r("tls").urn);
    }
  });

  test("each node trusts the CA alone, after its own cert step: no node waits for another's", () => {
    for (const n of on.nodes) {
      const trust = r(`tls-${n.name}-tls-trust`);
      expect(trust.inputs.create).toBe(script("gluster-tls-trust"));
      expect(trust.inputs.connection.host).toBe(n.privateAddress);
      expect(trust.inputs.environment).toEqual({ NODE_NAME: n.name, VOLUME: "swarmcloud", CA: pem("the CA") });
      expect(trust.dependencies).toEqual(expect.arrayContaining([r(`tls-${n.name}-tls-cert`).urn]));
      const others = on.nodes.filter((m) => m.name !== n.name).map((m) => r(`tls-${m.name}-tls-cert`).urn);
      for (const other of others) expect(trust.dependencies).not.toContain(other);
    }
  });

  test("bricks, probes and mounts wait for their nodes' trust steps", () => {
    const trust = (name: string) => r(`tls-${name}-tls-trust`).urn;
    expect(r("tls-manager-1-brick").dependencies).toEqual([trust("manager-1")]);
    expect(r("tls-manager-2-peer").dependencies).toEqual([trust("manager-2"), trust("manager-1")]);
    expect(r("tls-worker-1-mount").dependencies).toContain(trust("worker-1"));
  });

  test("the volume is made with TLS both ways and admits the nodes' certificate names", () => {
    const options = r("tls-volume").inputs.environment.OPTIONS.split("\n");
    expect(options).toEqual(
      expect.arrayContaining([
        "auth.ssl-allow=manager-1,manager-2,manager-3,worker-1",
        "client.ssl=on",
        "server.ssl=on",
        "network.ping-timeout=10",
      ]),
    );
  });

  test("without gluster.tls: no TLS step and no TLS option", async () => {
    expect(() => r("plain-manager-1-tls-cert")).toThrow();
    expect(() => r("plain-manager-1-tls-trust")).toThrow();
    expect(r("plain-manager-1-brick").dependencies).toEqual([r("off-manager-1-host").urn]);
    expect(await valueOf(r("plain-volume").inputs.environment.OPTIONS)).toBe("network.ping-timeout=10");
    expect(volumeOptions(off.nodes, off.settings)).toBe(off.settings.options);
  });
});

describe("config", () => {
  test("gluster.tls is a flag, false by default", () => {
    expect(parseConfig({}, { sshPrivateKey: false }).config.gluster.tls).toBe(false);
    const bad = parseConfig({ gluster: { tls: "yes" } }, { sshPrivateKey: false });
    expect(bad.errors).toEqual([expect.stringMatching(/^swarmcloud:gluster\.tls = /)]);
  });

  test.each(GLUSTER_TLS_OPTIONS)("gluster.options may not set %s (gluster.tls does)", (key) => {
    const { errors } = parseConfig({ gluster: { options: { [key]: "on" } } }, { sshPrivateKey: false });
    expect(errors).toEqual([
      `swarmcloud:gluster.options.${key} = "on": is set by swarmcloud: use gluster.tls (true or false); remove it`,
    ]);
  });
});

/**
 * A folder where a script runs with /etc/ssl and /var/lib/glusterd moved inside it, and stand-in
 * commands on PATH. Each stand-in logs its arguments to calls.log.
 */
function sandbox(commands: Record<string, string>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-tls-"));
  fs.mkdirSync(path.join(dir, "bin"));
  for (const [name, body] of Object.entries(commands)) {
    const text = `#!/usr/bin/env bash\necho "${name} $*" >>"$SANDBOX/calls.log"\n${body}\n`;
    fs.writeFileSync(path.join(dir, "bin", name), text, { mode: 0o755 });
  }
  const file = (name: string) => path.join(dir, name);
  return {
    file,
    read: (name: string) => (fs.existsSync(file(name)) ? fs.readFileSync(file(name), "utf8") : ""),
    run(name: string, env: Record<string, string>, stdin = "") {
      const text = script(name).split("/etc/ssl").join(file("ssl")).split("/var/lib/glusterd").join(file("glusterd"));
      const r = spawnSync("bash", ["-c", text, name], {
        env: { ...process.env, ...env, SANDBOX: dir, PATH: `${file("bin")}:${process.env.PATH}` },
        input: stdin,
        encoding: "utf8",
      });
      return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
    },
    done: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** `gluster volume info` of a started volume, with or without server.ssl. */
const startedVolume = (ssl: boolean) =>
  [
    "Volume Name: swarmcloud",
    "Status: Started",
    "Options Reconfigured:",
    ...(ssl ? ["server.ssl: on", "client.ssl: on"] : []),
    "network.ping-timeout: 10",
  ].join("\n");

describe("the CA and gluster-tls-cert.sh (node-forge and the real openssl)", () => {
  const glusterInfo = 'if [ -f "$SANDBOX/info" ]; then cat "$SANDBOX/info"; else exit 1; fi';
  // Two CAs, made once (RSA keys take a moment): the cluster's and a stranger's.
  const ca = generateCa("swarmcloud swarmcloud CA", 7300);
  const other = generateCa("swarmcloud swarmcloud CA", 7300);
  const env = (node: string, c = ca) => ({ NODE_NAME: node, VOLUME: "swarmcloud", CA_CERT: c.certificate });
  const openssl = (args: string[], input?: string) =>
    spawnSync("openssl", args, { input, encoding: "utf8" }).stdout.trim();

  test("the CA: a self-signed CA certificate (CA:TRUE, keyCertSign) for its key, twenty years", () => {
    const text = openssl(["x509", "-noout", "-text"], ca.certificate);
    expect(text).toMatch(/CA:TRUE/);
    expect(text).toMatch(/Certificate Sign/);
    expect(openssl(["x509", "-noout", "-subject", "-nameopt", "RFC2253"], ca.certificate)).toBe(
      "subject=CN=swarmcloud swarmcloud CA",
    );
    expect(openssl(["x509", "-noout", "-pubkey"], ca.certificate)).toBe(openssl(["pkey", "-pubout"], ca.privateKey));
    const end = new Date(openssl(["x509", "-noout", "-enddate"], ca.certificate).replace("notAfter=", ""));
    expect(end.getUTCFullYear() - new Date().getUTCFullYear()).toBe(20);
    expect(() => generateCa("bad/name", 10)).toThrow(/commonName "bad\/name"/);
  });

  test("makes the key (mode 600) and a certificate named for the node, signed by the CA, once; the CA key is written nowhere", () => {
    const s = sandbox({ gluster: glusterInfo });
    try {
      const first = s.run("gluster-tls-cert", env("manager-1"), ca.privateKey);
      expect(first.code).toBe(0);
      expect(first.stderr).toContain("made the Gluster TLS key of manager-1");
      expect(first.stderr).toContain(
        "made the Gluster TLS certificate of manager-1 (CN=manager-1, signed by the cluster's CA)",
      );
      expect(first.stdout).toMatch(
        /^subject=CN\s*=\s*manager-1\nissuer=CN\s*=\s*swarmcloud swarmcloud CA\nsha256 Fingerprint=/i,
      );
      expect(fs.statSync(s.file("ssl/glusterfs.key")).mode & 0o777).toBe(0o600);
      const cert = s.read("ssl/glusterfs.pem");
      const caFile = s.file("ca.pem");
      fs.writeFileSync(caFile, ca.certificate);
      expect(spawnSync("openssl", ["verify", "-CAfile", caFile], { input: cert, encoding: "utf8" }).status).toBe(0);
      expect(openssl(["x509", "-noout", "-ext", "extendedKeyUsage"], cert)).toMatch(
        /Server Authentication, TLS Web Client Authentication|serverAuth, clientAuth/i,
      );
      // Nothing under the sandbox holds the CA's key.
      const files = spawnSync("grep", ["-rl", "PRIVATE KEY", s.file("ssl")], { encoding: "utf8" })
        .stdout.trim()
        .split("\n");
      expect(files).toEqual([s.file("ssl/glusterfs.key")]);
      expect(s.read("ssl/glusterfs.key")).not.toBe(ca.privateKey);
      // A re-run changes nothing and needs no key on stdin.
      const key = s.read("ssl/glusterfs.key");
      const again = s.run("gluster-tls-cert", env("manager-1"));
      expect(again).toEqual({ code: 0, stdout: first.stdout, stderr: "" });
      expect(s.read("ssl/glusterfs.key")).toBe(key);
      expect(s.read("ssl/glusterfs.pem")).toBe(cert);
      // A volume that already speaks TLS is this program's own: a re-run goes on.
      fs.writeFileSync(s.file("info"), startedVolume(true));
      expect(s.run("gluster-tls-cert", env("manager-1")).code).toBe(0);
    } finally {
      s.done();
    }
  });

  test("a certificate with another name (a renamed node), or of another CA, is made again with the same key", () => {
    const s = sandbox({ gluster: glusterInfo });
    try {
      s.run("gluster-tls-cert", env("old-name"), ca.privateKey);
      const key = s.read("ssl/glusterfs.key");
      const renamed = s.run("gluster-tls-cert", env("manager-1"), ca.privateKey);
      expect(renamed.stderr).toBe(
        "made the Gluster TLS certificate of manager-1 (CN=manager-1, signed by the cluster's CA)",
      );
      expect(s.read("ssl/glusterfs.key")).toBe(key);
      const moved = s.run("gluster-tls-cert", env("manager-1", other), other.privateKey);
      expect(moved.code).toBe(0);
      expect(moved.stderr).toContain("made the Gluster TLS certificate of manager-1");
      expect(s.read("ssl/glusterfs.key")).toBe(key);
    } finally {
      s.done();
    }
  });

  test("a certificate to make and no CA key on stdin (or the wrong one): fails naming the node, nothing written", () => {
    const s = sandbox({ gluster: glusterInfo });
    try {
      const none = s.run("gluster-tls-cert", env("manager-1"), "");
      expect(none.code).toBe(1);
      expect(none.stderr).toContain("could not sign the Gluster certificate of manager-1 with the cluster's CA");
      expect(fs.existsSync(s.file("ssl/glusterfs.pem"))).toBe(false);
      const wrong = s.run("gluster-tls-cert", env("manager-1"), other.privateKey);
      expect(wrong.code).toBe(1);
      expect(fs.existsSync(s.file("ssl/glusterfs.pem"))).toBe(false);
      expect(wrong.stderr).not.toContain("PRIVATE KEY");
    } finally {
      s.done();
    }
  });

  test("a running volume without TLS: refused, naming gluster.tls and the fix, and nothing written", () => {
    const s = sandbox({ gluster: glusterInfo });
    try {
      fs.writeFileSync(s.file("info"), startedVolume(false));
      const r = s.run("gluster-tls-cert", env("manager-1"), ca.privateKey);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("volume swarmcloud is running without TLS, and swarmcloud:gluster.tls is true");
      expect(r.stderr).toContain("pulumi config set --path swarmcloud:gluster.tls false");
      expect(fs.existsSync(s.file("ssl"))).toBe(false);
    } finally {
      s.done();
    }
  });

  test("another CA trusted while a brick runs here (a TLS volume from before the CA): refused, nothing written", () => {
    const s = sandbox({ gluster: glusterInfo, pgrep: '[ -f "$SANDBOX/brick" ]' });
    try {
      fs.mkdirSync(s.file("ssl"));
      fs.writeFileSync(s.file("ssl/glusterfs.ca"), `${pem("manager-1")}\n${pem("manager-2")}`);
      fs.writeFileSync(s.file("brick"), "");
      const r = s.run("gluster-tls-cert", env("manager-1"), ca.privateKey);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        "manager-1 trusts other Gluster certificates than the cluster's CA while it serves a brick",
      );
      expect(fs.existsSync(s.file("ssl/glusterfs.key"))).toBe(false);
      // With no brick running, the node moves to the CA (its trust step then restarts glusterd).
      fs.rmSync(s.file("brick"));
      expect(s.run("gluster-tls-cert", env("manager-1"), ca.privateKey).code).toBe(0);
    } finally {
      s.done();
    }
  });
});

/**
 * Stand-ins for the trust script: glusterd "runs" while the file `running` exists, and it holds
 * its pid (pkill removes it, glusterd writes a new pid; with the file `supervised`, pkill's
 * victim is replaced at once by a new glusterd, as the lab's node entrypoint does); `brick` makes
 * pgrep -f find a brick process of the volume.
 */
const TRUST_STAND_INS = {
  gluster: '[ -f "$SANDBOX/running" ]',
  pgrep: 'if [ "$1" = -f ]; then [ -f "$SANDBOX/brick" ]; else [ -f "$SANDBOX/running" ] && cat "$SANDBOX/running"; fi',
  pkill: [
    'old=$(cat "$SANDBOX/running" 2>/dev/null || echo 100)',
    'rm -f "$SANDBOX/running"',
    'if [ -f "$SANDBOX/supervised" ]; then echo $((old + 1)) >"$SANDBOX/running"; fi',
  ].join("\n"),
  glusterd: 'echo 200 >"$SANDBOX/running"',
  systemctl: "exit 3",
  // OpenSSL's directory, where glusterd looks for the files (the lab's Debian: /usr/lib/ssl).
  openssl: '[ "$*" = "version -d" ] && echo "OPENSSLDIR: \\"$SANDBOX/openssldir\\""',
};

describe("gluster-tls-trust.sh (stand-ins: no real process is touched)", () => {
  const CA = `${pem("manager-1")}\n${pem("manager-2")}`;
  const env = (ca: string) => ({ NODE_NAME: "manager-1", VOLUME: "swarmcloud", CA: ca });
  const restarts = (log: string) => log.split("\n").filter((l) => l.startsWith("pkill")).length;

  test("first run: the CA file and secure-access written, glusterd restarted; a re-run restarts nothing", () => {
    const s = sandbox(TRUST_STAND_INS);
    try {
      fs.writeFileSync(s.file("running"), "");
      const first = s.run("gluster-tls-trust", env(CA));
      expect(first.code).toBe(0);
      expect(first.stdout).toBe("2 certificates trusted");
      expect(s.read("ssl/glusterfs.ca")).toBe(`${CA}\n`);
      expect(fs.existsSync(s.file("glusterd/secure-access"))).toBe(true);
      for (const name of ["glusterfs.pem", "glusterfs.key", "glusterfs.ca"]) {
        expect(fs.readlinkSync(s.file(`openssldir/${name}`))).toBe(s.file(`ssl/${name}`));
      }
      expect(restarts(s.read("calls.log"))).toBe(1);
      // Nothing supervises glusterd here: the script started it again itself.
      expect(s.read("calls.log")).toMatch(/^glusterd\s*$/m);
      const again = s.run("gluster-tls-trust", env(CA));
      expect(again).toEqual({ code: 0, stdout: "2 certificates trusted", stderr: "" });
      expect(restarts(s.read("calls.log"))).toBe(1);
    } finally {
      s.done();
    }
  });

  test("under a supervisor that starts glusterd again at once: the old one is waited for, not the new one", () => {
    const s = sandbox(TRUST_STAND_INS);
    try {
      fs.writeFileSync(s.file("running"), "100\n");
      fs.writeFileSync(s.file("supervised"), "");
      const r = s.run("gluster-tls-trust", env(CA));
      expect([r.code, r.stdout]).toEqual([0, "2 certificates trusted"]);
      expect(restarts(s.read("calls.log"))).toBe(1);
      // The supervisor's glusterd (pid 101) runs; the script started none of its own.
      expect(s.read("running").trim()).toBe("101");
      expect(s.read("calls.log")).not.toMatch(/^glusterd\s*$/m);
    } finally {
      s.done();
    }
  });

  test("a changed CA with no brick running here: written, glusterd restarted once more", () => {
    const s = sandbox(TRUST_STAND_INS);
    try {
      fs.writeFileSync(s.file("running"), "");
      s.run("gluster-tls-trust", env(CA));
      const more = `${CA}\n${pem("worker-1")}`;
      const r = s.run("gluster-tls-trust", env(more));
      expect(r.stdout).toBe("3 certificates trusted");
      expect(s.read("ssl/glusterfs.ca")).toBe(`${more}\n`);
      expect(restarts(s.read("calls.log"))).toBe(2);
    } finally {
      s.done();
    }
  });

  test("a changed CA while a brick of the volume runs here: refused, nothing written or restarted", () => {
    const s = sandbox(TRUST_STAND_INS);
    try {
      fs.writeFileSync(s.file("running"), "");
      s.run("gluster-tls-trust", env(CA));
      fs.writeFileSync(s.file("brick"), "");
      const r = s.run("gluster-tls-trust", env(pem("manager-1")));
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("while manager-1 serves a brick of volume swarmcloud");
      expect(r.stderr).toContain('README says ("Gluster TLS")');
      expect(s.read("ssl/glusterfs.ca")).toBe(`${CA}\n`);
      expect(restarts(s.read("calls.log"))).toBe(1);
    } finally {
      s.done();
    }
  });

  test("a missing link into OpenSSL's directory is made again, and glusterd restarted to read it", () => {
    const s = sandbox(TRUST_STAND_INS);
    try {
      fs.writeFileSync(s.file("running"), "");
      s.run("gluster-tls-trust", env(CA));
      fs.rmSync(s.file("openssldir/glusterfs.pem"));
      expect(s.run("gluster-tls-trust", env(CA)).stderr).toBe("manager-1: links written; glusterd uses TLS");
      expect(fs.readlinkSync(s.file("openssldir/glusterfs.pem"))).toBe(s.file("ssl/glusterfs.pem"));
      expect(restarts(s.read("calls.log"))).toBe(2);
    } finally {
      s.done();
    }
  });

  test("glusterd not running: the files are written and nothing is started", () => {
    const s = sandbox(TRUST_STAND_INS);
    try {
      const r = s.run("gluster-tls-trust", env(CA));
      expect(r.code).toBe(0);
      expect(s.read("calls.log")).not.toMatch(/^(pkill|glusterd)/m);
    } finally {
      s.done();
    }
  });
});
