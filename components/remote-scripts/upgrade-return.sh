#!/usr/bin/env bash
# swarmcloud: bring the upgraded node back into service
# Runs on a manager (exit 75 sends it to the next one), after upgrade-node.sh saw the node back:
# waits until the swarm sees it ready (and, a manager, reachable again), sets its availability
# back to the configured one and waits until every task the swarm wants runs.
# Inputs: NODE_NAME, RUN (the upgrade run: its change runs this step); context: ADVERTISE_ADDR,
# ROLE, AVAILABILITY (the configured one), FRESH ("true": the node is new in this update).
# Prints: <node> <availability>.
set -euo pipefail
: "${NODE_NAME:?}" "${RUN:?}" "${ADVERTISE_ADDR:?}" "${ROLE:?}" "${AVAILABILITY:?}"
FRESH="${FRESH:-false}"
require_manager "bringing $NODE_NAME back needs a manager"

if [ "$FRESH" = true ]; then
  echo "$NODE_NAME $AVAILABILITY"
  exit 0
fi
id=$(swarm_node_at "$ADVERTISE_ADDR")
[ -n "$id" ] || fatal "no swarm node has the address $ADVERTISE_ADDR ($NODE_NAME)"

node_ready() {
  local state
  state=$(docker node inspect --format '{{.Status.State}}' "$id")
  printf '%s\n' "$state"
  [ "$state" = ready ]
}
manager_reachable() {
  local seen
  seen=$(docker node inspect --format '{{if .ManagerStatus}}{{.ManagerStatus.Reachability}}{{end}}' "$id")
  printf '%s\n' "${seen:-not a manager}"
  [ "$seen" = reachable ]
}
WAIT_EVERY=1 wait_for 300 "$NODE_NAME to be ready in the swarm after its upgrade" node_ready ||
  fatal "$NODE_NAME did not come back ready in the swarm; it stays drained"
if [ "$ROLE" = manager ]; then
  WAIT_EVERY=1 wait_for 300 "manager $NODE_NAME to be reachable after its upgrade" manager_reachable ||
    fatal "manager $NODE_NAME is not reachable after its upgrade; it stays drained"
fi
RETRY_ON=. retry docker node update --availability "$AVAILABILITY" "$id" ||
  fatal "could not set $NODE_NAME back to $AVAILABILITY"
WAIT_EVERY=1 wait_for 300 "every task of the swarm to run after $NODE_NAME came back" swarm_tasks_running ||
  fatal "tasks do not run after $NODE_NAME came back (docker service ps shows why)"
echo "$NODE_NAME $AVAILABILITY"
