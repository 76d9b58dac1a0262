#!/bin/sh
# swarmcloud: the backup job, run inside the backup image (restic, a POSIX shell, and mysqldump
# or mariadb-dump) by the backup service (stacks/backup.ts) and by the restore one-shot
# (components/remote-scripts/backup-restore.sh). The compose text carries it as the service's
# entrypoint (`sh -c <this file> swarmcloud-backup <mode>`), so it needs nothing in the image.
#   run          back up now, then every INTERVAL_HOURS (a restart of the service backs up at once)
#   once         back up now, once
#   restore ID   restore snapshot ID (or `latest`) into the folders mounted under /backup
# What a snapshot holds: /backup/database/ghost.sql (a consistent dump: --single-transaction),
# /backup/ghost-content and /backup/portainer (mounted read-only from the Gluster volume).
# Environment (BACKUP_ROOT and RESTORE_TARGET only for the unit test): RESTIC_REPOSITORY,
# RESTIC_PASSWORD_FILE, DB_HOST, DB_USER, DB_NAME, DB_PASSWORD_FILE, INTERVAL_HOURS, RETRY_SECONDS
# (after a failed run: 600 unless set), KEEP_DAILY, KEEP_WEEKLY, KEEP_MONTHLY, STATUS_DIR (run:
# where last-run and last-success are written), INITDB_DIR (run: the restored dump, removed once
# the database answers a dump), SFTP_KEY_FILE and SFTP_HOST_KEY (sftp), S3_ACCESS_KEY_ID_FILE and
# S3_SECRET_ACCESS_KEY_FILE (s3). Secrets are read from files (Docker secrets), never printed.
# Prints (stdout, one line per run): BACKUP=ok <time> <snapshot> <seconds>s, BACKUP=failed
# <time> <why>, RESTORE=ok <snapshot>, RESTORE=failed <why>.
set -eu

HOST_TAG=swarmcloud
WORK="${TMPDIR:-/tmp}/swarmcloud-backup"
# What a snapshot holds (its paths); another root only for the unit test.
ROOT="${BACKUP_ROOT:-/backup}"

log() { printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

# The S3 keys as restic reads them (its environment only), from their Docker secrets.
s3_credentials() {
  [ -n "${S3_ACCESS_KEY_ID_FILE:-}" ] || return 0
  AWS_ACCESS_KEY_ID=$(cat "$S3_ACCESS_KEY_ID_FILE")
  AWS_SECRET_ACCESS_KEY=$(cat "$S3_SECRET_ACCESS_KEY_FILE")
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
}

# sftp: the login key (a copy only we can read: ssh refuses a key others may read), the pinned
# host key, and the ssh command restic starts (`-o sftp.command`), which checks that key.
sftp_command() {
  [ -n "${SFTP_KEY_FILE:-}" ] || return 0
  repo=${RESTIC_REPOSITORY#sftp:}
  repo=${repo#//}
  user=${repo%%@*}
  rest=${repo#*@}
  host=${rest%%[:/]*}
  port=22
  case "$RESTIC_REPOSITORY" in sftp://*:[0-9]*/*)
    port=${rest#"$host":}
    port=${port%%/*}
    ;;
  esac
  known="$host"
  [ "$port" = 22 ] || known="[$host]:$port"
  # Config secrets lose their last newline, without which ssh cannot read the key ("error in libcrypto").
  (umask 077 && cat "$SFTP_KEY_FILE" >"$WORK/sftp_key")
  [ -z "$(tail -c 1 "$WORK/sftp_key")" ] || printf '\n' >>"$WORK/sftp_key"
  printf '%s %s\n' "$known" "$SFTP_HOST_KEY" >"$WORK/known_hosts"
  printf '%s' "ssh -i $WORK/sftp_key -p $port -o UserKnownHostsFile=$WORK/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=15 -o ServerAliveInterval=15 -l $user $host -s sftp"
}

# restic with the target's options.
r() {
  if [ -n "${SFTP_COMMAND:-}" ]; then
    restic -o sftp.command="$SFTP_COMMAND" "$@"
  else
    restic "$@"
  fi
}

# repo_ready MODE: the repository answers with our password; `run` makes it where none exists.
# A wrong password or an unreachable target stops here, before anything is written anywhere.
repo_ready() {
  r cat config >/dev/null 2>"$WORK/err" && return 0
  if grep -q 'wrong password' "$WORK/err"; then
    WHY="the repository's password is wrong (swarmcloud:backupPassword or the backupRepositoryPassword output)"
  elif grep -q 'Is there a repository at the following location' "$WORK/err"; then
    if [ "$1" = run ]; then
      log "no repository at $RESTIC_REPOSITORY: making one"
      r init >&2 2>"$WORK/err" && return 0
      WHY="restic init failed: $(tr '\n' ' ' <"$WORK/err" | cut -c1-300)"
    else
      WHY="there is no repository at $RESTIC_REPOSITORY"
    fi
  else
    WHY="the repository does not answer: $(tr '\n' ' ' <"$WORK/err" | cut -c1-300)"
  fi
  return 1
}

# The database as one consistent dump (--single-transaction), its password in a client options
# file only we can read (never on a command line).
dump_database() {
  dumper=$(command -v mariadb-dump || command -v mysqldump || true)
  if [ -z "$dumper" ] && command -v apk >/dev/null; then
    log "no mysqldump in the image: installing Alpine's mariadb-client"
    apk add --no-cache --quiet mariadb-client >&2 || true
    dumper=$(command -v mariadb-dump || command -v mysqldump || true)
  fi
  [ -n "$dumper" ] || { WHY="the image has neither mariadb-dump nor mysqldump"; return 1; }
  password=$(sed 's/[\\"]/\\&/g' "$DB_PASSWORD_FILE")
  (umask 077 && printf '[client]\nuser="%s"\npassword="%s"\nhost="%s"\n' "$DB_USER" "$password" "$DB_HOST" >"$WORK/my.cnf")
  mkdir -p "$ROOT/database"
  if ! "$dumper" --defaults-extra-file="$WORK/my.cnf" --single-transaction --no-tablespaces "$DB_NAME" \
    >"$ROOT/database/ghost.sql.part" 2>"$WORK/err"; then
    WHY="the database dump failed: $(tr '\n' ' ' <"$WORK/err" | cut -c1-300)"
    return 1
  fi
  # mariadb-dump 10.11.8+ starts with a "sandbox mode" line that MySQL refuses: left out, so the
  # dump restores into MySQL (ghost.dbImage's default) as well as into MariaDB.
  sed '1{/enable the sandbox mode/d;}' "$ROOT/database/ghost.sql.part" >"$ROOT/database/ghost.sql"
  rm -f "$ROOT/database/ghost.sql.part"
}

# One backup: dump, snapshot, retention, check. Sets SNAPSHOT, or WHY on failure.
backup_once() {
  repo_ready run || return 1
  dump_database || return 1
  # A restored dump waiting for the database's first start has been taken in once it dumps.
  [ -z "${INITDB_DIR:-}" ] || rm -f "$INITDB_DIR/ghost.sql"
  r backup --host "$HOST_TAG" --tag "$HOST_TAG" "$ROOT" >"$WORK/out" 2>"$WORK/err" || {
    WHY="restic backup failed: $(tr '\n' ' ' <"$WORK/err" | cut -c1-300)"
    return 1
  }
  cat "$WORK/out" >&2
  SNAPSHOT=$(sed -n 's/^snapshot \([0-9a-f]*\) saved.*/\1/p' "$WORK/out")
  r forget --host "$HOST_TAG" --prune --keep-daily "$KEEP_DAILY" --keep-weekly "$KEEP_WEEKLY" \
    --keep-monthly "$KEEP_MONTHLY" >&2 2>"$WORK/err" || {
    WHY="restic forget failed: $(tr '\n' ' ' <"$WORK/err" | cut -c1-300)"
    return 1
  }
  r check >&2 2>"$WORK/err" || {
    WHY="restic check found a problem: $(tr '\n' ' ' <"$WORK/err" | cut -c1-300)"
    return 1
  }
}

# One run of the schedule: its result on stdout (the service's log) and in STATUS_DIR.
run_once() {
  started=$(date +%s)
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  WHY=""
  SNAPSHOT=""
  NEXT=$((INTERVAL_HOURS * 3600))
  if backup_once; then
    line="BACKUP=ok $now $SNAPSHOT $(($(date +%s) - started))s"
    printf '%s\n' "${line#BACKUP=ok }" >"$STATUS_DIR/last-success"
  else
    line="BACKUP=failed $now $WHY"
    # A failed run (the target or the database not answering yet) is tried again soon, not a
    # whole interval later: at most every RETRY_SECONDS, never later than the schedule's next run.
    [ "${RETRY_SECONDS:-600}" -ge "$NEXT" ] || NEXT=${RETRY_SECONDS:-600}
  fi
  printf '%s\n' "$line"
  printf '%s\n' "${line#BACKUP=}" >"$STATUS_DIR/last-run"
}

schedule() {
  mkdir -p "$STATUS_DIR"
  trap 'exit 0' TERM INT
  while :; do
    run_once
    sleep "$NEXT" &
    wait $! || true
  done
}

restore() {
  WHY=""
  if repo_ready restore; then
    set -- "$1"
    [ "$1" = latest ] && set -- latest --host "$HOST_TAG"
    if r restore "$@" --target "${RESTORE_TARGET:-/}" >&2 2>"$WORK/err"; then
      printf 'RESTORE=ok %s\n' "$1"
      return 0
    fi
    WHY="restic restore failed: $(tr '\n' ' ' <"$WORK/err" | cut -c1-300)"
  fi
  printf 'RESTORE=failed %s\n' "$WHY"
  return 1
}

main() {
  mkdir -p "$WORK"
  s3_credentials
  SFTP_COMMAND=$(sftp_command)
  case "${1:-}" in
    run) schedule ;;
    once) mkdir -p "$STATUS_DIR" && run_once ;;
    restore) restore "${2:?snapshot id or latest}" ;;
    *)
      log "usage: swarmcloud-backup run | once | restore <snapshot id|latest>"
      exit 2
      ;;
  esac
}

main "$@"
