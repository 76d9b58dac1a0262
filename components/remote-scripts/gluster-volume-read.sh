#!/usr/bin/env bash
# swarmcloud: read the volume's bricks, options and status
# Run by `pulumi refresh` on the first brick node; changes nothing. Inputs: NODE_NAME, VOLUME,
# BRICKS, OPTIONS, STATUS (as gluster-volume.sh). Prints BRICKS (those of BRICKS the volume
# has, in their order: the order the volume keeps them in is no drift), OPTIONS (the value set
# now for each key of OPTIONS that has one) and STATUS ("Started", "Stopped", ...), or a DRIFT
# line when the volume does not exist.
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}" "${BRICKS:?}"
OPTIONS="${OPTIONS:-}"
g() { gluster --mode=script "$@"; }
g pool list >/dev/null 2>&1 || fatal "glusterd on $NODE_NAME does not answer"
if ! info=$(g volume info "$VOLUME" 2>&1); then
  case "$info" in
    *"does not exist"*) drift "volume $VOLUME does not exist" ;;
    *) fatal "could not read volume $VOLUME:" "$info" ;;
  esac
  exit 0
fi
read -r -a wanted <<<"$BRICKS"
mapfile -t current < <(printf '%s\n' "$info" | sed -n 's/^Brick[0-9]*: \([^ ]*\).*/\1/p')
# The declared bricks the volume has, in their declared order: one missing is a drift this step
# repairs (add-brick). Bricks the volume has beyond them are gluster-shrink-read.sh's to report.
seen=()
for b in "${wanted[@]}"; do in_list "$b" "${current[@]}" && seen+=("$b"); done
observed BRICKS "${seen[*]}"
if [ -n "$OPTIONS" ]; then
  # "key: value" lines after "Options Reconfigured:", up to the next blank line.
  set_now=$(printf '%s\n' "$info" | awk '/^Options Reconfigured:/ { on = 1; next } on && /^$/ { on = 0 } on')
  options=$(while IFS= read -r pair; do
    [ -n "$pair" ] || continue
    printf '%s\n' "$set_now" | awk -v k="${pair%%=*}" 'index($0, k ": ") == 1 { print k "=" substr($0, length(k) + 3); exit }'
  done <<<"$OPTIONS")
  observed OPTIONS "$options"
fi
observed STATUS "$(printf '%s\n' "$info" | sed -n 's/^Status: //p')"
