/**
 * Talking to a real Ghost: owner setup, a session, an integration (Admin + Content API keys),
 * posts through the Admin API (HS256 JWT), reads through the Content API, and what headless
 * Chromium renders.
 */
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

/** Owner setup (first run), a session, and an integration whose keys the tests use. */
export async function setupGhost(base: string): Promise<GhostKeys> {
  const owner = {
    name: "Lab Owner",
    email: "owner@swarmcloud.test",
    password: "Vq8#tundra-Kestrel-5512",
    blogTitle: "swarmcloud lab",
  };
  const setup = await call(base, "POST", "/ghost/api/admin/authentication/setup/", { setup: [owner] });
  if (setup.status !== 201 && setup.status !== 403) {
    throw new Error(`ghost setup answered ${setup.status}: ${JSON.stringify(setup.json)}`);
  }
  const session = await call(base, "POST", "/ghost/api/admin/session/", {
    username: owner.email,
    password: owner.password,
  });
  if (session.status >= 300)
    throw new Error(`ghost session answered ${session.status}: ${JSON.stringify(session.json)}`);
  const cookie = (session.headers.get("set-cookie") ?? "").split(";")[0]!;
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
 * Publishes a post through the Admin API; returns its slug. Authenticates with the
 * integration's key (a JWT), and falls back to the staff session when Ghost refuses the token.
 */
export async function createPost(base: string, keys: GhostKeys, title: string, html: string): Promise<string> {
  const body = { posts: [{ title, html, status: "published" }] };
  const route = "/ghost/api/admin/posts/?source=html";
  let res = await call(base, "POST", route, body, { Authorization: `Ghost ${adminToken(keys.admin)}` });
  if (res.status === 401) res = await call(base, "POST", route, body, { Cookie: keys.session });
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
export function render(url: string, screenshot: string): { dom: string; screenshot: string } {
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
