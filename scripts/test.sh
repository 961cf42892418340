#!/usr/bin/env bash
# README's test command: installs dependencies, builds, and runs every test
# (unit tests + fuzz-corpus replays via CTest, integration tests with real clients via pytest,
# and a short libFuzzer run of the codec and config-parsing fuzzers with clang).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then scripts/install-deps.sh; fi
scripts/build.sh
echo "== unit tests (ctest)"
(cd build && ctest -j"$(nproc)" --output-on-failure --timeout 300)
echo "== integration tests (pytest: curl, h2load, openssl, grpcio xDS peers, mastctl against build/bin)"
MAST_BIN="$PWD/build/bin" /usr/bin/python3 -m pytest -q -p no:cacheprovider test/integration
echo "== Bookinfo application tests (pytest)"
MAST_BIN="$PWD/build/bin" /usr/bin/python3 -m pytest -q -p no:cacheprovider apps/bookinfo
if [ "${MAST_SKIP_FUZZ:-0}" != 1 ]; then
  echo "== fuzz (libFuzzer, 20 s per target)"
  scripts/fuzz.sh 20
fi
