#!/usr/bin/env bash
# swarmcloud: remove the bricks of nodes that left the brick list
# Runs on the first brick node once every node has mounted the volume (so the tasks drained off
# a leaving node can start on any other, a new one included). Removes each brick that is in the
# volume but not in BRICKS, lowering the replica count, and detaches its node from the pool when
# it holds no other brick. Does nothing when no brick leaves.
# Inputs: NODE_NAME, VOLUME, BRICKS ("addr:/path" words), MEMBERS (every node's address; context:
# its change alone does not run this script), HEAL_SECONDS (optional: how long the heal before
# the drain may take, default 600; the one after it gets half).
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}" "${BRICKS:?}" "${MEMBERS:?}"
HEAL_SECONDS="${HEAL_SECONDS:-600}"
g() { gluster --mode=script "$@"; }
read -r -a wanted <<<"$BRICKS"
read -r -a members <<<"$MEMBERS"

mapfile -t current < <(g volume info "$VOLUME" | sed -n 's/^Brick[0-9]*: \([^ ]*\).*/\1/p')
remove=()
for b in "${current[@]}"; do in_list "$b" "${wanted[@]}" || remove+=("$b"); done
[ "${#remove[@]}" -gt 0 ] || exit 0
count=${#current[@]}

# This node may know a peer by the name it probed from (its hostname), not by the address in
# the brick list; glusterd then refuses "Incorrect brick". Probing the address of a peer
# already in the pool adds it as another name of that peer (Gluster's own advice for the first
# server), so remove-brick can name it.
for b in "${remove[@]}"; do
  g peer probe "${b%%:*}" >/dev/null 2>&1 || true
done

# A brick leaves only once the others hold a full copy, so the number of copies never drops
# below the configured replica count while a node is replaced. That heal (a new brick filled)
# runs first, while every task still runs where it was: a database drained at the same moment
# would start elsewhere against a volume busy healing. A heal that does not finish stops here,
# before anything is drained or removed (the next `pulumi up` resumes).
# The self-heal daemon crawls its index only every cluster.heal-timeout (600 s by default), so an
# entry left pending while this waits is handed to it at once, at most every 10 s.
prodded=0
healed() {
  local pending
  pending=$(g volume heal "$VOLUME" info 2>/dev/null | awk -F': ' '/^Number of entries:/ {n += $2} END {print n + 0}')
  printf '%s entries still to heal\n' "$pending"
  [ "$pending" -eq 0 ] && return 0
  if [ $((SECONDS - prodded)) -ge 10 ]; then
    g volume heal "$VOLUME" >/dev/null 2>&1 || true
    prodded=$SECONDS
  fi
  return 1
}
# Which entries stayed unhealed, for the error (paths on the volume, never file contents).
unhealed() {
  g volume heal "$VOLUME" info 2>/dev/null | grep -v '^$' | head -n 20 | tr '\n' ' '
}
g volume heal "$VOLUME" full >/dev/null 2>&1 || true
WAIT_EVERY=2 wait_for "$HEAL_SECONDS" "volume $VOLUME to heal onto the other bricks" healed ||
  fatal "volume $VOLUME: no brick was removed; still to heal: $(unhealed)" "run pulumi up again once it has healed"

# Nothing may write through a leaving brick's node while its brick is removed: writes in flight
# at that moment leave heal markers that name brick positions from before the removal, and the
# entries stayed unhealed (seen in the lab: a database's table file after its node was replaced).
# So its node is drained first (its tasks stop and start elsewhere, with every brick present).
# A node that stays in the cluster (in MEMBERS) gets its availability back once its brick is
# gone; one that leaves stays drained until its own swarm resource releases it.
restore=()
restore_availability() {
  local pair
  for pair in "${restore[@]}"; do
    RETRY_ON=. retry docker node update --availability "${pair#*:}" "${pair%%:*}" || true
  done
  restore=()
}
trap restore_availability EXIT
if swarm_is_manager; then
  for b in "${remove[@]}"; do
    id=$(swarm_node_at "${b%%:*}")
    [ -n "$id" ] || continue
    availability=$(docker node inspect --format '{{.Spec.Availability}}' "$id")
    if [ "$availability" != drain ] && in_list "${b%%:*}" "${members[@]}"; then
      restore+=("$id:$availability")
    fi
    swarm_drain "$id" "${b%%:*}"
  done
else
  info "$NODE_NAME is not a swarm manager: the nodes of the bricks to remove are not drained first"
fi

# What the drained tasks wrote on their way out went to every brick; anything still pending
# heals before the brick goes.
WAIT_EVERY=2 wait_for $((HEAL_SECONDS / 2)) "volume $VOLUME to heal after the drain" healed ||
  fatal "volume $VOLUME: no brick was removed; still to heal: $(unhealed)" "run pulumi up again once it has healed"
for b in "${remove[@]}"; do
  count=$((count - 1))
  g volume remove-brick "$VOLUME" replica "$count" "$b" force >/dev/null
done
restore_availability
# Whatever a removal left to heal is healed now, not at the self-heal daemon's next crawl
# (cluster.heal-timeout, 600 s by default).
g volume heal "$VOLUME" >/dev/null 2>&1 || true

# A node whose brick left and that holds no other brick leaves the pool too (its own probe
# resource cannot do it when it was the first brick node, which has none).
for b in "${remove[@]}"; do
  host="${b%%:*}"
  g volume info | grep -q "^Brick[0-9]*: $host:" && continue
  if gluster_known_peer "$host"; then
    g peer detach "$host" force >/dev/null || info "could not detach $host from the pool"
  fi
done
g volume info "$VOLUME" | sed -n 's/^Number of Bricks: //p'
