import * as pulumi from "@pulumi/pulumi";

/**
 * A shell command run on the machine that runs Pulumi (`vagrant up`, `vagrant ssh-config`,
 * `vagrant destroy`): a dynamic resource of our own rather than @pulumi/command's
 * `local.Command`, whose provider plugin cannot be had in the lab, so the vagrant environment
 * runs with the engine alone. The same semantics as `local.Command` without `update`: `create`
 * runs on create and again, in place, when `create`, `stdin` or `environment` change; a change
 * of `triggers` replaces the resource (`delete`, then `create`); `delete` runs on delete.
 */
export interface VagrantCommandArgs {
  /** Shell run by `/bin/sh -c` on create and on any change of create, stdin or environment (no default). */
  create: pulumi.Input<string>;
  /** Shell run on delete. Default: nothing. */
  delete?: pulumi.Input<string>;
  /** Fed to the command's standard input. Default: nothing. */
  stdin?: pulumi.Input<string>;
  /** Exported to the command, over the environment the engine runs in. Default: none. */
  environment?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Any change here replaces the resource (delete, then create). Default: none. */
  triggers?: pulumi.Input<unknown[]>;
  /** Seconds the command may run before it is stopped and reported. Default 1800. */
  timeout?: pulumi.Input<number>;
  /** Keep stdout a secret (it holds a private key). Default false. */
  secretStdout?: boolean;
}

/** What the provider keeps in state: the inputs and the command's stdout. */
interface CommandState {
  create: string;
  delete?: string;
  stdin?: string;
  environment?: Record<string, string>;
  triggers?: unknown[];
  timeout?: number;
  stdout: string;
}

type CommandInputs = Omit<CommandState, "stdout">;

/** Lines of output a failure message keeps. */
const TAIL_LINES = 30;

/**
 * Runs SCRIPT under /bin/sh with ENV over the engine's own environment and INPUT on stdin;
 * resolves with stdout, rejects with the exit code and the tail of stderr (stdout when stderr is
 * empty). Resolves when the shell exits, not when every pipe closes: `vagrant up` of libvirt
 * machines with forwarded ports leaves ssh tunnels running that hold the pipes open.
 */
export function runLocal(
  what: string,
  script: string,
  env: Record<string, string> = {},
  input: string | undefined = undefined,
  timeoutSeconds = 1800,
): Promise<string> {
  const { spawn } = require("child_process") as typeof import("child_process");
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", script], {
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      // The whole process group: the shell and what it started.
      if (child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
    }, timeoutSeconds * 1000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`${what}: could not start /bin/sh: ${e.message}`));
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      // Give the pipes a moment to deliver what the shell wrote last.
      setTimeout(() => {
        const stdout = Buffer.concat(out).toString("utf8");
        if (code === 0) return resolve(stdout);
        const text = Buffer.concat(err).toString("utf8").trim() || stdout.trim();
        const tail = text.split("\n").slice(-TAIL_LINES).join("\n");
        const how = timedOut ? `timed out after ${timeoutSeconds} s` : `exit ${code ?? signal}`;
        reject(new Error(`${what} failed (${how}):\n${tail}`));
      }, 200);
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(input ?? "");
  });
}

/** The provider: runs `create`, and `delete` on delete; see VagrantCommandArgs for when. */
export const vagrantCommandProvider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: CommandState, news: CommandInputs): Promise<pulumi.dynamic.DiffResult> {
    const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
    const keys = ["create", "delete", "stdin", "environment", "timeout"] as const;
    const changed = keys.filter((k) => !same(olds[k], news[k]));
    const replaces = same(olds.triggers, news.triggers) ? [] : ["triggers"];
    return { changes: changed.length > 0 || replaces.length > 0, replaces, deleteBeforeReplace: true };
  },

  async create(inputs: CommandInputs): Promise<pulumi.dynamic.CreateResult> {
    const stdout = await runLocal("create", inputs.create, inputs.environment, inputs.stdin, inputs.timeout);
    const { randomUUID } = require("crypto") as typeof import("crypto");
    return { id: randomUUID(), outs: { ...inputs, stdout } };
  },

  async update(_id: string, olds: CommandState, news: CommandInputs): Promise<pulumi.dynamic.UpdateResult> {
    const rerun = (["create", "stdin", "environment"] as const).some(
      (k) => JSON.stringify(olds[k] ?? null) !== JSON.stringify(news[k] ?? null),
    );
    const stdout = rerun
      ? await runLocal("update", news.create, news.environment, news.stdin, news.timeout)
      : olds.stdout;
    return { outs: { ...news, stdout } };
  },

  // Nothing to read back: what the command made is not described by its inputs.
  async read(id: string, props: CommandState): Promise<pulumi.dynamic.ReadResult> {
    return { id, props };
  },

  async delete(_id: string, props: CommandState): Promise<void> {
    if (props.delete) await runLocal("delete", props.delete, props.environment, undefined, props.timeout);
  },
};

/** A shell command on the machine that runs Pulumi; see VagrantCommandArgs. */
export class VagrantCommand extends pulumi.dynamic.Resource {
  /** Standard output of the last run (a secret when `secretStdout`). */
  declare public readonly stdout: pulumi.Output<string>;

  constructor(name: string, args: VagrantCommandArgs, opts?: pulumi.CustomResourceOptions) {
    const { secretStdout, ...props } = args;
    super(
      vagrantCommandProvider,
      name,
      { ...props, stdout: undefined },
      { ...opts, additionalSecretOutputs: secretStdout ? ["stdout"] : [] },
      "swarmcloud",
      "VagrantCommand",
    );
  }
}
