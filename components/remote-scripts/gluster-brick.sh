#!/usr/bin/env bash
# swarmcloud: prepare the brick directory
# A directory left by an earlier volume (its volume-id attribute names a volume that no longer
# exists) is moved aside, so the next 'volume create' does not refuse it.
# Inputs: NODE_NAME, BRICK_PATH, VOLUME.
set -euo pipefail
: "${NODE_NAME:?}" "${BRICK_PATH:?}" "${VOLUME:?}"
if [ -d "$BRICK_PATH" ] && ! gluster volume info "$VOLUME" >/dev/null 2>&1; then
  if [ -e "$BRICK_PATH/.glusterfs" ] || { command -v getfattr >/dev/null 2>&1 &&
    getfattr --absolute-names -n trusted.glusterfs.volume-id "$BRICK_PATH" >/dev/null 2>&1; }; then
    aside="$BRICK_PATH.old-$(date +%Y%m%d%H%M%S)"
    mv "$BRICK_PATH" "$aside"
    info "moved the brick of an earlier volume aside to $aside"
  fi
fi
mkdir -p "$BRICK_PATH"
echo "$BRICK_PATH"
