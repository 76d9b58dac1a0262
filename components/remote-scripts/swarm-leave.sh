#!/usr/bin/env bash
# swarmcloud: leave the swarm
# Runs on the node itself after a manager drained and demoted it. Tolerates a node that is
# already outside any swarm. Input: NODE_NAME.
set -euo pipefail
: "${NODE_NAME:?}"
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = inactive ]; then
  exit 0
fi
docker swarm leave >/dev/null 2>&1 || docker swarm leave --force >/dev/null
