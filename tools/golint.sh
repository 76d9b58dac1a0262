#!/usr/bin/env bash
# Checks the repo's Go source: gofmt on every Go file (tracked files plus untracked ones that
# .gitignore does not exclude), no function over 80 lines, then go vet on the language host
# (tools/langhost). Fails if a file is not gofmt-formatted, a function is too long or vet has
# a finding.
#   usage: bash tools/golint.sh        (GO=/path/to/go to override)
#
# The repo has no go.mod: tools/engine.sh builds the language host in a throw-away wrapper
# module. go vet needs that module context, so it runs in a fresh copy of the same wrapper
# module (engine.sh --wrapper-module), with the same requires and therefore the same module
# versions. GOFLAGS=-mod=mod lets go fill in go.sum; the modules come from the Go module cache,
# or from GOPROXY when the cache lacks them. Only the packages the language host imports are
# type-checked, not the Pulumi CLI.
set -euo pipefail

go_bin="${GO:-$(command -v go || true)}"
[[ -n "$go_bin" ]] || go_bin=/usr/local/go/bin/go
if ! go_bin="$(command -v "$go_bin")"; then
  echo "golint.sh: go not found; install Go or set GO=/path/to/go" >&2
  exit 2
fi
gofmt_bin="$("$go_bin" env GOROOT)/bin/gofmt"

cd "$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)"

# shellcheck source=repo-files.sh
source tools/repo-files.sh
files=()
repo_files files '*.go'

if [[ ${#files[@]} -eq 0 ]]; then
  echo "golint.sh: no *.go files found"
  exit 0
fi

unformatted="$("$gofmt_bin" -l -- "${files[@]}")"
if [[ -n "$unformatted" ]]; then
  echo "golint.sh: not gofmt-formatted (run: gofmt -w FILE):" >&2
  printf '  %s\n' "${unformatted//$'\n'/$'\n'  }" >&2
  exit 1
fi

# No function over 80 lines (CONTRIBUTING.md, Conventions; eslint checks the TypeScript). In
# gofmt-formatted Go a function that is not a one-liner starts with "func " and ends at the
# next line that starts with "}".
too_long="$(awk '
  FNR == 1 { start = 0 }
  /^func / && !/}$/ { start = FNR; head = $0 }
  /^}/ && start { if (FNR - start + 1 > 80) printf "  %s:%d: %d lines: %s\n", FILENAME, start, FNR - start + 1, head; start = 0 }
' "${files[@]}")"
if [[ -n "$too_long" ]]; then
  echo "golint.sh: functions over 80 lines (split them into small named functions):" >&2
  printf '%s\n' "$too_long" >&2
  exit 1
fi

module="$(mktemp -d /tmp/golint.XXXXXX)"
trap 'rm -rf "$module"' EXIT
bash tools/engine.sh --wrapper-module "$module"
# vet names files relative to the wrapper module; point them back at tools/langhost/.
if ! (
  cd "$module"
  GOFLAGS="$("$go_bin" env GOFLAGS) -mod=mod" "$go_bin" vet ./langhost 2>&1
) | sed 's|^langhost/|tools/langhost/|' >&2; then
  echo "golint.sh: go vet findings above" >&2
  exit 1
fi

echo "golint.sh: ${#files[@]} Go files formatted, functions under 80 lines, go vet clean"
