#!/usr/bin/env bash
# swarmcloud: read the hostname, the hosts block and the daemons
# Run by `pulumi refresh`; changes nothing. Inputs: NODE_NAME, HOSTS_BLOCK (as host.sh).
# Prints NODE_NAME (the hostname now), HOSTS_BLOCK (the lines of the managed block in
# /etc/hosts now) and a DRIFT line for each daemon that does not run or, under systemd, is not
# enabled at boot (host.sh starts and enables them), and one when the container firewall's
# rules are not all in place (lib.sh: container_firewall_ok).
set -euo pipefail
: "${NODE_NAME:?}" "${HOSTS_BLOCK:?}"
with_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
observed NODE_NAME "$(hostname)"
observed HOSTS_BLOCK "$(awk '/^# END swarmcloud$/ { inside = 0 } inside { print } /^# BEGIN swarmcloud$/ { inside = 1 }' /etc/hosts)"
docker info >/dev/null 2>&1 || drift "Docker does not answer on $NODE_NAME"
pgrep -x glusterd >/dev/null || drift "glusterd does not run on $NODE_NAME"
if ! missing=$(container_firewall_ok); then
  drift "containers on $NODE_NAME may reach the cluster's control ports: $missing"
fi
if with_systemd; then
  for unit in docker glusterd swarmcloud-firewall; do
    state=$(systemctl is-enabled "$unit" 2>/dev/null || true)
    [ "$state" = enabled ] || drift "$unit is not enabled at boot on $NODE_NAME (${state:-unknown})"
  done
fi
