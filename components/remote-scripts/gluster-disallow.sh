#!/usr/bin/env bash
# swarmcloud: take the node's address out of the volume's auth.allow
# Runs on the first brick node (exit 75: the next brick node) when the node leaves, after its
# mount is gone. An address a client still mounts from (another node on the same address, a
# mount that did not go) stays, and so does the last one (the volume is being destroyed: an
# empty list is not a value Gluster takes). A volume that no longer exists needs nothing.
# Runs under the same lock as gluster-allow.sh.
# Inputs: NODE_NAME, VOLUME, ADDRESS.
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}" "${ADDRESS:?}"
if ! gluster --mode=script volume info "$VOLUME" >/dev/null 2>&1; then
  # A node in a pool with others that has no such volume: it is gone. A node alone (detached
  # after its brick left): another brick node may know the volume.
  peers=$(gluster --mode=script pool list 2>/dev/null | awk 'NR > 1 && $2 != "localhost"' | wc -l)
  [ "$peers" -gt 0 ] && exit 0
  not_here "$(hostname) is in no pool that holds volume $VOLUME"
fi
gluster_lock_allowed
mapfile -t allowed < <(gluster_allowed "$VOLUME")
in_list "$ADDRESS" "${allowed[@]}" || exit 0
if gluster_clients "$VOLUME" | grep -qxF "$ADDRESS"; then
  info "volume $VOLUME: a client on $ADDRESS is still connected; its address stays allowed"
  exit 0
fi
rest=()
for a in "${allowed[@]}"; do [ "$a" = "$ADDRESS" ] || rest+=("$a"); done
if [ "${#rest[@]}" -eq 0 ]; then
  info "volume $VOLUME: $ADDRESS is the last allowed address; left in place"
  exit 0
fi
gluster --mode=script volume set "$VOLUME" auth.allow "$(printf '%s\n' "${rest[@]}" | paste -sd, -)" >/dev/null
info "volume $VOLUME: $NODE_NAME ($ADDRESS) may no longer mount it"
