#!/usr/bin/env bash
# swarmcloud LAB ONLY: behaves like the official ghost image's docker-entrypoint.sh.
# As root: give the content folder to `node` and re-run as `node`. Then seed the content
# folder (a fresh bind mount) from content.orig, one top-level folder and theme at a time,
# never overwriting, and exec the command (`node current/index.js`).
set -euo pipefail

if [[ "$*" == node*current/index.js* && "$(id -u)" == 0 ]]; then
  mkdir -p "$GHOST_CONTENT"
  find "$GHOST_CONTENT" \! -user node -exec chown node '{}' +
  exec setpriv --reuid=node --regid=node --init-groups "${BASH_SOURCE[0]}" "$@"
fi

if [[ "$*" == node*current/index.js* ]]; then
  export HOME=/home/node
  base="$GHOST_INSTALL/content.orig"
  for src in "$base"/*/ "$base"/themes/*; do
    src="${src%/}"
    [[ -e "$src" ]] || continue
    target="$GHOST_CONTENT/${src#"$base"/}"
    mkdir -p "$(dirname "$target")"
    if [[ ! -e "$target" ]]; then
      tar -cC "$(dirname "$src")" "$(basename "$src")" | tar -xC "$(dirname "$target")"
    fi
  done
fi

exec "$@"
