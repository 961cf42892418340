#!/usr/bin/env bash
# README's main command: the Bookinfo mesh on this machine (run as root).
# Installs dependencies, builds mastd, mastctl, mast-agent, mast-proxy and the Bookinfo app, then starts
# `mastctl demo up` (scripts/bookinfo_mesh.py): one network namespace per Bookinfo workload with its sidecar
# (iptables capture, mast-proxy as uid 1337), mastd and the ingress gateway in the hub namespace,
# Istio's Bookinfo YAML applied with mastctl. It checks productpage through the gateway, prints
# what to try, and keeps running until Ctrl-C, which removes everything it created.
# `scripts/demo.sh check` instead runs Istio's routing/fault tasks against it and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "demo.sh needs root (network namespaces, iptables)" >&2; exit 1; fi
scripts/install-deps.sh
scripts/build.sh mast-proxy mastd mastctl mast-agent bookinfo
exec build/bin/mastctl demo "${1:-up}"
