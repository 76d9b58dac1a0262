#!/usr/bin/env bash
# swarmcloud LAB ONLY: a MariaDB entrypoint honouring the official mysql image's variables.
#   MYSQL_ROOT_PASSWORD[_FILE]  root password (root@localhost and root@%); required on first start
#                               unless MYSQL_ALLOW_EMPTY_PASSWORD=yes
#   MYSQL_DATABASE              database created on first start
#   MYSQL_USER, MYSQL_PASSWORD[_FILE]  user created on first start, with all rights on MYSQL_DATABASE
#   /docker-entrypoint-initdb.d/*.sql  run on first start, in MYSQL_DATABASE, before the server
#                               listens (as the official images do; a backup's restore leaves its dump there)
# The data folder is initialised on the first start only (when it holds no `mysql` schema).
set -euo pipefail

DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock

log() { printf '[entrypoint] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# VAR or VAR_FILE (Docker secrets), never both.
file_env() {
  local var="$1" file_var="${1}_FILE"
  if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
    die "both $var and $file_var are set; use one"
  fi
  if [[ -n "${!file_var:-}" ]]; then
    [[ -r "${!file_var}" ]] || die "$file_var: cannot read ${!file_var}"
    printf -v "$var" '%s' "$(cat "${!file_var}")"
  fi
  export "${var}=${!var:-}"
  unset "$file_var"
}

# A string as an SQL literal: backslashes and quotes escaped.
sql_string() {
  local s="${1//\\/\\\\}"
  printf "'%s'" "${s//\'/\\\'}"
}
# shellcheck disable=SC2016  # literal backquotes
sql_ident() { printf '`%s`' "${1//\`/\`\`}"; }

if [[ "${1:-}" == -* ]]; then
  set -- mariadbd "$@"
fi

if [[ "${1:-}" != mariadbd && "${1:-}" != mysqld ]]; then
  exec "$@"
fi

if [[ "$(id -u)" == 0 ]]; then
  mkdir -p "$DATADIR" /run/mysqld
  chown mysql:mysql /run/mysqld
  find "$DATADIR" \! -user mysql -exec chown mysql:mysql '{}' +
  exec setpriv --reuid=mysql --regid=mysql --init-groups "${BASH_SOURCE[0]}" "$@"
fi

file_env MYSQL_ROOT_PASSWORD
file_env MYSQL_PASSWORD

if [[ ! -d "$DATADIR/mysql" ]]; then
  if [[ -z "$MYSQL_ROOT_PASSWORD" && "${MYSQL_ALLOW_EMPTY_PASSWORD:-}" != yes ]]; then
    die "the database is uninitialised: set MYSQL_ROOT_PASSWORD (or MYSQL_ROOT_PASSWORD_FILE)"
  fi
  if [[ -n "${MYSQL_USER:-}" && "$MYSQL_USER" == root ]]; then
    die "MYSQL_USER=root: the root user exists already; set MYSQL_ROOT_PASSWORD instead"
  fi
  log "initialising $DATADIR"
  mariadb-install-db --datadir="$DATADIR" --auth-root-authentication-method=normal \
    --skip-test-db --skip-name-resolve >/dev/null

  "$@" --skip-networking --socket="$SOCKET" &
  pid=$!
  for _ in $(seq 60); do
    mariadb-admin --socket="$SOCKET" -uroot ping --silent >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || die "the temporary server stopped during initialisation"
    sleep 1
  done
  mariadb-admin --socket="$SOCKET" -uroot ping --silent >/dev/null 2>&1 ||
    die "the temporary server did not answer within 60s"

  root_pw="$(sql_string "$MYSQL_ROOT_PASSWORD")"
  {
    echo "SET @@SESSION.SQL_LOG_BIN=0;"
    echo "DROP USER IF EXISTS ''@'localhost', ''@'$(hostname)', 'root'@'$(hostname)';"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED BY $root_pw;"
    echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY $root_pw;"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    if [[ -n "${MYSQL_DATABASE:-}" ]]; then
      echo "CREATE DATABASE IF NOT EXISTS $(sql_ident "$MYSQL_DATABASE") CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;"
    fi
    if [[ -n "${MYSQL_USER:-}" ]]; then
      [[ -n "$MYSQL_PASSWORD" ]] || die "MYSQL_USER is set but MYSQL_PASSWORD (or MYSQL_PASSWORD_FILE) is not"
      echo "CREATE USER IF NOT EXISTS $(sql_string "$MYSQL_USER")@'%' IDENTIFIED BY $(sql_string "$MYSQL_PASSWORD");"
      if [[ -n "${MYSQL_DATABASE:-}" ]]; then
        echo "GRANT ALL ON $(sql_ident "$MYSQL_DATABASE").* TO $(sql_string "$MYSQL_USER")@'%';"
      fi
    fi
    echo "FLUSH PRIVILEGES;"
    # The first-start SQL, in the same root session (the password is set by now).
    if [[ -n "${MYSQL_DATABASE:-}" ]]; then echo "USE $(sql_ident "$MYSQL_DATABASE");"; fi
    for f in /docker-entrypoint-initdb.d/*.sql; do
      [[ -f "$f" ]] || continue
      log "running $f"
      cat "$f"
    done
  } | mariadb --protocol=socket --socket="$SOCKET" -uroot

  kill "$pid"
  wait "$pid" || true
  log "initialised: database ${MYSQL_DATABASE:-(none)}, user ${MYSQL_USER:-(none)}"
fi

unset MYSQL_ROOT_PASSWORD MYSQL_PASSWORD
exec "$@"
