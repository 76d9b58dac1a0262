#!/bin/sh
# Prints `vagrant ssh-config <node>`, the marker line (KEY_MARKER in vagrant.ts), then the key
# its IdentityFile names. Run by the `<name>-<node>-ssh-config` VagrantCommands of VagrantNodes
# (components/nodes/vagrant.ts) under /bin/sh on the machine that runs Pulumi; vagrant.ts passes
# the text from the `set -eu` line on. Inputs: SWARMCLOUD_VAGRANT_DIR (the stack's work dir),
# SWARMCLOUD_NODE (the machine's name).
set -eu
cd "$SWARMCLOUD_VAGRANT_DIR"
config="$(vagrant ssh-config "$SWARMCLOUD_NODE")"
printf '%s\n' "$config"
key="$(printf '%s\n' "$config" | awk '$1 == "IdentityFile" { sub(/^[ \t]*IdentityFile[ \t]+/, ""); gsub(/"/, ""); print; exit }')"
[ -n "$key" ] || { echo "vagrant ssh-config $SWARMCLOUD_NODE printed no IdentityFile" >&2; exit 1; }
printf '%s\n' '-----SWARMCLOUD VAGRANT PRIVATE KEY-----'
cat "$key"
