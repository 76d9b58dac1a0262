#!/usr/bin/env bash
# swarmcloud: make the node's Gluster TLS key and certificate
# Runs on the node. The private key is made here and never leaves the node; the certificate is
# self-signed, its common name the node's name (what the volume's auth.ssl-allow lists). Kept
# as it is when it is there with that name, so a re-run changes nothing. Refuses to start TLS
# for a volume this node's glusterd already serves without it: the bricks and every mount would
# have to be restarted (README, "Gluster TLS").
# Inputs: NODE_NAME, VOLUME. Prints the certificate (PEM): the program puts every node's in
# every node's /etc/ssl/glusterfs.ca.
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}"
readonly KEY=/etc/ssl/glusterfs.key CERT=/etc/ssl/glusterfs.pem
# Ten years: Gluster reloads neither file while it runs, so a short-lived certificate would
# need restarts the program does not do.
readonly DAYS=3650

# The volume exists here, started, and its bricks do not ask for TLS.
volume_without_tls() {
  local info
  info=$(gluster --mode=script volume info "$VOLUME" 2>/dev/null) || return 1
  printf '%s\n' "$info" | grep -q '^Status: Started' || return 1
  ! printf '%s\n' "$info" | grep -q '^server.ssl: on'
}

# The certificate's common name, or nothing when there is no readable certificate.
cert_name() {
  openssl x509 -noout -subject -nameopt multiline -in "$CERT" 2>/dev/null | sed -n 's/^ *commonName *= *//p'
}

# The certificate belongs to the key (the same public key).
cert_matches_key() {
  [ "$(openssl x509 -noout -pubkey -in "$CERT" 2>/dev/null)" = "$(openssl pkey -pubout -in "$KEY" 2>/dev/null)" ]
}

command -v openssl >/dev/null 2>&1 || fatal "openssl is not installed on $NODE_NAME: install it (apt-get install openssl) and run pulumi up again"
if volume_without_tls; then
  fatal "volume $VOLUME is running without TLS, and swarmcloud:gluster.tls is true." \
    "Turning TLS on for a running volume needs it stopped and every mount made again, which the program does not do." \
    "Set gluster.tls back to false (pulumi config set --path swarmcloud:gluster.tls false), or switch by hand as the README says (\"Gluster TLS\"); nothing was changed."
fi
mkdir -p /etc/ssl
if [ ! -s "$KEY" ]; then
  (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$KEY" 2>/dev/null)
  info "made the Gluster TLS key of $NODE_NAME"
fi
chmod 600 "$KEY"
if [ "$(cert_name)" != "$NODE_NAME" ] || ! cert_matches_key; then
  tmp=$(mktemp /etc/ssl/glusterfs.pem.XXXXXX)
  openssl req -new -x509 -key "$KEY" -subj "/CN=$NODE_NAME" -days "$DAYS" -out "$tmp" 2>/dev/null
  chmod 644 "$tmp"
  mv "$tmp" "$CERT"
  info "made the Gluster TLS certificate of $NODE_NAME (CN=$NODE_NAME)"
fi
cat "$CERT"
