/**
 * swarmcloud's entry point: reads the engine (the stack's config, which keys are secret, the
 * node list the last update exported) and hands it to `main` (components/program.ts), which
 * builds the graph. This is the only file that talks to the engine's config; everything below
 * takes plain typed args.
 */
import * as pulumi from "@pulumi/pulumi";
import { main } from "./components/program";

const stack = pulumi.getStack();

/** Whether the engine holds a config key encrypted (true when the SDK cannot tell). */
function isConfigSecret(fullKey: string): boolean {
  // isConfigSecret is not in the SDK's typings; it reads the engine's list of encrypted keys.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const runtimeConfig = require("@pulumi/pulumi/runtime/config") as { isConfigSecret?: (k: string) => boolean };
  return runtimeConfig.isConfigSecret ? runtimeConfig.isConfigSecret(fullKey) : true;
}

/** This stack itself, read as another would: the outputs of its last update. */
let self: pulumi.StackReference | undefined;

/** What this stack exported last time under `name` (undefined on its first update). */
async function previousOutput(name: string): Promise<unknown> {
  self ??= new pulumi.StackReference(`${pulumi.getOrganization()}/${pulumi.getProject()}/${stack}`);
  const details = await self.getOutputDetails(name);
  return details.value ?? undefined;
}

export = main({
  stack,
  config: pulumi.runtime.allConfig(),
  isSecret: isConfigSecret,
  digitaloceanTokenEnv: process.env.DIGITALOCEAN_TOKEN,
  repoDir: __dirname,
  previousOutput,
});
