#!/usr/bin/env bash
# Side-by-side benchmark: mast-proxy (router only, and with access log) next to nginx, HAProxy
# and direct, with ../shared/bench/proxy-anchors. Results land in bench/results/<timestamp>/.
# Knobs are the harness's (REPS, DUR, SCENARIOS, TLS_ANCHOR); e.g. REPS=3 DUR=10 bench/run-anchors.sh
# Ours:
#   MAST_BIN=path       the mast-proxy under test (default build/bin/mast-proxy)
#   ALT_BIN=path        a second mast-proxy binary measured in the same run (e.g. another build
#   ALT_NAME=name       tree, such as build-uring/bin/mast-proxy), listed as ALT_NAME (mast-alt)
#   ACCESS_LOG=0        skip the mast-log target (router plus access log)
#   EPOLL=1             also measure the same binary with MAST_IO_URING=0 (its epoll fallback),
#                       listed as mast-epoll
# e.g. ALT_BIN=build-uring/bin/mast-proxy ALT_NAME=mast-uring ACCESS_LOG=0 \
#        REPS=3 DUR=5 SCENARIOS="tp lat1 paced" TLS_ANCHOR=0 bench/run-anchors.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
anchors="${ANCHORS:-$root/../shared/bench/proxy-anchors}"
bin="${MAST_BIN:-$root/build/bin/mast-proxy}"
[ -x "$bin" ] || scripts/build.sh mast-proxy
bin=$(realpath "$bin")
targets=(-x "mast|18083|$bin -c $root/bench/bootstrap.yaml --concurrency 1 -l error")
if [ "${ACCESS_LOG:-1}" != 0 ]; then
  targets+=(-x "mast-log|18084|$bin -c $root/bench/bootstrap-accesslog.yaml --concurrency 1 -l error")
fi
if [ "${EPOLL:-0}" = 1 ]; then
  epollcfg=$(mktemp --suffix=.yaml)
  sed -e 's/port_value: 18083/port_value: 18086/' -e 's/port_value: 19901/port_value: 19906/' \
    "$root/bench/bootstrap.yaml" > "$epollcfg"
  targets+=(-x "mast-epoll|18086|env MAST_IO_URING=0 $bin -c $epollcfg --concurrency 1 -l error")
fi
if [ -n "${ALT_BIN:-}" ]; then
  alt=$(realpath "$ALT_BIN")
  [ -x "$alt" ] || { echo "ALT_BIN $ALT_BIN is not an executable" >&2; exit 1; }
  # Same bootstrap, listener and admin moved to free ports (the origin stays 18080).
  altcfg=$(mktemp --suffix=.yaml)
  sed -e 's/port_value: 18083/port_value: 18085/' -e 's/port_value: 19901/port_value: 19905/' \
    "$root/bench/bootstrap.yaml" > "$altcfg"
  [ "$(grep -c 'port_value: 19905\|port_value: 18085' "$altcfg")" = 2 ] ||
    { echo "bench/bootstrap.yaml: expected listener 18083 and admin 19901" >&2; exit 1; }
  targets+=(-x "${ALT_NAME:-mast-alt}|18085|$alt -c $altcfg --concurrency 1 -l error")
fi
work=$(mktemp -d)
cp -r "$anchors" "$work/"
TLS_ANCHOR=${TLS_ANCHOR:-0} "$work/proxy-anchors/run.sh" "${targets[@]}"
mkdir -p bench/results
cp -r "$work"/proxy-anchors/results/* bench/results/
echo "results copied to bench/results/"
