/**
 * node-image/entrypoint.sh, the host key step, in bash against a scratch folder: a host key given
 * to the node (the one the program made and pinned) becomes sshd's only key; without one the
 * default keys are generated as before. The entrypoint is sourced, so only its functions load.
 */
import { execFileSync, spawnSync } from "child_process";
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join, resolve } from "path";
import { generateEd25519 } from "../../components/generated-key";
import { HOST_KEY_FILE } from "../../components/nodes/local";

const ENTRYPOINT = resolve(__dirname, "../../node-image/entrypoint.sh");

/**
 * Runs `install_host_key GIVEN DIR` with a stand-in `ssh-keygen` ahead on PATH that records
 * `-A` (which would write /etc/ssh) and hands every other call to the real one.
 */
function installHostKey(given: string, dir: string) {
  const bin = mkdtempSync(join(tmpdir(), "swarmcloud-bin-"));
  const real = execFileSync("bash", ["-c", "command -v ssh-keygen"]).toString().trim();
  writeFileSync(
    join(bin, "ssh-keygen"),
    `#!/bin/bash\nif [[ "$1" == -A ]]; then echo "ssh-keygen -A" >>"${dir}/calls"; exit 0; fi\nexec ${real} "$@"\n`,
  );
  chmodSync(join(bin, "ssh-keygen"), 0o755);
  const script = `source "${ENTRYPOINT}"; rc=0; install_host_key "$1" "$2" || rc=$?; echo "rc=$rc args=\${sshd_host_keys[*]}"`;
  return spawnSync("bash", ["-c", script, "test", given, dir], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
    encoding: "utf8",
  });
}

test("a given host key becomes sshd's only key (mode 600, its .pub beside it), and nothing is generated", () => {
  const dir = mkdtempSync(join(tmpdir(), "swarmcloud-ssh-"));
  const key = generateEd25519();
  const given = join(dir, "given");
  writeFileSync(given, key.privateKey, { mode: 0o644 });
  const r = installHostKey(given, dir);
  expect(r.stdout.trim()).toBe(`rc=0 args=-h ${dir}/ssh_host_ed25519_key`);
  expect(r.stderr).toContain(`sshd serves the given host key ${key.fingerprint}`);
  expect(readFileSync(join(dir, "ssh_host_ed25519_key"), "utf8")).toBe(key.privateKey);
  expect(statSync(join(dir, "ssh_host_ed25519_key")).mode & 0o777).toBe(0o600);
  expect(statSync(given).mode & 0o777).toBe(0o600);
  expect(readFileSync(join(dir, "ssh_host_ed25519_key.pub"), "utf8").trim().split(" ").slice(0, 2).join(" ")).toBe(
    key.publicKey,
  );
  expect(() => readFileSync(join(dir, "calls"))).toThrow();
});

test("without a given key the default host keys are generated, and sshd gets no -h", () => {
  const dir = mkdtempSync(join(tmpdir(), "swarmcloud-ssh-"));
  const r = installHostKey(join(dir, "absent"), dir);
  expect(r.stdout.trim()).toBe("rc=0 args=");
  expect(readFileSync(join(dir, "calls"), "utf8")).toBe("ssh-keygen -A\n");
});

test("a given file that is no private key stops the node, saying so", () => {
  const dir = mkdtempSync(join(tmpdir(), "swarmcloud-ssh-"));
  const given = join(dir, "given");
  writeFileSync(given, "not a key\n");
  const r = installHostKey(given, dir);
  expect(r.stdout.trim()).toBe("rc=1 args=");
  expect(r.stderr).toContain(`the host key in ${given} is not an OpenSSH private key`);
});

test("the entrypoint reads the key where LocalNodes copies it and lab.sh mounts it", () => {
  const entrypoint = readFileSync(ENTRYPOINT, "utf8");
  expect(entrypoint).toContain(`readonly GIVEN_HOST_KEY=${HOST_KEY_FILE}\n`);
  expect(entrypoint).toContain('install_host_key "$GIVEN_HOST_KEY" /etc/ssh');
  const labSh = readFileSync(resolve(__dirname, "../../tests/lab/lab.sh"), "utf8");
  expect(labSh).toContain(`readonly NODE_HOST_KEY=${HOST_KEY_FILE}\n`);
  expect(labSh).toContain('--mount "type=bind,src=$HOST_KEYS/$c,dst=$NODE_HOST_KEY,readonly"');
});

/**
 * Runs `start_keepalived CONF` with a stand-in `keepalived` ahead on PATH that records its
 * arguments: a restarted node starts keepalived as a booting host starts the enabled service.
 */
function startKeepalived(conf: string) {
  const bin = mkdtempSync(join(tmpdir(), "swarmcloud-bin-"));
  writeFileSync(join(bin, "keepalived"), `#!/bin/bash\necho "keepalived $*" >>"${bin}/calls"\n`);
  chmodSync(join(bin, "keepalived"), 0o755);
  const r = spawnSync("bash", ["-c", `source "${ENTRYPOINT}"; start_keepalived "$1"`, "test", conf], {
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
    encoding: "utf8",
  });
  let calls = "";
  try {
    calls = readFileSync(join(bin, "calls"), "utf8");
  } catch {
    // never called
  }
  return { ...r, calls };
}

test("a restarted node starts keepalived with the config the program wrote, and no other", () => {
  const dir = mkdtempSync(join(tmpdir(), "swarmcloud-keepalived-"));
  const ours = join(dir, "ours.conf");
  writeFileSync(ours, "# written by swarmcloud (edge-keepalived.sh): the front door\nvrrp_instance x {}\n");
  const theirs = join(dir, "theirs.conf");
  writeFileSync(theirs, "vrrp_instance someone_elses {}\n");
  const started = startKeepalived(ours);
  expect(started.status).toBe(0);
  expect(started.calls).toBe(`keepalived -f ${ours}\n`);
  expect(started.stderr).toContain("keepalived started");
  expect(startKeepalived(theirs).calls).toBe("");
  expect(startKeepalived(join(dir, "absent.conf")).calls).toBe("");
});
