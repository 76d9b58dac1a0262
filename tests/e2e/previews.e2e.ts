/**
 * `pulumi preview` of the stack files people start from, through the real engine: a missing
 * credential ends in a message that names the key and the command that sets it, not a stack
 * trace. Runs in a copy of the project, so stack init never touches the committed stack files.
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
  for (const d of ["components", "stacks", "node-image"])
    fs.cpSync(path.join(REPO, d), path.join(project, d), { recursive: true });
  fs.symlinkSync(path.join(REPO, "node_modules"), path.join(project, "node_modules"));
}, 900_000);

afterAll(() => fs.rmSync(project, { recursive: true, force: true }));

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
  });
  for (const n of ["pinode01", "pinode02", "pinode03", "pinode04"])
    expect(text).toContain(`swarmcloud:host:DockerHost pi-${n}`);
  expect(text).toContain("swarmcloud:stack:SwarmStack pi-ghost");
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
