#!/usr/bin/env bash
# Builds istiod (pilot-discovery) and the Istio agent (pilot-agent) the Istio
# integration tests run, from the Go module proxy only, into a cache outside
# the repository keyed by the pinned istio.io/istio version:
#
#   ${ASM_WASM_CACHE:-$HOME/.cache/asm-wasm-action}/istio/<version>/
#     pilot-discovery, pilot-agent   the binaries
#     crd-all.gen.yaml               Istio's CRDs (manifests/charts/base/files)
#     envoy_bootstrap_tmpl.json      the agent's bootstrap template (tools/packaging/common)
#
# Everything already in the cache is reused ("cached"). The version is pinned
# in the file `version` next to this script. Progress goes to stderr; stdout
# ends with one line the test helper reads:
#
#   istio=<cache dir>
#
# Environment: ASM_WASM_CACHE (cache root), BUILD_PROCS (parallel compile jobs,
# default 2).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${ASM_WASM_CACHE:-$HOME/.cache/asm-wasm-action}"
procs="${BUILD_PROCS:-2}"
version="$(tr -d ' \n' <"$here/version")"
module=istio.io/istio
out="$cache/istio/$version"

if ! command -v go >/dev/null 2>&1; then
  echo "istio/build.sh: Go is not installed; it is needed to build istiod and pilot-agent for the tests" >&2
  exit 1
fi

complete() {
  [[ -x "$out/pilot-discovery" && -x "$out/pilot-agent" && -s "$out/crd-all.gen.yaml" && -s "$out/envoy_bootstrap_tmpl.json" ]]
}

if complete; then
  echo "istio $version: cached ($out)" >&2
  echo "istio=$out"
  exit 0
fi

mkdir -p "$out"
# Several test workers may ask at once: one builds, the others wait and then
# find it cached.
exec {lock}>"$out.lock"
flock "$lock"
if complete; then
  echo "istio $version: cached ($out)" >&2
  echo "istio=$out"
  exit 0
fi

start=$SECONDS
echo "istio $version: downloading $module from the Go module proxy" >&2
src="$(GOFLAGS=-mod=mod go mod download -json "$module@$version" | awk -F'"' '$2 == "Dir" { print $4 }')"
if [[ -z "$src" || ! -d "$src" ]]; then
  echo "istio/build.sh: could not download $module@$version" >&2
  exit 1
fi
for pair in "manifests/charts/base/files/crd-all.gen.yaml:crd-all.gen.yaml" \
  "tools/packaging/common/envoy_bootstrap.json:envoy_bootstrap_tmpl.json"; do
  from="$src/${pair%%:*}" to="$out/${pair##*:}"
  if [[ ! -s "$from" ]]; then
    echo "istio/build.sh: $module@$version has no ${pair%%:*}" >&2
    exit 1
  fi
  cp "$from" "$to.tmp.$$" && mv -f "$to.tmp.$$" "$to"
done

tmp="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
for cmd in pilot-discovery pilot-agent; do
  if [[ -x "$out/$cmd" ]]; then
    echo "$cmd: cached" >&2
    continue
  fi
  echo "$cmd: building $module/pilot/cmd/$cmd (this takes a while the first time)" >&2
  t=$SECONDS
  CGO_ENABLED=0 GOMAXPROCS="$procs" GOBIN="$tmp" GOFLAGS="${GOFLAGS:-} -mod=mod" \
    nice -n 19 go install -p "$procs" -trimpath -ldflags='-s -w' "$module/pilot/cmd/$cmd@$version"
  mv -f "$tmp/$cmd" "$out/$cmd"
  echo "$cmd: built in $((SECONDS - t))s, $(du -h "$out/$cmd" | cut -f1)" >&2
done
echo "istio $version: ready in $((SECONDS - start))s ($out)" >&2
flock -u "$lock"
echo "istio=$out"
