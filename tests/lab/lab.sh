#!/bin/bash
# swarmcloud lab harness: real cluster nodes as containers on this machine.
#
# Usage: tests/lab/lab.sh [--prefix P] SUBCOMMAND [ARGS...]
#   engine                     start the host Docker engine if none answers
#                              (installs docker.io/debootstrap with apt-get if missing)
#   image                      ensure debian:<release>-slim (debootstrap+import, cached),
#                              then build swarmcloud-node:lab-<release> from node-image/
#                              (cached layers)
#   up N_MANAGERS N_WORKERS    create/start P-m1..P-mN and P-w1..P-wM, wait for ssh+docker,
#                              write the inventory. Existing running nodes are left alone;
#                              nodes beyond the requested counts are not removed.
#   add NAME ROLE              add one node; NAME is manager-K / worker-K or P-mK / P-wK,
#                              ROLE is manager|worker
#   stop NODE [--kill]         docker stop (graceful, 30 s) or docker kill (--kill)
#   start NODE                 docker start, wait for ssh+docker again
#   rm NODE                    remove a node and its volumes
#   down                       remove every lab container, volume and network (all
#                              prefixes) and the lab dir; safe to call twice
#   ssh NODE [CMD...]          run CMD on a node as root (CMD joined like ssh does)
#   ip NODE                    print a node's address
#   hostkey NODE               print the SSH host key the node's sshd serves (`ssh-ed25519 <base64>`),
#                              read through docker exec, not over the network
#   rekey NODE                 replace the node's SSH host keys as a reinstall (or an impostor)
#                              would: remove them, `ssh-keygen -A`, SIGHUP sshd; wait until the
#                              node serves the new key, record it in the lab dir (so a restart
#                              keeps it), rewrite the inventory; print the new key
#   inventory                  rewrite the inventory from Docker state and print it
#   preload-save NODE          keep NODE's images (a fresh node: no container, no swarm) as the
#                              preload of nodes made later from the same node image (below)
#   mirror                     print the Debian mirror the lab's debootstrap uses (tests/lab/vagrant.sh
#                              builds its box from it too)
#   stranger CMD...            run CMD (bash -c) in a throw-away container from the node image
#                              on the lab network at .250: a machine on the cluster's network
#                              that is not a node (FUSE allowed, so it can try a Gluster mount);
#                              exits with CMD's code
# NODE is a container name (lab-m1) or a cluster node name (manager-1).
#
# Debian release of the nodes (and of the lab's app images, tests/lab/images/build.sh):
# SWARMCLOUD_LAB_DEBIAN=trixie (default, Debian 13) or bookworm (Debian 12). Its images carry
# the release in their tags (debian:trixie-slim, swarmcloud-node:lab-trixie), so both releases'
# images live side by side; a lab's nodes are all of one release (`down` before switching).
#
# Addresses (network swarmcloud-lab, 172.31.250.0/24, gateway .1):
#   manager K -> container P-mK, IP .(10+K)  (K = 1..19: .11-.29)
#   worker  K -> container P-wK, IP .(30+K)  (K = 1..199: .31-.229)
#   container hostname: P-node-<last octet> (the program under test sets the real one)
# Only one prefix can use a network's addresses at a time; for a second lab in parallel set
# SWARMCLOUD_LAB_NETWORK and SWARMCLOUD_LAB_NET_PREFIX (and SWARMCLOUD_LAB_DIR).
#
# Files (lab dir ${SWARMCLOUD_LAB_DIR:-/tmp/swarmcloud-lab}):
#   id_ed25519, id_ed25519.pub   SSH key pair for root on every node
#   host-keys/CONTAINER{,.pub}   each node's SSH host key, made here and mounted read-only at
#                                /etc/swarmcloud/ssh_host_ed25519_key, which the node image's
#                                entrypoint makes sshd's only host key; the inventory lists its
#                                public half as hostKey, for a suite to pin (or not: trust on
#                                first use works as with any host)
#   inventory.json               (inventory-P.json for a prefix other than "lab")
#
# Preload (lab only): loading the app images onto a node (`docker save | ssh node docker load`,
# tests/lab/images/build.sh) took 250 s for 5 nodes here, most of it unpacking the same layers
# five times. So once one fresh node has them, `preload-save` keeps its Docker image store (the
# image metadata copied, the layer directories as hard links: no data copied) in the host
# engine's volume swarmcloud-lab-preload, per node image id, and `up`/`add` give a new
# node's /var/lib/docker volume that store before its dockerd starts. A preload is used only while
# every image it lists has the same id on this machine (otherwise build.sh's load does the work);
# SWARMCLOUD_LAB_PRELOAD=0 turns it off.
#
# Node containers are made from the recipe LocalNodes uses too (components/nodes/node-container.json,
# read through tests/lab/node-container-args.js): `up`, `add` and `rm` need Node.js (node on PATH,
# or SWARMCLOUD_LAB_NODE).
#
# Nodes restart on failure (`--restart on-failure`): a node's `reboot` (node-image/reboot) exits
# its container with code 3 and Docker starts it again, as a host comes back from a reboot.
# `stop` (docker stop or kill) leaves a node down: Docker does not restart a container it stopped.
#
# Everything created carries the label swarmcloud.lab=1; `down` removes only that.
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
readonly SCRIPT_DIR REPO_ROOT

DOCKER="${SWARMCLOUD_DOCKER:-/usr/bin/docker}"
LAB_DIR="${SWARMCLOUD_LAB_DIR:-/tmp/swarmcloud-lab}"
NETWORK="${SWARMCLOUD_LAB_NETWORK:-swarmcloud-lab}"
NET_PREFIX="${SWARMCLOUD_LAB_NET_PREFIX:-172.31.250}"
DEBIAN_RELEASE="${SWARMCLOUD_LAB_DEBIAN:-trixie}"
case "$DEBIAN_RELEASE" in
  trixie | bookworm) ;;
  *)
    printf 'lab: error: SWARMCLOUD_LAB_DEBIAN=%s: must be trixie (Debian 13) or bookworm (Debian 12)\n' \
      "$DEBIAN_RELEASE" >&2
    exit 2
    ;;
esac
IMAGE="${SWARMCLOUD_LAB_IMAGE:-swarmcloud-node:lab-$DEBIAN_RELEASE}"
BASE_IMAGE="${SWARMCLOUD_LAB_BASE_IMAGE:-debian:$DEBIAN_RELEASE-slim}"
PREFIX="${SWARMCLOUD_LAB_PREFIX:-lab}"
READY_TIMEOUT="${SWARMCLOUD_LAB_TIMEOUT:-180}"
ENGINE_LOG="${SWARMCLOUD_LAB_ENGINE_LOG:-/var/log/swarmcloud-dockerd.log}"
NODE_BIN="${SWARMCLOUD_LAB_NODE:-node}"
# The preloads live in a Docker volume of the host's engine (not the lab's: `down` keeps it), so
# they are on the same mount as the nodes' volumes: hard links cannot cross mounts.
readonly PRELOAD_VOLUME=swarmcloud-lab-preload
readonly DOCKER LAB_DIR NETWORK NET_PREFIX DEBIAN_RELEASE IMAGE BASE_IMAGE READY_TIMEOUT ENGINE_LOG NODE_BIN
readonly LABEL=swarmcloud.lab
readonly KEY="$LAB_DIR/id_ed25519"
readonly HOST_KEYS="$LAB_DIR/host-keys"
readonly NODE_HOST_KEY=/etc/swarmcloud/ssh_host_ed25519_key
readonly MARKER="$LAB_DIR/.swarmcloud-lab"
# docker stop's wait; node containers are made with the same (stopTimeoutSeconds in the recipe).
readonly STOP_TIMEOUT=30
readonly MAX_MANAGERS=19 MAX_WORKERS=199

SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
  -o LogLevel=ERROR -o ConnectTimeout=5 -o ServerAliveInterval=15 -i "$KEY")
readonly SSH_OPTS

log() { printf 'lab: %s\n' "$*" >&2; }
die() {
  printf 'lab: error: %s\n' "$*" >&2
  exit 1
}
usage() {
  sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit "${1:-2}"
}
d() { "$DOCKER" "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

engine_answers() { d info >/dev/null 2>&1; }
require_engine() { engine_answers || die "no Docker engine answers; run: $0 engine"; }

inventory_path() {
  if [[ "$PREFIX" == lab ]]; then
    printf '%s/inventory.json' "$LAB_DIR"
  else
    printf '%s/inventory-%s.json' "$LAB_DIR" "$PREFIX"
  fi
}

# ---------------------------------------------------------------- engine

cmd_engine() {
  local missing=() t0
  [[ -x /usr/sbin/dockerd && -x "$DOCKER" ]] || missing+=(docker.io)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
  if engine_answers; then
    log "engine already answers"
    return 0
  fi
  t0="$(now)"
  if pgrep -x dockerd >/dev/null; then
    log "dockerd is running but does not answer yet; waiting"
  else
    log "starting dockerd (log $ENGINE_LOG)"
    nohup setsid /usr/sbin/dockerd >>"$ENGINE_LOG" 2>&1 </dev/null &
  fi
  local i
  for ((i = 0; i < 120; i++)); do
    if engine_answers; then
      log "engine ready in $(elapsed "$t0")s"
      return 0
    fi
    sleep 0.5
  done
  tail -n 20 "$ENGINE_LOG" >&2 || true
  die "dockerd did not answer within 60 s (see $ENGINE_LOG)"
}

# ---------------------------------------------------------------- image

# debian_mirror: the Debian mirror this machine's apt uses (SWARMCLOUD_DEBIAN_MIRROR overrides):
# the URIs of a source whose suites include the lab's release or this machine's own release
# (a mirror serves every release), deb.debian.org when there is none.
debian_mirror() {
  local m="" own="" suite
  if [[ -n "${SWARMCLOUD_DEBIAN_MIRROR:-}" ]]; then
    printf '%s' "$SWARMCLOUD_DEBIAN_MIRROR"
    return
  fi
  # shellcheck disable=SC1091  # the machine's own
  own="$(. /etc/os-release 2>/dev/null && printf '%s' "${VERSION_CODENAME:-}")"
  for suite in "$DEBIAN_RELEASE" "$own"; do
    [[ -n "$suite" ]] || continue
    # deb822 sources: the URIs of a stanza whose Suites include plain "$suite".
    m="$(awk -v suite="$suite" '
      /^[[:space:]]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
      END { if (uri != "" && ok) print uri }
    ' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)"
    if [[ -z "$m" && -r /etc/apt/sources.list ]]; then
      m="$(awk -v suite="$suite" '$1 == "deb" && $0 ~ (" " suite " ") { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
        /etc/apt/sources.list | head -n 1)"
    fi
    [[ -z "$m" ]] || break
  done
  printf '%s' "${m:-http://deb.debian.org/debian}"
}

ensure_base_image() {
  if d image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    log "base image $BASE_IMAGE present"
    return 0
  fi
  command -v debootstrap >/dev/null || die "debootstrap missing; run: $0 engine"
  local mirror rootfs t0
  mirror="$(debian_mirror)"
  rootfs="$(mktemp -d /var/tmp/swarmcloud-rootfs.XXXXXX)"
  # shellcheck disable=SC2064  # expand now: the path is fixed
  trap "rm -rf '$rootfs'" EXIT
  t0="$(now)"
  log "debootstrap --variant=minbase $DEBIAN_RELEASE from $mirror"
  debootstrap --variant=minbase "$DEBIAN_RELEASE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log" >&2
    die "debootstrap failed (log $rootfs.log)"
  }
  rm -f "$rootfs.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/bootstrap.log
  log "debootstrap took $(elapsed "$t0")s"
  local t1
  t1="$(now)"
  tar -C "$rootfs" -c . | d import --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
  log "import took $(elapsed "$t1")s; debootstrap+import $(elapsed "$t0")s"
}

cmd_image() {
  require_engine
  local t0
  t0="$(now)"
  ensure_base_image
  local t1
  t1="$(now)"
  log "building $IMAGE from node-image/ on $BASE_IMAGE"
  DOCKER_BUILDKIT=0 d build -t "$IMAGE" --label "$LABEL=1" --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    "$REPO_ROOT/node-image" >&2
  log "image build took $(elapsed "$t1")s (total $(elapsed "$t0")s)"
}

# ---------------------------------------------------------------- nodes

# node_spec ROLE K -> "container ip hostname cluster_name"
node_spec() {
  local role="$1" k="$2" octet short
  case "$role" in
    manager)
      ((k >= 1 && k <= MAX_MANAGERS)) || die "manager index must be 1..$MAX_MANAGERS"
      octet=$((10 + k))
      short=m
      ;;
    worker)
      ((k >= 1 && k <= MAX_WORKERS)) || die "worker index must be 1..$MAX_WORKERS"
      octet=$((30 + k))
      short=w
      ;;
    *) die "role must be manager or worker, not '$role'" ;;
  esac
  printf '%s %s %s %s\n' "$PREFIX-$short$k" "$NET_PREFIX.$octet" "$PREFIX-node-$octet" "$role-$k"
}

ensure_lab_dir() {
  if [[ ! -d "$LAB_DIR" ]]; then
    mkdir -p "$LAB_DIR"
    chmod 700 "$LAB_DIR"
  fi
  touch "$MARKER"
}

ensure_key() {
  ensure_lab_dir
  if [[ ! -f "$KEY" || ! -f "$KEY.pub" ]]; then
    rm -f "$KEY" "$KEY.pub"
    ssh-keygen -q -t ed25519 -N '' -C swarmcloud-lab -f "$KEY"
    log "generated $KEY"
  fi
}

# ensure_host_key CONTAINER: the node's SSH host key in the lab dir (kept when it exists, so a
# re-created container shows the same key, as a local node made by the program does).
ensure_host_key() {
  local c="$1"
  ensure_lab_dir
  install -d -m 700 "$HOST_KEYS"
  if [[ ! -f "$HOST_KEYS/$c" || ! -f "$HOST_KEYS/$c.pub" ]]; then
    rm -f "$HOST_KEYS/$c" "$HOST_KEYS/$c.pub"
    ssh-keygen -q -t ed25519 -N '' -C "$c" -f "$HOST_KEYS/$c"
  fi
}

# key_line FILE: `<type> <base64>` of a public key file (no comment)
key_line() { awk 'NF >= 2 { print $1, $2; exit }' "$1"; }

ensure_network() {
  if d network inspect "$NETWORK" >/dev/null 2>&1; then
    local lab
    lab="$(d network inspect -f "{{index .Labels \"$LABEL\"}}" "$NETWORK")"
    [[ "$lab" == 1 ]] || die "network $NETWORK exists but is not the lab's (no label $LABEL=1)"
    return 0
  fi
  d network create --driver bridge --subnet "$NET_PREFIX.0/24" --gateway "$NET_PREFIX.1" \
    --label "$LABEL=1" "$NETWORK" >/dev/null
  log "created network $NETWORK ($NET_PREFIX.0/24)"
}

ensure_image() {
  d image inspect "$IMAGE" >/dev/null 2>&1 || cmd_image
}

# is_lab_container NAME: exists and carries our label
is_lab_container() {
  [[ "$(d inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null)" == 1 ]]
}

container_running() {
  [[ "$(d inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" == true ]]
}

# recipe volumes CONTAINER | recipe run CONTAINER CGROUP_ROOT: the node container's volume names,
# or its `docker run` arguments, into the array RECIPE. They come from the table LocalNodes
# declares its containers from (components/nodes/node-container.json), so the lab's nodes and a
# user's local nodes are made alike.
recipe() {
  local out
  out="$("$NODE_BIN" "$SCRIPT_DIR/node-container-args.js" "$@")" ||
    die "node-container-args.js $* failed (it needs Node.js: node on PATH, or SWARMCLOUD_LAB_NODE)"
  [[ -n "$out" ]] || die "node-container-args.js $* printed nothing"
  mapfile -t RECIPE <<<"$out"
}

# create_node ROLE K: create or start the node; prints its container name.
create_node() {
  local role="$1" k="$2" c ip host name v run_args
  read -r c ip host name < <(node_spec "$role" "$k")
  if d inspect "$c" >/dev/null 2>&1; then
    is_lab_container "$c" || die "container $c exists but is not the lab's"
    if ! container_running "$c"; then
      d start "$c" >/dev/null
      log "started $c ($ip)"
    fi
    printf '%s\n' "$c"
    return 0
  fi
  recipe volumes "$c"
  for v in "${RECIPE[@]}"; do
    d volume create --label "$LABEL=1" --label "$LABEL.container=$c" "$v" >/dev/null
  done
  preload_restore "$c" "$(docker_volume "$c")"
  ensure_host_key "$c"
  # Capabilities, confinement, /dev/fuse, cgroups (the nested dockerd's under /swarmcloud-lab,
  # which remove_cgroups and down clean up), /run, the volumes' mounts, the stop timeout.
  recipe run "$c" /swarmcloud-lab
  run_args=("${RECIPE[@]}")
  d run -d --name "$c" --hostname "$host" \
    --network "$NETWORK" --ip "$ip" \
    --label "$LABEL=1" --label "$LABEL.prefix=$PREFIX" --label "$LABEL.name=$name" \
    --label "$LABEL.role=$role" --label "$LABEL.index=$k" --label "$LABEL.address=$ip" \
    --mount "type=bind,src=$HOST_KEYS/$c,dst=$NODE_HOST_KEY,readonly" \
    -e "SSH_AUTHORIZED_KEY=$(cat "$KEY.pub")" \
    --restart on-failure \
    "${run_args[@]}" \
    "$IMAGE" >/dev/null
  log "created $c ($name, $ip)"
  printf '%s\n' "$c"
}

node_address() {
  d inspect -f "{{index .Config.Labels \"$LABEL.address\"}}" "$1"
}

# wait_one CONTAINER: until `ssh root@ip docker info` succeeds
wait_one() {
  local c="$1" ip deadline
  ip="$(node_address "$c")"
  deadline=$((SECONDS + READY_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ssh "${SSH_OPTS[@]}" -o ConnectTimeout=2 "root@$ip" docker info >/dev/null 2>&1; then
      return 0
    fi
    if ! container_running "$c"; then
      log "$c exited; last log lines:"
      d logs --tail 30 "$c" >&2 2>&1 || true
      return 1
    fi
    sleep 0.5
  done
  log "$c ($ip) not ready after ${READY_TIMEOUT}s; last log lines:"
  d logs --tail 30 "$c" >&2 2>&1 || true
  return 1
}

# wait_ready CONTAINER...: in parallel
wait_ready() {
  local pids=() c p failed=0 t0
  t0="$(now)"
  for c in "$@"; do
    wait_one "$c" &
    pids+=("$!")
  done
  for p in "${pids[@]}"; do
    wait "$p" || failed=$((failed + 1))
  done
  ((failed == 0)) || die "$failed node(s) did not become ready"
  log "$# node(s) ready (ssh + docker) in $(elapsed "$t0")s"
}

# write_inventory: from Docker state (all containers of this prefix, running or not)
write_inventory() {
  ensure_lab_dir
  local inv tmp rows
  inv="$(inventory_path)"
  tmp="$(mktemp "$inv.XXXXXX")"
  rows="$(d ps -aq --filter "label=$LABEL=1" --filter "label=$LABEL.prefix=$PREFIX" |
    xargs -r "$DOCKER" inspect -f "{{index .Config.Labels \"$LABEL.role\"}} {{index .Config.Labels \"$LABEL.index\"}} {{index .Config.Labels \"$LABEL.name\"}} {{slice .Name 1}} {{index .Config.Labels \"$LABEL.address\"}} {{.State.Running}}" |
    sort -k1,1 -k2,2n)"
  # container -> public host key line, for the nodes whose key the lab made
  local keys='{}' c
  while read -r _ _ _ c _; do
    [[ -n "$c" && -f "$HOST_KEYS/$c.pub" ]] || continue
    keys="$(jq -c --arg c "$c" --arg k "$(key_line "$HOST_KEYS/$c.pub")" '. + {($c): $k}' <<<"$keys")"
  done <<<"$rows"
  jq -n --arg key "$KEY" --arg prefix "$PREFIX" --arg network "$NETWORK" \
    --arg subnet "$NET_PREFIX.0/24" --arg rows "$rows" --argjson keys "$keys" '
    {
      privateKeyPath: $key,
      publicKeyPath: ($key + ".pub"),
      user: "root",
      prefix: $prefix,
      network: $network,
      subnet: $subnet,
      nodes: [
        $rows | split("\n")[] | select(length > 0) | split(" ") |
        { name: .[2], container: .[3], role: .[0], address: .[4], running: (.[5] == "true") }
        + (if $keys[.[3]] then { hostKey: $keys[.[3]] } else {} end)
      ]
    }' >"$tmp"
  mv -f "$tmp" "$inv"
}

cmd_up() {
  (($# == 2)) || usage
  local nm="$1" nw="$2" k c t0 created=()
  { is_uint "$nm" && is_uint "$nw"; } || die "usage: up N_MANAGERS N_WORKERS"
  ((nm <= MAX_MANAGERS && nw <= MAX_WORKERS)) || die "at most $MAX_MANAGERS managers and $MAX_WORKERS workers"
  t0="$(now)"
  require_engine
  ensure_image
  ensure_key
  ensure_network
  # Create/start all nodes in parallel, then wait for all of them in parallel.
  local specs=() pids=() spec p failed=0
  for ((k = 1; k <= nm; k++)); do specs+=("manager $k"); done
  for ((k = 1; k <= nw; k++)); do specs+=("worker $k"); done
  for spec in "${specs[@]}"; do
    # shellcheck disable=SC2086  # "role index"
    create_node $spec >/dev/null &
    pids+=("$!")
  done
  for p in "${pids[@]}"; do
    wait "$p" || failed=$((failed + 1))
  done
  ((failed == 0)) || die "$failed node(s) could not be created/started"
  for spec in "${specs[@]}"; do
    # shellcheck disable=SC2086
    read -r c _ < <(node_spec $spec)
    created+=("$c")
  done
  ((${#created[@]} == 0)) || wait_ready "${created[@]}"
  write_inventory
  log "up $nm $nw done in $(elapsed "$t0")s; inventory $(inventory_path)"
  inventory_path
  echo
}

# resolve NODE -> container name (container name or cluster node name)
resolve() {
  local t="$1" c
  if is_lab_container "$t"; then
    printf '%s' "$t"
    return 0
  fi
  c="$(d ps -a --filter "label=$LABEL=1" --filter "label=$LABEL.prefix=$PREFIX" \
    --filter "label=$LABEL.name=$t" --format '{{.Names}}' 2>/dev/null | head -n 1)"
  [[ -n "$c" ]] || die "no lab node '$t' (prefix $PREFIX)"
  printf '%s' "$c"
}

cmd_add() {
  (($# == 2)) || usage
  local n="$1" role="$2" k c
  case "$n" in
    manager-* | worker-*) [[ "${n%%-*}" == "$role" ]] || die "name $n does not match role $role"
      k="${n#*-}" ;;
    "$PREFIX"-m*) [[ "$role" == manager ]] || die "name $n does not match role $role"
      k="${n#"$PREFIX"-m}" ;;
    "$PREFIX"-w*) [[ "$role" == worker ]] || die "name $n does not match role $role"
      k="${n#"$PREFIX"-w}" ;;
    *) die "NAME must be manager-K, worker-K, $PREFIX-mK or $PREFIX-wK" ;;
  esac
  is_uint "$k" || die "bad node index in '$n'"
  require_engine
  ensure_image
  ensure_key
  ensure_network
  c="$(create_node "$role" "$((10#$k))")"
  wait_ready "$c"
  write_inventory
  printf '%s %s\n' "$c" "$(node_address "$c")"
}

cmd_stop() {
  (($# >= 1)) || usage
  local c
  require_engine
  c="$(resolve "$1")"
  if [[ "${2:-}" == --kill ]]; then
    d kill "$c" >/dev/null 2>&1 || true
    log "killed $c"
  else
    d stop -t "$STOP_TIMEOUT" "$c" >/dev/null
    log "stopped $c"
  fi
  write_inventory
}

cmd_start() {
  (($# == 1)) || usage
  local c
  require_engine
  c="$(resolve "$1")"
  container_running "$c" || d start "$c" >/dev/null
  wait_ready "$c"
  write_inventory
}

# remove_cgroups CONTAINER: the nested dockerd's (empty) cgroups on the host
remove_cgroups() {
  local dir
  for dir in /sys/fs/cgroup/*/swarmcloud-lab/"$1" /sys/fs/cgroup/swarmcloud-lab/"$1"; do
    [[ -d "$dir" ]] || continue
    find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

remove_node() {
  local c="$1"
  d rm -f -v "$c" >/dev/null 2>&1 || true
  recipe volumes "$c"
  d volume rm -f "${RECIPE[@]}" >/dev/null 2>&1 || true
  remove_cgroups "$c"
}

cmd_rm() {
  (($# == 1)) || usage
  local c
  require_engine
  c="$(resolve "$1")"
  remove_node "$c"
  log "removed $c"
  write_inventory
}

cmd_down() {
  local t0 c v n
  t0="$(now)"
  if engine_answers; then
    local containers=() volumes=() networks=()
    mapfile -t containers < <(d ps -a --filter "label=$LABEL=1" --format '{{.Names}}')
    if ((${#containers[@]})); then
      d rm -f -v "${containers[@]}" >/dev/null
      for c in "${containers[@]}"; do remove_cgroups "$c"; done
    fi
    mapfile -t volumes < <(d volume ls -q --filter "label=$LABEL=1")
    for v in "${volumes[@]}"; do d volume rm -f "$v" >/dev/null; done
    mapfile -t networks < <(d network ls -q --filter "label=$LABEL=1")
    for n in "${networks[@]}"; do d network rm "$n" >/dev/null; done
    log "removed ${#containers[@]} container(s), ${#volumes[@]} volume(s), ${#networks[@]} network(s)"
    for c in /sys/fs/cgroup/*/swarmcloud-lab /sys/fs/cgroup/swarmcloud-lab; do
      [[ -d "$c" ]] && { rmdir "$c" 2>/dev/null || true; }
    done
  else
    log "no Docker engine answers; only removing the lab dir"
  fi
  if [[ -f "$MARKER" ]]; then
    rm -rf "$LAB_DIR"
  elif [[ -d "$LAB_DIR" ]]; then
    log "$LAB_DIR has no $(basename "$MARKER") marker; leaving it"
  fi
  log "down in $(elapsed "$t0")s"
}

cmd_ssh() {
  (($# >= 1)) || usage
  local c ip tty=()
  require_engine
  c="$(resolve "$1")"
  shift
  ip="$(node_address "$c")"
  if (($# == 0)) && [[ -t 0 ]]; then tty=(-t); fi
  exec ssh "${SSH_OPTS[@]}" "${tty[@]}" "root@$ip" "$@"
}

cmd_ip() {
  (($# == 1)) || usage
  require_engine
  node_address "$(resolve "$1")"
}

# served_key CONTAINER: the public host key the node's sshd serves, read inside the container
served_key() {
  # shellcheck disable=SC2016  # awk's fields, inside the container
  d exec "$1" awk 'NF >= 2 { print $1, $2; exit }' /etc/ssh/ssh_host_ed25519_key.pub
}

cmd_hostkey() {
  (($# == 1)) || usage
  require_engine
  served_key "$(resolve "$1")"
}

cmd_rekey() {
  (($# == 1)) || usage
  local c ip old new i
  require_engine
  c="$(resolve "$1")"
  container_running "$c" || die "$c is not running"
  ip="$(node_address "$c")"
  old="$(served_key "$c")"
  # What a reinstalled host (or another machine on its address) shows: new host keys. sshd
  # re-executes itself on SIGHUP and loads them; its listener's pid is in /run/sshd.pid.
  # shellcheck disable=SC2016  # expanded inside the container
  d exec "$c" bash -c 'set -e; rm -f /etc/ssh/ssh_host_*; ssh-keygen -A >/dev/null
    kill -HUP "$(cat /run/sshd.pid 2>/dev/null || pgrep -o -x sshd)"'
  new="$(served_key "$c")"
  [[ -n "$new" && "$new" != "$old" ]] || die "$c: the host key did not change"
  for ((i = 0; i < 60; i++)); do
    [[ "$(ssh-keyscan -T 2 -t ed25519 "$ip" 2>/dev/null | awk 'NF >= 3 { print $2, $3; exit }')" == "$new" ]] && break
    sleep 0.5
  done
  ((i < 60)) || die "$c ($ip) does not serve its new host key after 30 s"
  # Keep it: the mounted file is rewritten in place (a bind mount follows the inode), so the
  # entrypoint installs the new key again after a restart.
  if [[ -f "$HOST_KEYS/$c" ]]; then
    d exec "$c" cat /etc/ssh/ssh_host_ed25519_key >"$HOST_KEYS/$c"
    printf '%s %s\n' "$new" "$c" >"$HOST_KEYS/$c.pub"
  fi
  write_inventory
  log "$c ($ip): host key replaced"
  printf '%s\n' "$new"
}

# The address of the stranger: on the lab network, outside the managers' and workers' ranges.
readonly STRANGER_OCTET=250

cmd_stranger() {
  (($# >= 1)) || usage
  require_engine
  ensure_image
  d run --rm --name "$PREFIX-stranger" --network "$NETWORK" --ip "$NET_PREFIX.$STRANGER_OCTET" \
    --label "$LABEL=1" --cap-add SYS_ADMIN --device /dev/fuse --security-opt apparmor=unconfined \
    --entrypoint bash "$IMAGE" -c "$*"
}

cmd_inventory() {
  require_engine
  write_inventory
  cat "$(inventory_path)"
}

# ---- preload (see the header) ----------------------------------------------------------------

# docker_volume CONTAINER: the name of the node's /var/lib/docker volume (the recipe's "docker")
docker_volume() {
  recipe volumes "$1"
  local v
  for v in "${RECIPE[@]}"; do
    if [[ "$v" == "$1-docker" ]]; then
      printf '%s\n' "$v"
      return 0
    fi
  done
  die "the node recipe has no docker volume for $1"
}

# preload_dir: this node image's preload (the volume made when first asked for)
preload_dir() {
  local id root
  id="$(d image inspect --format '{{.Id}}' "$IMAGE")" || die "no node image $IMAGE (lab.sh image)"
  d volume inspect "$PRELOAD_VOLUME" >/dev/null 2>&1 || d volume create "$PRELOAD_VOLUME" >/dev/null
  root="$(d volume inspect --format '{{.Mountpoint}}' "$PRELOAD_VOLUME")"
  printf '%s/%s\n' "$root" "${id#sha256:}"
}

# preload_restore CONTAINER VOLUME: the preload into the new node's empty docker volume, when
# there is one and every image it lists is still what this machine has under that tag.
preload_restore() {
  local c="$1" vol="$2" dir dst tag id t0
  [[ "${SWARMCLOUD_LAB_PRELOAD:-1}" == 1 ]] || return 0
  dir="$(preload_dir)"
  [[ -f "$dir/images" ]] || return 0
  while read -r tag id; do
    [[ "$(d image inspect --format '{{.Id}}' "$tag" 2>/dev/null)" == "$id" ]] || {
      log "$c: preload not used ($tag changed since it was saved)"
      return 0
    }
  done <"$dir/images"
  t0="$(now)"
  dst="$(d volume inspect --format '{{.Mountpoint}}' "$vol")"
  # Only a speed-up: a copy that fails leaves the volume empty again (build.sh then loads).
  if ! { mkdir -p "$dst/image" "$dst/overlay2" && cp -a "$dir/image/overlay2" "$dst/image/" &&
    cp -al "$dir/overlay2/." "$dst/overlay2/"; }; then
    rm -rf "${dst:?}/image" "${dst:?}/overlay2"
    log "$c: preload failed (its images will be loaded instead)"
    return 0
  fi
  log "$c: preloaded $(wc -l <"$dir/images") image(s) in $(elapsed "$t0")s"
}

# preload_copy SRC DST: a node's image store (SRC: its /var/lib/docker) into DST: the image
# metadata copied, each layer's directory (its cache-id; the files hold no newline) hard-linked,
# with its short link in l/. Each step checked (it runs where set -e does not reach).
preload_copy() {
  local src="$1" dst="$2" f id short
  mkdir -p "$dst/image/overlay2" "$dst/overlay2/l" || return 1
  cp -a "$src/image/overlay2/imagedb" "$src/image/overlay2/layerdb" "$src/image/overlay2/repositories.json" \
    "$dst/image/overlay2/" || return 1
  rm -rf "$dst/image/overlay2/layerdb/mounts" || return 1
  for f in "$src"/image/overlay2/layerdb/sha256/*/cache-id; do
    id="$(<"$f")" || return 1
    cp -al "$src/overlay2/$id" "$dst/overlay2/$id" || return 1
    short="$(<"$src/overlay2/$id/link")" || return 1
    ln -s "../$id/diff" "$dst/overlay2/l/$short" || return 1
  done
}

# preload-save NODE: keep a fresh node's images as the preload (replacing an older one).
cmd_preload_save() {
  (($# == 1)) || usage
  local c src dir tmp list
  require_engine
  c="$(resolve "$1")"
  [[ -z "$(d exec "$c" docker ps -aq)" ]] || die "$c runs containers: not a fresh node"
  [[ "$(d exec "$c" docker info --format '{{.Swarm.LocalNodeState}}')" == inactive ]] ||
    die "$c is in a swarm: not a fresh node"
  list="$(d exec "$c" docker images --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}' | grep -v '<none>')" ||
    die "$c has no tagged image"
  src="$(d volume inspect --format '{{.Mountpoint}}' "$(docker_volume "$c")")"
  dir="$(preload_dir)"
  if [[ -f "$dir/images" && "$(<"$dir/images")" == "$list" ]]; then
    log "preload current ($dir)"
    return 0
  fi
  tmp="$(mktemp -d "$dir.XXXXXX")"
  preload_copy "$src" "$tmp" || {
    rm -rf "$tmp"
    die "copying $c's image store failed"
  }
  printf '%s\n' "$list" >"$tmp/images"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  log "preload saved from $c: $(wc -l <"$dir/images") image(s) in $dir"
}

main() {
  local args=() sub
  # --prefix may appear anywhere before the ssh command's own arguments.
  while (($#)); do
    case "$1" in
      --prefix) (($# >= 2)) || usage
        PREFIX="$2"
        shift 2 ;;
      --prefix=*) PREFIX="${1#--prefix=}"
        shift ;;
      -h | --help | help) usage 0 ;;
      ssh) args+=("$@")
        break ;;
      *) args+=("$1")
        shift ;;
    esac
  done
  [[ "$PREFIX" =~ ^[a-z][a-z0-9-]*$ ]] || die "prefix must match [a-z][a-z0-9-]*"
  readonly PREFIX
  ((${#args[@]})) || usage
  sub="${args[0]}"
  args=("${args[@]:1}")
  case "$sub" in
    engine) cmd_engine ;;
    image) cmd_image ;;
    up) cmd_up "${args[@]}" ;;
    add) cmd_add "${args[@]}" ;;
    stop) cmd_stop "${args[@]}" ;;
    start) cmd_start "${args[@]}" ;;
    rm) cmd_rm "${args[@]}" ;;
    down) cmd_down ;;
    ssh) cmd_ssh "${args[@]}" ;;
    ip) cmd_ip "${args[@]}" ;;
    hostkey) cmd_hostkey "${args[@]}" ;;
    rekey) cmd_rekey "${args[@]}" ;;
    inventory) cmd_inventory ;;
    preload-save) cmd_preload_save "${args[@]}" ;;
    mirror) debian_mirror && echo ;;
    stranger) cmd_stranger "${args[@]}" ;;
    *) usage ;;
  esac
}

main "$@"
