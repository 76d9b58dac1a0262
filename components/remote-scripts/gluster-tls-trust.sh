#!/usr/bin/env bash
# swarmcloud: trust the cluster's Gluster CA and encrypt management traffic
# Runs on the node. Writes /etc/ssl/glusterfs.ca (the cluster's CA certificate: Gluster admits a
# peer whose certificate it signed), links the three TLS files into OpenSSL's directory
# where glusterd looks for them (gluster_tls_link, below), and /var/lib/glusterd/secure-access (glusterd
# and the mounts use TLS for management traffic), then restarts glusterd, which reads them only
# when it starts. Nothing is written or restarted when all are already so: a re-run changes
# nothing.
# The bricks read the CA file only when they start too, so a changed CA on a node whose brick
# runs (a new CA) is refused before anything is written (README, "Gluster TLS"); a node that
# comes or goes changes no node's CA file.
# Inputs: NODE_NAME, VOLUME, CA (the CA certificate, PEM).
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}" "${CA:?}"
readonly CA_FILE=/etc/ssl/glusterfs.ca SECURE=/var/lib/glusterd/secure-access

# gluster_tls_link NAME...: GlusterFS's TLS files (glusterfs.pem, .key, .ca) live in /etc/ssl,
# where Gluster's guide and its bricks look; glusterd looks in OpenSSL's directory instead
# (`openssl version -d`: /usr/lib/ssl on Debian 12, seen in the lab as "could not load our cert
# at /usr/lib/ssl/glusterfs.pem"; gluster/glusterdocs#802). Links each NAME there to /etc/ssl
# where that directory is another; prints the links it made. Here rather than in lib.sh: a
# change of lib.sh changes every script, and so re-runs every step on every node.
gluster_tls_link() {
  local dir name
  dir=$(openssl version -d | sed -n 's/^OPENSSLDIR: "\(.*\)"$/\1/p')
  { [ -n "$dir" ] && [ "$dir" != /etc/ssl ]; } || return 0
  mkdir -p "$dir"
  for name in "$@"; do
    [ "$(readlink "$dir/$name" 2>/dev/null)" = "/etc/ssl/$name" ] && continue
    ln -sfn "/etc/ssl/$name" "$dir/$name"
    printf '%s\n' "$dir/$name"
  done
}

# glusterd answers on this node.
glusterd_answers() {
  gluster --mode=script pool list >/dev/null 2>&1
}

# Restarts glusterd (restart_daemon: stopped within 30 s, a supervisor given 10 s, else started
# here) and waits until it answers.
restart_glusterd() {
  restart_daemon glusterd glusterd 30 10 glusterd
  WAIT_EVERY=1 wait_for 60 "glusterd on $NODE_NAME to answer after its restart" glusterd_answers ||
    fatal "glusterd did not come back with TLS; see /var/log/glusterfs/glusterd.log on $NODE_NAME"
}
glusterd_up() { pgrep -x glusterd >/dev/null; }

changed=()
if [ ! -f "$CA_FILE" ] || [ "$(cat "$CA_FILE")" != "$CA" ]; then
  if [ -f "$CA_FILE" ] && gluster_brick_running "$VOLUME"; then
    fatal "the cluster's Gluster CA changed while $NODE_NAME serves a brick of volume $VOLUME." \
      "The brick reads $CA_FILE only when it starts, and the program does not restart bricks yet; nothing was changed." \
      "Keep the CA as it was, or move the node to the new CA by hand as the README says (\"Gluster TLS\")."
  fi
  mkdir -p /etc/ssl
  tmp=$(mktemp /etc/ssl/glusterfs.ca.XXXXXX)
  printf '%s\n' "$CA" >"$tmp"
  chmod 644 "$tmp"
  mv "$tmp" "$CA_FILE"
  changed+=(ca)
fi
if [ -n "$(gluster_tls_link glusterfs.pem glusterfs.key glusterfs.ca)" ]; then
  changed+=(links)
fi
if [ ! -e "$SECURE" ]; then
  mkdir -p "$(dirname "$SECURE")"
  : >"$SECURE"
  changed+=(secure-access)
fi
if [ "${#changed[@]}" -gt 0 ]; then
  if glusterd_up; then
    restart_glusterd
  fi
  info "$NODE_NAME: ${changed[*]} written; glusterd uses TLS"
fi
echo "$(grep -c 'BEGIN CERTIFICATE' "$CA_FILE") certificates trusted"
