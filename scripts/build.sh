#!/usr/bin/env bash
# Configures and builds Mast into build/ (Release with debug info). Uses ccache across runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_BASEDIR="$PWD" CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}" CCACHE_MAXSIZE=5G
cmake -S . -B build -G Ninja -DMAST_TESTS=ON -DMAST_BENCH=ON >/dev/null
ninja -C build -j"$(nproc)" "$@"
