#!/usr/bin/env bash
# swarmcloud: read whether Ghost's stack is marked opened
# Run by `pulumi refresh` on a manager (exit 75: the next one); changes nothing. Inputs: STACK,
# SERVICE (as ghost-setup.sh). Prints a DRIFT line when the Docker config <STACK>-opened is gone
# (its next deploy would hold Ghost's ports back) or the service publishes no port: `pulumi up
# --refresh` runs the setup step again, which asks Ghost (and leaves an owner alone) and opens.
set -euo pipefail
: "${STACK:?}" "${SERVICE:?}"
require_manager "Ghost's setup is read on a manager"
docker config inspect "$STACK-opened" >/dev/null 2>&1 ||
  drift "stack $STACK is not marked opened (no Docker config $STACK-opened): its next deploy would publish no port"
published=$(docker service inspect --format '{{if .Spec.EndpointSpec}}{{len .Spec.EndpointSpec.Ports}}{{else}}0{{end}}' "$SERVICE" 2>/dev/null || echo 0)
[ "$published" != 0 ] || drift "service $SERVICE publishes no port"
