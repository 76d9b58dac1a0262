/**
 * The payoff, for real: Portainer (a stand-in in the lab) and the real Ghost with a MySQL-
 * compatible database on the swarm, data on Gluster, secrets as Docker secrets, over SSH by
 * the real engine. Ghost is checked the way a person would: through its APIs and in Chromium.
 */
import * as fs from "fs";
import * as path from "path";
import {
  createPost,
  GhostKeys,
  homeStatus,
  ownerFrom,
  ownerKeys,
  readPage,
  readPost,
  render,
  SetupWatch,
  watchGhostSetup,
} from "./ghost";
import {
  changes,
  handingOff,
  inventory,
  Inventory,
  lab,
  LAB_DIR,
  LAB_OWNER,
  LAB_PASSWORDS,
  labConfig,
  LabNode,
  anyManager,
  nodePlatform,
  onNode,
  prepareAppsLab,
  PulumiCli,
  REPO,
  Report,
  runningOn,
  sh,
  waitFor,
  writeHandoff,
} from "./lib";

const report = new Report("apps");
let cli: PulumiCli;
let inv: Inventory;
let keys: GhostKeys;
let slug: string;
const TITLE = `Hello from the swarm ${Date.now()}`;

const ghostBase = (n: LabNode) => `http://${n.address}:2368`;

beforeAll(() => {
  ({ cli, inv } = prepareAppsLab("lab-apps", report));
}, 3600_000);

afterAll(() => {
  const file = report.write();
  console.log(`apps report: ${file}\n${JSON.stringify(report.data, null, 2)}`);
  // SWARMCLOUD_LAB_HANDOFF=1: the deployed cluster stays for the next suites (security, drift).
  if (cli && handingOff()) {
    writeHandoff(cli, "apps");
    return;
  }
  if (cli && process.env.SWARMCLOUD_KEEP_LAB !== "1") {
    cli.run(["destroy", "--yes", "--skip-preview"]);
    cli.removeStack();
  }
  if (process.env.SWARMCLOUD_KEEP_LAB !== "1") lab("down");
}, 900_000);

/** What a watch of Ghost's setup route saw during the first up (see the next test). */
let firstUpWatch: SetupWatch;

test("pulumi up deploys Portainer and Ghost + database on the swarm, storage on Gluster", () => {
  // Anyone on the network probing Ghost's setup route on every node while the first up runs.
  const watch = watchGhostSetup(
    inv.nodes.map((n) => n.address),
    2368,
  );
  let seconds: number;
  try {
    ({ seconds } = cli.up());
  } finally {
    firstUpWatch = watch.stop();
  }
  report.set("upSeconds", seconds);
  report.set("platform", nodePlatform(inv.nodes[0]!));
  report.set("ghostSetupWatch", { ...firstUpWatch, exposed: firstUpWatch.exposed.length });
  // For the security suite's table (it attaches to this cluster in CI).
  fs.writeFileSync(path.join(LAB_DIR, "ghost-first-up.json"), JSON.stringify(firstUpWatch, null, 2));
  const outputs = cli.outputs();
  expect(outputs.ghostUrl).toBe(`http://${inv.nodes[0]!.address}:2368`);
  expect(outputs.ghostAdminUrl).toBe(`http://${inv.nodes[0]!.address}:2368/ghost/`);
  expect(outputs.portainerUrl).toBe(`https://${inv.nodes[0]!.address}:9443`);
  expect(outputs.portainerAdminPassword).toBe(LAB_PASSWORDS.portainerAdminPassword);
  expect(ownerFrom(outputs)).toEqual({ email: LAB_OWNER.email, password: LAB_PASSWORDS.ghostOwnerPassword });
  const services = onNode(anyManager(), "docker service ls --format '{{.Name}} {{.Replicas}}' | sort");
  expect(services.split("\n")).toEqual(
    expect.arrayContaining([expect.stringMatching(/^ghost_db 1\/1/), expect.stringMatching(/^ghost_ghost 1\/1/)]),
  );
  // Database files and Ghost content live on the shared volume.
  expect(onNode(inv.nodes[4]!, "ls /mnt/swarmcloud/ghost/mysql")).toMatch(/ibdata1/);
  expect(onNode(inv.nodes[4]!, "ls /mnt/swarmcloud/ghost/content")).toMatch(/data|images|themes/);
});

test("Ghost was never reachable without its owner: during the first up no node's setup route said 'not set up'", () => {
  expect(firstUpWatch.probes).toBeGreaterThan(0);
  expect(firstUpWatch.exposed).toEqual([]);
  // It did answer in the end, owned.
  expect(firstUpWatch.firstOwned).toBeDefined();
});

test("Ghost answers 200; a post made through the Admin API reads back through the Content API and renders in Chromium", async () => {
  const node = await waitFor("a running Ghost task", 300, () => runningOn("ghost_ghost")[0]);
  const base = ghostBase(node);
  await waitFor("Ghost's home page", 300, async () => (await homeStatus(base)) === 200);
  expect(await homeStatus(base)).toBe(200);
  // The owner the program set up, logging in with the password the stack exports.
  keys = await ownerKeys(base, ownerFrom(cli.outputs()));
  slug = await createPost(base, keys, TITLE, "<p>Written through the Admin API, stored on GlusterFS.</p>");
  const post = await readPost(base, keys, slug);
  expect(post?.title).toBe(TITLE);
  expect(post?.html).toContain("stored on GlusterFS");
  const page = render(`${base}/${slug}/`, path.join(REPO, "reports", "ghost-post.png"));
  expect(page.dom).toContain(TITLE);
  expect(page.dom).toContain("stored on GlusterFS");
  expect(fs.statSync(page.screenshot).size).toBeGreaterThan(10_000);
  const home = render(`${base}/`, path.join(REPO, "reports", "ghost-home.png"));
  expect(home.dom).toContain("swarmcloud lab");
  expect(home.dom).toContain(TITLE);
});

test("Portainer (the lab's stand-in) answers on its port", async () => {
  const node = await waitFor("a running Portainer task", 120, () => runningOn("portainer_portainer")[0]);
  const r = sh("curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", `https://${node.address}:9443/`]);
  expect(r.stdout).toBe("200");
  expect(runningOn("portainer_agent")).toHaveLength(inv.nodes.length);
});

test("no password appears in the Pulumi state or in docker service inspect", () => {
  const state = cli.exportState();
  const inspect = onNode(anyManager(), "docker service inspect ghost_ghost ghost_db portainer_portainer");
  for (const password of Object.values(LAB_PASSWORDS)) {
    expect(state).not.toContain(password);
    expect(inspect).not.toContain(password);
  }
  expect(inspect).toContain("/run/secrets/");
});

test("a second pulumi up changes nothing", () => {
  const { steps } = cli.preview(["--expect-no-changes"]);
  expect(changes(steps)).toEqual([]);
});

test("changing Ghost's replicas is a one-line diff of the compose file and leaves the database alone", async () => {
  const manager = anyManager();
  // `docker stack deploy` re-submits every service (the version counter moves); what must not
  // change is the database's spec and its running task.
  const dbBefore = onNode(manager, "docker service inspect --format '{{json .Spec}}' ghost_db");
  const dbTaskBefore = onNode(manager, "docker service ps ghost_db --filter desired-state=running -q");
  cli.setConfig(labConfig(inv, { apps: true, ghostReplicas: 2 }));
  const { steps } = cli.preview();
  const changed = steps.filter((s) => s.op !== "same" && s.op !== "read");
  expect(changed.map((s) => `${s.op} ${s.urn.split("::").pop()}`)).toEqual(["update lab-apps-ghost-deploy"]);
  const step = changed[0] as unknown as {
    oldState: { inputs: { environment: { COMPOSE: string } } };
    newState: { inputs: { environment: { COMPOSE: string } } };
  };
  const before = step.oldState.inputs.environment.COMPOSE.split("\n");
  const after = step.newState.inputs.environment.COMPOSE.split("\n");
  expect(after.length).toBe(before.length);
  const differing = after.filter((line, i) => line !== before[i]);
  expect(differing).toHaveLength(1);
  expect(differing[0]).toMatch(/replicas: 2/);
  cli.up();
  await waitFor("two Ghost tasks", 300, () => runningOn("ghost_ghost").length === 2);
  expect(onNode(manager, "docker service inspect --format '{{json .Spec}}' ghost_db")).toBe(dbBefore);
  expect(onNode(manager, "docker service ps ghost_db --filter desired-state=running -q")).toBe(dbTaskBefore);
  cli.setConfig(labConfig(inv, { apps: true }));
  cli.up();
});

test("stopping the node that runs Ghost: Swarm starts it elsewhere and the same post is served again", async () => {
  const victim = await waitFor("a running Ghost task", 120, () => runningOn("ghost_ghost")[0]);
  const others = inventory().nodes.filter((n) => n.name !== victim.name);
  const t0 = Date.now();
  lab("stop", victim.container, "--kill");
  try {
    const served = await waitFor("the post served by another node", 300, async () => {
      for (const n of others) {
        const page = await readPage(ghostBase(n), slug);
        if (page?.includes(TITLE)) return n;
      }
      return undefined;
    });
    const seconds = (Date.now() - t0) / 1000;
    report.set("ghostFailoverSeconds", seconds);
    report.set("ghostFailover", { from: victim.name, to: served.name });
    expect(served.name).not.toBe(victim.name);
    // The same post, through the Content API of the Ghost that took over.
    expect((await readPost(ghostBase(served), keys, slug))?.title).toBe(TITLE);
  } finally {
    lab("start", victim.container);
  }
});

// Handing the cluster on: the suites after it work on it, and `lab.sh down` removes it.
(handingOff() ? test.skip : test)("destroy removes the stacks and their secrets", () => {
  report.set("destroySeconds", cli.destroy());
  for (const n of inventory().nodes) {
    expect(onNode(n, "docker info --format '{{.Swarm.LocalNodeState}}'")).toBe("inactive");
  }
});
