#!/usr/bin/env bash
# Gets one stack ready for its first `pulumi up` on a machine with a fresh Pulumi CLI and no
# Pulumi account. Safe to run again: a step that is already done is left as it is.
#
#   usage: npm run setup -- STACK        (or bash tools/setup.sh STACK; STACK: local, dev, pi, do)
#
# 1. Backend: when the CLI is logged in nowhere, it is logged in to a folder on this machine,
#    file://$SWARMCLOUD_STATE_DIR (default ~/.pulumi-swarmcloud). An existing login (Pulumi
#    Cloud, another folder, PULUMI_BACKEND_URL) is kept.
# 2. Passphrase: a self-managed backend encrypts the stack's secrets with a passphrase that every
#    pulumi command reads from PULUMI_CONFIG_PASSPHRASE, or from the file named by
#    PULUMI_CONFIG_PASSPHRASE_FILE. When that file does not exist, a random passphrase is written
#    to it, readable by its owner only. The passphrase is never printed.
# 3. Stack: STACK is selected, and created first when the backend does not have it yet (this adds
#    its encryptionsalt to Pulumi.STACK.yaml).
set -euo pipefail

STATE_DIR="${SWARMCLOUD_STATE_DIR:-$HOME/.pulumi-swarmcloud}"
readonly STATE_DIR
# The Pulumi CLI's exit code for "not logged in" (its documented exit code taxonomy).
readonly EXIT_AUTHENTICATION=3

info() { printf 'setup: %s\n' "$*"; }
fatal() {
  printf 'setup: %s\n' "$*" >&2
  exit 1
}

# stack_names: the stacks this project has a settings file for, separated by spaces.
stack_names() {
  local f names=()
  for f in Pulumi.*.yaml; do
    [ -e "$f" ] || continue
    f=${f#Pulumi.}
    names+=("${f%.yaml}")
  done
  printf '%s' "${names[*]}"
}

# whoami: `pulumi whoami --verbose`, its output in WHOAMI and its exit code in WHOAMI_CODE.
whoami() {
  WHOAMI_CODE=0
  WHOAMI=$(pulumi whoami --verbose --non-interactive 2>&1) || WHOAMI_CODE=$?
}

# use_backend: keep the backend the CLI is logged in to, or log in to STATE_DIR. Sets BACKEND.
use_backend() {
  whoami
  if [ "$WHOAMI_CODE" -ne 0 ]; then
    # Older CLIs exit 255 here and say so only in words.
    if [ "$WHOAMI_CODE" -ne "$EXIT_AUTHENTICATION" ] && ! grep -q 'pulumi login' <<<"$WHOAMI"; then
      fatal "cannot tell which backend the Pulumi CLI uses (pulumi whoami, exit $WHOAMI_CODE): $WHOAMI"
    fi
    info "the Pulumi CLI is logged in nowhere: stacks will be kept in $STATE_DIR on this machine (no account)"
    (umask 077 && mkdir -p "$STATE_DIR")
    pulumi login "file://$STATE_DIR" --non-interactive
    whoami
    [ "$WHOAMI_CODE" -eq 0 ] || fatal "pulumi whoami failed after logging in (exit $WHOAMI_CODE): $WHOAMI"
  fi
  BACKEND=$(sed -n 's/^Backend URL: //p' <<<"$WHOAMI")
  [ -n "$BACKEND" ] || fatal "pulumi whoami --verbose named no backend URL: $WHOAMI"
  info "backend: $BACKEND"
}

# use_passphrase: make sure pulumi commands find the passphrase of a self-managed backend.
use_passphrase() {
  case "$BACKEND" in
    https://*)
      info "secrets: encrypted by the Pulumi service, no passphrase needed"
      return 0
      ;;
  esac
  if [ -n "${PULUMI_CONFIG_PASSPHRASE+set}" ]; then
    [ -n "$PULUMI_CONFIG_PASSPHRASE" ] ||
      fatal "PULUMI_CONFIG_PASSPHRASE is set but empty: the stack's secrets would be readable by anyone with its state; unset it and use PULUMI_CONFIG_PASSPHRASE_FILE"
    info "passphrase: from PULUMI_CONFIG_PASSPHRASE"
    return 0
  fi
  local file="${PULUMI_CONFIG_PASSPHRASE_FILE:-}"
  if [ -z "$file" ]; then
    fatal "a self-managed backend encrypts the stack's secrets with a passphrase, and every pulumi command must find it. Run
  export PULUMI_CONFIG_PASSPHRASE_FILE=\"\$HOME/.config/swarmcloud/passphrase\"
(and add that line to your shell's startup file), then run this again: it writes a random passphrase there."
  fi
  case "$file" in
    "~"*) fatal "PULUMI_CONFIG_PASSPHRASE_FILE=$file: a quoted ~ is not expanded; write \$HOME instead" ;;
  esac
  if [ -e "$file" ]; then
    [ -s "$file" ] || fatal "$file (PULUMI_CONFIG_PASSPHRASE_FILE) is empty; remove it to have a new passphrase written"
    info "passphrase: $file (kept)"
  else
    (
      umask 077
      mkdir -p "$(dirname "$file")"
      head -c 24 /dev/urandom | base64 >"$file.new"
      mv "$file.new" "$file"
    )
    info "passphrase: a new random one in $file, readable by you only"
  fi
  info "keep a copy of $file apart from the state (a password manager): without it this stack's secrets cannot be read, and pulumi up and destroy of the stack fail"
}

# use_stack STACK: select the stack, creating it when the backend does not have it.
use_stack() {
  pulumi stack select --create "$1" --non-interactive
  info "stack: $1 (selected)"
}

main() {
  [ $# -eq 1 ] || fatal "usage: npm run setup -- STACK   (STACK: $(stack_names))"
  local stack=$1
  [ -f "Pulumi.$stack.yaml" ] ||
    fatal "no Pulumi.$stack.yaml: use one of: $(stack_names) (or copy one of their files to Pulumi.$stack.yaml first)"
  command -v pulumi >/dev/null || fatal "no pulumi command on PATH: install the Pulumi CLI, https://www.pulumi.com/docs/install/"
  use_backend
  use_passphrase
  use_stack "$stack"
  info "ready: pulumi preview --stack $stack shows what pulumi up --stack $stack will do"
}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
main "$@"
