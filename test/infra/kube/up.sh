#!/usr/bin/env bash
# Starts the tests' API server by hand (builds the binaries first if needed)
# and writes admin/deployer/nobody kubeconfigs to .asm-wasm/kube/ (or $1).
# Ctrl-C stops it. Use them with e.g.
#   kubectl --kubeconfig .asm-wasm/kube/deployer.kubeconfig get wasmplugins -A
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$repo"
out="$repo/.asm-wasm/kube-up"
rm -rf "$out"
# Node 20 does not run TypeScript: compile the two files next to the repo's
# node_modules, with the kube/ directory (build.sh, CRD) beside them.
npx tsc --outDir "$out" --rootDir test/infra --module nodenext --moduleResolution nodenext --target es2022 \
  --skipLibCheck --types node test/infra/kube-up.ts
ln -s "$repo/test/infra/kube" "$out/kube"
exec node "$out/kube-up.js" "${1:-$repo/.asm-wasm/kube}"
