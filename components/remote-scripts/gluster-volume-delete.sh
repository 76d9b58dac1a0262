#!/usr/bin/env bash
# swarmcloud: stop and delete the volume
# Runs on the first brick node after every mount is gone. A peer that restarted a moment ago
# makes glusterd refuse ("some of the peers are down"), so wait for the pool; a brick node that
# stays down (a dead machine) has its brick dropped first, so the rest can still be deleted.
# Inputs: NODE_NAME, VOLUME.
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}"
g() { gluster --mode=script "$@"; }
g volume info "$VOLUME" >/dev/null 2>&1 || exit 0
down() { g pool list | awk 'NR > 1 && $3 != "Connected" {print $2}'; }
none_down() {
  local peers
  peers=$(down)
  [ -z "$peers" ] && return 0
  printf 'down: %s\n' "$(printf '%s\n' "$peers" | paste -sd' ')"
  return 1
}
wait_for 30 "every peer of the pool to be connected" none_down || true
bricks() { g volume info "$VOLUME" | sed -n 's/^Brick[0-9]*: \([^ ]*\).*/\1/p'; }
for peer in $(down); do
  for brick in $(bricks | grep "^$peer:" || true); do
    count=$(bricks | wc -l)
    [ "$count" -gt 1 ] || break
    info "peer $peer is down: dropping its brick $brick before the delete"
    g volume remove-brick "$VOLUME" replica $((count - 1)) "$brick" force >/dev/null
  done
done
err=$(mktemp)
trap 'rm -f "$err"' EXIT
for attempt in $(seq 1 10); do
  if g volume info "$VOLUME" | grep -q '^Status: Started'; then
    g volume stop "$VOLUME" force >/dev/null 2>"$err" || true
  fi
  if g volume delete "$VOLUME" >/dev/null 2>>"$err"; then
    exit 0
  fi
  [ "$attempt" -lt 10 ] && sleep 3
done
fatal "could not delete volume $VOLUME:" "$(cat "$err")"
