#!/usr/bin/env bash
# swarmcloud: drain the node for its upgrade
# Runs on a manager (exit 75 sends it to the next one). Before it takes the node out: every
# manager reachable (the swarm keeps its quorum with this node down) and the node ready. Then
# drains it and waits until its tasks have stopped and run elsewhere (lib.sh swarm_drain).
# Inputs: NODE_NAME, RUN (the upgrade run: its change runs this step); context: ADVERTISE_ADDR,
# FRESH ("true": the node is new in this update, just installed: nothing to do).
# Prints: the node's swarm ID.
set -euo pipefail
: "${NODE_NAME:?}" "${RUN:?}" "${ADVERTISE_ADDR:?}"
FRESH="${FRESH:-false}"
require_manager "draining $NODE_NAME needs a manager"

if [ "$FRESH" = true ]; then
  info "$NODE_NAME joined in this update: no upgrade"
  exit 0
fi
id=$(swarm_node_at "$ADVERTISE_ADDR")
[ -n "$id" ] || fatal "no swarm node has the address $ADVERTISE_ADDR ($NODE_NAME)"

# Every manager reachable: taking one down then leaves a majority.
managers_reachable() {
  local all up total
  all=$(docker node ls --filter role=manager --format '{{.ManagerStatus}}')
  up=$(printf '%s\n' "$all" | grep -cE '^(Leader|Reachable)$' || true)
  total=$(printf '%s\n' "$all" | grep -c . || true)
  printf '%s of %s managers reachable\n' "$up" "$total"
  [ "$up" -eq "$total" ]
}
node_ready() {
  local state
  state=$(docker node inspect --format '{{.Status.State}}' "$id")
  printf '%s\n' "$state"
  [ "$state" = ready ]
}
WAIT_EVERY=1 wait_for 300 "every manager to be reachable before $NODE_NAME is upgraded" managers_reachable ||
  fatal "not upgrading $NODE_NAME: the swarm would lose its quorum with a manager down; bring the unreachable managers back first"
WAIT_EVERY=1 wait_for 120 "$NODE_NAME to be ready before its upgrade" node_ready ||
  fatal "not upgrading $NODE_NAME: it is not ready in the swarm"
info "$NODE_NAME: draining"
swarm_drain "$id" "$NODE_NAME"
echo "$id"
