#!/usr/bin/env bash
# swarmcloud: remove a Docker stack, its networks, its secrets and configs
#
# Runs on a swarm manager (exit 75 sends it to the next one). Tolerates a stack (or a whole
# swarm) that is already gone.
#   STACK    stack name
#   TIMEOUT  seconds to wait for the stack's services and networks to disappear (default 300)
set -euo pipefail

: "${STACK:?STACK is not set}"
TIMEOUT="${TIMEOUT:-300}"
OWNER_LABEL="com.swarmcloud.stack=$STACK"
NAMESPACE_LABEL="com.docker.stack.namespace=$STACK"

if ! command -v docker >/dev/null 2>&1; then
  info "docker is not installed here any more: stack $STACK is already gone"
  exit 0
fi
state=$(swarm_state 2>/dev/null || true)
case "$state" in
  "active true") ;;
  "active "*) require_manager "stack $STACK is removed from a manager" ;;
  *)
    info "this node is in no swarm (${state:-docker not answering}): stack $STACK is already gone"
    exit 0
    ;;
esac

leftovers() {
  docker service ls -q --filter "label=$NAMESPACE_LABEL"
  docker network ls -q --filter "label=$NAMESPACE_LABEL"
}

if [ -n "$(leftovers)" ]; then
  # stack rm removes services first; a network whose tasks are still stopping is retried below.
  docker stack rm "$STACK" >&2 || info "docker stack rm left something behind; retrying below"
else
  info "stack $STACK is already gone"
fi

deadline=$((SECONDS + TIMEOUT))
while [ -n "$(leftovers)" ]; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    info "stack $STACK still has services or networks after ${TIMEOUT}s:"
    docker service ls --filter "label=$NAMESPACE_LABEL" >&2 || true
    docker network ls --filter "label=$NAMESPACE_LABEL" >&2 || true
    exit 1
  fi
  sleep 2
  if [ -z "$(docker service ls -q --filter "label=$NAMESPACE_LABEL")" ]; then
    for net in $(docker network ls -q --filter "label=$NAMESPACE_LABEL"); do
      docker network rm "$net" >/dev/null 2>&1 || true
    done
  fi
done

# The secrets the deploy script made for this stack (every version), and the config that marks
# it opened (ghost-setup.sh): a stack deployed afresh is held closed until set up again.
for secret in $(docker secret ls -q --filter "label=$OWNER_LABEL"); do
  until docker secret rm "$secret" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fatal "could not remove secret $secret"
    sleep 2
  done
done
for config in $(docker config ls -q --filter "label=$OWNER_LABEL"); do
  docker config rm "$config" >/dev/null 2>&1 || info "could not remove config $config"
done
info "stack $STACK removed"
