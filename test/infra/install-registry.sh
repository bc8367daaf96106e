#!/usr/bin/env bash
# Installs what the OCI integration tests need: docker-registry (distribution
# 2.8), skopeo, htpasswd (apache2-utils) and openssl. Idempotent: installs
# only what is missing. Exits non-zero, saying why, when it cannot.
set -euo pipefail

declare -A package_of=(
  [docker-registry]=docker-registry
  [skopeo]=skopeo
  [htpasswd]=apache2-utils
  [openssl]=openssl
)

missing=()
for program in docker-registry skopeo htpasswd openssl; do
  if ! command -v "$program" >/dev/null 2>&1; then
    missing+=("${package_of[$program]}")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-registry: docker-registry, skopeo, htpasswd and openssl are present"
  exit 0
fi

echo "install-registry: installing ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-registry: apt-get is not available; install ${missing[*]} by hand" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "install-registry: need root (or sudo) to install ${missing[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
if ! "${sudo[@]}" apt-get update -q >/tmp/install-registry-apt.log 2>&1; then
  echo "install-registry: apt-get update failed:" >&2
  tail -n 20 /tmp/install-registry-apt.log >&2
  exit 1
fi
if ! "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/install-registry-apt.log 2>&1; then
  echo "install-registry: apt-get install ${missing[*]} failed:" >&2
  tail -n 20 /tmp/install-registry-apt.log >&2
  exit 1
fi

for program in docker-registry skopeo htpasswd openssl; do
  if ! command -v "$program" >/dev/null 2>&1; then
    echo "install-registry: $program is still missing after installing ${missing[*]}" >&2
    exit 1
  fi
done
echo "install-registry: done"
