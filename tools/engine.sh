#!/usr/bin/env bash
# Provide the Pulumi engine (CLI + Node.js language host + the Node.js dynamic
# provider launcher) and print the directory holding them as the last line of
# stdout. Everything else goes to stderr. Usage:
#
#   PATH="$(tools/engine.sh):$PATH"
#   tools/engine.sh --wrapper-module DIR   (only write the Go module the
#                                             engine is built in; golint.sh)
#
# If a `pulumi` that is not ours is already on PATH, its directory is printed.
# Otherwise the binaries are built from Go modules pinned at PULUMI_VERSION in a
# throw-away wrapper module (never inside this repository) and cached under
# ${SWARMCLOUD_CACHE:-$HOME/.cache/swarmcloud}/engine-<version>/bin; later runs
# reuse the cache.
#
# The CLI is github.com/pulumi/pulumi/pkg/v3/cmd/pulumi. Upstream's Node.js
# language host module (github.com/pulumi/pulumi/sdk/nodejs/cmd/
# pulumi-language-nodejs/v3) is refused by the Go module proxy here at every
# version, so a small language host of our own (tools/langhost/main.go) is
# built instead. It serves the same gRPC interface from the pinned sdk/v3 module
# and runs programs through the run script that ships in the @pulumi/pulumi npm
# package.
#
# Environment knobs:
#   PULUMI_VERSION            Go module version to build (default v3.274.1)
#   SWARMCLOUD_CACHE          cache root (default $HOME/.cache/swarmcloud)
#   SWARMCLOUD_ENGINE_IGNORE_PATH=1
#                             build/use our own engine even if pulumi is on PATH
#   PULUMI_NODEJS_SDK_DIR     a node_modules/@pulumi/pulumi directory whose
#                             pulumi-resource-pulumi-nodejs launcher to copy
#   GO                        the go command (default: go on PATH, else
#                             /usr/local/go/bin/go)
set -euo pipefail

PULUMI_VERSION="${PULUMI_VERSION:-v3.274.1}"
CACHE_ROOT="${SWARMCLOUD_CACHE:-$HOME/.cache/swarmcloud}"
ENGINE_DIR="$CACHE_ROOT/engine-$PULUMI_VERSION"
BIN_DIR="$ENGINE_DIR/bin"
REPO_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LAUNCHER=pulumi-resource-pulumi-nodejs

log() { printf 'engine.sh: %s\n' "$*" >&2; }

# is_ours PATH: true when PATH lies inside one of our cached engine dirs.
is_ours() {
	local dir root
	dir="$(cd "$(dirname "$1")" && pwd -P)"
	root="$(cd "$CACHE_ROOT" 2>/dev/null && pwd -P)" || return 1
	[[ "$dir" == "$root"/engine-*/bin ]]
}

# write_wrapper_module DIR: write the throw-away Go module the engine is built in:
# go.mod, tools.go and langhost/main.go (copied from tools/langhost/main.go,
# the language host's source). pkg/v3's own go.mod carries replace lines that
# only apply when it is the main module; the non-local ones are repeated here.
write_wrapper_module() {
	local dir=$1
	cat >"$dir/go.mod" <<EOF
module swarmcloud.local/engine

go 1.26

require (
	github.com/pulumi/pulumi/pkg/v3 $PULUMI_VERSION
	github.com/pulumi/pulumi/sdk/v3 $PULUMI_VERSION
)

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
EOF

	cat >"$dir/tools.go" <<'EOF'
//go:build tools

// Package tools pins the Pulumi CLI's main package in this wrapper module.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
EOF

	mkdir -p "$dir/langhost"
	cp "$REPO_ROOT/tools/langhost/main.go" "$dir/langhost/main.go"
}

# --wrapper-module DIR: only write the wrapper module into DIR (an existing,
# empty directory) and exit. tools/golint.sh vets the language host in it.
if [[ "${1:-}" == --wrapper-module ]]; then
	[[ -d "${2:-}" ]] || {
		log "usage: engine.sh --wrapper-module DIR (DIR must exist)"
		exit 2
	}
	write_wrapper_module "$2"
	exit 0
fi

# 1. Somebody else's pulumi is already on PATH: use it.
if [[ "${SWARMCLOUD_ENGINE_IGNORE_PATH:-0}" != 1 ]] &&
	existing="$(command -v pulumi 2>/dev/null)" && ! is_ours "$existing"; then
	log "using pulumi already on PATH: $existing"
	cd "$(dirname "$existing")" && pwd
	exit 0
fi

# install_launcher: put the dynamic provider launcher next to the engine. It is
# copied from an installed @pulumi/pulumi npm package when one can be found;
# otherwise an equivalent script is written (it resolves the package from the
# provider's working directory, the Pulumi project, at run time, just as the
# npm package's own launcher does).
install_launcher() {
	local sdk candidate
	sdk=""
	for candidate in "${PULUMI_NODEJS_SDK_DIR:-}" \
		"$REPO_ROOT/node_modules/@pulumi/pulumi" \
		"$REPO_ROOT"/*/node_modules/@pulumi/pulumi; do
		if [[ -n "$candidate" && -f "$candidate/$LAUNCHER" ]]; then
			sdk="$candidate"
			break
		fi
	done
	if [[ -n "$sdk" ]]; then
		cp "$sdk/$LAUNCHER" "$BIN_DIR/$LAUNCHER.tmp.$$"
		log "dynamic provider launcher copied from $sdk"
	else
		cat >"$BIN_DIR/$LAUNCHER.tmp.$$" <<'EOF'
#!/bin/sh
# Launches the Node.js dynamic resource provider from the @pulumi/pulumi
# package installed for the Pulumi project (the working directory).
script=$(node -e "console.log(require.resolve('@pulumi/pulumi/cmd/dynamic-provider'))") || exit 1
exec node "$script" "$@"
EOF
		log "dynamic provider launcher written (no node_modules/@pulumi/pulumi found yet)"
	fi
	chmod 0755 "$BIN_DIR/$LAUNCHER.tmp.$$"
	mv -f "$BIN_DIR/$LAUNCHER.tmp.$$" "$BIN_DIR/$LAUNCHER"
}

have_engine() {
	[[ -x "$BIN_DIR/pulumi" && -x "$BIN_DIR/pulumi-language-nodejs" ]]
}

# 2. Fast path: the cache is complete.
if have_engine; then
	[[ -x "$BIN_DIR/$LAUNCHER" ]] || install_launcher
	printf '%s\n' "$BIN_DIR"
	exit 0
fi

# 3. Build. One builder at a time per version; the others wait and reuse.
mkdir -p "$BIN_DIR"
exec 9>"$ENGINE_DIR/.lock"
if ! flock -n 9; then
	log "another build of $PULUMI_VERSION is running; waiting for it"
	flock 9
fi
if have_engine; then
	[[ -x "$BIN_DIR/$LAUNCHER" ]] || install_launcher
	printf '%s\n' "$BIN_DIR"
	exit 0
fi

if [[ -z "${GO:-}" ]]; then
	GO="$(command -v go 2>/dev/null || true)"
	[[ -n "$GO" ]] || GO=/usr/local/go/bin/go
fi
if [[ ! -x "$GO" ]] && ! command -v "$GO" >/dev/null 2>&1; then
	log "error: no go command found (set GO=/path/to/go)"
	exit 1
fi

WORK="$(mktemp -d /tmp/engine-build.XXXXXX)"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

log "building Pulumi engine $PULUMI_VERSION in $WORK (several minutes on a cold Go cache)"
start=$SECONDS

write_wrapper_module "$WORK"

cd "$WORK"
log "resolving modules (go mod tidy)"
"$GO" mod tidy >&2

STAGE="$WORK/bin"
mkdir -p "$STAGE"
log "compiling pulumi-language-nodejs"
"$GO" build -trimpath \
	-ldflags "-s -w -X main.version=${PULUMI_VERSION#v}" \
	-o "$STAGE/pulumi-language-nodejs" ./langhost >&2
log "compiling pulumi (the long part)"
"$GO" build -trimpath \
	-ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
	-o "$STAGE/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >&2

# Move the language host in first and the CLI last: the fast path needs both.
mv -f "$STAGE/pulumi-language-nodejs" "$BIN_DIR/pulumi-language-nodejs"
mv -f "$STAGE/pulumi" "$BIN_DIR/pulumi"
install_launcher
log "built in $((SECONDS - start))s: $("$BIN_DIR/pulumi" version)"
printf '%s\n' "$BIN_DIR"
