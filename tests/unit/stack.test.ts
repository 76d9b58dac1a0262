/**
 * SwarmStack on the Pulumi mocks: its children, their parents, the exact scripts, what goes on
 * stdin (the secrets) versus the environment (the compose text, never a secret), and that a
 * Ghost replica change touches Ghost's deploy only.
 */
import * as pulumi from "@pulumi/pulumi";
import { setupMocks, settled, recordedNamed, valueOf } from "./mocks";
import { DEFAULTS, GhostSettings, PortainerSettings } from "../../components/config";
import {
  checkDeployVariables,
  secretLines,
  secretsStdin,
  secretVersion,
  serviceLines,
  SwarmStack,
  updateOrders,
  updateOrdersLine,
  versionedSecretName,
} from "../../components/stack";
import { script } from "../../components/remote-scripts";
import { renderCompose } from "../../stacks/compose";
import { ghostCompose } from "../../stacks/ghost";
import { agentArgs, portainerCompose } from "../../stacks/portainer";

const { recorded } = setupMocks();

const DYNAMIC = "pulumi-nodejs:dynamic/swarmcloud:RemoteScript";

const manager = { name: "manager-1", connection: { host: "10.0.0.11", user: "root", privateKey: "PRIVATE-KEY" } };
const fallback = { name: "manager-2", connection: { host: "10.0.0.12", user: "root", privateKey: "PRIVATE-KEY" } };

/** The settings parseConfig gives when nothing is configured; tests override what they vary. */
const ghost: GhostSettings = { ...DEFAULTS.ghost };
const portainer: PortainerSettings = { ...DEFAULTS.portainer };
const DB_PW = "db-pw-Very$ecret'1";
const ROOT_PW = 'root-pw-Very$ecret"2';
const ADMIN_PW = "admin-pw-Very$ecret 3";
const AGENT_SECRET = "agent-secret-0123456789abcdef";

/** Both stacks the way index.ts wires them (no resource made inside an apply), Ghost's replicas given. */
function apps(prefix: string, replicas: number) {
  const ghostStack = new SwarmStack(`${prefix}-ghost`, {
    manager,
    fallbackManagers: [fallback],
    stackName: "ghost",
    secrets: { "ghost-db-password": pulumi.secret(DB_PW), "ghost-db-root-password": pulumi.secret(ROOT_PW) },
    compose: (names) =>
      renderCompose(
        ghostCompose(
          { ...ghost, replicas },
          {
            contentPath: "/mnt/swarmcloud/ghost/content",
            dbPath: "/mnt/swarmcloud/ghost/mysql",
            url: "http://10.0.0.11:2368",
            encryptOverlay: false,
            secretNames: { dbPassword: names["ghost-db-password"]!, dbRootPassword: names["ghost-db-root-password"]! },
          },
        ),
      ),
    timeout: 600,
  });
  // The other form: compose as an Input<string> built from versionedSecretName.
  const portainerYaml = pulumi
    .all([
      versionedSecretName("portainer-admin-password", pulumi.secret(ADMIN_PW)),
      versionedSecretName("portainer-agent-args", pulumi.secret(agentArgs(AGENT_SECRET))),
    ])
    .apply(([adminPasswordSecret, agentArgsSecret]) =>
      renderCompose(
        portainerCompose(portainer, {
          dataPath: "/mnt/swarmcloud/portainer",
          encryptOverlay: false,
          adminPasswordSecret,
          agentArgsSecret,
        }),
      ),
    );
  const portainerStack = new SwarmStack(`${prefix}-portainer`, {
    manager,
    stackName: "portainer",
    compose: portainerYaml,
    secrets: {
      "portainer-admin-password": pulumi.secret(ADMIN_PW),
      "portainer-agent-args": pulumi.secret(agentArgs(AGENT_SECRET)),
    },
    deployVariables: { PORTAINER_AGENT_SECRET: pulumi.secret(AGENT_SECRET) },
    resolveImage: "never",
    pinImages: false,
  });
  return { ghost: ghostStack, portainer: portainerStack };
}

describe("SwarmStack", () => {
  let one: ReturnType<typeof apps>;
  beforeAll(async () => {
    one = apps("one", 1);
    apps("two", 2);
    await settled();
  });

  test("a component with one RemoteScript child, parented to it", () => {
    const comp = recordedNamed("one-ghost");
    expect(comp.type).toBe("swarmcloud:stack:SwarmStack");
    expect(comp.custom).toBe(false);
    const deploy = recordedNamed("one-ghost-deploy");
    expect(deploy.type).toBe(DYNAMIC);
    expect(deploy.parent).toBe(comp.urn);
    expect(recorded.filter((r) => r.parent === comp.urn).map((r) => r.name)).toEqual(["one-ghost-deploy"]);
    expect(deploy.options.additionalSecretOutputs).toContain("connection");
  });

  test("runs exactly the scripts, on the manager, falling back to the other managers", () => {
    const deploy = recordedNamed("one-ghost-deploy").inputs;
    expect(deploy.create).toBe(script("stack-deploy"));
    expect(deploy.delete).toBe(script("stack-rm"));
    expect(deploy.update).toBeUndefined();
    expect(deploy.node).toBe("manager-1");
    expect(deploy.connection.host).toBe("10.0.0.11");
    expect(deploy.fallbackConnections.map((c: { host: string }) => c.host)).toEqual(["10.0.0.12"]);
    expect(deploy.skipDeleteWhenUnreachable).toBe(true);
    expect(deploy.timeout).toBe(600 + 180);
    // Images pinned unless pinImages is false: a change of it re-runs the deploy (an environment key).
    expect(deploy.environment).toMatchObject({
      STACK: "ghost",
      TIMEOUT: "600",
      RESOLVE_IMAGE: "always",
      PIN_IMAGES: "1",
    });
    expect(recordedNamed("one-portainer-deploy").inputs.environment).toMatchObject({
      STACK: "portainer",
      TIMEOUT: "300",
      RESOLVE_IMAGE: "never",
      PIN_IMAGES: "0",
    });
    expect(recordedNamed("one-portainer-deploy").inputs.fallbackConnections).toEqual([]);
  });

  test("a refresh reads the services and secrets back; they are declared with the deploy's inputs", async () => {
    const deploy = recordedNamed("one-ghost-deploy").inputs;
    expect(deploy.read).toBe(script("stack-deploy-read"));
    const names = await valueOf(one.ghost.secretNames);
    expect(deploy.environment.SECRETS).toBe(Object.values(names).sort().join("\n"));
    expect(deploy.environment.SERVICES).toBe("ghost_db replicated 1\nghost_ghost replicated 1");
    expect(recordedNamed("one-portainer-deploy").inputs.environment.SERVICES).toBe(
      "portainer_agent global\nportainer_portainer replicated 1",
    );
  });

  test("serviceLines: global or replicated (1 by default), sorted; no services, nothing", () => {
    const compose = [
      "services:",
      "  web:",
      '    image: "x"',
      "  agent:",
      "    deploy:",
      '      mode: "global"',
      "  db:",
      "    deploy:",
      "      replicas: 3",
      "",
    ].join("\n");
    expect(serviceLines("s", compose)).toBe("s_agent global\ns_db replicated 3\ns_web replicated 1");
    expect(serviceLines("s", 'version: "3.8"\nservices: {}\n')).toBe("");
    expect(serviceLines("s", "")).toBe("");
  });

  test("updateOrders: each service's update order (stop-first, Swarm's default, where none is set), with its rollback window", () => {
    const text = renderCompose(
      ghostCompose(ghost, {
        contentPath: "/c",
        dbPath: "/d",
        url: "http://x",
        encryptOverlay: false,
        secretNames: { dbPassword: "a", dbRootPassword: "b" },
      }),
    );
    expect(updateOrders("ghost", text)).toEqual([
      "ghost_db stop-first (rolled back on failure within 30s)",
      "ghost_ghost start-first (rolled back on failure within 30s)",
    ]);
    expect(updateOrdersLine("ghost", text)).toBe(
      "stack ghost updates one task at a time: ghost_db stop-first (rolled back on failure within 30s); " +
        "ghost_ghost start-first (rolled back on failure within 30s)",
    );
    expect(updateOrders("s", 'services:\n  web:\n    image: "x"\n')).toEqual(["s_web stop-first"]);
    expect(updateOrders("s", "")).toEqual([]);
  });

  test("secrets go on stdin as name=base64 lines and appear nowhere else", async () => {
    const deploy = recordedNamed("one-ghost-deploy").inputs;
    const dbName = `ghost-db-password-${secretVersion("ghost-db-password", DB_PW)}`;
    const rootName = `ghost-db-root-password-${secretVersion("ghost-db-root-password", ROOT_PW)}`;
    const stdin: string = deploy.stdin;
    expect(stdin).toBe(secretLines({ [rootName]: ROOT_PW, [dbName]: DB_PW }));
    expect(await valueOf(one.ghost.secretNames)).toEqual({
      "ghost-db-password": dbName,
      "ghost-db-root-password": rootName,
    });
    expect(await pulumi.isSecret(one.ghost.secretNames)).toBe(false);
    expect(await pulumi.isSecret(one.ghost.compose)).toBe(false);
    expect(stdin).toBe(
      [
        `${dbName}=${Buffer.from(DB_PW).toString("base64")}`,
        `${rootName}=${Buffer.from(ROOT_PW).toString("base64")}`,
        "",
      ].join("\n"),
    );
    const compose: string = deploy.environment.COMPOSE;
    expect(typeof compose).toBe("string"); // plain, not a secret: preview shows its diff
    expect(compose).toContain(`name: "${dbName}"`);
    expect(compose).toContain(`name: "${rootName}"`);
    for (const r of recorded) {
      const { stdin, connection, fallbackConnections, ...rest } = r.inputs;
      void stdin;
      void connection;
      void fallbackConnections;
      const text = JSON.stringify(rest);
      for (const pw of [DB_PW, ROOT_PW, ADMIN_PW, AGENT_SECRET]) {
        expect(text).not.toContain(pw);
        expect(text).not.toContain(Buffer.from(pw).toString("base64"));
      }
    }
    expect(recordedNamed("one-portainer-deploy").inputs.environment.COMPOSE).toContain(
      `portainer-admin-password-${secretVersion("portainer-admin-password", ADMIN_PW)}`,
    );
  });

  test("a deploy variable: on stdin as an env: line after the secrets, only its name in the compose text", async () => {
    const deploy = recordedNamed("one-portainer-deploy").inputs;
    const lines = (deploy.stdin as string).split("\n");
    expect(lines.at(-2)).toBe(`env:PORTAINER_AGENT_SECRET=${Buffer.from(AGENT_SECRET).toString("base64")}`);
    expect(deploy.environment.COMPOSE).toContain('AGENT_SECRET: "${PORTAINER_AGENT_SECRET}"');
    expect(deploy.environment.COMPOSE).not.toContain(AGENT_SECRET);
    expect(await valueOf(secretsStdin({}, { A_B: "x" })!)).toBe(`env:A_B=${Buffer.from("x").toString("base64")}\n`);
  });

  test("a compose text naming a deploy variable it is not given, or a bad variable name, is refused", () => {
    expect(
      () =>
        new SwarmStack("badvar", {
          manager,
          stackName: "ok",
          compose: "x",
          deployVariables: { "lower-case": "v" },
        }),
    ).toThrow(/deploy variable "lower-case" must be capitals/);
    // What SwarmStack does with its compose text (inside an apply: the up fails with it).
    expect(() => checkDeployVariables("ok", 'e: "${NOT_GIVEN}"\n', [])).toThrow(
      "stack ok: the compose file uses NOT_GIVEN, which deployVariables lacks",
    );
    expect(checkDeployVariables("ok", 'e: "$${ESCAPED}"\n', [])).toBe('e: "$${ESCAPED}"\n');
  });

  test("stdin is a Pulumi secret even when the values are not", async () => {
    const stdin = secretsStdin({ b: "2", a: pulumi.secret("1") })!;
    expect(await pulumi.isSecret(stdin)).toBe(true);
    expect(await valueOf(stdin)).toBe(`a-${secretVersion("a", "1")}=MQ==\nb-${secretVersion("b", "2")}=Mg==\n`);
    expect(await pulumi.isSecret(secretsStdin({ a: "plain" })!)).toBe(true);
    expect(secretsStdin({})).toBeUndefined();
  });

  test("secret names are versioned by value, stable, and not secret", async () => {
    expect(secretVersion("x", "a")).toMatch(/^[0-9a-f]{10}$/);
    expect(secretVersion("x", "a")).toBe(secretVersion("x", "a"));
    expect(secretVersion("x", "a")).not.toBe(secretVersion("x", "b"));
    expect(secretVersion("x", "a")).not.toBe(secretVersion("y", "a"));
    const name = versionedSecretName("x", pulumi.secret("a"));
    expect(await pulumi.isSecret(name)).toBe(false);
    expect(await valueOf(name)).toBe(`x-${secretVersion("x", "a")}`);
    expect(() => versionedSecretName("bad name", "a")).toThrow(/secret base name/);
  });

  test("a Ghost replica change changes Ghost's compose by one line and nothing else", () => {
    const env = (n: string) => recordedNamed(n).inputs.environment as Record<string, string>;
    expect(env("two-portainer-deploy")).toEqual(env("one-portainer-deploy"));
    expect(recordedNamed("two-portainer-deploy").inputs.stdin).toEqual(
      recordedNamed("one-portainer-deploy").inputs.stdin,
    );
    expect(recordedNamed("two-ghost-deploy").inputs.stdin).toEqual(recordedNamed("one-ghost-deploy").inputs.stdin);
    const a = env("one-ghost-deploy");
    const b = env("two-ghost-deploy");
    expect({ ...a, COMPOSE: "", SERVICES: "" }).toEqual({ ...b, COMPOSE: "", SERVICES: "" });
    const la = a.COMPOSE!.split("\n");
    const lb = b.COMPOSE!.split("\n");
    expect(la.length).toBe(lb.length);
    const diff = la.flatMap((l, i) => (l === lb[i] ? [] : [`- ${l}`, `+ ${lb[i]}`]));
    expect(diff).toEqual(["-       replicas: 1", "+       replicas: 2"]);
    // What a refresh compares with the swarm follows the compose text.
    expect([a.SERVICES, b.SERVICES]).toEqual([
      "ghost_db replicated 1\nghost_ghost replicated 1",
      "ghost_db replicated 1\nghost_ghost replicated 2",
    ]);
  });

  test("a closed compose text: the deploy's context (consulted until the stack is opened), never its environment", async () => {
    const s = new SwarmStack("gated", {
      manager,
      stackName: "gated",
      compose: 'ports: "open"\n',
      closedCompose: 'ports: "none"\n',
    });
    await settled();
    const deploy = recordedNamed("gated-deploy").inputs;
    expect(deploy.context).toEqual({ CLOSED_COMPOSE: 'ports: "none"\n' });
    expect(deploy.environment.COMPOSE).toBe('ports: "open"\n');
    expect(deploy.environment.CLOSED_COMPOSE).toBeUndefined();
    expect(s.deployed.urn).toBeDefined();
    expect(recordedNamed("one-portainer-deploy").inputs.context).toBeUndefined();
  });

  test("the deploy waits for the storage it is given", async () => {
    class Mount extends pulumi.CustomResource {
      constructor(name: string) {
        super("test:index:Mount", name, {});
      }
    }
    const storage = new Mount("storage-mount");
    new SwarmStack("stored", { manager, stackName: "stored", compose: "x", dependsOn: [storage] });
    await settled();
    expect(recordedNamed("stored-deploy").dependencies).toContain(recordedNamed("storage-mount").urn);
  });

  test("no secrets, no stdin; bad names and timeouts are refused", async () => {
    const s = new SwarmStack("plain", { manager, stackName: "plain", compose: 'version: "3.8"\nservices: {}\n' });
    await settled();
    expect(recordedNamed("plain-deploy").inputs.stdin).toBeUndefined();
    expect(await valueOf(s.stackName)).toBe("plain");
    expect(() => new SwarmStack("x", { manager, stackName: "Bad Name", compose: "" })).toThrow(/stack name/);
    expect(() => new SwarmStack("y", { manager, stackName: "ok", compose: "", secrets: { "bad name": "v" } })).toThrow(
      /secret base name/,
    );
    expect(() => new SwarmStack("z", { manager, stackName: "ok", compose: "", timeout: 1 })).toThrow(/timeout/);
  });
});
