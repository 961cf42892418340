#!/usr/bin/env bash
# Syscalls per request of mast-proxy (and HAProxy, and optionally a second mast-proxy binary) at
# one keep-alive connection: `strace -f -c` attached to the proxy while `wrk -c1` runs, divided by
# the requests wrk completed. Same topology as bench/run-anchors.sh (nginx origin, 100-byte body,
# one worker), on its own ports (28080..28085) so it can run beside a benchmark.
#   bench/syscalls-per-request.sh                      # build/bin/mast-proxy and HAProxy
#   ALT_BIN=build-uring/bin/mast-proxy ALT_NAME=mast-uring DUR=3 bench/syscalls-per-request.sh
# strace slows the proxy down a lot; the counts per request are what this measures, not time.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
anchors="${ANCHORS:-$root/../shared/bench/proxy-anchors}"
bin=$(realpath "${MAST_BIN:-build/bin/mast-proxy}")
DUR=${DUR:-3}
for b in nginx haproxy wrk strace; do
  command -v "$b" >/dev/null || { echo "missing $b" >&2; exit 1; }
done

work=$(mktemp -d)
mkdir -p "$work/logs" "$work/run"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

wait_port() {
  local i
  for i in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2
  return 1
}

sed -e 's/18080/28080/' "$anchors/conf/backend-nginx.conf" > "$work/backend.conf"
nginx -p "$work/" -e "$work/logs/backend.err" -c "$work/backend.conf" >/dev/null 2>&1 &
pids+=($!)
wait_port 28080

declare -A PID PORTS
start() {  # name port cmd...
  local name=$1 port=$2
  shift 2
  "$@" >"$work/logs/$name.out" 2>&1 &
  pids+=($!)
  PID[$name]=$!
  PORTS[$name]=$port
  wait_port "$port"
}
mastcfg() {  # port admin_port -> config path
  local f="$work/mast-$1.yaml"
  sed -e "s/port_value: 18083/port_value: $1/" -e "s/port_value: 19901/port_value: $2/" \
    -e 's/port_value: 18080/port_value: 28080/' "$root/bench/bootstrap.yaml" >"$f"
  echo "$f"
}
order=(mast)
start mast 28083 "$bin" -c "$(mastcfg 28083 29901)" --concurrency 1 -l error
if [ -n "${ALT_BIN:-}" ]; then
  order+=("${ALT_NAME:-mast-alt}")
  start "${ALT_NAME:-mast-alt}" 28085 "$(realpath "$ALT_BIN")" -c "$(mastcfg 28085 29905)" \
    --concurrency 1 -l error
fi
sed -e 's/18080/28080/; s/18082/28082/' "$anchors/conf/haproxy.cfg" >"$work/haproxy.cfg"
order+=(haproxy)
start haproxy 28082 haproxy -db -f "$work/haproxy.cfg"

printf '%-12s %8s %8s  %s\n' target requests sys/req "per request, by syscall (>= 0.05)"
for name in "${order[@]}"; do
  url="http://127.0.0.1:${PORTS[$name]}/"
  wrk -t1 -c1 -d1s "$url" >/dev/null  # warm the upstream connection
  strace -f -c -o "$work/$name.strace" -p "${PID[$name]}" 2>/dev/null &
  st=$!
  sleep 0.5
  reqs=$(wrk -t1 -c1 -d"${DUR}s" "$url" | awk '/requests in/{print $1}')
  kill -INT "$st"
  wait "$st" 2>/dev/null || true
  # strace -c table: % time, seconds, usecs/call, calls, [errors], syscall
  awk -v n="$reqs" -v name="$name" '
    /^[ ]*[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ {
      sc = $NF; calls = $4; err = (NF == 6) ? $5 : 0
      if (sc == "total") { total = calls; next }
      if (calls / n >= 0.05) {
        detail = detail sprintf(" %s=%.2f", sc, calls / n)
        if (err / n >= 0.05) detail = detail sprintf("(%.2f err)", err / n)
      }
    }
    END { printf "%-12s %8d %8.2f %s\n", name, n, total / n, detail }' "$work/$name.strace"
done
