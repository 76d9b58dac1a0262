#!/usr/bin/env bash
# swarmcloud: give the front door's address away before the node upgrade
# On an edge node, first of its upgrade: waits until another edge node's Caddy answers its health
# route, then stops keepalived here (it leaves with a priority-0 advertisement, so a peer takes
# the address at once) and waits until the address answers from there. The drain that follows
# then stops this node's Caddy with no request on its way to it. keepalived comes back with the
# node's boot (or from upgrade-node.sh when the node does not reboot).
# Inputs: NODE_NAME, RUN (the upgrade run: its change runs this step); context: VIP, PEERS (the
# other holders' private addresses, space-separated), CHECK_PORT, CHECK_PATH, FRESH ("true": the
# node is new in this update: nothing to do).
# Prints: released=<yes|no: keepalived was not running> holder=<peer that answered>.
set -euo pipefail
: "${NODE_NAME:?}" "${RUN:?}" "${VIP:?}" "${CHECK_PORT:?}" "${CHECK_PATH:?}"
PEERS="${PEERS:-}"
FRESH="${FRESH:-false}"
RELEASED=/run/swarmcloud-upgrade-released

with_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
answers() { curl -fsS -o /dev/null -m 2 "http://$1:$CHECK_PORT$CHECK_PATH" 2>/dev/null; }

# A peer whose Caddy answers: the one that will take the address.
peer_ready() {
  local peer
  for peer in $PEERS; do
    if answers "$peer"; then
      printf '%s\n' "$peer"
      return 0
    fi
  done
  printf 'no edge node among %s answers %s on port %s\n' "${PEERS:-(none)}" "$CHECK_PATH" "$CHECK_PORT"
  return 1
}
keepalived_gone() {
  if pgrep -x keepalived >/dev/null; then
    printf 'keepalived still runs\n'
    return 1
  fi
}
# The address is no longer on this node and answers from elsewhere.
moved() {
  if ip -o -4 addr show | awk '{ split($4, p, "/"); print p[1] }' | grep -qxF "$VIP"; then
    printf '%s is still on %s\n' "$VIP" "$NODE_NAME"
    return 1
  fi
  answers "$VIP" || {
    printf '%s does not answer yet\n' "$VIP"
    return 1
  }
}

if [ "$FRESH" = true ]; then
  info "$NODE_NAME joined in this update: no upgrade"
  echo "released=no holder=none"
  exit 0
fi
if ! pgrep -x keepalived >/dev/null; then
  info "keepalived does not run on $NODE_NAME: no address to give away"
  echo "released=no holder=none"
  exit 0
fi
[ -n "$PEERS" ] || fatal "$NODE_NAME is the only edge node: the front door would be down while it is upgraded; label another node edge=true (or use edge.holders: managers)"
holder=$(WAIT_EVERY=1 wait_for 180 "another edge node's Caddy to answer before $NODE_NAME gives the address away" peer_ready) ||
  fatal "not upgrading $NODE_NAME: no other edge node could take the front door's address"
# keepalived there takes the address only once its check has passed twice (rise 2, every second):
# a Caddy that has just come up gets a few seconds, and must still answer then.
sleep 5
holder=$(WAIT_EVERY=1 wait_for 60 "another edge node's Caddy to keep answering" peer_ready) ||
  fatal "not upgrading $NODE_NAME: no other edge node could take the front door's address"
touch "$RELEASED"
if with_systemd; then
  systemctl stop keepalived
else
  pkill -TERM -x keepalived || true
fi
WAIT_EVERY=0.5 wait_for 20 "keepalived to stop on $NODE_NAME" keepalived_gone || pkill -KILL -x keepalived || true
WAIT_EVERY=0.5 wait_for 30 "the front door's address to answer from another edge node" moved ||
  fatal "the front door's address did not move away from $NODE_NAME"
echo "released=yes holder=$holder"
