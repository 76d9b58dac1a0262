/**
 * swarm-join.sh in bash against stand-in `docker`, `curl` and `sleep` commands that log their
 * arguments (and `ps`, seen from curl while it runs): the worker token reaches the Docker Engine
 * API only in the body curl reads on stdin, never a command line; the body is what
 * `docker swarm join --token T --advertise-addr A M:2377` sends; an API error fails the step
 * with Docker's message and without the token; a node already in the swarm sends nothing.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { script } from "../../components/remote-scripts";

const TOKEN = "SWMTKN-1-0unittest0cluster0digest0000000000000000000000000-0unittest0secret00000000";
const JOINED = "active false node-new - 10.0.0.11:2377 ";

/** `docker info` prints the state in the file `swarm`; the API version is 1.41 (Docker 20.10). */
const DOCKER = `
printf '%s\\n' "docker $*" >>"$STAND_IN_DIR/argv.log"
case "$*" in
  "info --format {{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}} "*) cat "$STAND_IN_DIR/swarm" ;;
  "version --format {{.Server.APIVersion}}") echo 1.41 ;;
  "info --format {{.ID}}") echo DAEMON-ID ;;
  "info --format {{.Swarm.NodeID}}") read -r _ _ id _ <"$STAND_IN_DIR/swarm"; echo "$id" ;;
  *) echo "unexpected: docker $*" >&2; exit 1 ;;
esac`;

/**
 * Keeps each body it reads on stdin (a line of \`bodies\`) and answers with the next line of
 * \`responses\` (the last one again when none is left): "CODE BODY" written to -o with CODE
 * printed for -w, or "exitN MESSAGE": MESSAGE on stderr, exit N. A 200 makes the node a member.
 */
const CURL = `
printf '%s\\n' "curl $*" >>"$STAND_IN_DIR/argv.log"
ps -eo args >>"$STAND_IN_DIR/ps.log" 2>/dev/null || true
printf '%s\\n' "$(cat)" >>"$STAND_IN_DIR/bodies"
out=""
while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
n=$(wc -l <"$STAND_IN_DIR/bodies")
line=$(sed -n "\${n}p" "$STAND_IN_DIR/responses")
[ -n "$line" ] || line=$(tail -n 1 "$STAND_IN_DIR/responses")
code=\${line%% *}
text=\${line#* }
case "$code" in exit*) printf '%s\\n' "$text" >&2; printf 000; exit "\${code#exit}" ;; esac
printf '%s' "$text" >"$out"
[ "$code" = 200 ] && printf '%s\\n' "${JOINED}" >"$STAND_IN_DIR/swarm"
printf '%s' "$code"`;

const SLEEP = `printf '%s\\n' "sleep $*" >>"$STAND_IN_DIR/argv.log"`;

/**
 * \`ss\` lists a dockerd listening on 7946 when the file \`gossip\` exists; \`pgrep -x dockerd\`
 * prints the pid in \`dockerd\`; \`pkill\` "kills" it and a supervisor starts another at once;
 * \`systemctl\` logs itself (used where the machine running the tests has systemd). No real
 * process is ever signalled.
 */
const RESTART_STAND_INS = {
  ss: `printf '%s\\n' "ss $*" >>"$STAND_IN_DIR/argv.log"
[ -f "$STAND_IN_DIR/gossip" ] && echo 'LISTEN 0 4096 *:7946 *:* users:(("dockerd",pid=4242,fd=42))'
exit 0`,
  pgrep: `[ "$*" = "-x dockerd" ] && cat "$STAND_IN_DIR/dockerd"`,
  pkill: `printf '%s\\n' "pkill $*" >>"$STAND_IN_DIR/argv.log"; rm -f "$STAND_IN_DIR/gossip"; echo 4343 >"$STAND_IN_DIR/dockerd"`,
  systemctl: `printf '%s\\n' "systemctl $*" >>"$STAND_IN_DIR/argv.log"; rm -f "$STAND_IN_DIR/gossip"`,
};

/** Runs swarm-join.sh on worker-1 (10.0.0.21), managers 10.0.0.11 and 10.0.0.12, in the swarm state given. */
function join(swarm: string, responses: string[], staleGossip = false) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-join-"));
  try {
    const standIns = { docker: DOCKER, curl: CURL, sleep: SLEEP, ...RESTART_STAND_INS };
    for (const [name, body] of Object.entries(standIns)) {
      fs.writeFileSync(path.join(dir, name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
    }
    fs.writeFileSync(path.join(dir, "dockerd"), "4242\n");
    if (staleGossip) fs.writeFileSync(path.join(dir, "gossip"), "");
    fs.writeFileSync(path.join(dir, "swarm"), `${swarm}\n`);
    fs.writeFileSync(path.join(dir, "responses"), responses.map((r) => `${r}\n`).join(""));
    const r = spawnSync("bash", ["-c", script("swarm-join"), "swarmcloud"], {
      env: {
        ...process.env,
        NODE_NAME: "worker-1",
        ADVERTISE_ADDR: "10.0.0.21",
        MANAGER_ADDRS: "10.0.0.11 10.0.0.12",
        STAND_IN_DIR: dir,
        PATH: `${dir}:${process.env.PATH}`,
      },
      input: `cluster-1 ${TOKEN}\n`,
      encoding: "utf8",
    });
    const read = (name: string) =>
      fs.existsSync(path.join(dir, name)) ? fs.readFileSync(path.join(dir, name), "utf8") : "";
    const lines = (name: string) => read(name).split("\n").filter(Boolean);
    return {
      code: r.status,
      stdout: r.stdout.trim(),
      stderr: r.stderr,
      argv: lines("argv.log"),
      ps: read("ps.log"),
      bodies: lines("bodies").map((b) => JSON.parse(b) as Record<string, unknown>),
    };
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
}

/** What `docker swarm join --token TOKEN --advertise-addr 10.0.0.21 MANAGER:2377` sends. */
const body = (manager: string) => ({
  ListenAddr: "0.0.0.0:2377",
  AdvertiseAddr: "10.0.0.21",
  RemoteAddrs: [`${manager}:2377`],
  JoinToken: TOKEN,
});

const curls = (argv: string[]) => argv.filter((a) => a.startsWith("curl "));

test("a node in no swarm joins through Docker's API: the token in curl's stdin body, on no command line", () => {
  const r = join("inactive false  - ", ["200 "]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  expect(r.stdout).toBe("node-new");
  expect(r.bodies).toEqual([body("10.0.0.11")]);
  expect(curls(r.argv)).toEqual([
    expect.stringMatching(
      /^curl -sS --unix-socket \/var\/run\/docker\.sock -X POST http:\/\/localhost\/v1\.41\/swarm\/join -H Content-Type: application\/json --data-binary @- -o \S+ -w %\{http_code\}$/,
    ),
  ]);
  expect(r.argv).not.toContainEqual(expect.stringContaining("swarm join"));
  expect(r.argv.join("\n")).not.toContain(TOKEN);
  expect(r.argv.join("\n")).not.toContain("unittest0secret");
  // No process on the machine had it in its arguments while curl ran.
  expect(r.ps).not.toContain("unittest0secret");
});

test("a manager that refuses is followed by the next one", () => {
  const r = join("inactive false  - ", [
    '503 {"message":"rpc error: code = Unavailable desc = all SubConns are in TransientFailure"}',
    "200 ",
  ]);
  expect(r.code).toBe(0);
  expect(r.stdout).toBe("node-new");
  expect(r.bodies).toEqual([body("10.0.0.11"), body("10.0.0.12")]);
});

test("an API error fails the step with Docker's message, the token cut out of it, after three rounds", () => {
  const refusal = `400 {"message":"invalid join token ${TOKEN}: rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster"}`;
  const r = join("inactive false  - ", [refusal]);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe("");
  expect(r.stderr).toBe(
    "worker-1 could not join any manager of 10.0.0.11 10.0.0.12:\n" +
      "invalid join token [join token]: rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster\n",
  );
  expect(r.bodies).toHaveLength(6);
  expect(r.argv.filter((a) => a.startsWith("sleep "))).toHaveLength(3);
  expect(r.argv.join("\n")).not.toContain("unittest0secret");
});

test("a Docker socket that does not answer: curl's own error, without the token", () => {
  const r = join("inactive false  - ", ["exit7 curl: (7) Couldn't connect to server"]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(
    "worker-1 could not join any manager of 10.0.0.11 10.0.0.12:\nHTTP 000: curl: (7) Couldn't connect to server",
  );
  expect(r.stderr).not.toContain("unittest0secret");
});

test("a node already in this swarm sends nothing and prints its ID", () => {
  const r = join("active false node-old - 10.0.0.12:2377 ", ["200 "]);
  expect(r.code).toBe(0);
  expect(r.stdout).toBe("node-old");
  expect(curls(r.argv)).toEqual([]);
  expect(r.bodies).toEqual([]);
  expect(r.argv).not.toContainEqual(expect.stringMatching(/^docker version/));
});

test("a node in another swarm is refused by name and sends nothing", () => {
  const r = join("active false node-old - 10.9.9.9:2377 ", ["200 "]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("worker-1 is already part of another swarm");
  expect(curls(r.argv)).toEqual([]);
});

test("a node in no swarm whose dockerd still holds the gossip port (a swarm it left): Docker restarted, then the join", () => {
  const r = join("inactive false  - ", ["200 "], true);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain("dockerd still holds the gossip port of a swarm it left (moby/moby#31913)");
  const restart = r.argv.findIndex((a) => a === "pkill -x dockerd" || a === "systemctl restart docker");
  const firstCurl = r.argv.findIndex((a) => a.startsWith("curl "));
  expect(restart).toBeGreaterThanOrEqual(0);
  expect(restart).toBeLessThan(firstCurl);
  expect(r.bodies).toEqual([body("10.0.0.11")]);
});

test("a node in no swarm with the gossip port free: no restart", () => {
  const r = join("inactive false  - ", ["200 "]);
  expect(r.argv.filter((a) => a.startsWith("pkill") || a.startsWith("systemctl"))).toEqual([]);
  expect(r.argv).toContain("ss -Hltnp sport = :7946");
});
