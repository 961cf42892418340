#!/usr/bin/env bash
# Idle memory and threads of mast-proxy (issue 2: <= 15 MB idle), --concurrency 1:
#  static: bench/bootstrap.yaml;
#  xds:    an ADS bootstrap (the productpage sidecar's node) connected to mastd serving
#          examples/bookinfo, measured once the proxy is ready (config received and applied).
# Prints VmRSS, RssAnon, RssFile and Threads from /proc/PID/status after 2 s idle, RUNS times.
# Usage: bench/idle-rss.sh [PROXY] [MASTD] [RUNS]   (defaults: build/bin/..., 3)
# GDB=1: also print the top frames of every thread of the xDS-connected proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
PROXY=${1:-build/bin/mast-proxy}
MASTD=${2:-build/bin/mastd}
RUNS=${3:-3}
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$TMP"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
status() {
  grep -E '^(VmRSS|RssAnon|RssFile|Threads):' "/proc/$1/status" | tr -s ' \t' ' ' | tr '\n' ' '
  echo -n "threads: $(cat /proc/$1/task/*/comm | sort | uniq -c | awk '{print $2 " x" $1}' | paste -sd, -)"
}

for i in $(seq "$RUNS"); do
  "$PROXY" -c bench/bootstrap.yaml --concurrency 1 --log-level warn >"$TMP/static.log" 2>&1 &
  pid=$!
  sleep 2
  echo "static: $(status $pid)"
  kill $pid; wait $pid || true
done

XDS_PORT=$(free_port)
HTTP_PORT=$(free_port)
mkdir "$TMP/config"
for f in bookinfo-services bookinfo-gateway destination-rule-all virtual-service-all-v1; do
  cp "examples/bookinfo/$f.yaml" "$TMP/config/"
done
"$MASTD" --config-dir "$TMP/config" --mesh-config examples/bookinfo/mesh.yaml \
  --xds-port "$XDS_PORT" --http-port "$HTTP_PORT" >"$TMP/mastd.log" 2>&1 &
sleep 1
cat >"$TMP/xds.yaml" <<YAML
node:
  id: sidecar~127.0.0.20~productpage-v1.default~default.svc.cluster.local
  cluster: productpage.default
  metadata: { LABELS: { app: productpage, version: v1 }, NAMESPACE: default }
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [{ envoy_grpc: { cluster_name: xds-grpc } }]
  cds_config: { ads: {}, resource_api_version: V3 }
  lds_config: { ads: {}, resource_api_version: V3 }
static_resources:
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: xds-grpc
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $XDS_PORT } } } }] }]
YAML
for i in $(seq "$RUNS"); do
  rm -f "$TMP/admin"
  "$PROXY" -c "$TMP/xds.yaml" --concurrency 1 --log-level warn --admin-address-path "$TMP/admin" \
    >"$TMP/xds.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    [ -s "$TMP/admin" ] && curl -sf "http://$(cat "$TMP/admin")/ready" >/dev/null && break
    sleep 0.1
  done
  curl -sf "http://$(cat "$TMP/admin")/ready" >/dev/null || { echo "proxy not ready"; cat "$TMP/xds.log"; exit 1; }
  sleep 2
  [ -z "${GDB:-}" ] || gdb -p $pid -batch -ex 'thread apply all bt 3' 2>/dev/null | grep -E '^(Thread|#[0-9])'
  echo "xds:    $(status $pid) $(curl -s "http://$(cat "$TMP/admin")/clusters" | grep -c '::observability_name::') clusters"
  kill $pid; wait $pid || true
done
