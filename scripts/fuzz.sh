#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 (build-fuzz/) and runs each for N seconds (default 60)
# starting from its committed corpus (and fuzz/NAME/NAME.dict when there is one). New crash inputs
# are left in build-fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
export CCACHE_BASEDIR="$PWD"
# config_fuzz links the xDS proto library of the main (g++) build instead of compiling the protos
# again with clang and sanitizers (see fuzz/config/CMakeLists.txt): make sure it is built.
scripts/build.sh mast_xds_pb >/dev/null
CC=clang-14 CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja -DMAST_FUZZ=ON -DMAST_TESTS=OFF \
  -DMAST_BENCH=OFF >/dev/null
targets=(http1_fuzz http2_fuzz config_fuzz grpc_frame_fuzz)
ninja -C build-fuzz -j"$(nproc)" "${targets[@]}"
mkdir -p build-fuzz/crashes
for t in "${targets[@]}"; do
  corpus="fuzz/${t%_fuzz}/corpus"
  work="build-fuzz/corpus-$t"
  dict="fuzz/${t%_fuzz}/${t%_fuzz}.dict"
  # -timeout: one input running longer than this is a finding (a hang), reported at once with
  # its input in build-fuzz/crashes/ instead of running on (yaml-cpp once looped forever).
  opts=(-rss_limit_mb=2048 -timeout=25)
  # config_fuzz: with leak detection on, its RSS reaches 2 GB within 40 s and libFuzzer then
  # spends minutes in its out-of-memory heap profile. With detect_leaks=0 it stays at ~560 MB
  # (28,000 inputs in 150 s, session 7), so the growth belongs to leak-detection mode; the
  # earlier multi-GB episodes were yaml-cpp loops, now rejected before yaml-cpp (src/base). So:
  # no leak report and no RSS limit, but a single allocation over 1 GB still fails the run, and
  # -timeout catches a loop.
  if [ "$t" = config_fuzz ]; then
    opts=(-rss_limit_mb=0 -malloc_limit_mb=1024 -detect_leaks=0 -timeout=25)
  fi
  if [ -f "$dict" ]; then opts+=(-dict="$dict"); fi
  mkdir -p "$work"
  echo "-- $t for ${secs}s"
  build-fuzz/fuzz/"$t" -max_total_time="$secs" "${opts[@]}" \
    -artifact_prefix=build-fuzz/crashes/ "$work" "$corpus" 2>&1 | tail -n 2
done
