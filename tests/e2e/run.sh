#!/usr/bin/env bash
# Runs one lab suite against real nodes: core (hosts, swarm, gluster), apps (Portainer, Ghost),
# resilience, security (attacks on a deployed cluster) or drift (changes made by hand: refresh
# shows, up --refresh repairs; restarts). With SWARMCLOUD_LAB_HANDOFF=1 on an apps run before
# them, security and drift work on the apps suite's cluster (README, "The lab"). Needs root,
# Debian's docker.io and Go (for the engine when pulumi is not on PATH).
# edge: the front door (keepalived, Caddy, Pebble). resilience also measures Ghost's image updates
# and, last, a node upgrade walk (every node drained, rebooted and back, one at a time, under load).
# backup: backups with restic and a restore from nothing, opt-in and not in .ci/run yet.
# gluster-tls: Gluster with gluster.tls on (3 nodes, a stranger refused), opt-in, not in .ci/run.
# vagrant: three real VMs (Vagrant's libvirt provider, qemu) from the lab box: swarm, Gluster, destroy.
# Usage: tests/e2e/run.sh [--suite previews|core|apps|resilience|security|drift|edge|backup|gluster-tls|vagrant]   (default: core)
set -euo pipefail
cd "$(dirname "$0")/../.."
suite=core
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) suite="$2"; shift 2 ;;
    *) echo "usage: $0 [--suite previews|core|apps|resilience|security|drift|edge|backup|gluster-tls|vagrant]" >&2; exit 2 ;;
  esac
done
case "$suite" in
  previews | core | apps | resilience | security | drift | edge | backup | gluster-tls | vagrant) ;;
  *) echo "unknown suite '$suite': use previews, core, apps, resilience, security, drift, edge, backup, gluster-tls or vagrant" >&2; exit 2 ;;
esac
exec npx jest --config jest.e2e.config.js --runInBand "tests/e2e/$suite.e2e.ts"
