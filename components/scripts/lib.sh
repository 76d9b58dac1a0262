# Helpers every remote script shares. components/scripts.ts inserts this file into each script
# right after its `set -euo pipefail` line, so it is not a script of its own: it defines
# functions (and one constant) and runs nothing. It has no "swarmcloud:" header line: that line
# names a script's step in error messages and must stay the script's own.
# shellcheck shell=bash

# fatal MESSAGE...: print the message on stderr and end the script with exit 1.
fatal() {
  printf '%s\n' "$*" >&2
  exit 1
}

# The state in which glusterd lets a peer take part in volume changes (create, add-brick,
# remove-brick, replace-brick, start). "Connected" in `gluster pool list` comes earlier: a
# freshly probed peer is connected while still "Accepted peer request", and add-brick then
# fails with "Host ... is not in 'Peer in Cluster' state".
readonly GLUSTER_PEER_JOINED="Peer in Cluster (Connected)"

# gluster_peer_state PEER [VIEWER]: the state that glusterd on VIEWER (default this node) holds
# for PEER, named by its hostname, any of its other names or its UUID; nothing when VIEWER does
# not know it. VIEWER is asked through `gluster --remote-host` (read-only, port 24007).
gluster_peer_state() {
  local peer=$1 remote=()
  [ -n "${2:-}" ] && remote=(--remote-host="$2")
  gluster --mode=script "${remote[@]}" peer status 2>/dev/null | awk -v a="$peer" '
    function flush() { if (hit && !done) { print state; done = 1 }; hit = 0; state = ""; others = 0 }
    /^Hostname:/ { flush(); if ($2 == a) hit = 1; next }
    /^Uuid:/ { if ($2 == a) hit = 1; next }
    /^State:/ { sub(/^State: */, ""); state = $0; next }
    /^Other names:/ { others = 1; next }
    /^$/ { others = 0; next }
    others && $1 == a { hit = 1 }
    END { flush() }'
}

# gluster_known_peer PEER: this node's glusterd knows PEER (by any of its names).
gluster_known_peer() {
  [ -n "$(gluster_peer_state "$1")" ]
}

# gluster_peer_uuid PEER: the UUID of a peer this node knows, by any of its names.
gluster_peer_uuid() {
  gluster --mode=script peer status | awk -v a="$1" '
    /^Hostname:/ { hit = ($2 == a); others = 0; next }
    /^Uuid:/ { uuid = $2; if (hit) { print uuid; exit } next }
    /^Other names:/ { others = 1; next }
    /^$/ { others = 0; next }
    others && $1 == a { print uuid; exit }'
}

# gluster_wait_joined SECONDS PAIR...: wait until every pair "VIEWER:PEER" holds: glusterd on
# VIEWER ("local" for this node) sees PEER in state "Peer in Cluster (Connected)". Fails after
# SECONDS naming each pair that is not there yet and the state seen.
gluster_wait_joined() {
  local limit=$1 pair viewer peer state lagging
  local deadline=$((SECONDS + limit))
  shift
  while :; do
    lagging=()
    for pair in "$@"; do
      viewer=${pair%%:*}
      peer=${pair#*:}
      if [ "$viewer" = local ]; then
        state=$(gluster_peer_state "$peer")
      else
        state=$(gluster_peer_state "$peer" "$viewer")
      fi
      [ "$state" = "$GLUSTER_PEER_JOINED" ] || lagging+=("peer $peer as seen from $viewer: ${state:-unknown peer}")
    done
    [ "${#lagging[@]}" -eq 0 ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      printf 'gluster peers not in state "%s" after %s s:\n' "$GLUSTER_PEER_JOINED" "$limit" >&2
      printf '  %s\n' "${lagging[@]}" >&2
      return 1
    fi
    sleep 0.2
  done
}

# gluster_wait_pool SECONDS PEER...: wait until this node and the PEERs (other nodes, by
# address) are one joined pool: this node sees each PEER as "Peer in Cluster (Connected)", and
# each PEER sees this node and every other PEER so (asked by UUID, the one name all agree on).
gluster_wait_pool() {
  local limit=$1 viewer viewer_uuid peer pairs=() uuids=()
  shift
  for peer in "$@"; do pairs+=("local:$peer"); done
  gluster_wait_joined "$limit" "${pairs[@]}" || return 1
  uuids=("$(gluster --mode=script system:: uuid get | awk '{print $2}')")
  for peer in "$@"; do uuids+=("$(gluster_peer_uuid "$peer")"); done
  pairs=()
  for viewer in "$@"; do
    viewer_uuid=$(gluster_peer_uuid "$viewer")
    for peer in "${uuids[@]}"; do
      [ "$peer" = "$viewer_uuid" ] || pairs+=("$viewer:$peer")
    done
  done
  gluster_wait_joined "$limit" "${pairs[@]}"
}

# swarm_is_manager: this node is a swarm manager and can run `docker node` commands.
swarm_is_manager() {
  [ "$(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null)" = true ]
}

# swarm_node_at ADDR: the swarm ID of the node whose address is ADDR; nothing if none is. A
# manager is also matched by its Raft address (the leader may report 0.0.0.0 as its own).
swarm_node_at() {
  docker node ls -q |
    xargs -r docker node inspect --format '{{.ID}} {{.Status.Addr}} {{if .ManagerStatus}}{{.ManagerStatus.Addr}}{{end}}' |
    awk -v a="$1" '$2 == a || index($3, a ":") == 1 { print $1; exit }'
}

# swarm_drain NODE_ID NAME: on a manager, set the node to drain and wait until its tasks have
# stopped (up to 180 s: a database flushes for up to its stop_grace_period, and leaving before
# that would kill it while its replacement starts elsewhere on the same files), then until every
# service's tasks run again elsewhere (up to 120 s; tasks that cannot be placed are not waited
# for beyond that). A node that is down has nothing left to stop.
swarm_drain() {
  local id=$1 name=$2 i live starting
  for _ in $(seq 1 10); do
    docker node update --availability drain "$id" >/dev/null 2>&1 && break
    sleep "0.$((RANDOM % 9 + 1))" # another update at the same moment ("update out of sequence")
  done
  for i in $(seq 1 180); do
    [ "$(docker node inspect --format '{{.Status.State}}' "$id")" = down ] && break
    live=$(docker node ps --format '{{.CurrentState}}' "$id" |
      grep -cE '^(New|Pending|Assigned|Accepted|Preparing|Ready|Starting|Running)' || true)
    [ "$live" -eq 0 ] && break
    if [ "$i" -eq 180 ]; then
      echo "$name: $live task(s) still running after 180 s of draining; going on" >&2
    fi
    sleep 1
  done
  # The replacements must run elsewhere before the node demotes or leaves: agents connected to a
  # departing manager lose their session, and a task starting at that moment can come up without
  # its DNS record on the overlay network (seen with Docker 20.10: a database nobody could resolve).
  for _ in $(seq 1 120); do
    starting=$(docker service ls -q | xargs -r docker service ps --filter desired-state=running \
      --format '{{.CurrentState}}' | grep -cvE '^Running' || true)
    [ "$starting" -eq 0 ] && break
    sleep 1
  done
}
