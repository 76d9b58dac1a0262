#!/usr/bin/env bash
# swarmcloud: stop and delete the volume
# Runs on the first brick node after every mount is gone. A peer that restarted a moment ago
# makes glusterd refuse ("some of the peers are down"), so wait for the pool and retry.
# Inputs: NODE_NAME, VOLUME.
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}"
g() { gluster --mode=script "$@"; }
g volume info "$VOLUME" >/dev/null 2>&1 || exit 0
for _ in $(seq 1 60); do
  g pool list | awk 'NR > 1 && $3 != "Connected" {down=1} END {exit down}' && break
  sleep 1
done
for attempt in $(seq 1 10); do
  if g volume info "$VOLUME" | grep -q '^Status: Started'; then
    g volume stop "$VOLUME" force >/dev/null 2>/tmp/swarmcloud-volume.err || true
  fi
  if g volume delete "$VOLUME" >/dev/null 2>>/tmp/swarmcloud-volume.err; then
    rm -f /tmp/swarmcloud-volume.err
    exit 0
  fi
  [ "$attempt" -lt 10 ] && sleep 3
done
echo "could not delete volume $VOLUME:" >&2
cat /tmp/swarmcloud-volume.err >&2
exit 1
