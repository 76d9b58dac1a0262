/**
 * The cluster graph (DockerHost, Swarm, GlusterVolume) under Pulumi mocks: what runs where, in
 * which order, with which exact script, and that secrets stay out of plain inputs.
 */
import * as pulumi from "@pulumi/pulumi";
import { recordedNamed, settled, setupMocks, RecordedResource, valueOf } from "./mocks";

setupMocks({
  state: (args) => {
    if (!args.type.includes("RemoteScript")) return undefined;
    if (args.name.endsWith("-bootstrap")) return { stdout: "CLUSTER1 NODE1 SWMTKN-worker SWMTKN-manager" };
    if (args.name.endsWith("-join")) return { stdout: `ID-${args.name}` };
    if (args.name.endsWith("-mount")) return { stdout: "/mnt/swarmcloud" };
    return { stdout: "" };
  },
});

import { parseConfig, brickNodes } from "../../components/config";
import { GlusterVolume } from "../../components/gluster";
import { script } from "../../components/remote-scripts";
import { DockerHost, hostsBlock } from "../../components/host";
import { sshClusterNodes } from "../../components/nodes/ssh";
import { Swarm } from "../../components/swarm";

const TYPE = "pulumi-nodejs:dynamic/swarmcloud:RemoteScript";

const parsed = parseConfig(
  {
    environment: "ssh",
    nodes: [
      { name: "manager-1", role: "manager", address: "10.0.0.11" },
      { name: "manager-2", role: "manager", address: "10.0.0.12" },
      { name: "manager-3", role: "manager", address: "10.0.0.13" },
      { name: "worker-1", role: "worker", address: "10.0.0.31", labels: { disk: "ssd" } },
      { name: "worker-2", role: "worker", address: "10.0.0.32", availability: "drain" },
    ],
  },
  { sshPrivateKey: true },
);
const config = parsed.config;
const nodes = sshClusterNodes({ nodes: config.nodes, user: "root", port: 22, privateKey: pulumi.secret("KEY") });
const hosts = Object.fromEntries(nodes.map((n) => [n.name, new DockerHost(`t-${n.name}`, { node: n, nodes }).ready]));
const swarm = new Swarm("t-swarm", { nodes, hostReady: hosts, settings: config.swarm });
const bricks = brickNodes(config).map((b) => nodes.find((n) => n.name === b.name)!);
const storage = new GlusterVolume("t-gluster", {
  nodes,
  bricks,
  hostReady: hosts,
  settings: config.gluster,
  appDirs: ["ghost/content", "portainer"],
});
// The infrastructure alone (apps off): a volume with no application folder.
const bare = new GlusterVolume("t-bare", { nodes, bricks, hostReady: hosts, settings: config.gluster });

let r: (name: string) => RecordedResource;
beforeAll(async () => {
  await settled();
  r = recordedNamed;
});

const urnOf = (name: string) => r(name).urn;
const env = (name: string) => r(name).inputs.environment as Record<string, string>;

test("the config used here is valid", () => {
  expect(parsed.errors).toEqual([]);
});

describe("DockerHost", () => {
  test("runs the host script on its own node, parented to the component", () => {
    const res = r("t-worker-1-provision");
    expect(res.type).toBe(TYPE);
    expect(res.inputs.create).toBe(script("host"));
    expect(res.inputs.connection.host).toBe("10.0.0.31");
    expect(res.parent).toBe(urnOf("t-worker-1"));
    expect(r("t-worker-1").type).toBe("swarmcloud:host:DockerHost");
    expect(env("t-worker-1-provision").NODE_NAME).toBe("worker-1");
  });

  test("the hosts block lists the managers and the node itself, not other workers", async () => {
    const block = await valueOf(hostsBlock(nodes[3]!, nodes));
    expect(block.split("\n")).toEqual([
      "10.0.0.11 manager-1",
      "10.0.0.12 manager-2",
      "10.0.0.13 manager-3",
      "10.0.0.31 worker-1",
    ]);
    expect(env("t-worker-2-provision").HOSTS_BLOCK).not.toContain("worker-1");
  });

  test("keeps the SSH key secret: connection is an additional secret output", () => {
    expect(r("t-manager-1-provision").options.additionalSecretOutputs).toContain("connection");
  });
});

describe("Swarm", () => {
  test("bootstraps on the first manager, other managers as fallbacks, after every manager is ready", () => {
    const init = r("t-swarm-bootstrap");
    expect(init.inputs.create).toBe(script("swarm-init"));
    expect(init.inputs.delete).toBe(script("swarm-teardown"));
    expect(init.inputs.connection.host).toBe("10.0.0.11");
    expect(init.inputs.fallbackConnections.map((c: { host: string }) => c.host)).toEqual(["10.0.0.12", "10.0.0.13"]);
    expect(env("t-swarm-bootstrap")).toMatchObject({ ADVERTISE_ADDR: "10.0.0.11", DATA_PATH_PORT: "4789" });
    expect(init.options.additionalSecretOutputs).toEqual(expect.arrayContaining(["connection", "stdout"]));
    expect(init.dependencies).toEqual(
      expect.arrayContaining(["manager-1", "manager-2", "manager-3"].map((m) => urnOf(`t-${m}-provision`))),
    );
  });

  test("every node, the first manager too, joins through its own resource, on itself, after its slot and host", () => {
    for (const name of ["manager-1", "manager-2", "manager-3", "worker-1", "worker-2"]) {
      const join = r(`t-swarm-${name}-join`);
      expect(join.inputs.create).toBe(script("swarm-join"));
      expect(join.inputs.delete).toBe(script("swarm-leave"));
      expect(join.inputs.connection.host).toBe(nodes.find((n) => n.name === name)!.connection.host);
      expect(join.dependencies).toEqual(
        expect.arrayContaining([urnOf(`t-swarm-${name}-slot`), urnOf(`t-${name}-provision`)]),
      );
      expect(join.inputs.skipDeleteWhenUnreachable).toBe(true);
      const slot = r(`t-swarm-${name}-slot`);
      expect(slot.inputs.delete).toBe(script("swarm-forget"));
      expect(slot.inputs.connection.host).toBe("10.0.0.11");
    }
  });

  test("the join token goes in on stdin and never into the environment", () => {
    const join = r("t-swarm-worker-1-join");
    expect(join.inputs.stdin).toBe("CLUSTER1 SWMTKN-worker\n");
    expect(JSON.stringify(join.inputs.environment)).not.toContain("SWMTKN");
    expect(env("t-swarm-worker-1-join").MANAGER_ADDRS).toBe("10.0.0.11 10.0.0.12 10.0.0.13");
  });

  test("roles, availability and labels are set from a manager, with the other managers as fallbacks", () => {
    const member = r("t-swarm-worker-2-member");
    expect(member.inputs.create).toBe(script("swarm-member"));
    expect(member.inputs.delete).toBe(script("swarm-release"));
    expect(member.inputs.connection.host).toBe("10.0.0.11");
    expect(member.inputs.fallbackConnections.map((c: { host: string }) => c.host)).toEqual(["10.0.0.12", "10.0.0.13"]);
    expect(env("t-swarm-worker-2-member")).toMatchObject({
      NODE_ID: "ID-t-swarm-worker-2-join",
      ROLE: "worker",
      AVAILABILITY: "drain",
    });
    expect(env("t-swarm-worker-1-member").LABELS).toBe("disk=ssd");
    expect(env("t-swarm-manager-1-member").NODE_ID).toBe("ID-t-swarm-manager-1-join");
    expect(member.dependencies).toContain(urnOf("t-swarm-worker-2-join"));
  });

  test("tokens are secret outputs", async () => {
    expect(await pulumi.isSecret(swarm.workerToken)).toBe(true);
    expect(await pulumi.isSecret(swarm.managerToken)).toBe(true);
    expect(await valueOf(swarm.workerToken)).toBe("SWMTKN-worker");
    expect(await valueOf(swarm.nodeList)).toHaveLength(5);
  });
});

describe("GlusterVolume", () => {
  test("bricks on the first three managers; peers probed from the first", () => {
    for (const name of ["manager-1", "manager-2", "manager-3"]) {
      const brick = r(`t-gluster-${name}-brick`);
      expect(brick.inputs.create).toBe(script("gluster-brick"));
      expect(brick.inputs.delete).toBe(script("gluster-brick-delete"));
      expect(env(`t-gluster-${name}-brick`)).toMatchObject({ BRICK_PATH: "/srv/swarmcloud/brick", PURGE: "false" });
    }
    expect(() => r("t-gluster-worker-1-brick")).toThrow();
    expect(() => r("t-gluster-manager-1-peer")).toThrow();
    const peer = r("t-gluster-manager-2-peer");
    expect(peer.inputs.connection.host).toBe("10.0.0.11");
    expect(env("t-gluster-manager-2-peer").PEER_ADDR).toBe("10.0.0.12");
  });

  test("the volume is created from all bricks after bricks and probes", () => {
    const volume = r("t-gluster-volume");
    expect(volume.inputs.create).toBe(script("gluster-volume"));
    expect(env("t-gluster-volume").BRICKS).toBe(
      "10.0.0.11:/srv/swarmcloud/brick 10.0.0.12:/srv/swarmcloud/brick 10.0.0.13:/srv/swarmcloud/brick",
    );
    // Every node's address, as context (its first auth.allow; a new node must not re-run it).
    expect(env("t-gluster-volume").MEMBERS).toBeUndefined();
    expect(volume.inputs.context.MEMBERS.split(" ")).toEqual(nodes.map((n) => n.privateAddress));
    expect(volume.dependencies).toEqual(
      expect.arrayContaining([
        urnOf("t-gluster-manager-3-brick"),
        urnOf("t-gluster-manager-2-peer"),
        urnOf("t-gluster-manager-3-peer"),
      ]),
    );
  });

  test("bricks leave last: the shrink step runs on the first brick node after every mount, the node list as context", () => {
    const shrink = r("t-gluster-shrink");
    expect(shrink.inputs.create).toBe(script("gluster-shrink"));
    expect(shrink.inputs.delete).toBeUndefined();
    // Both heal waits and the drain fit in its time limit.
    expect(shrink.inputs.timeout).toBeGreaterThanOrEqual(600 + 300 + 300);
    expect(shrink.inputs.connection.host).toBe("10.0.0.11");
    expect(env("t-gluster-shrink").BRICKS).toBe(env("t-gluster-volume").BRICKS);
    // Context, not environment: adding a node must not re-run it.
    expect(env("t-gluster-shrink").MEMBERS).toBeUndefined();
    expect(shrink.inputs.context.MEMBERS.split(" ")).toEqual(nodes.map((n) => n.privateAddress));
    expect(shrink.dependencies).toEqual(
      expect.arrayContaining([urnOf("t-gluster-volume"), ...nodes.map((n) => urnOf(`t-gluster-${n.name}-mount`))]),
    );
  });

  test("each node's address is allowed (auth.allow) by its own step on the first brick node, before it mounts", () => {
    for (const n of nodes) {
      const allow = r(`t-gluster-${n.name}-allow`);
      expect(allow.parent).toBe(urnOf("t-gluster"));
      expect(allow.inputs.create).toBe(script("gluster-allow"));
      expect(allow.inputs.delete).toBe(script("gluster-disallow"));
      expect(allow.inputs.read).toBe(script("gluster-allow-read"));
      // On the first brick node; the other brick nodes when it does not know the volume.
      expect(allow.inputs.connection.host).toBe("10.0.0.11");
      expect(allow.inputs.fallbackConnections.map((c: { host: string }) => c.host)).toEqual(["10.0.0.12", "10.0.0.13"]);
      expect(allow.inputs.skipDeleteWhenUnreachable).toBe(true);
      expect(env(`t-gluster-${n.name}-allow`)).toEqual({
        NODE_NAME: n.name,
        VOLUME: "swarmcloud",
        ADDRESS: n.privateAddress,
      });
      // Every node's address is context: consulted, never a reason to run (a new node runs only its own step).
      expect(allow.inputs.context.MEMBERS.split(" ")).toEqual(nodes.map((m) => m.privateAddress));
      expect(allow.dependencies).toEqual([urnOf("t-gluster-volume")]);
      expect(r(`t-gluster-${n.name}-mount`).dependencies).toContain(allow.urn);
    }
  });

  test("without application folders: mounts make none, and appPaths is empty", async () => {
    for (const n of nodes) expect(env(`t-bare-${n.name}-mount`).SUBDIRS).toBe("");
    expect(await valueOf(bare.appPaths)).toEqual({});
    expect(await valueOf(bare.mountPath)).toBe("/mnt/swarmcloud");
  });

  test("every node mounts it with the brick servers, after the volume", async () => {
    for (const n of nodes) {
      const mount = r(`t-gluster-${n.name}-mount`);
      expect(mount.inputs.create).toBe(script("gluster-mount"));
      expect(mount.inputs.delete).toBe(script("gluster-unmount"));
      expect(mount.dependencies).toContain(urnOf("t-gluster-volume"));
      expect(env(`t-gluster-${n.name}-mount`)).toMatchObject({
        FSTAB_LINE:
          "10.0.0.11:/swarmcloud /mnt/swarmcloud glusterfs defaults,_netdev,backup-volfile-servers=10.0.0.12:10.0.0.13 0 0",
        MOUNT_PATH: "/mnt/swarmcloud",
        SUBDIRS: "ghost/content portainer",
        MOUNTED: "true",
      });
    }
    expect(await valueOf(storage.appPaths)).toEqual({
      "ghost/content": "/mnt/swarmcloud/ghost/content",
      portainer: "/mnt/swarmcloud/portainer",
    });
  });
});

describe("refresh", () => {
  test("each resource whose state can drift has its read script; the others read nothing", () => {
    const reads: Record<string, string | undefined> = {
      "t-worker-1-provision": "host-read",
      "t-swarm-worker-1-join": "swarm-join-read",
      "t-swarm-worker-1-member": "swarm-member-read",
      "t-gluster-manager-2-peer": "gluster-probe-read",
      "t-gluster-volume": "gluster-volume-read",
      "t-gluster-shrink": "gluster-shrink-read",
      "t-gluster-worker-1-mount": "gluster-mount-read",
      "t-gluster-worker-1-allow": "gluster-allow-read",
      "t-swarm-bootstrap": undefined,
      "t-swarm-worker-1-slot": undefined,
      "t-gluster-manager-1-brick": undefined,
    };
    for (const [name, read] of Object.entries(reads)) {
      expect([name, r(name).inputs.read]).toEqual([name, read === undefined ? undefined : script(read)]);
    }
  });

  test("the states a read checks are declared with the rest of the environment", () => {
    expect(env("t-gluster-volume")).toMatchObject({ STATUS: "Started", OPTIONS: "network.ping-timeout=10" });
    expect(env("t-gluster-worker-2-mount").MOUNTED).toBe("true");
  });

  test("fstabLine: the first server, the others as backups, _netdev; one server has no backups", async () => {
    const { fstabLine } = await import("../../components/gluster");
    expect(fstabLine(["a", "b", "c"], "v", "/mnt/v")).toBe(
      "a:/v /mnt/v glusterfs defaults,_netdev,backup-volfile-servers=b:c 0 0",
    );
    expect(fstabLine(["a"], "v", "/mnt/v")).toBe("a:/v /mnt/v glusterfs defaults,_netdev 0 0");
  });
});
