#!/usr/bin/env bash
# swarmcloud: read the peer's place in the trusted pool
# Run by `pulumi refresh` on the first brick node; changes nothing. Inputs: NODE_NAME (the
# peer), PEER_ADDR (as gluster-probe.sh). Prints a DRIFT line when this node's glusterd does not
# know the peer (it was detached): `pulumi up --refresh` probes it again.
set -euo pipefail
: "${NODE_NAME:?}" "${PEER_ADDR:?}"
gluster --mode=script pool list >/dev/null 2>&1 || fatal "glusterd on $(hostname) does not answer"
gluster_known_peer "$PEER_ADDR" || drift "peer $NODE_NAME ($PEER_ADDR) is not in the trusted pool of $(hostname)"
