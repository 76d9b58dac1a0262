import type { PortainerSettings } from "../components/config";
import {
  ComposeFile,
  ComposeNetwork,
  ComposePort,
  DeployVariable,
  networkingErrors,
  RESTART_ANY,
  rolling,
} from "./compose";

export interface PortainerContext {
  /** Portainer's data folder on the shared mount, e.g. /mnt/swarmcloud/portainer. */
  dataPath: string;
  /** Encrypt the agent network (IPsec between nodes). */
  encryptOverlay: boolean;
  /** Versioned Docker secret name holding the admin password in plain text. */
  adminPasswordSecret: string;
  /** Versioned Docker secret name holding the agent's arguments file, `--secret=<agent secret>` (see `agentArgs`). */
  agentArgsSecret: string;
  /** Put the server on the `edge` network too, which the front door's Caddy joins. Default false. */
  edgeNetwork?: boolean;
}

/** Key under `secrets:`; mounted at /run/secrets/portainer_admin_password. */
export const PORTAINER_SECRET_KEY = "portainer_admin_password";
/** Key under `secrets:` of the agent's arguments file; mounted at /run/secrets/portainer_agent_args. */
export const PORTAINER_AGENT_ARGS_KEY = "portainer_agent_args";
/**
 * The deploy variable that carries the agent secret to the server's AGENT_SECRET (Portainer's
 * server reads it from its environment only): `docker stack deploy` fills it in, so the compose
 * text holds only its name.
 */
export const PORTAINER_AGENT_SECRET_VARIABLE = "PORTAINER_AGENT_SECRET";

/**
 * The agent's arguments file: one argument per line, read by the agent's flag parser (kingpin)
 * for the argument `@<file>`. `--secret` is the same setting as AGENT_SECRET, which the agent
 * reads from its environment or its arguments only (no file of its own: portainer/agent#127).
 */
export function agentArgs(agentSecret: string): string {
  return `--secret=${agentSecret}\n`;
}
export const PORTAINER_HTTPS_PORT = 9443;
/** The Docker name of the network the server shares with the front door (edge on): not the agents'. */
export const PORTAINER_EDGE_NETWORK = "portainer_edge";
export const PORTAINER_HTTP_PORT = 9000;
/** How long a new Portainer task must keep running before an update goes on (a failure rolls it back). */
export const PORTAINER_UPDATE_MONITOR = "15s";
/** The agent's port on the overlay network (never published). */
export const PORTAINER_AGENT_PORT = 9001;

/** An overlay network only the stack's own services join (not attachable), encrypted on request. */
function stackOnly(encrypt: boolean): ComposeNetwork {
  return { driver: "overlay", attachable: false, ...(encrypt ? { driver_opts: { encrypted: "true" } } : {}) };
}

/**
 * Portainer server + agent, shaped like Portainer's own `portainer-agent-stack.yml`:
 *
 * - `agent` runs on every node (global) with the node's Docker socket and volumes folder, and
 *   is reached only over the `agent_network` overlay at `tasks.agent:9001`. The network is not
 *   attachable: no `docker run --network` joins it, only the stack's own services.
 * - The agent answers only requests signed with the shared agent secret: it reads `--secret`
 *   from its arguments file `@/run/secrets/portainer_agent_args` (a Docker secret: the value is in
 *   neither the spec, the compose text nor `ps`), the server reads AGENT_SECRET from its
 *   environment, filled in by the deploy (a DeployVariable: in the server's spec, not the text).
 * - `portainer` (the server) runs one replica on a manager, keeps its database on the shared
 *   mount (it follows a rescheduled task to another manager), and publishes 9443 (HTTPS) and,
 *   when `httpPort` is set, 9000 (plain HTTP).
 * - The admin password is set at first start with `--admin-password-file`, which takes the
 *   password in plain text and hashes it itself (`--admin-password` wants a bcrypt hash), so
 *   nobody can race the first-login page. The file is a Docker secret, so the password is in
 *   neither the spec nor the compose text.
 * - Updates (`rolling`, rolled back when a new task fails within 15 s): the server stop-first,
 *   since two servers on one BoltDB file would fight over its lock; the agents start-first, one
 *   node at a time: an agent keeps no state and publishes no port (the overlay only), so for a
 *   moment two agents of one node answer `tasks.agent` side by side, both speaking for the same
 *   Docker, and the node never drops out of Portainer's view as it would while a stop-first
 *   agent restarts.
 * - No health check: Portainer's images hold the binary alone (no shell, no HTTP client:
 *   portainer/portainer#1364, #3572), so nothing inside them can be asked; Swarm judges a
 *   task by whether it keeps running.
 */
export function portainerCompose(settings: PortainerSettings, ctx: PortainerContext): ComposeFile {
  const errors = networkingErrors("portainer", settings);
  if (errors.length > 0) throw new Error(errors.join("\n"));

  const ports: ComposePort[] = [
    { target: PORTAINER_HTTPS_PORT, published: settings.httpsPort, protocol: "tcp", mode: settings.publishMode },
  ];
  if (settings.httpPort !== undefined) {
    ports.push({
      target: PORTAINER_HTTP_PORT,
      published: settings.httpPort,
      protocol: "tcp",
      mode: settings.publishMode,
    });
  }
  return {
    version: "3.8",
    services: {
      agent: {
        image: settings.agentImage,
        command: [`@/run/secrets/${PORTAINER_AGENT_ARGS_KEY}`],
        secrets: [{ source: PORTAINER_AGENT_ARGS_KEY }],
        volumes: [
          { type: "bind", source: "/var/run/docker.sock", target: "/var/run/docker.sock" },
          { type: "bind", source: "/var/lib/docker/volumes", target: "/var/lib/docker/volumes" },
        ],
        networks: ["agent_network"],
        deploy: {
          mode: "global",
          endpoint_mode: settings.endpointMode,
          placement: { constraints: ["node.platform.os==linux"] },
          restart_policy: RESTART_ANY,
          ...rolling("start-first", PORTAINER_UPDATE_MONITOR),
        },
      },
      portainer: {
        image: settings.image,
        command: [
          "-H",
          `tcp://tasks.agent:${PORTAINER_AGENT_PORT}`,
          "--tlsskipverify",
          "--admin-password-file",
          `/run/secrets/${PORTAINER_SECRET_KEY}`,
        ],
        environment: { AGENT_SECRET: new DeployVariable(PORTAINER_AGENT_SECRET_VARIABLE) },
        secrets: [{ source: PORTAINER_SECRET_KEY }],
        volumes: [{ type: "bind", source: ctx.dataPath, target: "/data" }],
        networks: ctx.edgeNetwork ? ["agent_network", "edge"] : ["agent_network"],
        ports,
        deploy: {
          replicas: 1,
          endpoint_mode: settings.endpointMode,
          placement: { constraints: ["node.role==manager"] },
          restart_policy: RESTART_ANY,
          ...rolling("stop-first", PORTAINER_UPDATE_MONITOR),
        },
      },
    },
    networks: {
      agent_network: stackOnly(ctx.encryptOverlay),
      // The front door reaches the server here, and so never the agents.
      ...(ctx.edgeNetwork ? { edge: stackOnly(ctx.encryptOverlay) } : {}),
    },
    secrets: {
      [PORTAINER_SECRET_KEY]: { external: true, name: ctx.adminPasswordSecret },
      [PORTAINER_AGENT_ARGS_KEY]: { external: true, name: ctx.agentArgsSecret },
    },
  };
}
