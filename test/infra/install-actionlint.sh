#!/usr/bin/env bash
# Builds actionlint from the Go module proxy into a cache outside the
# repository, keyed by version, and reuses it when present. Prints its path.
set -euo pipefail
version="${ACTIONLINT_VERSION:-v1.7.12}"
dir="${ASM_WASM_CACHE:-$HOME/.cache/asm-wasm-action}/actionlint/$version"
if [ -x "$dir/actionlint" ]; then
  echo "install-actionlint: cached $dir/actionlint" >&2
else
  if ! command -v go >/dev/null 2>&1; then
    echo "install-actionlint: Go is needed to build actionlint $version" >&2
    exit 1
  fi
  echo "install-actionlint: building actionlint $version" >&2
  GOBIN="$dir" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@$version"
fi
echo "$dir/actionlint"
