#!/usr/bin/env bash
# swarmcloud: join the swarm
# Joins as a worker (roles are set from a manager, so a role change never needs a rejoin).
# stdin: "<cluster id> <worker token>". Inputs: NODE_NAME, ADVERTISE_ADDR, MANAGER_ADDRS.
# Prints the node's swarm ID. A node already in this swarm is left alone; a node in another
# swarm is refused with its name.
set -euo pipefail
: "${NODE_NAME:?}" "${ADVERTISE_ADDR:?}" "${MANAGER_ADDRS:?}"
read -r cluster_id token

# One `docker info` answers everything below (it is slow on a busy manager).
swarm_info() {
  docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}} {{if .Swarm.Cluster}}{{.Swarm.Cluster.ID}}{{else}}-{{end}} {{range .Swarm.RemoteManagers}}{{.Addr}} {{end}}'
}
read -r state control node_id current_cluster remote_managers <<<"$(swarm_info)"

for _ in $(seq 1 150); do
  [ "$state" = pending ] || break
  sleep 0.2
  read -r state control node_id current_cluster remote_managers <<<"$(swarm_info)"
done

in_this_swarm() {
  if [ "$control" = true ]; then
    [ "$current_cluster" = "$cluster_id" ]
    return
  fi
  local addr manager
  for addr in $remote_managers; do
    for manager in $MANAGER_ADDRS; do
      [ "${addr%:*}" = "$manager" ] && return 0
    done
  done
  return 1
}

if [ "$state" = active ]; then
  if ! in_this_swarm; then
    fatal "$NODE_NAME is already part of another swarm; run 'docker swarm leave --force' on it or remove it from swarmcloud:nodes"
  fi
  echo "$node_id"
  exit 0
fi

err=$(mktemp)
trap 'rm -f "$err"' EXIT
for _ in 1 2 3; do
  for manager in $MANAGER_ADDRS; do
    if docker swarm join --token "$token" --advertise-addr "$ADVERTISE_ADDR" "$manager:2377" >/dev/null 2>"$err"; then
      docker info --format '{{.Swarm.NodeID}}'
      exit 0
    fi
  done
  sleep 2
done
fatal "$NODE_NAME could not join any manager of $MANAGER_ADDRS:" "$(cat "$err")"
