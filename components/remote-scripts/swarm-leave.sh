#!/usr/bin/env bash
# swarmcloud: leave the swarm
# Runs on the node itself after a manager drained and demoted it (or, last of all, on the last
# manager). Tolerates a node that is already outside any swarm. A manager's leave can outlast
# dockerd's own deadline ("context deadline exceeded": seen on Docker 26 for the last manager,
# CI 2026-12-03) while the node still goes on leaving: the leave is waited for, and tried again,
# before it counts as failed. Inputs: NODE_NAME; LEAVE_WAIT (seconds to wait after a failed
# leave, default 20).
set -euo pipefail
: "${NODE_NAME:?}"
LEAVE_WAIT="${LEAVE_WAIT:-20}"

# Outside any swarm (prints the state when not).
outside() {
  local state
  state=$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || true)
  [ "$state" = inactive ] && return 0
  printf '%s\n' "${state:-docker not answering}"
  return 1
}

outside >/dev/null && exit 0
err=$(mktemp)
trap 'rm -f "$err"' EXIT
for _ in 1 2 3; do
  if docker swarm leave >/dev/null 2>&1 || docker swarm leave --force >/dev/null 2>"$err"; then
    exit 0
  fi
  WAIT_EVERY=1 wait_for "$LEAVE_WAIT" "$NODE_NAME to be outside the swarm" outside 2>/dev/null && exit 0
done
fatal "$NODE_NAME could not leave the swarm: $(tr '\n' ' ' <"$err")"
