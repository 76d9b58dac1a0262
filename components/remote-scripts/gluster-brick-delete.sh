#!/usr/bin/env bash
# swarmcloud: retire the brick directory
# After the volume is gone: purge the data (PURGE=true) or keep it aside, named by date, so a
# later volume starts from an empty brick either way. Inputs: NODE_NAME, BRICK_PATH, PURGE.
set -euo pipefail
: "${NODE_NAME:?}" "${BRICK_PATH:?}" "${PURGE:?}"
[ -d "$BRICK_PATH" ] || exit 0
if [ "$PURGE" = true ]; then
  rm -rf --one-file-system "$BRICK_PATH"
else
  mv "$BRICK_PATH" "$BRICK_PATH.old-$(date +%Y%m%d%H%M%S)"
fi
