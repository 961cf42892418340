#!/usr/bin/env python3
"""Bookinfo on one machine, each workload in its own network namespace with a sidecar.

    scripts/bookinfo_mesh.py up      # build the mesh, check it, keep it running until Ctrl-C
    scripts/bookinfo_mesh.py check   # build the mesh, run Istio's task scenarios, tear down
    scripts/bookinfo_mesh.py down    # remove whatever a previous run left behind

Layout (all inside namespaces this script creates, nothing in the host's own network):
  mast-hub         bridge mastbr0 10.44.0.1/24; mastd (ADS :15010, API :15014); the ingress
                   gateway (mast-agent proxy router, Gateway port 8080)
  mast-<workload>  eth0 10.44.0.N (veth into the bridge); /etc/netns/<ns>/hosts maps the service
                   names to their VIPs (10.96.0.x); the Bookinfo app as root, mast-agent with
                   iptables capture and mast-proxy as uid 1337 beside it
Run as root. Logs and config go to build/demo/.
"""
import argparse
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("MAST_BIN", os.path.join(ROOT, "build", "bin"))
WORK = os.environ.get("MAST_DEMO_DIR", os.path.join(ROOT, "build", "demo"))
EXAMPLES = os.path.join(ROOT, "examples", "bookinfo")

HUB = "mast-hub"
BRIDGE = "mastbr0"
HUB_IP = "10.44.0.1"
VIPS = {"productpage": "10.96.0.10", "details": "10.96.0.20", "reviews": "10.96.0.30",
        "ratings": "10.96.0.40"}
# name, app, version, ip
WORKLOADS = [
    ("productpage-v1", "productpage", "v1", "10.44.0.10"),
    ("details-v1", "details", "v1", "10.44.0.20"),
    ("reviews-v1", "reviews", "v1", "10.44.0.31"),
    ("reviews-v2", "reviews", "v2", "10.44.0.32"),
    ("reviews-v3", "reviews", "v3", "10.44.0.33"),
    ("ratings-v1", "ratings", "v1", "10.44.0.40"),
]
GATEWAY = "http://%s:8080" % HUB_IP
PUBLISHED = [8080, 15010, 15014]  # gateway, mastd ADS, mastd API: relayed from 127.0.0.1

procs = []  # (name, Popen)


def log(msg):
    print("[mesh] " + msg, flush=True)


def sh(*args, check=True, ns=None, **kw):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r


def ns_of(name):
    return "mast-" + name


def start(name, args, ns, env=None):
    os.makedirs(os.path.join(WORK, "logs"), exist_ok=True)
    out = open(os.path.join(WORK, "logs", name + ".log"), "a")
    p = subprocess.Popen(["ip", "netns", "exec", ns, *map(str, args)], stdout=out,
                         stderr=subprocess.STDOUT, env=dict(os.environ, **(env or {})),
                         start_new_session=True)
    procs.append((name, p))
    return p


def down():
    for name, p in reversed(procs):
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 8
    for name, p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    procs.clear()
    # Anything left from an earlier run that crashed: the relays it started in the root namespace
    # (recorded on disk), then the processes in our namespaces, the namespaces and hosts files.
    kill_recorded_relays()
    remove_namespaces([HUB] + [ns_of(w[0]) for w in WORKLOADS])


def relays_file():
    return os.path.join(WORK, "published.pids")


def kill_recorded_relays():
    """Stops the socat relays an earlier `up` recorded, checking that each pid is still that relay
    (a pid may have been reused since) before signalling its process group."""
    try:
        with open(relays_file()) as f:
            pids = [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return
    relay = os.path.join(WORK, "relay.sh")
    for pid in pids:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if "socat" in cmdline and relay in cmdline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    os.remove(relays_file())


def remove_namespaces(names):
    """Kills what still runs in each namespace and deletes it (its veths, bridge and iptables
    rules go with it) and its /etc/netns hosts directory. Quiet about what is already gone."""
    existing = sh("ip", "netns", "list", check=False).stdout.split()
    for ns in names:
        if ns in existing:
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree("/etc/netns/" + ns, ignore_errors=True)


def network():
    sh("ip", "netns", "add", HUB)
    sh("ip", "link", "set", "lo", "up", ns=HUB)
    sh("ip", "link", "add", BRIDGE, "type", "bridge", ns=HUB)
    sh("ip", "addr", "add", HUB_IP + "/24", "dev", BRIDGE, ns=HUB)
    sh("ip", "link", "set", BRIDGE, "up", ns=HUB)
    hosts = "127.0.0.1 localhost\n" + "".join(
        "%s %s %s.default %s.default.svc.cluster.local\n" % (vip, s, s, s) for s, vip in VIPS.items())
    for i, (name, app, version, ip) in enumerate(WORKLOADS):
        ns = ns_of(name)
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
        sh("ip", "link", "add", "vh%d" % i, "type", "veth", "peer", "name", "eth0", "netns", ns, ns=HUB)
        sh("ip", "link", "set", "vh%d" % i, "master", BRIDGE, "up", ns=HUB)
        sh("ip", "addr", "add", ip + "/24", "dev", "eth0", ns=ns)
        sh("ip", "link", "set", "eth0", "up", ns=ns)
        sh("ip", "route", "add", "default", "via", HUB_IP, ns=ns)
        os.makedirs("/etc/netns/" + ns, exist_ok=True)
        with open("/etc/netns/%s/hosts" % ns, "w") as f:
            f.write(hosts)
    os.makedirs("/etc/netns/" + HUB, exist_ok=True)
    with open("/etc/netns/%s/hosts" % HUB, "w") as f:
        f.write(hosts)


def mastctl(*args, stdin=None):
    r = subprocess.run(["ip", "netns", "exec", HUB, os.path.join(BIN, "mastctl"), *args],
                       capture_output=True, text=True, input=stdin, timeout=30)
    if r.returncode != 0:
        raise RuntimeError("mastctl %s: %s" % (" ".join(args), r.stderr))
    return r.stdout


def wait_for(what, fn, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if fn():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError("timed out waiting for " + what)


def curl(path, *headers, timeout=15):
    args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--max-time", str(timeout)]
    for h in headers:
        args += ["-H", h]
    r = sh(*args, GATEWAY + path, ns=HUB, check=False)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


def start_mastd():
    start("mastd", [os.path.join(BIN, "mastd"), "--config-dir", os.path.join(WORK, "config"),
                    "--mesh-config", os.path.join(EXAMPLES, "mesh.yaml"),
                    "--listen-address", "0.0.0.0", "--debounce-after", "50"], HUB)


def up():
    down()
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(os.path.join(WORK, "config"))
    network()
    log("network: hub %s + %d workload namespaces" % (HUB_IP, len(WORKLOADS)))
    start_mastd()
    wait_for("mastd", lambda: subprocess.run(
        ["ip", "netns", "exec", HUB, os.path.join(BIN, "mastctl"), "proxy-status"],
        capture_output=True).returncode == 0, timeout=20)
    for f in ["bookinfo-services.yaml", "bookinfo-gateway.yaml", "destination-rule-all.yaml"]:
        log("mastctl apply -f examples/bookinfo/" + f)
        sys.stdout.write(mastctl("apply", "-f", os.path.join(EXAMPLES, f)))
    agent = os.path.join(BIN, "mast-agent")
    for name, app, version, ip in WORKLOADS:
        ns = ns_of(name)
        start(name + "-agent", [agent, "proxy", "sidecar", "--discovery-address", HUB_IP + ":15010",
                                "--workload", name + ".default", "--ip", ip,
                                "--labels", "app=%s,version=%s" % (app, version),
                                "--service-account", "bookinfo-" + app, "--capture",
                                "--work-dir", os.path.join(WORK, name)], ns)
    start("ingressgateway", [agent, "proxy", "router", "--discovery-address", "127.0.0.1:15010",
                             "--workload", "istio-ingressgateway.default", "--ip", HUB_IP,
                             "--labels", "istio=ingressgateway",
                             "--work-dir", os.path.join(WORK, "ingressgateway")], HUB)
    # Apps start once their sidecar is ready (mast-agent wait), as Istio's
    # holdApplicationUntilProxyStarts does.
    for name, app, version, ip in WORKLOADS:
        ns = ns_of(name)
        r = sh(agent, "wait", "--timeout", "60s", ns=ns, check=False)
        if r.returncode != 0:
            raise RuntimeError("sidecar of %s not ready: %s%s" % (name, r.stdout, r.stderr))
        start(name, [os.path.join(BIN, "bookinfo"), app, "--port", "9080", "--version", version],
              ns, env={"POD_NAME": name + "-pod"})
    wait_for("productpage through the gateway", lambda: curl("/productpage")[0] == 200)
    # The root namespace reaches the mesh only through these ports on 127.0.0.1: the gateway
    # (8080) and mastd (15010, 15014). Each connection is relayed into the hub namespace.
    relay = os.path.join(WORK, "relay.sh")  # socat's EXEC address cannot hold colons
    with open(relay, "w") as f:
        f.write("#!/bin/sh\nexec ip netns exec %s socat STDIO TCP:%s:$1\n" % (HUB, HUB_IP))
    os.chmod(relay, 0o755)
    for port in PUBLISHED:
        p = subprocess.Popen(["socat", "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork" % port,
                              "EXEC:%s %d" % (relay, port)], stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(WORK, "logs", "publish-%d.log" % port), "w"),
                             start_new_session=True)
        procs.append(("publish-%d" % port, p))
        with open(relays_file(), "a") as f:  # so that `down` finds them even after a crash
            f.write("%d\n" % p.pid)
    wait_for("gateway published on 127.0.0.1:8080", lambda: subprocess.run(
        ["curl", "-sf", "-o", "/dev/null", "--max-time", "5", "http://127.0.0.1:8080/productpage"]
    ).returncode == 0, 30)
    log("Bookinfo is up: http://127.0.0.1:8080/productpage (mastctl talks to 127.0.0.1:15014)")


def stars(body):
    if 'color="red"' in body:
        return "red"
    if 'color="black"' in body:
        return "black"
    return "none"


def check():
    """Istio's traffic-management tasks on Bookinfo, asserted end to end."""
    seen = set()
    for _ in range(30):
        code, body = curl("/productpage")
        assert code == 200, (code, body[:300])
        seen.add(stars(body))
    assert seen == {"none", "black", "red"}, seen
    log("round robin over reviews v1/v2/v3: ok")
    mastctl("apply", "-f", os.path.join(EXAMPLES, "virtual-service-all-v1.yaml"))
    wait_for("all traffic to v1", lambda: all(stars(curl("/productpage")[1]) == "none" for _ in range(10)), 20)
    log("virtual-service-all-v1: only reviews v1: ok")
    mastctl("apply", "-f", os.path.join(EXAMPLES, "virtual-service-reviews-test-v2.yaml"))
    wait_for("jason on v2", lambda: stars(curl("/productpage", "cookie: user=jason")[1]) == "black", 20)
    assert stars(curl("/productpage")[1]) == "none"
    log("reviews-test-v2: jason sees black stars, others none: ok")
    mastctl("apply", "-f", os.path.join(EXAMPLES, "virtual-service-ratings-test-abort.yaml"))
    wait_for("ratings abort for jason", lambda: "Ratings service is currently unavailable" in
             curl("/productpage", "cookie: user=jason")[1], 20)
    log("ratings-test-abort: jason gets 'Ratings service is currently unavailable': ok")
    mastctl("apply", "-f", os.path.join(EXAMPLES, "virtual-service-ratings-test-delay.yaml"))
    def delayed():
        t0 = time.time()
        body = curl("/productpage", "cookie: user=jason", timeout=30)[1]
        return time.time() - t0 >= 5.5 and "Sorry, product reviews are currently unavailable" in body
    wait_for("ratings delay for jason", delayed, 40)
    t0 = time.time()
    code, body = curl("/productpage")
    assert code == 200 and time.time() - t0 < 3, time.time() - t0
    log("ratings-test-delay: jason waits ~6 s and gets the reviews error; others unaffected: ok")
    mastctl("apply", "-f", os.path.join(EXAMPLES, "virtual-service-reviews-50-v3.yaml"))
    wait_for("reviews 50/50 v1/v3", lambda: stars(curl("/productpage")[1]) == "red", 20)
    counts = {"none": 0, "black": 0, "red": 0}
    for _ in range(200):
        counts[stars(curl("/productpage")[1])] += 1
    # Binomial(200, 0.5): 70..130 holds with probability > 0.9999.
    assert counts["black"] == 0 and 70 <= counts["red"] <= 130, counts
    log("reviews-50-v3: %d v1 / %d v3 of 200: ok" % (counts["none"], counts["red"]))
    mastctl("apply", "-f", os.path.join(EXAMPLES, "virtual-service-reviews-v3.yaml"))
    wait_for("all reviews traffic to v3",
             lambda: all(stars(curl("/productpage")[1]) == "red" for _ in range(20)), 20)
    log("reviews-v3: 20 of 20 red stars: ok")
    # Capture really happens: productpage's plain call to details:9080 (a VIP nobody listens on)
    # went through its sidecar, whose access log names the outbound cluster; the same call from
    # uid 1337 (the proxy's own user) is not captured and cannot reach the VIP.
    def logged():
        with open(os.path.join(WORK, "logs", "productpage-v1-agent.log")) as f:
            text = f.read()
        return "outbound|9080||details.default.svc.cluster.local" in text and \
            "outbound|9080|v1|reviews.default.svc.cluster.local" in text
    wait_for("outbound clusters in productpage's sidecar access log", logged, 10)
    ns = ns_of("productpage-v1")
    ok = sh("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
            "http://details:9080/details/0", ns=ns, check=False).stdout
    assert ok == "200", ok
    direct = sh("setpriv", "--reuid", "1337", "--regid", "1337", "--clear-groups", "curl", "-s",
                "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3",
                "http://details:9080/details/0", ns=ns, check=False).stdout
    assert direct == "000", direct
    log("capture: productpage's calls logged by its sidecar with outbound clusters; uid 1337 "
        "not captured: ok")
    # From the root namespace, through the published ports, as a user would.
    r = subprocess.run(["curl", "-s", "http://127.0.0.1:8080/productpage"], capture_output=True,
                       text=True, timeout=30)
    assert "Simple Bookstore App" in r.stdout or "productpage" in r.stdout.lower(), r.stdout[:300]
    r = subprocess.run([os.path.join(BIN, "mastctl"), "--mastd", "127.0.0.1:15014", "get", "vs"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "reviews" in r.stdout, r.stdout + r.stderr
    log("root namespace: 127.0.0.1:8080 (gateway) and 127.0.0.1:15014 (mastctl): ok")
    # proxy-config by proxy name from the root namespace, as istioctl is used: mastctl finds
    # productpage-v1.default through mastd and reads its admin (127.0.0.1:15000 inside
    # mast-productpage-v1) from a thread that enters that namespace.
    r = subprocess.run([os.path.join(BIN, "mastctl"), "--mastd", "127.0.0.1:15014", "proxy-config",
                        "cluster", "productpage-v1.default"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [l.split() for l in r.stdout.splitlines()]
    assert ["reviews.default.svc.cluster.local", "9080", "-", "outbound", "EDS"] in rows, r.stdout
    assert ["reviews.default.svc.cluster.local", "9080", "v2", "outbound", "EDS"] in rows, r.stdout
    r = subprocess.run([os.path.join(BIN, "mastctl"), "--mastd", "127.0.0.1:15014", "proxy-config",
                        "cluster", "productpage-v1.default", "-o", "json"], capture_output=True,
                       text=True, timeout=30)
    names = [c["name"] for c in json.loads(r.stdout)]
    assert "outbound|9080||reviews.default.svc.cluster.local" in names, names
    assert "inbound|9080||" in names, names
    r = subprocess.run([os.path.join(BIN, "mastctl"), "--mastd", "127.0.0.1:15014", "proxy-config",
                        "cluster", "reviews"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "matches 3 proxies" in r.stderr, r.stdout + r.stderr
    log("mastctl proxy-config cluster productpage-v1.default from the root namespace: "
        "outbound|9080||reviews... listed; 'reviews' is ambiguous (3 proxies): ok")
    ps = mastctl("proxy-status")
    rows = [l for l in ps.splitlines() if l.startswith(("sidecar~", "router~"))]
    assert len(rows) == len(WORKLOADS) + 1, ps
    assert all(r.split()[2:6] == ["SYNCED"] * 4 for r in rows), ps
    log("proxy-status: %d proxies, all SYNCED: ok" % len(rows))
    # The control plane goes away: traffic keeps flowing; back again, every proxy resyncs.
    mastd = [p for n, p in procs if n == "mastd"][0]
    os.killpg(mastd.pid, signal.SIGKILL)
    mastd.wait()
    assert all(curl("/productpage")[0] == 200 for _ in range(5))
    start_mastd()
    def resynced():
        out = mastctl("proxy-status")
        rows = [l for l in out.splitlines() if l.startswith(("sidecar~", "router~"))]
        return len(rows) == len(WORKLOADS) + 1 and all(r.split()[2:6] == ["SYNCED"] * 4 for r in rows)
    wait_for("proxies resynced after a mastd restart", resynced, 60)
    log("mastd killed: traffic kept flowing; restarted: all %d proxies SYNCED again: ok" % len(rows))
    # A VirtualService host on the gateway: that host matches, another gets 404.
    mastctl("apply", "-f", "-", stdin=open(os.path.join(EXAMPLES, "bookinfo-gateway.yaml")).read()
            .replace('  - "*"\n  gateways:', '  - "bookinfo.example.com"\n  gateways:'))
    wait_for("host-bound VirtualService", lambda: curl("/productpage", "host: other.example.com")[0] == 404, 20)
    assert curl("/productpage", "host: bookinfo.example.com")[0] == 200

    def no_route_logged():
        with open(os.path.join(WORK, "logs", "ingressgateway.log")) as f:
            return any(" 404 NR route_not_found " in l and '"other.example.com"' in l for l in f)
    wait_for("404 NR in the gateway's access log", no_route_logged, 10)
    log("VirtualService host bookinfo.example.com: 200; other.example.com: 404 NR: ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["up", "check", "down"])
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bookinfo_mesh.py needs root (network namespaces, iptables)")
    if a.command == "down":
        down()
        return
    atexit.register(down)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        up()
        if a.command == "check":
            check()
            log("all checks passed")
            return
        log("open http://127.0.0.1:8080/productpage, then try:")
        log("  %s/mastctl proxy-status" % BIN)
        log("  %s/mastctl apply -f examples/bookinfo/virtual-service-all-v1.yaml" % BIN)
        log("  %s/mastctl apply -f examples/bookinfo/virtual-service-reviews-test-v2.yaml  # log in as jason" % BIN)
        log("  %s/mastctl proxy-config cluster productpage-v1.default" % BIN)
        log("Ctrl-C stops the mesh and removes its namespaces")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    except Exception as e:
        log("FAILED: %s (logs in %s/logs)" % (e, WORK))
        for name, p in procs:
            if p.poll() is not None:
                log("%s exited with %s" % (name, p.returncode))
        sys.exit(1)


if __name__ == "__main__":
    main()
