#!/usr/bin/env bash
# swarmcloud: probe a peer into the trusted pool
# Runs on the first brick node. Done only when the peer and this node see each other as "Peer
# in Cluster (Connected)": "Connected" alone comes earlier, while the handshake is still going,
# and a volume change naming the peer then fails. Inputs: NODE_NAME (the peer), PEER_ADDR.
# Prints PEER_ADDR.
set -euo pipefail
: "${NODE_NAME:?}" "${PEER_ADDR:?}"
# A probe while glusterd on the peer is still starting is refused; probe again every 5 s. While a
# probe's handshake runs, `peer status` can list nothing for a moment (a lab run saw the peer
# known, then not, then a probe answer "already in peer list"): the probe's own answer counts
# too, and whether the peer joined is waited for, never read once.
probed=no
for _ in $(seq 1 12); do
  if gluster_known_peer "$PEER_ADDR"; then
    probed=yes
    break
  fi
  answer=$(gluster --mode=script peer probe "$PEER_ADDR" 2>&1) || true
  case "$answer" in
    *"probe: success"* | *"already in peer list"*)
      probed=yes
      break
      ;;
  esac
  sleep 5
done
[ "$probed" = yes ] || {
  gluster --mode=script peer probe "$PEER_ADDR" >&2 || true
  fatal "peer $NODE_NAME ($PEER_ADDR) could not be probed into the trusted pool (is glusterd running on it and port 24007 open?)"
}
gluster_wait_pool 60 "$PEER_ADDR" || fatal "peer $NODE_NAME ($PEER_ADDR) did not join the trusted pool"
echo "$PEER_ADDR"
