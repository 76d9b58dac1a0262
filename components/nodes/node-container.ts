/**
 * The node container's recipe, in one table (node-container.json) read by both of its users:
 * LocalNodes (components/nodes/local.ts), which declares the containers through @pulumi/docker,
 * and the lab harness (tests/lab/lab.sh), which gets the same settings as `docker run` flags
 * from tests/lab/node-container-args.js. tests/unit/node-container.test.ts checks that the two
 * agree.
 *
 * The recipe runs sshd + dockerd + glusterd WITHOUT --privileged (see node-image/Dockerfile):
 * all capabilities but SYS_RESOURCE, no seccomp/AppArmor confinement, /dev/fuse for the Gluster
 * mount, the host's cgroup namespace with /sys/fs/cgroup writable, /run on a tmpfs, and named
 * volumes for Docker's and glusterd's state so a replaced container keeps them. The nested
 * dockerd gets its own cgroup parent (`env` below), so the containers it starts are not under
 * the node container's device rules.
 *
 * Not in the table, because the two users differ on purpose: the name, hostname, network and
 * address, labels, the SSH key, and the restart policy (`unless-stopped` for a user's cluster;
 * `on-failure` in the lab, whose suites stop and start nodes themselves: a stopped node stays
 * down, a node's `reboot` (exit 3, node-image/reboot) comes back). The cgroup root differs too:
 * the lab passes its own (`/swarmcloud-lab`), which its `down` cleans up.
 */
import * as pulumi from "@pulumi/pulumi";
import table from "./node-container.json";

/** The table as data. `deviceCgroupRules` reach `docker run` only: @pulumi/docker 4.11.2 has no input for them. */
export const NODE_CONTAINER = table;

/** A named volume of the node container, by its key in the table (`docker`, `glusterd`). */
export type NodeVolume = keyof typeof table.volumes;

/** The node's volume names: `<container>-<key>` for each volume of the table, in table order. */
export function nodeVolumeNames(containerName: string): Record<NodeVolume, string> {
  const keys = Object.keys(table.volumes) as NodeVolume[];
  return Object.fromEntries(keys.map((v) => [v, `${containerName}-${v}`])) as Record<NodeVolume, string>;
}

/** The recipe's environment for the container `containerName` (`NAME=value` lines). */
export function nodeContainerEnv(containerName: string, cgroupRoot: string = table.cgroupRoot): string[] {
  return Object.entries(table.env).map(
    ([name, value]) => `${name}=${value.replace("{cgroupRoot}", cgroupRoot).replace("{container}", containerName)}`,
  );
}

/**
 * The recipe as @pulumi/docker Container inputs for the container `containerName`. `volumes`
 * are the sources of its named-volume mounts (the Volume resources' names, so the container
 * depends on them). The caller adds its own settings, and its own `envs` before these.
 */
export function nodeContainerInputs(containerName: string, volumes: Record<NodeVolume, pulumi.Input<string>>) {
  return {
    capabilities: { adds: [...table.capabilities.add], drops: [...table.capabilities.drop] },
    securityOpts: [...table.securityOpts],
    devices: table.devices.map((d) => ({ ...d })),
    cgroupnsMode: table.cgroupns,
    tmpfs: { ...table.tmpfs },
    mounts: [
      ...table.binds.map((b) => ({ type: "bind", source: b.source, target: b.target, readOnly: b.readOnly })),
      ...(Object.entries(table.volumes) as [NodeVolume, string][]).map(([v, target]) => ({
        type: "volume",
        source: volumes[v],
        target,
      })),
    ],
    envs: nodeContainerEnv(containerName),
    stopTimeout: table.stopTimeoutSeconds,
  };
}
