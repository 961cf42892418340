#!/usr/bin/env bash
# Side-by-side benchmark: mast-proxy (router only, and with access log) next to nginx, HAProxy
# and direct, with ../shared/bench/proxy-anchors. Results land in bench/results/<timestamp>/.
# Knobs are the harness's (REPS, DUR, SCENARIOS, TLS_ANCHOR); e.g. REPS=3 DUR=10 bench/run-anchors.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
anchors="${ANCHORS:-$root/../shared/bench/proxy-anchors}"
[ -x build/bin/mast-proxy ] || scripts/build.sh mast-proxy
work=$(mktemp -d)
cp -r "$anchors" "$work/"
TLS_ANCHOR=${TLS_ANCHOR:-0} "$work/proxy-anchors/run.sh" \
  -x "mast|18083|$root/build/bin/mast-proxy -c $root/bench/bootstrap.yaml --concurrency 1 -l error" \
  -x "mast-log|18084|$root/build/bin/mast-proxy -c $root/bench/bootstrap-accesslog.yaml --concurrency 1 -l error"
mkdir -p bench/results
cp -r "$work"/proxy-anchors/results/* bench/results/
echo "results copied to bench/results/"
