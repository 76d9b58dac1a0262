/**
 * VagrantNodes: the rendered Vagrantfile (golden file + a real `vagrant validate`), the shell
 * it runs (executed against a stand-in `vagrant`), and the resource graph under Pulumi mocks.
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { NodeSpec, parseConfig, VagrantSettings } from "../../components/config";
import {
  DESTROY_SCRIPT,
  fromStrictMode,
  KEY_MARKER,
  parseVagrantSshConfig,
  providerBlock,
  renderVagrantfile,
  rubyString,
  SSH_CONFIG_SCRIPT,
  UP_SCRIPT,
  vagrantAddress,
  VagrantNodes,
} from "../../components/nodes/vagrant";
import { recorded, RecordedResource, recordedNamed, settled, setupMocks, valueOf } from "./mocks";

const VAGRANT_COMMAND = "pulumi-nodejs:dynamic/swarmcloud:VagrantCommand";
const FAKE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

function sshConfigOutput(node: string, identityFile: string): string {
  return [
    `Host ${node}`,
    "  HostName 127.0.0.1",
    "  User vagrant",
    "  Port 2222",
    "  UserKnownHostsFile /dev/null",
    "  StrictHostKeyChecking no",
    "  PasswordAuthentication no",
    identityFile.includes(" ") ? `  IdentityFile "${identityFile}"` : `  IdentityFile ${identityFile}`,
    "  IdentitiesOnly yes",
    "  LogLevel FATAL",
    "",
  ].join("\n");
}

// The per-node ssh-config commands print what SSH_CONFIG_SCRIPT prints on a real machine.
setupMocks({
  state: (args) =>
    args.type === VAGRANT_COMMAND && args.name.endsWith("-ssh-config")
      ? {
          stdout: `${sshConfigOutput(
            args.inputs.environment.SWARMCLOUD_NODE,
            `/w/.vagrant/machines/${args.inputs.environment.SWARMCLOUD_NODE}/virtualbox/private_key`,
          )}${KEY_MARKER}\n${FAKE_KEY}`,
        }
      : undefined,
});

const parsed = parseConfig({ environment: "vagrant" }, { sshPrivateKey: false });
const { config } = parsed;
const GOLDEN = path.join(__dirname, "golden", "Vagrantfile.golden");
const GOLDEN_LIBVIRT = path.join(__dirname, "golden", "Vagrantfile-libvirt.golden");
const node = (name: string, role: "manager" | "worker"): NodeSpec => ({
  name,
  role,
  labels: {},
  availability: "active",
});

describe("vagrantAddress", () => {
  const s = config.vagrant;
  it("puts managers from firstHost and workers from firstHost + 20", () => {
    expect(vagrantAddress(s, "manager", 0)).toBe("192.168.56.11");
    expect(vagrantAddress(s, "manager", 2)).toBe("192.168.56.13");
    expect(vagrantAddress(s, "worker", 0)).toBe("192.168.56.31");
    expect(vagrantAddress(s, "worker", 1)).toBe("192.168.56.32");
    expect(vagrantAddress({ networkPrefix: "10.0.5", firstHost: 100 }, "worker", 3)).toBe("10.0.5.123");
  });

  it("refuses addresses past .254 and managers that would collide with workers", () => {
    expect(() => vagrantAddress({ networkPrefix: "192.168.56", firstHost: 230 }, "worker", 5)).toThrow(
      /vagrant\.firstHost = 230: worker 6 would get 192\.168\.56\.255/,
    );
    expect(() => vagrantAddress(s, "manager", 20)).toThrow(/at most 20 managers/);
  });
});

describe("rubyString", () => {
  it("escapes quotes, backslashes and interpolation", () => {
    expect(rubyString('a"b\\c#{x}')).toBe('"a\\"b\\\\c\\#{x}"');
    expect(rubyString("bento/debian-12")).toBe('"bento/debian-12"');
  });
});

describe("renderVagrantfile", () => {
  const text = renderVagrantfile(config.nodes, config.vagrant);
  const libvirt = parseConfig({ environment: "vagrant", vagrant: { provider: "libvirt" } }, { sshPrivateKey: false });
  const libvirtText = renderVagrantfile(libvirt.config.nodes, libvirt.config.vagrant);

  it("matches the golden Vagrantfile for the default cluster (3 managers + 2 workers)", () => {
    expect(parsed.errors).toEqual([]);
    expect(config.nodes).toHaveLength(5);
    expect(text).toBe(fs.readFileSync(GOLDEN, "utf8"));
  });

  it("uses no plugins, provisions nothing and leaves insert_key alone", () => {
    expect(text).not.toMatch(/hostmanager|config\.vagrant\.plugins|provision|insert_key|Vagrant\.has_plugin/);
  });

  it("forwards ports from the first manager only, even when a worker comes first", () => {
    const nodes = [node("w1", "worker"), node("m1", "manager"), node("m2", "manager")];
    const vf = renderVagrantfile(nodes, { ...config.vagrant, forwardedPorts: { "9443": 19443, "80": 8080 } });
    const blocks = vf.split("config.vm.define ").slice(1);
    expect(blocks).toHaveLength(3);
    expect(blocks[0]).toMatch(/^"w1" do/);
    expect(blocks[0]).not.toMatch(/forwarded_port/);
    expect(blocks[2]).not.toMatch(/forwarded_port/);
    expect(blocks[1]).toMatch(/^"m1", primary: true do/);
    // Sorted by guest port.
    expect(blocks[1]!.match(/forwarded_port.*/g)).toEqual([
      'forwarded_port", guest: 80, host: 8080, host_ip: "127.0.0.1"',
      'forwarded_port", guest: 9443, host: 19443, host_ip: "127.0.0.1"',
    ]);
    expect(blocks[0]).toMatch(/ip: "192\.168\.56\.31"/);
    expect(blocks[1]).toMatch(/ip: "192\.168\.56\.11"/);
    expect(blocks[2]).toMatch(/ip: "192\.168\.56\.12"/);
  });

  it("takes box, memory and CPUs from the settings", () => {
    const settings: VagrantSettings = { ...config.vagrant, box: "generic/debian12", memory: 4096, cpus: 4 };
    const vf = renderVagrantfile([node("m1", "manager")], settings);
    expect(vf).toContain('config.vm.box = "generic/debian12"');
    expect(vf).toContain("vb.memory = 4096");
    expect(vf).toContain("vb.cpus = 4");
    expect(vf).not.toMatch(/libvirt|driver/);
  });

  it("matches the golden libvirt Vagrantfile: the libvirt block with its driver, nothing of VirtualBox", () => {
    expect(config.vagrant.provider).toBe("virtualbox");
    expect(config.vagrant.driver).toBe("kvm");
    expect(libvirtText).toBe(fs.readFileSync(GOLDEN_LIBVIRT, "utf8"));
    expect(libvirtText).not.toMatch(/virtualbox|vb\./);
    // The rest of the file is the same: only the provider block differs.
    const withoutBlock = (vf: string) => vf.replace(/ {2}config\.vm\.provider [^]*?\n {2}end\n/, "");
    expect(withoutBlock(libvirtText)).toBe(withoutBlock(text));
  });

  it("renders libvirt's driver, memory and CPUs from the settings (qemu where KVM cannot run guests)", () => {
    expect(providerBlock({ provider: "libvirt", driver: "qemu", memory: 1024, cpus: 1 })).toEqual([
      '  config.vm.provider "libvirt" do |lv|',
      '    lv.driver = "qemu"',
      "    lv.memory = 1024",
      "    lv.cpus = 1",
      "  end",
    ]);
    // The driver is libvirt's: a VirtualBox file has none.
    expect(providerBlock({ provider: "virtualbox", driver: "qemu", memory: 1024, cpus: 1 }).join("\n")).not.toMatch(
      /driver|qemu/,
    );
  });

  // REAL `vagrant validate`: runs when /usr/bin/vagrant exists, skipped only when it is absent.
  // VirtualBox is usually not installed where tests run; a stand-in VBoxManage that only
  // answers `--version` makes Vagrant treat the virtualbox provider as usable, so validate
  // checks the provider block too (without it Vagrant would validate against another
  // installed provider, e.g. libvirt, and ignore the virtualbox block).
  const hasVagrant = fs.existsSync("/usr/bin/vagrant");
  const itWithVagrant = hasVagrant ? it : it.skip;
  // The libvirt block is checked by vagrant-libvirt's own validation: where the plugin is
  // installed (Debian's vagrant-libvirt, which .ci/run installs), skipped only where it is not.
  const hasLibvirtPlugin = hasVagrant && vagrantLibvirtInstalled();
  const itWithLibvirt = hasLibvirtPlugin ? it : it.skip;

  function validate(vagrantfile: string, provider = "virtualbox"): { status: number | null; output: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-vagrant-"));
    try {
      const bin = path.join(dir, "bin");
      const project = path.join(dir, "project");
      fs.mkdirSync(bin);
      fs.mkdirSync(project);
      if (spawnSync("sh", ["-c", "command -v VBoxManage"]).status !== 0) {
        fs.writeFileSync(
          path.join(bin, "VBoxManage"),
          '#!/bin/sh\n[ "$1" = --version ] && echo 7.0.20r163906\nexit 0\n',
          {
            mode: 0o755,
          },
        );
      }
      fs.writeFileSync(path.join(project, "Vagrantfile"), vagrantfile);
      const res = spawnSync("/usr/bin/vagrant", ["validate"], {
        cwd: project,
        encoding: "utf8",
        timeout: 120_000,
        env: {
          ...process.env,
          PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
          VAGRANT_HOME: path.join(dir, "home"),
          VAGRANT_DEFAULT_PROVIDER: provider,
          VAGRANT_CHECKPOINT_DISABLE: "1",
          VAGRANT_NO_COLOR: "1",
        },
      });
      return { status: res.status, output: `${res.stdout}${res.stderr}` };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  itWithVagrant(
    "passes `vagrant validate` (real vagrant)",
    () => {
      const res = validate(text);
      expect(res.output).toContain("Vagrantfile validated successfully");
      expect(res.status).toBe(0);
    },
    120_000,
  );

  itWithVagrant(
    "`vagrant validate` really checks the virtualbox block (a misspelt setting fails)",
    () => {
      const res = validate(text.replace("vb.memory", "vb.memroy"));
      expect(res.status).not.toBe(0);
      expect(res.output).toMatch(/memroy/);
    },
    120_000,
  );

  itWithLibvirt(
    "the libvirt Vagrantfile passes `vagrant validate` with either driver (real vagrant and vagrant-libvirt)",
    () => {
      for (const vf of [libvirtText, libvirtText.replace('lv.driver = "kvm"', 'lv.driver = "qemu"')]) {
        const res = validate(vf, "libvirt");
        expect(res.output).toContain("Vagrantfile validated successfully");
        expect(res.status).toBe(0);
      }
    },
    120_000,
  );

  itWithLibvirt(
    "`vagrant validate` really checks the libvirt block (a misspelt setting, an unknown driver fail)",
    () => {
      const misspelt = validate(libvirtText.replace("lv.memory", "lv.memroy"), "libvirt");
      expect(misspelt.status).not.toBe(0);
      expect(misspelt.output).toMatch(/memroy/);
      const driver = validate(libvirtText.replace('lv.driver = "kvm"', 'lv.driver = "xen2"'), "libvirt");
      expect(driver.status).not.toBe(0);
      expect(driver.output).toMatch(/driver xen2/);
    },
    120_000,
  );
});

/** Whether Vagrant lists the vagrant-libvirt plugin (Debian installs it as a system plugin). */
function vagrantLibvirtInstalled(): boolean {
  const res = spawnSync("/usr/bin/vagrant", ["plugin", "list"], {
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, VAGRANT_CHECKPOINT_DISABLE: "1", VAGRANT_NO_COLOR: "1" },
  });
  return res.status === 0 && /^vagrant-libvirt /m.test(res.stdout);
}

describe("parseVagrantSshConfig", () => {
  it("reads the connection fields and the key after the marker", () => {
    const out = `${sshConfigOutput("manager-1", "/home/me/my vms/.vagrant/machines/manager-1/virtualbox/private_key")}${KEY_MARKER}\n${FAKE_KEY}`;
    expect(parseVagrantSshConfig(out)).toEqual({
      hostName: "127.0.0.1",
      user: "vagrant",
      port: 2222,
      identityFile: "/home/me/my vms/.vagrant/machines/manager-1/virtualbox/private_key",
      privateKey: FAKE_KEY,
    });
  });

  it("fails loudly without the marker, the IdentityFile or a key", () => {
    expect(() => parseVagrantSshConfig(sshConfigOutput("m", "/k"))).toThrow(/marker missing/);
    expect(() => parseVagrantSshConfig(`Host m\n${KEY_MARKER}\n${FAKE_KEY}`)).toThrow(/no IdentityFile/);
    expect(() => parseVagrantSshConfig(`${sshConfigOutput("m", "/k")}${KEY_MARKER}\ncat: /k: No such file\n`)).toThrow(
      /\/k does not hold a private key/,
    );
  });
});

describe("the scripts' files (components/nodes/vagrant/*.sh)", () => {
  it("hand the commands the shell from `set -eu` on: the same text as when it was written in vagrant.ts", () => {
    // Pinned: a change here changes every vagrant stack's command inputs (and reruns `vagrant up`).
    expect(UP_SCRIPT).toBe(
      'set -eu\nmkdir -p "$SWARMCLOUD_VAGRANT_DIR"\ncd "$SWARMCLOUD_VAGRANT_DIR"\ncat > Vagrantfile\nvagrant up --provider="$SWARMCLOUD_VAGRANT_PROVIDER"',
    );
    expect(DESTROY_SCRIPT.split("\n").slice(0, 3)).toEqual([
      "set -eu",
      'cd "$SWARMCLOUD_VAGRANT_DIR" 2>/dev/null || exit 0',
      "[ -f Vagrantfile ] || exit 0",
    ]);
    expect(DESTROY_SCRIPT).not.toMatch(/^#/m);
    expect(SSH_CONFIG_SCRIPT.split("\n")[0]).toBe("set -eu");
    expect(SSH_CONFIG_SCRIPT).toContain(`printf '%s\\n' '${KEY_MARKER}'\ncat "$key"`);
    expect(SSH_CONFIG_SCRIPT).not.toMatch(/^#/m);
  });

  it("refuses a file without a `set -eu` line, naming it", () => {
    expect(fromStrictMode("a.sh", "#!/bin/sh\n# x\nset -eu\necho hi\n")).toBe("set -eu\necho hi");
    expect(() => fromStrictMode("x/y.sh", "#!/bin/sh\n# set -eu\necho hi\n")).toThrow(
      'swarmcloud: x/y.sh has no "set -eu" line',
    );
  });
});

describe("the scripts, run against a stand-in vagrant", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const log = () => fs.readFileSync(path.join(dir, "vagrant.log"), "utf8");

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud vagrant scripts-"));
    const bin = path.join(dir, "bin");
    fs.mkdirSync(bin);
    const keyFile = path.join(dir, "keys dir", "private_key");
    fs.mkdirSync(path.dirname(keyFile));
    fs.writeFileSync(keyFile, FAKE_KEY);
    // Logs its arguments and working directory; `ssh-config NAME` prints what Vagrant prints.
    fs.writeFileSync(
      path.join(bin, "vagrant"),
      [
        "#!/bin/sh",
        `echo "$PWD: $*" >> ${JSON.stringify(path.join(dir, "vagrant.log"))}`,
        'if [ "$1" = ssh-config ]; then',
        `cat <<'EOF'\n${sshConfigOutput("NODE", keyFile)}EOF`,
        "fi",
        "exit 0",
      ].join("\n"),
      { mode: 0o755 },
    );
    // Logs its arguments to the same log; `net-dumpxml ID` prints nets/ID.xml, fails without it.
    fs.writeFileSync(
      path.join(bin, "virsh"),
      [
        "#!/bin/sh",
        `echo "virsh $*" >> ${JSON.stringify(path.join(dir, "vagrant.log"))}`,
        'if [ "$3" = net-dumpxml ]; then',
        `  cat ${JSON.stringify(path.join(dir, "nets"))}/"$4".xml 2>/dev/null || exit 1`,
        "fi",
        "exit 0",
      ].join("\n"),
      { mode: 0o755 },
    );
    env = { ...process.env, PATH: `${bin}:${process.env.PATH}`, SWARMCLOUD_VAGRANT_DIR: path.join(dir, "stack work") };
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const run = (script: string, extra: NodeJS.ProcessEnv = {}, input = "") =>
    execFileSync("/bin/sh", ["-c", script], { env: { ...env, ...extra }, input, encoding: "utf8", stdio: "pipe" });

  it("UP_SCRIPT writes the Vagrantfile from stdin into a new work dir and brings it up with the provider", () => {
    run(UP_SCRIPT, { SWARMCLOUD_VAGRANT_PROVIDER: "libvirt" }, 'Vagrant.configure("2") do |config|\nend\n');
    const work = path.join(dir, "stack work");
    expect(fs.readFileSync(path.join(work, "Vagrantfile"), "utf8")).toBe('Vagrant.configure("2") do |config|\nend\n');
    expect(log()).toBe(`${work}: up --provider=libvirt\n`);
  });

  it("UP_SCRIPT fails when no provider is given", () => {
    expect(() => run(UP_SCRIPT, {}, "# x\n")).toThrow(/SWARMCLOUD_VAGRANT_PROVIDER/);
  });

  it("DESTROY_SCRIPT destroys from the work dir, and is a no-op when it is gone", () => {
    run(DESTROY_SCRIPT);
    expect(fs.existsSync(path.join(dir, "vagrant.log"))).toBe(false);
    const work = path.join(dir, "stack work");
    fs.mkdirSync(work);
    fs.writeFileSync(path.join(work, "Vagrantfile"), "# x\n");
    run(DESTROY_SCRIPT);
    expect(log()).toBe(`${work}: destroy -f\n`);
    expect(fs.existsSync(path.join(work, "Vagrantfile"))).toBe(false);
  });

  it("DESTROY_SCRIPT then removes each network vagrant-libvirt made and left behind, unless a domain still uses it", () => {
    const work = path.join(dir, "stack work");
    for (const [machine, ids] of [
      ["manager-1", "net-a\nnet-b\n"],
      ["worker-1", "net-c\n"],
    ] as const) {
      fs.mkdirSync(path.join(work, ".vagrant", "machines", machine, "libvirt"), { recursive: true });
      fs.writeFileSync(path.join(work, ".vagrant", "machines", machine, "libvirt", "created_networks"), ids);
    }
    fs.writeFileSync(path.join(work, "Vagrantfile"), "# x\n");
    fs.mkdirSync(path.join(dir, "nets"));
    // net-a: left behind, unused; net-b: another project's domain uses it; net-c: already gone.
    fs.writeFileSync(path.join(dir, "nets", "net-a.xml"), "<network>\n  <name>stack0</name>\n</network>\n");
    fs.writeFileSync(
      path.join(dir, "nets", "net-b.xml"),
      "<network connections='1'>\n  <name>vagrant-libvirt</name>\n</network>\n",
    );
    run(DESTROY_SCRIPT);
    expect(log().split("\n")).toEqual([
      `${work}: destroy -f`,
      "virsh -c qemu:///system net-dumpxml net-a",
      "virsh -c qemu:///system net-destroy net-a",
      "virsh -c qemu:///system net-undefine net-a",
      "virsh -c qemu:///system net-dumpxml net-b",
      "virsh -c qemu:///system net-dumpxml net-c",
      "",
    ]);
    expect(fs.existsSync(path.join(work, "Vagrantfile"))).toBe(false);
  });

  it("SSH_CONFIG_SCRIPT prints ssh-config, the marker and the key file (path with spaces)", () => {
    fs.mkdirSync(path.join(dir, "stack work"));
    const out = run(SSH_CONFIG_SCRIPT, { SWARMCLOUD_NODE: "worker-2" });
    expect(log()).toBe(`${path.join(dir, "stack work")}: ssh-config worker-2\n`);
    const parsedOut = parseVagrantSshConfig(out);
    expect(parsedOut.identityFile).toBe(path.join(dir, "keys dir", "private_key"));
    expect(parsedOut.privateKey).toBe(FAKE_KEY);
  });

  it("SSH_CONFIG_SCRIPT fails when the key file cannot be read", () => {
    fs.mkdirSync(path.join(dir, "stack work"));
    fs.rmSync(path.join(dir, "keys dir"), { recursive: true });
    expect(() => run(SSH_CONFIG_SCRIPT, { SWARMCLOUD_NODE: "worker-2" }, "")).toThrow();
  });
});

describe("VagrantNodes (defaults: 3 managers + 2 workers)", () => {
  let comp: VagrantNodes;
  let component: RecordedResource;
  const names = ["manager-1", "manager-2", "manager-3", "worker-1", "worker-2"];
  const addresses = ["192.168.56.11", "192.168.56.12", "192.168.56.13", "192.168.56.31", "192.168.56.32"];
  const text = renderVagrantfile(config.nodes, config.vagrant);

  beforeAll(async () => {
    comp = new VagrantNodes("dev", {
      nodes: config.nodes,
      settings: config.vagrant,
      workDir: "/home/me/.swarmcloud/dev",
    });
    await settled();
    component = recordedNamed("dev");
  });

  it("is a swarmcloud:nodes:VagrantNodes component whose commands are all its children", () => {
    expect(component.type).toBe("swarmcloud:nodes:VagrantNodes");
    const children = recorded.filter((r) => r.parent === component.urn);
    expect(children.map((r) => [r.type, r.name])).toEqual([
      [VAGRANT_COMMAND, "dev-up"],
      ...names.map((n) => [VAGRANT_COMMAND, `dev-${n}-ssh-config`]),
    ]);
  });

  it("brings the cluster up from the rendered Vagrantfile, destroys it on delete", async () => {
    const up = recordedNamed("dev-up");
    expect(up.inputs).toEqual({
      __provider: expect.any(String),
      create: UP_SCRIPT,
      delete: DESTROY_SCRIPT,
      stdin: text,
      environment: { SWARMCLOUD_VAGRANT_DIR: "/home/me/.swarmcloud/dev", SWARMCLOUD_VAGRANT_PROVIDER: "virtualbox" },
      triggers: [text],
    });
    expect(up.options.deleteBeforeReplace).toBe(true);
    expect(UP_SCRIPT).toContain('vagrant up --provider="$SWARMCLOUD_VAGRANT_PROVIDER"');
    expect(DESTROY_SCRIPT).toContain("vagrant destroy -f");
    expect(await valueOf(comp.vagrantfile)).toBe(text);
  });

  it("reads each machine's ssh-config after `up`, with stdout (the private key) secret", () => {
    for (const n of names) {
      const c = recordedNamed(`dev-${n}-ssh-config`);
      expect(c.inputs).toEqual({
        __provider: expect.any(String),
        create: SSH_CONFIG_SCRIPT,
        environment: { SWARMCLOUD_VAGRANT_DIR: "/home/me/.swarmcloud/dev", SWARMCLOUD_NODE: n },
        triggers: [text],
      });
      expect(c.options.additionalSecretOutputs).toEqual(["stdout"]);
      expect(c.dependencies).toContain(recordedNamed("dev-up").urn);
    }
  });

  it("turns every machine into a ClusterNode reached as vagrant on its private address", async () => {
    expect(comp.nodes.map((n) => n.name)).toEqual(names);
    for (const [i, n] of comp.nodes.entries()) {
      expect(n.connection.host).toBe(addresses[i]);
      expect(n.connection.port).toBe(22);
      expect(n.connection.user).toBe("vagrant");
      expect(n.privateAddress).toBe(addresses[i]);
      expect(n.publicAddress).toBe(addresses[i]);
      const deps = await Promise.all(n.dependsOn.map((d) => valueOf(d.urn)));
      expect(deps).toEqual([recordedNamed("dev-up").urn, recordedNamed(`dev-${n.name}-ssh-config`).urn]);
    }
  });

  it("hands on the machine's private key as a secret", async () => {
    for (const n of comp.nodes) {
      const key = pulumi.output(n.connection.privateKey);
      expect(await pulumi.isSecret(key)).toBe(true);
      expect(await valueOf(key)).toBe(FAKE_KEY);
    }
  });
});
