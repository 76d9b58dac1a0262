#!/usr/bin/env bash
# swarmcloud: initialise the swarm, or read the tokens of the one this manager manages
# Prints "<cluster id> <node id> <worker token> <manager token>" (the caller keeps it secret).
# May run on any manager (the first one being down or replaced): a node that already manages a
# swarm is adopted as it is; only the first manager itself (the owner of ADVERTISE_ADDR) ever
# initialises one. Inputs: NODE_NAME, ADVERTISE_ADDR, DATA_PATH_PORT, DEFAULT_ADDR_POOL
# (space-separated CIDRs, may be empty).
set -euo pipefail
: "${NODE_NAME:?}" "${ADVERTISE_ADDR:?}" "${DATA_PATH_PORT:?}"
DEFAULT_ADDR_POOL="${DEFAULT_ADDR_POOL:-}"

state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$state" = active ]; then
  if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" != true ]; then
    echo "$NODE_NAME is a worker of another swarm; run 'docker swarm leave' on it, or make it a worker here" >&2
    exit 1
  fi
else
  if ! ip -o -4 addr show | awk '{print $4}' | cut -d/ -f1 | grep -qxF "$ADVERTISE_ADDR"; then
    echo "$NODE_NAME ($ADVERTISE_ADDR) is not reachable and this manager is in no swarm: start $NODE_NAME first" >&2
    exit 1
  fi
  args=(--advertise-addr "$ADVERTISE_ADDR" --data-path-port "$DATA_PATH_PORT")
  for pool in $DEFAULT_ADDR_POOL; do
    args+=(--default-addr-pool "$pool")
  done
  docker swarm init "${args[@]}" >/dev/null
fi
printf '%s %s %s %s\n' \
  "$(docker info --format '{{.Swarm.Cluster.ID}}')" \
  "$(docker info --format '{{.Swarm.NodeID}}')" \
  "$(docker swarm join-token -q worker)" \
  "$(docker swarm join-token -q manager)"
