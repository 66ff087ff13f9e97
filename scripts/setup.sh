#!/usr/bin/env bash
# Installs everything ringcap needs to build, run and test on Debian 12 (run as root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

packages=(
  build-essential cmake ninja-build pkg-config git
  clang llvm lld bpftool libbpf-dev libxdp-dev xdp-tools libelf-dev zlib1g-dev
  linux-libc-dev libc6-dev-i386
  libsystemd-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev googletest
  libtomlplusplus-dev nlohmann-json3-dev libcurl4-openssl-dev libssl-dev
  iproute2 iputils-ping ethtool tcpdump tshark wireshark-common
  dbus systemd python3 jq
)

if [ "$(id -u)" -ne 0 ]; then
  echo "setup.sh: must run as root (it installs Debian packages)" >&2
  exit 1
fi

echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}"
