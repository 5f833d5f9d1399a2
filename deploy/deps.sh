#!/usr/bin/env bash
# Installs the Debian packages P2C2R needs that are missing; idempotent.
# Works as root or through sudo; says what it installs.
set -euo pipefail
PKGS=(build-essential pkg-config protobuf-c-compiler libprotobuf-c-dev libzmq3-dev libczmq-dev
      libpq-dev libwebsockets-dev libjansson-dev libssl-dev zlib1g-dev libpng-dev libseccomp-dev
      postgresql python3 python3-websockets haproxy procps curl openssl
      clang libclang-rt-14-dev)
# tests/e2e/test_sdk_js.sh and test_dashboard.sh: web/ in headless Chromium
PKGS+=(chromium chromium-driver python3-selenium)
# the dashboard pages: Chart.js, served by the gateway as /vendor/chart.js/
PKGS+=(libjs-chart.js)
# tests/deploy: base images from Debian's archive where none can be pulled,
# `systemd-analyze verify` on the units, `promtool` on the Prometheus rules
PKGS+=(debootstrap systemd prometheus)
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "deps: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
