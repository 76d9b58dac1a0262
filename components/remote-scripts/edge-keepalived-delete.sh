#!/usr/bin/env bash
# swarmcloud: release the front door's floating address (stop keepalived)
# Stops keepalived (which takes the address off this node; another holder takes it over) and
# removes the config edge-keepalived.sh wrote; a config someone else wrote is left alone, and so
# is the keepalived package. Tolerates a node where nothing was set up.
# Inputs: NODE_NAME, KEEPALIVED_DIR (default /etc/keepalived).
set -euo pipefail
: "${NODE_NAME:?}"
KEEPALIVED_DIR="${KEEPALIVED_DIR:-/etc/keepalived}"
CONF="$KEEPALIVED_DIR/keepalived.conf"
with_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

if [ ! -f "$CONF" ] || ! grep -q '^# written by swarmcloud (edge-keepalived.sh)' "$CONF"; then
  info "no swarmcloud keepalived config on $NODE_NAME: nothing to release"
  exit 0
fi
if with_systemd; then
  systemctl disable --now keepalived >/dev/null 2>&1 || true
elif pgrep -x keepalived >/dev/null; then
  pkill -x keepalived || true
  wait_for 10 "keepalived on $NODE_NAME to stop" sh -c '! pgrep -x keepalived' || true
fi
rm -f "$CONF" "$KEEPALIVED_DIR/swarmcloud-edge-check.sh"
info "keepalived stopped on $NODE_NAME; the floating address is another holder's"
