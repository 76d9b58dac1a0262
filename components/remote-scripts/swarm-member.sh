#!/usr/bin/env bash
# swarmcloud: set the node's role, availability and labels
# Runs on a manager (exit 75 sends it to the next one). Promotes or demotes in place (no
# rejoin). The labels given are the node's whole label set. Read back by swarm-member-read.sh.
# Inputs: NODE_NAME, NODE_ID, ROLE, AVAILABILITY, LABELS ("k=v" lines).
set -euo pipefail
: "${NODE_NAME:?}" "${NODE_ID:?}" "${ROLE:?}" "${AVAILABILITY:?}"
LABELS="${LABELS:-}"
require_manager

# The node's state as this manager sees it: ready once it has joined and reports in.
node_ready() {
  local state
  state=$(docker node inspect --format '{{.Status.State}}' "$NODE_ID" 2>/dev/null || echo unknown)
  printf '%s\n' "$state"
  [ "$state" = ready ]
}
# A promoted node's reachability as a manager.
manager_reachable() {
  local seen
  seen=$(docker node inspect --format '{{if .ManagerStatus}}{{.ManagerStatus.Reachability}}{{else}}not a manager yet{{end}}' "$NODE_ID")
  printf '%s\n' "$seen"
  [ "$seen" = reachable ]
}

wait_for 60 "swarm node $NODE_NAME ($NODE_ID) to be ready after it joined" node_ready ||
  fatal "swarm node $NODE_NAME: is its Docker running and can it reach port 2377 of the managers?"

# Entries of this node from before it joined again under a new ID (it had left the swarm):
# workers with its hostname and address. One goes down within seconds of the leave; then it is
# removed, so the node list names each node once.
earlier_entries() {
  local addr
  addr=$(docker node inspect --format '{{.Status.Addr}}' "$NODE_ID")
  docker node ls -q |
    xargs -r docker node inspect --format '{{.ID}} {{.Spec.Role}} {{.Description.Hostname}} {{.Status.Addr}}' |
    awk -v id="$NODE_ID" -v name="$NODE_NAME" -v addr="$addr" \
      '$1 != id && $2 == "worker" && $3 == name && $4 == addr { print $1 }'
}
for earlier in $(earlier_entries); do
  WAIT_EVERY=1 wait_for 60 "the earlier entry $earlier of $NODE_NAME to be down" swarm_node_down "$earlier" || continue
  docker node rm "$earlier" >/dev/null 2>&1 || info "could not remove $earlier, an earlier entry of $NODE_NAME"
done

# Node updates race with others made at the same moment ("update out of sequence"): retry.
read -r role availability <<<"$(docker node inspect --format '{{.Spec.Role}} {{.Spec.Availability}}' "$NODE_ID")"
if [ "$role" != "$ROLE" ]; then
  if [ "$ROLE" = manager ]; then
    retry docker node promote "$NODE_ID"
  else
    retry docker node demote "$NODE_ID"
  fi
fi

# Labels: the given set is the whole set. Update only what differs (each update is a Raft write).
current_labels=$(docker node inspect --format '{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}}{{println}}{{end}}' "$NODE_ID" | sed '/^$/d' | sort)
wanted_labels=$(printf '%s\n' "$LABELS" | sed '/^$/d' | sort)
args=()
[ "$availability" = "$AVAILABILITY" ] || args+=(--availability "$AVAILABILITY")
while IFS= read -r pair; do
  [ -n "$pair" ] || continue
  key=${pair%%=*}
  printf '%s\n' "$wanted_labels" | cut -d= -f1 | grep -qxF "$key" || args+=(--label-rm "$key")
done <<<"$current_labels"
while IFS= read -r pair; do
  [ -n "$pair" ] || continue
  printf '%s\n' "$current_labels" | grep -qxF "$pair" || args+=(--label-add "$pair")
done <<<"$wanted_labels"
if [ "${#args[@]}" -gt 0 ]; then
  retry docker node update "${args[@]}" "$NODE_ID"
fi

# Wait until a promoted manager is reachable, so later manager-side work can use it.
if [ "$ROLE" = manager ]; then
  wait_for 60 "swarm manager $NODE_NAME to be reachable after its promotion" manager_reachable || exit 1
fi
printf '%s %s %s\n' "$NODE_NAME" "$ROLE" "$AVAILABILITY"
