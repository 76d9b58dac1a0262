#!/usr/bin/env bash
# swarmcloud: make the backup folder
# Runs on the node whose own disk holds the backup repository (backup.target local): makes the
# folder the backup service binds (Docker refuses a bind of a folder that does not exist), only
# root may enter it. An existing folder and what it holds are kept, the repository included.
# Inputs: NODE_NAME, REPOSITORY_DIR. Prints the folder.
set -euo pipefail
: "${NODE_NAME:?}" "${REPOSITORY_DIR:?}"

mkdir -p "$REPOSITORY_DIR"
chmod 700 "$REPOSITORY_DIR"
printf '%s\n' "$REPOSITORY_DIR"
