/**
 * The lab's Portainer stand-in (tests/lab/images/portainer-standin/standin.py, LAB ONLY) as the
 * lab runs it, on loopback: the agent takes its secret the way the compose file gives it to
 * Portainer's agent (`@FILE` of arguments holding `--secret=...`) and serves only requests signed
 * Portainer's way with it; the server, AGENT_SECRET in its environment, signs so. The security
 * suite's row "the agent without the secret: refused" stands on this. Needs python3 and openssl.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { agentArgs } from "../../stacks/portainer";

const STANDIN = path.join(__dirname, "..", "lab", "images", "portainer-standin", "standin.py");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-standin-"));
const running: ChildProcess[] = [];

/** A TCP port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts the stand-in; resolves once it listens on `port`. */
async function start(args: string[], env: Record<string, string>, port: number): Promise<void> {
  const p = spawn("python3", [STANDIN, ...args], { env: { ...process.env, ...env }, stdio: "ignore" });
  running.push(p);
  for (let i = 0; i < 100; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1", () => resolve(s.end() && true)).on("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the stand-in did not listen on ${port}`);
}

/** `portainer-standin probe`: the HTTP status the agent answers. */
function probe(port: number, route: string, how: string[]): string {
  const r = spawnSync("python3", [STANDIN, "probe", `https://127.0.0.1:${port}${route}`, ...how], { encoding: "utf8" });
  return r.stdout.trim().split(" ")[1] ?? `failed: ${r.stderr}`;
}

afterAll(() => {
  for (const p of running) p.kill();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("an agent given the secret as the compose file gives it (@/run/secrets/portainer_agent_args)", () => {
  let agent = 0;
  beforeAll(async () => {
    agent = await freePort();
    fs.writeFileSync(path.join(dir, "args"), agentArgs("s3cr3t-0123"));
    await start([`@${path.join(dir, "args")}`, "--port", String(agent)], { STANDIN_ROLE: "agent" }, agent);
  }, 30_000);

  test("refuses a request without a signature and one signed with another secret; /ping stays open", () => {
    expect(probe(agent, "/info", ["--no-signature"])).toBe("403");
    expect(probe(agent, "/info", ["--secret", "another"])).toBe("403");
    expect(probe(agent, "/", ["--no-signature"])).toBe("403");
    expect(probe(agent, "/ping", ["--no-signature"])).toBe("204");
  });

  test("serves a request signed with the secret, by any key", () => {
    expect(probe(agent, "/info", ["--secret", "s3cr3t-0123"])).toBe("200");
    expect(probe(agent, "/info", ["--secret", "s3cr3t-0123"])).toBe("200");
  });

  test("the server with AGENT_SECRET in its environment signs so: every agent behind -H authorized", async () => {
    const [http, https] = [await freePort(), await freePort()];
    fs.writeFileSync(path.join(dir, "pw"), "admin-pw-0123456789\n");
    const args = ["-H", `tcp://127.0.0.1:${agent}`, "--tlsskipverify", "--admin-password-file", path.join(dir, "pw")];
    const more = ["--data", path.join(dir, "data"), "--bind", `:${http}`, "--bind-https", `:${https}`];
    await start([...args, ...more], { AGENT_SECRET: "s3cr3t-0123" }, https);
    const r = spawnSync("curl", ["-sk", `https://127.0.0.1:${https}/api/standin/agents`], { encoding: "utf8" });
    expect(JSON.parse(r.stdout)).toMatchObject({
      signedWithSecret: true,
      agents: [{ address: "127.0.0.1", reachable: true, authorized: true, infoStatus: 200 }],
    });
  }, 30_000);
});

describe("an agent without a secret (as before: Portainer's agent trusts the first key that signs)", () => {
  test("the first signed request is served, another key after it refused", async () => {
    const agent = await freePort();
    await start(["--port", String(agent)], { STANDIN_ROLE: "agent" }, agent);
    expect(probe(agent, "/info", ["--no-signature"])).toBe("403");
    expect(probe(agent, "/info", [])).toBe("200");
    expect(probe(agent, "/info", [])).toBe("403");
  }, 30_000);
});
