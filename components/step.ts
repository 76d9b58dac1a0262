/**
 * A step of the cluster on one node: the RemoteScript every component (DockerHost, Swarm,
 * GlusterVolume) makes for work about a node, with the rules every such step shares written once:
 *
 * - the step carries the node's name, which RemoteScript puts in its errors and progress
 *   (`node worker-1: join the swarm failed (exit 1): ...`);
 * - its scripts read the node's name as NODE_NAME (every step script in components/remote-scripts
 *   requires it);
 * - it runs over the node's own connection unless it says where else (on a manager, on the first
 *   brick node).
 *
 * Everything else is RemoteScript's own args, passed through unchanged: a new RemoteScript arg
 * needs no change here. (SwarmStack's deploy is about a stack, not a node, and makes its
 * RemoteScript itself.)
 */
import * as pulumi from "@pulumi/pulumi";
import { ClusterNode } from "./nodes/types";
import { RemoteScript, RemoteScriptArgs } from "./remote";

/** Where a step's script runs: one connection, and the ones tried in turn when it does not answer. */
export type RunsOn = Pick<RemoteScriptArgs, "connection" | "fallbackConnections">;

/** RemoteScript's args for a step about one node. */
export interface NodeStepArgs extends Omit<
  RemoteScriptArgs,
  "node" | "connection" | "fallbackConnections" | "environment"
> {
  /** The node the step is about: named in errors and progress, exported as NODE_NAME. */
  node: Pick<ClusterNode, "name" | "connection">;
  /** Where the script runs. Default: on `node` itself, over its connection. */
  runsOn?: RunsOn;
  /** Exported before the script runs, besides NODE_NAME; never secrets (they go on `stdin`). */
  environment?: Record<string, pulumi.Input<string>>;
}

/** A RemoteScript named `name` that does one step about `args.node` (see the top of this file). */
export function nodeStep(name: string, args: NodeStepArgs, opts: pulumi.CustomResourceOptions): RemoteScript {
  const { node, runsOn = { connection: node.connection }, environment, ...scriptArgs } = args;
  return new RemoteScript(
    name,
    { node: node.name, ...runsOn, ...scriptArgs, environment: { NODE_NAME: node.name, ...environment } },
    opts,
  );
}
