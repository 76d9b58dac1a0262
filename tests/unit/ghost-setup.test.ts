/**
 * Ghost's owner setup, both halves, without a cluster:
 *
 * - the client (GHOST_SETUP_CLIENT, run by `node -e` in Ghost's image) against a stand-in Ghost
 *   on loopback that answers the setup route as Ghost does: it waits for Ghost, sets up the owner
 *   once, leaves a Ghost already set up alone, and reports Ghost's refusal without the password;
 * - ghost-setup.sh in bash against a stand-in `docker` that keeps what it was asked in files: the
 *   password only ever reaches `docker secret create` on stdin (no command line), the ports are
 *   published and the stack marked opened only after Ghost said it has its owner.
 */
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { publishSpecs } from "../../components/apps";
import { script } from "../../components/remote-scripts";
import { GHOST_OWNER_PASSWORD_FILE, GHOST_SETUP_CLIENT } from "../../stacks/ghost";

const PASSWORD = "Owner-pw-0123456789";
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-ghost-setup-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A Ghost on loopback: 503 for the first `booting` requests, then the setup route as Ghost answers it. */
function fakeGhost(opts: { setUp?: boolean; booting?: number; refuse?: string }) {
  const seen: { method: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  let setUp = opts.setUp ?? false;
  let booting = opts.booting ?? 0;
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      seen.push({ method: req.method!, headers: req.headers, body });
      const send = (status: number, json: unknown) => {
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(json));
      };
      if (req.url !== "/ghost/api/admin/authentication/setup/") return send(404, {});
      if (booting-- > 0) return send(503, { errors: [{ message: "Ghost is starting" }] });
      if (req.method === "GET") return send(200, { setup: [{ status: setUp }] });
      if (setUp) return send(403, { errors: [{ message: "Setup has already been completed." }] });
      if (opts.refuse) {
        // A Ghost that quotes what it got must not get the password into our message.
        return send(422, { errors: [{ message: opts.refuse, context: `not ${JSON.parse(body).setup[0].password}` }] });
      }
      setUp = true;
      return send(201, { users: [{ email: JSON.parse(body).setup[0].email }] });
    });
  });
  return new Promise<{ url: string; seen: typeof seen; close: () => void }>((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      resolve({ url: `http://127.0.0.1:${port}`, seen, close: () => server.close() });
    }),
  );
}

/** Runs the client as ghost-setup.sh's one-shot does (the password in its file); resolves with its output. */
function client(ghost: string): Promise<{ code: number | null; stdout: string }> {
  const file = path.join(dir, "owner_password");
  fs.writeFileSync(file, PASSWORD);
  const text = GHOST_SETUP_CLIENT.split(GHOST_OWNER_PASSWORD_FILE).join(file);
  const env = {
    ...process.env,
    GHOST: ghost,
    URL: "https://blog.example.com",
    OWNER_NAME: "Lab Owner",
    OWNER_EMAIL: "owner@swarmcloud.test",
    BLOG_TITLE: "swarmcloud lab",
  };
  return new Promise((resolve) => {
    const p = spawn("node", ["-e", text], { env });
    let stdout = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.on("close", (code) => resolve({ code, stdout: stdout.trim() }));
  });
}

describe("the setup client (node, in Ghost's image)", () => {
  test("a Ghost without owner, still booting: it waits, then sets up the owner once, as Ghost's public URL", async () => {
    const ghost = await fakeGhost({ booting: 1 });
    try {
      expect(await client(ghost.url)).toEqual({ code: 0, stdout: "SETUP=created" });
      expect(ghost.seen.map((r) => r.method)).toEqual(["GET", "GET", "POST"]);
      const post = ghost.seen[2]!;
      expect(JSON.parse(post.body)).toEqual({
        setup: [{ name: "Lab Owner", email: "owner@swarmcloud.test", password: PASSWORD, blogTitle: "swarmcloud lab" }],
      });
      // As if it came through the blog's URL: Ghost does not redirect it there.
      expect(post.headers.host).toBe("blog.example.com");
      expect(post.headers["x-forwarded-proto"]).toBe("https");
    } finally {
      ghost.close();
    }
  }, 30_000);

  test("a Ghost already set up is left alone: no POST", async () => {
    const ghost = await fakeGhost({ setUp: true });
    try {
      expect(await client(ghost.url)).toEqual({ code: 0, stdout: "SETUP=already" });
      expect(ghost.seen.map((r) => r.method)).toEqual(["GET"]);
    } finally {
      ghost.close();
    }
  });

  test("Ghost refusing the owner: exit 1 with what Ghost said, never the password", async () => {
    const ghost = await fakeGhost({ refuse: "Your password is not secure enough." });
    try {
      const r = await client(ghost.url);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("SETUP=failed Ghost answered 422: Your password is not secure enough.: not [secret]");
      expect(r.stdout).not.toContain(PASSWORD);
    } finally {
      ghost.close();
    }
  });
});

/**
 * A docker that answers ghost-setup.sh's questions from files in $STAND_IN_DIR and logs every
 * call (with its arguments) to docker.log: `secret create` keeps its stdin in secret-<name>;
 * `service logs` prints the file `logs`; the config ghost-opened exists when the file `opened`
 * does; `service inspect --format` prints the file `ports` (how many ports are published).
 */
const DOCKER = [
  'echo "$*" >>"$STAND_IN_DIR/docker.log"',
  'case "$*" in',
  '  "info --format {{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}") echo "active true" ;;',
  '  "service inspect ghost_ghost") echo "[{}]" ;;',
  '  "service ls -q --filter label=com.swarmcloud.setup=ghost") cat "$STAND_IN_DIR/one-shots" 2>/dev/null || true ;;',
  '  "secret ls -q --filter label=com.swarmcloud.setup=ghost") cat "$STAND_IN_DIR/one-shot-secrets" 2>/dev/null || true ;;',
  '  "secret create "*) name=${*: -2:1}; cat >"$STAND_IN_DIR/secret-$name"; echo "$name" >>"$STAND_IN_DIR/one-shot-secrets" ;;',
  '  "service create "*) echo ghost-setup-run >>"$STAND_IN_DIR/one-shots" ;;',
  '  "service ps "*) echo "Complete 2 seconds ago " ;;',
  '  "service logs --raw "*) cat "$STAND_IN_DIR/logs" ;;',
  '  "config inspect ghost-opened") [ -e "$STAND_IN_DIR/opened" ] || { echo "Error: No such config" >&2; exit 1; } ;;',
  '  "service inspect --format "*) cat "$STAND_IN_DIR/ports" ;;',
  '  "service update "*) echo "published" >"$STAND_IN_DIR/published" ;;',
  '  "config create "*) cat >"$STAND_IN_DIR/opened" ;;',
  '  "service rm "* | "secret rm "*) ;;',
  '  *) echo "unexpected: docker $*" >&2; exit 1 ;;',
  "esac",
].join("\n");

const ENV = {
  STACK: "ghost",
  SERVICE: "ghost_ghost",
  NETWORK: "ghost_frontend",
  IMAGE: "ghost:5",
  RESOLVE_IMAGE: "never",
  GHOST: "http://ghost_ghost:2368",
  URL: "http://10.0.0.11:2368",
  OWNER_NAME: "Lab Owner",
  OWNER_EMAIL: "owner@swarmcloud.test",
  BLOG_TITLE: "swarmcloud lab",
  PUBLISH: publishSpecs([{ target: 2368, published: 2368, protocol: "tcp", mode: "host" }]),
  CLIENT: GHOST_SETUP_CLIENT,
  TIMEOUT: "5",
};

/** ghost-setup.sh with the stand-in, the password on stdin; returns its output and the files left. */
function setupStep(files: Record<string, string>) {
  const d = fs.mkdtempSync(path.join(dir, "docker-"));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(d, name), text);
  fs.writeFileSync(path.join(d, "docker"), `#!/usr/bin/env bash\n${DOCKER}\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(d, "hostname"), "#!/usr/bin/env bash\necho manager-1\n", { mode: 0o755 });
  const r = spawnSync("bash", ["-c", script("ghost-setup"), "swarmcloud"], {
    env: { ...process.env, ...ENV, STAND_IN_DIR: d, PATH: `${d}:${process.env.PATH}` },
    input: PASSWORD,
    encoding: "utf8",
  });
  const read = (name: string) => (fs.existsSync(path.join(d, name)) ? fs.readFileSync(path.join(d, name), "utf8") : "");
  const calls = read("docker.log").trim().split("\n");
  return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim(), read, calls, dir: d };
}

describe("ghost-setup.sh", () => {
  test("first deploy: the owner set up by the one-shot, then the ports published and the stack marked opened", () => {
    const r = setupStep({ logs: "SETUP=created\n", ports: "0\n" });
    expect([r.code, r.stdout]).toEqual([0, "owner owner@swarmcloud.test: created; ports published"]);
    // The password: only on the stdin of `docker secret create`, kept by the swarm as a secret.
    const secret = r.calls.find((c) => c.startsWith("secret create"))!;
    const name = secret.split(" ").at(-2)!;
    expect(r.read(`secret-${name}`)).toBe(PASSWORD);
    expect(r.read("docker.log")).not.toContain(PASSWORD);
    const create = r.calls.find((c) => c.startsWith("service create"))!;
    expect(create).toContain(
      `--network ghost_frontend --endpoint-mode dnsrr --restart-condition none --no-resolve-image --secret source=${name},target=ghost_owner_password`,
    );
    expect(create).toContain("--entrypoint node ghost:5 -e");
    const update = r.calls.find((c) => c.startsWith("service update"))!;
    expect(update).toBe(
      "service update --quiet --detach=false --publish-add published=2368,target=2368,protocol=tcp,mode=host ghost_ghost",
    );
    expect(r.read("opened")).toBe("opened\n");
    // The order: the setup's end before the ports, the ports before the mark.
    const at = (prefix: string) => r.calls.findIndex((c) => c.startsWith(prefix));
    expect(at("service logs")).toBeLessThan(at("service update"));
    expect(at("service update")).toBeLessThan(at("config create"));
    // The one-shot and its secret go.
    expect(r.calls).toEqual(expect.arrayContaining(["service rm ghost-setup-run", `secret rm ${name}`]));
  });

  test("a Ghost already set up and opened: nothing published, nothing marked", () => {
    const r = setupStep({ logs: "SETUP=already\n", ports: "1\n", opened: "opened\n" });
    expect([r.code, r.stdout]).toEqual([0, "owner owner@swarmcloud.test: already set up; ports were open"]);
    expect(r.calls.some((c) => c.startsWith("service update") || c.startsWith("config create"))).toBe(false);
  });

  test("a stack deployed before the setup step existed (ports already published): marked opened, not published again", () => {
    const r = setupStep({ logs: "SETUP=created\n", ports: "1\n" });
    expect(r.stdout).toBe("owner owner@swarmcloud.test: created; ports were open");
    expect(r.calls.some((c) => c.startsWith("service update"))).toBe(false);
    expect(r.read("opened")).toBe("opened\n");
  });

  test("Ghost refusing the owner: the step fails with Ghost's words, the ports stay unpublished, nothing marked", () => {
    const r = setupStep({
      logs: "SETUP=failed Ghost answered 422: Your password is not secure enough.\n",
      ports: "0\n",
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Ghost's owner could not be set up");
    expect(r.stderr).toContain("Ghost answered 422: Your password is not secure enough.");
    expect(r.stderr).toContain("Ghost's ports stay unpublished until it is");
    expect(r.read("published") + r.read("opened")).toBe("");
    expect(r.calls).toContain("service rm ghost-setup-run");
  });
});
