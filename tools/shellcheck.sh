#!/usr/bin/env bash
# Runs shellcheck on every shell script in the repo: tracked files plus untracked ones that
# .gitignore does not exclude. Fails if any script has a finding.
#   usage: bash tools/shellcheck.sh        (SHELLCHECK=/path/to/shellcheck to override)
set -euo pipefail

shellcheck_bin="${SHELLCHECK:-/usr/bin/shellcheck}"
if [[ ! -x "$shellcheck_bin" ]]; then
  shellcheck_bin="$(command -v shellcheck || true)"
fi
if [[ -z "$shellcheck_bin" ]]; then
  echo "shellcheck.sh: shellcheck not found; install it with: sudo apt-get install shellcheck" >&2
  exit 2
fi

cd "$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)"

# shellcheck source=repo-files.sh
source tools/repo-files.sh
scripts=()
repo_files scripts '*.sh'

if [[ ${#scripts[@]} -eq 0 ]]; then
  echo "shellcheck.sh: no *.sh files found"
  exit 0
fi

status=0
"$shellcheck_bin" -x --source-path=SCRIPTDIR -- "${scripts[@]}" || status=$?

if [[ $status -eq 0 ]]; then
  echo "shellcheck.sh: ${#scripts[@]} scripts checked, no findings"
else
  echo "shellcheck.sh: ${#scripts[@]} scripts checked, findings above (shellcheck exit $status)" >&2
fi
exit "$status"
