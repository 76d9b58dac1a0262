#!/usr/bin/env bash
# swarmcloud: read the stack's services and secrets
# Run by `pulumi refresh` on a manager (exit 75 sends it to the next one); changes nothing.
# Inputs: STACK, SECRETS (as stack-deploy.sh). Prints SERVICES ("<name> replicated <replicas>"
# or "<name> global" for each service of the stack now, sorted) and SECRETS (those of the
# secret names in SECRETS that exist now, in their order). Secret values are never read.
set -euo pipefail
: "${STACK:?STACK is not set}"
SECRETS="${SECRETS:-}"
NAMESPACE_LABEL="com.docker.stack.namespace=$STACK"
require_manager "stacks are read on a manager"
# A manager that cannot answer now (no leader yet after a restart): the next one may.
ids=$(docker service ls -q --filter "label=$NAMESPACE_LABEL") || not_here "$(hostname) could not list the services of stack $STACK"
services=$(printf '%s\n' "$ids" | xargs -r docker service inspect \
  --format '{{.Spec.Name}} {{if .Spec.Mode.Global}}global{{else}}replicated {{.Spec.Mode.Replicated.Replicas}}{{end}}' |
  LC_ALL=C sort)
observed SERVICES "$services"
present=()
for name in $SECRETS; do
  docker secret inspect --format '{{.ID}}' "$name" >/dev/null 2>&1 && present+=("$name")
done
observed SECRETS "$(printf '%s\n' "${present[@]}" | sed '/^$/d')"
