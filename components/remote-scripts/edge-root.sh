#!/usr/bin/env bash
# swarmcloud: the front door's root certificate (Caddy's internal CA), made before any Caddy starts
# Without a domain the edge's Caddy signs the floating address with its internal CA, kept on the
# shared volume. Caddy makes that CA at its first start when the volume holds none; two edge
# nodes starting at once could each make one, only one is kept, and the other node then serves
# a certificate no client trusting the stack output accepts (seen in the lab). So the program
# makes the root here, once, where Caddy looks for it: ECDSA P-256, 10 years, `openssl` on the
# node. A root already there is kept (a re-run changes nothing); a root without its key is made
# again, with the intermediate Caddy derived from the old one dropped (Caddy makes a new one).
# Runs on a manager before the edge stack's deploy.
# Inputs: NODE_NAME, CA_DIR (Caddy's local authority on the Gluster mount), CN (the root's name).
# Prints: the root certificate, PEM (public: the stack output people trust in their browsers).
set -euo pipefail
: "${NODE_NAME:?}" "${CA_DIR:?}" "${CN:?}"

if [ ! -s "$CA_DIR/root.crt" ] || [ ! -s "$CA_DIR/root.key" ]; then
  command -v openssl >/dev/null 2>&1 ||
    fatal "openssl is not installed on $NODE_NAME: install it (apt-get install openssl), then run pulumi up again"
  mkdir -p "$CA_DIR"
  tmp=$(mktemp -d "$CA_DIR/.new-root.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  printf '%s\n' '[req]' 'distinguished_name = dn' 'x509_extensions = ca' 'prompt = no' \
    '[dn]' "CN = $CN" \
    '[ca]' 'basicConstraints = critical,CA:TRUE' 'keyUsage = critical,keyCertSign,cRLSign' \
    'subjectKeyIdentifier = hash' >"$tmp/req.cnf"
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/root.key" 2>/dev/null) ||
    fatal "openssl could not make the front door's root key on $NODE_NAME"
  openssl req -x509 -new -config "$tmp/req.cnf" -key "$tmp/root.key" -sha256 -days 3650 -out "$tmp/root.crt" 2>"$tmp/err" ||
    fatal "openssl could not make the front door's root certificate on $NODE_NAME:" "$(cat "$tmp/err")"
  rm -f "$CA_DIR/intermediate.crt" "$CA_DIR/intermediate.key"
  mv "$tmp/root.key" "$CA_DIR/root.key"
  mv "$tmp/root.crt" "$CA_DIR/root.crt"
  info "$NODE_NAME: the front door's root certificate made in $CA_DIR"
fi
cat "$CA_DIR/root.crt"
