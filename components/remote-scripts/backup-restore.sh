#!/usr/bin/env bash
# swarmcloud: restore the backup
# Runs on a swarm manager (exit 75 sends it to the next one), after the volume is mounted and
# before Ghost's and Portainer's stacks deploy (backup.restoreFrom). When the folders it restores
# are empty (a new cluster) a one-shot service runs the backup job's `restore` (stacks/backup-job.sh)
# in the backup image: Ghost's content and Portainer's data go back in place, the database's
# dump into the database's first-start folder, which the database takes in when it initialises
# its empty data folder, before it answers anyone. When they hold data, nothing happens, unless
# OVERWRITE is true: then the services that use them are scaled to 0, the folders moved aside
# (<folder>.replaced-<time>), the snapshot restored and the services scaled back. A wrong
# password or an unreachable repository fails here, before any folder is touched.
# Inputs: RESTORE_FROM (latest or a snapshot id), OVERWRITE (true|false), DATA_DIRS (the folders
# that hold the apps' data, one a line; the database's first), INITDB_DIR, SERVICES (the services
# that use them, one a line), IMAGE, RESOLVE_IMAGE, JOB (the job script), JOB_ENV (NAME=value a
# line), MOUNTS (one --mount spec a line), CONSTRAINT (may be empty), TIMEOUT.
# stdin: one "<secret key>=<base64 value>" line per secret the job reads.
# Prints "restored <snapshot>" or "data exists: nothing restored".
set -euo pipefail
: "${RESTORE_FROM:?}" "${DATA_DIRS:?}" "${INITDB_DIR:?}" "${IMAGE:?}" "${JOB:?}" "${MOUNTS:?}"
OVERWRITE="${OVERWRITE:-false}"
SERVICES="${SERVICES:-}"
JOB_ENV="${JOB_ENV:-}"
CONSTRAINT="${CONSTRAINT:-}"
RESOLVE_IMAGE="${RESOLVE_IMAGE:-always}"
TIMEOUT="${TIMEOUT:-600}"
RESTORE_LABEL="com.swarmcloud.restore=backup"
run="backup-restore-$(date +%s)"

require_manager "the backup is restored from a manager"

# has_data: some folder the restore would write holds something.
has_data() {
  local dir
  while IFS= read -r dir; do
    [ -n "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ] && return 0
  done <<<"$DATA_DIRS"
  return 1
}

# make_secrets: each stdin line a Docker secret of the one-shot's (the value goes from base64 to
# Docker through pipes only); fills SECRET_ARGS.
SECRET_ARGS=()
make_secrets() {
  local line key
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    case "$line" in *=*) ;; *) fatal "stdin: a secret line is not KEY=BASE64 (it has no =)" ;; esac
    key=${line%%=*}
    printf '%s' "${line#*=}" | base64 -d | docker secret create --label "$RESTORE_LABEL" "$run-$key" - >/dev/null
    SECRET_ARGS+=(--secret "source=$run-$key,target=$key")
  done
}

# stop_services: the services that use the data scaled to 0, their replica counts kept in SAVED;
# start_services: back to what they were.
SAVED=()
stop_services() {
  local s replicas
  # Service names have no blanks: the list splits on them.
  for s in $SERVICES; do
    replicas=$(docker service inspect --format '{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{end}}' "$s" 2>/dev/null) || continue
    [ -n "$replicas" ] || continue
    SAVED+=("$s=$replicas")
    docker service scale --detach=false "$s=0" >/dev/null 2>&1 || fatal "could not stop $s before the restore"
  done
}
start_services() {
  [ "${#SAVED[@]}" -eq 0 ] || docker service scale --detach "${SAVED[@]}" >/dev/null
}

# move_aside: each data folder renamed <folder>.replaced-<time>, an empty one in its place.
move_aside() {
  local dir stamp
  stamp=$(date +%Y%m%d-%H%M%S)
  while IFS= read -r dir; do
    [ -n "$dir" ] || continue
    if [ -e "$dir" ]; then mv "$dir" "$dir.replaced-$stamp"; fi
    mkdir -p "$dir"
    info "moved $dir aside to $dir.replaced-$stamp"
  done <<<"$DATA_DIRS"
}


# run_restore: the one-shot, and what it said; fails with the job's reason.
run_restore() {
  local args=() line
  while IFS= read -r line; do [ -n "$line" ] && args+=(--mount "$line"); done <<<"$MOUNTS"
  while IFS= read -r line; do [ -n "$line" ] && args+=(--env "$line"); done <<<"$JOB_ENV"
  [ -z "$CONSTRAINT" ] || args+=(--constraint "$CONSTRAINT")
  [ "$RESOLVE_IMAGE" = never ] && args+=(--no-resolve-image)
  docker network create --driver overlay --label "$RESTORE_LABEL" "$run" >/dev/null
  docker service create --detach --quiet --name "$run" --label "$RESTORE_LABEL" --network "$run" \
    --endpoint-mode dnsrr --restart-condition none "${SECRET_ARGS[@]}" "${args[@]}" \
    --entrypoint /bin/sh "$IMAGE" -c "$JOB" swarmcloud-backup restore "$RESTORE_FROM" >/dev/null
  WAIT_EVERY=1 wait_for "$TIMEOUT" "the restore ($run) to end" one_shot_ended "$run" ||
    fatal "the restore of $RESTORE_FROM did not end within $TIMEOUT s"
  WAIT_EVERY=1 wait_for 20 "the output of $run" one_shot_has_said "$run" RESTORE || true
  result=$(one_shot_said "$run" RESTORE || true)
  case "$result" in
    RESTORE=ok*) ;;
    *) fatal "the restore of $RESTORE_FROM failed (task: $(one_shot_ended "$run" || true)): ${result#RESTORE=failed }" ;;
  esac
}

if has_data && [ "$OVERWRITE" != true ]; then
  printf 'data exists: nothing restored\n'
  exit 0
fi
# A run that was killed may have left its one-shot, its secrets and its network behind.
remove_labelled "$RESTORE_LABEL"
trap 'remove_labelled "$RESTORE_LABEL"' EXIT
make_secrets
if has_data; then
  info "backup.restoreOverExisting: replacing the data with snapshot $RESTORE_FROM"
  stop_services
  trap 'start_services; remove_labelled "$RESTORE_LABEL"' EXIT
  move_aside
fi
mkdir -p "$INITDB_DIR"
run_restore
printf 'restored %s\n' "$RESTORE_FROM"
