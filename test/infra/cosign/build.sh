#!/usr/bin/env bash
# Builds the real cosign the signing tests verify against (and sign with),
# from the Go module proxy only, into a cache outside the repository keyed by
# the version pinned in the file `version` next to this script:
#
#   ${ASM_WASM_CACHE:-$HOME/.cache/asm-wasm-action}/cosign/<version>/cosign
#
# A binary already in the cache is reused ("cached"). Progress goes to stderr;
# stdout is one line, the binary's path (scripts/test.sh exports it as COSIGN).
#
# Environment: ASM_WASM_CACHE (cache root), BUILD_PROCS (parallel compile jobs,
# default 2). GOPROXY is whatever the machine has.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${ASM_WASM_CACHE:-$HOME/.cache/asm-wasm-action}"
procs="${BUILD_PROCS:-2}"
version="$(tr -d ' \n' <"$here/version")"
module=github.com/sigstore/cosign/v3
out="$cache/cosign/$version"

if [[ -x "$out/cosign" ]]; then
  echo "cosign $version: cached ($out/cosign)" >&2
  echo "$out/cosign"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "cosign/build.sh: Go is not installed; it is needed to build cosign $version for the signing tests" >&2
  exit 1
fi

mkdir -p "$out"
# Several test workers may ask at once: one builds, the others wait and then
# find it cached.
exec {lock}>"$out.lock"
flock "$lock"
if [[ -x "$out/cosign" ]]; then
  echo "cosign $version: cached ($out/cosign)" >&2
  flock -u "$lock"
  echo "$out/cosign"
  exit 0
fi

tmp="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "cosign $version: building $module/cmd/cosign (this takes a while the first time)" >&2
start=$SECONDS
CGO_ENABLED=0 GOMAXPROCS="$procs" GOBIN="$tmp" GOFLAGS="${GOFLAGS:-} -mod=mod" \
  nice -n 19 go install -p "$procs" -trimpath -ldflags='-s -w' "$module/cmd/cosign@$version"
mv -f "$tmp/cosign" "$out/cosign"
echo "cosign $version: built in $((SECONDS - start))s, $(du -h "$out/cosign" | cut -f1)" >&2
flock -u "$lock"
echo "$out/cosign"
