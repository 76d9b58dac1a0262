#!/usr/bin/env bash
# swarmcloud: detach a peer from the trusted pool
# Runs on the first brick node once the peer holds no brick. Inputs: NODE_NAME, PEER_ADDR.
set -euo pipefail
: "${NODE_NAME:?}" "${PEER_ADDR:?}"
if gluster --mode=script pool list | awk -v a="$PEER_ADDR" '$2 == a {found=1} END {exit !found}'; then
  gluster --mode=script peer detach "$PEER_ADDR" force >/dev/null
fi
