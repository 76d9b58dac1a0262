#!/usr/bin/env bash
# swarmcloud: hold the front door's floating address (keepalived)
# Installs Debian's keepalived and writes one VRRP instance: advertisements by multicast from this
# node's private address (every holder hears every other, including one added after it started,
# so no holder's config names the others), advert_int 1, every holder BACKUP with nopreempt (the
# address stays where it is when a node comes back) at a priority of its own (when the holder
# leaves, the highest backup takes the address first and the others hear it: no two holders
# claim it at once), the address claimed only
# once the local Caddy has answered /healthz (init_fail) and released while it does not, and the
# new holder's gratuitous ARPs sent again 1 s after it takes the address (keepalived's default
# is 5 s) and then every 5 s (a neighbour that missed a change of holder learns it within
# seconds). Idempotent: the config is checked with `keepalived -t` and keepalived
# reloaded only when the config changed.
# Inputs: NODE_NAME, VIP (the floating IPv4 address), ROUTER_ID (1-255), PRIORITY (1-254, default
# 100; distinct per holder), SRC_ADDR (this node's
# private address), INTERFACE (empty: the interface holding SRC_ADDR), CHECK_PORT and CHECK_PATH
# (Caddy's HTTP port and health route, default 80 and /healthz), KEEPALIVED_DIR (default
# /etc/keepalived).
# Prints: interface=<name> changed=<what changed, or none>.
set -euo pipefail
: "${NODE_NAME:?}" "${VIP:?}" "${ROUTER_ID:?}" "${SRC_ADDR:?}"
INTERFACE="${INTERFACE:-}"
PRIORITY="${PRIORITY:-100}"
CHECK_PORT="${CHECK_PORT:-80}"
CHECK_PATH="${CHECK_PATH:-/healthz}"
KEEPALIVED_DIR="${KEEPALIVED_DIR:-/etc/keepalived}"
CONF="$KEEPALIVED_DIR/keepalived.conf"
CHECK="$KEEPALIVED_DIR/swarmcloud-edge-check.sh"
MARK='# written by swarmcloud (edge-keepalived.sh)'
changed=()

have() { command -v "$1" >/dev/null 2>&1; }
with_systemd() { [ -d /run/systemd/system ] && have systemctl; }

# lib.sh is not changed for this (every step's script text, and so every step, would run
# again on existing stacks): the same apt_install as host.sh's.
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
    apt-get update -qq
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The interface that holds this node's private address.
detect_interface() {
  ip -o -4 addr show | awk -v a="$SRC_ADDR" '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }'
}

# What keepalived runs every second: exit 0 while the local Caddy answers its health route with
# an answer of its own or of an app behind it; its 502, 503 or 504 (no app reached) is a failure.
# shellcheck disable=SC2016  # the check's own variables, written literally
check_script() {
  printf '%s\n' '#!/bin/bash' "$MARK: does the local Caddy answer, and reach an app? keepalived runs it" \
    "exec 3<>/dev/tcp/127.0.0.1/$CHECK_PORT || exit 1" \
    "printf 'GET $CHECK_PATH HTTP/1.0\\r\\nHost: swarmcloud-health\\r\\n\\r\\n' >&3" \
    'read -r -t 2 status <&3 || exit 1' \
    'case "$status" in "HTTP/"*" 502"* | "HTTP/"*" 503"* | "HTTP/"*" 504"*) exit 1 ;; "HTTP/"*" "[1-5][0-9][0-9]*) exit 0 ;; esac' \
    'exit 1'
}

keepalived_conf() {
  printf '%s\n' "$MARK for $NODE_NAME; changes here are overwritten" \
    'global_defs {' "  router_id swarmcloud_$NODE_NAME" '  enable_script_security' '  script_user root' '}' '' \
    'vrrp_script swarmcloud_edge {' "  script \"$CHECK\"" '  interval 1' '  timeout 2' '  fall 2' '  rise 2' '  init_fail' '}' '' \
    'vrrp_instance swarmcloud_edge {' '  state BACKUP' "  interface $INTERFACE" "  virtual_router_id $ROUTER_ID" \
    "  priority $PRIORITY" '  nopreempt' '  advert_int 1' "  mcast_src_ip $SRC_ADDR" \
    '  garp_master_delay 1' '  garp_master_refresh 5' '  garp_lower_prio_repeat 5'
  printf '%s\n' '  virtual_ipaddress {' "    $VIP/32 dev $INTERFACE" '  }' \
    '  track_script {' '    swarmcloud_edge' '  }' '}'
}

# Starts keepalived, or makes a running one read its config again (the holder keeps the address).
keepalived_start_or_reload() {
  if with_systemd; then
    [ "$(systemctl is-enabled keepalived 2>/dev/null || true)" = enabled ] || systemctl enable keepalived >/dev/null 2>&1
    if ! systemctl is-active --quiet keepalived; then
      systemctl start keepalived
      changed+=(started)
    elif [ "$1" = reload ]; then
      systemctl reload keepalived
    fi
  elif ! pgrep -x keepalived >/dev/null; then
    # It forks into the background; nothing of it may hold the SSH session's output open.
    keepalived -f "$CONF" </dev/null >/dev/null 2>&1
    changed+=(started)
  elif [ "$1" = reload ]; then
    pkill -HUP -x -o keepalived
  fi
}

if ! have keepalived; then
  have apt-get || fatal "keepalived is not installed on $NODE_NAME and it has no apt-get: install keepalived, then run pulumi up again"
  apt_install keepalived
  changed+=(installed)
fi
if [ -z "$INTERFACE" ]; then
  INTERFACE=$(detect_interface)
  [ -n "$INTERFACE" ] || fatal "no interface of $NODE_NAME holds $SRC_ADDR; set swarmcloud:edge.interface"
fi

mkdir -p "$KEEPALIVED_DIR"
check_script | install_if_changed "$CHECK" 755 && changed+=(check)
tmp=$(mktemp "$CONF.new.XXXXXX")
keepalived_conf >"$tmp"
if ! problems=$(keepalived -t -f "$tmp" 2>&1); then
  rm -f "$tmp"
  fatal "keepalived refuses the config written for $NODE_NAME:" "$problems"
fi
action=none
if install_if_changed "$CONF" 644 <"$tmp"; then
  changed+=(config)
  action=reload
fi
rm -f "$tmp"
keepalived_start_or_reload "$action"
printf 'interface=%s changed=%s\n' "$INTERFACE" "$(IFS=,; printf '%s' "${changed[*]:-none}")"
