/**
 * Talking to a real Ghost: the owner the program set up (a session), an integration (Admin + Content API keys),
 * posts through the Admin API (HS256 JWT), reads through the Content API, and what headless
 * Chromium renders.
 */
import { spawn } from "child_process";
import { createHmac } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { sh } from "./lib";

export interface GhostKeys {
  /** Admin API session (staff user's cookie). */
  session: string;
  /** Admin API key of the integration ("id:hexsecret"). */
  admin: string;
  /** Content API key of the integration. */
  content: string;
}

async function call(
  base: string,
  method: string,
  route: string,
  body?: unknown,
  headers: Record<string, string> = {},
  // Ghost's JSON answers are read field by field in the callers; their shapes vary by route.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): Promise<{ status: number; json: any; headers: Headers }> {
  const res = await fetch(`${base}${route}`, {
    method,
    headers: { "Content-Type": "application/json", Origin: base, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let json: any = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json, headers: res.headers };
}

/** The site answers with 200 on its home page. */
export async function homeStatus(base: string): Promise<number> {
  try {
    const res = await fetch(`${base}/`, { signal: AbortSignal.timeout(5_000) });
    return res.status;
  } catch {
    return 0;
  }
}

/** Ghost's owner as the program set it up: the login e-mail and password (stack outputs). */
export interface GhostOwner {
  email: string;
  password: string;
}

/** The owner from the stack's outputs (`ghostOwnerEmail`, `ghostOwnerPassword`, shown with --show-secrets). */
export function ownerFrom(outputs: Record<string, unknown>): GhostOwner {
  const email = outputs.ghostOwnerEmail;
  const password = outputs.ghostOwnerPassword;
  if (typeof email !== "string" || typeof password !== "string") {
    throw new Error("the stack has no ghostOwnerEmail / ghostOwnerPassword outputs: is Ghost enabled?");
  }
  return { email, password };
}

/** Whether Ghost says it is set up (GET .../authentication/setup/): true, false, or the HTTP status. */
export async function setupStatus(base: string): Promise<boolean | number> {
  const r = await call(base, "GET", "/ghost/api/admin/authentication/setup/");
  return r.status === 200 ? Boolean(r.json?.setup?.[0]?.status) : r.status;
}

/** What a stranger gets trying to make themselves the owner: the HTTP status (Ghost set up: 403). */
export async function strangerSetup(base: string): Promise<number> {
  const stranger = { name: "Mallory", email: "mallory@example.net", password: "Stolen-blog-0123", blogTitle: "mine" };
  return (await call(base, "POST", "/ghost/api/admin/authentication/setup/", { setup: [stranger] })).status;
}

/** A staff session (`POST /ghost/api/admin/session/`): the cookie, or the HTTP status Ghost refused it with. */
export async function ownerSession(base: string, owner: GhostOwner): Promise<{ cookie?: string; status: number }> {
  const session = await call(base, "POST", "/ghost/api/admin/session/", {
    username: owner.email,
    password: owner.password,
  });
  if (session.status >= 300) return { status: session.status };
  return { cookie: (session.headers.get("set-cookie") ?? "").split(";")[0]!, status: session.status };
}

/**
 * The owner the program set up (no setup here: the deploy did it before Ghost's port opened),
 * logged in, and an integration whose keys the tests use.
 */
export async function ownerKeys(base: string, owner: GhostOwner): Promise<GhostKeys> {
  const status = await setupStatus(base);
  if (status !== true) throw new Error(`Ghost is not set up after pulumi up (setup route: ${status})`);
  const session = await ownerSession(base, owner);
  if (session.cookie === undefined) throw new Error(`ghost session answered ${session.status} for the owner`);
  const cookie = session.cookie;
  const created = await call(
    base,
    "POST",
    "/ghost/api/admin/integrations/?include=api_keys",
    { integrations: [{ name: `e2e-${Date.now()}` }] },
    { Cookie: cookie },
  );
  if (created.status !== 201)
    throw new Error(`ghost integration answered ${created.status}: ${JSON.stringify(created.json)}`);
  const keys = created.json.integrations[0].api_keys as { type: string; id: string; secret: string }[];
  const admin = keys.find((k) => k.type === "admin")!;
  const content = keys.find((k) => k.type === "content")!;
  return { session: cookie, admin: `${admin.id}:${admin.secret}`, content: content.secret };
}

/** A short HS256 JWT for the Admin API, signed with the integration's admin key. */
export function adminToken(adminKey: string): string {
  const [id, secret] = adminKey.split(":") as [string, string];
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: "HS256", typ: "JWT", kid: id })}.${b64({ iat: now, exp: now + 300, aud: "/admin/" })}`;
  const signature = createHmac("sha256", Buffer.from(secret, "hex")).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

/**
 * An Admin API request sent with the integration's key (a JWT), and sent again with the staff
 * session when Ghost refuses the token (401; seen in the lab: "invalid signature").
 */
export async function asAdmin<T extends { status: number }>(
  keys: GhostKeys,
  send: (auth: Record<string, string>) => Promise<T>,
): Promise<T> {
  const res = await send({ Authorization: `Ghost ${adminToken(keys.admin)}` });
  return res.status === 401 ? send({ Cookie: keys.session }) : res;
}

/** Publishes a post through the Admin API (asAdmin); returns its slug. */
export async function createPost(base: string, keys: GhostKeys, title: string, html: string): Promise<string> {
  const body = { posts: [{ title, html, status: "published" }] };
  const route = "/ghost/api/admin/posts/?source=html";
  const res = await asAdmin(keys, (auth) => call(base, "POST", route, body, auth));
  if (res.status !== 201) throw new Error(`ghost post answered ${res.status}: ${JSON.stringify(res.json)}`);
  return res.json.posts[0].slug as string;
}

/** Reads a post through the Content API; undefined when Ghost does not answer or has no such post. */
export async function readPost(
  base: string,
  keys: GhostKeys,
  slug: string,
): Promise<{ title: string; html: string } | undefined> {
  try {
    const res = await call(base, "GET", `/ghost/api/content/posts/slug/${slug}/?key=${keys.content}`);
    if (res.status !== 200) return undefined;
    return res.json.posts[0];
  } catch {
    return undefined;
  }
}

/**
 * The post's public page, as a reader gets it; undefined when Ghost does not answer. (Polling
 * the Content API instead trips Ghost's brute-force limiter while Ghost is still booting.)
 */
export async function readPage(base: string, slug: string): Promise<string | undefined> {
  try {
    const res = await fetch(`${base}/${slug}/`, { signal: AbortSignal.timeout(5_000) });
    return res.status === 200 ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

/** What headless Chromium renders for a page: the DOM after scripts, and a screenshot file. */
export function render(
  url: string,
  screenshot: string,
  extraFlags: string[] = [],
): { dom: string; screenshot: string } {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-chromium-"));
  const flags = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    `--user-data-dir=${profile}`,
    "--window-size=1280,900",
    "--virtual-time-budget=5000",
    ...extraFlags,
  ];
  try {
    const dom = sh("chromium", [...flags, "--dump-dom", url]);
    if (dom.code !== 0) throw new Error(`chromium --dump-dom failed: ${dom.stderr}`);
    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    const shot = sh("chromium", [...flags, `--screenshot=${screenshot}`, url]);
    if (shot.code !== 0) throw new Error(`chromium --screenshot failed: ${shot.stderr}`);
    return { dom: dom.stdout, screenshot };
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

/** What a watch of Ghost's setup route saw during an update (see `watchGhostSetup`). */
export interface SetupWatch {
  /** Probes sent (every node, every 0.5 s). */
  probes: number;
  /** Probes no Ghost answered (connection refused or timed out): the port was closed there. */
  closed: number;
  /** Answers "set up: false": an unowned setup page anyone on the network could have taken. */
  exposed: { t: number; address: string }[];
  /** When the first answer came that said "set up: true" (ms since the epoch), if one did. */
  firstOwned?: number;
}

/**
 * Watches Ghost's setup route on every address (port `port`) from a process of its own (`pulumi
 * up` blocks this one), every 0.5 s, until `stop`: whether anyone on the network could have seen
 * Ghost without its owner while the update ran.
 */
export function watchGhostSetup(addresses: string[], port: number): { stop: () => SetupWatch } {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-ghost-watch-")), "probes.jsonl");
  const probe = `
const http = require("http"), fs = require("fs");
const [file, port, ...addrs] = process.argv.slice(1);
const route = "/ghost/api/admin/authentication/setup/";
const probe = (a) => new Promise((done) => {
  const req = http.get({ host: a, port: Number(port), path: route, timeout: 2000 }, (res) => {
    let t = "";
    res.on("data", (d) => (t += d));
    res.on("end", () => { let s; try { s = JSON.parse(t).setup[0].status; } catch (_) {} done({ status: res.statusCode, setUp: s }); });
  });
  req.on("error", (e) => done({ error: e.code || e.message })).on("timeout", () => req.destroy(new Error("timeout")));
});
(async () => { for (;;) {
  for (const a of addrs) fs.appendFileSync(file, JSON.stringify({ t: Date.now(), address: a, ...(await probe(a)) }) + "\\n");
  await new Promise((r) => setTimeout(r, 500));
} })();`;
  const child = spawn("node", ["-e", probe, file, String(port), ...addresses], { stdio: "ignore" });
  return {
    stop: () => {
      child.kill();
      const lines = fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n").filter(Boolean) : [];
      type Probe = { t: number; address: string; error?: string; setUp?: boolean };
      // A line being written as the watcher stopped is left out.
      const probes = lines.flatMap((l): Probe[] => {
        try {
          return [JSON.parse(l) as Probe];
        } catch {
          return [];
        }
      });
      return {
        probes: probes.length,
        closed: probes.filter((p) => p.error !== undefined).length,
        exposed: probes.filter((p) => p.setUp === false).map(({ t, address }) => ({ t, address })),
        firstOwned: probes.find((p) => p.setUp === true)?.t,
      };
    },
  };
}
