import type { GhostSettings } from "../components/config";
import { ComposeFile, ComposeNetwork, networkingErrors, RESTART_ANY, rolling, UpdateOrder } from "./compose";

export interface GhostContext {
  /** Ghost's content folder on the shared (Gluster) mount, e.g. /mnt/swarmcloud/ghost/content. */
  contentPath: string;
  /** The database's data folder on the shared mount, e.g. /mnt/swarmcloud/ghost/mysql. */
  dbPath: string;
  /** Public URL of the blog (Ghost builds every link from it). */
  url: string;
  /** Encrypt the stack's overlay networks (IPsec between nodes). */
  encryptOverlay: boolean;
  /** Versioned Docker secret names (see `versionedSecretName` in components/stack.ts). */
  secretNames: { dbPassword: string; dbRootPassword: string };
  /**
   * The database's first-start folder on the shared mount (backup on): a restore leaves the dump
   * there, and the database takes it in when it initialises an empty data folder. Default: none.
   */
  initDbPath?: string;
}

/**
 * The database's update order, whatever the config says: stop-first, since two MySQL servers on
 * one data folder, even for the moment of a start-first update, corrupt it. The config refuses
 * `ghost.dbUpdateOrder: start-first` (components/config.ts).
 */
export const DB_UPDATE_ORDER: UpdateOrder = "stop-first";

/**
 * How long a new task must stay up (and healthy) after it started before Swarm counts it updated
 * and goes on; a failure in that window rolls the service back.
 */
export const GHOST_UPDATE_MONITOR = "30s";

/** Where the mysql and mariadb images read the SQL they run when they initialise an empty data folder. */
export const DB_INITDB_DIR = "/docker-entrypoint-initdb.d";

/** Keys under `secrets:`; each is mounted at /run/secrets/<key>, whatever the Docker name. */
export const GHOST_SECRET_KEYS = { dbPassword: "db_password", dbRootPassword: "db_root_password" } as const;

export const GHOST_DB_NAME = "ghost";
export const GHOST_DB_USER = "ghost";
/** Where the official ghost image keeps its content (GHOST_CONTENT). */
export const GHOST_CONTENT_DIR = "/var/lib/ghost/content";
/** Ghost's port inside the container. */
export const GHOST_PORT = 2368;

/**
 * Ghost reads its configuration from environment variables but has no `_FILE` convention, so
 * the password cannot come from a secret file by configuration alone. This wrapper reads the
 * secret into `database__connection__password`, then hands over to the image's own entrypoint
 * (`docker-entrypoint.sh` in the official image: it seeds the content folder and drops to the
 * `node` user) with the image's own command (`node current/index.js`). The password never
 * appears in the service spec, `docker inspect` or the compose text.
 */
export function ghostEntrypoint(secretKey: string = GHOST_SECRET_KEYS.dbPassword): string[] {
  const script = [
    "set -e",
    `database__connection__password="$(cat /run/secrets/${secretKey})"`,
    "export database__connection__password",
    'exec docker-entrypoint.sh "$@"',
  ].join("; ");
  return ["/bin/sh", "-c", script, "ghost-entrypoint"];
}

/** The official image's command, passed through the wrapper above. */
export const GHOST_COMMAND = ["node", "current/index.js"];

/**
 * Healthy once Ghost answers HTTP on 2368 with anything but a 5xx (Ghost answers 503 while it
 * boots and migrates). A node one-liner: the official Debian image has neither curl nor wget.
 */
export const GHOST_HEALTHCHECK = [
  "CMD",
  "node",
  "-e",
  "require('http').get({host:'127.0.0.1',port:2368,path:'/ghost/api/admin/site/',timeout:4000}," +
    "r=>process.exit(r.statusCode<500?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))",
];

/**
 * `mysqladmin ping` exits 0 whenever the server answers, even with "access denied", so it needs
 * no password. TCP to 127.0.0.1 (not the socket) so the temporary server the image's entrypoint
 * runs during initialisation (networking off) does not count as healthy. MariaDB 11 images
 * ship only `mariadb-admin`, hence the fallback. (It cannot also check the task's own DNS record
 * on the overlay network: Swarm publishes that record only once the task is healthy.)
 */
export const DB_HEALTHCHECK = [
  "CMD-SHELL",
  "mysqladmin ping -h 127.0.0.1 --silent || mariadb-admin ping -h 127.0.0.1 --silent",
];

/** Where Ghost's setup reads the owner's password in the one-shot service that runs it (a Docker secret). */
export const GHOST_OWNER_PASSWORD_FILE = "/run/secrets/ghost_owner_password";

/**
 * The client that completes Ghost's setup, run by `node -e` in Ghost's own image by a one-shot
 * service on the stack's network (components/remote-scripts/ghost-setup.sh): it asks Ghost
 * whether it is set up (GET /ghost/api/admin/authentication/setup/, retried while Ghost boots)
 * and, when not, sets up the owner (POST, the password read from GHOST_OWNER_PASSWORD_FILE).
 * Environment: GHOST (Ghost's address inside the swarm, http://<service>:2368), URL (Ghost's
 * public URL: its host and protocol go in Host and X-Forwarded-Proto, so Ghost does not redirect
 * the request to it), OWNER_NAME, OWNER_EMAIL, BLOG_TITLE. Prints one line: `SETUP=created`,
 * `SETUP=already` or `SETUP=failed <what Ghost said>` (never the password), and exits 0 or 1.
 */
export const GHOST_SETUP_CLIENT = `
const fs = require("fs"), http = require("http");
const ghost = new URL(process.env.GHOST), site = new URL(process.env.URL);
const password = fs.readFileSync(${JSON.stringify(GHOST_OWNER_PASSWORD_FILE)}, "utf8").replace(/\\n$/, "");
const route = "/ghost/api/admin/authentication/setup/";
const headers = { "Content-Type": "application/json", Host: site.host, "X-Forwarded-Proto": site.protocol.replace(":", "") };
const hide = (text) => String(text).split(password).join("[secret]").replace(/\\s+/g, " ").slice(0, 400);
function call(method, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: ghost.hostname, port: ghost.port || 80, path: route, method, headers, timeout: 15000 }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode, text }));
    });
    req.on("error", reject).on("timeout", () => req.destroy(new Error("no answer within 15 s")));
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
function said(text) {
  try { return (JSON.parse(text).errors || []).map((e) => [e.message, e.context].filter(Boolean).join(": ")).join("; ") || text; }
  catch (_) { return text; }
}
async function main() {
  let last = "";
  for (let i = 0; i < 60; i++) {
    try {
      const r = await call("GET");
      if (r.status === 200) {
        if (JSON.parse(r.text).setup[0].status) return "already";
        const owner = { name: process.env.OWNER_NAME, email: process.env.OWNER_EMAIL, password, blogTitle: process.env.BLOG_TITLE };
        const p = await call("POST", { setup: [owner] });
        if (p.status === 201) return "created";
        throw Object.assign(new Error(\`Ghost answered \${p.status}: \${said(p.text)}\`), { final: true });
      }
      last = \`Ghost answered \${r.status}\`;
    } catch (err) {
      if (err.final) throw err;
      last = err.message;
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
  throw new Error(\`Ghost did not answer its setup route within 120 s: \${last}\`);
}
main().then((r) => console.log("SETUP=" + r), (err) => { console.log("SETUP=failed " + hide(err.message)); process.exitCode = 1; });
`;

function overlay(encrypt: boolean, extra: Partial<ComposeNetwork> = {}): ComposeNetwork {
  return { driver: "overlay", ...extra, ...(encrypt ? { driver_opts: { encrypted: "true" } } : {}) };
}

/**
 * Ghost + its database as one stack.
 *
 * - `db` (MySQL, or any image honouring the official mysql image's variables) runs exactly one
 *   replica wherever `dbPlacement` says, is never published, and sits only on `backend`, an
 *   internal overlay network (no route out of the cluster).
 * - It initialises itself on first start: MYSQL_DATABASE / MYSQL_USER create the database and
 *   user; both passwords come from Docker secrets through the `_FILE` variables.
 * - `ghost` runs `replicas` tasks on `backend` (to reach the database) and `frontend` (an
 *   ordinary overlay, so it can publish its port and reach the internet for themes/email).
 * - Data of both lives on the shared mount, so a task rescheduled to another node finds it.
 * - Updates (`rolling`): the database always stop-first (DB_UPDATE_ORDER); Ghost in
 *   `updateOrder`, start-first by default: each new Ghost task starts, migrates the database
 *   when its version needs it (Ghost's knex-migrator holds the `migrations_lock` row meanwhile,
 *   so a second Ghost that meets it waits out a restart instead of migrating too) and becomes
 *   healthy before an old one stops, so readers never meet a moment without Ghost. A new task
 *   that does not become healthy rolls the service back (README, "Updates").
 */
export function ghostCompose(settings: GhostSettings, ctx: GhostContext): ComposeFile {
  const errors = networkingErrors("ghost", settings);
  if (errors.length > 0) throw new Error(errors.join("\n"));

  return {
    version: "3.8",
    services: {
      db: {
        image: settings.dbImage,
        environment: {
          MYSQL_DATABASE: GHOST_DB_NAME,
          MYSQL_USER: GHOST_DB_USER,
          MYSQL_PASSWORD_FILE: `/run/secrets/${GHOST_SECRET_KEYS.dbPassword}`,
          MYSQL_ROOT_PASSWORD_FILE: `/run/secrets/${GHOST_SECRET_KEYS.dbRootPassword}`,
        },
        secrets: [{ source: GHOST_SECRET_KEYS.dbPassword }, { source: GHOST_SECRET_KEYS.dbRootPassword }],
        volumes: [
          { type: "bind", source: ctx.dbPath, target: "/var/lib/mysql" },
          ...(ctx.initDbPath === undefined
            ? []
            : [{ type: "bind" as const, source: ctx.initDbPath, target: DB_INITDB_DIR, read_only: true }]),
        ],
        networks: ["backend"],
        deploy: {
          replicas: 1,
          endpoint_mode: settings.endpointMode,
          placement: { constraints: [...settings.dbPlacement] },
          restart_policy: RESTART_ANY,
          ...rolling(DB_UPDATE_ORDER, GHOST_UPDATE_MONITOR),
        },
        healthcheck: { test: DB_HEALTHCHECK, interval: "10s", timeout: "5s", retries: 6, start_period: "180s" },
        stop_grace_period: "60s",
      },
      ghost: {
        image: settings.image,
        entrypoint: ghostEntrypoint(),
        command: GHOST_COMMAND,
        environment: {
          url: ctx.url,
          database__client: "mysql",
          database__connection__host: "db",
          database__connection__port: "3306",
          database__connection__user: GHOST_DB_USER,
          database__connection__database: GHOST_DB_NAME,
          paths__contentPath: GHOST_CONTENT_DIR,
          // Ghost e-mails a code to staff signing in from a new device; swarmcloud sets up no
          // mail, so the code could never arrive and the owner would be locked out (the login
          // fails with "Failed to send email"). The password alone guards the admin.
          security__staffDeviceVerification: "false",
        },
        secrets: [{ source: GHOST_SECRET_KEYS.dbPassword }],
        volumes: [{ type: "bind", source: ctx.contentPath, target: GHOST_CONTENT_DIR }],
        networks: ["backend", "frontend"],
        ports: [{ target: GHOST_PORT, published: settings.port, protocol: "tcp", mode: settings.publishMode }],
        deploy: {
          replicas: settings.replicas,
          endpoint_mode: settings.endpointMode,
          restart_policy: RESTART_ANY,
          ...rolling(settings.updateOrder, GHOST_UPDATE_MONITOR),
        },
        healthcheck: { test: GHOST_HEALTHCHECK, interval: "15s", timeout: "5s", retries: 5, start_period: "180s" },
      },
    },
    networks: {
      backend: overlay(ctx.encryptOverlay, { internal: true }),
      frontend: overlay(ctx.encryptOverlay),
    },
    secrets: {
      [GHOST_SECRET_KEYS.dbPassword]: { external: true, name: ctx.secretNames.dbPassword },
      [GHOST_SECRET_KEYS.dbRootPassword]: { external: true, name: ctx.secretNames.dbRootPassword },
    },
  };
}
