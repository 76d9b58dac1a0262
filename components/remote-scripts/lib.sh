# Helpers every remote script shares. components/remote-scripts.ts inserts this file into each script
# right after its `set -euo pipefail` line, so it is not a script of its own: it defines
# functions (and one constant) and runs nothing. It has no "swarmcloud:" header line: that line
# names a script's step in error messages and must stay the script's own.
# shellcheck shell=bash

# info LINE...: progress and diagnostics, each argument a line on stderr (stdout is the
# script's result, which the caller reads).
info() {
  printf '%s\n' "$@" >&2
}

# fatal LINE...: print the lines on stderr (as info) and end the script with exit 1.
fatal() {
  info "$@"
  exit 1
}

# swarm_state: this node's "<LocalNodeState> <ControlAvailable>" from one `docker info`:
# "active true" on a manager, "active false" on a worker, "inactive false" in no swarm
# ("pending", "error" or "locked" in between). Fails, with Docker's error, when Docker does not
# answer.
swarm_state() {
  docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'
}

# not_here MESSAGE...: print why this node is the wrong one and exit 75, which sends the script
# to the next manager (RemoteScript's fallbackConnections; with none left, 75 fails like 1).
not_here() {
  info "$@"
  exit 75 # not here: the caller tries the next manager
}

# require_manager [WHY]: go on only on a swarm manager. Anywhere else print
# "<hostname> is not a swarm manager (<what docker info says>)[; WHY]" and exit 75 (not_here).
require_manager() {
  local state seen
  state=$(swarm_state) || state=""
  [ "$state" = "active true" ] && return 0
  if [ -n "$state" ]; then
    seen="Swarm.LocalNodeState=${state%% *}, Swarm.ControlAvailable=${state#* }"
  else
    seen="docker info did not answer"
  fi
  not_here "$(hostname) is not a swarm manager ($seen)${1:+; $1}"
}

# retry CMD...: run CMD (its stdout discarded) up to 10 times, 0.1-0.9 s apart (at random, so
# scripts racing each other spread out), while its error matches RETRY_ON (grep -E on its stderr;
# default "out of sequence": another update of the same swarm object at the same moment). Any
# other error ends at once. On failure prints CMD's last stderr and returns 1.
retry() {
  local pattern="${RETRY_ON:-out of sequence}" err attempt
  for attempt in $(seq 1 10); do
    err=$("$@" 2>&1 >/dev/null) && return 0
    printf '%s\n' "$err" | grep -qE -- "$pattern" || break
    [ "$attempt" -lt 10 ] && sleep "0.$((RANDOM % 9 + 1))"
  done
  printf '%s\n' "$err" >&2
  return 1
}

# wait_for SECONDS WHAT CMD...: run CMD until it succeeds, every WAIT_EVERY seconds (default
# 0.2), for at most SECONDS. CMD prints the state it sees; when SECONDS have passed without
# success, print "timed out after SECONDS s waiting for WHAT; last seen: <its last output>" on
# stderr and return 1.
wait_for() {
  local limit=$1 what=$2 seen
  local deadline=$((SECONDS + limit))
  shift 2
  while :; do
    seen=$("$@") && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      case "$seen" in
        *$'\n'*) printf 'timed out after %s s waiting for %s; last seen:\n%s\n' "$limit" "$what" "$(printf '%s\n' "$seen" | sed 's/^/  /')" >&2 ;;
        *) printf 'timed out after %s s waiting for %s; last seen: %s\n' "$limit" "$what" "${seen:-nothing}" >&2 ;;
      esac
      return 1
    fi
    sleep "${WAIT_EVERY:-0.2}"
  done
}

# docker_gossip_stale: asked on a node in no swarm (the caller has its swarm state already):
# its dockerd still listens on the swarm's gossip port (7946/tcp), the network agent of a swarm
# it left, which the next init or join cannot replace ("Error in agentInit ... 7946: bind:
# address already in use": the node then has no service discovery, and its tasks cannot resolve
# the other services: moby/moby#31913; the lab's backup suite met it on a cluster destroyed and
# made again on the same nodes).
docker_gossip_stale() {
  ss -Hltnp 'sport = :7946' 2>/dev/null | grep -q '"dockerd"'
}

# docker_restart: restarts Docker (restart_daemon: dockerd stopped within 60 s, a supervisor
# given 15 s) and waits until it answers.
docker_restart() {
  restart_daemon dockerd docker 60 15 dockerd_detached
  WAIT_EVERY=1 wait_for 90 "Docker to answer after its restart" docker info --format '{{.ID}}' >/dev/null
}
# dockerd_detached: starts dockerd outside this session, logging to /var/log/dockerd.log.
dockerd_detached() {
  setsid dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
}

# restart_daemon NAME UNIT STOP_SECONDS SUPERVISOR_SECONDS START...: restarts the daemon NAME:
# systemd's UNIT where systemd runs; elsewhere the running NAME is stopped (waited for
# STOP_SECONDS by its pids: a supervisor such as the lab's node entrypoint may start a new one at
# once, which must not count as "still running") and, unless a supervisor starts it again within
# SUPERVISOR_SECONDS, started by the command START. The caller waits for it to answer.
restart_daemon() {
  local name=$1 unit=$2 stop=$3 supervisor=$4 old
  shift 4
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl restart "$unit"
    return
  fi
  old=$(pgrep -x "$name" | paste -sd ' ' -)
  pkill -x "$name" || true
  WAIT_EVERY=0.5 wait_for "$stop" "$name on ${NODE_NAME:-$(hostname)} to stop" daemon_pids_gone "$name" "$old"
  # Quietly: no supervisor is the usual case on a host without systemd.
  WAIT_EVERY=1 wait_for "$supervisor" "a supervisor to start $name" pgrep -x "$name" >/dev/null 2>&1 || "$@"
}
# daemon_pids_gone NAME "PID...": no NAME with one of these pids runs any more (prints those that do).
daemon_pids_gone() {
  local now pid alive=()
  now=" $(pgrep -x "$1" | paste -sd ' ' -) "
  for pid in $2; do
    case "$now" in *" $pid "*) alive+=("$pid") ;; esac
  done
  [ "${#alive[@]}" -eq 0 ] && return 0
  printf 'still running: %s\n' "${alive[*]}"
  return 1
}

# gluster_brick_running VOLUME: a brick process of VOLUME runs on this node.
gluster_brick_running() {
  pgrep -f "glusterfsd.*--volfile-id ${1}\." >/dev/null 2>&1
}

# install_if_changed FILE MODE: stdin becomes FILE (mode MODE) unless FILE holds it already;
# succeeds only when it changed.
install_if_changed() {
  local tmp
  tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  chmod "$2" "$tmp"
  if cmp -s "$tmp" "$1"; then
    rm -f "$tmp"
    return 1
  fi
  mv -f "$tmp" "$1"
}

# one_shot_ended SERVICE: print the state of a one-shot service's task ("<state> <error>", or
# "no task yet"); succeeds once the task has ended, well or not.
one_shot_ended() {
  local state
  state=$(docker service ps --no-trunc --format '{{.CurrentState}} {{.Error}}' "$1" | head -n 1)
  printf '%s\n' "${state:-no task yet}"
  case "$state" in Complete* | Failed* | Rejected* | Shutdown* | Orphaned*) return 0 ;; esac
  return 1
}

# one_shot_said SERVICE KEY: the last "KEY=..." line a one-shot service logged (nothing when none);
# one_shot_has_said SERVICE KEY: succeeds once there is one.
one_shot_said() {
  docker service logs --raw "$1" 2>/dev/null | grep "^$2=" | tail -n 1
}
one_shot_has_said() {
  [ -n "$(one_shot_said "$1" "$2")" ]
}

# remove_labelled LABEL: the services, secrets and networks labelled LABEL removed (what a killed
# one-shot left behind); a secret or network that an ending task still holds is tried for 30 s.
remove_labelled() {
  local s kind
  for s in $(docker service ls -q --filter "label=$1"); do docker service rm "$s" >/dev/null 2>&1 || true; done
  for kind in secret network; do
    for s in $(docker "$kind" ls -q --filter "label=$1"); do
      WAIT_EVERY=1 wait_for 30 "$kind $s to be free" docker "$kind" rm "$s" >/dev/null 2>&1 || true
    done
  done
}

# in_list ITEM WORD...: ITEM is one of the WORDs.
in_list() {
  local item=$1 word
  shift
  for word in "$@"; do [ "$word" = "$item" ] && return 0; done
  return 1
}

# The state in which glusterd lets a peer take part in volume changes (create, add-brick,
# remove-brick, replace-brick, start). "Connected" in `gluster pool list` comes earlier: a
# freshly probed peer is connected while still "Accepted peer request", and add-brick then
# fails with "Host ... is not in 'Peer in Cluster' state".
readonly GLUSTER_PEER_JOINED="Peer in Cluster (Connected)"

# gluster_peer_state PEER [VIEWER]: the state that glusterd on VIEWER (default this node) holds
# for PEER, named by its hostname, any of its other names or its UUID; nothing when VIEWER does
# not know it. VIEWER is asked through `gluster --remote-host` (read-only, port 24007), for at
# most 10 s: with management TLS the lab saw such a call get no answer for the CLI's whole 120 s
# (glusterd had taken the connection), so a caller's wait loop must be able to ask again.
gluster_peer_state() {
  local peer=$1 cli=(gluster --mode=script)
  [ -n "${2:-}" ] && cli=(timeout 10 gluster --mode=script --remote-host="$2")
  "${cli[@]}" peer status 2>/dev/null | awk -v a="$peer" '
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
  [ "$(swarm_state 2>/dev/null)" = "active true" ]
}

# swarm_node_at ADDR: the swarm ID of the node whose address is ADDR; nothing if none is. A
# manager is also matched by its Raft address (the leader may report 0.0.0.0 as its own).
swarm_node_at() {
  docker node ls -q |
    xargs -r docker node inspect --format '{{.ID}} {{.Status.Addr}} {{if .ManagerStatus}}{{.ManagerStatus.Addr}}{{end}}' |
    awk -v a="$1" '$2 == a || index($3, a ":") == 1 { print $1; exit }'
}

# swarm_node_down NODE_ID: the node's status is "down", as a node that left shows a moment
# later; prints the status seen (for wait_for).
swarm_node_down() {
  local state
  state=$(docker node inspect --format '{{.Status.State}}' "$1")
  printf '%s\n' "$state"
  [ "$state" = down ]
}

# swarm_tasks_stopped NODE_ID: the node is down or none of its tasks runs or is about to;
# prints how many still do.
swarm_tasks_stopped() {
  local live
  [ "$(docker node inspect --format '{{.Status.State}}' "$1")" = down ] && return 0
  live=$(docker node ps --format '{{.CurrentState}}' "$1" |
    grep -cE '^(New|Pending|Assigned|Accepted|Preparing|Ready|Starting|Running)' || true)
  printf '%s task(s) still running\n' "$live"
  [ "$live" -eq 0 ]
}

# swarm_tasks_running: every task the swarm wants running is running; prints how many are not.
swarm_tasks_running() {
  local starting
  starting=$(docker service ls -q | xargs -r docker service ps --filter desired-state=running \
    --format '{{.CurrentState}}' | grep -cvE '^Running' || true)
  printf '%s task(s) not running yet\n' "$starting"
  [ "$starting" -eq 0 ]
}

# swarm_drain NODE_ID NAME: on a manager, set the node to drain and wait until its tasks have
# stopped (up to 180 s: a database flushes for up to its stop_grace_period, and leaving before
# that would kill it while its replacement starts elsewhere on the same files), then until every
# service's tasks run again elsewhere (up to 120 s: the agents connected to a departing manager
# lose their session, and a task starting at that moment can come up without its DNS record on
# the overlay network, seen with Docker 20.10; tasks that cannot be placed are not waited for
# beyond that). A node that is down has nothing left to stop. Never fails: a drain that could not
# be set or waited for is reported and the caller goes on.
swarm_drain() {
  local id=$1 name=$2
  # Another update at the same moment ("update out of sequence"), or a leader election while
  # another release demotes a manager: any error is tried again.
  RETRY_ON=. retry docker node update --availability drain "$id" 2>/dev/null || info "$name: could not set it to drain"
  WAIT_EVERY=1 wait_for 180 "the tasks of $name to stop after draining" swarm_tasks_stopped "$id" || info "$name: going on"
  WAIT_EVERY=1 wait_for 120 "the tasks of the swarm to run elsewhere" swarm_tasks_running || true
}

# observed KEY VALUE: a read script's result (the *-read.sh scripts run by `pulumi refresh`): one
# "KEY=<line>" on stdout per line of VALUE, or "KEY=" for an empty VALUE. RemoteScript joins the
# lines of one KEY back with newlines and puts the value in place of the declared one.
observed() {
  local key=$1 line
  if [ -z "$2" ]; then
    printf '%s=\n' "$key"
    return 0
  fi
  while IFS= read -r line; do
    printf '%s=%s\n' "$key" "$line"
  done <<<"$2"
}

# drift WHAT...: a read script's report of a drift no declared key shows (what the create step
# made is gone, in whole or in part): "DRIFT=<WHAT>" on stdout. `pulumi up --refresh` runs the
# create step again.
drift() {
  printf 'DRIFT=%s\n' "$*"
}

# Containers on a node may not open connections to the cluster's control ports on any node:
# Swarm's management port (2377), glusterd (24007-24008) and Gluster's bricks (49152-60999),
# nor the cloud metadata address (169.254.169.254, where a droplet's user data, its SSH host key
# included, can be read). Two chains: SWARMCLOUD-INPUT, jumped to from INPUT (this node), and
# SWARMCLOUD-FORWARD, from DOCKER-USER (other nodes: traffic Docker forwards and masquerades as
# the node's own). Only new connections coming in on a container interface (docker0,
# docker_gwbridge, br-*) match: replies, traffic between containers on one bridge and the nodes'
# own traffic pass, so the nodes still reach each other. No constants: host.sh copies these
# functions into the boot-time script with `declare -f`.

# container_rules CHAIN: the rules of one chain, one per line, as `iptables -A CHAIN` takes them.
container_rules() {
  local ifc ports
  for ifc in docker0 docker_gwbridge br-+; do
    # Forwarded traffic between containers on one bridge is theirs, not the cluster's.
    if [ "$1" = SWARMCLOUD-FORWARD ]; then
      printf '%s\n' "-i $ifc -o $ifc -j RETURN"
    fi
    for ports in 2377 24007:24008 49152:60999; do
      printf '%s\n' "-i $ifc -p tcp -m tcp --dport $ports -m conntrack --ctstate NEW -j REJECT --reject-with tcp-reset"
    done
    if [ "$1" = SWARMCLOUD-FORWARD ]; then
      printf '%s\n' "-i $ifc -d 169.254.169.254/32 -m conntrack --ctstate NEW -j REJECT --reject-with icmp-port-unreachable"
    fi
  done
  printf '%s\n' "-j RETURN"
}

# container_firewall_ok: both chains hold exactly their rules and INPUT and DOCKER-USER jump to
# them; prints what is missing. Read-only (iptables -C, -S).
container_firewall_ok() {
  local chain from rule count
  for chain in SWARMCLOUD-INPUT SWARMCLOUD-FORWARD; do
    from=INPUT
    [ "$chain" = SWARMCLOUD-FORWARD ] && from=DOCKER-USER
    if ! iptables -w -C "$from" -j "$chain" 2>/dev/null; then
      printf '%s does not jump to %s\n' "$from" "$chain"
      return 1
    fi
    count=0
    while IFS= read -r rule; do
      count=$((count + 1))
      # shellcheck disable=SC2086 # a rule is words
      if ! iptables -w -C "$chain" $rule 2>/dev/null; then
        printf '%s lacks: %s\n' "$chain" "$rule"
        return 1
      fi
    done < <(container_rules "$chain")
    if [ "$(iptables -w -S "$chain" | grep -c '^-A ')" != "$count" ]; then
      printf '%s holds other rules\n' "$chain"
      return 1
    fi
  done
}

# container_firewall_apply: (re)writes both chains and the jumps to them (the first rule of
# INPUT and of DOCKER-USER, which it makes when Docker has not yet: Docker keeps the chain and
# appends its RETURN after ours).
container_firewall_apply() {
  local chain from rule
  iptables -w -N DOCKER-USER 2>/dev/null || true
  for chain in SWARMCLOUD-INPUT SWARMCLOUD-FORWARD; do
    from=INPUT
    [ "$chain" = SWARMCLOUD-FORWARD ] && from=DOCKER-USER
    iptables -w -N "$chain" 2>/dev/null || iptables -w -F "$chain"
    while IFS= read -r rule; do
      # shellcheck disable=SC2086 # a rule is words
      iptables -w -A "$chain" $rule
    done < <(container_rules "$chain")
    iptables -w -C "$from" -j "$chain" 2>/dev/null || iptables -w -I "$from" 1 -j "$chain"
  done
}

# gluster_allowed VOLUME: the volume's auth.allow, one address (or pattern) per line; "*" (the
# default) admits every address. Fails when this node does not know the volume.
gluster_allowed() {
  gluster --mode=script volume get "$1" auth.allow | awk '$1 == "auth.allow" { print $2 }' | tr ',' '\n' | sed '/^$/d'
}

# gluster_clients VOLUME: the addresses with a client connected to any of the volume's bricks,
# one per line, each once.
gluster_clients() {
  gluster --mode=script volume status "$1" clients 2>/dev/null |
    awk '$1 ~ /^[0-9.]+:[0-9]+$/ { sub(/:[0-9]+$/, "", $1); print $1 }' | sort -u
}

# gluster_lock_allowed: hold a lock (fd 9, until the script ends) so that the steps of several
# nodes change auth.allow one after the other on this node, each reading what the last wrote.
gluster_lock_allowed() {
  exec 9>/run/swarmcloud-gluster-allow.lock
  flock -w 120 9 || fatal "another change of auth.allow on $(hostname) did not end within 120 s"
}
