#!/usr/bin/env bash
# swarmcloud: read the node's role, availability and labels
# Run by `pulumi refresh` on a manager (exit 75 sends it to the next one); changes nothing.
# Inputs: NODE_NAME, NODE_ID (as swarm-member.sh). Prints ROLE, AVAILABILITY and LABELS ("k=v"
# lines sorted by key, as the program renders them), or a DRIFT line when the swarm no longer
# lists NODE_ID.
set -euo pipefail
: "${NODE_NAME:?}" "${NODE_ID:?}"
require_manager "the swarm's node list is read on a manager"
if ! spec=$(docker node inspect --format '{{.Spec.Role}} {{.Spec.Availability}}' "$NODE_ID" 2>&1); then
  case "$spec" in
    *"No such node"* | *"not found"*)
      drift "swarm node $NODE_ID ($NODE_NAME) is not in the node list"
      exit 0
      ;;
  esac
  # A manager that cannot answer now (no leader yet after a restart): the next one may.
  not_here "$(hostname) could not inspect swarm node $NODE_ID ($NODE_NAME): $spec"
fi
read -r role availability <<<"$spec"
observed ROLE "$role"
observed AVAILABILITY "$availability"
labels=$(docker node inspect --format '{{range $k, $v := .Spec.Labels}}{{$k}}={{$v}}{{println}}{{end}}' "$NODE_ID" |
  sed '/^$/d' | LC_ALL=C sort -t= -k1,1)
observed LABELS "$labels"
