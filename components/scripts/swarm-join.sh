#!/usr/bin/env bash
# swarmcloud: join the swarm
# Joins as a worker (roles are set from a manager, so a role change never needs a rejoin).
# stdin: "<cluster id> <worker token>". Inputs: NODE_NAME, ADVERTISE_ADDR, MANAGER_ADDRS.
# Prints the node's swarm ID. A node already in this swarm is left alone; a node in another
# swarm is refused with its name.
set -euo pipefail
: "${NODE_NAME:?}" "${ADVERTISE_ADDR:?}" "${MANAGER_ADDRS:?}"
read -r cluster_id token

in_this_swarm() {
  if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = true ]; then
    [ "$(docker info --format '{{.Swarm.Cluster.ID}}')" = "$cluster_id" ]
    return
  fi
  local addr
  for addr in $(docker info --format '{{range .Swarm.RemoteManagers}}{{.Addr}} {{end}}'); do
    for manager in $MANAGER_ADDRS; do
      [ "${addr%:*}" = "$manager" ] && return 0
    done
  done
  return 1
}

state=$(docker info --format '{{.Swarm.LocalNodeState}}')
if [ "$state" = pending ]; then
  for _ in $(seq 1 30); do
    state=$(docker info --format '{{.Swarm.LocalNodeState}}')
    [ "$state" = pending ] || break
    sleep 1
  done
fi
if [ "$state" = active ]; then
  if ! in_this_swarm; then
    echo "$NODE_NAME is already part of another swarm; run 'docker swarm leave --force' on it or remove it from swarmcloud:nodes" >&2
    exit 1
  fi
else
  joined=false
  for _ in 1 2 3; do
    for manager in $MANAGER_ADDRS; do
      if docker swarm join --token "$token" --advertise-addr "$ADVERTISE_ADDR" "$manager:2377" >/dev/null 2>/tmp/swarmcloud-join.err; then
        joined=true
        break 2
      fi
    done
    sleep 2
  done
  if [ "$joined" != true ]; then
    echo "$NODE_NAME could not join any manager of $MANAGER_ADDRS:" >&2
    cat /tmp/swarmcloud-join.err >&2
    exit 1
  fi
  rm -f /tmp/swarmcloud-join.err
fi
docker info --format '{{.Swarm.NodeID}}'
