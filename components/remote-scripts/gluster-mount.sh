#!/usr/bin/env bash
# swarmcloud: mount the volume and make the application folders
# The fstab entry (rendered by the program: components/gluster.ts fstabLine) names backup
# volfile servers and _netdev, so the mount survives a reboot and the loss of the first server.
# Inputs: NODE_NAME, VOLUME, MOUNT_PATH, FSTAB_LINE (the entry), SUBDIRS (space-separated
# names), MOUNTED ("true": the state gluster-mount-read.sh checks; not used here).
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}" "${MOUNT_PATH:?}" "${FSTAB_LINE:?}"
SUBDIRS="${SUBDIRS:-}"
line=$FSTAB_LINE

# A glusterfs mount is at MOUNT_PATH, answering or not (`mountpoint` cannot stat a dead one:
# "Transport endpoint is not connected").
listed() { awk -v m="$MOUNT_PATH" '$2 == m && $3 ~ /^fuse/ {found=1} END {exit !found}' /proc/mounts; }
# A mount whose client has lost its servers for good (the volume was stopped) fails at once.
stale() { timeout 10 stat "$MOUNT_PATH" 2>&1 >/dev/null | grep -q 'Transport endpoint is not connected'; }

if ! grep -qxF "$line" /etc/fstab; then
  tmp=$(mktemp)
  awk -v m="$MOUNT_PATH" '!($2 == m && $3 == "glusterfs")' /etc/fstab >"$tmp"
  printf '%s\n' "$line" >>"$tmp"
  cat "$tmp" >/etc/fstab
  rm -f "$tmp"
  if listed; then
    umount -l "$MOUNT_PATH"
  fi
fi
# Mounted is not enough: the applications need the volume to answer (a FUSE mount whose
# client has not reached a brick yet hangs or fails with "Transport endpoint is not connected").
answering() { mountpoint -q "$MOUNT_PATH" && timeout 10 stat -f "$MOUNT_PATH" >/dev/null 2>&1 && timeout 10 ls "$MOUNT_PATH/" >/dev/null 2>&1; }
err=$(mktemp)
trap 'rm -f "$err"' EXIT
for attempt in $(seq 1 30); do
  answering && break
  if ! listed; then
    mkdir -p "$MOUNT_PATH"
    mount "$MOUNT_PATH" 2>"$err" || sleep 1
  else
    # Mounted but silent: its client may still reach the bricks (they were restarting); dead
    # before this script began, or after 15 tries, it is a stale mount (the volume was stopped,
    # its servers went away): unmount it (lazily: a container may hold it) so the next try
    # mounts afresh.
    if { [ "$attempt" -eq 1 ] && stale; } || [ "$attempt" -eq 15 ]; then
      info "$MOUNT_PATH is mounted but does not answer; mounting it again"
      umount -l "$MOUNT_PATH" || true
    fi
    sleep 1
  fi
done
answering || fatal "could not mount $VOLUME at $MOUNT_PATH, or it does not answer: $(cat "$err")"
for dir in $SUBDIRS; do
  mkdir -p "$MOUNT_PATH/$dir"
done
echo "$MOUNT_PATH"
