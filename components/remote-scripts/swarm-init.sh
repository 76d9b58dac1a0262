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

state=$(swarm_state)
if [ "${state%% *}" = active ]; then
  require_manager
else
  if ! ip -o -4 addr show | awk '{print $4}' | cut -d/ -f1 | grep -qxF "$ADVERTISE_ADDR"; then
    not_here "$(hostname) is in no swarm and only $NODE_NAME ($ADVERTISE_ADDR) may start one"
  fi
  if docker_gossip_stale; then
    info "$NODE_NAME: dockerd still holds the gossip port of a swarm it left (moby/moby#31913); restarting Docker before the init"
    docker_restart
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
