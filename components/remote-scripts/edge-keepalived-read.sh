#!/usr/bin/env bash
# swarmcloud: read the front door's keepalived
# Run by `pulumi refresh`; changes nothing. Inputs: as edge-keepalived.sh (NODE_NAME, VIP,
# KEEPALIVED_DIR). Prints SRC_ADDR (the address the config advertises from) and a DRIFT line
# when the config is gone or holds another floating address, or keepalived does not run (a
# restarted node container, a stopped service).
set -euo pipefail
: "${NODE_NAME:?}" "${VIP:?}"
KEEPALIVED_DIR="${KEEPALIVED_DIR:-/etc/keepalived}"
CONF="$KEEPALIVED_DIR/keepalived.conf"
if [ ! -f "$CONF" ]; then
  drift "keepalived has no config on $NODE_NAME"
  exit 0
fi
observed SRC_ADDR "$(awk '$1 == "mcast_src_ip" { print $2; exit }' "$CONF")"
grep -q "^    $VIP/32 dev " "$CONF" || drift "keepalived on $NODE_NAME does not hold $VIP in its config"
pgrep -x keepalived >/dev/null || drift "keepalived does not run on $NODE_NAME"
