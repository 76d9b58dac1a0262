#!/usr/bin/env bash
# swarmcloud: deploy a Docker stack and wait until its services run
#
# Runs on a swarm manager (exit 75 sends it to the next one). Idempotent: re-running with the
# same input changes nothing.
#   STACK          stack name
#   COMPOSE        the compose file text (docker stack deploy reads it from stdin)
#   TIMEOUT        seconds to wait for every service to reach its replicas (default 300)
#   RESOLVE_IMAGE  always | changed | never: ask a registry for image digests (default always)
#   PIN_IMAGES     1 (default) | 0: keep the digest each service runs (trust on first use). With 1,
#                  an `image:` given without a digest that a service of the stack already runs as
#                  <image>@sha256:<digest> (what the deploy that first took it resolved) is
#                  deployed at that digest, so a redeploy for any other reason (a replica count)
#                  does not move the service to whatever the tag names on the registry today. An
#                  image no service runs yet (a new stack, a changed tag) is resolved as
#                  RESOLVE_IMAGE says; one given with its own @sha256: digest is left as given.
#   stdin          one `name=base64(value)` line per Docker secret; each is created if missing.
#                  Secrets are immutable, so a new value comes with a new (versioned) name.
#                  `env:NAME=base64(value)` lines: deploy variables, exported to `docker stack
#                  deploy` alone, which fills in the compose file's `${NAME}` with them.
#   SERVICES       "<name> replicated <n>" / "<name> global" lines, SECRETS the secrets' names:
#                  the state stack-deploy-read.sh checks (not used here)
#   CLOSED_COMPOSE (context, optional) the compose text with no port published, deployed instead
#                  of COMPOSE until the Docker config <STACK>-opened exists: an app set up from
#                  inside the swarm before anyone reaches it (ghost-setup.sh makes the config)
set -euo pipefail

: "${STACK:?STACK is not set}"
: "${COMPOSE:?COMPOSE is not set}"
TIMEOUT="${TIMEOUT:-300}"
RESOLVE_IMAGE="${RESOLVE_IMAGE:-always}"
PIN_IMAGES="${PIN_IMAGES:-1}"
OWNER_LABEL="com.swarmcloud.stack=$STACK"
NAMESPACE_LABEL="com.docker.stack.namespace=$STACK"

case "$PIN_IMAGES" in 0 | 1) ;; *) fatal "PIN_IMAGES must be 1 or 0, not ${PIN_IMAGES:0:20}" ;; esac
command -v docker >/dev/null 2>&1 || fatal "docker is not installed on this node"
require_manager "stacks deploy from a manager"

# 1. Secrets and deploy variables, from stdin. Never echoed: only names are logged.
wanted=()
while IFS= read -r line || [ -n "$line" ]; do
  [ -n "$line" ] || continue
  name=${line%%=*}
  case "$name" in
    env:*)
      name=${name#env:}
      printf '%s\n' "$name" | grep -qxE '[A-Z][A-Z0-9_]{0,63}' || fatal "stdin: a deploy variable line is not env:NAME=BASE64"
      value=$(printf '%s' "${line#*=}" | base64 -d) || fatal "stdin: deploy variable $name is not base64"
      export "$name=$value"
      continue
      ;;
  esac
  # A line without "=" may be a bare value: it is never shown.
  [ "$name" != "$line" ] || fatal "stdin: a secret line is not NAME=BASE64 (it has no =)"
  if ! printf '%s\n' "$name" | grep -qxE '[A-Za-z0-9][A-Za-z0-9_.-]{0,63}'; then
    fatal "stdin: a secret line is not NAME=BASE64 (name ${name:0:64})"
  fi
  wanted+=("$name")
  if docker secret inspect "$name" >/dev/null 2>&1; then
    continue
  fi
  if printf '%s' "${line#*=}" | base64 -d | docker secret create --label "$OWNER_LABEL" "$name" - >/dev/null; then
    info "created secret $name"
  elif ! docker secret inspect "$name" >/dev/null 2>&1; then
    # (a concurrent run creating the same name is fine; anything else is not)
    fatal "could not create secret $name"
  fi
done

# 2. The stack itself; held closed (no published port) until its setup has opened it. Its
#    images pinned (PIN_IMAGES) in the text that is deployed, whichever of the two it is.

# running_images: "<service> <image>" for each service of the stack now, the image as its spec
# names it (with the digest a deploy resolved, where one did).
running_images() {
  docker service ls -q --filter "label=$NAMESPACE_LABEL" |
    xargs -r docker service inspect --format '{{.Spec.Name}} {{.Spec.TaskTemplate.ContainerSpec.Image}}'
}

# (Here, not in lib.sh: a change of lib.sh changes every script, and so re-runs every step on
# every node of a stack made before.)
# image_short REF: REF as Docker writes a Docker Hub reference in a service's spec
# (docker.io/library/ghost:5 and library/ghost:5 as ghost:5, docker.io/portainer/agent:2 as
# portainer/agent:2); any other reference as it is.
image_short() {
  local ref=${1#index.docker.io/}
  ref=${ref#docker.io/}
  printf '%s\n' "${ref#library/}"
}

# pinned_digest RUNNING IMAGE: the digest ("sha256:<64 hex>") when RUNNING, the image a service's
# spec names ({{.Spec.TaskTemplate.ContainerSpec.Image}}), is IMAGE pinned: IMAGE@sha256:<64
# hex>, as docker stack deploy and docker service create write the digest they resolved for an
# image given without one. Fails, printing nothing, otherwise (another tag, no digest, or an
# IMAGE given with its own digest).
pinned_digest() {
  local running image digest
  running=$(image_short "$1")
  image=$(image_short "$2")
  digest=${running#"$image"@}
  [ "$digest" != "$running" ] && printf '%s\n' "$digest" | grep -xE 'sha256:[0-9a-f]{64}'
}

# running_digest IMAGE SERVICE RUNNING: the digest at which SERVICE runs IMAGE, else the one at
# which another service of RUNNING (running_images) runs it; fails when none runs it pinned.
running_digest() {
  local name image
  while read -r name image; do
    [ "$name" = "$2" ] && pinned_digest "$image" "$1" && return 0
  done <<<"$3"
  while read -r name image; do
    pinned_digest "$image" "$1" && return 0
  done <<<"$3"
  return 1
}

# pin_images TEXT RUNNING: the compose TEXT with each service's `image:` pinned at the digest
# that running_digest finds for it. TEXT is written by stacks/compose.ts (js-yaml: two spaces a
# level, each string value double-quoted on one line), so a service's image is the line
# `    image: "<ref>"` under `services:` and `  <service>:`. A value that is not a plain reference
# (one with a digest already among them: `@` is not a reference character) is left as it is.
pin_images() {
  local row section="" service="" image digest
  while IFS= read -r row; do
    case "$row" in
      [!\ ]*) section=$row ;;
      "  "[!\ ]*:)
        service=${row#  }
        service=${service%:}
        service=${service//\"/}
        ;;
      "    image: "*)
        image=${row#    image: }
        image=${image#\"}
        image=${image%\"}
        case "$image" in "" | *[!A-Za-z0-9_./:-]*) image="" ;; esac
        if [ "$section" = "services:" ] && [ -n "$image" ] &&
          digest=$(running_digest "$image" "${STACK}_$service" "$2"); then
          info "${STACK}_$service: kept $image at $digest (pinned when first deployed; change the tag, give a digest, or set swarm.pinImages false to move)"
          row="    image: \"$image@$digest\""
        fi
        ;;
    esac
    printf '%s\n' "$row"
  done <<<"$1"
}

text=$COMPOSE
if [ -n "${CLOSED_COMPOSE:-}" ] && ! docker config inspect "$STACK-opened" >/dev/null 2>&1; then
  info "stack $STACK is not set up yet: deployed without published ports"
  text=$CLOSED_COMPOSE
fi
if [ "$PIN_IMAGES" = 1 ]; then
  # A manager that cannot list them now (no leader yet after a restart): the next one may.
  running=$(running_images) || not_here "$(hostname) could not list the services of stack $STACK"
  text=$(pin_images "$text" "$running")
fi
info "docker stack deploy $STACK"
printf '%s\n' "$text" |
  docker stack deploy --prune --with-registry-auth --resolve-image "$RESOLVE_IMAGE" -c - "$STACK" >&2

# 3. Wait until every service runs all its replicas (global services: one per eligible node)
#    and its update, when the deploy started one, has completed (each service's update order
#    and rollback are its compose file's update_config: stacks/compose.ts `rolling`); two clean
#    polls in a row count as converged. Prints one line per service that is not there yet.
#    A "FAILED <service> <state> <message>" line ends the wait at once: Swarm rolled the update
#    back (rollback_completed: a new task failed, or was not healthy, within the monitor
#    window) or paused it (paused, rollback_paused). The deploy's update of a service resets
#    its UpdateStatus (Swarm's UpdateService does), so a state seen here is this deploy's.
pending() {
  local id name replicas running desired state
  docker service ls --filter "label=$NAMESPACE_LABEL" --format '{{.ID}} {{.Name}} {{.Replicas}}' |
    while read -r id name replicas _; do
      running=${replicas%%/*}
      desired=${replicas#*/}
      state=$(docker service inspect --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "$id" 2>/dev/null || true)
      case "$state" in
        paused | rollback_paused | rollback_completed)
          printf 'FAILED %s %s %s\n' "$name" "$state" \
            "$(docker service inspect --format '{{.UpdateStatus.Message}}' "$id" 2>/dev/null || true)"
          continue
          ;;
        updating)
          printf '%s %s (update updating)\n' "$name" "$replicas"
          continue
          ;;
        rollback_started)
          # The message names the task whose failure started the rollback; once the rollback
          # has completed it says only "rollback completed", so the wait keeps this line.
          printf '%s %s (update rollback_started: %s)\n' "$name" "$replicas" \
            "$(docker service inspect --format '{{.UpdateStatus.Message}}' "$id" 2>/dev/null || true)"
          continue
          ;;
      esac
      if [ "$running" != "$desired" ]; then
        printf '%s %s\n' "$name" "$replicas"
      fi
    done
}

# task_lines SERVICE [FILTER]: "<task> on <node>: <error>" of SERVICE's tasks, newest first
# (`docker service ps --no-trunc`, its Error column whole, without the quotes it prints around
# it), each after "<image>|"; FILTER a `--filter` of it.
task_lines() {
  docker service ps --no-trunc ${2:+--filter "$2"} --format '{{.Image}}|{{.Name}} on {{.Node}}: {{.Error}}' "$1" 2>/dev/null |
    sed 's/: "\(.*\)"$/: \1/' || true
}

# failed_task SERVICE MESSAGES IMAGE: the task whose failure ended SERVICE's update and its error:
# the task MESSAGES name (Swarm's "update rolled back due to failure or early termination of task
# <id>", seen while the rollback ran), else the newest task of IMAGE (the spec that failed) with
# an error, else the newest task of SERVICE with an error.
failed_task() {
  local id line
  id=$(printf '%s\n' "$2" | grep -oE 'task [a-z0-9]{25}' | tail -n 1 | cut -d' ' -f2 || true)
  line=""
  [ -z "$id" ] || line=$(task_lines "$1" "id=$id" | grep -v ': $' | head -n 1 || true)
  [ -n "$line" ] || line=$(task_lines "$1" | grep -F "$3|" | grep -v ': $' | head -n 1 || true)
  [ -n "$line" ] || line=$(task_lines "$1" | grep -v ': $' | head -n 1 || true)
  line=${line#*|}
  printf '%s\n' "${line:-no task of $1 reports an error}"
}

report() {
  local name
  info "stack $STACK did not converge:"
  printf '%s\n' "$1" | sed 's/^/  /' >&2
  for name in $(docker service ls --filter "label=$NAMESPACE_LABEL" --format '{{.Name}}'); do
    info "tasks of $name (newest first):"
    docker service ps --no-trunc --format '  {{.Name}} {{.Node}} {{.CurrentState}} {{.Error}}' "$name" 2>&1 |
      head -n 6 >&2 || true
  done
}

# update_failed LINES SEEN: the FAILED lines of `pending` as errors, last (the caller shows a
# failed step's last lines): the service, what Swarm did, its message, the failed task's error
# (SEEN: every earlier `pending` line, where a rollback's first message names the task).
update_failed() {
  local _failed name state message seen image
  while read -r _failed name state message; do
    seen="$(printf '%s\n' "$2" | grep -F "$name " || true)"
    case "$state" in
      rollback_completed)
        image=$(docker service inspect --format '{{.PreviousSpec.TaskTemplate.ContainerSpec.Image}}' "$name" 2>/dev/null || true)
        info "service $name: the update failed and Swarm rolled it back (the previous spec runs): $message" ;;
      *)
        image=$(docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "$name" 2>/dev/null || true)
        info "service $name: the update stopped ($state): $message" ;;
    esac
    info "  failed task $(failed_task "$name" "$message"$'\n'"$seen" "${image:-none}")"
  done < <(printf '%s\n' "$1" | grep '^FAILED ')
}

deadline=$((SECONDS + TIMEOUT))
clean=0
seen=""
while :; do
  waiting=$(pending) || waiting="(could not list the services of $STACK; retrying)"
  case "$waiting" in
    *FAILED*)
      report "$waiting"
      update_failed "$waiting" "$seen"
      exit 1
      ;;
  esac
  seen="$seen$waiting"$'\n'
  if [ -z "$waiting" ]; then
    clean=$((clean + 1))
    [ "$clean" -ge 2 ] && break
  else
    clean=0
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    info "timed out after ${TIMEOUT}s"
    report "$waiting"
    exit 1
  fi
  sleep 3
done

# 4. Older versions of this stack's secrets are no longer referenced: remove them
#    (one still in use by a service is refused by Docker and left alone).
is_wanted() {
  local w
  for w in "${wanted[@]}"; do
    [ "$w" = "$1" ] && return 0
  done
  return 1
}
for old in $(docker secret ls --filter "label=$OWNER_LABEL" --format '{{.Name}}'); do
  if ! is_wanted "$old" && docker secret rm "$old" >/dev/null 2>&1; then
    info "removed old secret $old"
  fi
done

docker service ls --filter "label=$NAMESPACE_LABEL" --format '{{.Name}} {{.Mode}} {{.Replicas}}'
