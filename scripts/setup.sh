#!/usr/bin/env bash
# Installs everything ringcap needs to build, run and test on Debian 12 (run as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(
  build-essential cmake ninja-build pkg-config git
  clang llvm lld bpftool libbpf-dev libxdp-dev xdp-tools libelf-dev zlib1g-dev
  linux-libc-dev libc6-dev-i386
  libsystemd-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev googletest
  libtomlplusplus-dev nlohmann-json3-dev libcurl4-openssl-dev libssl-dev libcpp-httplib-dev curl openssl
  iproute2 iputils-ping ethtool tcpdump tshark wireshark-common
  dbus systemd python3 python3-dbus jq debootstrap systemd-container
  nodejs awscli
  chromium
  netsniff-ng linux-perf python3-matplotlib
  libclang-rt-14-dev
  etcd-server etcd-client
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: must run as root (it installs Debian packages)" >&2
  exit 1
fi

echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}"

# The npm packages of the tests, at the versions pinned in their package-lock.json: the S3
# tests' server, @20minutes/s3rver (tests/s3), and the official cloudflare SDK that the gateway's
# tests call (tests/gateway/sdk). npm comes with the machine's Node.js when that is NodeSource's
# build (whose nodejs package conflicts with Debian's npm); Debian's npm is installed only where
# there is none.
root="$(cd "$(dirname "$0")/.." && pwd)"
# Both packages need Node.js 20 or newer (their "engines"); Debian 12's own nodejs is 18.
node_major=$(node --version 2>/dev/null | sed -n 's/^v\([0-9]*\)\..*/\1/p')
# Without it they are not installed (the demo needs none of them), and the tests that need
# them skip, which fails the suite under CI=true, naming what is missing.
node_tests_dirs=("$root/tests/s3" "$root/tests/gateway/sdk")
if [ -z "$node_major" ] || [ "$node_major" -lt 20 ]; then
  echo "setup.sh: WARNING: the tests' npm packages need Node.js 20 or newer; this machine has" \
    "$(node --version 2>/dev/null || echo none), so they are not installed. Install Node.js 20" \
    "(for example NodeSource's build for Debian 12) and run setup.sh again before the tests." >&2
  node_tests_dirs=()
fi
for node_tests in "${node_tests_dirs[@]}"; do
  [ -f "$node_tests/package.json" ] || continue
  if ! command -v npm >/dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends npm
  fi
  if [ -f "$node_tests/package-lock.json" ]; then
    npm ci --prefix "$node_tests" --no-audit --no-fund
  else
    npm install --prefix "$node_tests" --no-audit --no-fund
  fi
done
