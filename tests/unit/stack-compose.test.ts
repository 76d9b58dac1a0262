import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import {
  ComposeFile,
  DeployVariable,
  deployVariableNames,
  networkingErrors,
  renderCompose,
  rolling,
  toYaml,
  validateCompose,
} from "../../stacks/compose";
import { DEFAULTS, GhostSettings, PortainerSettings } from "../../components/config";
import { DB_HEALTHCHECK, ghostCompose, GhostContext } from "../../stacks/ghost";
import { agentArgs, portainerCompose } from "../../stacks/portainer";

/** The settings parseConfig gives when nothing is configured; tests override what they vary. */
const ghost: GhostSettings = { ...DEFAULTS.ghost };
const ctx: GhostContext = {
  contentPath: "/mnt/swarmcloud/ghost/content",
  dbPath: "/mnt/swarmcloud/ghost/mysql",
  url: "http://10.0.0.11:2368",
  encryptOverlay: false,
  secretNames: { dbPassword: "ghost-db-password-0123456789", dbRootPassword: "ghost-db-root-password-abcdefabcd" },
};
const portainer: PortainerSettings = { ...DEFAULTS.portainer };

/** Lines of `a` and `b` that differ, position by position (both must have the same length). */
function changedLines(a: string, b: string): [string, string][] {
  const la = a.split("\n");
  const lb = b.split("\n");
  expect(la.length).toBe(lb.length);
  return la.flatMap((l, i) => (l === lb[i] ? [] : [[l, lb[i]!] as [string, string]]));
}

/** The value of the one key `k` of a rendered `{ k: value }`, as written. */
const scalarText = (value: string) => toYaml({ k: value }).replace(/^k: /, "").replace(/\n$/, "");

/** `value` with every `$$` of its strings read back as `$`, the way compose interpolation reads them. */
function undoubled(value: unknown): unknown {
  if (typeof value === "string") return value.replace(/\$\$/g, "$");
  if (Array.isArray(value)) return value.map(undoubled);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, undoubled(v)]));
  }
  return value;
}

/** The spec as a YAML reader should see it: fields left undefined are absent, a DeployVariable is `${NAME}`. */
const asData = (file: ComposeFile): unknown =>
  JSON.parse(JSON.stringify(file, (_, v: unknown) => (v instanceof DeployVariable ? `\${${v.name}}` : v)));

/**
 * Scalars a YAML 1.1 reader (the Docker CLI's Go yaml.v2; yaml.v3 keeps some 1.1 habits) would
 * take for a boolean, a number, a null, a date, a merge key, a map or a comment when written
 * plain, and strings that need escapes.
 */
const TRICKY = [
  ...["yes", "no", "on", "off", "y", "n", "Y", "N", "Yes", "OFF", "true", "False", "null", "Null", "~", ""],
  ...["0755", "1e3", "1_000", "0x1F", "0o17", "0b101", "1:20", "190:20:30.15", ".5", "+1", "-1", ".inf", ".NaN"],
  ...["2001-01-01", "<<", "=", "a: b", "x #y", "#c", "- x", "? x", "[x]", "{x}", "*a", "&a", "!t", "%p", "@a", "`b"],
  ...["|", ">", "'q'", '"d"', "  lead", "trail ", "a\nb", "a\n", "tab\there", "cr\rhere", "---", "...", "a ---"],
  ...["\u0000\u0007\u001b\u007f\u0080\u0085\u00a0\u2028\u2029\ufeff", "café 🐳", "$HOME ${X} $$"],
];

/** Plain keys of a rendered file (a YAML 1.1 reader must read each as the same string). */
const plainKeys = (text: string) =>
  text
    .split("\n")
    .map((line) => /^\s*(?:- )?([^"\s-][^:]*):(?: |$)/.exec(line)?.[1])
    .filter((k): k is string => k !== undefined);

describe("YAML through js-yaml", () => {
  test("every string value is double-quoted, $ doubled for compose interpolation, escapes for what readers reject", () => {
    expect(scalarText("yes")).toBe('"yes"');
    expect(scalarText("1.10")).toBe('"1.10"');
    expect(scalarText('say "hi" \\ now')).toBe('"say \\"hi\\" \\\\ now"');
    expect(scalarText("a\nb\tc")).toBe('"a\\nb\\tc"');
    expect(scalarText("$(cat x) ${HOME} $$")).toBe('"$$(cat x) $${HOME} $$$$"');
    expect(scalarText("\u0000\u007f\u0085\u2028\ufeff")).toBe('"\\0\\x7F\\N\\L\\uFEFF"');
    expect(scalarText("café 🐳")).toBe('"café 🐳"');
    expect(scalarText("\ud800x")).toBe('"\\uD800x"');
  });

  test("tricky scalars stay strings, as values and as keys, on one line each", () => {
    const values = Object.fromEntries(TRICKY.map((w, i) => [`v${i}`, w]));
    const keys = Object.fromEntries(TRICKY.filter((w) => w !== "").map((w, i) => [w, `k${i}`]));
    const text = toYaml({ values, keys });
    expect(undoubled(yaml.load(text))).toEqual({ values, keys });
    const lines = text.split("\n");
    for (const [name] of Object.entries(values)) {
      expect(lines.filter((l) => l.startsWith(`  ${name}: `))).toEqual([expect.stringMatching(/^ {2}v\d+: ".*"$/)]);
    }
    // A plain key is a word: it does not start like a number, and is none of YAML 1.1's words.
    const plain = plainKeys(text).map((k) => k.trim());
    expect(plain).toEqual(expect.arrayContaining(["values", "keys"]));
    for (const k of plain) {
      expect(k).not.toMatch(/^[-+.0-9~<]/);
      expect(k).not.toMatch(/^(y|yes|n|no|true|false|on|off|null)$/i);
    }
  });

  test("block layout, fixed key order whatever the insertion order, lists of maps, empties", () => {
    const a = toYaml({
      z: 1,
      services: { s: { ports: [{ target: 1, mode: "host" }], image: "i" } },
      version: "3.8",
      e: [],
      f: {},
    });
    const b = toYaml({
      f: {},
      e: [],
      version: "3.8",
      services: { s: { image: "i", ports: [{ mode: "host", target: 1 }] } },
      z: 1,
    });
    expect(a).toBe(b);
    expect(a).toBe(
      [
        'version: "3.8"',
        "services:",
        "  s:",
        '    image: "i"',
        "    ports:",
        '      - mode: "host"',
        "        target: 1",
        "e: []",
        "f: {}",
        "z: 1",
        "",
      ].join("\n"),
    );
  });

  test("keys that YAML would misread are quoted; booleans and numbers are plain", () => {
    expect(toYaml({ on: true, "a b": false, n: 0, "1_000": 1, "0755": 2, skipped: undefined })).toBe(
      '"0755": 2\n"1_000": 1\na b: false\n"n": 0\n"on": true\n',
    );
  });

  test("a replica change is a one-line diff", () => {
    const one = renderCompose(ghostCompose({ ...ghost, replicas: 1 }, ctx));
    const two = renderCompose(ghostCompose({ ...ghost, replicas: 2 }, ctx));
    expect(changedLines(one, two)).toEqual([["      replicas: 1", "      replicas: 2"]]);
    expect(renderCompose(ghostCompose(ghost, ctx))).toBe(one); // deterministic
  });
});

describe("validation", () => {
  const base = (): ComposeFile => ({
    version: "3.8",
    services: { web: { image: "nginx", ports: [{ target: 80, published: 80 }], deploy: { endpoint_mode: "dnsrr" } } },
  });

  test("dnsrr with an ingress-published port is refused, host mode is fine", () => {
    expect(validateCompose(base()).join()).toMatch(
      /endpoint_mode dnsrr cannot be combined with a port published in ingress mode/,
    );
    const host = base();
    host.services.web!.ports![0]!.mode = "host";
    expect(validateCompose(host)).toEqual([]);
    expect(() => renderCompose(base())).toThrow(/invalid compose file/);
    expect(networkingErrors("ghost", { publishMode: "ingress", endpointMode: "dnsrr" })[0]).toMatch(
      /swarmcloud:ghost.endpointMode.*ghost.publishMode: host/,
    );
    expect(networkingErrors("ghost", { publishMode: "host", endpointMode: "dnsrr" })).toEqual([]);
    expect(() => ghostCompose({ ...ghost, endpointMode: "dnsrr" }, ctx)).toThrow(/ghost.publishMode/);
    expect(() =>
      portainerCompose(
        { ...portainer, endpointMode: "dnsrr" },
        { dataPath: "/d", encryptOverlay: false, adminPasswordSecret: "p-1", agentArgsSecret: "a-1" },
      ),
    ).toThrow(/portainer.publishMode/);
  });

  test("undefined networks and secrets, global with replicas, duplicate published ports, bad names", () => {
    const f: ComposeFile = {
      version: "3.8",
      services: {
        a: {
          image: "x",
          networks: ["nope"],
          secrets: [{ source: "missing" }],
          deploy: { mode: "global", replicas: 2 },
          ports: [{ target: 1, published: 80 }],
        },
        b: {
          image: "y",
          ports: [{ target: 2, published: 80 }],
          environment: { "bad-name": "v" },
          volumes: [{ type: "bind", source: "rel", target: "/x" }],
        },
      },
      secrets: { s: { external: true, name: "has space" } },
    };
    const errors = validateCompose(f).join("\n");
    expect(errors).toMatch(/network nope is not defined/);
    expect(errors).toMatch(/secret missing is not defined/);
    expect(errors).toMatch(/replicas cannot be set with deploy.mode global/);
    expect(errors).toMatch(/80\/tcp is also published by service a/);
    expect(errors).toMatch(/environment name "bad-name"/);
    expect(errors).toMatch(/absolute paths/);
    expect(errors).toMatch(/Docker secret name "has space"/);
  });
});

describe("rolling: the one update policy", () => {
  test("one task at a time in the given order, rolled back on a failure within the monitor window; a failed rollback pauses", () => {
    expect(rolling("start-first", "30s")).toEqual({
      update_config: { parallelism: 1, order: "start-first", monitor: "30s", failure_action: "rollback" },
      rollback_config: { parallelism: 1, order: "start-first", monitor: "30s", failure_action: "pause" },
    });
    expect(rolling("stop-first", "15s", "10s")).toEqual({
      update_config: { parallelism: 1, delay: "10s", order: "stop-first", monitor: "15s", failure_action: "rollback" },
      rollback_config: { parallelism: 1, delay: "10s", order: "stop-first", monitor: "15s", failure_action: "pause" },
    });
  });

  test("rendered as compose keys docker stack deploy reads (update_config, rollback_config)", () => {
    const text = renderCompose({
      version: "3.8",
      services: { a: { image: "x", deploy: rolling("start-first", "5s") } },
    });
    expect(yaml.load(text)).toEqual({
      version: "3.8",
      services: {
        a: {
          image: "x",
          deploy: {
            update_config: { parallelism: 1, order: "start-first", monitor: "5s", failure_action: "rollback" },
            rollback_config: { parallelism: 1, order: "start-first", monitor: "5s", failure_action: "pause" },
          },
        },
      },
    });
  });
});

describe("ghost stack", () => {
  const file = ghostCompose(ghost, ctx);
  const yaml = renderCompose(file);

  test("database: one replica, placed, never published, internal network only, self-initialising from secret files", () => {
    const db = file.services.db!;
    expect(db.image).toBe("mysql:8.4");
    expect(db.deploy?.replicas).toBe(1);
    expect(ghostCompose({ ...ghost, dbReplicas: 3 }, ctx).services.db!.deploy?.replicas).toBe(1);
    expect(db.deploy?.placement?.constraints).toEqual(["node.role==manager"]);
    expect(db.ports).toBeUndefined();
    expect(db.networks).toEqual(["backend"]);
    expect(file.networks?.backend).toEqual({ driver: "overlay", internal: true });
    expect(db.environment).toEqual({
      MYSQL_DATABASE: "ghost",
      MYSQL_USER: "ghost",
      MYSQL_PASSWORD_FILE: "/run/secrets/db_password",
      MYSQL_ROOT_PASSWORD_FILE: "/run/secrets/db_root_password",
    });
    expect(db.volumes).toEqual([{ type: "bind", source: ctx.dbPath, target: "/var/lib/mysql" }]);
    expect(db.deploy?.update_config?.order).toBe("stop-first");
    expect(db.healthcheck?.test).toBe(DB_HEALTHCHECK);
  });

  describe("the database health check, run by sh with stand-in commands", () => {
    function check(mysqladmin: number, mariadbAdmin: number): number {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-hc-"));
      fs.writeFileSync(path.join(dir, "mysqladmin"), `#!/bin/sh\nexit ${mysqladmin}\n`, { mode: 0o755 });
      fs.writeFileSync(path.join(dir, "mariadb-admin"), `#!/bin/sh\nexit ${mariadbAdmin}\n`, { mode: 0o755 });
      const [kind, command] = DB_HEALTHCHECK;
      expect(kind).toBe("CMD-SHELL");
      const r = spawnSync("/bin/sh", ["-c", command!], { env: { PATH: dir } });
      fs.rmSync(dir, { recursive: true, force: true });
      return r.status ?? -1;
    }

    test("healthy when mysqladmin answers, or mariadb-admin where mysqladmin is missing (MariaDB 11)", () => {
      expect(check(0, 1)).toBe(0);
      expect(check(127, 0)).toBe(0);
    });
    test("unhealthy when neither answers", () => {
      expect(check(1, 1)).not.toBe(0);
      expect(check(127, 127)).not.toBe(0);
    });
  });

  test("ghost: replicas, url, port, publish/endpoint modes, password only via the wrapper", () => {
    const g = file.services.ghost!;
    expect(g.deploy?.replicas).toBe(1);
    expect(g.environment?.url).toBe(ctx.url);
    expect(g.environment?.database__connection__host).toBe("db");
    // No mail is set up, so Ghost must not wait for an e-mailed code to let staff in.
    expect(g.environment?.security__staffDeviceVerification).toBe("false");
    expect(Object.keys(g.environment ?? {}).filter((k) => /password/i.test(k))).toEqual([]);
    expect(g.entrypoint).toEqual([
      "/bin/sh",
      "-c",
      'set -e; database__connection__password="$(cat /run/secrets/db_password)"; export database__connection__password; exec docker-entrypoint.sh "$@"',
      "ghost-entrypoint",
    ]);
    expect(g.command).toEqual(["node", "current/index.js"]);
    expect(g.ports).toEqual([{ target: 2368, published: 2368, protocol: "tcp", mode: "ingress" }]);
    expect(g.deploy?.endpoint_mode).toBe("vip");
    expect(g.volumes).toEqual([{ type: "bind", source: ctx.contentPath, target: "/var/lib/ghost/content" }]);
    const lab = ghostCompose({ ...ghost, publishMode: "host", endpointMode: "dnsrr", port: 8080, replicas: 3 }, ctx);
    expect(lab.services.ghost!.ports).toEqual([{ target: 2368, published: 8080, protocol: "tcp", mode: "host" }]);
    expect(lab.services.ghost!.deploy?.endpoint_mode).toBe("dnsrr");
    expect(lab.services.db!.deploy?.endpoint_mode).toBe("dnsrr");
    expect(lab.services.ghost!.deploy?.replicas).toBe(3);
  });

  test("secrets are external under their versioned names; the wrapper's $ reach the container literally", () => {
    expect(file.secrets).toEqual({
      db_password: { external: true, name: "ghost-db-password-0123456789" },
      db_root_password: { external: true, name: "ghost-db-root-password-abcdefabcd" },
    });
    expect(yaml).toContain('database__connection__password=\\"$$(cat /run/secrets/db_password)\\"');
    expect(yaml).toContain('exec docker-entrypoint.sh \\"$$@\\"');
    expect(yaml).not.toMatch(/[^$]\$[^$]/);
  });

  test("updates: Ghost start-first (ghost.updateOrder), the database stop-first whatever the settings say, both rolled back on failure", () => {
    expect(file.services.ghost!.deploy).toMatchObject({
      update_config: { parallelism: 1, order: "start-first", failure_action: "rollback", monitor: "30s" },
      rollback_config: { parallelism: 1, order: "start-first", failure_action: "pause", monitor: "30s" },
    });
    expect(file.services.db!.deploy).toMatchObject({
      update_config: { parallelism: 1, order: "stop-first", failure_action: "rollback", monitor: "30s" },
      rollback_config: { parallelism: 1, order: "stop-first", failure_action: "pause", monitor: "30s" },
    });
    const stopFirst = ghostCompose({ ...ghost, updateOrder: "stop-first" }, ctx);
    expect(stopFirst.services.ghost!.deploy?.update_config?.order).toBe("stop-first");
    expect(stopFirst.services.ghost!.deploy?.rollback_config?.order).toBe("stop-first");
    // The config refuses it (config-rules); the spec never renders it either.
    const asked = ghostCompose({ ...ghost, dbUpdateOrder: "start-first" }, ctx);
    expect(asked.services.db!.deploy?.update_config?.order).toBe("stop-first");
    // An image change is one changed line per service whose image changed.
    expect(changedLines(yaml, renderCompose(ghostCompose({ ...ghost, image: "ghost:5.130.7" }, ctx)))).toEqual([
      ['    image: "ghost:5"', '    image: "ghost:5.130.7"'],
    ]);
    expect(
      changedLines(yaml, renderCompose(ghostCompose({ ...ghost, image: "ghost:6", dbImage: "mysql:8.4.7" }, ctx))),
    ).toEqual([
      ['    image: "mysql:8.4"', '    image: "mysql:8.4.7"'],
      ['    image: "ghost:5"', '    image: "ghost:6"'],
    ]);
  });

  test("encrypted overlay networks on request", () => {
    const enc = ghostCompose(ghost, { ...ctx, encryptOverlay: true });
    expect(enc.networks?.backend?.driver_opts).toEqual({ encrypted: "true" });
    expect(enc.networks?.frontend?.driver_opts).toEqual({ encrypted: "true" });
    expect(file.networks?.frontend?.driver_opts).toBeUndefined();
  });

  test("the whole rendered file", () => {
    expect(yaml).toMatchSnapshot();
  });
});

describe("portainer stack", () => {
  const pctx = {
    dataPath: "/mnt/swarmcloud/portainer",
    encryptOverlay: true,
    adminPasswordSecret: "portainer-admin-password-0a1b2c3d4e",
    agentArgsSecret: "portainer-agent-args-5f6a7b8c9d",
  };
  const file = portainerCompose(portainer, pctx);

  test("agent on every node with the docker socket and volumes; server on a manager with its data on the shared mount", () => {
    const agent = file.services.agent!;
    expect(agent.deploy?.mode).toBe("global");
    expect(agent.deploy?.replicas).toBeUndefined();
    expect(agent.volumes?.map((v) => v.source)).toEqual(["/var/run/docker.sock", "/var/lib/docker/volumes"]);
    expect(agent.ports).toBeUndefined();
    const server = file.services.portainer!;
    expect(server.deploy?.replicas).toBe(1);
    expect(server.deploy?.placement?.constraints).toEqual(["node.role==manager"]);
    expect(server.volumes).toEqual([{ type: "bind", source: pctx.dataPath, target: "/data" }]);
    expect(server.command).toEqual([
      "-H",
      "tcp://tasks.agent:9001",
      "--tlsskipverify",
      "--admin-password-file",
      "/run/secrets/portainer_admin_password",
    ]);
    expect(file.secrets).toEqual({
      portainer_admin_password: { external: true, name: pctx.adminPasswordSecret },
      portainer_agent_args: { external: true, name: pctx.agentArgsSecret },
    });
    // Only the stack's own services join the agents' network: no `docker run --network`.
    expect(file.networks?.agent_network).toEqual({
      driver: "overlay",
      attachable: false,
      driver_opts: { encrypted: "true" },
    });
  });

  test("updates: the agents start-first (stateless, no published port), the server stop-first (one BoltDB), both rolled back on failure", () => {
    expect(file.services.agent!.deploy).toMatchObject(rolling("start-first", "15s"));
    expect(file.services.portainer!.deploy).toMatchObject(rolling("stop-first", "15s"));
    expect(file.services.agent!.deploy?.update_config?.failure_action).toBe("rollback");
  });

  test("the agent secret: the agent reads it from a Docker secret (its arguments file), the server from its environment, filled in by the deploy", () => {
    const agent = file.services.agent!;
    expect(agent.command).toEqual(["@/run/secrets/portainer_agent_args"]);
    expect(agent.secrets).toEqual([{ source: "portainer_agent_args" }]);
    expect(agent.environment).toBeUndefined();
    expect(agentArgs("c0ffee")).toBe("--secret=c0ffee\n");
    const server = file.services.portainer!;
    expect(server.environment).toEqual({ AGENT_SECRET: new DeployVariable("PORTAINER_AGENT_SECRET") });
    const text = renderCompose(file);
    expect(text).toContain('AGENT_SECRET: "${PORTAINER_AGENT_SECRET}"');
    expect(deployVariableNames(text)).toEqual(["PORTAINER_AGENT_SECRET"]);
  });

  test("9443 always, 9000 only when httpPort is set", () => {
    expect(file.services.portainer!.ports).toEqual([
      { target: 9443, published: 9443, protocol: "tcp", mode: "ingress" },
    ]);
    const both = portainerCompose({ ...portainer, httpPort: 9000, httpsPort: 9444, publishMode: "host" }, pctx);
    expect(both.services.portainer!.ports).toEqual([
      { target: 9443, published: 9444, protocol: "tcp", mode: "host" },
      { target: 9000, published: 9000, protocol: "tcp", mode: "host" },
    ]);
  });

  test("the whole rendered file", () => {
    expect(renderCompose(file)).toMatchSnapshot();
  });
});

describe("every rendered compose file reads back as its spec", () => {
  const pctx = {
    dataPath: "/mnt/swarmcloud/portainer",
    encryptOverlay: true,
    adminPasswordSecret: "portainer-a-1",
    agentArgsSecret: "portainer-agent-args-1",
  };
  const specs: [string, ComposeFile][] = [
    ["ghost, defaults", ghostCompose(ghost, ctx)],
    [
      "ghost, host mode, dnsrr, 3 replicas, encrypted",
      ghostCompose(
        { ...ghost, publishMode: "host", endpointMode: "dnsrr", port: 8080, replicas: 3 },
        { ...ctx, encryptOverlay: true },
      ),
    ],
    ["portainer, defaults", portainerCompose(portainer, pctx)],
    ["portainer, http port, host mode", portainerCompose({ ...portainer, httpPort: 9000, publishMode: "host" }, pctx)],
  ];

  test.each(specs)("%s", (_, spec) => {
    const text = renderCompose(spec);
    const read = yaml.load(text);
    // `$` is doubled on the way out and nowhere else: undoing it gives back the spec exactly.
    expect(undoubled(read)).toEqual(asData(spec));
    // Where the spec holds a `$` (Ghost's wrapper), the file as written differs from it: doubled.
    if (JSON.stringify(spec).includes("$")) expect(read).not.toEqual(asData(spec));
    else expect(read).toEqual(asData(spec));
  });
});
