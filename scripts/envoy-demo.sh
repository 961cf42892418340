#!/usr/bin/env bash
# Envoy's demo from seed 003 on mast-proxy, offline.
# Installs dependencies, builds, starts a local HTTPS "www.envoyproxy.io" on :8443 and
# mast-proxy with examples/envoy-demo/envoy-demo.yaml (listener :10000, admin :9901 overridden to
# :9902 with --config-yaml, as the seed does), then shows it working. Ctrl-C stops everything.
# (README's main command is scripts/demo.sh: the Bookinfo mesh.)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then scripts/install-deps.sh; fi
scripts/build.sh mast-proxy
work=$(mktemp -d)
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=www.envoyproxy.io" \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
/usr/bin/python3 examples/envoy-demo/site.py 8443 "$work/cert.pem" "$work/key.pem" &
site=$!
build/bin/mast-proxy -c examples/envoy-demo/envoy-demo.yaml \
  --config-yaml "$(cat examples/envoy-demo/envoy-override.yaml)" &
proxy=$!
trap 'kill $proxy $site 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -sf http://127.0.0.1:9902/ready >/dev/null && break; sleep 0.1; done
echo "== curl -s http://127.0.0.1:10000 | grep -o '<title>.*</title>'"
curl -s http://127.0.0.1:10000 | grep -o "<title>.*</title>"
echo "== admin: http://127.0.0.1:9902 (stats, clusters, config_dump)"
curl -s http://127.0.0.1:9902/stats | grep -E "^http.ingress_http.downstream_rq_(total|2xx)"
echo "mast-proxy is serving on :10000 (admin :9902). Ctrl-C to stop."
wait $proxy
