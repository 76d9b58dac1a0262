#!/usr/bin/env bash
# swarmcloud: mount the volume and make the application folders
# The fstab entry names backup volfile servers, so the mount survives a reboot and the loss of
# the first server. Inputs: NODE_NAME, VOLUME, SERVERS (brick addresses, space-separated),
# MOUNT_PATH, SUBDIRS (space-separated names).
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}" "${SERVERS:?}" "${MOUNT_PATH:?}"
SUBDIRS="${SUBDIRS:-}"
read -r -a servers <<<"$SERVERS"
backups=$(IFS=:; echo "${servers[*]:1}")
options="defaults,_netdev"
[ -n "$backups" ] && options="$options,backup-volfile-servers=$backups"
line="${servers[0]}:/$VOLUME $MOUNT_PATH glusterfs $options 0 0"

if ! grep -qxF "$line" /etc/fstab; then
  tmp=$(mktemp)
  awk -v m="$MOUNT_PATH" '!($2 == m && $3 == "glusterfs")' /etc/fstab >"$tmp"
  printf '%s\n' "$line" >>"$tmp"
  cat "$tmp" >/etc/fstab
  rm -f "$tmp"
  if mountpoint -q "$MOUNT_PATH"; then
    umount -l "$MOUNT_PATH"
  fi
fi
mkdir -p "$MOUNT_PATH"
for _ in $(seq 1 30); do
  mountpoint -q "$MOUNT_PATH" && break
  mount "$MOUNT_PATH" 2>/tmp/swarmcloud-mount.err || sleep 1
done
if ! mountpoint -q "$MOUNT_PATH"; then
  echo "could not mount $VOLUME at $MOUNT_PATH:" >&2
  cat /tmp/swarmcloud-mount.err >&2
  exit 1
fi
rm -f /tmp/swarmcloud-mount.err
for dir in $SUBDIRS; do
  mkdir -p "$MOUNT_PATH/$dir"
done
echo "$MOUNT_PATH"
