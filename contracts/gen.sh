#!/usr/bin/env bash
# Rebuilds everything derived from contracts/src: the ABI and bytecode in contracts/artifacts
# and the Go bindings (contracts/<pkg>/<pkg>.go). Works from any directory.
set -euo pipefail

contracts="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$contracts")"

if [ ! -d "$contracts/node_modules" ]; then
  (cd "$contracts" && npm ci --no-audit --no-fund)
fi
(cd "$contracts" && node build.mjs)
(cd "$root" && go run ./contracts/internal/bindgen -artifacts contracts/artifacts -out contracts)
