#!/usr/bin/env bash
# Installs everything Mast needs on a fresh Debian 12 machine (run as root). Idempotent.
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build ccache pkg-config git python3 python3-pytest
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libasio-dev libboost-dev libssl-dev openssl libnghttp2-dev nghttp2-client nghttp2-server
  libyaml-cpp-dev libre2-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libhttp-parser-dev liburing-dev
  python3-grpcio python3-protobuf python3-prometheus-client
  curl wrk nginx haproxy iproute2 iptables procps socat
  clang-14 libclang-rt-14-dev clang-format
)
missing=()
# npm fetches the xDS protos; the Debian package only when no npm is on the machine.
command -v npm >/dev/null 2>&1 || PKGS+=(nodejs npm)
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# nginx/haproxy are only used as benchmark anchors and test origins: never leave them running.
systemctl disable --now nginx haproxy >/dev/null 2>&1 || true
