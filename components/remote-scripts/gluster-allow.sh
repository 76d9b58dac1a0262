#!/usr/bin/env bash
# swarmcloud: allow the node to mount the volume (auth.allow)
# Runs on the first brick node (exit 75 sends it to the next brick node when this one does not
# know the volume). The volume's auth.allow lists the addresses whose clients its bricks accept:
# each node's own step adds its address here, before the node mounts, and takes it out on
# delete (gluster-disallow.sh) once the node has unmounted, so adding or removing a node
# changes only its own address and runs on one node. The steps of several nodes take turns
# (gluster_lock_allowed); a step whose address is listed already changes nothing and waits for
# no turn. While the volume still admits everyone ("*", Gluster's default: a volume made before
# this step), the list starts as every node's address.
# Inputs: NODE_NAME, VOLUME, ADDRESS (the node's cluster address). Context: MEMBERS (every
# node's address, space-separated). Prints the allowed addresses, comma-separated.
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}" "${ADDRESS:?}"
MEMBERS="${MEMBERS:-}"
gluster --mode=script volume info "$VOLUME" >/dev/null 2>&1 || not_here "$(hostname) does not know volume $VOLUME"
# Already listed (the volume was made with every node's address, or this step ran before):
# nothing to change, so no turn to wait for. Only this node's own steps take its address out.
mapfile -t allowed < <(gluster_allowed "$VOLUME")
if [ "${allowed[*]}" != "*" ] && in_list "$ADDRESS" "${allowed[@]}"; then
  printf '%s\n' "${allowed[@]}" | paste -sd, -
  exit 0
fi
gluster_lock_allowed
mapfile -t allowed < <(gluster_allowed "$VOLUME")
if [ "${allowed[*]}" = "*" ] || [ "${#allowed[@]}" -eq 0 ]; then
  read -r -a allowed <<<"$MEMBERS"
fi
in_list "$ADDRESS" "${allowed[@]}" || allowed+=("$ADDRESS")
wanted=$(printf '%s\n' "${allowed[@]}" | paste -sd, -)
if [ "$(gluster_allowed "$VOLUME" | paste -sd, -)" != "$wanted" ]; then
  gluster --mode=script volume set "$VOLUME" auth.allow "$wanted" >/dev/null
  info "volume $VOLUME: $NODE_NAME ($ADDRESS) may mount it"
fi
printf '%s\n' "$wanted"
