#!/usr/bin/env bash
# npm run bench: compiles the TypeScript once, then runs the benchmark driver with node
# (numbers, not tests: see tests/e2e/bench.ts). Needs what the lab needs (root, docker.io, Go).
set -euo pipefail
cd "$(dirname "$0")/../.."
npx tsc -p tsconfig.json --outDir bin
exec node bin/tests/e2e/bench.js "$@"
