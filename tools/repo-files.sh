# Sourced by the lint scripts (not run on its own): lists the repository's files.
# shellcheck shell=bash

# repo_files ARRAY GLOB: fill ARRAY with the files matching GLOB that git tracks, plus untracked
# ones .gitignore does not exclude, sorted, each still present in the work tree. Run from the top.
repo_files() {
  local -n into=$1
  local file
  into=()
  while IFS= read -r -d '' file; do
    # ls-files -c still lists a tracked file that was deleted from the work tree.
    [[ -f "$file" ]] && into+=("$file")
  done < <(git ls-files -z -co --exclude-standard -- "$2" | sort -zu)
}
