#!/usr/bin/env bash
# swarmcloud: upgrade the node's packages and reboot it
# On the node, once it is drained. Upgrades the packages (apt-get, Docker and GlusterFS
# included, config files kept), reboots when REBOOT says so, and on its next run, once the node
# is back, waits for Docker, the swarm, glusterd, the volume's mount and (a brick node) the heal.
# The reboot ends this run with exit 75 ("not yet"): the step awaits the node (RemoteScript's
# awaitSeconds) and runs this script again until it is back. /var/lib/swarmcloud/upgrade-run
# holds "<run> <boot>" across the reboot, then "<run> done": a run that ended is not done again.
# Inputs: NODE_NAME, RUN (the upgrade run: its change runs this step); context: PACKAGES
# (true|false), REBOOT (if-needed|always|never), VOLUME, MOUNT_PATH, BRICK ("true": the node
# holds a brick), FRESH ("true": the node is new in this update, just installed: nothing to do),
# STATE_DIR (default /var/lib/swarmcloud: where the run is recorded across the reboot).
# Prints: rebooted=<yes|no> packages=<how many were upgraded, or skipped>.
set -euo pipefail
: "${NODE_NAME:?}" "${RUN:?}" "${PACKAGES:?}" "${REBOOT:?}" "${VOLUME:?}" "${MOUNT_PATH:?}"
BRICK="${BRICK:-false}"
FRESH="${FRESH:-false}"
STATE_DIR="${STATE_DIR:-/var/lib/swarmcloud}"
STATE=$STATE_DIR/upgrade-run
RELEASED=/run/swarmcloud-upgrade-released
run_id=$(printf '%s' "$RUN" | sha256sum | cut -c1-16)

with_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

# This boot of this machine: the kernel's boot id, and when PID 1 started (a container that
# restarts keeps the host's boot id).
boot_identity() {
  printf '%s-%s\n' "$(cat /proc/sys/kernel/random/boot_id)" "$(awk '{ print $22 }' /proc/1/stat)"
}

# Every brick of the volume online and nothing left to heal, as this brick node's glusterd
# reports it. A brick that does not answer shows "Number of entries: -": not healed (its copies
# may be the only ones missing what the others hold), never counted as 0. The self-heal daemon
# crawls its index only every cluster.heal-timeout (600 s by default): an entry left pending
# while this waits is handed to it at once, at most every 10 s (the lab once waited out the
# whole 600 s on 3 entries a single `volume heal` healed in a second).
prodded=-10
healed() {
  local pending
  pending=$(gluster --mode=script volume heal "$VOLUME" info 2>/dev/null |
    awk -F': ' '/^Number of entries:/ { seen++; if ($2 ~ /^[0-9]+$/) n += $2; else down++ }
      END { if (!seen) print "unknown"; else if (down) print down " brick(s) not answering,"; else print n + 0 }')
  printf '%s entries still to heal\n' "$pending"
  [ "$pending" = 0 ] && return 0
  if [ $((SECONDS - prodded)) -ge 10 ]; then
    gluster --mode=script volume heal "$VOLUME" >/dev/null 2>&1 || true
    prodded=$SECONDS
  fi
  return 1
}
# Every brick of the volume online (the "Online" column of `volume status ... detail`).
bricks_online() {
  local online total
  online=$(gluster --mode=script volume status "$VOLUME" detail 2>/dev/null | grep -c '^Online.*: Y' || true)
  total=$(gluster --mode=script volume info "$VOLUME" 2>/dev/null | grep -c '^Brick[0-9]*:' || true)
  printf '%s of %s bricks online\n' "$online" "$total"
  [ "$total" -gt 0 ] && [ "$online" -eq "$total" ]
}

upgrade_packages() {
  command -v apt-get >/dev/null 2>&1 ||
    fatal "$NODE_NAME has no apt-get: upgrade its packages by hand, or set upgrade.packages: false"
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a
  local apt=(apt-get -y -q -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  "${apt[@]}" update >/dev/null || fatal "apt-get update failed on $NODE_NAME"
  upgraded=$(apt-get -s --with-new-pkgs upgrade 2>/dev/null | grep -c '^Inst ' || true)
  info "$NODE_NAME: $upgraded package(s) to upgrade"
  "${apt[@]}" --with-new-pkgs upgrade >/dev/null || fatal "apt-get upgrade failed on $NODE_NAME"
}

wants_reboot() {
  case "$REBOOT" in
    always) return 0 ;;
    never) return 1 ;;
  esac
  [ -e /var/run/reboot-required ]
}

# Reboots in a moment, from outside this SSH session (which the reboot ends).
reboot_soon() {
  setsid nohup bash -c 'sleep 2; systemctl reboot 2>/dev/null || reboot' </dev/null >/dev/null 2>&1 &
}

# After the upgrade (and the reboot): every service of a cluster node back.
docker_up() { docker info --format '{{.Swarm.LocalNodeState}}' 2>&1 | tail -n 1 | grep -x active; }
glusterd_up() { gluster --mode=script pool list >/dev/null 2>&1 && echo up; }
mounted() {
  awk -v m="$MOUNT_PATH" '$2 == m && $3 == "glusterfs" { found = 1 } END { exit !found }' /etc/fstab || return 0
  if ! awk -v m="$MOUNT_PATH" '$2 == m && $3 ~ /^fuse/ { found = 1 } END { exit !found }' /proc/mounts; then
    mount "$MOUNT_PATH" >/dev/null 2>&1 || true
  fi
  mountpoint -q "$MOUNT_PATH" && timeout 10 ls "$MOUNT_PATH/" >/dev/null 2>&1 && echo mounted
}
wait_back() {
  wait_for 300 "Docker on $NODE_NAME to answer, in the swarm" docker_up >/dev/null ||
    fatal "Docker did not come back on $NODE_NAME"
  wait_for 300 "glusterd on $NODE_NAME" glusterd_up >/dev/null || fatal "glusterd did not come back on $NODE_NAME"
  WAIT_EVERY=1 wait_for 300 "the volume to be mounted at $MOUNT_PATH on $NODE_NAME" mounted >/dev/null ||
    fatal "the volume is not mounted at $MOUNT_PATH on $NODE_NAME"
  if [ "$BRICK" = true ]; then
    WAIT_EVERY=1 wait_for 300 "every brick of $VOLUME online after $NODE_NAME came back" bricks_online >/dev/null ||
      fatal "a brick of $VOLUME is not online after $NODE_NAME came back; the next node is not upgraded"
    WAIT_EVERY=2 wait_for 600 "volume $VOLUME to heal after $NODE_NAME came back" healed ||
      fatal "volume $VOLUME has not healed after $NODE_NAME came back; the next node is not upgraded"
  fi
  # keepalived was stopped here by upgrade-release.sh and no boot started it again.
  if [ -e "$RELEASED" ] && ! pgrep -x keepalived >/dev/null; then
    if with_systemd; then systemctl start keepalived; else keepalived -f /etc/keepalived/keepalived.conf </dev/null >/dev/null 2>&1; fi
  fi
  rm -f "$RELEASED"
}

mkdir -p "$STATE_DIR"
boot=$(boot_identity)
read -r seen_run seen_boot 2>/dev/null <"$STATE" || true
rebooted=no
upgraded=skipped
if [ "$FRESH" = true ]; then
  # Just installed, and its services just waited for by the steps that set them up: the run is
  # recorded, nothing is upgraded or waited for (on a new volume, Ghost's first files may still be
  # healing onto a brick that started late; that is the volume's business, not this node's).
  info "$NODE_NAME joined in this update: no upgrade"
  printf '%s done\n' "$run_id" >"$STATE"
  echo "rebooted=no packages=skipped"
  exit 0
fi
if [ "${seen_run:-}" = "$run_id" ] && [ "${seen_boot:-}" = "done" ]; then
  info "$NODE_NAME: this upgrade run is done already"
elif [ "${seen_run:-}" = "$run_id" ]; then
  [ "$seen_boot" != "$boot" ] || not_here "$NODE_NAME: not rebooted yet"
  info "$NODE_NAME is back from its reboot"
  rebooted=yes
else
  if [ "$BRICK" = true ]; then
    WAIT_EVERY=1 wait_for 300 "every brick of $VOLUME online before $NODE_NAME is upgraded" bricks_online >/dev/null ||
      fatal "not upgrading $NODE_NAME: a brick of $VOLUME is not online, and this one may be needed for the volume's quorum"
    WAIT_EVERY=2 wait_for 600 "volume $VOLUME to heal before $NODE_NAME is upgraded" healed ||
      fatal "not upgrading $NODE_NAME: volume $VOLUME has entries to heal, and its brick here may hold the only good copy"
  fi
  [ "$PACKAGES" = true ] && upgrade_packages
  if wants_reboot; then
    printf '%s %s\n' "$run_id" "$boot" >"$STATE"
    info "$NODE_NAME: rebooting"
    reboot_soon
    not_here "$NODE_NAME: rebooting"
  fi
fi
wait_back
printf '%s done\n' "$run_id" >"$STATE"
echo "rebooted=$rebooted packages=$upgraded"
