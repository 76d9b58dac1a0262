#!/usr/bin/env bash
# swarmcloud: read the node's swarm membership
# Run by `pulumi refresh` on the node itself; changes nothing. Inputs: NODE_NAME (as
# swarm-join.sh). Prints a DRIFT line when the node is not an active swarm member (it left, or
# was made to leave): `pulumi up --refresh` joins it again.
set -euo pipefail
: "${NODE_NAME:?}"
state=$(docker info --format '{{.Swarm.LocalNodeState}}') || fatal "Docker on $NODE_NAME does not answer"
[ "$state" = active ] || drift "$NODE_NAME is not in the swarm (Swarm.LocalNodeState=$state)"
