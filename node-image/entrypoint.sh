#!/bin/bash
# swarmcloud node entrypoint (runs under tini as PID 1).
#
#  1. installs the authorized SSH key(s) for root from $SSH_AUTHORIZED_KEY and/or
#     the file /run/swarmcloud/authorized_keys (mounted), merged with existing ones;
#  2. SSH host key: the one given in /etc/swarmcloud/ssh_host_ed25519_key (copied in or
#     mounted by whoever made the node, who pins its public half) becomes
#     /etc/ssh/ssh_host_ed25519_key and sshd serves that key only; without one,
#     missing host keys are generated (each new container then shows new keys);
#  3. starts glusterd; puts back the container firewall the program set
#     (/usr/local/sbin/swarmcloud-firewall, written by components/remote-scripts/host.sh: a
#     restarted container starts with an empty netfilter table), before any container runs;
#     then starts dockerd (overlay2, log /var/log/dockerd.log) and waits until `docker info`
#     answers (exits non-zero if it does not);
#  4. starts sshd, and keepalived when the program configured it there (the front door:
#     components/remote-scripts/edge-keepalived.sh, which enables it where systemd runs), then
#     supervises: exits when sshd dies, restarts dockerd/glusterd when they die (like
#     systemd's Restart=always would), stops everything cleanly on SIGTERM/SIGINT,
#     keepalived first (it gives the floating address away before this node's Caddy stops);
#  5. on SIGUSR1 (sent by the image's `reboot`, /usr/local/sbin/reboot) stops the same way and
#     exits with code 3 (REBOOT_EXIT), which the container's restart policy (on-failure in the
#     lab, unless-stopped for local nodes) answers by starting the node again: a reboot.
#
# Env:
#   SSH_AUTHORIZED_KEY          public key line(s) for root
#   SWARMCLOUD_DOCKERD_TIMEOUT  seconds to wait for dockerd (default 90)
#   SWARMCLOUD_DOCKERD_ARGS     extra dockerd arguments (word-split)
#   SWARMCLOUD_SUPERVISE        1 (default): restart dockerd/glusterd if they die; 0: don't
set -Eeuo pipefail

readonly KEY_FILE=/run/swarmcloud/authorized_keys
readonly GIVEN_HOST_KEY=/etc/swarmcloud/ssh_host_ed25519_key
readonly DOCKERD_LOG=/var/log/dockerd.log
readonly GLUSTERD_LOG=/var/log/glusterfs/glusterd.log
readonly DOCKERD_TIMEOUT="${SWARMCLOUD_DOCKERD_TIMEOUT:-90}"
readonly SUPERVISE="${SWARMCLOUD_SUPERVISE:-1}"
# The exit code of a reboot (SIGUSR1): non-zero, so that an on-failure restart policy restarts it.
readonly REBOOT_EXIT=3
readonly PID_FILE=/run/swarmcloud-node.pid

sshd_pid=""
sshd_host_keys=()
dockerd_pid=""
glusterd_pid=""
stopping=0

log() { printf '%s swarmcloud-node: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

alive() { [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; }

# stop_pid PID NAME TIMEOUT_SECONDS: SIGTERM, wait, then SIGKILL.
stop_pid() {
  local pid="$1" name="$2" timeout="$3" i
  alive "$pid" || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 5; i++)); do
    alive "$pid" || break
    sleep 0.2
  done
  if alive "$pid"; then
    log "$name did not stop in ${timeout}s, killing"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

install_authorized_keys() {
  local dest=/root/.ssh/authorized_keys tmp
  install -d -m 700 /root/.ssh
  tmp="$(mktemp)"
  [[ -f "$dest" ]] && cat "$dest" >>"$tmp"
  [[ -n "${SSH_AUTHORIZED_KEY:-}" ]] && printf '%s\n' "$SSH_AUTHORIZED_KEY" >>"$tmp"
  [[ -r "$KEY_FILE" ]] && cat "$KEY_FILE" >>"$tmp"
  # Drop blank lines and duplicates, keep order.
  awk 'NF && !seen[$0]++' "$tmp" >"$dest"
  rm -f "$tmp"
  chmod 600 "$dest"
  if [[ ! -s "$dest" ]]; then
    log "WARNING: no authorized key (set SSH_AUTHORIZED_KEY or mount $KEY_FILE); ssh login will be impossible"
  fi
}

# install_host_key GIVEN SSH_DIR: the given private host key (when there is one) becomes
# SSH_DIR/ssh_host_ed25519_key (mode 600, its .pub beside it) and the only key sshd serves
# (sshd_host_keys holds `-h <file>`); otherwise `ssh-keygen -A` makes the missing default keys.
install_host_key() {
  local given="$1" dir="$2" key
  key="$dir/ssh_host_ed25519_key"
  if [[ ! -s "$given" ]]; then
    ssh-keygen -A >/dev/null
    sshd_host_keys=()
    return 0
  fi
  chmod 600 "$given" 2>/dev/null || true # a read-only mount keeps its own mode
  install -m 600 "$given" "$key"
  if ! ssh-keygen -y -f "$key" >"$key.pub.tmp"; then
    rm -f "$key.pub.tmp"
    log "the host key in $given is not an OpenSSH private key"
    return 1
  fi
  mv -f "$key.pub.tmp" "$key.pub"
  chmod 644 "$key.pub"
  sshd_host_keys=(-h "$key")
  log "sshd serves the given host key $(ssh-keygen -lf "$key.pub" | cut -d' ' -f2)"
}

prepare_runtime_dirs() {
  mkdir -p /run/sshd /run/gluster /var/log/glusterfs /var/lib/glusterd /var/lib/docker
  chmod 0755 /run/sshd
  # Stale pid files/sockets from a previous run (when /run is not a tmpfs).
  rm -f /run/docker.pid /run/docker.sock /run/sshd.pid /run/glusterd.pid
  rm -rf /run/docker/containerd/containerd.pid
}

start_glusterd() {
  glusterd -N -p /run/glusterd.pid --log-file="$GLUSTERD_LOG" &
  glusterd_pid=$!
  log "glusterd started (pid $glusterd_pid)"
}

start_dockerd() {
  local extra=()
  if [[ -n "${SWARMCLOUD_DOCKERD_ARGS:-}" ]]; then
    read -r -a extra <<<"$SWARMCLOUD_DOCKERD_ARGS"
  fi
  rm -f /run/docker.pid
  printf '\n==== %s dockerd starting ====\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$DOCKERD_LOG"
  dockerd "${extra[@]}" >>"$DOCKERD_LOG" 2>&1 &
  dockerd_pid=$!
  log "dockerd started (pid $dockerd_pid), log $DOCKERD_LOG"
}

wait_dockerd() {
  local deadline=$((SECONDS + DOCKERD_TIMEOUT))
  until docker info >/dev/null 2>&1; do
    if ! alive "$dockerd_pid"; then
      log "dockerd exited during startup; last log lines:"
      tail -n 30 "$DOCKERD_LOG" >&2 || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "dockerd not ready after ${DOCKERD_TIMEOUT}s; last log lines:"
      tail -n 30 "$DOCKERD_LOG" >&2 || true
      return 1
    fi
    sleep 0.5
  done
  log "dockerd ready"
}

start_sshd() {
  /usr/sbin/sshd -D -e "${sshd_host_keys[@]}" &
  sshd_pid=$!
  log "sshd started (pid $sshd_pid)"
}

shutdown() {
  local rc="${1:-0}"
  ((stopping)) && return 0
  stopping=1
  log "shutting down"
  stop_keepalived
  stop_pid "$sshd_pid" sshd 5
  stop_pid "$dockerd_pid" dockerd 25
  stop_pid "$glusterd_pid" glusterd 10
  exit "$rc"
}

# What a booting host does with its _netdev fstab entries: mount the Gluster volume once the
# pool answers (a restarted lab node must come back with its mount, as a rebooted one would).
mount_gluster_fstab() {
  local i
  grep -q '[[:space:]]glusterfs[[:space:]]' /etc/fstab 2>/dev/null || return 0
  for ((i = 0; i < 60; i++)); do
    mount -a -t glusterfs 2>/dev/null && return 0
    sleep 2
  done
  log "could not mount the glusterfs entries of /etc/fstab"
}

# What a booting host's swarmcloud-firewall.service does: the rules that keep containers off
# the cluster's control ports, in place before dockerd starts any container.
readonly FIREWALL=/usr/local/sbin/swarmcloud-firewall
restore_firewall() {
  [[ -x "$FIREWALL" ]] || return 0
  if "$FIREWALL"; then
    log "container firewall in place ($FIREWALL)"
  else
    log "WARNING: $FIREWALL failed: containers may reach the cluster's control ports until the next pulumi up --refresh"
  fi
}

# Docker rewrites /etc/hosts and the hostname when a container starts; a machine keeps them
# across a reboot. Put back what the program set (components/remote-scripts/host.sh records it).
restore_host_identity() {
  if [[ -s /etc/swarmcloud/hostname ]]; then
    hostname "$(cat /etc/swarmcloud/hostname)" || true
    cat /etc/swarmcloud/hostname >/etc/hostname || true
  fi
  if [[ -s /etc/swarmcloud/hosts.block ]] && ! grep -q '^# BEGIN swarmcloud$' /etc/hosts; then
    cat /etc/swarmcloud/hosts.block >>/etc/hosts
  fi
}

# What a booting host does with the keepalived service edge-keepalived.sh enabled: start it with
# the config the program wrote (a config of anyone else's is not ours to start). $1: the config.
start_keepalived() {
  local conf=$1
  grep -q '^# written by swarmcloud (edge-keepalived.sh)' "$conf" 2>/dev/null || return 0
  if keepalived -f "$conf" </dev/null >/dev/null 2>&1; then
    log "keepalived started (the front door's floating address)"
  else
    log "WARNING: keepalived did not start: this node holds no floating address until the next pulumi up --refresh"
  fi
}

# Before the rest stops: keepalived leaves with a priority-0 advertisement, so another edge node
# takes the address at once instead of after its advertisements time out.
stop_keepalived() {
  local i
  pgrep -x keepalived >/dev/null || return 0
  pkill -TERM -x keepalived || true
  for ((i = 0; i < 20; i++)); do
    pgrep -x keepalived >/dev/null || return 0
    sleep 0.25
  done
  log "keepalived still running after 5 s"
}

main() {
  trap 'shutdown 0' TERM INT
  trap 'log "reboot"; shutdown "$REBOOT_EXIT"' USR1
  echo "$$" >"$PID_FILE"
  restore_host_identity
  install_authorized_keys
  install_host_key "$GIVEN_HOST_KEY" /etc/ssh || shutdown 1
  prepare_runtime_dirs
  start_glusterd
  restore_firewall
  start_dockerd
  if ! wait_dockerd; then
    shutdown 1
  fi
  start_sshd
  start_keepalived /etc/keepalived/keepalived.conf
  mount_gluster_fstab &

  while true; do
    if ! alive "$sshd_pid"; then
      wait "$sshd_pid" 2>/dev/null || true
      log "sshd died; stopping the node"
      shutdown 1
    fi
    if [[ "$SUPERVISE" == 1 ]]; then
      if ! alive "$dockerd_pid"; then
        wait "$dockerd_pid" 2>/dev/null || true
        log "dockerd died; restarting"
        start_dockerd
      fi
      if ! alive "$glusterd_pid"; then
        wait "$glusterd_pid" 2>/dev/null || true
        log "glusterd died; restarting"
        start_glusterd
      fi
    fi
    # Sleep in the background so a SIGTERM is handled at once.
    sleep 2 &
    wait $! || true
  done
}

# Sourced (tests): define the functions, run nothing.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
