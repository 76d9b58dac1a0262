#!/usr/bin/env bash
# swarmcloud: make the node's Gluster TLS key, and its certificate signed by the cluster's CA
# Runs on the node. The private key is made here and never leaves the node; the certificate's
# common name is the node's name (what the volume's auth.ssl-allow lists), signed here by the
# cluster's CA, whose key comes on stdin and is read by openssl from there alone (never written
# to disk, never on a command line). Kept as it is when it is there with that name, for this key
# and signed by this CA, so a re-run changes nothing (and reads no stdin). Refuses to start TLS
# for a volume this node's glusterd already serves without it (the bricks and every mount would
# have to be restarted), and to sign for another CA while a brick of the volume runs here (the
# brick reads its CA file only when it starts): README, "Gluster TLS".
# Inputs: NODE_NAME, VOLUME, CA_CERT (the CA's certificate, PEM); stdin: the CA's private key.
# Prints the certificate's subject, issuer and SHA-256 fingerprint.
set -euo pipefail
: "${NODE_NAME:?}" "${VOLUME:?}" "${CA_CERT:?}"
readonly KEY=/etc/ssl/glusterfs.key CERT=/etc/ssl/glusterfs.pem CA_FILE=/etc/ssl/glusterfs.ca
# Ten years: Gluster reloads neither file while it runs, so a short-lived certificate would
# need restarts the program does not do.
readonly DAYS=3650
# A node certificate, not a CA; for both ends of a connection (a node is a server to the
# others' mounts and a client of their bricks).
readonly EXTENSIONS='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid'

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

# The certificate is signed by the cluster's CA (and is valid today).
cert_signed_by_ca() {
  openssl verify -CAfile <(printf '%s\n' "$CA_CERT") "$CERT" >/dev/null 2>&1
}

command -v openssl >/dev/null 2>&1 || fatal "openssl is not installed on $NODE_NAME: install it (apt-get install openssl) and run pulumi up again"
printf '%s\n' "$CA_CERT" | openssl x509 -noout 2>/dev/null || fatal "CA_CERT is not a PEM certificate"
if volume_without_tls; then
  fatal "volume $VOLUME is running without TLS, and swarmcloud:gluster.tls is true." \
    "Turning TLS on for a running volume needs it stopped and every mount made again, which the program does not do." \
    "Set gluster.tls to false (pulumi config set --path swarmcloud:gluster.tls false), or switch by hand as the README says (\"Gluster TLS\"); nothing was changed."
fi
if [ -f "$CA_FILE" ] && [ "$(cat "$CA_FILE")" != "$CA_CERT" ] && gluster_brick_running "$VOLUME"; then
  fatal "$NODE_NAME trusts other Gluster certificates than the cluster's CA while it serves a brick of volume $VOLUME" \
    "(a TLS volume made before the cluster had a CA, or a new CA): the brick reads $CA_FILE only when it starts, and the program does not restart bricks; nothing was changed." \
    "Move the node to the CA by hand as the README says (\"Gluster TLS\")."
fi
mkdir -p /etc/ssl
if [ ! -s "$KEY" ]; then
  (umask 077 && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$KEY" 2>/dev/null)
  info "made the Gluster TLS key of $NODE_NAME"
fi
chmod 600 "$KEY"
if [ "$(cert_name)" != "$NODE_NAME" ] || ! cert_matches_key || ! cert_signed_by_ca; then
  tmp=$(mktemp /etc/ssl/glusterfs.pem.XXXXXX)
  errors=$(mktemp)
  trap 'rm -f "$tmp" "$errors"' EXIT
  # The request never touches the disk either; the serial is random (a CA must not repeat one).
  csr=$(openssl req -new -key "$KEY" -subj "/CN=$NODE_NAME" 2>"$errors") ||
    fatal "could not make the certificate request of $NODE_NAME: $(head -c 600 "$errors")"
  if ! openssl x509 -req -in <(printf '%s\n' "$csr") -CA <(printf '%s\n' "$CA_CERT") -CAkey <(cat) \
    -set_serial "0x$(openssl rand -hex 16)" -days "$DAYS" -sha256 \
    -extfile <(printf '%s\n' "$EXTENSIONS") -out "$tmp" 2>"$errors"; then
    fatal "could not sign the Gluster certificate of $NODE_NAME with the cluster's CA (its key comes on stdin): $(head -c 600 "$errors")"
  fi
  chmod 644 "$tmp"
  mv "$tmp" "$CERT"
  info "made the Gluster TLS certificate of $NODE_NAME (CN=$NODE_NAME, signed by the cluster's CA)"
fi
openssl x509 -noout -subject -issuer -fingerprint -sha256 -in "$CERT"
