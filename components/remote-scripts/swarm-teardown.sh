#!/usr/bin/env bash
# swarmcloud: take the swarm down on its first manager
# Runs last on destroy, after every other node left. Input: NODE_NAME.
set -euo pipefail
: "${NODE_NAME:?}"
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != inactive ]; then
  docker swarm leave --force >/dev/null
fi
