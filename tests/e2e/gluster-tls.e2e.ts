/**
 * Gluster TLS (opt-in `gluster.tls`) on real nodes: three lab nodes deployed with TLS on, a file
 * written through one node's mount read on the others, and a machine on the lab network that is
 * not a node refused by the volume and by glusterd even when its address is in auth.allow: with
 * no certificate, and with a certificate of its own that claims a node's name. A fourth node
 * joins (its certificate signed by the cluster's CA, no other node's glusterd restarted) and
 * leaves (its certificate then refused by the bricks by name).
 * `npm run test:gluster-tls`; .ci/run runs it.
 */
import * as fs from "fs";
import {
  changes,
  engineBin,
  inventory,
  Inventory,
  lab,
  labConfig,
  LabNode,
  onNode,
  PulumiCli,
  Report,
  runOnNode,
  sh,
  sshLogins,
  waitFor,
} from "./lib";

const MANAGERS = 3;
const VOLUME = "swarmcloud";
const report = new Report("gluster-tls");
let cli: PulumiCli;
let inv: Inventory;

/** The glusterd log's last lines on every node: what a failed TLS handshake leaves. */
function glusterdLogs(): string {
  return inv.nodes
    .map((n) => `--- ${n.name}\n${runOnNode(n, "tail -n 25 /var/log/glusterfs/glusterd.log").stdout}`)
    .join("\n");
}

/** The volume's options as `gluster volume info` lists them, key -> value. */
function volumeOptions(n: LabNode): Record<string, string> {
  const info = onNode(n, `gluster --mode=script volume info ${VOLUME}`);
  const lines = info.split("Options Reconfigured:")[1]?.split("\n") ?? [];
  return Object.fromEntries(lines.filter((l) => l.includes(": ")).map((l) => l.split(": ") as [string, string]));
}

/**
 * Runs a mount attempt on the stranger (a container on the lab network, not a node): `prepare`
 * first (its TLS files, if any), then a FUSE mount of the volume from a node; prints the mount's
 * exit code, the entries it sees and the log lines that say why.
 */
function strangerMount(prepare: string[]): { code: string; files: string; why: string; out: string } {
  const victim = inv.nodes[0]!;
  const text = [
    ...prepare,
    "mkdir -p /mnt/stolen",
    `timeout 60 mount -t glusterfs -o log-file=/tmp/mount.log ${victim.address}:/${VOLUME} /mnt/stolen; echo "mount=$?"`,
    'echo "files=$(timeout 10 ls /mnt/stolen 2>/dev/null | wc -l)"',
    "grep -m 3 -iE 'ssl|tls|auth|reject|denied|permission|handshake|certificate' /tmp/mount.log || true",
    `echo "remote=$(timeout 20 gluster --mode=script --remote-host=${victim.address} volume info ${VOLUME} >/dev/null 2>&1; echo $?)"`,
  ].join("\n");
  const out = lab("stranger", text);
  return {
    code: /^mount=(\d+)$/m.exec(out)?.[1] ?? "?",
    files: /^files=(\d+)$/m.exec(out)?.[1] ?? "?",
    why: out.split("\n").find((l) => /ssl|tls|auth|reject|denied|permission|handshake|certificate/i.test(l)) ?? "",
    out,
  };
}

beforeAll(() => {
  const bin = engineBin();
  lab("engine");
  lab("image");
  lab("down");
  lab("up", String(MANAGERS), "0");
  inv = inventory();
  cli = new PulumiCli("lab-tls", bin);
  cli.init();
  cli.setConfig({ ...labConfig(inv, { apps: false }), gluster: { tls: true } });
  cli.setSecret("sshPrivateKey", fs.readFileSync(inv.privateKeyPath, "utf8"));
}, 1800_000);

afterAll(() => {
  const file = report.write();
  console.log(`gluster-tls report: ${file}\n${JSON.stringify(report.data, null, 2)}`);
  if (cli && process.env.SWARMCLOUD_KEEP_LAB !== "1") {
    cli.run(["destroy", "--yes", "--skip-preview"]);
    cli.removeStack();
  }
  if (process.env.SWARMCLOUD_KEEP_LAB !== "1") lab("down");
}, 900_000);

test("pulumi up with gluster.tls: every node has its certificate signed by the cluster's CA, trusts the CA, and glusterd speaks TLS", () => {
  const r = cli.tryUp();
  report.set("upSeconds", r.seconds);
  if (r.code !== 0) {
    report.set("upFailure", { output: r.output.slice(-6000), glusterd: glusterdLogs() });
    throw new Error(`pulumi up failed:\n${r.output.slice(-4000)}\n${glusterdLogs()}`);
  }
  for (const n of inv.nodes) {
    expect(onNode(n, "openssl x509 -noout -subject -nameopt RFC2253 -in /etc/ssl/glusterfs.pem")).toBe(
      `subject=CN=${n.name}`,
    );
    expect(onNode(n, "grep -c 'BEGIN CERTIFICATE' /etc/ssl/glusterfs.ca")).toBe("1");
    expect(onNode(n, "openssl x509 -noout -subject -nameopt RFC2253 -in /etc/ssl/glusterfs.ca")).toBe(
      `subject=CN=swarmcloud ${VOLUME} CA`,
    );
    expect(onNode(n, "openssl verify -CAfile /etc/ssl/glusterfs.ca /etc/ssl/glusterfs.pem")).toBe(
      "/etc/ssl/glusterfs.pem: OK",
    );
    expect(onNode(n, "stat -c %a /etc/ssl/glusterfs.key")).toBe("600");
    expect(onNode(n, "test -e /var/lib/glusterd/secure-access && echo yes")).toBe("yes");
    // glusterd answers on 24007 with a TLS handshake, showing the node's own certificate.
    const hello = runOnNode(n, `timeout 10 openssl s_client -connect ${n.address}:24007 </dev/null 2>/dev/null`);
    expect(hello.stdout).toMatch(new RegExp(`^subject=.*CN ?= ?${n.name}$`, "m"));
  }
  const options = volumeOptions(inv.nodes[0]!);
  report.set("volumeOptions", options);
  expect(options["server.ssl"]).toBe("on");
  expect(options["client.ssl"]).toBe("on");
  expect(options["auth.ssl-allow"]!.split(",").sort()).toEqual(inv.nodes.map((n) => n.name).sort());
});

test("a file written through one node's mount is read on the others", async () => {
  const stamp = `tls-${Date.now()}`;
  onNode(inv.nodes[0]!, `echo ${stamp} > /mnt/swarmcloud/tls-probe.txt`);
  for (const n of inv.nodes.slice(1)) {
    const seen = await waitFor(`${n.name} to read the file`, 20, () => {
      return onNode(n, "cat /mnt/swarmcloud/tls-probe.txt") === stamp;
    });
    expect(seen).toBe(true);
  }
});

/** glusterd's pid on each node, read with docker exec (an SSH session would count as the up's). */
function glusterdPids(nodes: LabNode[]): Record<string, string> {
  return Object.fromEntries(
    nodes.map((n) => [n.name, sh("docker", ["exec", n.container, "pgrep", "-x", "glusterd"]).stdout.trim()]),
  );
}

test("a second pulumi up changes nothing and runs nothing on any node (glusterd not restarted)", () => {
  // Read with docker exec, not SSH: an SSH session of the test's own would count as the up's.
  const before = { logins: inv.nodes.map(sshLogins), pids: glusterdPids(inv.nodes) };
  const { steps } = cli.preview(["--expect-no-changes"]);
  expect(changes(steps)).toEqual([]);
  cli.up(["--expect-no-changes"]);
  expect({ logins: inv.nodes.map(sshLogins), pids: glusterdPids(inv.nodes) }).toEqual(before);
});

describe("a node that comes and goes", () => {
  const NEW = "worker-1";
  let managers: LabNode[];
  beforeAll(() => {
    managers = inv.nodes;
  });

  test("a fourth node joins: signed by the CA on itself, mounts and reads the volume; no other node restarts glusterd", async () => {
    lab("add", NEW, "worker");
    inv = inventory();
    const pidsBefore = glusterdPids(managers);
    const caBefore = managers.map((n) => onNode(n, "sha256sum /etc/ssl/glusterfs.ca"));
    cli.setConfig({ ...labConfig(inv, { apps: false }), gluster: { tls: true } });
    const r = cli.tryUp();
    report.set("addNodeSeconds", r.seconds);
    if (r.code !== 0) throw new Error(`pulumi up (add ${NEW}) failed:\n${r.output.slice(-4000)}\n${glusterdLogs()}`);
    const worker = inv.nodes.find((n) => n.name === NEW)!;
    expect(onNode(worker, "openssl verify -CAfile /etc/ssl/glusterfs.ca /etc/ssl/glusterfs.pem")).toBe(
      "/etc/ssl/glusterfs.pem: OK",
    );
    const seen = await waitFor(`${NEW} to read the file`, 30, () =>
      /^tls-/.test(runOnNode(worker, "cat /mnt/swarmcloud/tls-probe.txt").stdout.trim()),
    );
    expect(seen).toBe(true);
    const after = {
      pids: glusterdPids(managers),
      ca: managers.map((n) => onNode(n, "sha256sum /etc/ssl/glusterfs.ca")),
    };
    report.set("addNode", { pidsBefore, pidsAfter: after.pids });
    expect(after).toEqual({ pids: pidsBefore, ca: caBefore });
    expect(volumeOptions(managers[0]!)["auth.ssl-allow"]!.split(",").sort()).toEqual(
      inv.nodes.map((n) => n.name).sort(),
    );
  });

  test("it leaves: auth.ssl-allow drops its name, and its certificate (still signed by the CA) is refused", () => {
    const worker = inv.nodes.find((n) => n.name === NEW)!;
    cli.setConfig({ ...labConfig({ ...inv, nodes: managers }, { apps: false }), gluster: { tls: true } });
    const r = cli.tryUp();
    report.set("removeNodeSeconds", r.seconds);
    if (r.code !== 0) throw new Error(`pulumi up (remove ${NEW}) failed:\n${r.output.slice(-4000)}`);
    expect(volumeOptions(managers[0]!)["auth.ssl-allow"]!.split(",").sort()).toEqual(
      managers.map((n) => n.name).sort(),
    );
    // Only the name stands in its way: its address goes back into auth.allow for the attempt.
    const allowed = /^auth\.allow\s+(\S+)$/m.exec(
      onNode(managers[0]!, `gluster --mode=script volume get ${VOLUME} auth.allow`),
    )![1]!;
    onNode(managers[0]!, `gluster --mode=script volume set ${VOLUME} auth.allow ${allowed},${worker.address}`);
    try {
      const out = runOnNode(
        worker,
        [
          "umount -l /mnt/swarmcloud 2>/dev/null || true",
          "mkdir -p /mnt/again",
          `timeout 60 mount -t glusterfs -o log-file=/tmp/again.log ${managers[0]!.address}:/${VOLUME} /mnt/again; echo "mount=$?"`,
          'echo "files=$(timeout 10 ls /mnt/again 2>/dev/null | wc -l)"',
          "umount -l /mnt/again 2>/dev/null || true",
          "grep -m 3 -iE 'auth|denied|ssl-allow' /tmp/again.log || true",
        ].join("\n"),
      ).stdout;
      report.set("removedNodeMount", out);
      expect(out).toMatch(/^files=0$/m);
      // Refused for the reason under test: the bricks' auth (its name), not a failed handshake.
      expect(out).toMatch(/Authentication failed|Permission denied|AUTH_FAILED/i);
    } finally {
      onNode(managers[0]!, `gluster --mode=script volume set ${VOLUME} auth.allow ${allowed}`);
    }
    lab("rm", NEW);
    inv = inventory();
  });
});

describe("a stranger (on the lab network, not a node) whose address is in auth.allow", () => {
  let allowed = "";
  beforeAll(() => {
    // auth.allow as the program keeps it, plus the stranger's address: only TLS stands in its way.
    allowed = /^auth\.allow\s+(\S+)$/m.exec(
      onNode(inv.nodes[0]!, `gluster --mode=script volume get ${VOLUME} auth.allow`),
    )![1]!;
    const stranger = `${inv.nodes[0]!.address.split(".").slice(0, 3).join(".")}.250`;
    onNode(inv.nodes[0]!, `gluster --mode=script volume set ${VOLUME} auth.allow ${allowed},${stranger}`);
  });
  afterAll(() => {
    onNode(inv.nodes[0]!, `gluster --mode=script volume set ${VOLUME} auth.allow ${allowed}`);
  });

  test("without a certificate: the mount sees nothing and glusterd does not answer it", () => {
    const r = strangerMount([]);
    report.set("strangerPlain", r);
    expect(r.files).toBe("0");
    expect(r.out).toMatch(/^remote=[1-9]\d*$/m);
  });

  test("with a self-made certificate claiming a node's name, the cluster CA's certificate trusted too: refused", () => {
    const ca = onNode(inv.nodes[0]!, "cat /etc/ssl/glusterfs.ca");
    const r = strangerMount([
      "mkdir -p /etc/ssl /var/lib/glusterd",
      `openssl req -x509 -newkey rsa:2048 -nodes -keyout /etc/ssl/glusterfs.key -subj /CN=${inv.nodes[0]!.name} -days 1 -out /etc/ssl/glusterfs.pem 2>/dev/null`,
      `cat /etc/ssl/glusterfs.pem - >/etc/ssl/glusterfs.ca <<'EOF'\n${ca}\nEOF`,
      "touch /var/lib/glusterd/secure-access",
      // Where this Debian's Gluster client looks for them too (gluster_tls_link in lib.sh).
      'for f in pem key ca; do ln -sfn "/etc/ssl/glusterfs.$f" "/usr/lib/ssl/glusterfs.$f"; done',
    ]);
    report.set("strangerForged", r);
    expect(r.files).toBe("0");
    expect(r.out).toMatch(/^remote=[1-9]\d*$/m);
  });
});
