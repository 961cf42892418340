#!/usr/bin/env python3
"""HTTP/2 and TLS keep-alive figures for mast-proxy next to nginx and HAProxy (issue 2).

    bench/run-h2-tls.py [--dur 5] [--reps 3]

Same shape as bench/run-anchors.sh: one nginx origin on 127.0.0.1:18080 (100-byte body), each
proxy with one worker forwarding to it with upstream keep-alive; proxies and origin pinned to
CPU 1, the load generator to CPU 0. Two scenarios per proxy:
  tls-h1  wrk -c32 over TLS 1.3 (ECDSA P-256), connections reused: per-request cost with record
          crypto, no handshakes after warm-up
  h2c     h2load -c32 -m10 with HTTP/2 prior knowledge (10 streams per connection)
CPU per request = the proxy's schedstat run time over the interval / requests completed.
Bounded: every load run stops by itself; every process started here is stopped at the end.
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("MAST_BIN", os.path.join(ROOT, "build", "bin"))
BODY = "0123456789" * 10
PROXY_CPU, LOAD_CPU = "1", "0"

procs = []


def start(args, log):
    p = subprocess.Popen(["taskset", "-c", PROXY_CPU, *args], stdout=open(log, "w"),
                         stderr=subprocess.STDOUT, start_new_session=True)
    procs.append(p)
    return p


def stop_all():
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=8)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def cpu_ns(pid):
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
            total += int(f.read().split()[0])
    return total


def pids_of(p):
    """The process and its children (nginx/haproxy workers)."""
    out = subprocess.run(["pgrep", "-g", str(os.getpgid(p.pid))], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def wait_port(port, tls=False, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                            "1", ("https" if tls else "http") + "://127.0.0.1:%d/" % port],
                           capture_output=True, text=True)
        if r.stdout == "200":
            return
        time.sleep(0.1)
    raise RuntimeError("port %d never answered 200" % port)


def measure(pids, load_cmd, parse):
    before = sum(cpu_ns(p) for p in pids)
    r = subprocess.run(["taskset", "-c", LOAD_CPU, *load_cmd], capture_output=True, text=True,
                       timeout=120)
    after = sum(cpu_ns(p) for p in pids)
    reqs, rps = parse(r.stdout)
    if not reqs:
        raise RuntimeError("no requests: " + r.stdout + r.stderr)
    return (after - before) / 1000.0 / reqs, rps


def parse_wrk(out):
    m = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return (int(m.group(1)) if m else 0), (float(rps.group(1)) if rps else 0.0)


def parse_h2load(out):
    m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    rps = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    return (int(m.group(1)) if m else 0), (float(rps.group(1)) if rps else 0.0)


def mast_bootstrap(crt, key):
    listener = """
  - name: %(name)s
    address: { socket_address: { address: 127.0.0.1, port_value: %(port)d } }
    filter_chains:
    - %(tls)s
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %(name)s
          generate_request_id: false
          route_config:
            virtual_hosts:
            - { name: all, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: origin } }] }
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
"""
    tls = ("""transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: ["http/1.1"]
            tls_certificates:
            - { certificate_chain: { filename: %s }, private_key: { filename: %s } }""" % (crt, key))
    return ("admin:\n  address: { socket_address: { address: 127.0.0.1, port_value: 19902 } }\n"
            "static_resources:\n  listeners:" +
            listener % {"name": "tls", "port": 18443, "tls": tls} +
            (listener % {"name": "h2c", "port": 18444, "tls": "{}"}).replace("- {}\n      filters", "- filters") +
            """  clusters:
  - name: origin
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: origin
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 18080 } } }
""")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dur", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mast-h2tls-")
    crt, key, pem = (os.path.join(work, n) for n in ("cert.pem", "key.pem", "combined.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True)
    with open(pem, "w") as f:
        f.write(open(crt).read() + open(key).read())
    for d in ("logs", "run"):
        os.makedirs(os.path.join(work, d))
    with open(os.path.join(work, "origin.conf"), "w") as f:
        f.write("""worker_processes 1; daemon off; pid run/origin.pid; error_log logs/origin.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  client_body_temp_path run/b; proxy_temp_path run/p; fastcgi_temp_path run/f; uwsgi_temp_path run/u; scgi_temp_path run/s;
  server { listen 127.0.0.1:18080; location / { default_type text/plain; return 200 "%s"; } } }
""" % BODY)
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        f.write("""worker_processes 1; daemon off; pid run/nginx.pid; error_log logs/nginx.err warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  client_body_temp_path run/b2; proxy_temp_path run/p2; fastcgi_temp_path run/f2; uwsgi_temp_path run/u2; scgi_temp_path run/s2;
  upstream origin { server 127.0.0.1:18080; keepalive 64; }
  server { listen 127.0.0.1:19443 ssl; ssl_certificate %s; ssl_certificate_key %s;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.0.1:19444 http2;
    location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
""" % (crt, key))
    with open(os.path.join(work, "haproxy.cfg"), "w") as f:
        f.write("""global
    nbthread 1
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    http-reuse always
frontend tls
    bind 127.0.0.1:20443 ssl crt %s alpn http/1.1
    default_backend origin
frontend h2c
    bind 127.0.0.1:20444 proto h2
    default_backend origin
backend origin
    server s1 127.0.0.1:18080
""" % pem)
    with open(os.path.join(work, "mast.yaml"), "w") as f:
        f.write(mast_bootstrap(crt, key))
    try:
        start(["nginx", "-p", work + "/", "-c", os.path.join(work, "origin.conf")],
              os.path.join(work, "logs", "origin.log"))
        targets = {
            "mast-proxy": (start([os.path.join(BIN, "mast-proxy"), "-c", os.path.join(work, "mast.yaml"),
                                  "--concurrency", "1", "-l", "error"],
                                 os.path.join(work, "logs", "mast.log")), 18443, 18444),
            "nginx": (start(["nginx", "-p", work + "/", "-c", os.path.join(work, "nginx.conf")],
                            os.path.join(work, "logs", "nginx.log")), 19443, 19444),
            "haproxy": (start(["haproxy", "-db", "-f", os.path.join(work, "haproxy.cfg")],
                              os.path.join(work, "logs", "haproxy.log")), 20443, 20444),
        }
        wait_port(18080)
        for name, (p, tls_port, h2_port) in targets.items():
            wait_port(tls_port, tls=True)
        results = {}
        for rep in range(a.reps):
            for name, (p, tls_port, h2_port) in targets.items():
                pids = pids_of(p)
                tls = measure(pids, ["wrk", "-t1", "-c32", "-d%ds" % a.dur,
                                     "https://127.0.0.1:%d/" % tls_port], parse_wrk)
                h2 = measure(pids, ["h2load", "-c32", "-m10", "-D", str(a.dur),
                                    "http://127.0.0.1:%d/" % h2_port], parse_h2load)
                results.setdefault(name, []).append((tls, h2))
                print("rep %d %-10s tls-h1 %.1f us/req %.0f rps | h2c %.1f us/req %.0f rps" %
                      (rep + 1, name, tls[0], tls[1], h2[0], h2[1]), flush=True)
        print("\n| target | TLS h1 keep-alive CPU µs/req | rps | h2c (c32 m10) CPU µs/req | rps |")
        print("|---|---|---|---|---|")
        for name, rs in results.items():
            med = lambda i, j: statistics.median(r[i][j] for r in rs)
            print("| %s | %.1f | %.0f | %.1f | %.0f |" % (name, med(0, 0), med(0, 1), med(1, 0),
                                                         med(1, 1)))
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
