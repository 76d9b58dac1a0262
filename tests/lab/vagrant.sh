#!/usr/bin/env bash
# swarmcloud lab: real VMs through Vagrant's libvirt provider, for the vagrant suite
# (tests/e2e/vagrant.e2e.ts). Lab only: a user's own box and libvirt stay theirs.
#
# Usage: tests/lab/vagrant.sh SUBCOMMAND [ARGS...]
#   libvirt          install what is missing of libvirt, qemu, Vagrant and vagrant-libvirt
#                    (Debian's packages), make libvirt run qemu as root (see QEMU_CONF below),
#                    start virtlogd and libvirtd by hand (no systemd here) and wait for them
#   box              build the lab box when its recipe changed (debootstrap, Docker and
#                    GlusterFS preinstalled; cached) and add it to Vagrant as box-name prints
#   box-name         print the box's name: swarmcloud-lab/debian-13 (trixie) or -12 (bookworm)
#   clean DIR        remove what a run in the Vagrant work dir DIR left: `vagrant destroy -f`
#                    there, then any libvirt domain, volume and network of its machines (the
#                    private network DIR<N>; the management network vagrant-libvirt once no
#                    domain is left)
#   leftovers DIR    print the libvirt domains and volumes of DIR's machines still there, and
#                    every libvirt network (one per line: "domain NAME", "volume NAME",
#                    "network NAME"); exits 0
#
# Debian release of the box: SWARMCLOUD_LAB_DEBIAN=trixie (default, Debian 13) or bookworm.
# The box is cached in ${SWARMCLOUD_CACHE:-$HOME/.cache/swarmcloud}/vagrant-box-<release>/,
# keyed by the text of its recipe (the functions below that make it) and the release: a changed
# recipe builds a new box, replaces the one Vagrant has, and drops the copy vagrant-libvirt
# uploaded into libvirt's pool (it would otherwise keep booting the old one).
set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
CACHE="${SWARMCLOUD_CACHE:-$HOME/.cache/swarmcloud}"
DEBIAN_RELEASE="${SWARMCLOUD_LAB_DEBIAN:-trixie}"
case "$DEBIAN_RELEASE" in
  trixie) DEBIAN_VERSION=13 ;;
  bookworm) DEBIAN_VERSION=12 ;;
  *)
    printf 'vagrant.sh: SWARMCLOUD_LAB_DEBIAN=%s: must be trixie (Debian 13) or bookworm (Debian 12)\n' \
      "$DEBIAN_RELEASE" >&2
    exit 2
    ;;
esac
readonly CACHE DEBIAN_RELEASE DEBIAN_VERSION
readonly BOX_NAME="swarmcloud-lab/debian-$DEBIAN_VERSION"
readonly BOX_DIR="$CACHE/vagrant-box-$DEBIAN_RELEASE"
readonly BOX_FILE="$BOX_DIR/swarmcloud-lab-debian-$DEBIAN_VERSION.box"
readonly VIRSH=(virsh -q -c qemu:///system)
readonly POOL=default
# /dev/kvm is root's only here: libvirt probes qemu with KVM as root, then finds KVM unusable as
# its qemu user and probes again on every domain define (about 60 s a VM). Run qemu as root.
readonly QEMU_CONF=/etc/libvirt/qemu.conf
readonly PACKAGES=(qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients
  libvirt-daemon-driver-qemu vagrant vagrant-libvirt debootstrap dnsmasq-base iptables ebtables
  ovmf seabios ipxe-qemu e2fsprogs)
# What the box holds beyond debootstrap's minbase: a bootable systemd system reached over SSH,
# and what the program would otherwise install on every VM under emulation (Docker, GlusterFS,
# curl: components/remote-scripts/host.sh installs only what is missing).
readonly BOX_BASE=systemd-sysv,udev,dbus,linux-image-amd64,initramfs-tools,openssh-server,sudo,iproute2,ca-certificates,netbase,kmod,procps,systemd-resolved
readonly BOX_EXTRA=(docker.io glusterfs-server glusterfs-client curl iptables)

log() { printf '[vagrant-lab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- libvirt

libvirt_answers() { "${VIRSH[@]}" version >/dev/null 2>&1; }

install_packages() {
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# qemu_conf_set KEY VALUE: `KEY = "VALUE"` in qemu.conf (replacing a commented or other value);
# succeeds when it changed the file.
qemu_conf_set() {
  local key=$1 value=$2 line
  line="$key = \"$value\""
  grep -qx "$line" "$QEMU_CONF" && return 1
  if grep -qE "^#?[[:space:]]*${key}[[:space:]]*=" "$QEMU_CONF"; then
    sed -i -E "0,/^#?[[:space:]]*${key}[[:space:]]*=.*/s//$line/" "$QEMU_CONF"
  else
    printf '%s\n' "$line" >>"$QEMU_CONF"
  fi
}

cmd_libvirt() {
  local changed=0 t0 i
  install_packages
  [[ -f "$QEMU_CONF" ]] || die "$QEMU_CONF missing after installing libvirt-daemon-system"
  qemu_conf_set user root && changed=1
  qemu_conf_set group root && changed=1
  if ((changed)) && pgrep -x libvirtd >/dev/null; then
    log "qemu.conf changed: restarting libvirtd"
    pkill -x libvirtd || true
    for ((i = 0; i < 50; i++)); do
      pgrep -x libvirtd >/dev/null || break
      sleep 0.2
    done
  fi
  pgrep -x virtlogd >/dev/null || virtlogd -d
  if ! pgrep -x libvirtd >/dev/null; then
    log "starting libvirtd"
    libvirtd -d
  fi
  t0="$(now)"
  for ((i = 0; i < 60; i++)); do
    if libvirt_answers; then
      log "libvirt answers ($(elapsed "$t0") s)"
      return 0
    fi
    sleep 0.5
  done
  die "libvirtd did not answer within 30 s"
}

# ---------------------------------------------------------------- box

# The recipe's key: the text of the functions that make the box, and the release.
box_inputs() {
  {
    declare -f make_rootfs configure_rootfs make_box
    printf '%s\n' "$DEBIAN_RELEASE" "$BOX_BASE" "${BOX_EXTRA[@]}"
  } | sha256sum | awk '{ print $1 }'
}

# make_rootfs DIR: debootstrap, then Docker and GlusterFS with apt inside it (no recommends:
# docker.io's bring needrestart, which ran for minutes under emulation). Services do not start.
make_rootfs() {
  local root=$1 mirror cli=()
  mirror="$(bash "$SCRIPT_DIR/lab.sh" mirror)"
  log "debootstrap --variant=minbase $DEBIAN_RELEASE from $mirror"
  debootstrap --variant=minbase --include="$BOX_BASE" "$DEBIAN_RELEASE" "$root" "$mirror" >"$root.log" 2>&1 || {
    tail -n 30 "$root.log" >&2
    die "debootstrap failed (log $root.log)"
  }
  rm -f "$root.log"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  # The build's resolver (configure_rootfs gives the box systemd-resolved's).
  rm -f "$root/etc/resolv.conf"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc"
  chroot "$root" apt-get update -qq
  # Debian 13's docker.io only recommends the client, its own package there.
  if chroot "$root" apt-cache policy docker-cli | grep -q 'Candidate: [0-9]'; then cli=(docker-cli); fi
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends \
    "${BOX_EXTRA[@]}" "${cli[@]}" >/dev/null
  chroot "$root" apt-get clean
  umount "$root/proc"
  rm -f "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/apt/* "$root"/var/log/bootstrap.log
}

# configure_rootfs DIR: what makes it a Vagrant box that boots on libvirt by its kernel.
configure_rootfs() {
  local root=$1 key
  key="$(vagrant_insecure_key)"
  printf '%s\n' "/dev/vda / ext4 defaults 0 1" >"$root/etc/fstab"
  printf '%s\n' swarmcloud-box >"$root/etc/hostname"
  printf '%s\n' "127.0.0.1 localhost" "127.0.1.1 swarmcloud-box" >"$root/etc/hosts"
  # The vagrant user with Vagrant's well-known key (`vagrant up` replaces it with one of its own).
  chroot "$root" useradd -m -s /bin/bash vagrant
  printf '%s\n' 'vagrant ALL=(ALL) NOPASSWD:ALL' >"$root/etc/sudoers.d/vagrant"
  chmod 440 "$root/etc/sudoers.d/vagrant"
  install -d -m 700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
  printf '%s\n' "$key" >"$root/home/vagrant/.ssh/authorized_keys"
  chown 1000:1000 "$root/home/vagrant/.ssh/authorized_keys"
  chmod 600 "$root/home/vagrant/.ssh/authorized_keys"
  # eth0 (Vagrant's management network) by DHCP; Vagrant writes the private network's file.
  printf '%s\n' '[Match]' 'Name=eth0' '' '[Network]' 'DHCP=ipv4' >"$root/etc/systemd/network/10-eth0.network"
  ln -sf /run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
  # Host keys are made at first boot, each VM its own.
  rm -f "$root"/etc/ssh/ssh_host_*
  printf '%s\n' '[Unit]' 'Description=SSH host keys of this machine' 'Before=ssh.service' \
    'ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key' '' '[Service]' 'Type=oneshot' \
    'ExecStart=/usr/bin/ssh-keygen -A' '' '[Install]' 'WantedBy=multi-user.target' \
    >"$root/etc/systemd/system/ssh-host-keys.service"
  chroot "$root" systemctl enable ssh-host-keys.service ssh.service systemd-networkd.service \
    systemd-resolved.service docker.service glusterd.service >/dev/null 2>&1
  # Nothing reaches out or scrubs on its own under emulation: no apt or maintenance timers.
  chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
    e2scrub_all.timer fstrim.timer xfs_scrub_all.timer >/dev/null 2>&1
  # Each VM gets its own identity at first boot: machine-id (and so its DHCP client id), glusterd's
  # UUID. An empty machine-id is a first boot, where systemd-firstboot would ask on the console
  # for a locale, keymap and root password, and wait for an answer: it must not run.
  chroot "$root" systemctl mask systemd-firstboot.service >/dev/null 2>&1
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id" "$root/var/lib/glusterd/glusterd.info"
}

vagrant_insecure_key() {
  local pub
  pub="$(find /usr/share/rubygems-integration /usr/lib/ruby /opt/vagrant -path '*/keys/vagrant.pub' 2>/dev/null | head -n 1)"
  [[ -n "$pub" ]] || die "Vagrant's insecure public key (keys/vagrant.pub) not found: is vagrant installed?"
  cat "$pub"
}

# make_box ROOT OUT: the disk image (ext4 on the whole disk, no partition table: the box boots
# its kernel directly), the kernel and initrd beside it, metadata, the box's own Vagrantfile.
make_box() {
  local root=$1 out=$2 work
  work="$(dirname "$out")/box-work"
  rm -rf "$work"
  mkdir -p "$work"
  local kernels=("$root"/boot/vmlinuz-*) initrds=("$root"/boot/initrd.img-*)
  ((${#kernels[@]} == 1 && ${#initrds[@]} == 1)) || die "expected one kernel and one initrd in $root/boot"
  cp "${kernels[0]}" "$work/vmlinuz"
  cp "${initrds[0]}" "$work/initrd.img"
  truncate -s 8G "$work/root.raw"
  mkfs.ext4 -q -F -L root -d "$root" "$work/root.raw"
  # Uncompressed: compression costs more time than the copy saves.
  qemu-img convert -O qcow2 "$work/root.raw" "$work/box.img"
  rm -f "$work/root.raw"
  printf '%s\n' '{"provider": "libvirt", "format": "qcow2", "virtual_size": 8}' >"$work/metadata.json"
  cat >"$work/Vagrantfile" <<'EOF'
# The swarmcloud lab box (tests/lab/vagrant.sh): Debian built with debootstrap, booted by its
# own kernel (the image has no boot loader).
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.kernel = File.join(__dir__, "vmlinuz")
    lv.initrd = File.join(__dir__, "initrd.img")
    lv.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
  end
end
EOF
  box_inputs >"$work/swarmcloud-inputs"
  tar -C "$work" -cf "$out.tmp" metadata.json Vagrantfile vmlinuz initrd.img box.img swarmcloud-inputs
  mv "$out.tmp" "$out"
  rm -rf "$work"
}

build_box() {
  local rootfs t0
  mkdir -p "$BOX_DIR"
  rootfs="$(mktemp -d /var/tmp/swarmcloud-box.XXXXXX)"
  # shellcheck disable=SC2064  # expand now: the path is fixed
  trap "umount '$rootfs/proc' 2>/dev/null || true; rm -rf '$rootfs'" EXIT
  t0="$(now)"
  make_rootfs "$rootfs"
  log "rootfs with Docker and GlusterFS in $(elapsed "$t0") s"
  configure_rootfs "$rootfs"
  make_box "$rootfs" "$BOX_FILE"
  rm -rf "$rootfs"
  trap - EXIT
  log "box $BOX_FILE built in $(elapsed "$t0") s ($(du -h "$BOX_FILE" | cut -f1))"
}

# The box as Vagrant keeps it (`vagrant box add` unpacks it there).
added_box_dir() {
  printf '%s/boxes/%s/0/libvirt' "${VAGRANT_HOME:-$HOME/.vagrant.d}" "${BOX_NAME//\//-VAGRANTSLASH-}"
}

cmd_box() {
  local want t0
  want="$(box_inputs)"
  t0="$(now)"
  # One build at a time (CI's background build and a suite may both ask).
  mkdir -p "$BOX_DIR"
  exec 9>"$BOX_DIR/.lock"
  flock 9
  if [[ -f "$BOX_FILE" && "$(tar -xOf "$BOX_FILE" swarmcloud-inputs 2>/dev/null)" == "$want" ]]; then
    log "box $BOX_FILE is up to date"
  else
    build_box
  fi
  if [[ "$(cat "$(added_box_dir)/swarmcloud-inputs" 2>/dev/null)" == "$want" ]]; then
    log "Vagrant has the box $BOX_NAME"
  else
    log "vagrant box add $BOX_NAME"
    vagrant box add --force --name "$BOX_NAME" "$BOX_FILE" >&2
    drop_uploaded_box
  fi
  log "box ready in $(elapsed "$t0") s"
}

# vagrant-libvirt uploads a box into the pool once, by name: drop the copy of an older box.
drop_uploaded_box() {
  local vol
  libvirt_answers || return 0
  "${VIRSH[@]}" pool-info "$POOL" >/dev/null 2>&1 || return 0
  while read -r vol; do
    [[ -n "$vol" ]] || continue
    log "removing the old box's copy $vol from pool $POOL"
    "${VIRSH[@]}" vol-delete --pool "$POOL" "$vol" >/dev/null
  done < <(pool_volumes | grep -F "${BOX_NAME//\//-VAGRANTSLASH-}_vagrant_box_image_" || true)
}

# ---------------------------------------------------------------- clean / leftovers

# The volumes of libvirt's pool; none while the pool is not there yet (before the first box).
pool_volumes() {
  { "${VIRSH[@]}" vol-list --pool "$POOL" 2>/dev/null || true; } | awk 'NF { print $1 }'
}

# Domains of the machines of work dir DIR: vagrant-libvirt names them <dir's name>_<machine>.
stack_domains() {
  { "${VIRSH[@]}" list --all --name 2>/dev/null || true; } | starting_with "$(basename "$1")_"
}

# Their disks: <domain>.img and the like.
stack_volumes() {
  pool_volumes | starting_with "$(basename "$1")_"
}

# starting_with PREFIX: the lines of stdin that start with PREFIX (taken literally).
starting_with() { awk -v p="$1" 'index($0, p) == 1'; }

cmd_clean() {
  local dir=${1:?usage: clean DIR} dom vol net
  libvirt_answers || return 0
  if [[ -f "$dir/Vagrantfile" ]]; then
    (cd "$dir" && vagrant destroy -f >&2) || log "vagrant destroy in $dir failed; removing by hand"
  fi
  for dom in $(stack_domains "$dir"); do
    log "removing domain $dom"
    "${VIRSH[@]}" destroy "$dom" >/dev/null 2>&1 || true
    "${VIRSH[@]}" undefine --nvram "$dom" >/dev/null 2>&1 || "${VIRSH[@]}" undefine "$dom" >/dev/null
  done
  for vol in $(stack_volumes "$dir"); do
    log "removing volume $vol"
    "${VIRSH[@]}" vol-delete --pool "$POOL" "$vol" >/dev/null
  done
  # The networks vagrant-libvirt made for DIR's machines: the private one, named after DIR with
  # a number, and its management network once no domain is left.
  for net in $("${VIRSH[@]}" net-list --all --name 2>/dev/null | awk -v p="$(basename "$dir")" \
    'index($0, p) == 1 && substr($0, length(p) + 1) ~ /^[0-9]+$/'); do
    remove_network "$net"
  done
  if [[ -z "$("${VIRSH[@]}" list --all --name 2>/dev/null | awk NF)" ]]; then
    "${VIRSH[@]}" net-info vagrant-libvirt >/dev/null 2>&1 && remove_network vagrant-libvirt
  fi
  rm -rf "$dir/.vagrant" "$dir/Vagrantfile"
}

remove_network() {
  log "removing network $1"
  "${VIRSH[@]}" net-destroy "$1" >/dev/null 2>&1 || true
  "${VIRSH[@]}" net-undefine "$1" >/dev/null
}

cmd_leftovers() {
  local dir=${1:?usage: leftovers DIR}
  stack_domains "$dir" | sed 's/^/domain /'
  stack_volumes "$dir" | sed 's/^/volume /'
  { "${VIRSH[@]}" net-list --all --name 2>/dev/null || true; } | awk 'NF { print "network " $1 }'
}

main() {
  local sub=${1:-}
  shift || true
  case "$sub" in
    libvirt) cmd_libvirt ;;
    box) cmd_box ;;
    box-name) printf '%s\n' "$BOX_NAME" ;;
    clean) cmd_clean "$@" ;;
    leftovers) cmd_leftovers "$@" ;;
    *)
      sed -n '2,/^set -E/p' "${BASH_SOURCE[0]}" | sed '$d' >&2
      exit 2
      ;;
  esac
}

main "$@"
