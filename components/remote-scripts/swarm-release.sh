#!/usr/bin/env bash
# swarmcloud: drain and demote a node before it leaves
# Runs on a manager when a node is removed from config (exit 75 sends it to the next one).
# Its tasks move elsewhere first; a manager is demoted so Raft keeps its quorum (the last
# manager is left as it is). Inputs: NODE_NAME, NODE_ID.
set -euo pipefail
: "${NODE_NAME:?}" "${NODE_ID:?}"
require_manager
if ! docker node inspect "$NODE_ID" >/dev/null 2>&1; then
  exit 0
fi
swarm_drain "$NODE_ID" "$NODE_NAME"
for _ in $(seq 1 10); do
  [ "$(docker node inspect --format '{{.Spec.Role}}' "$NODE_ID")" = manager ] || break
  # Several releases may run at once (a destroy): the last manager stays, and leaves last.
  [ "$(docker node ls --filter role=manager --format '{{.ID}}' | wc -l)" -gt 1 ] || break
  if docker node demote "$NODE_ID" >/dev/null 2>&1; then
    break
  fi
  sleep 2
done
