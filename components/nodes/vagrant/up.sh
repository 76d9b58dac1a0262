#!/bin/sh
# Writes the Vagrantfile (from stdin) into the work dir and brings every machine up.
# Run by the `<name>-up` VagrantCommand of VagrantNodes (components/nodes/vagrant.ts) under
# /bin/sh on the machine that runs Pulumi, not on a node; vagrant.ts passes the text from the
# `set -eu` line on. Inputs: SWARMCLOUD_VAGRANT_DIR (the stack's work dir),
# SWARMCLOUD_VAGRANT_PROVIDER (virtualbox or libvirt: vagrant.provider).
set -eu
mkdir -p "$SWARMCLOUD_VAGRANT_DIR"
cd "$SWARMCLOUD_VAGRANT_DIR"
cat > Vagrantfile
vagrant up --provider="$SWARMCLOUD_VAGRANT_PROVIDER"
