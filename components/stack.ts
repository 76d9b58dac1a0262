import * as crypto from "crypto";
import * as pulumi from "@pulumi/pulumi";
import * as yaml from "js-yaml";
import { deployVariableNames } from "../stacks/compose";
import { ResolveImage } from "./config";
import { RemoteScript, SshConnection } from "./remote";
import { script } from "./remote-scripts";

/** The part of a ClusterNode a stack needs: a manager to run `docker stack` on. */
export interface StackManager {
  name: string;
  connection: SshConnection;
}

// One definition of the option, in the config model.
export type { ResolveImage };

export interface SwarmStackArgs {
  /** Manager the stack is deployed from (and removed from). */
  manager: StackManager;
  /** Other managers, tried in turn when `manager` does not answer. Default: none. */
  fallbackManagers?: StackManager[];
  /** Docker stack name (the prefix of its services, networks and secrets). */
  stackName: string;
  /**
   * The compose file text (see `stacks/`), or a function that renders it from the versioned
   * Docker names of `secrets` (base name -> Docker name). An input of the deploy, so preview
   * diffs it.
   */
  compose: pulumi.Input<string> | ((secretNames: Record<string, string>) => string);
  /**
   * Secret base name -> value. Values should be Pulumi secrets; they reach the node on stdin
   * only. Each becomes the Docker secret `versionedSecretName(base, value)`: Docker secrets are
   * immutable, so a new value gets a new name (and the compose text changes). Default: none.
   */
  secrets?: Record<string, pulumi.Input<string>>;
  /** Seconds to wait for every service to run its replicas. Default 300. */
  timeout?: number;
  /** `docker stack deploy --resolve-image`: `never` where no registry answers (the lab). Default `always`. */
  resolveImage?: ResolveImage;
  /**
   * Deploy each `image:` given without a digest at the digest a service of the stack already runs
   * it at (trust on first use: stack-deploy.sh), so a redeploy for any other reason does not move
   * a service to whatever its tag names on the registry today. Default true.
   */
  pinImages?: boolean;
  /**
   * The compose text with no port published (`withoutPorts` in stacks/compose.ts), deployed in
   * place of `compose` until the stack is marked opened (the Docker config `<stack>-opened`, made
   * by the app's setup step), so that the app is set up from inside the swarm before anyone else
   * can reach it. A fact the deploy consults (RemoteScript `context`), never a reason to run it.
   * Default: none (ports published from the first deploy).
   */
  closedCompose?: pulumi.Input<string>;
  /**
   * Values of the compose file's DeployVariables (`${NAME}`), by name: sent on stdin with the
   * secrets, exported to `docker stack deploy` only, so the compose text and the state hold the
   * name alone. Every DeployVariable the text uses needs one. Default: none.
   */
  deployVariables?: Record<string, pulumi.Input<string>>;
  /** Resources the deploy waits for (and that outlive its removal): the shared storage mounts. Default: none. */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

const STACK_NAME = /^[a-z0-9][a-z0-9_-]{0,39}$/;
const SECRET_BASE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,50}$/;

/**
 * The version suffix of a secret: 10 hex characters of scrypt(value). Deterministic, so the
 * name is stable across runs, and one-way and slow, so the name (which sits in the compose
 * text and the state in clear) does not become a cheap oracle for guessing a weak password.
 */
export function secretVersion(base: string, value: string): string {
  return crypto.scryptSync(value, `swarmcloud:${base}`, 5, { N: 1 << 14, r: 8, p: 1 }).toString("hex");
}

/** `base-<version>`: the Docker secret name for `value`. Not secret itself (see `secretVersion`). */
export function versionedSecretName(base: string, value: pulumi.Input<string>): pulumi.Output<string> {
  if (!SECRET_BASE.test(base)) {
    throw new Error(
      `secret base name ${JSON.stringify(base)} must be 1-51 letters, digits, _ . - and start with a letter or digit`,
    );
  }
  return pulumi.unsecret(pulumi.output(value).apply((v) => `${base}-${secretVersion(base, v)}`));
}

/** The stdin of the deploy script: one `name=base64(value)` line per secret, sorted by name. */
export function secretLines(secrets: Record<string, string>): string {
  return Object.keys(secrets)
    .sort()
    .map((name) => `${name}=${Buffer.from(secrets[name]!, "utf8").toString("base64")}\n`)
    .join("");
}

/** Base name -> versioned Docker name, for plain values. */
export function versionedNames(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([base, v]) => [base, `${base}-${secretVersion(base, v)}`]));
}

/**
 * The deploy script's stdin for these secrets (base name -> value) and deploy variables (name ->
 * value): `versioned-name=base64` lines, then `env:NAME=base64` lines, always a Pulumi secret;
 * nothing without either.
 */
export function secretsStdin(
  secrets: Record<string, pulumi.Input<string>>,
  variables: Record<string, pulumi.Input<string>> = {},
): pulumi.Output<string> | undefined {
  if (Object.keys(secrets).length === 0 && Object.keys(variables).length === 0) return undefined;
  return pulumi.secret(
    pulumi.all([pulumi.all(secrets), pulumi.all(variables)]).apply(([values, vars]) => {
      const names = versionedNames(values as Record<string, string>);
      const env = Object.fromEntries(Object.entries(vars).map(([name, v]) => [`env:${name}`, v as string]));
      return (
        secretLines(Object.fromEntries(Object.entries(values).map(([base, v]) => [names[base]!, v as string]))) +
        secretLines(env)
      );
    }),
  );
}

/** The compose text, refused (thrown) when it uses DeployVariables that have no value among `given`. */
export function checkDeployVariables(stackName: string, text: string, given: string[]): string {
  const missing = deployVariableNames(text).filter((name) => !given.includes(name));
  if (missing.length > 0) {
    throw new Error(`stack ${stackName}: the compose file uses ${missing.join(", ")}, which deployVariables lacks`);
  }
  return text;
}

/**
 * What a refresh checks of a stack (stack-deploy-read.sh prints the same from the swarm): one
 * line per service of the compose text, `<stack>_<service> replicated <replicas>` or
 * `<stack>_<service> global`, sorted.
 */
export function serviceLines(stackName: string, compose: string): string {
  const file = (yaml.load(compose) ?? {}) as { services?: Record<string, { deploy?: ComposeDeployPart } | null> };
  return Object.entries(file.services ?? {})
    .map(([name, service]) => {
      const deploy = service?.deploy ?? {};
      const mode = deploy.mode === "global" ? "global" : `replicated ${deploy.replicas ?? 1}`;
      return `${stackName}_${name} ${mode}`;
    })
    .sort()
    .join("\n");
}

/** The part of a service's `deploy` that `serviceLines` and `updateOrders` read. */
interface ComposeDeployPart {
  mode?: string;
  replicas?: number;
  update_config?: { order?: string; failure_action?: string; monitor?: string };
}

/**
 * How an update of the stack replaces each service's tasks, one `<stack>_<service> <order>`
 * per service, sorted (Swarm's default, stop-first, where the compose text sets none), with
 * `, rolled back on failure within <monitor>` where it does.
 */
export function updateOrders(stackName: string, compose: string): string[] {
  const file = (yaml.load(compose) ?? {}) as { services?: Record<string, { deploy?: ComposeDeployPart } | null> };
  return Object.entries(file.services ?? {})
    .map(([name, service]) => {
      const update = service?.deploy?.update_config ?? {};
      const rollback =
        update.failure_action === "rollback" ? ` (rolled back on failure within ${update.monitor ?? "5s"})` : "";
      return `${stackName}_${name} ${update.order ?? "stop-first"}${rollback}`;
    })
    .sort();
}

/** The line a preview shows for each stack: the order in which an update replaces each service's tasks. */
export function updateOrdersLine(stackName: string, compose: string): string {
  return `stack ${stackName} updates one task at a time: ${updateOrders(stackName, compose).join("; ")}`;
}

/** What is wrong with a stack's args (its name, secret names, timeout, deploy variable names), if anything. */
function argsProblem(args: SwarmStackArgs): string | undefined {
  if (!STACK_NAME.test(args.stackName)) {
    return `stack name ${JSON.stringify(args.stackName)} must be 1-40 lowercase letters, digits, _ or -, starting with a letter or digit`;
  }
  const badSecret = Object.keys(args.secrets ?? {}).find((s) => !SECRET_BASE.test(s));
  if (badSecret !== undefined) {
    return `stack ${args.stackName}: secret base name ${JSON.stringify(badSecret)} must be 1-51 letters, digits, _ . - and start with a letter or digit`;
  }
  const timeout = args.timeout ?? 300;
  if (!Number.isInteger(timeout) || timeout < 10) return `stack ${args.stackName}: timeout must be 10 seconds or more`;
  const badVariable = Object.keys(args.deployVariables ?? {}).find((v) => !/^[A-Z][A-Z0-9_]{0,63}$/.test(v));
  if (badVariable !== undefined) {
    return `stack ${args.stackName}: deploy variable ${JSON.stringify(badVariable)} must be capitals, digits and _`;
  }
  return undefined;
}

/**
 * One Docker stack on the swarm: its secrets created on a manager, `docker stack deploy`,
 * and a wait until every service runs its replicas (the deploy fails with the tasks' own
 * errors otherwise). Delete runs `docker stack rm` and removes the stack's secrets.
 *
 * The compose text is an exported environment variable of the deploy script, so a change of
 * the spec re-runs the deploy in place and `pulumi preview --diff` shows it line by line;
 * secret values travel on stdin and are stored nowhere but the swarm's own secret store.
 */
export class SwarmStack extends pulumi.ComponentResource {
  /** The Docker stack name. */
  public readonly stackName: pulumi.Output<string>;
  /** The deployed compose text. */
  public readonly compose: pulumi.Output<string>;
  /** `name mode replicas` of each service after the last deploy. */
  public readonly services: pulumi.Output<string>;
  /** Secret base name -> the versioned Docker secret name (not secret). */
  public readonly secretNames: pulumi.Output<Record<string, string>>;
  /** The deploy step: what a step on the deployed stack (an app's setup) depends on. */
  public readonly deployed: RemoteScript;

  constructor(name: string, args: SwarmStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("swarmcloud:stack:SwarmStack", name, {}, opts);

    const problem = argsProblem(args);
    if (problem !== undefined) throw new pulumi.ResourceError(problem, this);
    const secrets = args.secrets ?? {};
    const variables = args.deployVariables ?? {};
    const timeout = args.timeout ?? 300;
    const stdin = secretsStdin(secrets, variables);
    // One-way digests of the values (see secretVersion): safe to show, and shown in the diff.
    const secretNames: pulumi.Output<Record<string, string>> = pulumi.unsecret(
      pulumi.all(secrets).apply((values) => versionedNames(values as Record<string, string>)),
    );
    const rendered =
      typeof args.compose === "function"
        ? pulumi.unsecret(secretNames.apply(args.compose))
        : pulumi.output(args.compose);
    const compose = rendered.apply((text) => checkDeployVariables(args.stackName, text, Object.keys(variables)));

    const deploy = new RemoteScript(
      `${name}-deploy`,
      {
        node: args.manager.name,
        connection: args.manager.connection,
        fallbackConnections: (args.fallbackManagers ?? []).map((m) => m.connection),
        skipDeleteWhenUnreachable: true,
        create: script("stack-deploy"),
        delete: script("stack-rm"),
        read: script("stack-deploy-read"),
        stdin,
        environment: {
          STACK: args.stackName,
          COMPOSE: compose,
          TIMEOUT: String(timeout),
          RESOLVE_IMAGE: args.resolveImage ?? "always",
          PIN_IMAGES: args.pinImages === false ? "0" : "1",
          // The state a refresh checks: services with their replicas, and the secrets' names.
          SERVICES: compose.apply((text) => serviceLines(args.stackName, text)),
          SECRETS: secretNames.apply((names) => Object.values(names).sort().join("\n")),
        },
        ...(args.closedCompose === undefined
          ? {}
          : {
              context: {
                CLOSED_COMPOSE: pulumi
                  .output(args.closedCompose)
                  .apply((text) => checkDeployVariables(args.stackName, text, Object.keys(variables))),
              },
            }),
        // secrets, `docker stack deploy`, the wait, and old-secret cleanup
        timeout: timeout + 180,
      },
      { parent: this, dependsOn: args.dependsOn },
    );

    // A preview says how an update would replace each service's tasks (start-first or
    // stop-first), beside the diff of the compose text that shows what changes.
    if (pulumi.runtime.isDryRun()) {
      compose.apply((text) => pulumi.log.info(updateOrdersLine(args.stackName, text), this));
    }

    this.stackName = pulumi.output(args.stackName);
    this.compose = compose;
    this.services = deploy.stdout;
    this.secretNames = secretNames;
    this.deployed = deploy;
    this.registerOutputs({
      stackName: this.stackName,
      compose: this.compose,
      services: this.services,
      secretNames: this.secretNames,
    });
  }
}
