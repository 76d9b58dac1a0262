/**
 * `pulumi preview` of the stack files people start from, through the real engine: a missing
 * credential ends in a message that names the key and the command that sets it, not a stack
 * trace; and the README's first run, read from the README itself, works with a fresh Pulumi home.
 * Runs in a copy of the project, so stack init never touches the committed stack files.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { engineBin, PulumiCli, REPO, sh } from "./lib";

let project: string;
let bin: string;

beforeAll(() => {
  bin = engineBin();
  project = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-project-"));
  for (const f of [
    "Pulumi.yaml",
    "Pulumi.pi.yaml",
    "Pulumi.do.yaml",
    "Pulumi.dev.yaml",
    "Pulumi.local.yaml",
    "package.json",
    "tsconfig.json",
    "index.ts",
  ]) {
    fs.copyFileSync(path.join(REPO, f), path.join(project, f));
  }
  for (const d of ["components", "stacks", "node-image", "tools"])
    fs.cpSync(path.join(REPO, d), path.join(project, d), { recursive: true });
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(project, "node_modules"));
}, 900_000);

afterAll(() => fs.rmSync(project, { recursive: true, force: true }));

/**
 * The README's "Run it" block, made to run here for STACK: `npm ci` is left out (the copy links
 * this checkout's node_modules) and `pulumi up` becomes `pulumi preview` (no stack can be
 * deployed here); every other word is the README's, with `local` replaced by STACK.
 */
function firstRunScript(readme: string, stack: string): string {
  const section = readme.split(/^## /m).find((s) => s.startsWith("Run it\n"));
  const block = section && /^```sh\n([\s\S]*?)^```$/m.exec(section)?.[1];
  if (!block) throw new Error('README.md: no ```sh block in the "Run it" section');
  const commands = block
    .split(" && ")
    .join("\n")
    .split("\n")
    .filter((c) => c.trim() !== "");
  if (!commands.includes("npm ci")) throw new Error(`README.md's first run no longer starts with npm ci:\n${block}`);
  return commands
    .filter((c) => c !== "npm ci")
    .map((c) => c.replace(/\blocal\b/g, stack).replace(/^pulumi up /, "pulumi preview "))
    .join("\n");
}

/** A person's environment with a fresh home and Pulumi home: no login, no passphrase, no stack. */
function freshEnv(home: string): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("PULUMI_") && !k.startsWith("npm_")),
  );
  return {
    ...env,
    HOME: home,
    PULUMI_HOME: path.join(home, ".pulumi"),
    PATH: `${bin}:${process.env.PATH ?? ""}`,
    // What this machine needs, not the person: no update check, no plugin downloads (the pi
    // stack needs none), no npm registry call from `npm run`, and no type check per run.
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_NODEJS_TRANSPILE_ONLY: "true",
    npm_config_update_notifier: "false",
  };
}

test("the README's first run, for pi: setup logs in to a folder, writes a passphrase, makes the stack; preview names the missing key", () => {
  const script = firstRunScript(fs.readFileSync(path.join(REPO, "README.md"), "utf8"), "pi");
  expect(script).toContain("npm run setup -- pi");
  expect(script).toMatch(/^pulumi preview --stack pi$/m);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-firstrun-"));
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-firstrun-project-"));
  try {
    // A project copy of its own: stack init writes the stack's encryptionsalt into Pulumi.pi.yaml.
    fs.cpSync(project, copy, { recursive: true, verbatimSymlinks: true });
    fs.copyFileSync(path.join(REPO, "Pulumi.pi.yaml"), path.join(copy, "Pulumi.pi.yaml"));
    const env = freshEnv(home);
    const run = () => {
      const r = sh("bash", ["-euo", "pipefail", "-c", script], { env, cwd: copy });
      return { code: r.code, text: r.stdout + r.stderr };
    };
    const first = run();
    expect(first.text).toContain("setup: the Pulumi CLI is logged in nowhere");
    expect(first.text).toContain("Created stack 'pi'");
    expect(first.text).toContain("swarmcloud:sshPrivateKey");
    expect(first.text).toContain("pulumi config set --secret swarmcloud:sshPrivateKey");
    expect(first.text).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$/m);
    expect(first.code).not.toBe(0);

    const passphraseFile = path.join(home, ".config", "swarmcloud", "passphrase");
    const passphrase = fs.readFileSync(passphraseFile, "utf8").trim();
    expect(passphrase.length).toBeGreaterThanOrEqual(32);
    expect(fs.statSync(passphraseFile).mode & 0o777).toBe(0o600);
    expect(first.text).not.toContain(passphrase);
    const whoami = sh("pulumi", ["whoami", "--verbose", "--non-interactive"], { env, cwd: copy });
    expect(whoami.stdout).toContain(`Backend URL: file://${path.join(home, ".pulumi-swarmcloud")}`);
    expect(fs.readFileSync(path.join(copy, "Pulumi.pi.yaml"), "utf8")).toMatch(/^encryptionsalt: v1:/m);

    // Run again, as a person would: nothing is redone, the same passphrase is kept.
    const second = run();
    expect(second.text).toContain("(kept)");
    expect(second.text).not.toContain("Created stack");
    expect(second.text).not.toContain("logged in nowhere");
    expect(second.text).toContain("pulumi config set --secret swarmcloud:sshPrivateKey");
    expect(second.code).not.toBe(0);
    expect(fs.readFileSync(passphraseFile, "utf8").trim()).toBe(passphrase);
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
    fs.rmSync(copy, { recursive: true, force: true });
  }
});

function preview(stack: string, secrets: Record<string, string> = {}): { code: number; text: string } {
  const cli = new PulumiCli(stack, bin);
  const env = { ...cli.env };
  sh("pulumi", ["stack", "init", stack, "--non-interactive"], { env, cwd: project });
  for (const [k, v] of Object.entries(secrets)) {
    sh("pulumi", ["config", "set", "--secret", k, "--stack", stack, "--non-interactive"], {
      env,
      cwd: project,
      input: v,
    });
  }
  const r = sh("pulumi", ["preview", "--stack", stack, "--non-interactive"], { env, cwd: project });
  return { code: r.code, text: r.stdout + r.stderr };
}

test("pi without an SSH key: the message names swarmcloud:sshPrivateKey and how to set it", () => {
  const { code, text } = preview("pi");
  expect(code).not.toBe(0);
  expect(text).toContain("swarmcloud:sshPrivateKey");
  expect(text).toContain("pulumi config set --secret swarmcloud:sshPrivateKey");
  expect(text).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$/m);
});

test("pi with a key (and the passwords: no random provider here): the program plans every node and app", () => {
  const { code, text } = preview("pi", {
    "swarmcloud:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nlab\n-----END OPENSSH PRIVATE KEY-----\n",
    "swarmcloud:ghostDbPassword": "preview-ghost-db",
    "swarmcloud:dbRootPassword": "preview-db-root",
    "swarmcloud:portainerAdminPassword": "preview-portainer",
    "swarmcloud:ghostOwnerPassword": "preview-ghost-owner",
  });
  for (const n of ["pinode01", "pinode02", "pinode03", "pinode04"])
    expect(text).toContain(`swarmcloud:host:DockerHost pi-${n}`);
  expect(text).toContain("swarmcloud:stack:SwarmStack pi-ghost");
  // Ghost's owner set up by a step of its own; Portainer's agent secret made by the program.
  expect(text).toContain("swarmcloud:RemoteScript pi-ghost-setup");
  expect(text).toContain("swarmcloud:GeneratedSecret pi-portainer-agent-secret");
  expect(text).toMatch(/\+ \d+ to create/);
  expect(code).toBe(0);
});

test("do without a token: the message names digitalocean:token", () => {
  const { code, text } = preview("do");
  expect(code).not.toBe(0);
  expect(text).toContain("digitalocean:token");
  expect(text).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$/m);
});

test("do with a token but no key pair: the message names the SSH keys", () => {
  const { code, text } = preview("do", { "digitalocean:token": "dop_v1_lab" });
  expect(code).not.toBe(0);
  expect(text).toContain("swarmcloud:sshPublicKey");
  expect(text).toContain("swarmcloud:sshPrivateKey");
});
