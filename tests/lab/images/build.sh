#!/usr/bin/env bash
# Lab-only images for swarmcloud (never product defaults).
#
#   build.sh ghost-install     install the real Ghost from the npm registry into the cache (slow, once)
#   build.sh build [NAME...]   build swarmcloud-lab/{mariadb,ghost,portainer-standin}:lab (all by default)
#   build.sh load TARGET...    docker save | ssh TARGET docker load   (TARGET: [user@]host)
#   build.sh load-inventory    load onto every node of /tmp/swarmcloud-lab/inventory.json
#   build.sh all               ghost-install + build
#
# Everything slow is cached under ${SWARMCLOUD_CACHE:-$HOME/.cache/swarmcloud}; re-running is cheap.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${SWARMCLOUD_CACHE:-$HOME/.cache/swarmcloud}"
DOCKER="${DOCKER:-/usr/bin/docker}"
GHOST_VERSION="${GHOST_VERSION:-5.130.6}"
YARN_VERSION="${YARN_VERSION:-1.22.22}"
BASE_IMAGE="${BASE_IMAGE:-debian:bookworm-slim}"
INVENTORY="${INVENTORY:-/tmp/swarmcloud-lab/inventory.json}"
IMAGES=(mariadb ghost portainer-standin)

log() { printf '[images %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

ghost_dir() { printf '%s/ghost-%s' "$CACHE" "$GHOST_VERSION"; }

# Ghost from the npm registry, installed on the host (containers do not reach the registry).
ghost_install() {
  local dest work started
  dest="$(ghost_dir)"
  if [[ -f "$dest/.swarmcloud-installed" ]]; then
    log "ghost $GHOST_VERSION already installed in $dest"
    return 0
  fi
  started=$SECONDS
  mkdir -p "$CACHE"
  work="$(mktemp -d "$CACHE/ghost-work.XXXXXX")"
  # shellcheck disable=SC2064  # expand now: the trap must remove this very directory
  trap "rm -rf '$work'" EXIT

  if [[ ! -x "$CACHE/yarn/node_modules/.bin/yarn" ]]; then
    log "installing yarn $YARN_VERSION (npm registry) into $CACHE/yarn"
    npm install --silent --no-save --prefix "$CACHE/yarn" "yarn@$YARN_VERSION" >&2
  fi

  log "npm pack ghost@$GHOST_VERSION"
  (cd "$work" && npm pack --silent "ghost@$GHOST_VERSION" >/dev/null)
  tar -C "$work" -xzf "$work/ghost-$GHOST_VERSION.tgz"
  # yarn --production still resolves devDependencies, one of which lives on an unreachable git host.
  node -e '
    const fs = require("fs"); const f = process.argv[1];
    const p = JSON.parse(fs.readFileSync(f, "utf8")); delete p.devDependencies;
    fs.writeFileSync(f, JSON.stringify(p, null, 2) + "\n");' "$work/package/package.json"

  log "yarn install --production (several minutes cold)"
  (cd "$work/package" &&
    "$CACHE/yarn/node_modules/.bin/yarn" install --production --non-interactive \
      --network-timeout 600000 --cache-folder "$CACHE/yarn-cache" >&2)

  touch "$work/package/.swarmcloud-installed"
  rm -rf "$dest"
  mv "$work/package" "$dest"
  log "ghost $GHOST_VERSION installed in $dest ($((SECONDS - started)) s, $(du -sh "$dest" | cut -f1))"
}

ghost_install_main() { ghost_install; }

case "${1:-}" in
  ghost-install) ghost_install_main ;;
  *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
