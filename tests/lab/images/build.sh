#!/usr/bin/env bash
# Lab-only images for swarmcloud (never product defaults).
#
#   build.sh ghost-install        install the real Ghost from the npm registry into the cache (slow, once)
#   build.sh build [--force] [NAME...]
#                                 build the images (all by default; NAME: mariadb ghost portainer-standin caddy restic)
#   build.sh load TARGET...       docker save | ssh TARGET docker load, skipped where the image is there
#                                 (TARGET: [user@]host; key from SSH_KEY or the lab inventory)
#   build.sh load-inventory       load onto every running node of the lab inventory ($INVENTORY)
#   build.sh all                  ghost-install + build + (when an inventory exists) load-inventory
#   build.sh images               print the image names
#
# Images (LAB ONLY, never product defaults), tagged lab-<release> (TAG below):
#   swarmcloud-lab/mariadb:TAG                   MariaDB (Debian) with the mysql image's variables
#   swarmcloud-lab/ghost:TAG                     the real Ghost from the npm registry, official layout
#   swarmcloud-lab/portainer-standin:TAG         a stand-in for Portainer's server (it is not Portainer)
#   swarmcloud-lab/portainer-agent-standin:TAG   the same, as the agent
#   swarmcloud-lab/caddy:TAG                     Debian's caddy, for the front door (only with WITH_EDGE=1,
#                                                or by name: the suites without the front door never build
#                                                or load it)
#   swarmcloud-lab/restic:TAG                    Debian's restic + mariadb-client + ssh, for the backup
#                                                service (only with WITH_BACKUP=1, or by name, as caddy)
# Debian release: SWARMCLOUD_LAB_DEBIAN=trixie (default, Debian 13) or bookworm (Debian 12), the
# lab harness's setting (tests/lab/lab.sh): the images are built FROM debian:<release>-slim and
# tagged lab-<release> (e.g. swarmcloud-lab/mariadb:lab-trixie), so both releases' live side by side.
# Everything slow is cached under ${SWARMCLOUD_CACHE:-$HOME/.cache/swarmcloud}; an image whose
# inputs (files, base image, Ghost and Node versions) did not change is not rebuilt.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${SWARMCLOUD_CACHE:-$HOME/.cache/swarmcloud}"
DOCKER="${DOCKER:-/usr/bin/docker}"
GHOST_VERSION="${GHOST_VERSION:-5.130.6}"
YARN_VERSION="${YARN_VERSION:-1.22.22}"
LAB_DEBIAN="${SWARMCLOUD_LAB_DEBIAN:-trixie}"
case "$LAB_DEBIAN" in
  trixie | bookworm) ;;
  *) printf 'SWARMCLOUD_LAB_DEBIAN=%s: must be trixie (Debian 13) or bookworm (Debian 12)\n' "$LAB_DEBIAN" >&2
    exit 2 ;;
esac
BASE_IMAGE="${BASE_IMAGE:-debian:$LAB_DEBIAN-slim}"
TAG="lab-$LAB_DEBIAN"
INVENTORY="${INVENTORY:-/tmp/swarmcloud-lab/inventory.json}"
NAMES=(mariadb ghost portainer-standin)
# The front door's image joins "all" and the loads only when asked (tests/e2e/edge.e2e.ts).
if [[ "${WITH_EDGE:-0}" == 1 ]]; then NAMES+=(caddy); fi
# The backup's image likewise (tests/e2e/backup.e2e.ts).
if [[ "${WITH_BACKUP:-0}" == 1 ]]; then NAMES+=(restic); fi
REPO=swarmcloud-lab
INPUTS_LABEL=swarmcloud.lab.inputs
FORCE=0
SSH_OPTS=()

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

d() { "$DOCKER" "$@"; }

# The base image comes from the lab harness (debootstrap + import); wait for it or ask for it.
ensure_base() {
  local waited=0
  while ! d image inspect "$BASE_IMAGE" >/dev/null 2>&1; do
    if [[ -x "$HERE/../lab.sh" ]] && grep -q 'cmd_image' "$HERE/../lab.sh"; then
      log "$BASE_IMAGE missing: asking tests/lab/lab.sh image"
      "$HERE/../lab.sh" image >&2
      d image inspect "$BASE_IMAGE" >/dev/null 2>&1 || die "lab.sh image did not make $BASE_IMAGE"
      return 0
    fi
    ((waited < 1800)) || die "$BASE_IMAGE does not exist (make it with tests/lab/lab.sh image)"
    ((waited % 60 == 0)) && log "waiting for $BASE_IMAGE (made by the lab harness)"
    sleep 10
    waited=$((waited + 10))
  done
}

# A digest of everything an image is built from; stored as a label to skip unchanged rebuilds.
inputs_digest() {
  local name="$1"
  {
    d image inspect --format '{{.Id}}' "$BASE_IMAGE"
    (cd "$HERE/$name" && find . -type f ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)
    if [[ "$name" == ghost ]]; then
      printf 'ghost %s node %s\n' "$GHOST_VERSION" "$(node --version)"
      sha256sum /usr/bin/node
    fi
  } | sha256sum | cut -c1-16
}

current_digest() {
  d image inspect --format "{{index .Config.Labels \"$INPUTS_LABEL\"}}" "$1" 2>/dev/null || true
}

# build_context NAME IMAGE CONTEXT [docker build args...]
build_context() {
  local name="$1" tag="$2" ctx="$3" digest started
  shift 3
  digest="$(inputs_digest "$name")"
  if [[ "$FORCE" != 1 && "$(current_digest "$tag")" == "$digest" ]]; then
    log "$tag is up to date (inputs $digest)"
    return 0
  fi
  started=$SECONDS
  log "building $tag"
  d build --label "$INPUTS_LABEL=$digest" --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$tag" "$@" "$ctx" >&2
  log "built $tag in $((SECONDS - started)) s ($(d image inspect --format '{{.Size}}' "$tag" | awk '{printf "%d MB", $1/1e6}'))"
}

build_mariadb() { build_context mariadb "$REPO/mariadb:$TAG" "$HERE/mariadb"; }

build_caddy() { build_context caddy "$REPO/caddy:$TAG" "$HERE/caddy"; }

build_restic() { build_context restic "$REPO/restic:$TAG" "$HERE/restic"; }

build_portainer_standin() {
  build_context portainer-standin "$REPO/portainer-standin:$TAG" "$HERE/portainer-standin"
  # The agent: the same program with STANDIN_ROLE=agent (a tiny image on top).
  local digest
  digest="$(inputs_digest portainer-standin)"
  if [[ "$FORCE" == 1 || "$(current_digest "$REPO/portainer-agent-standin:$TAG")" != "$digest" ]]; then
    printf 'FROM %s\nENV STANDIN_ROLE=agent\n' "$REPO/portainer-standin:$TAG" |
      d build --label "$INPUTS_LABEL=$digest" -t "$REPO/portainer-agent-standin:$TAG" - >&2
    log "built $REPO/portainer-agent-standin:$TAG"
  fi
}

build_ghost() {
  local src ctx lib
  src="$(ghost_dir)"
  [[ -f "$src/.swarmcloud-installed" ]] || ghost_install
  if [[ "$FORCE" != 1 && "$(current_digest "$REPO/ghost:$TAG")" == "$(inputs_digest ghost)" ]]; then
    log "$REPO/ghost:$TAG is up to date"
    return 0
  fi
  # The context lives in the cache (hard links: no copy of the 500 MB tree).
  ctx="$CACHE/context-ghost"
  rm -rf "$ctx"
  mkdir -p "$ctx/nodelibs"
  cp -al "$src" "$ctx/ghost"
  rm -f "$ctx/ghost/.swarmcloud-installed"
  cp "$HERE/ghost/"* "$ctx/"
  cp /usr/bin/node "$ctx/node"
  # Shared libraries of the host's node (the Dockerfile adds those the base image lacks).
  for lib in $(ldd /usr/bin/node | awk '$2 == "=>" && $3 ~ /^\// {print $3}'); do
    cp -L "$lib" "$ctx/nodelibs/"
  done
  build_context ghost "$REPO/ghost:$TAG" "$ctx"
  rm -rf "$ctx"
}

cmd_build() {
  local names=() n
  FORCE=0
  for n in "$@"; do
    case "$n" in
      --force) FORCE=1 ;;
      mariadb | ghost | portainer-standin | caddy | restic) names+=("$n") ;;
      *) die "unknown image $n (known: ${NAMES[*]})" ;;
    esac
  done
  ((${#names[@]})) || names=("${NAMES[@]}")
  ensure_base
  for n in "${names[@]}"; do
    "build_${n//-/_}"
  done
}

all_tags() {
  printf '%s\n' "$REPO/mariadb:$TAG" "$REPO/ghost:$TAG" "$REPO/portainer-standin:$TAG" "$REPO/portainer-agent-standin:$TAG"
  if [[ "${WITH_EDGE:-0}" == 1 ]]; then printf '%s\n' "$REPO/caddy:$TAG"; fi
  if [[ "${WITH_BACKUP:-0}" == 1 ]]; then printf '%s\n' "$REPO/restic:$TAG"; fi
}

ssh_key() {
  if [[ -n "${SSH_KEY:-}" ]]; then
    printf '%s' "$SSH_KEY"
  elif [[ -f "$INVENTORY" ]]; then
    jq -r .privateKeyPath "$INVENTORY"
  fi
}

# load TARGET...: the images each target lacks, in one `docker save` (shared layers sent once),
# targets in parallel. The saved tarball is cached per set of image ids and reused across targets.
cmd_load() {
  (($#)) || die "usage: build.sh load [user@]host..."
  local key tags tag target pids=() failed=0
  key="$(ssh_key)"
  SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
    -o LogLevel=ERROR -o ConnectTimeout=10)
  if [[ -n "$key" ]]; then SSH_OPTS+=(-i "$key"); fi
  mapfile -t tags < <(all_tags)
  for tag in "${tags[@]}"; do
    d image inspect "$tag" >/dev/null 2>&1 || die "$tag is not built (build.sh build)"
  done
  mkdir -p "$CACHE/saved"
  for target in "$@"; do
    load_one "$target" "${tags[@]}" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
  done
  find "$CACHE/saved" -name '*.tar' -mmin +120 -delete 2>/dev/null || true
  ((failed == 0)) || die "loading failed on at least one target"
}

load_one() {
  local target="$1" tag id missing=() ids="" tarball started=$SECONDS
  shift
  for tag in "$@"; do
    id="$(d image inspect --format '{{.Id}}' "$tag")"
    if [[ "$(ssh "${SSH_OPTS[@]}" "$target" docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null)" != "$id" ]]; then
      missing+=("$tag")
      ids+="$id "
    fi
  done
  if ((${#missing[@]} == 0)); then
    log "$target: all images present"
    return 0
  fi
  tarball="$CACHE/saved/$(printf '%s' "$ids" | sha256sum | cut -c1-16).tar"
  # (flock: parallel targets needing the same set save it once)
  (
    flock 9
    if [[ ! -f "$tarball" ]]; then
      d save "${missing[@]}" >"$tarball.part"
      mv -f "$tarball.part" "$tarball"
    fi
  ) 9>"$tarball.lock"
  ssh "${SSH_OPTS[@]}" "$target" docker load <"$tarball" >/dev/null
  log "$target: loaded ${missing[*]} in $((SECONDS - started)) s"
}

cmd_load_inventory() {
  [[ -f "$INVENTORY" ]] || die "no lab inventory at $INVENTORY (tests/lab/lab.sh up ...)"
  local user targets
  user="$(jq -r '.user // "root"' "$INVENTORY")"
  mapfile -t targets < <(jq -r --arg u "$user" '.nodes[] | select(.running) | "\($u)@\(.address)"' "$INVENTORY")
  ((${#targets[@]})) || die "the inventory lists no running node"
  cmd_load "${targets[@]}"
  # The first node, when fresh, becomes the preload of nodes made later (lab.sh, "Preload"): they
  # start with these images. Only a speed-up: a node it cannot be taken from is no failure.
  local first
  first="$(jq -r '[.nodes[] | select(.running)][0].container' "$INVENTORY")"
  bash "$HERE/../lab.sh" preload-save "$first" || log "no preload saved from $first (each new node is loaded instead)"
}

main() {
  local cmd="${1:-}"
  (($#)) && shift
  case "$cmd" in
    ghost-install) ghost_install ;;
    build) cmd_build "$@" ;;
    load) cmd_load "$@" ;;
    load-inventory) cmd_load_inventory ;;
    all)
      ghost_install
      cmd_build "$@"
      if [[ -f "$INVENTORY" ]]; then cmd_load_inventory; fi
      ;;
    images) all_tags ;;
    *)
      sed -n '2,20p' "$0" >&2
      exit 2
      ;;
  esac
}

main "$@"
