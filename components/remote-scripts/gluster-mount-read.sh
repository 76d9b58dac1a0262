#!/usr/bin/env bash
# swarmcloud: read the mount and its fstab entry
# Run by `pulumi refresh` on the node; changes nothing. Inputs: NODE_NAME, MOUNT_PATH,
# FSTAB_LINE, MOUNTED (as gluster-mount.sh). Prints FSTAB_LINE (the glusterfs entries of
# /etc/fstab for MOUNT_PATH now) and MOUNTED ("true" when a glusterfs mount is there and
# answers, else "false").
set -euo pipefail
: "${NODE_NAME:?}" "${MOUNT_PATH:?}"
observed FSTAB_LINE "$(awk -v m="$MOUNT_PATH" '$2 == m && $3 == "glusterfs"' /etc/fstab)"
# From /proc/mounts, not mountpoint(1): a mount whose servers vanished must not hang the read.
mounted=false
if awk -v m="$MOUNT_PATH" '$2 == m && $3 == "fuse.glusterfs" { found = 1 } END { exit !found }' /proc/mounts &&
  timeout 10 stat -f "$MOUNT_PATH" >/dev/null 2>&1; then
  mounted=true
fi
observed MOUNTED "$mounted"
