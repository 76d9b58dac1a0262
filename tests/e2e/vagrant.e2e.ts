/**
 * Real VMs: the program with the `vagrant` environment and Vagrant's libvirt provider (qemu's
 * software emulation here: this machine's KVM runs no guests) boots three VMs from the lab box
 * (tests/lab/vagrant.sh) through the Vagrantfile it renders and `vagrant up`, reaches them through
 * `vagrant ssh-config`, forms the swarm and the Gluster volume and mounts it; `pulumi destroy`
 * runs `vagrant destroy` and leaves no libvirt domain, volume or network behind. No apps: the
 * swarm, the volume and the mount are what this suite is about.
 */
import * as fs from "fs";
import * as path from "path";
import { engineBin, PulumiCli, REPO, Report, sh } from "./lib";

const STACK = "lab-vagrant";
/** Where VagrantNodes keeps the stack's Vagrantfile and Vagrant's state (components/nodes/source.ts). */
const WORK_DIR = path.join(REPO, ".vagrant-stacks", STACK);
const VAGRANT_LAB = path.join(REPO, "tests", "lab", "vagrant.sh");
const NODES = [
  { name: "manager-1", role: "manager", address: "192.168.56.11" },
  { name: "worker-1", role: "worker", address: "192.168.56.31" },
  { name: "worker-2", role: "worker", address: "192.168.56.32" },
] as const;
type VmName = (typeof NODES)[number]["name"];
const MOUNT = "/mnt/swarmcloud";
const BRICK = "/srv/swarmcloud/brick";

const report = new Report("vagrant");
let cli: PulumiCli | undefined;
let destroyed = false;
let networksBefore: string[] = [];
const EVENT_LOG = path.join(REPO, "reports", `vagrant-up-events-${process.pid}.json`);

/** Runs tests/lab/vagrant.sh; throws with its output when it fails; returns stdout and stderr. */
function vagrantLab(...args: string[]): { stdout: string; stderr: string } {
  const r = sh("bash", [VAGRANT_LAB, ...args]);
  if (r.code !== 0) throw new Error(`vagrant.sh ${args.join(" ")} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r;
}

/** Runs a command as root on a VM over SSH, as the program does: user vagrant, the key Vagrant made, sudo. */
function onVm(name: VmName, command: string): string {
  const node = NODES.find((n) => n.name === name)!;
  const key = path.join(WORK_DIR, ".vagrant", "machines", name, "libvirt", "private_key");
  const quoted = `'${command.replace(/'/g, `'\\''`)}'`;
  const r = sh("ssh", [
    ...["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"],
    ...["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-i", key],
    `vagrant@${node.address}`,
    `sudo -n bash -c ${quoted}`,
  ]);
  if (r.code !== 0) throw new Error(`${name}: '${command}' failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout.trim();
}

/** What `vagrant.sh leftovers` lists of one kind (domain, volume, network). */
function leftovers(kind: "domain" | "volume" | "network"): string[] {
  return vagrantLab("leftovers", WORK_DIR)
    .stdout.split("\n")
    .filter((l) => l.startsWith(`${kind} `))
    .map((l) => l.slice(kind.length + 1))
    .sort();
}

/** Seconds from the first event to the last one of the resource named NAME in the engine's event log. */
function resourceSeconds(log: string, name: string): number | undefined {
  const times = fs
    .readFileSync(log, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { timestamp: number; resourcePreEvent?: Meta; resOutputsEvent?: Meta })
    .flatMap((e) => {
      const urn = (e.resourcePreEvent ?? e.resOutputsEvent)?.metadata.urn;
      return urn?.endsWith(`::${name}`) ? [e.timestamp] : [];
    });
  return times.length < 2 ? undefined : Math.max(...times) - Math.min(...times);
}
interface Meta {
  metadata: { urn: string };
}

beforeAll(() => {
  const bin = engineBin();
  vagrantLab("libvirt");
  const t0 = Date.now();
  const box = vagrantLab("box");
  report.set("boxSeconds", (Date.now() - t0) / 1000);
  const built = /box \S+ built in ([\d.]+) s/.exec(box.stderr);
  report.set("boxBuildSeconds", built ? Number(built[1]) : "cached");
  // A run that was stopped may have left its machines: they go before the snapshot of networks.
  vagrantLab("clean", WORK_DIR);
  networksBefore = leftovers("network");
  report.set("networksBefore", networksBefore);
  cli = new PulumiCli(STACK, bin);
  cli.init();
  cli.setConfig({
    environment: "vagrant",
    managers: 1,
    workers: 2,
    vagrant: {
      box: vagrantLab("box-name").stdout.trim(),
      provider: "libvirt",
      // No KVM for guests on this machine: qemu's software emulation.
      driver: "qemu",
      memory: 1024,
      cpus: 1,
      networkPrefix: "192.168.56",
      firstHost: 11,
      // No apps, so nothing to forward (on libvirt each port is an ssh tunnel Vagrant leaves running).
      forwardedPorts: {},
    },
    swarm: { resolveImage: "never", encryptOverlay: false },
    ghost: { enabled: false },
    portainer: { enabled: false },
  });
}, 1800_000);

afterAll(() => {
  if (cli && process.env.SWARMCLOUD_KEEP_LAB !== "1") {
    if (!destroyed) cli.run(["destroy", "--yes", "--skip-preview"]);
    cli.removeStack();
    vagrantLab("clean", WORK_DIR);
  }
  const file = report.write();
  console.log(`vagrant report: ${file}\n${JSON.stringify(report.data, null, 2)}`);
}, 900_000);

test("pulumi up boots three VMs through the rendered Vagrantfile and `vagrant up`, and forms the cluster", () => {
  fs.mkdirSync(path.dirname(EVENT_LOG), { recursive: true });
  // --event-log is one of the engine's debug flags: PULUMI_DEBUG_COMMANDS shows it.
  const { seconds } = cli!.up(["--event-log", EVENT_LOG], { PULUMI_DEBUG_COMMANDS: "true" });
  report.set("upSeconds", seconds);
  report.set("vagrantUpSeconds", resourceSeconds(EVENT_LOG, `${STACK}-up`));
  fs.rmSync(EVENT_LOG, { force: true });
  const vagrantfile = fs.readFileSync(path.join(WORK_DIR, "Vagrantfile"), "utf8");
  expect(vagrantfile).toContain('config.vm.provider "libvirt" do |lv|\n    lv.driver = "qemu"\n');
  expect(vagrantfile).toContain(`config.vm.box = "${vagrantLab("box-name").stdout.trim()}"`);
  const outputs = cli!.outputs();
  expect(outputs.managerAddress).toBe("192.168.56.11");
  expect((outputs.nodeList as { name: string }[]).map((n) => n.name).sort()).toEqual(NODES.map((n) => n.name));
  expect(outputs.glusterMountPath).toBe(MOUNT);
});

test("the nodes are VMs that libvirt runs with qemu, each with its hostname and Debian release", () => {
  const domains = leftovers("domain");
  report.set("domains", domains);
  expect(domains).toEqual(NODES.map((n) => `${STACK}_${n.name}`).sort());
  for (const n of NODES) {
    // Inside a container this would say docker or container-other.
    expect(onVm(n.name, "systemd-detect-virt")).toMatch(/^(qemu|kvm)$/);
    expect(onVm(n.name, "hostname")).toBe(n.name);
    expect(onVm(n.name, ". /etc/os-release && echo $VERSION_CODENAME")).toBe(
      process.env.SWARMCLOUD_LAB_DEBIAN ?? "trixie",
    );
  }
  report.set("platform", {
    kernel: onVm("manager-1", "uname -r"),
    docker: onVm("manager-1", "docker version --format '{{.Server.Version}}'"),
    gluster: onVm("manager-1", "glusterd --version | awk 'NR == 1 { print $2 }'"),
  });
});

test("`docker node ls` on the manager lists the three VMs Ready: the leader and two workers", () => {
  const rows = onVm("manager-1", "docker node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'")
    .split("\n")
    .map((l) => l.trim())
    .sort();
  expect(rows).toEqual(["manager-1 Ready Leader", "worker-1 Ready", "worker-2 Ready"]);
});

test("the Gluster volume is replica 3 over the VMs, mounted on each; a file written on one is read on the others", () => {
  const info = onVm("manager-1", "gluster volume info swarmcloud");
  expect(info).toMatch(/^Status: Started$/m);
  expect(info).toMatch(/^Number of Bricks: 1 x 3 = 3$/m);
  for (const n of NODES) expect(info).toContain(`${n.address}:${BRICK}`);
  for (const n of NODES) expect(onVm(n.name, `findmnt -n -o FSTYPE ${MOUNT}`)).toBe("fuse.glusterfs");
  const text = `written on worker-2 at ${new Date().toISOString()}`;
  const file = `${MOUNT}/vagrant-suite-${process.pid}.txt`;
  onVm("worker-2", `printf '%s\\n' '${text}' > ${file}`);
  for (const n of ["manager-1", "worker-1"] as const) expect(onVm(n, `cat ${file}`)).toBe(text);
  // And back: a change made on the manager is what worker-2 reads.
  onVm("manager-1", `printf '%s\\n' 'changed on manager-1' >> ${file}`);
  expect(onVm("worker-2", `cat ${file}`)).toBe(`${text}\nchanged on manager-1`);
  // Replica 3: each VM's brick holds its own copy.
  for (const n of NODES)
    expect(onVm(n.name, `cat ${BRICK}/${path.basename(file)}`)).toBe(`${text}\nchanged on manager-1`);
  onVm("worker-1", `rm ${file}`);
});

test("pulumi destroy runs `vagrant destroy`: no libvirt domain, volume or network is left", () => {
  const seconds = cli!.destroy();
  destroyed = true;
  report.set("destroySeconds", seconds);
  expect(leftovers("domain")).toEqual([]);
  expect(leftovers("volume")).toEqual([]);
  expect(leftovers("network")).toEqual(networksBefore);
  expect(sh("pgrep", ["-f", `qemu-system.*${STACK}_`]).stdout).toBe("");
  expect(fs.existsSync(path.join(WORK_DIR, "Vagrantfile"))).toBe(false);
});
