#!/usr/bin/env bash
# swarmcloud: drain and demote a node before it leaves
# Runs on a manager when a node is removed from config (exit 75 sends it to the next one).
# Its tasks move elsewhere first; a manager is demoted so Raft keeps its quorum (the last
# manager is left as it is). Inputs: NODE_NAME, NODE_ID.
set -euo pipefail
: "${NODE_NAME:?}" "${NODE_ID:?}"
if [ "$(docker info --format '{{.Swarm.ControlAvailable}}')" != true ]; then
  echo "$(hostname) is not a swarm manager" >&2
  exit 75
fi
if ! docker node inspect "$NODE_ID" >/dev/null 2>&1; then
  exit 0
fi
for _ in $(seq 1 10); do
  docker node update --availability drain "$NODE_ID" >/dev/null 2>&1 && break
  sleep "0.$((RANDOM % 9 + 1))" # another update at the same moment ("update out of sequence")
done
# A drained task is marked for shutdown at once but runs until it has stopped (a database takes
# up to its stop_grace_period to flush): leaving before that would kill it while its replacement
# starts elsewhere on the same files. A node that is down has nothing left to wait for.
for i in $(seq 1 180); do
  [ "$(docker node inspect --format '{{.Status.State}}' "$NODE_ID")" = down ] && break
  live=$(docker node ps --format '{{.CurrentState}}' "$NODE_ID" |
    grep -cE '^(New|Pending|Assigned|Accepted|Preparing|Ready|Starting|Running)' || true)
  [ "$live" -eq 0 ] && break
  if [ "$i" -eq 180 ]; then
    echo "$NODE_NAME: $live task(s) still running after 180 s of draining; going on" >&2
  fi
  sleep 1
done
# And their replacements must be running elsewhere before the node demotes or leaves: the agents
# connected to a departing manager lose their session, and a task that is starting at that moment
# can come up without its DNS record on the overlay network (seen with Docker 20.10: a database
# nobody could resolve). Tasks that cannot be placed at all are not waited for beyond 120 s.
for _ in $(seq 1 120); do
  starting=$(docker service ls -q | xargs -r docker service ps --filter desired-state=running \
    --format '{{.CurrentState}}' | grep -cvE '^Running' || true)
  [ "$starting" -eq 0 ] && break
  sleep 1
done
for _ in $(seq 1 10); do
  [ "$(docker node inspect --format '{{.Spec.Role}}' "$NODE_ID")" = manager ] || break
  # Several releases may run at once (a destroy): the last manager stays, and leaves last.
  [ "$(docker node ls --filter role=manager --format '{{.ID}}' | wc -l)" -gt 1 ] || break
  if docker node demote "$NODE_ID" >/dev/null 2>&1; then
    break
  fi
  sleep 2
done
