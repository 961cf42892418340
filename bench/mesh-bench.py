#!/usr/bin/env python3
"""The mesh on one machine, measured: client -> sidecar -> sidecar -> server (issue 4).

    bench/mesh-bench.py run [--duration 20] [--warmup 3] [--reps 3] [--rps 1000] [--conns 4]
    bench/mesh-bench.py demo-time [--reps 3]        # `mastctl demo up` -> first 200 on :8080
    bench/mesh-bench.py down                        # remove whatever an interrupted run left

`run` builds its own namespaces (never the demo's: mast-hub / mastbr0 / 10.44.0.0/24):
  mastb-hub     bridge mastbbr0 10.45.0.1/24; mastd (ADS :15010, API :15014)
  mastb-client  eth0 10.45.0.10; h2load; later mast-agent --capture + mast-proxy (uid 1337)
  mastb-server  eth0 10.45.0.20; nginx on :9080 answering a 1 KB body; later its sidecar
The service bench-server.default.svc.cluster.local is a MESH_INTERNAL ServiceEntry with VIP
10.97.0.20 (the namespaces' hosts files map the name to it). Each repetition measures the
direct path (client -> 10.45.0.20:9080, no sidecars, no capture), then starts both sidecars,
measures client -> bench-server:9080 (captured by the client's sidecar, inbound through the
server's), and stops the sidecars again (the agents remove their iptables rules).

Latency: h2load --log-file (one line per request: start, status, microseconds to the end of the
response), percentiles computed here. CPU: utime+stime of each mast-proxy (and mast-agent) from
/proc/PID/stat around the measured interval. RSS: VmRSS idle (sidecar ready, before any load)
and after the load.

Everything lives in network namespaces; the root namespace's network is never touched. Each
process started runs inside one of the three namespaces; cleanup (finally, atexit, SIGINT,
SIGTERM, and `down`) kills whatever runs in them and deletes them, which removes the veths, the
bridge and the iptables rules with them. Needs root, h2load (nghttp2-client) and nginx.
"""
import argparse
import atexit
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import bookinfo_mesh as bm  # noqa: E402  (sh, wait_for: plain helpers without module state)

BIN = os.environ.get("MAST_BIN", os.path.join(ROOT, "build", "bin"))
PREFIX = "mastb-"
HUB, CLIENT, SERVER = PREFIX + "hub", PREFIX + "client", PREFIX + "server"
NAMESPACES = [HUB, CLIENT, SERVER]
BRIDGE = "mastbbr0"
HUB_IP, CLIENT_IP, SERVER_IP = "10.45.0.1", "10.45.0.10", "10.45.0.20"
VIP = "10.97.0.20"
SERVICE = "bench-server"
FQDN = SERVICE + ".default.svc.cluster.local"
PORT = 9080
BODY = ("mast-mesh-bench " * 64)[:1024]

SERVICES_YAML = """\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: %(svc)s }
spec:
  hosts: [%(fqdn)s]
  addresses: [%(vip)s]
  ports: [{ number: %(port)d, name: http, protocol: HTTP }]
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: { labels: { app: %(svc)s } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: %(svc)s-v1 }
spec: { address: %(server_ip)s, labels: { app: %(svc)s, version: v1 }, serviceAccount: %(svc)s }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: bench-client-v1 }
spec: { address: %(client_ip)s, labels: { app: bench-client, version: v1 }, serviceAccount: bench-client }
""" % dict(svc=SERVICE, fqdn=FQDN, vip=VIP, port=PORT, server_ip=SERVER_IP, client_ip=CLIENT_IP)

NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid %(dir)s/nginx.pid;
error_log %(dir)s/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    server {
        listen %(port)d;
        default_type text/plain;
        location / { return 200 "%(body)s"; }
    }
}
"""

procs = []  # (name, Popen), all started inside one of NAMESPACES
WORK = None


def log(msg):
    print("[mesh-bench] " + msg, flush=True)


def sh(*args, ns=None, check=True, timeout=60):
    return bm.sh(*args, ns=ns, check=check, timeout=timeout)  # bounded, unlike the demo's


def start(name, args, ns):
    out = open(os.path.join(WORK, name + ".log"), "a")
    p = subprocess.Popen(["ip", "netns", "exec", ns, *map(str, args)], stdout=out,
                         stderr=subprocess.STDOUT, start_new_session=True)
    procs.append((name, p))
    return p


def stop(name, timeout=10):
    """SIGTERM one started process group (the agent then removes its capture), SIGKILL if slow."""
    for n, p in list(procs):
        if n != name:
            continue
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            except ProcessLookupError:
                pass
        procs.remove((n, p))


def down():
    for name, _ in reversed(list(procs)):
        stop(name, timeout=8)
    bm.remove_namespaces(NAMESPACES)


def network():
    sh("ip", "netns", "add", HUB)
    sh("ip", "link", "set", "lo", "up", ns=HUB)
    sh("ip", "link", "add", BRIDGE, "type", "bridge", ns=HUB)
    sh("ip", "addr", "add", HUB_IP + "/24", "dev", BRIDGE, ns=HUB)
    sh("ip", "link", "set", BRIDGE, "up", ns=HUB)
    hosts = "127.0.0.1 localhost\n%s %s %s.default %s\n" % (VIP, SERVICE, SERVICE, FQDN)
    for i, (ns, ip) in enumerate([(CLIENT, CLIENT_IP), (SERVER, SERVER_IP)]):
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
        # Created inside the hub namespace, so no interface ever appears in the root namespace.
        sh("ip", "link", "add", "vb%d" % i, "type", "veth", "peer", "name", "eth0", "netns", ns, ns=HUB)
        sh("ip", "link", "set", "vb%d" % i, "master", BRIDGE, "up", ns=HUB)
        sh("ip", "addr", "add", ip + "/24", "dev", "eth0", ns=ns)
        sh("ip", "link", "set", "eth0", "up", ns=ns)
        sh("ip", "route", "add", "default", "via", HUB_IP, ns=ns)
        os.makedirs("/etc/netns/" + ns, exist_ok=True)
        with open("/etc/netns/%s/hosts" % ns, "w") as f:
            f.write(hosts)


def ns_inode(ns):
    return os.stat("/run/netns/" + ns).st_ino


def pids_named(ns, comm):
    """PIDs of processes called `comm` whose network namespace is `ns`."""
    ino, out = ns_inode(ns), []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % d) as f:
                if f.read().strip() != comm:
                    continue
            if os.stat("/proc/%s/ns/net" % d).st_ino == ino:
                out.append(int(d))
        except OSError:
            pass
    return out


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def cpu_totals():
    """Machine-wide (busy, steal, total) jiffies from /proc/stat's cpu line."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    steal = v[7] if len(v) > 7 else 0
    total = sum(v[:8])
    return total - idle - steal, steal, total


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def sidecar_pids():
    out = {}
    for side, ns in (("client", CLIENT), ("server", SERVER)):
        proxy, agent = pids_named(ns, "mast-proxy"), pids_named(ns, "mast-agent")
        if len(proxy) != 1 or len(agent) != 1:
            raise RuntimeError("%s: expected one mast-proxy and one mast-agent, found %s / %s"
                               % (ns, proxy, agent))
        with open("/proc/%d/status" % proxy[0]) as f:
            uid = [l.split()[1] for l in f if l.startswith("Uid:")][0]
        if uid != "1337":
            raise RuntimeError("%s: mast-proxy runs as uid %s, not 1337" % (ns, uid))
        out[side] = {"proxy": proxy[0], "agent": agent[0]}
    return out


def percentile(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    k = (len(sorted_vals) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def h2load(url, duration, rps, conns, logfile=None):
    args = ["h2load", "--h1", "-c", conns, "--rps", "%g" % (rps / conns), "-D", duration]
    if logfile:
        args += ["--log-file", logfile]
    r = sh(*args, url, ns=CLIENT, check=False, timeout=duration + 60)
    if r.returncode != 0:
        raise RuntimeError("h2load failed (%d): %s%s" % (r.returncode, r.stdout, r.stderr))
    return r.stdout


def measure(label, url, a, pids=None):
    """Warm up, then one measured h2load run; CPU and RSS of the sidecars around it."""
    h2load(url, a.warmup, a.rps, a.conns)
    logfile = os.path.join(WORK, "%s.tsv" % label)
    before = {}
    if pids:
        before = {(s, k): cpu_seconds(p) for s, d in pids.items() for k, p in d.items()}
    m0 = cpu_totals()
    t0 = time.monotonic()
    out = h2load(url, a.duration, a.rps, a.conns, logfile)
    wall = time.monotonic() - t0
    m1 = cpu_totals()
    dt = max(1, m1[2] - m0[2])
    # Whole machine during the interval: busy and stolen share of its CPUs (2 vCPU: 100% = both).
    res = {"wall": wall, "busy": (m1[0] - m0[0]) / dt, "steal": (m1[1] - m0[1]) / dt}
    if pids:
        if sidecar_pids() != pids:
            raise RuntimeError("a mast-proxy or mast-agent was restarted during the measurement "
                               "(agent logs in %s)" % WORK)
        res["cpu"] = {key: cpu_seconds(pids[key[0]][key[1]]) - v for key, v in before.items()}
        res["rss_loaded"] = {s: rss_mb(d["proxy"]) for s, d in pids.items()}
    lat, errors = [], 0
    with open(logfile) as f:
        for line in f:
            cols = line.split("\t")
            if len(cols) < 3:
                continue
            if cols[1] != "200":
                errors += 1
                continue
            lat.append(int(cols[2]))
    lat.sort()
    res["n"], res["errors"] = len(lat), errors
    res["rps"] = len(lat) / a.duration
    for line in out.splitlines():  # "finished in 20.00s, 1000.00 req/s, 1.07MB/s"
        if line.startswith("finished in"):
            res["rps"] = float(line.split(",")[1].split()[0])
    for q in (0.5, 0.9, 0.99):
        res["p%d" % round(q * 100)] = percentile(lat, q) / 1000.0  # ms
    return res


def start_sidecars(a, rep):
    agent = os.path.join(BIN, "mast-agent")
    for side, ns, ip, app in (("client", CLIENT, CLIENT_IP, "bench-client"),
                              ("server", SERVER, SERVER_IP, SERVICE)):
        start("agent-%s-%d" % (side, rep), [agent, "proxy", "sidecar", "--discovery-address", HUB_IP + ":15010",
                                "--workload", "%s-v1.default" % app, "--ip", ip,
                                "--labels", "app=%s,version=v1" % app, "--service-account", app,
                                "--concurrency", a.concurrency, "--drain-time-s", "1",
                                "--capture", "--work-dir", os.path.join(WORK, side)]
              + (["--proxy-bin", a.proxy_bin] if a.proxy_bin else []), ns)
    for ns in (CLIENT, SERVER):
        r = sh(agent, "wait", "--timeout", "60s", ns=ns, check=False, timeout=90)
        if r.returncode != 0:
            raise RuntimeError("sidecar in %s not ready: %s%s (logs in %s)" % (ns, r.stdout, r.stderr, WORK))
    # Ready means listeners and clusters are acked; the endpoint of the server may land a moment
    # later, so wait for a 200 through both sidecars before measuring anything.
    bm.wait_for("200 through both sidecars", lambda: sh(
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2",
        "http://%s:%d/" % (SERVICE, PORT), ns=CLIENT, check=False).stdout == "200", 30)


def proxy_exits(side, rep):
    """Exit codes of mast-proxy that its agent logged (crashes, restarts, the final exit)."""
    codes = []
    with open(os.path.join(WORK, "agent-%s-%d.log" % (side, rep))) as f:
        for line in f:
            if "mast-proxy" in line and "exited with code" in line:
                codes.append(int(line.split("exited with code")[1].split(";")[0].split()[0]))
    return codes


def stop_sidecars(rep):
    """Stop both agents; returns the non-zero exit codes of their proxies (crash at shutdown)."""
    stop("agent-client-%d" % rep)
    stop("agent-server-%d" % rep)
    bad = {side: [c for c in proxy_exits(side, rep) if c != 0] for side in ("client", "server")}
    for ns in (CLIENT, SERVER):
        left = pids_named(ns, "mast-proxy") + pids_named(ns, "mast-agent")
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        nat = sh("iptables-save", "-t", "nat", ns=ns, check=False).stdout
        if "REDIRECT" in nat:
            raise RuntimeError("capture rules left in %s after the agent stopped:\n%s" % (ns, nat))
    return {side: codes for side, codes in bad.items() if codes}


def fmt_spread(vals, unit_fmt="%.3f"):
    med = statistics.median(vals)
    if len(vals) == 1:
        return unit_fmt % med
    return (unit_fmt + " (" + unit_fmt + "–" + unit_fmt + ")") % (med, min(vals), max(vals))


def run(a):
    global WORK
    for tool in ("h2load", "nginx", "curl", "iptables-save"):
        if not shutil.which(tool):
            sys.exit("mesh-bench: %s is missing (apt-get install nghttp2-client nginx curl iptables)" % tool)
    for b in ("mastd", "mastctl", "mast-agent", "mast-proxy"):
        if not os.access(os.path.join(BIN, b), os.X_OK):
            sys.exit("mesh-bench: %s/%s is missing (scripts/build.sh %s)" % (BIN, b, b))
    proxy = a.proxy_bin or os.path.join(BIN, "mast-proxy")
    with open(proxy, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    log("mast-proxy: %s (built %s UTC, sha256 %s)" % (
        proxy, time.strftime("%Y-%m-%d %H:%M", time.gmtime(os.stat(proxy).st_mtime)), digest))
    WORK = tempfile.mkdtemp(prefix="mast-mesh-bench.")
    os.chmod(WORK, 0o755)  # mast-proxy runs as uid 1337 and reads its bootstrap from here
    log("logs and request logs in " + WORK)
    down()
    network()
    cfg = os.path.join(WORK, "config")
    os.makedirs(cfg)
    with open(os.path.join(cfg, "bench-services.yaml"), "w") as f:
        f.write(SERVICES_YAML)
    start("mastd", [os.path.join(BIN, "mastd"), "--config-dir", cfg, "--listen-address", "0.0.0.0",
                    "--debounce-after", "50", "-l", "warning"], HUB)
    bm.wait_for("mastd", lambda: sh(os.path.join(BIN, "mastctl"), "proxy-status", ns=HUB,
                                    check=False).returncode == 0, 20)
    ngx = os.path.join(WORK, "nginx")
    os.makedirs(ngx)
    with open(os.path.join(ngx, "nginx.conf"), "w") as f:
        f.write(NGINX_CONF % dict(dir=ngx, port=PORT, body=BODY))
    start("nginx", ["nginx", "-p", ngx, "-e", os.path.join(ngx, "nginx-error.log"),
                    "-c", os.path.join(ngx, "nginx.conf")], SERVER)
    direct_url = "http://%s:%d/" % (SERVER_IP, PORT)
    mesh_url = "http://%s:%d/" % (SERVICE, PORT)
    bm.wait_for("nginx", lambda: sh("curl", "-s", "--max-time", "2", direct_url, ns=CLIENT,
                                    check=False).stdout == BODY, 10)
    results = []
    for rep in range(1, a.reps + 1):
        log("rep %d/%d: direct %s, %d s at %d rps over %d connections" % (
            rep, a.reps, direct_url, a.duration, a.rps, a.conns))
        d = measure("direct-%d" % rep, direct_url, a)
        start_sidecars(a, rep)
        pids = sidecar_pids()
        # Idle cost: both sidecars ready, no traffic, for a few seconds.
        c0, t0 = {s: cpu_seconds(x["proxy"]) for s, x in pids.items()}, time.monotonic()
        time.sleep(a.idle)
        idle_cpu = {s: (cpu_seconds(x["proxy"]) - c0[s]) / (time.monotonic() - t0) for s, x in pids.items()}
        idle = {s: rss_mb(x["proxy"]) for s, x in pids.items()}
        agent_rss = {s: rss_mb(x["agent"]) for s, x in pids.items()}
        log("rep %d/%d: mesh %s (client sidecar -> server sidecar -> nginx)" % (rep, a.reps, mesh_url))
        m = measure("mesh-%d" % rep, mesh_url, a, pids)
        m["rss_idle"], m["agent_rss"], m["idle_cpu"] = idle, agent_rss, idle_cpu
        crashed = stop_sidecars(rep)
        if crashed:
            log("warning: mast-proxy exit codes at shutdown (SIGTERM): %s (134 = abort)" % crashed)
        m["shutdown_exits"] = crashed
        results.append((d, m))
        per_k = m["rps"] / 1000.0
        log("rep %d: direct p50/p90/p99 %.3f/%.3f/%.3f ms, mesh %.3f/%.3f/%.3f ms, %.0f rps, "
            "errors %d/%d; proxy vCPU per 1k rps client %.4f server %.4f" % (
                rep, d["p50"], d["p90"], d["p99"], m["p50"], m["p90"], m["p99"], m["rps"],
                d["errors"], m["errors"], m["cpu"][("client", "proxy")] / m["wall"] / per_k,
                m["cpu"][("server", "proxy")] / m["wall"] / per_k))
    report(results, a)
    if not a.keep:
        shutil.rmtree(WORK, ignore_errors=True)


def report(results, a):
    def col(f):
        return [f(d, m) for d, m in results]

    rows = []
    for q in ("p50", "p90", "p99"):
        rows.append(("direct %s (ms)" % q, col(lambda d, m, q=q: d[q]), "%.3f"))
        rows.append(("mesh %s (ms)" % q, col(lambda d, m, q=q: m[q]), "%.3f"))
        rows.append(("added %s (ms)" % q, col(lambda d, m, q=q: m[q] - d[q]), "%+.3f"))
    rows.append(("achieved rps direct / mesh", None, None))
    rows.append(("machine busy during direct (% of all CPUs)", col(lambda d, m: 100 * d["busy"]), "%.0f"))
    rows.append(("machine busy during mesh (% of all CPUs)", col(lambda d, m: 100 * m["busy"]), "%.0f"))
    rows.append(("steal, worse of direct and mesh (%)", col(lambda d, m: 100 * max(d["steal"], m["steal"])), "%.1f"))
    for side in ("client", "server"):
        rows.append(("%s mast-proxy vCPU per 1k rps" % side,
                     col(lambda d, m, s=side: m["cpu"][(s, "proxy")] / m["wall"] / (m["rps"] / 1000.0)),
                     "%.4f"))
        rows.append(("%s mast-proxy vCPU idle (no traffic)" % side,
                     col(lambda d, m, s=side: m["idle_cpu"][s]), "%.4f"))
        rows.append(("%s mast-agent vCPU per 1k rps" % side,
                     col(lambda d, m, s=side: m["cpu"][(s, "agent")] / m["wall"] / (m["rps"] / 1000.0)),
                     "%.4f"))
        rows.append(("%s mast-proxy RSS idle (MB)" % side, col(lambda d, m, s=side: m["rss_idle"][s]), "%.1f"))
        rows.append(("%s mast-proxy RSS loaded (MB)" % side, col(lambda d, m, s=side: m["rss_loaded"][s]), "%.1f"))
        rows.append(("%s mast-agent RSS (MB)" % side, col(lambda d, m, s=side: m["agent_rss"][s]), "%.1f"))
    print()
    print("| measure (median of %d; min–max) | value |" % len(results))
    print("|---|---|")
    for name, vals, f in rows:
        if vals is None:
            print("| %s | %s / %s |" % (name, fmt_spread(col(lambda d, m: d["rps"]), "%.0f"),
                                        fmt_spread(col(lambda d, m: m["rps"]), "%.0f")))
            continue
        print("| %s | %s |" % (name, fmt_spread(vals, f)))
    errs = sum(d["errors"] + m["errors"] for d, m in results)
    print("\n%d requests measured per path per repetition (~%d s each), %d non-200 responses" % (
        results[0][1]["n"], a.duration, errs))
    crashes = [m["shutdown_exits"] for d, m in results if m["shutdown_exits"]]
    if crashes:
        print("mast-proxy did not exit cleanly on SIGTERM in %d of %d repetitions: %s" % (
            len(crashes), len(results), crashes))
    p90 = statistics.median(col(lambda d, m: m["p90"] - d["p90"]))
    cpu = max(statistics.median(col(lambda d, m, s=s: m["cpu"][(s, "proxy")] / m["wall"] / (m["rps"] / 1000.0)))
              for s in ("client", "server"))
    print("goal <= 0.05 vCPU per 1k rps per sidecar: worst sidecar %.4f -> %s" % (
        cpu, "met" if cpu <= 0.05 else "missed by %.4f (x%.2f)" % (cpu - 0.05, cpu / 0.05)))
    print("goal added p90 well under Istio 1.20's +0.228 ms: %+.3f ms (%.0f%% of it)" % (p90, 100 * p90 / 0.228))


def demo_time(a):
    """`mastctl demo up` until the first 200 on 127.0.0.1:8080/productpage from the root namespace."""
    existing = sh("ip", "netns", "list", check=False).stdout.split()
    if "mast-hub" in existing:
        sys.exit("mesh-bench: a Bookinfo demo is already running (mast-hub exists); not touching it")
    busy = subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", "1", "http://127.0.0.1:8080/"])
    if busy.returncode != 7:  # 7: connection refused, i.e. nobody listens there
        sys.exit("mesh-bench: something already answers on 127.0.0.1:8080; not starting the demo")
    bindir = tempfile.mkdtemp(prefix="mast-mesh-bench-bin.")
    workdir = tempfile.mkdtemp(prefix="mast-mesh-bench-demo.")
    os.chmod(workdir, 0o755)  # the demo's proxies (uid 1337) read their bootstraps from here
    os.chmod(bindir, 0o755)
    # The demo needs build/bin/bookinfo; when the lead's tree has it elsewhere, link it beside.
    for b in ("mastd", "mastctl", "mast-agent", "mast-proxy", "bookinfo"):
        src = os.path.join(BIN, b)
        if not os.path.exists(src):
            alt = [os.path.join(ROOT, d, "bin", b) for d in sorted(os.listdir(ROOT))
                   if d.startswith("build") and os.path.exists(os.path.join(ROOT, d, "bin", b))]
            if not alt:
                sys.exit("mesh-bench: %s not found in %s or any build*/bin" % (b, BIN))
            src = alt[0]
            log("%s taken from %s" % (b, src))
        if b == "mast-proxy" and a.proxy_bin:
            src = a.proxy_bin
        if b == "mast-agent" and a.proxy_bin:
            # mast-agent runs the mast-proxy found beside its own (resolved) executable, and the
            # demo passes no --proxy-bin: a copy of the agent here makes it pick the chosen one.
            shutil.copy2(src, os.path.join(bindir, b))
            continue
        os.symlink(src, os.path.join(bindir, b))
    # The demo empties its MAST_DEMO_DIR at start, so it gets a directory of its own.
    env = dict(os.environ, MAST_BIN=bindir, MAST_DEMO_DIR=os.path.join(workdir, "demo"),
               PYTHONUNBUFFERED="1")
    lines = []  # (seconds since start, line) of the demo's output

    def reader(stream, logf):
        for line in stream:
            lines.append((time.monotonic() - t0, line.rstrip("\n")))
            logf.write("%7.2f %s" % (lines[-1][0], line))
            logf.flush()

    logf = open(os.path.join(workdir, "demo-up.log"), "w")
    t0 = time.monotonic()
    p = subprocess.Popen([os.path.join(BIN, "mastctl"), "demo", "up"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env, text=True, start_new_session=True)
    th = threading.Thread(target=reader, args=(p.stdout, logf), daemon=True)
    th.start()
    first = None
    try:
        while time.monotonic() - t0 < a.timeout and p.poll() is None:
            code = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                   "--max-time", "2", "http://127.0.0.1:8080/productpage"],
                                  capture_output=True, text=True).stdout
            if code == "200":
                first = time.monotonic() - t0
                break
            time.sleep(0.05)
        # Let the demo finish its start-up (it logs "Bookinfo is up") before stopping it.
        deadline = time.monotonic() + 15
        while first is not None and time.monotonic() < deadline and p.poll() is None and \
                not any("Bookinfo is up" in l for _, l in lines):
            time.sleep(0.1)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)  # the demo's own Ctrl-C path removes its namespaces
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        th.join(5)
        logf.close()
        left = [n for n in sh("ip", "netns", "list", check=False).stdout.split() if n.startswith("mast-")]
        shutil.rmtree(bindir, ignore_errors=True)
    if first is None:
        sys.exit("mesh-bench: no 200 within %d s (demo exit %s; log %s/demo-up.log)" % (
            a.timeout, p.returncode, workdir))
    for t, l in lines:
        if l.startswith(("[mesh] network", "[mesh] mastctl apply", "[mesh] Bookinfo is up")):
            print("  %6.2f s  %s" % (t, l))
    print("mastctl demo up -> first 200 on http://127.0.0.1:8080/productpage: %.2f s" % first)
    if left:
        print("warning: namespaces still present after the demo stopped: %s" % left)
    shutil.rmtree(workdir, ignore_errors=True)
    return first


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "demo-time", "down"])
    ap.add_argument("--duration", type=int, default=20, help="measured seconds per path (20)")
    ap.add_argument("--warmup", type=int, default=3, help="warm-up seconds before each (3)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions, median reported (3)")
    ap.add_argument("--rps", type=int, default=1000, help="total request rate (1000)")
    ap.add_argument("--conns", type=int, default=4, help="connections (4)")
    ap.add_argument("--idle", type=int, default=3, help="seconds of idle CPU sampling per rep (3)")
    ap.add_argument("--proxy-bin", help="mast-proxy to measure (default: the one beside mast-agent)")
    ap.add_argument("--concurrency", type=int, default=2, help="proxy worker threads (2, as Istio's test)")
    ap.add_argument("--keep", action="store_true", help="keep logs and request logs after success")
    ap.add_argument("--timeout", type=int, default=120, help="demo-time: give up after (120 s)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("mesh-bench needs root (network namespaces, iptables inside them)")
    if a.command == "down":
        down()
        return
    if a.command == "demo-time":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
        times = []
        for rep in range(a.reps):
            times.append(demo_time(a))
        if len(times) > 1:
            print("median of %d: %.2f s (%.2f–%.2f s)" % (len(times), statistics.median(times),
                                                         min(times), max(times)))
        return
    # Bounded: the whole run stops by itself, whatever happens.
    bound = 120 + a.reps * (2 * (a.duration + a.warmup) + 120)
    atexit.register(down)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in background
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    signal.signal(signal.SIGHUP, lambda *_: sys.exit(1))
    signal.signal(signal.SIGALRM, lambda *_: sys.exit("mesh-bench: over its %d s bound, stopping" % bound))
    signal.alarm(bound)
    try:
        run(a)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
    except Exception as e:
        log("FAILED: %s" % e)
        sys.exit(1)
    finally:
        signal.alarm(0)
        down()
        left = [n for n in sh("ip", "netns", "list", check=False).stdout.split() if n.startswith(PREFIX)]
        if left:
            log("warning: namespaces left: %s" % left)


if __name__ == "__main__":
    main()
