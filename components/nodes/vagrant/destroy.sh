#!/bin/sh
# Destroys every machine; nothing to do when the work dir or its Vagrantfile is gone.
# The delete of the `<name>-up` VagrantCommand of VagrantNodes (components/nodes/vagrant.ts), run
# under /bin/sh on the machine that runs Pulumi; vagrant.ts passes the text from the `set -eu`
# line on. Input: SWARMCLOUD_VAGRANT_DIR (the stack's work dir).
# libvirt: vagrant-libvirt removes a network it made (the private network, its management
# network) only when it destroys the machine that made it, and only if no other machine uses it
# then; machines go in reverse order, so the maker may go first and the network stay behind,
# forgotten. The networks' ids are read before and each one no domain uses is removed after.
set -eu
cd "$SWARMCLOUD_VAGRANT_DIR" 2>/dev/null || exit 0
[ -f Vagrantfile ] || exit 0
networks="$(cat .vagrant/machines/*/libvirt/created_networks 2>/dev/null || true)"
vagrant destroy -f
for network in $networks; do
  xml="$(virsh -c qemu:///system net-dumpxml "$network" 2>/dev/null)" || continue
  case "$xml" in *"connections="*) continue ;; esac
  virsh -c qemu:///system net-destroy "$network" >/dev/null 2>&1 || true
  virsh -c qemu:///system net-undefine "$network" >/dev/null
done
rm -f Vagrantfile
