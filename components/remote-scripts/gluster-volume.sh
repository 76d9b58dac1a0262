#!/usr/bin/env bash
# swarmcloud: create, grow and start the replicated volume
# Runs on the first brick node. The volume is pure replicate: one brick per brick node, so a
# brick node added raises the replica count (add-brick). Bricks that leave are removed later, by
# gluster-shrink.sh, once every node has mounted the volume.
# Inputs: NODE_NAME, VOLUME, BRICKS ("addr:/path" words, in order, this node's first),
# ARBITER (true|false), OPTIONS ("key=value" lines), STATUS ("Started": the state
# gluster-volume-read.sh checks; not used here). Context: MEMBERS (every node's address,
# space-separated: the volume's first auth.allow).
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}" "${BRICKS:?}"
ARBITER="${ARBITER:-false}"
OPTIONS="${OPTIONS:-}"
MEMBERS="${MEMBERS:-}"
g() { gluster --mode=script "$@"; }
read -r -a wanted <<<"$BRICKS"

# Every volume change below (create, add-brick, start) needs each brick's peer
# "Peer in Cluster (Connected)", seen from here and from every other brick node; a peer that
# has just been probed or is reconnecting is not there yet.
peers=()
for b in "${wanted[@]:1}"; do peers+=("${b%%:*}"); done
gluster_wait_pool 60 "${peers[@]}" || fatal "volume $VOLUME: its bricks' nodes are not one joined pool yet; nothing was changed"

if ! g volume info "$VOLUME" >/dev/null 2>&1; then
  layout=(replica "${#wanted[@]}")
  [ "$ARBITER" = true ] && layout+=(arbiter 1)
  g volume create "$VOLUME" "${layout[@]}" "${wanted[@]}" force >/dev/null
  # Never open to every address, not even before each node's step adds its own
  # (gluster-allow.sh): every node of the cluster at once (their steps then find their address
  # listed and change nothing), or the brick nodes when the members are not given.
  read -r -a first_allowed <<<"$MEMBERS"
  [ "${#first_allowed[@]}" -gt 0 ] || first_allowed=("${wanted[@]%%:*}")
  g volume set "$VOLUME" auth.allow "$(printf '%s\n' "${first_allowed[@]}" | paste -sd, -)" >/dev/null
fi

mapfile -t current < <(g volume info "$VOLUME" | sed -n 's/^Brick[0-9]*: \([^ ]*\).*/\1/p')
add=()
for b in "${wanted[@]}"; do in_list "$b" "${current[@]}" || add+=("$b"); done

count=${#current[@]}
for b in "${add[@]}"; do
  count=$((count + 1))
  g volume add-brick "$VOLUME" replica "$count" "$b" force >/dev/null
done
while IFS= read -r pair; do
  [ -n "$pair" ] || continue
  g volume set "$VOLUME" "${pair%%=*}" "${pair#*=}" >/dev/null
done <<<"$OPTIONS"

if ! g volume info "$VOLUME" | grep -q '^Status: Started'; then
  g volume start "$VOLUME" >/dev/null
fi
if [ "${#add[@]}" -gt 0 ]; then
  g volume heal "$VOLUME" full >/dev/null 2>&1 || true
fi
g volume info "$VOLUME" | sed -n 's/^Number of Bricks: //p'
