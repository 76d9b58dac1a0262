#!/usr/bin/env bash
# swarmcloud: create, grow or shrink and start the replicated volume
# Runs on the first brick node (a swarm manager by default: it drains the node of a brick
# before removing the brick, see below). The volume is pure replicate: one brick per brick node, so a
# brick node added raises the replica count (add-brick) and one removed lowers it.
# Inputs: NODE_NAME, VOLUME, BRICKS ("addr:/path" words, in order, this node's first),
# ARBITER (true|false), OPTIONS ("key=value" lines), MEMBERS (every node's address; context:
# its change alone does not run this script), STATUS ("Started": the state
# gluster-volume-read.sh checks; not used here).
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}" "${BRICKS:?}" "${MEMBERS:?}"
ARBITER="${ARBITER:-false}"
OPTIONS="${OPTIONS:-}"
g() { gluster --mode=script "$@"; }
read -r -a wanted <<<"$BRICKS"

# Every volume change below (create, add-brick, remove-brick, start) needs each brick's peer
# "Peer in Cluster (Connected)", seen from here and from every other brick node; a peer that
# has just been probed or is reconnecting is not there yet.
peers=()
for b in "${wanted[@]:1}"; do peers+=("${b%%:*}"); done
gluster_wait_pool 60 "${peers[@]}" || fatal "volume $VOLUME: its bricks' nodes are not one joined pool yet; nothing was changed"

if ! g volume info "$VOLUME" >/dev/null 2>&1; then
  layout=(replica "${#wanted[@]}")
  [ "$ARBITER" = true ] && layout+=(arbiter 1)
  g volume create "$VOLUME" "${layout[@]}" "${wanted[@]}" force >/dev/null
fi

mapfile -t current < <(g volume info "$VOLUME" | sed -n 's/^Brick[0-9]*: \([^ ]*\).*/\1/p')
has() {
  local item=$1
  shift
  local x
  for x in "$@"; do [ "$x" = "$item" ] && return 0; done
  return 1
}
add=()
for b in "${wanted[@]}"; do has "$b" "${current[@]}" || add+=("$b"); done
remove=()
for b in "${current[@]}"; do has "$b" "${wanted[@]}" || remove+=("$b"); done

# This node may know a peer by the name it probed from (its hostname), not by the address in
# the brick list; glusterd then refuses "Incorrect brick". Probing the address of a peer
# already in the pool adds it as another name of that peer (Gluster's own advice for the first
# server), so remove-brick can name it.
for b in "${remove[@]}"; do
  g peer probe "${b%%:*}" >/dev/null 2>&1 || true
done

count=${#current[@]}
for b in "${add[@]}"; do
  count=$((count + 1))
  g volume add-brick "$VOLUME" replica "$count" "$b" force >/dev/null
done
# A brick leaves only once the new ones hold a full copy, so the number of copies never drops
# below the configured replica count while a node is replaced.
# A heal that does not finish stops here, before any brick leaves (the new ones stay; the next
# `pulumi up` resumes).
# Nothing may write through a leaving brick's node while its brick is removed: writes in flight
# at that moment leave heal markers that name brick positions from before the removal, and the
# entries stayed unhealed (seen in the lab: a database's table file after its node was replaced).
# So its node is drained first (its tasks stop and run elsewhere, with all bricks present). A
# node that stays in the cluster (in MEMBERS) gets its availability back once its brick is gone;
# one that leaves stays drained until its own swarm resource releases it.
read -r -a members <<<"$MEMBERS"
restore=()
restore_availability() {
  local pair
  for pair in "${restore[@]}"; do
    RETRY_ON=. retry docker node update --availability "${pair#*:}" "${pair%%:*}" || true
  done
}
trap restore_availability EXIT
if [ "${#remove[@]}" -gt 0 ]; then
  if swarm_is_manager; then
    for b in "${remove[@]}"; do
      id=$(swarm_node_at "${b%%:*}")
      [ -n "$id" ] || continue
      availability=$(docker node inspect --format '{{.Spec.Availability}}' "$id")
      if [ "$availability" != drain ] && has "${b%%:*}" "${members[@]}"; then
        restore+=("$id:$availability")
      fi
      swarm_drain "$id" "${b%%:*}"
    done
  else
    info "$NODE_NAME is not a swarm manager: the nodes of the bricks to remove are not drained first"
  fi
fi
if [ "${#add[@]}" -gt 0 ] && [ "${#remove[@]}" -gt 0 ]; then
  g volume heal "$VOLUME" full >/dev/null 2>&1 || true
  healed() {
    local pending
    pending=$(g volume heal "$VOLUME" info 2>/dev/null | awk -F': ' '/^Number of entries:/ {n += $2} END {print n + 0}')
    printf '%s entries still to heal\n' "$pending"
    [ "$pending" -eq 0 ]
  }
  WAIT_EVERY=2 wait_for 600 "volume $VOLUME to heal onto the new brick(s)" healed ||
    fatal "volume $VOLUME: no brick was removed; see 'gluster volume heal $VOLUME info' and run pulumi up again"
fi
for b in "${remove[@]}"; do
  count=$((count - 1))
  g volume remove-brick "$VOLUME" replica "$count" "$b" force >/dev/null
done
restore_availability
restore=()
# Whatever a removal left to heal is healed now, not at the self-heal daemon's next crawl
# (cluster.heal-timeout, 600 s by default).
if [ "${#remove[@]}" -gt 0 ]; then
  g volume heal "$VOLUME" >/dev/null 2>&1 || true
fi
# A node whose brick left and that holds no other brick leaves the pool too (its own probe
# resource cannot do it when it was the first brick node, which has none).
for b in "${remove[@]}"; do
  host="${b%%:*}"
  g volume info | grep -q "^Brick[0-9]*: $host:" && continue
  if gluster_known_peer "$host"; then
    g peer detach "$host" force >/dev/null || info "could not detach $host from the pool"
  fi
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
