#!/usr/bin/env bash
# swarmcloud: prepare host (hostname, /etc/hosts, Docker, GlusterFS, container firewall)
# Idempotent: every step checks first and changes nothing on a host that is already right.
# Inputs (exported by the caller): NODE_NAME, HOSTS_BLOCK (lines "address name"), SSH_USER.
set -euo pipefail
: "${NODE_NAME:?}" "${HOSTS_BLOCK:?}"
SSH_USER="${SSH_USER:-root}"
changed=()

have() { command -v "$1" >/dev/null 2>&1; }
with_systemd() { [ -d /run/systemd/system ] && have systemctl; }
# Print the daemon's error while it does not answer (wait_for shows the last one).
docker_answers() { { docker info >/dev/null; } 2>&1; }
gluster_answers() { gluster pool list 2>&1; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]; then
    apt-get update -qq
  fi
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. Hostname (what vagrant-hostmanager and the tutorial's manual edits did).
if [ "$(hostname)" != "$NODE_NAME" ]; then
  if with_systemd && have hostnamectl; then
    hostnamectl set-hostname "$NODE_NAME"
  else
    hostname "$NODE_NAME"
  fi
  changed+=(hostname)
fi
if [ "$(cat /etc/hostname 2>/dev/null)" != "$NODE_NAME" ]; then
  # Write in place: in a container /etc/hostname is a bind mount that cannot be replaced.
  printf '%s\n' "$NODE_NAME" >/etc/hostname
fi

# 2. /etc/hosts: one managed block, rewritten in place only when it differs.
begin='# BEGIN swarmcloud'
end='# END swarmcloud'
current=$(cat /etc/hosts)
others=$(printf '%s\n' "$current" | sed "/^$begin\$/,/^$end\$/d")
wanted=$(printf '%s\n%s\n%s\n%s' "$others" "$begin" "$HOSTS_BLOCK" "$end")
if [ "$current" != "$wanted" ]; then
  printf '%s\n' "$wanted" >/etc/hosts
  changed+=(hosts)
fi
# What this script manages, kept where a container's start does not reset it (Docker rewrites
# /etc/hosts and the hostname of a restarted container; node-image/entrypoint.sh restores them).
mkdir -p /etc/swarmcloud
printf '%s\n' "$NODE_NAME" >/etc/swarmcloud/hostname
printf '%s\n%s\n%s\n' "$begin" "$HOSTS_BLOCK" "$end" >/etc/swarmcloud/hosts.block

# 3. Docker engine: the distribution's package (Debian, Ubuntu, Raspberry Pi OS on arm64 alike).
#    Without apt the node brings its own Docker: nothing is fetched and run as root unchecked.
#    Debian 12's docker.io (20.10) holds the client; Debian 13's (26.1) only recommends it, as
#    the package docker-cli, which recommends are not installed here: install it by name.
if ! have docker; then
  have apt-get || fatal "Docker is not installed on $NODE_NAME and it has no apt-get: install Docker Engine" \
    "(https://docs.docker.com/engine/install/), check that \`docker info\` answers, then run pulumi up again"
  apt_install docker.io
  have docker || apt_install docker-cli
  changed+=(docker-installed)
fi
if ! docker info >/dev/null 2>&1; then
  if with_systemd; then
    systemctl enable --now docker >/dev/null 2>&1
  else
    nohup dockerd >/var/log/dockerd.log 2>&1 &
  fi
  WAIT_EVERY=1 wait_for 60 "Docker on $NODE_NAME to answer" docker_answers || exit 1
  changed+=(docker-started)
fi
if with_systemd && [ "$(systemctl is-enabled docker 2>/dev/null || true)" != enabled ]; then
  systemctl enable docker >/dev/null 2>&1
fi
# swarm-join.sh hands the join token to Docker's API through curl's stdin (never a command line).
if ! have curl; then
  have apt-get || fatal "curl is not installed on $NODE_NAME and it has no apt-get: install curl, then run pulumi up again"
  apt_install curl
  changed+=(curl-installed)
fi
if [ "$SSH_USER" != root ] && ! id -nG "$SSH_USER" | tr ' ' '\n' | grep -qx docker; then
  usermod -aG docker "$SSH_USER"
  changed+=(docker-group)
fi

# 4. GlusterFS server and FUSE client.
if ! have glusterd || ! have mount.glusterfs; then
  apt_install glusterfs-server glusterfs-client
  changed+=(gluster-installed)
fi
if ! pgrep -x glusterd >/dev/null; then
  if with_systemd; then
    systemctl enable --now glusterd >/dev/null 2>&1
  else
    glusterd
  fi
  changed+=(glusterd-started)
fi
if with_systemd && [ "$(systemctl is-enabled glusterd 2>/dev/null || true)" != enabled ]; then
  systemctl enable glusterd >/dev/null 2>&1
fi
WAIT_EVERY=1 wait_for 30 "glusterd on $NODE_NAME to answer after it started" gluster_answers ||
  fatal "see the log of glusterd in /var/log/glusterfs"

# 5. Containers kept off the cluster's control ports (lib.sh: container_rules). The rules live
#    in the kernel only, so they are also written to a script that runs at every boot before
#    Docker starts: a systemd unit, or node-image/entrypoint.sh for the local and lab nodes.
FIREWALL=/usr/local/sbin/swarmcloud-firewall
FIREWALL_UNIT=/etc/systemd/system/swarmcloud-firewall.service

firewall_script() {
  printf '%s\n' '#!/usr/bin/env bash' \
    '# swarmcloud: keep containers off the cluster'"'"'s control ports (written by host.sh; run at boot)' \
    'set -euo pipefail'
  declare -f container_rules container_firewall_ok container_firewall_apply
  printf '%s\n' 'container_firewall_ok >/dev/null || container_firewall_apply'
}

firewall_unit() {
  printf '%s\n' '[Unit]' "Description=swarmcloud: keep containers off the cluster's control ports" \
    'Before=docker.service' '' '[Service]' 'Type=oneshot' 'RemainAfterExit=yes' "ExecStart=$FIREWALL" '' \
    '[Install]' 'WantedBy=multi-user.target'
}

mkdir -p "$(dirname "$FIREWALL")"
firewall_script | install_if_changed "$FIREWALL" 755 && changed+=(firewall-script)
if with_systemd; then
  if firewall_unit | install_if_changed "$FIREWALL_UNIT" 644; then
    systemctl daemon-reload
    changed+=(firewall-unit)
  fi
  [ "$(systemctl is-enabled swarmcloud-firewall 2>/dev/null || true)" = enabled ] ||
    systemctl enable swarmcloud-firewall >/dev/null 2>&1
fi
if ! container_firewall_ok >/dev/null; then
  container_firewall_apply
  changed+=(firewall)
fi

printf 'docker=%s changed=%s\n' "$(docker version --format '{{.Server.Version}}')" "${changed[*]:-none}"
