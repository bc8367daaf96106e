#!/usr/bin/env bash
# Builds the kube-apiserver and etcd binaries the integration tests run, from
# the Go module proxy only, into a cache outside the repository keyed by
# version:
#
#   ${ASM_WASM_CACHE:-$HOME/.cache/asm-wasm-action}/kube/<k8s-version>/kube-apiserver
#   ${ASM_WASM_CACHE:-$HOME/.cache/asm-wasm-action}/etcd/<etcd-version>/etcd
#
# A binary already in the cache is reused ("cached"). The versions are the ones
# pinned in apiserver/go.mod and etcd/go.mod next to this script; bump them
# there. Progress goes to stderr; stdout ends with two lines the test helper
# reads:
#
#   kube-apiserver=<path>
#   etcd=<path>
#
# Environment: ASM_WASM_CACHE (cache root), BUILD_PROCS (parallel compile jobs,
# default 2).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${ASM_WASM_CACHE:-$HOME/.cache/asm-wasm-action}"
procs="${BUILD_PROCS:-2}"

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: Go is not installed; it is needed to build kube-apiserver and etcd for the tests" >&2
  exit 1
fi

# The version a go.mod pins for a module path.
pinned() {
  local gomod="$1" module="$2" version
  version="$(awk -v m="$module" '$1 == m && $2 ~ /^v/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$gomod")"
  if [[ -z "$version" ]]; then
    echo "build.sh: $gomod does not pin $module" >&2
    exit 1
  fi
  echo "$version"
}

k8s_version="$(pinned "$here/apiserver/go.mod" k8s.io/kubernetes)"
etcd_version="$(pinned "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)"

# build <label> <module dir> <package> <output>
build() {
  local label="$1" dir="$2" pkg="$3" out="$4"
  if [[ -x "$out" ]]; then
    echo "$label: cached ($out)" >&2
    return
  fi
  mkdir -p "$(dirname "$out")"
  # Several test workers may ask at once: one builds, the others wait and then
  # find it cached.
  exec {lock}>"$out.lock"
  flock "$lock"
  if [[ -x "$out" ]]; then
    echo "$label: cached ($out)" >&2
    flock -u "$lock"
    return
  fi
  echo "$label: building $pkg (this takes a while the first time)" >&2
  local start=$SECONDS
  (
    cd "$dir"
    CGO_ENABLED=0 GOMAXPROCS="$procs" GOFLAGS="${GOFLAGS:-} -mod=readonly" \
      nice -n 19 go build -p "$procs" -trimpath -ldflags='-s -w' -o "$out.tmp.$$" "$pkg"
  )
  mv -f "$out.tmp.$$" "$out"
  echo "$label: built in $((SECONDS - start))s ($out)" >&2
  flock -u "$lock"
}

apiserver="$cache/kube/$k8s_version/kube-apiserver"
etcd="$cache/etcd/$etcd_version/etcd"
build "etcd $etcd_version" "$here/etcd" . "$etcd"
build "kube-apiserver $k8s_version" "$here/apiserver" k8s.io/kubernetes/cmd/kube-apiserver "$apiserver"

echo "kube-apiserver=$apiserver"
echo "etcd=$etcd"
