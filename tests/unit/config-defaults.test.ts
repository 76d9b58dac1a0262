/**
 * Pulumi.yaml declares a default for every swarmcloud:* setting, and the engine hands those
 * defaults to the program whenever a stack does not set the key. components/config.ts keeps its
 * own copy in DEFAULTS, used when a stack sets an object such as swarmcloud:ghost only in part
 * (Pulumi replaces the whole default object then, it does not merge). These tests fail when the
 * two copies differ, so a default is changed in both places or not at all.
 */
import * as fs from "fs";
import * as yaml from "js-yaml";
import * as path from "path";
import { DEFAULTS, parseConfig } from "../../components/config";

interface Declaration {
  default?: unknown;
}

/** The defaults Pulumi.yaml declares, keyed without the `swarmcloud:` prefix. */
function declaredDefaults(): Record<string, unknown> {
  const project = yaml.load(fs.readFileSync(path.join(__dirname, "../../Pulumi.yaml"), "utf8")) as {
    config: Record<string, Declaration>;
  };
  const defaults: Record<string, unknown> = {};
  for (const [key, declaration] of Object.entries(project.config)) {
    if (key.startsWith("swarmcloud:") && declaration.default !== undefined) {
      defaults[key.slice("swarmcloud:".length)] = declaration.default;
    }
  }
  return defaults;
}

/**
 * What each Pulumi.yaml default must be, in terms of config.ts. Settings that are not in DEFAULTS
 * have a fixed value whose meaning the parser supplies: an empty string or list means "not set".
 */
const EXPECTED: Record<string, unknown> = {
  // parseConfig's fallback; the parse comparison below checks that they agree.
  environment: "local",
  managers: DEFAULTS.managers,
  workers: DEFAULTS.workers,
  // Empty: nodes are generated from managers and workers.
  nodes: [],
  // Empty: the environment's default user (DEFAULT_SSH_USER).
  sshUser: "",
  sshPort: DEFAULTS.sshPort,
  // Empty: no key. The passwords: generated with @pulumi/random.
  sshPrivateKey: "",
  sshPublicKey: "",
  ghostDbPassword: "",
  dbRootPassword: "",
  portainerAdminPassword: "",
  ghostOwnerPassword: "",
  backupPassword: "",
  backupSftpKey: "",
  backupS3AccessKeyId: "",
  backupS3SecretAccessKey: "",
  local: DEFAULTS.local,
  vagrant: DEFAULTS.vagrant,
  digitalocean: DEFAULTS.digitalocean,
  // encryptOverlay (false) is left out, so that the parser sees whether a stack set it (the warning on ssh and vagrant).
  swarm: (({ encryptOverlay: _, ...rest }) => rest)(DEFAULTS.swarm),
  // DEFAULTS.gluster.options is merged under the user's options, so Pulumi.yaml declares none.
  gluster: { ...DEFAULTS.gluster, options: {} },
  ghost: DEFAULTS.ghost,
  portainer: DEFAULTS.portainer,
  edge: DEFAULTS.edge,
  // enabled is left out: unset, backups follow ghost.enabled (the parser sees whether a stack set it).
  backup: (({ enabled: _, ...rest }) => rest)(DEFAULTS.backup),
  upgrade: DEFAULTS.upgrade,
  deployTimeout: DEFAULTS.deployTimeout,
};

describe("Pulumi.yaml defaults and DEFAULTS (components/config.ts)", () => {
  const declared = declaredDefaults();

  test("every setting in DEFAULTS has a default in Pulumi.yaml", () => {
    const missing = Object.keys(DEFAULTS).filter((key) => !(key in declared));
    expect(missing).toEqual([]);
  });

  test("every default in Pulumi.yaml is listed here (add new settings to EXPECTED)", () => {
    expect(Object.keys(declared).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  test.each(Object.keys(EXPECTED))("swarmcloud:%s has the same default on both sides", (key) => {
    expect(declared[key]).toEqual(EXPECTED[key]);
  });

  test("the config parsed from Pulumi.yaml's defaults equals the config parsed from no values", () => {
    const fromYaml = parseConfig(declared, { sshPrivateKey: false });
    const fromNothing = parseConfig({}, { sshPrivateKey: false });
    expect(fromYaml.errors).toEqual([]);
    expect(fromYaml.config).toEqual(fromNothing.config);
  });
});
