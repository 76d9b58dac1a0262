#!/usr/bin/env bash
# swarmcloud: read the front door's root certificate (Caddy's internal CA)
# Without a domain the edge's Caddy signs the floating address with its own CA, kept on the
# shared volume; this waits for Caddy to have made it and prints it (a public certificate, not
# a secret), for the stack output people trust in their browsers. Runs on a manager after the
# edge stack's deploy; reads only.
# Inputs: NODE_NAME, ROOT_CERT (the root's path on the Gluster mount), TIMEOUT (seconds, default 180).
# Prints: the root certificate, PEM.
set -euo pipefail
: "${NODE_NAME:?}" "${ROOT_CERT:?}"
TIMEOUT="${TIMEOUT:-180}"

root_written() {
  if [ -s "$ROOT_CERT" ] && grep -q -- '-----BEGIN CERTIFICATE-----' "$ROOT_CERT"; then
    printf 'written\n'
  else
    printf 'no root certificate at %s yet\n' "$ROOT_CERT"
    return 1
  fi
}

WAIT_EVERY=2 wait_for "$TIMEOUT" "Caddy's internal CA on $NODE_NAME" root_written ||
  fatal "the edge's Caddy made no root certificate: see docker service logs edge_caddy"
cat "$ROOT_CERT"
