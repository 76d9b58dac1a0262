#!/usr/bin/env bash
# swarmcloud: remove a departed node from the node list
# Runs on a manager (exit 75 sends it to the next one) after the node left (or vanished).
# Inputs: NODE_NAME, ADVERTISE_ADDR; context: MANAGER_ADDRS (the managers' addresses when the
# step was last applied).
set -euo pipefail
: "${NODE_NAME:?}" "${ADVERTISE_ADDR:?}"
state=$(swarm_state) || state=""
if [ "${state%% *}" = inactive ]; then
  # The departing node itself (a replaced first manager, tried first) cannot remove itself
  # from the list: the next manager does; when it was the only manager, the list went with it.
  # Any other node outside the swarm means the swarm is being taken down: there is no list left
  # to remove the node from.
  if ip -o -4 addr show | awk '{print $4}' | cut -d/ -f1 | grep -qxF "$ADVERTISE_ADDR"; then
    # A step applied before the managers were recorded (no MANAGER_ADDRS): hand it on, as before.
    [ -n "${MANAGER_ADDRS:-}" ] || not_here "$(hostname) is the node being removed"
    for addr in $MANAGER_ADDRS; do
      [ "$addr" = "$ADVERTISE_ADDR" ] || not_here "$(hostname) is the node being removed"
    done
    info "$NODE_NAME was the only manager: the swarm, and its node list, went with it"
  fi
  exit 0
fi
require_manager
ids() {
  docker node ls --format '{{.ID}}' | while read -r id; do
    if [ "$(docker node inspect --format '{{.Status.Addr}}' "$id")" = "$ADVERTISE_ADDR" ]; then
      printf '%s\n' "$id"
    fi
  done
}
# A node that left shows "down" a moment later; one still up after 30 s is removed by force.
for id in $(ids); do
  WAIT_EVERY=1 wait_for 30 "swarm node $NODE_NAME ($id) to be down" swarm_node_down "$id" || true
  docker node rm --force "$id" >/dev/null
done
