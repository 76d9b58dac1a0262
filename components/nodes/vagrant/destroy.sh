#!/bin/sh
# Destroys every machine; nothing to do when the work dir or its Vagrantfile is gone.
# The delete of the `<name>-up` VagrantCommand of VagrantNodes (components/nodes/vagrant.ts), run
# under /bin/sh on the machine that runs Pulumi; vagrant.ts passes the text from the `set -eu`
# line on. Input: SWARMCLOUD_VAGRANT_DIR (the stack's work dir).
set -eu
cd "$SWARMCLOUD_VAGRANT_DIR" 2>/dev/null || exit 0
[ -f Vagrantfile ] || exit 0
vagrant destroy -f
rm -f Vagrantfile
