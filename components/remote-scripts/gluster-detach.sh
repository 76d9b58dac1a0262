#!/usr/bin/env bash
# swarmcloud: detach a peer from the trusted pool
# Runs on the first brick node once the peer holds no brick. A peer that still holds a brick is
# left in the pool: when the first brick node changes, the old probe of a node that stays is
# deleted, not the node. Inputs: NODE_NAME, PEER_ADDR.
set -euo pipefail
: "${NODE_NAME:?}" "${PEER_ADDR:?}"
if gluster --mode=script volume info 2>/dev/null | grep -q "^Brick[0-9]*: $PEER_ADDR:"; then
  info "$NODE_NAME ($PEER_ADDR) still holds a brick; it stays in the pool"
  exit 0
fi
# The peer by its hostname or any of its other names (it may be known by name, not address).
if gluster_known_peer "$PEER_ADDR"; then
  gluster --mode=script peer detach "$PEER_ADDR" force >/dev/null
fi
