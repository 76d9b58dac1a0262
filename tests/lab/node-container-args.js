#!/usr/bin/env node
// The node container's recipe (components/nodes/node-container.json, the table LocalNodes
// declares its containers from) as what tests/lab/lab.sh needs, one item per line:
//
//   node tests/lab/node-container-args.js run CONTAINER CGROUP_ROOT   `docker run` arguments
//   node tests/lab/node-container-args.js volumes CONTAINER           the node's volume names
//
// `run` prints the recipe only; lab.sh adds the name, hostname, network, labels, SSH key and
// image. Plain Node, no build step: the lab runs it on a fresh machine right after `npm ci`.
// tests/unit/node-container.test.ts checks that these arguments and LocalNodes' inputs agree.
"use strict";

const path = require("path");

const TABLE = require(path.join(__dirname, "..", "..", "components", "nodes", "node-container.json"));

/** The node's volume names: `<container>-<key>` for each volume of the table, in table order. */
function volumeNames(container) {
  return Object.keys(TABLE.volumes).map((v) => `${container}-${v}`);
}

/** `--device` as lab.sh always wrote it: the short form where it means the same. */
function deviceArg(d) {
  if (d.hostPath === d.containerPath && d.permissions === "rwm") return d.hostPath;
  return `${d.hostPath}:${d.containerPath}:${d.permissions}`;
}

/** The recipe as `docker run` arguments for the container CONTAINER, its nested dockerd under CGROUP_ROOT. */
function runArgs(container, cgroupRoot) {
  const args = [];
  for (const cap of TABLE.capabilities.add) args.push("--cap-add", cap);
  for (const cap of TABLE.capabilities.drop) args.push("--cap-drop", cap);
  for (const opt of TABLE.securityOpts) args.push("--security-opt", opt);
  for (const d of TABLE.devices) args.push("--device", deviceArg(d));
  for (const rule of TABLE.deviceCgroupRules) args.push("--device-cgroup-rule", rule);
  args.push("--cgroupns", TABLE.cgroupns);
  for (const b of TABLE.binds) args.push("-v", `${b.source}:${b.target}:${b.readOnly ? "ro" : "rw"}`);
  for (const [target, options] of Object.entries(TABLE.tmpfs)) args.push("--tmpfs", `${target}:${options}`);
  for (const [v, target] of Object.entries(TABLE.volumes)) {
    args.push("--mount", `type=volume,src=${container}-${v},dst=${target}`);
  }
  args.push("--stop-timeout", String(TABLE.stopTimeoutSeconds));
  for (const [name, value] of Object.entries(TABLE.env)) {
    args.push("-e", `${name}=${value.replace("{cgroupRoot}", cgroupRoot).replace("{container}", container)}`);
  }
  return args;
}

/** Prints ITEMS one per line; refuses an item a line cannot hold. */
function print(items) {
  for (const item of items) {
    if (/[\n\0]/.test(item)) throw new Error(`node-container-args: ${JSON.stringify(item)} holds a line break`);
  }
  process.stdout.write(items.map((item) => `${item}\n`).join(""));
}

function main(argv) {
  const [command, container, cgroupRoot] = argv;
  const usage = "usage: node-container-args.js run CONTAINER CGROUP_ROOT | volumes CONTAINER";
  if (!container || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(container)) throw new Error(usage);
  if (command === "volumes" && argv.length === 2) return print(volumeNames(container));
  if (command === "run" && argv.length === 3 && /^\/[a-zA-Z0-9_./-]*$/.test(cgroupRoot)) {
    return print(runArgs(container, cgroupRoot));
  }
  throw new Error(usage);
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`${e.message}\n`);
    process.exit(2);
  }
}

module.exports = { runArgs, volumeNames };
