#!/usr/bin/env python3
"""mast-proxy's memory per configured cluster (issue 2: 1,000 clusters cost <= 5 KB each).

    bench/cluster-memory.py [--counts 0,1000,5000] [--concurrency 1,2] [--reps 1]
    bench/cluster-memory.py --heaptrack OUT_DIR [--counts 1000] [--concurrency 1]

MAST_PROXY overrides the binary (default build/bin/mast-proxy).

For each worker count and cluster count N, writes bench/bootstrap.yaml's configuration (one
listener, router only, admin and listener on ports the OS picks) plus N STATIC clusters with one
endpoint each, starts build/bin/mast-proxy on it, waits until /ready answers LIVE, lets it
settle for a second, and reads VmRSS and the anonymous memory
(smaps_rollup) of the process. Prints the figures and KB per cluster against N=0.

--heaptrack runs each proxy under heaptrack and SIGKILLs it once it is ready, so that
`heaptrack_print --print-leaks` lists the allocations live at that moment (the kill stops
heaptrack from seeing them freed). The heaptrack files land in OUT_DIR.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROXY = os.environ.get("MAST_PROXY", os.path.join(ROOT, "build", "bin", "mast-proxy"))

HEAD = """admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
  - name: bench
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          generate_request_id: false
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: origin }
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  clusters:
"""

CLUSTER = """  - name: {name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.{a}, port_value: {port} }} }} }}
"""


def bootstrap(n):
    out = [HEAD, CLUSTER.format(name="origin", a=1, port=18080)]
    for i in range(n):
        # Names like an Istio outbound cluster's, endpoints spread over loopback addresses.
        name = f"outbound|{8000 + i % 1000}||svc-{i}.bench.svc.cluster.local"
        out.append(CLUSTER.format(name=name, a=1 + i % 250, port=9000 + i % 1000))
    return "".join(out)


def read_mem(pid):
    rss = anon = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Anonymous:"):
                anon = int(line.split()[1])
    return rss, anon


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


def find_proxy_pid(pid):
    """Under heaptrack the proxy is a child of heaptrack's shell wrapper."""
    for _ in range(100):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "mast-proxy":
                    return pid
        except OSError:
            return pid
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        for k in kids.split():
            found = find_proxy_pid(int(k))
            if found:
                return found
        time.sleep(0.1)
    return pid


def measure(n, conc, tmp, heaptrack_dir=None):
    cfg = os.path.join(tmp, f"bootstrap-{n}.yaml")
    with open(cfg, "w") as f:
        f.write(bootstrap(n))
    addr_path = os.path.join(tmp, f"admin-{n}-{conc}")
    if os.path.exists(addr_path):
        os.unlink(addr_path)
    cmd = [PROXY, "-c", cfg, "--concurrency", str(conc), "-l", "error",
           "--admin-address-path", addr_path]
    if heaptrack_dir:
        cmd = ["heaptrack", "-o", os.path.join(heaptrack_dir, f"mast-proxy-{n}-c{conc}")] + cmd
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        deadline = time.time() + 120
        while not os.path.exists(addr_path):
            if p.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"mast-proxy did not start (N={n}, exit {p.poll()})")
            time.sleep(0.1)
        with open(addr_path) as f:
            admin = f.read().strip()
        while True:
            try:
                # STATIC clusters are all built before the server goes LIVE. Nothing bigger
                # is asked of the admin: rendering /clusters or /stats for thousands of
                # clusters leaves its own garbage in the heap and would be measured too.
                if get(f"http://{admin}/ready").strip() == "LIVE":
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError(f"mast-proxy not ready (N={n})")
            time.sleep(0.2)
        time.sleep(1.0)
        pid = find_proxy_pid(p.pid)
        mem = read_mem(pid)
        if heaptrack_dir:
            os.kill(pid, signal.SIGKILL)
            p.wait(timeout=60)  # heaptrack finishes writing its file
        return mem
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--counts", default="0,1000,5000")
    ap.add_argument("--concurrency", default="1,2")
    ap.add_argument("--reps", type=int, default=1, help="median of this many starts")
    ap.add_argument("--heaptrack", metavar="OUT_DIR")
    a = ap.parse_args()
    if not os.access(PROXY, os.X_OK):
        sys.exit(f"{PROXY} missing: scripts/build.sh mast-proxy")
    counts = [int(x) for x in a.counts.split(",")]
    concs = [int(x) for x in a.concurrency.split(",")]
    if a.heaptrack:
        os.makedirs(a.heaptrack, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cluster-memory-") as tmp:
        print(f"{'workers':>7} {'clusters':>8} {'VmRSS KB':>9} {'anon KB':>8} "
              f"{'RSS KB/cl':>9} {'anon KB/cl':>10}")
        for conc in concs:
            base = None
            for n in counts:
                runs = sorted(measure(n, conc, tmp, a.heaptrack) for _ in range(a.reps))
                rss, anon = runs[len(runs) // 2]
                if base is None:
                    base = (n, rss, anon)
                per = ""
                if n != base[0]:
                    d = n - base[0]
                    per = f"{(rss - base[1]) / d:9.2f} {(anon - base[2]) / d:10.2f}"
                print(f"{conc:>7} {n:>8} {rss:>9} {anon:>8} {per}", flush=True)


if __name__ == "__main__":
    main()
