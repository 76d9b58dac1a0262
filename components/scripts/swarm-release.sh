#!/usr/bin/env bash
# swarmcloud: drain and demote a node before it leaves
# Runs on a manager when a node is removed from config. Its tasks move elsewhere first; a
# manager is demoted so Raft keeps its quorum (the last manager is left as it is).
# Inputs: NODE_NAME, NODE_ID.
set -euo pipefail
: "${NODE_NAME:?}" "${NODE_ID:?}"
if ! docker node inspect "$NODE_ID" >/dev/null 2>&1; then
  exit 0
fi
docker node update --availability drain "$NODE_ID" >/dev/null
for _ in $(seq 1 60); do
  running=$(docker node ps --filter desired-state=running --format '{{.ID}}' "$NODE_ID" | wc -l)
  [ "$running" -eq 0 ] && break
  sleep 1
done
if [ "$(docker node inspect --format '{{.Spec.Role}}' "$NODE_ID")" = manager ]; then
  managers=$(docker node ls --filter role=manager --format '{{.ID}}' | wc -l)
  if [ "$managers" -gt 1 ]; then
    for attempt in $(seq 1 10); do
      docker node demote "$NODE_ID" >/dev/null 2>&1 && break
      [ "$attempt" -eq 10 ] && docker node demote "$NODE_ID" >/dev/null
      sleep 2
    done
  fi
fi
