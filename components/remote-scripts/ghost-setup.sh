#!/usr/bin/env bash
# swarmcloud: set up Ghost's owner, then publish Ghost's ports
# Runs on a swarm manager (exit 75 sends it to the next one), after the Ghost stack's deploy.
# Ghost's first visitor could make themselves the blog's owner, so the stack's first deploy
# publishes no port (stack-deploy.sh deploys CLOSED_COMPOSE until the Docker config
# <STACK>-opened exists). This step completes the setup from inside the swarm: a one-shot service
# on the stack's network runs CLIENT (node, in Ghost's own image), which asks Ghost whether it is
# set up and, when not, sets up the owner; the password reaches it as a Docker secret made from
# stdin (never on a command line) and removed with the service. Only then are Ghost's ports
# published (`docker service update --publish-add`, as the compose file has them) and the stack
# marked opened, so later deploys publish them. A Ghost already set up is left alone.
# Inputs: STACK, SERVICE (the Ghost service), NETWORK (a network of the stack), IMAGE (Ghost's),
# RESOLVE_IMAGE, GHOST (Ghost inside the swarm, http://<service>:2368), URL (its public URL),
# OWNER_NAME, OWNER_EMAIL, BLOG_TITLE, PUBLISH (one --publish-add spec per line), CLIENT (the
# client's JavaScript), TIMEOUT (seconds the one-shot may take). stdin: the owner's password.
# Prints "owner <email>: <created|already set up>; ports <published|were open>".
set -euo pipefail
: "${STACK:?}" "${SERVICE:?}" "${NETWORK:?}" "${IMAGE:?}" "${GHOST:?}" "${URL:?}" "${OWNER_NAME:?}" "${OWNER_EMAIL:?}"
: "${BLOG_TITLE:?}" "${CLIENT:?}"
RESOLVE_IMAGE="${RESOLVE_IMAGE:-always}"
PUBLISH="${PUBLISH:-}"
TIMEOUT="${TIMEOUT:-300}"
OWNER_LABEL="com.swarmcloud.stack=$STACK"
SETUP_LABEL="com.swarmcloud.setup=$STACK"
MARKER="$STACK-opened"

require_manager "Ghost is set up from a manager"
password=$(cat)
[ -n "$password" ] || fatal "stdin: no owner password"
docker service inspect "$SERVICE" >/dev/null 2>&1 || fatal "service $SERVICE does not exist: deploy stack $STACK first"

# A run that was killed may have left its one-shot service and secret behind.
remove_labelled "$SETUP_LABEL"
trap 'remove_labelled "$SETUP_LABEL"' EXIT

# 1. The one-shot service, its password a Docker secret (printf is a shell builtin: no process
#    shows it).
run="$STACK-setup-$(date +%s)"
printf '%s' "$password" | docker secret create --label "$OWNER_LABEL" --label "$SETUP_LABEL" "$run" - >/dev/null
resolve=()
[ "$RESOLVE_IMAGE" = never ] && resolve=(--no-resolve-image)
# dnsrr: no virtual IP (nothing connects to it, and no IPVS is needed where the kernel has none).
docker service create --detach --quiet --name "$run" --label "$SETUP_LABEL" --network "$NETWORK" \
  --endpoint-mode dnsrr --restart-condition none "${resolve[@]}" --secret "source=$run,target=ghost_owner_password" \
  --env "GHOST=$GHOST" --env "URL=$URL" --env "OWNER_NAME=$OWNER_NAME" --env "OWNER_EMAIL=$OWNER_EMAIL" \
  --env "BLOG_TITLE=$BLOG_TITLE" --entrypoint node "$IMAGE" -e "$CLIENT" >/dev/null

# 2. Its end, and what it said.
WAIT_EVERY=1 wait_for "$TIMEOUT" "the setup of $SERVICE ($run) to end" one_shot_ended "$run" ||
  fatal "Ghost's setup did not end; the one-shot service $run was removed"
WAIT_EVERY=1 wait_for 20 "the output of $run" one_shot_has_said "$run" SETUP || true
result=$(one_shot_said "$run" SETUP || true)
case "$result" in
  SETUP=created) done="created" ;;
  SETUP=already) done="already set up" ;;
  *)
    fatal "Ghost's owner could not be set up (task: $(one_shot_ended "$run" || true)): ${result#SETUP=}" \
      "Ghost's ports stay unpublished until it is; fix the cause and run pulumi up again"
    ;;
esac

# 3. The ports, once: a stack marked opened publishes them through its compose file.
ports="were open"
if ! docker config inspect "$MARKER" >/dev/null 2>&1; then
  published=$(docker service inspect --format '{{if .Spec.EndpointSpec}}{{len .Spec.EndpointSpec.Ports}}{{else}}0{{end}}' "$SERVICE")
  adds=()
  while IFS= read -r spec; do
    [ -n "$spec" ] && adds+=(--publish-add "$spec")
  done <<<"$PUBLISH"
  if [ "$published" = 0 ] && [ "${#adds[@]}" -gt 0 ]; then
    info "publishing the ports of $SERVICE"
    docker service update --quiet --detach=false "${adds[@]}" "$SERVICE" >&2
    ports="published"
  fi
  printf 'opened\n' | docker config create --label "$OWNER_LABEL" "$MARKER" - >/dev/null ||
    docker config inspect "$MARKER" >/dev/null
fi
printf 'owner %s: %s; ports %s\n' "$OWNER_EMAIL" "$done" "$ports"
