#!/usr/bin/env bash
# swarmcloud: unmount the volume and drop its fstab entry
# Inputs: NODE_NAME, MOUNT_PATH.
set -euo pipefail
: "${NODE_NAME:?}" "${MOUNT_PATH:?}"
if mountpoint -q "$MOUNT_PATH"; then
  umount "$MOUNT_PATH" 2>/dev/null || umount -l "$MOUNT_PATH"
fi
if awk -v m="$MOUNT_PATH" '$2 == m && $3 == "glusterfs" {found=1} END {exit !found}' /etc/fstab; then
  tmp=$(mktemp)
  awk -v m="$MOUNT_PATH" '!($2 == m && $3 == "glusterfs")' /etc/fstab >"$tmp"
  cat "$tmp" >/etc/fstab
  rm -f "$tmp"
fi
rmdir "$MOUNT_PATH" 2>/dev/null || true
