/**
 * Application updates, measured (issue 20, items 1 and 3 (a), (b)): 1 manager + 2 workers, Ghost
 * at 2 replicas behind the product's front door (keepalived's floating address on the two
 * workers, labelled edge=true, Caddy with its internal CA), a load loop asking for the home page
 * over HTTPS every 100 ms, each on a new connection:
 *
 * (a) Ghost's image changed to the same build under a new tag (`docker tag` on every node: no
 *     registry here): the preview is one changed line of the compose file and says each
 *     service's update order; `pulumi up` replaces both Ghost tasks start-first, the database
 *     untouched: 0 failed requests.
 * (b) an image that fails at start (the lab Ghost with an entrypoint that exits 1, built on every
 *     node): Swarm rolls the update back, the old tasks keep serving (0 failed requests), and
 *     `pulumi up` fails naming the service and the task's error.
 *
 * Then a config that asks the database to update start-first is refused by the real engine
 * before anything runs. `npm run test:upgrades`.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as https from "https";
import * as path from "path";
import {
  anyManager,
  changes,
  diagnostics,
  engineBin,
  inventory,
  Inventory,
  lab,
  LAB_IMAGES,
  LAB_OWNER,
  LAB_PASSWORDS,
  labConfig,
  onNode,
  PreviewStep,
  PulumiCli,
  REPO,
  Report,
  runOnNode,
  sh,
  waitFor,
} from "./lib";
import { LoadLoop, LoadResult } from "./load";

const STACK = "lab-upgrades";
const CADDY_IMAGE = "swarmcloud-lab/caddy:lab";
/** The lab Ghost under a second tag: a new image name for Swarm, the same build (issue 20, 3 (a)). */
const NEW_TAG = "swarmcloud-lab/ghost:lab-v2";
/** The lab Ghost whose entrypoint exits 1 at once: a release that never comes up (issue 20, 3 (b)). */
const BROKEN = "swarmcloud-lab/ghost:lab-broken";
const BROKEN_MESSAGE = "swarmcloud lab: this Ghost release is broken, it exits at start";
const EDGE_NODES = ["worker-1", "worker-2"];
const WITH_EDGE = { ...process.env, WITH_EDGE: "1" };
const BUILD = path.join(REPO, "tests/lab/images/build.sh");
const report = new Report("upgrades");

let cli: PulumiCli;
let inv: Inventory;
/** The front door: its URL (the floating address) and the root certificate of Caddy's internal CA. */
const door = { url: "", vip: "", root: "" };

/** One GET of the front door's home page, the stack's root trusted: status and body. */
function home(timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      `${door.url}/`,
      { ca: [door.root], agent: false, headers: { Connection: "close" }, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (d: Buffer) => chunks.push(d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

const served = (status: number, body: string) => status === 200 && body.includes(LAB_OWNER.blogTitle);

/** The lab config with Ghost at 2 replicas behind the front door, Ghost's image (and more Ghost settings) as given. */
function configure(ghost: Record<string, unknown> = {}): void {
  const labels = Object.fromEntries(EDGE_NODES.map((n) => [n, { edge: "true" }]));
  const cfg = labConfig(inv, { apps: true, ghostReplicas: 2, labels });
  cfg.ghost = { ...(cfg.ghost as Record<string, unknown>), ...ghost };
  cfg.edge = { enabled: true, address: door.vip, holders: "labelled", image: CADDY_IMAGE };
  cli.setConfig(cfg);
}

/** `docker service inspect` of a field (a Go template) on a manager. */
function inspect(service: string, template: string): string {
  return onNode(anyManager(), `docker service inspect --format '${template}' ${service}`);
}

/** The running Ghost tasks: `<task id> <image>` lines, sorted. */
function ghostTasks(): string[] {
  const out = onNode(
    anyManager(),
    "docker service ps ghost_ghost --no-trunc --filter desired-state=running --format '{{.ID}} {{.Image}} {{.CurrentState}}'",
  );
  return out
    .split("\n")
    .filter((l) => / Running /.test(` ${l} `))
    .map((l) => l.split(" ").slice(0, 2).join(" "))
    .sort();
}

/** Runs `body` with the load loop on (5 s before and after it); the counts go in the report under `key`. */
async function underLoad<T>(key: string, body: () => Promise<T> | T): Promise<{ result: T; load: LoadResult }> {
  const loop = new LoadLoop(`${door.url}/`, served, { intervalMs: 100, maxSeconds: 900, ca: [door.root] });
  loop.start();
  await new Promise((r) => setTimeout(r, 5_000));
  let result: T | undefined;
  let error: unknown;
  try {
    result = await body();
  } catch (err) {
    error = err;
  }
  await new Promise((r) => setTimeout(r, 5_000));
  const load = await loop.stop();
  report.set(key, { ...load, failures: load.failures.slice(0, 10) });
  report.write();
  console.log(`upgrades ${key}: ${load.sent} requests in ${load.seconds.toFixed(1)} s, ${load.failed} failed`);
  if (error !== undefined) throw error;
  return { result: result as T, load };
}

/**
 * `pulumi up` without blocking the event loop (PulumiCli's methods wait synchronously, which
 * would stop the load loop's timer for the whole update): exit code, seconds, everything printed.
 */
function upAsync(): Promise<{ code: number; seconds: number; output: string }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const args = ["up", "--yes", "--skip-preview", "--parallel", "64", "--stack", cli.stack, "--non-interactive"];
    const p = spawn("pulumi", args, { cwd: REPO, env: cli.env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    p.stdout.on("data", (d: Buffer) => (output += d.toString("utf8")));
    p.stderr.on("data", (d: Buffer) => (output += d.toString("utf8")));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code: code ?? -1, seconds: (Date.now() - t0) / 1000, output }));
  });
}

/** `pulumi preview --json`: the steps and every diagnostic's message. */
function previewJson(): { steps: PreviewStep[]; messages: string[] } {
  const out = cli.must(["preview", "--json", "--parallel", "64"]);
  const parsed = JSON.parse(out) as { steps?: PreviewStep[]; diagnostics?: { message?: string }[] };
  return { steps: parsed.steps ?? [], messages: (parsed.diagnostics ?? []).map((d) => d.message ?? "") };
}

/**
 * Shell for a node: NEW_TAG is the lab Ghost tagged again; BROKEN is the lab Ghost with an
 * entrypoint (the one the compose file's wrapper hands over to) that prints BROKEN_MESSAGE and
 * exits 1, built with COPY only (nothing runs in the build).
 */
function testImages(): string {
  return [
    "set -euo pipefail",
    `docker tag ${LAB_IMAGES.ghost} ${NEW_TAG}`,
    "dir=$(mktemp -d)",
    `printf '%s\\n' 'FROM ${LAB_IMAGES.ghost}' 'COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh' >"$dir/Dockerfile"`,
    `printf '%s\\n' '#!/bin/sh' 'echo "${BROKEN_MESSAGE}" >&2' 'exit 1' >"$dir/docker-entrypoint.sh"`,
    'chmod 755 "$dir/docker-entrypoint.sh"',
    `docker build -q -t ${BROKEN} "$dir" >/dev/null`,
    'rm -rf "$dir"',
    `docker image inspect --format '{{.Id}}' ${NEW_TAG} ${BROKEN} >/dev/null`,
  ].join("\n");
}

beforeAll(() => {
  const bin = engineBin();
  lab("engine");
  lab("image");
  const t0 = Date.now();
  const built = sh("bash", [BUILD, "all"], { env: WITH_EDGE });
  if (built.code !== 0) throw new Error(`lab images: ${built.stderr}${built.stdout}`);
  report.set("labImagesSeconds", (Date.now() - t0) / 1000);
  lab("down");
  lab("up", "1", "2");
  const t1 = Date.now();
  const loaded = sh("bash", [BUILD, "load-inventory"], { env: WITH_EDGE });
  if (loaded.code !== 0) throw new Error(`loading lab images: ${loaded.stderr}${loaded.stdout}`);
  inv = inventory();
  // The two images of the test, made on every node from the lab Ghost (there is no registry).
  for (const node of inv.nodes) {
    const r = runOnNode(node, testImages());
    if (r.code !== 0) throw new Error(`${node.name}: the test images: ${r.stderr}${r.stdout}`);
  }
  report.set("imageLoadSeconds", (Date.now() - t1) / 1000);
  // The floating address: one the lab network has free (nodes are .11-.229, the stranger .250).
  door.vip = `${inv.nodes[0]!.address.split(".").slice(0, 3).join(".")}.240`;
  door.url = `https://${door.vip}`;
  cli = new PulumiCli(STACK, bin);
  cli.init();
  configure();
  cli.setSecret("sshPrivateKey", fs.readFileSync(inv.privateKeyPath, "utf8"));
  for (const [k, v] of Object.entries(LAB_PASSWORDS)) cli.setSecret(k, v);
}, 3600_000);

afterAll(() => {
  const file = report.write();
  console.log(`upgrades report: ${file}\n${JSON.stringify(report.data, null, 2)}`);
  // No destroy (the other suites test it): the lab goes, and the stack's state with it.
  if (cli && process.env.SWARMCLOUD_KEEP_LAB !== "1") cli.removeStack();
  if (process.env.SWARMCLOUD_KEEP_LAB !== "1") lab("down");
}, 900_000);

test("pulumi up: Ghost at 2 replicas behind the front door; each service's update order in its spec", async () => {
  const { seconds } = cli.up();
  report.set("upSeconds", seconds);
  const outputs = cli.outputs();
  door.root = String(outputs.edgeRootCertificate ?? "");
  expect(door.root).toContain("BEGIN CERTIFICATE");
  await waitFor("Ghost through the front door", 600, async () => {
    const r = await home();
    return served(r.status, r.body);
  });
  await waitFor("two Ghost tasks", 300, () => ghostTasks().length === 2);
  const policy = "{{.Spec.UpdateConfig.Order}} {{.Spec.UpdateConfig.FailureAction}} {{.Spec.RollbackConfig.Order}}";
  const orders = {
    ghost_ghost: inspect("ghost_ghost", policy),
    ghost_db: inspect("ghost_db", policy),
    portainer_agent: inspect("portainer_agent", policy),
    portainer_portainer: inspect("portainer_portainer", policy),
    edge_caddy: inspect("edge_caddy", policy),
  };
  report.set("updateOrders", orders);
  expect(orders).toEqual({
    ghost_ghost: "start-first rollback start-first",
    ghost_db: "stop-first rollback stop-first",
    portainer_agent: "start-first rollback start-first",
    portainer_portainer: "stop-first rollback stop-first",
    edge_caddy: "stop-first rollback stop-first",
  });
});

test("(a) Ghost's image under a new tag: a one-line preview that names the update orders; every Ghost task replaced start-first with 0 failed requests", async () => {
  const dbTask = onNode(anyManager(), "docker service ps ghost_db -q --filter desired-state=running");
  const before = ghostTasks();
  configure({ image: NEW_TAG });
  const { steps, messages } = previewJson();
  const changed = steps.filter((s) => s.op !== "same" && s.op !== "read");
  expect(changes(steps)).toEqual(["update lab-upgrades-ghost-deploy"]);
  const step = changed[0] as unknown as {
    oldState: { inputs: { environment: { COMPOSE: string } } };
    newState: { inputs: { environment: { COMPOSE: string } } };
  };
  const old = step.oldState.inputs.environment.COMPOSE.split("\n");
  const differing = step.newState.inputs.environment.COMPOSE.split("\n").filter((line, i) => line !== old[i]);
  expect(differing).toEqual([`    image: "${NEW_TAG}"`]);
  const orders = messages.find((m) => m.includes("stack ghost updates one task at a time"));
  report.set("previewUpdateLine", orders?.trim());
  expect(orders).toContain("ghost_db stop-first");
  expect(orders).toContain("ghost_ghost start-first (rolled back on failure within 30s)");

  const { result: up, load } = await underLoad("newTag", upAsync);
  report.set("newTagUpSeconds", up.seconds);
  if (up.code !== 0) throw new Error(`pulumi up failed (${up.code}):\n${diagnostics(up.output)}`);
  const after = ghostTasks();
  report.set("newTagTasks", { before, after });
  expect(after.map((t) => t.split(" ")[1])).toEqual([NEW_TAG, NEW_TAG]);
  expect(after.filter((t) => before.includes(t))).toEqual([]);
  expect(inspect("ghost_ghost", "{{.UpdateStatus.State}}")).toBe("completed");
  // The database was not touched: the same task runs.
  expect(onNode(anyManager(), "docker service ps ghost_db -q --filter desired-state=running")).toBe(dbTask);
  expect(load.sent).toBeGreaterThan(200);
  expect(load.failed).toBe(0);
});

test("(b) an image that fails at start: Swarm rolls Ghost back, the old tasks keep serving with 0 failed requests, pulumi up fails naming the service and the task error", async () => {
  const before = ghostTasks();
  configure({ image: BROKEN });
  const { result: up, load } = await underLoad("brokenImage", upAsync);
  report.set("brokenImageUpSeconds", up.seconds);
  const said = diagnostics(up.output);
  report.set("brokenImageError", said.slice(0, 3000));
  expect(up.code).not.toBe(0);
  expect(said).toContain("service ghost_ghost: the update failed and Swarm rolled it back");
  expect(said).toMatch(/failed task ghost_ghost\.\d+ on \S+: task: non-zero exit \(1\)/);
  expect(inspect("ghost_ghost", "{{.UpdateStatus.State}}")).toBe("rollback_completed");
  expect(inspect("ghost_ghost", "{{.Spec.TaskTemplate.ContainerSpec.Image}}")).toBe(NEW_TAG);
  const after = await waitFor("two Ghost tasks of the previous image", 120, () => {
    const t = ghostTasks();
    return t.length === 2 && t.every((l) => l.endsWith(` ${NEW_TAG}`)) && t;
  });
  report.set("brokenImageTasks", { before, after, kept: after.filter((t) => before.includes(t)).length });
  expect(load.sent).toBeGreaterThan(100);
  expect(load.failed).toBe(0);
});

test("back to the good image: up converges, then nothing to change", () => {
  configure({ image: NEW_TAG });
  report.set("backUpSeconds", cli.up().seconds);
  expect(changes(cli.preview(["--expect-no-changes"]).steps)).toEqual([]);
});

test("a config that asks the database to update start-first is refused before anything runs", () => {
  configure({ image: NEW_TAG, dbUpdateOrder: "start-first" });
  const r = cli.run(["preview"]);
  const out = `${r.stdout}\n${r.stderr}`;
  configure({ image: NEW_TAG });
  expect(r.code).not.toBe(0);
  expect(out).toContain('swarmcloud:ghost.dbUpdateOrder = "start-first": must be stop-first');
});
