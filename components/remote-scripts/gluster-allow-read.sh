#!/usr/bin/env bash
# swarmcloud: read whether the node may mount the volume
# Run by `pulumi refresh` on the first brick node (exit 75: the next brick node); changes
# nothing. Inputs: NODE_NAME, VOLUME, ADDRESS (as gluster-allow.sh). Prints a DRIFT line when
# the volume's auth.allow does not list ADDRESS (or admits everyone): `pulumi up --refresh`
# runs gluster-allow.sh again.
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}" "${ADDRESS:?}"
gluster --mode=script volume info "$VOLUME" >/dev/null 2>&1 || not_here "$(hostname) does not know volume $VOLUME"
mapfile -t allowed < <(gluster_allowed "$VOLUME")
if [ "${allowed[*]}" = "*" ]; then
  drift "volume $VOLUME admits every address (auth.allow *)"
elif ! in_list "$ADDRESS" "${allowed[@]}"; then
  drift "$NODE_NAME ($ADDRESS) is not in the auth.allow of volume $VOLUME: $(printf '%s\n' "${allowed[@]}" | paste -sd, -)"
fi
