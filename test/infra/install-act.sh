#!/usr/bin/env bash
# Builds nektos/act (a local runner for GitHub Actions workflows) from the Go
# module proxy into a cache outside the repository, keyed by version and by
# the patch below, and reuses it when present. Prints its path.
#
# One small patch (test/infra/act/job-workflow-context.patch): act does not
# fill the job context's workflow_repository / workflow_sha / workflow_ref /
# workflow_file_path, which GitHub documents for the workflow file that
# defines the job; the reusable workflow checks out the action with them. The
# patch sets them for a job of a remote reusable workflow (repository, and the
# ref the caller named in place of a commit). Nothing else is changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="${ACT_VERSION:-v0.2.89}"
patch="$here/act/job-workflow-context.patch"
key="$version-$(sha256sum "$patch" | cut -c1-12)"
dir="${ASM_WASM_CACHE:-$HOME/.cache/asm-wasm-action}/act/$key"
if [ -x "$dir/act" ]; then
  echo "install-act: cached $dir/act" >&2
else
  if ! command -v go >/dev/null 2>&1; then
    echo "install-act: Go is needed to build act $version" >&2
    exit 1
  fi
  echo "install-act: building act $version (with $patch)" >&2
  src="$(GOFLAGS=-mod=mod go mod download -json "github.com/nektos/act@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cp -R "$src/." "$work/act"
  chmod -R u+w "$work/act"
  patch -s -d "$work/act" -p1 < "$patch"
  mkdir -p "$dir"
  (cd "$work/act" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w -X main.version=${version#v}" -o "$dir/act.tmp" .)
  mv "$dir/act.tmp" "$dir/act"
fi
echo "$dir/act"
