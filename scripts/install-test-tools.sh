#!/usr/bin/env bash
# Installs the programs the test suite drives (Debian 12), when missing.
# Idempotent; needs root for apt-get. Without root it says what is missing
# and carries on: the tests that need those programs skip with a message.
set -euo pipefail

# command -> Debian package
declare -A PKG=(
  [ip]=iproute2 [ss]=iproute2 [ping]=iputils-ping [curl]=curl [nginx]=nginx-light
  [socat]=socat [tcpdump]=tcpdump [tshark]=tshark [ethtool]=ethtool
  [nft]=nftables [iperf3]=iperf3 [hping3]=hping3 [nsenter]=util-linux
  [slirp4netns]=slirp4netns [pasta]=passt [radvd]=radvd
)
missing=()
for cmd in "${!PKG[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${PKG[$cmd]}")
done
if ((${#missing[@]} == 0)); then
  echo "test tools: all present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "test tools: missing ${missing[*]}; not root, so not installing (tests that need them will skip)"
  exit 0
fi
echo "test tools: installing ${missing[*]}"
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "test tools: installed"
