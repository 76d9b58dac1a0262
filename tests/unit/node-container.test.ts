/**
 * One node-container recipe for two users: the `docker run` arguments the lab harness gets from
 * tests/lab/node-container-args.js (run here exactly as lab.sh runs it) and the inputs LocalNodes
 * gives @pulumi/docker's Container, both read back into one shape, must be the same recipe; the
 * only difference allowed is the device cgroup rule, which @pulumi/docker cannot express.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parseConfig } from "../../components/config";
import { LocalNodes } from "../../components/nodes/local";
import { NODE_CONTAINER } from "../../components/nodes/node-container";
import { recordedNamed, resourcesOfType, settled, setupMocks } from "./mocks";

setupMocks();

const REPO = path.join(__dirname, "..", "..");
const SCRIPT = path.join(REPO, "tests", "lab", "node-container-args.js");
const LAB_SH = fs.readFileSync(path.join(REPO, "tests", "lab", "lab.sh"), "utf8");

/** The script's lines, run as lab.sh runs it. */
function script(...args: string[]): { status: number | null; lines: string[]; stderr: string } {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { encoding: "utf8" });
  return { status: r.status, lines: r.stdout.split("\n").slice(0, -1), stderr: r.stderr };
}

/** The recipe in one shape, whichever user it was read from. */
interface Recipe {
  capAdd: string[];
  capDrop: string[];
  securityOpts: string[];
  devices: { hostPath: string; containerPath: string; permissions: string }[];
  deviceCgroupRules: string[];
  cgroupns: string;
  binds: { source: string; target: string; readOnly: boolean }[];
  tmpfs: Record<string, string>;
  volumes: { source: string; target: string }[];
  stopTimeout: number;
  env: string[];
}

const emptyRecipe = (): Recipe => ({
  capAdd: [],
  capDrop: [],
  securityOpts: [],
  devices: [],
  deviceCgroupRules: [],
  cgroupns: "",
  binds: [],
  tmpfs: {},
  volumes: [],
  stopTimeout: 0,
  env: [],
});

/** `docker run` flags (flag, value pairs) read back as the recipe; an unknown flag throws. */
function fromDockerRun(args: string[]): Recipe {
  const r = emptyRecipe();
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i]!, args[i + 1]!];
    const parts = value.split(":");
    switch (flag) {
      case "--cap-add":
        r.capAdd.push(value);
        break;
      case "--cap-drop":
        r.capDrop.push(value);
        break;
      case "--security-opt":
        r.securityOpts.push(value);
        break;
      case "--device": // docker's defaults: the same path inside, rwm
        r.devices.push({ hostPath: parts[0]!, containerPath: parts[1] ?? parts[0]!, permissions: parts[2] ?? "rwm" });
        break;
      case "--device-cgroup-rule":
        r.deviceCgroupRules.push(value);
        break;
      case "--cgroupns":
        r.cgroupns = value;
        break;
      case "-v":
        r.binds.push({ source: parts[0]!, target: parts[1]!, readOnly: parts[2] === "ro" });
        break;
      case "--tmpfs":
        r.tmpfs[parts[0]!] = parts.slice(1).join(":");
        break;
      case "--mount": {
        const fields = Object.fromEntries(value.split(",").map((f) => f.split("=") as [string, string]));
        expect(fields.type).toBe("volume");
        r.volumes.push({ source: fields.src!, target: fields.dst! });
        break;
      }
      case "--stop-timeout":
        r.stopTimeout = Number(value);
        break;
      case "-e":
        r.env.push(value);
        break;
      default:
        throw new Error(`unexpected docker run flag ${flag} ${value}`);
    }
  }
  return r;
}

/** @pulumi/docker Container inputs read back as the recipe (the SSH key, the user's own, left out). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- recorded inputs are provider data
function fromContainerInputs(inputs: Record<string, any>): Recipe {
  type Mount = { type: string; source: string; target: string; readOnly?: boolean };
  const mounts = inputs.mounts as Mount[];
  return {
    capAdd: inputs.capabilities.adds,
    capDrop: inputs.capabilities.drops,
    securityOpts: inputs.securityOpts,
    devices: inputs.devices,
    deviceCgroupRules: [],
    cgroupns: inputs.cgroupnsMode,
    binds: mounts
      .filter((m) => m.type === "bind")
      .map((m) => ({ source: m.source, target: m.target, readOnly: m.readOnly ?? false })),
    tmpfs: inputs.tmpfs,
    volumes: mounts.filter((m) => m.type === "volume").map((m) => ({ source: m.source, target: m.target })),
    stopTimeout: inputs.stopTimeout,
    env: (inputs.envs as string[]).filter((e) => !e.startsWith("SSH_AUTHORIZED_KEY=")),
  };
}

describe("the node container recipe", () => {
  beforeAll(async () => {
    const { config, errors } = parseConfig({ environment: "local" }, { sshPrivateKey: false });
    expect(errors).toEqual([]);
    new LocalNodes("t", { nodes: config.nodes, settings: config.local, contextDir: "/repo/node-image" });
    await settled();
  });

  test("the lab's docker run arguments and LocalNodes' container inputs are one recipe", () => {
    for (const node of ["manager-1", "worker-2"]) {
      const container = `t-${node}`;
      const run = script("run", container, NODE_CONTAINER.cgroupRoot);
      expect(run.status).toBe(0);
      const lab = fromDockerRun(run.lines);
      const local = fromContainerInputs(recordedNamed(container).inputs);
      // Only the device cgroup rule is the lab's alone: @pulumi/docker has no input for it.
      expect(lab.deviceCgroupRules).toEqual(NODE_CONTAINER.deviceCgroupRules);
      expect({ ...lab, deviceCgroupRules: [] }).toEqual(local);
      // The volume names the lab makes are the volumes LocalNodes makes.
      expect(script("volumes", container).lines).toEqual(local.volumes.map((v) => v.source));
    }
    const volumes = resourcesOfType("docker:index/volume:Volume").map((v) => v.inputs.name);
    expect(volumes).toEqual(expect.arrayContaining(["t-manager-1-docker", "t-manager-1-glusterd"]));
  });

  test("lab.sh takes the recipe from the script and writes none of its flags itself", () => {
    expect(LAB_SH).toContain('recipe run "$c" /swarmcloud-lab');
    expect(LAB_SH).toContain('recipe volumes "$c"');
    expect(LAB_SH).toContain('"$NODE_BIN" "$SCRIPT_DIR/node-container-args.js" "$@"');
    // The one mount of its own: the node's SSH host key, which LocalNodes uploads instead (the
    // lab makes the key itself so a suite can replace it as an impostor would).
    const hostKeyMount = '--mount "type=bind,src=$HOST_KEYS/$c,dst=$NODE_HOST_KEY,readonly"';
    expect(LAB_SH).toContain(hostKeyMount);
    // And the stranger (`lab.sh stranger`): not a node, a machine beside them that may try a
    // FUSE mount; its few flags are its own.
    const stranger = /^cmd_stranger\(\) \{\n[\s\S]*?\n\}\n/m.exec(LAB_SH)?.[0] ?? "";
    expect(stranger).toContain("--device /dev/fuse");
    const own = LAB_SH.split(hostKeyMount).join("").split(stranger).join("");
    for (const flag of ["--cap-", "--security-opt", "--device", "--cgroupns", "--tmpfs", "--mount", "--stop-timeout"]) {
      expect([flag, own.includes(flag)]).toEqual([flag, false]);
    }
    expect(LAB_SH).not.toMatch(/SWARMCLOUD_DOCKERD_ARGS|\/sys\/fs\/cgroup:/);
  });

  test("what a lab node gets: the flags lab.sh wrote by hand before the table", () => {
    expect(script("run", "lab-m1", "/swarmcloud-lab").lines).toEqual([
      ...["--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE"],
      ...["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined"],
      ...["--security-opt", "systempaths=unconfined"],
      ...["--device", "/dev/fuse", "--device-cgroup-rule", "a *:* rwm"],
      ...["--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"],
      ...["--tmpfs", "/run:rw,nosuid,nodev,exec,size=256m"],
      ...["--mount", "type=volume,src=lab-m1-docker,dst=/var/lib/docker"],
      ...["--mount", "type=volume,src=lab-m1-glusterd,dst=/var/lib/glusterd"],
      ...["--stop-timeout", "30"],
      ...["-e", "SWARMCLOUD_DOCKERD_ARGS=--cgroup-parent=/swarmcloud-lab/lab-m1"],
    ]);
    expect(script("volumes", "lab-m1").lines).toEqual(["lab-m1-docker", "lab-m1-glusterd"]);
  });

  test("the script refuses what it cannot turn into arguments", () => {
    for (const args of [[], ["run", "lab-m1"], ["run", "bad name", "/x"], ["volumes"], ["other", "lab-m1"]]) {
      const r = script(...args);
      expect([args, r.status, r.lines]).toEqual([args, 2, []]);
      expect(r.stderr).toMatch(/usage: node-container-args.js/);
    }
  });
});
