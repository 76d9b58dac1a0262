/**
 * The shell that keeps strangers out, run in bash against stand-ins that keep state in files:
 *
 * - the container firewall of lib.sh (container_rules, container_firewall_apply and _ok) against
 *   an `iptables` that keeps each chain in a file, and the boot-time script host.sh writes from
 *   the same functions (`declare -f`), run on its own;
 * - gluster-allow.sh, gluster-disallow.sh and gluster-allow-read.sh against a `gluster` that keeps
 *   the volume's auth.allow, its connected clients and the pool in files, two allow steps at once
 *   included (the lock).
 */
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseObserved } from "../../components/remote";
import { script } from "../../components/remote-scripts";

const SCRIPT_DIR = path.join(__dirname, "..", "..", "components", "remote-scripts");
const LIB = fs.readFileSync(path.join(SCRIPT_DIR, "lib.sh"), "utf8");
const LOCK = "/run/swarmcloud-gluster-allow.lock";

/**
 * A folder with stand-in commands (each key a command, each value its bash body; they find the
 * folder in $STAND_IN_DIR) and files; `run` runs bash text there with those on PATH.
 */
function standIns(commands: Record<string, string>, files: Record<string, string> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "swarmcloud-sec-"));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  for (const [name, body] of Object.entries(commands)) {
    fs.writeFileSync(path.join(dir, name), `#!/usr/bin/env bash\n${body}\n`, { mode: 0o755 });
  }
  const env = (more: Record<string, string>) => ({
    ...process.env,
    ...more,
    STAND_IN_DIR: dir,
    PATH: `${dir}:${process.env.PATH}`,
  });
  /** The text as it runs here: the lock in this folder instead of /run. */
  const local = (text: string) => text.split(LOCK).join(path.join(dir, "allow.lock"));
  return {
    dir,
    read: (name: string) => (fs.existsSync(path.join(dir, name)) ? fs.readFileSync(path.join(dir, name), "utf8") : ""),
    write: (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text),
    run(text: string, more: Record<string, string> = {}) {
      const r = spawnSync("bash", ["-c", local(text), "swarmcloud"], { env: env(more), input: "", encoding: "utf8" });
      return { code: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
    },
    /** Starts the text in the background; resolves with its exit code. */
    start(text: string, more: Record<string, string> = {}): Promise<number | null> {
      return new Promise((resolve) => {
        const p = spawn("bash", ["-c", local(text), "swarmcloud"], { env: env(more), stdio: "ignore" });
        p.on("close", resolve);
      });
    },
    done: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * A small iptables: each chain a file of rules (ipt/<CHAIN>), `-w` ignored; -N, -F, -A, -I <n>,
 * -C and -S as the real one (exit 1 for a missing chain or rule). Every call goes to iptables.log.
 */
const IPTABLES = [
  'echo "$*" >>"$STAND_IN_DIR/iptables.log"',
  'd="$STAND_IN_DIR/ipt"; mkdir -p "$d"',
  '[ "$1" = -w ] && shift',
  'op=$1; chain=$2; shift 2; f="$d/$chain"',
  'case "$op" in',
  '  -N) [ -e "$f" ] && { echo "iptables: Chain already exists." >&2; exit 1; }; : >"$f" ;;',
  '  -F) [ -e "$f" ] || exit 1; : >"$f" ;;',
  '  -A) [ -e "$f" ] || exit 1; echo "$*" >>"$f" ;;',
  '  -I) [ -e "$f" ] || exit 1; shift; { echo "$*"; cat "$f"; } >"$f.new"; mv "$f.new" "$f" ;;',
  '  -C) [ -e "$f" ] && grep -qxF -- "$*" "$f" ;;',
  '  -S) [ -e "$f" ] || exit 1; echo "-N $chain"; sed "s/^/-A $chain /" "$f" ;;',
  '  *) echo "unexpected: iptables $op" >&2; exit 2 ;;',
  "esac",
].join("\n");

/** Runs bash text after lib.sh with the iptables stand-in; INPUT exists, as in any kernel. */
function firewall() {
  const s = standIns({ iptables: IPTABLES }, { "ipt/INPUT": "" });
  const lib = (snippet: string) => s.run(`set -euo pipefail\n${LIB}\n${snippet}`);
  return { ...s, lib, chain: (name: string) => s.read(`ipt/${name}`).trim().split("\n").filter(Boolean) };
}

describe("the container firewall (lib.sh)", () => {
  test("the rules: only new connections from container interfaces to 2377, 24007-24008, 49152-60999 (and metadata, forwarded) are refused", () => {
    const s = firewall();
    try {
      const input = s.lib("container_rules SWARMCLOUD-INPUT").stdout.split("\n");
      const forward = s.lib("container_rules SWARMCLOUD-FORWARD").stdout.split("\n");
      for (const ifc of ["docker0", "docker_gwbridge", "br-+"]) {
        for (const ports of ["2377", "24007:24008", "49152:60999"]) {
          const rule = `-i ${ifc} -p tcp -m tcp --dport ${ports} -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset`;
          expect(input).toContain(rule);
          expect(forward).toContain(rule);
        }
        // Containers on one bridge talk as before; the metadata address is another node's business.
        expect(forward).toContain(`-i ${ifc} -o ${ifc} -j RETURN`);
        expect(forward.indexOf(`-i ${ifc} -o ${ifc} -j RETURN`)).toBeLessThan(
          forward.indexOf(
            `-i ${ifc} -p tcp -m tcp --dport 2377 -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset`,
          ),
        );
        expect(forward).toContain(
          `-i ${ifc} -d 169.254.169.254/32 -m conntrack --ctstate NEW -j REJECT --reject-with icmp-port-unreachable`,
        );
      }
      // Every rule but the last names a container interface: the nodes' own traffic never matches.
      for (const rules of [input, forward]) {
        expect(rules.at(-1)).toBe("-j RETURN");
        for (const rule of rules.slice(0, -1)) expect(rule).toMatch(/^-i (docker0|docker_gwbridge|br-\+) /);
      }
      expect([input.length, forward.length]).toEqual([10, 16]);
    } finally {
      s.done();
    }
  });

  test("apply on a fresh table makes both chains and the first rule of INPUT and DOCKER-USER; ok then holds, and a second apply changes nothing", () => {
    const s = firewall();
    try {
      expect(s.lib("container_firewall_ok || echo missing")).toMatchObject({
        stdout: "INPUT does not jump to SWARMCLOUD-INPUT\nmissing",
      });
      expect(s.lib("container_firewall_apply").code).toBe(0);
      expect(s.chain("INPUT")[0]).toBe("-j SWARMCLOUD-INPUT");
      expect(s.chain("DOCKER-USER")).toEqual(["-j SWARMCLOUD-FORWARD"]);
      expect(s.chain("SWARMCLOUD-INPUT")).toEqual(s.lib("container_rules SWARMCLOUD-INPUT").stdout.split("\n"));
      expect(s.chain("SWARMCLOUD-FORWARD")).toEqual(s.lib("container_rules SWARMCLOUD-FORWARD").stdout.split("\n"));
      expect(s.lib("container_firewall_ok && echo ok")).toMatchObject({ code: 0, stdout: "ok" });
      const before = ["INPUT", "DOCKER-USER", "SWARMCLOUD-INPUT", "SWARMCLOUD-FORWARD"].map(s.chain);
      s.lib("container_firewall_apply");
      expect(["INPUT", "DOCKER-USER", "SWARMCLOUD-INPUT", "SWARMCLOUD-FORWARD"].map(s.chain)).toEqual(before);
    } finally {
      s.done();
    }
  });

  test("Docker's own DOCKER-USER (its RETURN) is kept, our jump goes first", () => {
    const s = firewall();
    try {
      s.write("ipt/DOCKER-USER", "-j RETURN\n");
      s.lib("container_firewall_apply");
      expect(s.chain("DOCKER-USER")).toEqual(["-j SWARMCLOUD-FORWARD", "-j RETURN"]);
    } finally {
      s.done();
    }
  });

  test("ok names what is missing: a rule taken out, a rule added by hand, a jump removed; apply repairs each", () => {
    const s = firewall();
    try {
      s.lib("container_firewall_apply");
      const rules = s.chain("SWARMCLOUD-FORWARD");
      s.write("ipt/SWARMCLOUD-FORWARD", `${rules.filter((r) => !r.includes("--dport 2377")).join("\n")}\n`);
      expect(s.lib("container_firewall_ok || echo missing").stdout).toMatch(
        /^SWARMCLOUD-FORWARD lacks: -i docker0 -p tcp -m tcp --dport 2377 .*\nmissing$/,
      );
      s.lib("container_firewall_apply");
      s.write("ipt/SWARMCLOUD-INPUT", `-i eth0 -j ACCEPT\n${s.chain("SWARMCLOUD-INPUT").join("\n")}\n`);
      expect(s.lib("container_firewall_ok || echo missing").stdout).toBe("SWARMCLOUD-INPUT holds other rules\nmissing");
      s.lib("container_firewall_apply");
      s.write("ipt/INPUT", "");
      expect(s.lib("container_firewall_ok || echo missing").stdout).toBe(
        "INPUT does not jump to SWARMCLOUD-INPUT\nmissing",
      );
      s.lib("container_firewall_apply");
      expect(s.lib("container_firewall_ok && echo ok").stdout).toBe("ok");
    } finally {
      s.done();
    }
  });

  test("the boot-time script host.sh writes (the same functions, declare -f) runs on its own, without lib.sh", () => {
    const host = fs.readFileSync(path.join(SCRIPT_DIR, "host.sh"), "utf8");
    const declared = "declare -f container_rules container_firewall_ok container_firewall_apply";
    expect(host).toContain(declared);
    expect(host).toContain("'container_firewall_ok >/dev/null || container_firewall_apply'");
    const s = firewall();
    try {
      const boot = s.lib(`${declared}; echo 'container_firewall_ok >/dev/null || container_firewall_apply'`).stdout;
      s.write("boot.sh", `#!/usr/bin/env bash\nset -euo pipefail\n${boot}\n`);
      expect(s.run(`bash "$STAND_IN_DIR/boot.sh"`).code).toBe(0);
      expect(s.lib("container_firewall_ok && echo ok").stdout).toBe("ok");
      // At the next boot with the rules in place it only checks.
      fs.rmSync(path.join(s.dir, "iptables.log"));
      s.run(`bash "$STAND_IN_DIR/boot.sh"`);
      expect(
        s
          .read("iptables.log")
          .split("\n")
          .filter(Boolean)
          .every((l) => /^-w (-C|-S) /.test(l)),
      ).toBe(true);
    } finally {
      s.done();
    }
  });

  test("host.sh no longer fetches and runs get.docker.com: without apt-get it stops and says what to do", () => {
    const host = fs.readFileSync(path.join(SCRIPT_DIR, "host.sh"), "utf8");
    expect(host).not.toMatch(/get\.docker\.com|curl[^\n]*\|\s*(ba)?sh/);
    expect(host).toContain("install Docker Engine");
  });
});

/**
 * A gluster that keeps volume VOL in files: vol (exists), allow (auth.allow, "*" when missing),
 * clients (`volume status clients` lines), pool (`pool list`); `volume set` sleeps SET_DELAY
 * seconds (a slow glusterd: two steps that did not take turns would lose one address) and logs.
 */
const GLUSTER = [
  'args=(); for a in "$@"; do case "$a" in --mode=*) ;; *) args+=("$a") ;; esac; done',
  'case "${args[*]}" in',
  '  "volume info VOL") [ -e "$STAND_IN_DIR/vol" ] || { echo "Volume VOL does not exist" >&2; exit 1; } ;;',
  '  "volume get VOL auth.allow") printf "Option Value\\n------ -----\\nauth.allow %s\\n" "$(cat "$STAND_IN_DIR/allow" 2>/dev/null || echo "*")" ;;',
  '  "volume set VOL auth.allow "*) v=$(cat "$STAND_IN_DIR/allow" 2>/dev/null || true); sleep "${SET_DELAY:-0}";',
  '     [ "$v" = "$(cat "$STAND_IN_DIR/allow" 2>/dev/null || true)" ] || { echo "lost update" >>"$STAND_IN_DIR/set.log"; };',
  '     echo "${args[4]}" >"$STAND_IN_DIR/allow"; echo "set ${args[4]}" >>"$STAND_IN_DIR/set.log" ;;',
  '  "volume status VOL clients") cat "$STAND_IN_DIR/clients" 2>/dev/null || true ;;',
  '  "pool list") cat "$STAND_IN_DIR/pool" ;;',
  '  *) echo "unexpected: gluster $*" >&2; exit 1 ;;',
  "esac",
].join("\n");

const CLIENTS = (addresses: string[]) =>
  [
    "Client connections for volume VOL",
    "----------------------------------------------",
    "Brick : 10.0.0.11:/srv/swarmcloud/brick",
    `Clients connected : ${addresses.length}`,
    "Hostname                                               BytesRead    BytesWritten       OpVersion",
    "--------                                               ---------    ------------       ---------",
    ...addresses.map((a) => `${a}:49150                                          1234          5678           100000`),
    "----------------------------------------------",
  ].join("\n");

const POOL_WITH_PEERS = "UUID\tHostname\tState\nu2\t10.0.0.12\tConnected\nu1\tlocalhost\tConnected\n";
const POOL_ALONE = "UUID\tHostname\tState\nu1\tlocalhost\tConnected\n";

function glusterNode(files: Record<string, string> = { vol: "" }) {
  return standIns({ gluster: GLUSTER, hostname: "echo manager-1" }, { pool: POOL_WITH_PEERS, ...files });
}
const step = (name: string, env: Record<string, string>) => ({ text: script(name), env });
const allow = (address: string, members = "") =>
  step("gluster-allow", { NODE_NAME: `node-${address}`, VOLUME: "VOL", ADDRESS: address, MEMBERS: members });
const disallow = (address: string) =>
  step("gluster-disallow", { NODE_NAME: `node-${address}`, VOLUME: "VOL", ADDRESS: address });

describe("gluster-allow.sh: a node's address into auth.allow", () => {
  test("a volume that admits everyone (made before): the list becomes every member's address and this one", () => {
    const s = glusterNode();
    try {
      const a = allow("10.0.0.31", "10.0.0.11 10.0.0.12 10.0.0.13 10.0.0.31");
      expect(s.run(a.text, a.env)).toMatchObject({ code: 0, stdout: "10.0.0.11,10.0.0.12,10.0.0.13,10.0.0.31" });
      expect(s.read("allow").trim()).toBe("10.0.0.11,10.0.0.12,10.0.0.13,10.0.0.31");
    } finally {
      s.done();
    }
  });

  test("a listed volume: only this address is added (the members, context, are not)", () => {
    const s = glusterNode({ vol: "", allow: "10.0.0.11,10.0.0.12,10.0.0.13" });
    try {
      const a = allow("10.0.0.32", "10.0.0.11 10.0.0.12 10.0.0.13 10.0.0.31 10.0.0.32");
      expect(s.run(a.text, a.env).stdout).toBe("10.0.0.11,10.0.0.12,10.0.0.13,10.0.0.32");
    } finally {
      s.done();
    }
  });

  test("an address already allowed: nothing is set", () => {
    const s = glusterNode({ vol: "", allow: "10.0.0.11,10.0.0.31" });
    try {
      const a = allow("10.0.0.31");
      expect(s.run(a.text, a.env)).toMatchObject({ code: 0, stdout: "10.0.0.11,10.0.0.31" });
      expect(s.read("set.log")).toBe("");
    } finally {
      s.done();
    }
  });

  test("an address already allowed waits for no other step's turn (the lock held elsewhere)", async () => {
    const s = glusterNode({ vol: "", allow: "10.0.0.11,10.0.0.31" });
    try {
      // Another step holds the turn for 4 s; a listed address must not wait for it.
      const holder = s.start(`exec 9>${LOCK}; flock 9; touch "$STAND_IN_DIR/held"; sleep 4`);
      for (let i = 0; i < 100 && !fs.existsSync(path.join(s.dir, "held")); i++)
        await new Promise((r) => setTimeout(r, 20));
      expect(fs.existsSync(path.join(s.dir, "held"))).toBe(true);
      const a = allow("10.0.0.31");
      const t0 = Date.now();
      expect(s.run(a.text, a.env)).toMatchObject({ code: 0, stdout: "10.0.0.11,10.0.0.31" });
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(s.read("set.log")).toBe("");
      await holder;
    } finally {
      s.done();
    }
  });

  test("a node that does not know the volume says not here (75): the next brick node runs it", () => {
    const s = glusterNode({});
    try {
      const a = allow("10.0.0.31");
      expect(s.run(a.text, a.env)).toMatchObject({ code: 75, stderr: "manager-1 does not know volume VOL" });
    } finally {
      s.done();
    }
  });

  test("five nodes' steps at once on a slow glusterd take turns: every address is in, no update lost", async () => {
    const s = glusterNode({ vol: "", allow: "10.0.0.11" });
    try {
      const addresses = ["10.0.0.12", "10.0.0.13", "10.0.0.31", "10.0.0.32", "10.0.0.33"];
      const codes = await Promise.all(
        addresses.map((a) => {
          const st = allow(a);
          return s.start(st.text, { ...st.env, SET_DELAY: "0.2" });
        }),
      );
      expect(codes).toEqual([0, 0, 0, 0, 0]);
      expect(s.read("allow").trim().split(",").sort()).toEqual(["10.0.0.11", ...addresses].sort());
      expect(s.read("set.log")).not.toContain("lost update");
    } finally {
      s.done();
    }
  });
});

describe("gluster-disallow.sh: the address out once the node has gone", () => {
  test("an address no client uses any more is taken out", () => {
    const s = glusterNode({
      vol: "",
      allow: "10.0.0.11,10.0.0.31,10.0.0.32",
      clients: CLIENTS(["10.0.0.11", "10.0.0.32"]),
    });
    try {
      const d = disallow("10.0.0.31");
      expect(s.run(d.text, d.env).code).toBe(0);
      expect(s.read("allow").trim()).toBe("10.0.0.11,10.0.0.32");
    } finally {
      s.done();
    }
  });

  test("a client still connected from the address (another node on it, a mount that stayed): it stays", () => {
    const s = glusterNode({ vol: "", allow: "10.0.0.11,10.0.0.31", clients: CLIENTS(["10.0.0.31"]) });
    try {
      const d = disallow("10.0.0.31");
      expect(s.run(d.text, d.env)).toMatchObject({
        code: 0,
        stderr: "volume VOL: a client on 10.0.0.31 is still connected; its address stays allowed",
      });
      expect(s.read("set.log")).toBe("");
    } finally {
      s.done();
    }
  });

  test("the last address stays (an empty list is no value); one not listed needs nothing", () => {
    const s = glusterNode({ vol: "", allow: "10.0.0.11" });
    try {
      expect(s.run(disallow("10.0.0.11").text, disallow("10.0.0.11").env).code).toBe(0);
      expect(s.run(disallow("10.0.0.99").text, disallow("10.0.0.99").env).code).toBe(0);
      expect(s.read("set.log")).toBe("");
    } finally {
      s.done();
    }
  });

  test("no such volume in a pool with peers: nothing to do; a node alone (it left the pool): not here", () => {
    const gone = glusterNode({});
    const alone = glusterNode({ pool: POOL_ALONE });
    try {
      const d = disallow("10.0.0.31");
      expect(gone.run(d.text, d.env).code).toBe(0);
      expect(alone.run(d.text, d.env)).toMatchObject({
        code: 75,
        stderr: "manager-1 is in no pool that holds volume VOL",
      });
    } finally {
      gone.done();
      alone.done();
    }
  });
});

describe("gluster-allow-read.sh", () => {
  const read = (s: ReturnType<typeof glusterNode>) => {
    const r = step("gluster-allow-read", { NODE_NAME: "worker-1", VOLUME: "VOL", ADDRESS: "10.0.0.31" });
    const ran = s.run(r.text, r.env);
    return { ...ran, seen: Object.fromEntries(parseObserved(ran.stdout)) };
  };

  test("listed: nothing drifted", () => {
    const s = glusterNode({ vol: "", allow: "10.0.0.11,10.0.0.31" });
    try {
      expect(read(s)).toMatchObject({ code: 0, stdout: "" });
    } finally {
      s.done();
    }
  });

  test("taken out by hand, or the volume opened to everyone: a DRIFT, which up --refresh repairs", () => {
    const s = glusterNode({ vol: "", allow: "10.0.0.11" });
    const open = glusterNode();
    try {
      expect(read(s).seen).toEqual({ DRIFT: "worker-1 (10.0.0.31) is not in the auth.allow of volume VOL: 10.0.0.11" });
      expect(read(open).seen).toEqual({ DRIFT: "volume VOL admits every address (auth.allow *)" });
      expect(s.read("set.log") + open.read("set.log")).toBe("");
    } finally {
      s.done();
      open.done();
    }
  });
});

/**
 * A docker for stack-deploy.sh: a manager; `stack deploy` keeps the compose text it reads in
 * deployed.yml and the environment it got in deploy-env (PORTAINER_AGENT_SECRET); every service
 * runs its replicas, none of them at a digest (`service ls -q` lists none: nothing to pin); the
 * config ghost-opened exists when the file `opened` does; every call goes to docker.log.
 */
const STACK_DOCKER = [
  'echo "$*" >>"$STAND_IN_DIR/docker.log"',
  'case "$*" in',
  '  "info --format {{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}") echo "active true" ;;',
  '  "secret inspect "*) exit 0 ;;',
  '  "config inspect ghost-opened") [ -e "$STAND_IN_DIR/opened" ] || exit 1 ;;',
  '  "stack deploy "*) cat >"$STAND_IN_DIR/deployed.yml"; echo "${PORTAINER_AGENT_SECRET:-unset}" >"$STAND_IN_DIR/deploy-env" ;;',
  '  "service ls --filter label=com.docker.stack.namespace="*" --format {{.ID}} {{.Name}} {{.Replicas}}") echo "id1 x_web 1/1" ;;',
  '  "service inspect --format "*) echo "" ;;',
  '  "secret ls "*) ;;',
  '  "service ls -q --filter label=com.docker.stack.namespace="*) ;;',
  '  "service ls --filter label=com.docker.stack.namespace="*) echo "x_web replicated 1/1" ;;',
  '  *) echo "unexpected: docker $*" >&2; exit 1 ;;',
  "esac",
].join("\n");

describe("stack-deploy.sh: a stack held closed until set up, deploy variables", () => {
  const deploy = (env: Record<string, string>, stdin: string, files: Record<string, string> = {}) => {
    const s = standIns({ docker: STACK_DOCKER, hostname: "echo manager-1" }, files);
    const r = spawnSync("bash", ["-c", script("stack-deploy"), "swarmcloud"], {
      env: { ...process.env, TIMEOUT: "10", ...env, STAND_IN_DIR: s.dir, PATH: `${s.dir}:${process.env.PATH}` },
      input: stdin,
      encoding: "utf8",
    });
    const out = {
      code: r.status,
      stderr: r.stderr,
      deployed: s.read("deployed.yml"),
      env: s.read("deploy-env").trim(),
      log: s.read("docker.log"),
    };
    s.done();
    return out;
  };

  test("not opened yet: the text without ports is deployed; opened: the real one", () => {
    const env = { STACK: "ghost", COMPOSE: "open: ports", CLOSED_COMPOSE: "closed: no ports" };
    const first = deploy(env, "");
    expect(first.code).toBe(0);
    expect(first.deployed).toBe("closed: no ports\n");
    expect(first.stderr).toContain("stack ghost is not set up yet: deployed without published ports");
    expect(deploy(env, "", { opened: "opened\n" }).deployed).toBe("open: ports\n");
    // A stack without a closed text is deployed as it is from the start.
    expect(deploy({ STACK: "ghost", COMPOSE: "open: ports" }, "").deployed).toBe("open: ports\n");
  });

  test("a deploy variable reaches docker stack deploy's environment only: no command line, no secret of its own", () => {
    const value = "agent-secret-0123456789";
    const r = deploy(
      { STACK: "portainer", COMPOSE: 'AGENT_SECRET: "${PORTAINER_AGENT_SECRET}"' },
      `env:PORTAINER_AGENT_SECRET=${Buffer.from(value).toString("base64")}\n`,
    );
    expect(r.code).toBe(0);
    expect(r.env).toBe(value);
    expect(r.log).not.toContain(value);
    expect(r.log).not.toMatch(/secret (inspect|create) .*PORTAINER/);
  });

  test("a deploy variable line with a bad name is refused without showing the value", () => {
    const r = deploy(
      { STACK: "portainer", COMPOSE: "x" },
      `env:lower=${Buffer.from("hidden-value").toString("base64")}\n`,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("stdin: a deploy variable line is not env:NAME=BASE64");
    expect(r.stderr).not.toContain("hidden-value");
  });
});

describe("no secret in an error message", () => {
  test("stack-deploy.sh: a stdin line without = (a bare value) is refused without being shown", () => {
    const s = standIns({ docker: STACK_DOCKER, hostname: "echo manager-1" });
    try {
      const r = s.run(script("stack-deploy"), { STACK: "ghost", COMPOSE: "x" });
      expect(r.code).toBe(0);
      const bare = spawnSync("bash", ["-c", script("stack-deploy"), "swarmcloud"], {
        env: {
          ...process.env,
          STACK: "ghost",
          COMPOSE: "x",
          STAND_IN_DIR: s.dir,
          PATH: `${s.dir}:${process.env.PATH}`,
        },
        input: "a-bare-password-value\n",
        encoding: "utf8",
      });
      expect(bare.status).toBe(1);
      expect(bare.stderr).toContain("stdin: a secret line is not NAME=BASE64 (it has no =)");
      expect(bare.stderr + bare.stdout).not.toContain("a-bare-password-value");
    } finally {
      s.done();
    }
  });

  test("the scripts that read secrets on stdin never print them: no message names the variables that hold them", () => {
    const holders: Record<string, string[]> = {
      "backup-restore": ["line"],
      "ghost-setup": ["password"],
      "stack-deploy": ["line", "value"],
      "swarm-join": ["token"],
    };
    for (const [name, vars] of Object.entries(holders)) {
      const text = fs.readFileSync(path.join(SCRIPT_DIR, `${name}.sh`), "utf8");
      for (const line of text.split("\n")) {
        // What a message command prints: its words from the command on.
        const said = /\b(info|fatal|echo|observed|drift|not_here)\b.*/.exec(line)?.[0];
        if (said === undefined) continue;
        for (const v of vars) {
          expect([name, said, said.includes(`$${v}`) || said.includes(`\${${v}`)]).toEqual([name, said, false]);
        }
      }
    }
  });
});
