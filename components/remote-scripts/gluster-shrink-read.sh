#!/usr/bin/env bash
# swarmcloud: read the bricks the volume has beyond the brick list
# Run by `pulumi refresh` on the first brick node; changes nothing. Inputs: NODE_NAME, VOLUME,
# BRICKS (as gluster-shrink.sh). Prints BRICKS: BRICKS, then each brick the volume has that is
# not in it (what gluster-shrink.sh removes). A declared brick the volume lacks, or a volume that
# does not exist, is gluster-volume-read.sh's to report.
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}" "${BRICKS:?}"
g() { gluster --mode=script "$@"; }
g pool list >/dev/null 2>&1 || fatal "glusterd on $NODE_NAME does not answer"
info=$(g volume info "$VOLUME" 2>/dev/null) || exit 0
read -r -a wanted <<<"$BRICKS"
seen=("${wanted[@]}")
while IFS= read -r b; do
  [ -n "$b" ] || continue
  in_list "$b" "${wanted[@]}" || seen+=("$b")
done < <(printf '%s\n' "$info" | sed -n 's/^Brick[0-9]*: \([^ ]*\).*/\1/p')
observed BRICKS "${seen[*]}"
