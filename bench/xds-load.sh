#!/usr/bin/env bash
# mastd under N simulated sidecars (bench/xds_load): generates a mesh of SERVICES ServiceEntries
# with EPS WorkloadEntries each, starts mastd on it (loopback, OS-chosen ports), connects PROXIES
# simulated sidecars (mast-xds-load), then measures time to all-synced, mastd's RSS per proxy,
# VirtualService-change and endpoint-change convergence. RUNS fresh mastd runs; the table shows
# the median and the spread (min..max) of each figure. Bounded: every run has a deadline.
#
#   bench/xds-load.sh                           # 2000 proxies, 1000 services, 10000 endpoints
#   PROXIES=200 RUNS=1 bench/xds-load.sh        # quick look
#   SCOPE=1 bench/xds-load.sh                   # with a Sidecar (egress ./*) per namespace
#   PERF=1 RUNS=1 bench/xds-load.sh             # + perf record -g of mastd (perf.data in OUT)
#
# Environment: BUILD (build dir, default build), PROXIES, SERVICES, EPS, NAMESPACES, ROUTED_EVERY,
# RUNS, ROUNDS, SCOPE, DEADLINE (s per run), PHASE_TIMEOUT (s per phase: sync, each change),
# OUT (results dir, default a temp dir), PERF.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PROXIES=${PROXIES:-2000}
SERVICES=${SERVICES:-1000}
EPS=${EPS:-10}
NAMESPACES=${NAMESPACES:-20}
ROUTED_EVERY=${ROUTED_EVERY:-10}
RUNS=${RUNS:-3}
ROUNDS=${ROUNDS:-3}
SCOPE=${SCOPE:-0}
DEADLINE=${DEADLINE:-900}
PHASE_TIMEOUT=${PHASE_TIMEOUT:-120}
PERF=${PERF:-0}
OUT=${OUT:-$(mktemp -d /tmp/mast-xds-load.XXXXXX)}
mkdir -p "$OUT"

for b in mastd mast-xds-load; do
  [[ -x $BUILD/bin/$b ]] || { echo "missing $BUILD/bin/$b (ninja -C $BUILD $b)" >&2; exit 1; }
done
# Two file descriptors per connection at most, but leave room: raise to the hard limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

shape=(--services "$SERVICES" --endpoints-per-service "$EPS" --namespaces "$NAMESPACES"
       --routed-every "$ROUTED_EVERY")
[[ $SCOPE == 1 ]] && shape+=(--sidecar-scope)

MASTD_PID=
PERF_PID=
cleanup() {
  [[ -n $PERF_PID ]] && kill -INT "$PERF_PID" 2>/dev/null && wait "$PERF_PID" 2>/dev/null
  [[ -n $MASTD_PID ]] && kill "$MASTD_PID" 2>/dev/null && wait "$MASTD_PID" 2>/dev/null
  true
}
trap cleanup EXIT

"$BUILD/bin/mast-xds-load" generate --dir "$OUT/mesh" "${shape[@]}"
echo "mesh: $(find "$OUT/mesh" -name '*.yaml' | wc -l) files, $(du -sh "$OUT/mesh" | cut -f1) in $OUT/mesh"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo)," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"

for run in $(seq 1 "$RUNS"); do
  cfg="$OUT/config-$run"
  rm -rf "$cfg" && cp -r "$OUT/mesh" "$cfg"
  log="$OUT/mastd-$run.log"
  start=$(date +%s%N)
  "$BUILD/bin/mastd" --config-dir "$cfg" --xds-port 0 --http-port 0 -l info >"$log" 2>&1 &
  MASTD_PID=$!
  # mastd logs its ports once config is loaded and the model is built.
  for _ in $(seq 1 600); do
    grep -q 'ADS on' "$log" && break
    kill -0 "$MASTD_PID" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.1
  done
  ready=$(date +%s%N)
  line=$(grep -m1 'ADS on' "$log")
  xds=$(sed -E 's/.*ADS on ([0-9.]+:[0-9]+).*/\1/' <<<"$line")
  http=$(sed -E 's/.*HTTP API on ([0-9.]+:[0-9]+).*/\1/' <<<"$line")
  startup_ms=$(( (ready - start) / 1000000 ))
  echo "run $run: mastd pid $MASTD_PID, ADS $xds, HTTP $http, config loaded in ${startup_ms} ms"
  if [[ $PERF == 1 ]]; then
    perf record -g -o "$OUT/perf-$run.data" -p "$MASTD_PID" >/dev/null 2>&1 &
    PERF_PID=$!
  fi
  rc=0
  timeout --kill-after=10 "$((DEADLINE + 20))" "$BUILD/bin/mast-xds-load" run --xds "$xds" \
    --http "$http" --mastd-pid "$MASTD_PID" --proxies "$PROXIES" --rounds "$ROUNDS" \
    --deadline "$DEADLINE" --phase-timeout "$PHASE_TIMEOUT" --json "$OUT/result-$run.json" "${shape[@]}" || rc=$?
  if [[ -n $PERF_PID ]]; then kill -INT "$PERF_PID" 2>/dev/null; wait "$PERF_PID" 2>/dev/null || true; PERF_PID=; fi
  kill "$MASTD_PID" 2>/dev/null; wait "$MASTD_PID" 2>/dev/null || true
  MASTD_PID=
  [[ -f $OUT/result-$run.json ]] || echo "{\"exit_code\": $rc}" >"$OUT/result-$run.json"
  /usr/bin/python3 - "$OUT/result-$run.json" "$startup_ms" <<'EOF'
import json, sys
p = sys.argv[1]
r = json.load(open(p))
r["startup_ms"] = int(sys.argv[2])
json.dump(r, open(p, "w"))
EOF
  echo "run $run: exit $rc"
done

/usr/bin/python3 - "$OUT" "$RUNS" <<'EOF'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
rs = [json.load(open(f"{out}/result-{i}.json")) for i in range(1, runs + 1)]
def get(r, path):
    for k in path.split("."):
        if not isinstance(r, dict) or k not in r:
            return None
        r = r[k]
    return r
rows = [
    ("mastd startup (load + model)", "startup_ms", "ms"),
    ("time to all proxies synced", "all_synced_s", "s"),
    ("  per proxy p50", "connect.p50_ms", "ms"),
    ("  per proxy p99", "connect.p99_ms", "ms"),
    ("mastd RSS before proxies", "rss_before_mb", "MB"),
    ("mastd RSS with all proxies", "rss_after_mb", "MB"),
    ("mastd RSS peak during connect", "rss_peak_during_connect_mb", "MB"),
    ("memory per connected proxy", "mb_per_proxy", "MB"),
    ("VS change -> RDS ACK p50", "vs_change.p50_ms", "ms"),
    ("VS change -> RDS ACK p90", "vs_change.p90_ms", "ms"),
    ("VS change -> RDS ACK p99", "vs_change.p99_ms", "ms"),
    ("VS change -> RDS ACK max", "vs_change.max_ms", "ms"),
    ("endpoint change -> EDS ACK p50", "endpoint_change.p50_ms", "ms"),
    ("endpoint change -> EDS ACK p99", "endpoint_change.p99_ms", "ms"),
    ("endpoint change -> EDS ACK max", "endpoint_change.max_ms", "ms"),
]
print()
print(f"{'figure':34} {'median':>10} {'spread (min..max)':>22}")
for name, path, unit in rows:
    vals = [v for v in (get(r, path) for r in rs) if isinstance(v, (int, float)) and v >= 0]
    if not vals:
        print(f"{name:34} {'-':>10}")
        continue
    fmtv = (lambda v: f"{v:.3f}") if unit == "MB" and max(vals) < 10 else (lambda v: f"{v:.1f}")
    print(f"{name:34} {fmtv(statistics.median(vals)):>10} {unit:2} "
          f"{fmtv(min(vals)) + '..' + fmtv(max(vals)):>18}")
eds_only = all(get(r, "endpoint_change_eds_only") for r in rs)
codes = [r.get("exit_code") for r in rs]
print(f"\nendpoint-only change pushed EDS alone: {'yes' if eds_only else 'NO'}; exit codes {codes}")
print(f"results: {out}")
sys.exit(0 if all(c == 0 for c in codes) else 1)
EOF
