#!/usr/bin/env bash
# swarmcloud: stop and delete the volume
# Runs on the first brick node after every mount is gone. Inputs: NODE_NAME, VOLUME.
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}"
g() { gluster --mode=script "$@"; }
g volume info "$VOLUME" >/dev/null 2>&1 || exit 0
if g volume info "$VOLUME" | grep -q '^Status: Started'; then
  g volume stop "$VOLUME" force >/dev/null
fi
g volume delete "$VOLUME" >/dev/null
