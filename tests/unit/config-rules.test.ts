/**
 * Rules that have one home in components/config.ts and are used elsewhere too: the published
 * ports (the DigitalOcean firewall), the dnsrr/ingress rule (stacks/compose.ts), the credentials
 * index.ts used to check one at a time; and that no message shows the value of a secret key.
 */
import {
  appPorts,
  editDistance,
  parseConfig,
  SECRET_KEYS,
  type ConfigInputs,
  type RawConfig,
} from "../../components/config";
import { networkingErrors } from "../../stacks/compose";

const WITH_KEY: ConfigInputs = { sshPrivateKey: true };

describe("the dnsrr/ingress rule in the config report", () => {
  test.each(["ghost", "portainer"])("%s.endpointMode dnsrr with publishMode ingress is refused", (app) => {
    const { errors } = parseConfig({ [app]: { endpointMode: "dnsrr" } }, WITH_KEY);
    expect(errors).toEqual([
      `swarmcloud:${app}.endpointMode = "dnsrr": cannot be combined with ${app}.publishMode ingress ` +
        `(Docker refuses ingress-published ports on a dnsrr service); set ${app}.publishMode: host, or ${app}.endpointMode: vip`,
    ]);
    // The config report and the stack specs say the same thing, from one function.
    expect(errors).toEqual(networkingErrors(app, { publishMode: "ingress", endpointMode: "dnsrr" }));
  });

  test.each(["ghost", "portainer"])("%s: dnsrr with host mode, or a disabled app, is fine", (app) => {
    expect(parseConfig({ [app]: { endpointMode: "dnsrr", publishMode: "host" } }, WITH_KEY).errors).toEqual([]);
    expect(parseConfig({ [app]: { endpointMode: "dnsrr", enabled: false } }, WITH_KEY).errors).toEqual([]);
  });
});

describe("appPorts: the ports the apps publish", () => {
  const config = (raw: RawConfig) => parseConfig(raw, WITH_KEY).config;

  test("Ghost's port (for everyone) and Portainer's HTTPS port (for admins) by default, with the keys that set them", () => {
    expect(appPorts(config({}))).toEqual([
      ["ghost.port", 2368, "public"],
      ["portainer.httpsPort", 9443, "admin"],
    ]);
  });

  test("Portainer's HTTP port when set; nothing of a disabled app", () => {
    expect(appPorts(config({ portainer: { httpPort: 9000 } }))).toEqual([
      ["ghost.port", 2368, "public"],
      ["portainer.httpsPort", 9443, "admin"],
      ["portainer.httpPort", 9000, "admin"],
    ]);
    expect(appPorts(config({ ghost: { enabled: false }, portainer: { httpPort: 9000 } }))).toEqual([
      ["portainer.httpsPort", 9443, "admin"],
      ["portainer.httpPort", 9000, "admin"],
    ]);
    expect(appPorts(config({ portainer: { enabled: false, httpPort: 9000 } }))).toEqual([
      ["ghost.port", 2368, "public"],
    ]);
  });

  test("the port check covers every app port: Portainer's HTTP port on Ghost's is refused", () => {
    expect(parseConfig({ portainer: { httpPort: 2368 } }, WITH_KEY).errors).toEqual([
      "swarmcloud:portainer.httpPort = 2368: port 2368 is already taken by ghost.port; pick another port",
    ]);
  });
});

describe("DigitalOcean credentials are part of the one report", () => {
  const TOKEN =
    "digitalocean:token = (not set): the digitalocean environment needs an API token: " +
    "pulumi config set --secret digitalocean:token (or export DIGITALOCEAN_TOKEN)";
  const KEY_PAIR =
    "the digitalocean environment needs an SSH key pair: " +
    'pulumi config set swarmcloud:sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)" and ' +
    "pulumi config set --secret swarmcloud:sshPrivateKey < ~/.ssh/id_ed25519";
  const DO: RawConfig = {
    environment: "digitalocean",
    sshPublicKey: "ssh-ed25519 AAAA me@laptop",
    digitalocean: { adminCidrs: ["203.0.113.7/32"] },
  };
  const ALL: ConfigInputs = { sshPrivateKey: true, digitaloceanToken: true };

  test("with token, key pair and admin CIDRs there is nothing to report", () => {
    expect(parseConfig(DO, ALL).errors).toEqual([]);
  });

  test("a missing token names digitalocean:token and how to set it", () => {
    expect(parseConfig(DO, { sshPrivateKey: true }).errors).toEqual([TOKEN]);
    expect(parseConfig(DO, { sshPrivateKey: true, digitaloceanToken: false }).errors).toEqual([TOKEN]);
  });

  test("a missing half of the key pair names that key, and the fix names both", () => {
    expect(parseConfig({ ...DO, sshPublicKey: undefined }, ALL).errors).toEqual([
      `swarmcloud:sshPublicKey = (not set): ${KEY_PAIR}`,
    ]);
    expect(parseConfig({ ...DO, sshPublicKey: "" }, ALL).errors).toEqual([
      `swarmcloud:sshPublicKey = (not set): ${KEY_PAIR}`,
    ]);
    expect(parseConfig(DO, { ...ALL, sshPrivateKey: false }).errors).toEqual([
      `swarmcloud:sshPrivateKey = (not set): ${KEY_PAIR}`,
    ]);
  });

  test("token, key pair and admin CIDRs missing: all three at once", () => {
    const { errors } = parseConfig({ environment: "digitalocean" }, { sshPrivateKey: false });
    expect(errors).toEqual([
      TOKEN,
      `swarmcloud:sshPublicKey = (not set): ${KEY_PAIR}`,
      expect.stringMatching(/^swarmcloud:digitalocean\.adminCidrs = \[\]: the program provisions droplets/),
    ]);
  });

  test("other environments need neither", () => {
    expect(parseConfig({}, { sshPrivateKey: false }).errors).toEqual([]);
    expect(parseConfig({ environment: "vagrant" }, { sshPrivateKey: false }).errors).toEqual([]);
  });
});

describe("no message shows a secret value", () => {
  const VALUE = "hunter2-do-not-print";
  const known = (m: string) => m.slice(m.indexOf(": ") + 2);

  test("a mistyped key stored as a secret shows [secret]", () => {
    const { errors } = parseConfig({ ghostDbPasword: VALUE }, { ...WITH_KEY, secretKeys: ["ghostDbPasword"] });
    expect(errors).toEqual([`swarmcloud:ghostDbPasword = [secret]: ${known(errors[0]!)}`]);
    expect(errors[0]).toContain("unknown setting; known settings here: environment,");
    expect(errors.join("\n")).not.toContain(VALUE);
  });

  test("a key named like a secret shows [secret] even when stored in plaintext", () => {
    for (const raw of [
      { portainerAdminPasword: VALUE },
      { ghost: { dbPassword: VALUE } },
      { sshPrivatekey: VALUE },
      { dbRootPassw0rd: VALUE },
      { ghost: { dbRootPasword: VALUE } },
      { digitalocean: { token: VALUE } },
    ]) {
      const { errors } = parseConfig(raw, WITH_KEY);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/^swarmcloud:[\w.]+ = \[secret\]: unknown setting/);
      expect(errors[0]).not.toContain(VALUE);
    }
  });

  test("every value below a key stored as a secret shows [secret], whatever the check", () => {
    const secretKeys = ["gluster"];
    const { errors } = parseConfig(
      { gluster: { replcia: VALUE, brickPath: `relative/${VALUE}`, arbiter: VALUE } },
      { ...WITH_KEY, secretKeys },
    );
    expect(errors).toHaveLength(3);
    for (const e of errors) expect(e).toMatch(/^swarmcloud:gluster\.\w+ = \[secret\]: /);
    expect(errors.join("\n")).not.toContain(VALUE);
  });

  test("other keys still show their value, and a missing secret still says (not set)", () => {
    expect(parseConfig({ manager: 3 }, { ...WITH_KEY, secretKeys: ["gluster"] }).errors[0]).toMatch(
      /^swarmcloud:manager = 3: /,
    );
    expect(parseConfig({ environment: "ssh", nodes: [] }, { sshPrivateKey: false }).errors).toContain(
      "swarmcloud:sshPrivateKey = (not set): the ssh environment needs a private key: pulumi config set --secret swarmcloud:sshPrivateKey < ~/.ssh/id_ed25519",
    );
  });
});

describe("the secret settings", () => {
  test.each(SECRET_KEYS)("%s is a known setting (index.ts reads it as a secret)", (key) => {
    expect(parseConfig({ [key]: "x" }, WITH_KEY).errors).toEqual([]);
  });

  test("editDistance counts inserts, deletes and substitutions", () => {
    expect(editDistance("ghostDbPassword", "ghostDbPassword")).toBe(0);
    expect(editDistance("ghostDbPasword", "ghostDbPassword")).toBe(1);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
  });
});
