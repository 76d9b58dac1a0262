#!/usr/bin/env bash
# swarmcloud: probe a peer into the trusted pool
# Runs on the first brick node. Inputs: NODE_NAME (the peer), PEER_ADDR.
set -euo pipefail
: "${NODE_NAME:?}" "${PEER_ADDR:?}"
connected() {
  gluster --mode=script pool list | awk -v a="$PEER_ADDR" '$2 == a && $3 == "Connected" {found=1} END {exit !found}'
}
for i in $(seq 0 150); do
  if connected; then
    echo "$PEER_ADDR"
    exit 0
  fi
  # Probe at once, then again every 5 s while the peer is not connected yet.
  if [ $((i % 25)) -eq 0 ]; then
    gluster --mode=script peer probe "$PEER_ADDR" >/dev/null 2>&1 || true
  fi
  sleep 0.2
done
echo "peer $NODE_NAME ($PEER_ADDR) did not connect to the trusted pool:" >&2
gluster --mode=script pool list >&2
exit 1
