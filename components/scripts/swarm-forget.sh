#!/usr/bin/env bash
# swarmcloud: remove a departed node from the node list
# Runs on a manager (exit 75 sends it to the next one) after the node left (or vanished). Inputs: NODE_NAME, ADVERTISE_ADDR.
set -euo pipefail
: "${NODE_NAME:?}" "${ADVERTISE_ADDR:?}"
if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = inactive ]; then
  # The departing node itself (a replaced first manager, tried first) cannot remove itself
  # from the list: the next manager does. Any other node outside the swarm means the swarm is
  # being taken down: there is no list left to remove the node from.
  if ip -o -4 addr show | awk '{print $4}' | cut -d/ -f1 | grep -qxF "$ADVERTISE_ADDR"; then
    echo "$(hostname) is the node being removed" >&2
    exit 75 # not here: the caller tries the next manager
  fi
  exit 0
fi
if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" != true ]; then
  echo "$(hostname) is not a swarm manager" >&2
  exit 75 # not here: the caller tries the next manager
fi
ids() {
  docker node ls --format '{{.ID}}' | while read -r id; do
    if [ "$(docker node inspect --format '{{.Status.Addr}}' "$id")" = "$ADVERTISE_ADDR" ]; then
      printf '%s\n' "$id"
    fi
  done
}
for id in $(ids); do
  for _ in $(seq 1 30); do
    [ "$(docker node inspect --format '{{.Status.State}}' "$id")" = down ] && break
    sleep 1
  done
  docker node rm --force "$id" >/dev/null
done
