"""mast-agent against real processes: the bootstrap it writes (validated by mast-proxy --mode
validate), readiness on the health and status ports driven by a real ADS server (Python grpcio,
xds_fixture.AdsServer), `mast-agent wait` exit codes, restart after the proxy is killed, SIGTERM
forwarding and exit codes, /quitquitquit, /drain, the merged /stats/prometheus, and the iptables
capture rules — the latter only as root and only inside a network namespace the test creates."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import http.server

import pytest

from conftest import BIN, PROXY, free_port

xds = pytest.importorskip("xds_fixture")

AGENT = os.path.join(BIN, "mast-agent")
HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def get(port, path, method="GET", timeout=5):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def eventually(fn, timeout=15, what="condition"):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def push_config(ads, version="1"):
    ads.set(xds.CLUSTER, "c" + version, [{
        "name": "backend", "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": "backend", "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                          "port_value": 9}}}}]}]}}])
    ads.set(xds.LISTENER, "l" + version, [{
        "name": "outbound",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {"@type": HCM, "stat_prefix": "outbound",
                             "route_config": {"name": "r", "virtual_hosts": [{
                                 "name": "all", "domains": ["*"], "routes": [{
                                     "match": {"prefix": "/"},
                                     "route": {"cluster": "backend"}}]}]},
                             "http_filters": [{"name": "envoy.filters.http.router",
                                               "typed_config": {"@type": ROUTER}}]}}]}]}])


class Agent:
    def __init__(self, work, ads_port, *extra, uid=None):
        self.work = work
        self.ports = {k: free_port() for k in ("admin", "status", "health", "stats")}
        args = [AGENT, "proxy", "sidecar", "--discovery-address", "127.0.0.1:%d" % ads_port,
                "--workload", "productpage-v1.default", "--ip", "127.0.0.1",
                "--labels", "app=productpage,version=v1", "--service-account",
                "bookinfo-productpage", "--admin-port", str(self.ports["admin"]),
                "--status-port", str(self.ports["status"]),
                "--health-port", str(self.ports["health"]),
                "--stats-port", str(self.ports["stats"]), "--concurrency", "1",
                "--drain-time-s", "1", "--work-dir", str(work), "--proxy-bin", PROXY,
                "--proxy-log-level", "info", *extra]
        if uid is not None:
            args += ["--proxy-uid", str(uid)]
        self.log = open(os.path.join(str(work) + ".log"), "w+")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        eventually(lambda: self.proxy_pid() and self.admin_up(), what="the proxy's admin port\n" +
                   self.output())

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def proxy_pid(self):
        c = [p for p in children(self.proc.pid) if alive(p)]
        return c[0] if c else None

    def admin_up(self):
        try:
            return get(self.ports["admin"], "/ready", timeout=1)[0] in (200, 503)
        except OSError:
            return False

    def ready(self, port_name="health"):
        return get(self.ports[port_name], "/healthz/ready")

    def wait_cmd(self, timeout):
        return subprocess.run([AGENT, "wait", "--health-port", str(self.ports["health"]),
                               "--timeout", timeout, "--period", "100ms"],
                              capture_output=True, text=True, timeout=120)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def ads():
    s = xds.AdsServer()
    yield s
    s.stop()


@pytest.fixture
def agents(tmp_path):
    started = []

    def make(*extra, work=None, **kw):
        a = Agent(work or tmp_path / ("work%d" % len(started)), *extra, **kw)
        started.append(a)
        return a

    yield make
    for a in started:
        a.stop(signal.SIGKILL)
        for p in children(a.proc.pid):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


class MetricsHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        body = (b"# HELP app_requests_total Requests.\n# TYPE app_requests_total counter\n"
                b"app_requests_total{code=\"200\"} 7\n"
                b"# TYPE mast_agent_proxy_restarts_total counter\n"
                b"mast_agent_proxy_restarts_total{src=\"app\"} 42\n")
        self.send_response(200)
        self.send_header("content-type", "text/plain; version=0.0.4")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def app_metrics():
    srv = http.server.HTTPServer(("127.0.0.1", 0), MetricsHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d/metrics" % srv.server_address[1]
    srv.shutdown()


def test_bootstrap_is_valid_for_mast_proxy(tmp_path, ads, agents):
    a = agents(ads.port, "--auto-register-group", "productpage", "--meta", "CUSTOM=x",
               uid=os.getuid())
    path = a.work / "envoy-rev.json"
    boot = json.loads(path.read_text())
    assert boot["node"]["id"] == \
        "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local"
    meta = boot["node"]["metadata"]
    assert meta["LABELS"] == {"app": "productpage", "version": "v1"}
    assert meta["NAMESPACE"] == "default"
    assert meta["SERVICE_ACCOUNT"] == "bookinfo-productpage"
    assert meta["WORKLOAD_NAME"] == "productpage-v1"
    assert meta["AUTO_REGISTER_GROUP"] == "productpage"
    assert meta["INSTANCE_IPS"] == "127.0.0.1"
    assert meta["CUSTOM"] == "x"
    r = subprocess.run([PROXY, "--mode", "validate", "-c", str(path)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # The node reaches the control plane on the first request.
    first = ads.wait_for(lambda r: r.node.id != "")
    assert first.node.id == boot["node"]["id"]
    assert first.node.metadata.fields["WORKLOAD_NAME"].string_value == "productpage-v1"
    # The Prometheus listener is served by the proxy itself and routed to its admin port.
    status, body = eventually(lambda: (lambda r: r if r[0] == 200 else None)(
        get(a.ports["stats"], "/stats/prometheus")), what="15090-style listener")
    assert "# TYPE" in body
    assert a.stop() == 0


def test_router_bootstrap_validates(tmp_path):
    # Broken discovery address on purpose: only the file matters here.
    work = tmp_path / "router"
    ports = [str(free_port()) for _ in range(4)]
    p = subprocess.Popen([AGENT, "proxy", "router", "--discovery-address", "mastd.example:15010",
                          "--workload", "ingress.istio-system", "--ip", "10.0.0.9",
                          "--admin-port", ports[0], "--status-port", ports[1],
                          "--health-port", ports[2], "--stats-port", ports[3],
                          "--work-dir", str(work), "--proxy-bin", PROXY,
                          "--proxy-uid", str(os.getuid()), "--concurrency", "1"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        path = work / "envoy-rev.json"
        eventually(lambda: path.exists(), what="bootstrap file")
        boot = json.loads(path.read_text())
        assert boot["node"]["id"] == "router~10.0.0.9~ingress.istio-system~istio-system.svc.cluster.local"
        assert boot["static_resources"]["clusters"][0]["type"] == "STRICT_DNS"
        r = subprocess.run([PROXY, "--mode", "validate", "-c", str(path)], capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)


def test_readiness_wait_metrics_restart_and_sigterm(tmp_path, ads, agents, app_metrics):
    a = agents(ads.port, "--app-metrics-url", app_metrics, uid=os.getuid())
    # The ADS server has served nothing yet: not ready on either port, and `wait` times out.
    assert a.ready("health")[0] == 503
    assert a.ready("status")[0] == 503
    r = a.wait_cmd("1s")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "not ready" in r.stderr
    # A `wait` started now returns 0 once the control plane serves listeners and clusters.
    waiter = subprocess.Popen([AGENT, "wait", "--health-port", str(a.ports["health"]),
                               "--timeout", "30s", "--period", "100ms"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    assert waiter.poll() is None
    push_config(ads)
    out, err = waiter.communicate(timeout=40)
    assert waiter.returncode == 0, out + err
    assert a.ready("health")[0] == 200
    assert a.ready("status")[0] == 200
    assert a.wait_cmd("5s").returncode == 0

    # Merged metrics: the proxy's, the app's and the agent's own; one TYPE line per family.
    status, body = get(a.ports["status"], "/stats/prometheus")
    assert status == 200, body
    assert "envoy_" in body
    assert 'app_requests_total{code="200"} 7' in body
    assert body.count("# TYPE mast_agent_proxy_restarts_total counter") == 1
    assert 'mast_agent_proxy_restarts_total{src="app"} 42' in body
    assert "\nmast_agent_proxy_restarts_total 0\n" in body
    types = [l.split()[2] for l in body.splitlines() if l.startswith("# TYPE ")]
    assert len(types) == len(set(types))

    # kill -9 the proxy: the agent starts a new one, which becomes ready again.
    first = a.proxy_pid()
    os.kill(first, signal.SIGKILL)
    second = eventually(lambda: (lambda p: p if p and p != first else None)(a.proxy_pid()),
                        what="a restarted proxy")
    eventually(lambda: a.ready()[0] == 200, timeout=20, what="ready after restart")
    assert "\nmast_agent_proxy_restarts_total 1\n" in get(a.ports["status"], "/stats/prometheus")[1]
    assert "restarting in" in a.output()

    # SIGTERM: forwarded to the proxy, which drains and exits 0; the agent exits with that code.
    assert a.stop(signal.SIGTERM) == 0
    assert not alive(second)
    assert "caught signal 15" in a.output()


def test_drain_and_quitquitquit(tmp_path, ads, agents):
    push_config(ads)
    a = agents(ads.port, uid=os.getuid())
    eventually(lambda: a.ready()[0] == 200, what="ready")
    assert get(a.ports["status"], "/quitquitquit")[0] == 405
    r = subprocess.run([AGENT, "request", "POST", "drain", "--debug-port", str(a.ports["status"])],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    status, body = a.ready()
    assert status == 503 and "draining" in body
    pid = a.proxy_pid()
    assert get(a.ports["status"], "/quitquitquit", "POST")[0] == 200
    a.proc.wait(timeout=20)
    assert a.proc.returncode == 0
    assert not alive(pid)


def test_proxy_exit_code_after_giving_up(tmp_path, ads):
    script = tmp_path / "bad-proxy"
    script.write_text("#!/bin/sh\necho started >> %s\nexit 3\n" % (tmp_path / "runs"))
    script.chmod(0o755)
    ports = [str(free_port()) for _ in range(4)]
    t0 = time.time()
    r = subprocess.run([AGENT, "proxy", "sidecar", "--discovery-address", "127.0.0.1:%d" % ads.port,
                        "--workload", "w.default", "--work-dir", str(tmp_path / "w"),
                        "--proxy-bin", str(script), "--proxy-uid", str(os.getuid()),
                        "--admin-port", ports[0], "--status-port", ports[1],
                        "--health-port", ports[2], "--stats-port", ports[3],
                        "--max-restarts", "2"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stdout + r.stderr
    # Three runs (the first and two restarts) with back-off in between (200 ms, then 400 ms).
    assert (tmp_path / "runs").read_text().count("started") == 3
    assert time.time() - t0 >= 0.6
    assert "giving up" in r.stdout + r.stderr


def test_bad_flags_fail_clearly(tmp_path):
    r = subprocess.run([AGENT, "proxy", "sidecar", "--discovery-address", "nowhere",
                        "--workload", "w.default"], capture_output=True, text=True)
    assert r.returncode != 0 and "--discovery-address" in r.stderr
    r = subprocess.run([AGENT, "proxy", "sidecar", "--discovery-address", "127.0.0.1:1",
                        "--workload", "nonamespace"], capture_output=True, text=True)
    assert r.returncode != 0 and "NAME.NAMESPACE" in r.stderr
    r = subprocess.run([AGENT, "iptables", "--dry-run", "--inbound-ports", "80,x"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "--inbound-ports" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="running the proxy as uid 1337 needs root")
def test_proxy_runs_as_1337_when_root(ads, agents):
    work = tempfile.mkdtemp(prefix="mast-agent-test-", dir="/tmp")
    try:
        push_config(ads)
        a = agents(ads.port, work=__import__("pathlib").Path(work))  # no --proxy-uid: default
        pid = a.proxy_pid()
        with open("/proc/%d/status" % pid) as f:
            ids = {l.split(":")[0]: l.split()[1:] for l in f if l.startswith(("Uid:", "Gid:"))}
        assert ids["Uid"][0] == "1337" and ids["Uid"][1] == "1337", ids
        assert ids["Gid"][1] == str(__import__("pwd").getpwuid(1337).pw_gid), ids
        eventually(lambda: a.ready()[0] == 200, what="ready as 1337")
        assert a.stop() == 0
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if os.path.exists(work + ".log"):
            os.unlink(work + ".log")


# ---- iptables: root only, and only inside a network namespace created here ----

def _iptables_skip_reason():
    if os.geteuid() != 0:
        return "iptables tests need root (they create a network namespace)"
    for tool in ("ip", "iptables-restore", "iptables-save"):
        if shutil.which(tool) is None:
            return "%s is not installed" % tool
    return None


@pytest.fixture
def netns():
    reason = _iptables_skip_reason()
    if reason:
        pytest.skip(reason)
    name = "mast-test-%s" % uuid.uuid4().hex[:8]
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot create a network namespace: " + r.stderr.strip())
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        # Probe that netfilter works in it (nat table available).
        r = subprocess.run(["ip", "netns", "exec", name, "iptables-save", "-t", "nat"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip("iptables does not work in a network namespace here: " + r.stderr)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def ns_run(ns, *args, env_path=None):
    cmd = ["ip", "netns", "exec", ns]
    if env_path is not None:
        cmd += ["env", "PATH=" + env_path]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)


def nat_rules(ns):
    out = ns_run(ns, "iptables-save", "-t", "nat").stdout
    # iptables-save spells the implicit protocol match out ("-p tcp -m tcp --dport").
    return [l.replace(" -m tcp", "").replace(" -m udp", "") for l in out.splitlines()
            if "ISTIO" in l]


def canon(rule):
    """A rule as a sorted tuple of its option groups: iptables-save prints matches in its own
    order ("! -d X -o lo -p tcp" for "-o lo ! -d X -p tcp")."""
    groups, cur, neg = [], [], False
    for tok in rule.split():
        if tok == "!":
            neg = True
            continue
        if tok.startswith("-") and not tok[1:].isdigit():
            if cur:
                groups.append(" ".join(cur))
            cur = ["!" + tok if neg else tok]
        else:
            cur.append(("!" if neg else "") + tok)
        neg = False
    if cur:
        groups.append(" ".join(cur))
    return tuple(sorted(groups))


def test_iptables_dry_run_needs_no_privileges():
    r = subprocess.run([AGENT, "iptables", "--dry-run", "--exclude-outbound-ports", "22"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "*nat" and lines[-1] == "COMMIT"
    assert "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006" in lines
    assert "-A ISTIO_OUTPUT -p tcp --dport 22 -j RETURN" in lines
    assert "-A ISTIO_INBOUND -p tcp -m multiport --dports 15090,15021,15020 -j RETURN" in lines


def test_iptables_install_is_idempotent_and_cleanup_is_exact(netns):
    # Someone else's rule in the same table stays untouched throughout.
    ns_run(netns, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "udp", "--dport", "9999",
           "-j", "RETURN")
    r = ns_run(netns, AGENT, "iptables", "--exclude-outbound-ip-ranges", "10.96.0.0/12")
    assert r.returncode == 0, r.stdout + r.stderr
    rules = nat_rules(netns)
    expected = subprocess.run([AGENT, "iptables", "--dry-run", "--exclude-outbound-ip-ranges",
                               "10.96.0.0/12"], capture_output=True, text=True).stdout
    want = [l for l in expected.splitlines() if l.startswith("-A ")]
    assert sorted(canon(l) for l in rules if l.startswith("-A ")) == sorted(canon(l) for l in want)
    assert len(want) == 17
    assert "-A ISTIO_OUTPUT -d 10.96.0.0/12 -j RETURN" in rules
    assert "-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN" in rules
    assert "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN" in rules
    # Again: replaced, not duplicated.
    assert ns_run(netns, AGENT, "iptables", "--exclude-outbound-ip-ranges",
                  "10.96.0.0/12").returncode == 0
    assert nat_rules(netns) == rules
    # Different options replace the previous set.
    assert ns_run(netns, AGENT, "iptables", "--inbound-ports", "8080").returncode == 0
    rules2 = nat_rules(netns)
    assert "-A ISTIO_INBOUND -p tcp --dport 8080 -j ISTIO_IN_REDIRECT" in rules2
    assert not any("10.96.0.0/12" in l for l in rules2)
    assert sum(l.startswith("-A PREROUTING") for l in rules2) == 1
    assert sum(l.startswith("-A OUTPUT") for l in rules2) == 1
    # Cleanup removes exactly ours, and is a no-op the second time.
    r = ns_run(netns, AGENT, "iptables", "--cleanup")
    assert r.returncode == 0, r.stdout + r.stderr
    assert nat_rules(netns) == []
    assert ns_run(netns, AGENT, "iptables", "--cleanup").returncode == 0
    save = ns_run(netns, "iptables-save", "-t", "nat").stdout
    assert "-A OUTPUT -p udp -m udp --dport 9999 -j RETURN" in save


def test_iptables_errors_and_no_half_applied_rules(netns, tmp_path):
    # iptables missing from PATH.
    empty = tmp_path / "empty"
    empty.mkdir()
    r = ns_run(netns, AGENT, "iptables", env_path=str(empty))
    assert r.returncode == 1 and "not found in PATH" in r.stderr, r.stderr
    # Not root.
    if shutil.which("setpriv"):
        r = ns_run(netns, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                   "--inh-caps=-all", AGENT, "iptables")
        assert r.returncode == 1 and "needs root" in r.stderr, r.stderr
    # A transaction iptables-restore rejects (a rule referencing a chain that does not exist,
    # via a fake iptables-restore wrapper that appends one) changes nothing.
    fake = tmp_path / "bin"
    fake.mkdir()
    real = shutil.which("iptables-restore")
    (fake / "iptables-restore").write_text(
        "#!/bin/sh\nsed 's/^COMMIT$/-A OUTPUT -j NO_SUCH_CHAIN\\nCOMMIT/' | %s \"$@\"\n" % real)
    (fake / "iptables-restore").chmod(0o755)
    os.symlink(shutil.which("iptables-save"), fake / "iptables-save")
    r = ns_run(netns, AGENT, "iptables", env_path="%s:/usr/sbin:/usr/bin:/sbin:/bin" % fake)
    assert r.returncode == 1 and "nothing was changed" in r.stderr, r.stderr
    assert nat_rules(netns) == []


def test_proxy_capture_installs_and_removes_rules(netns, tmp_path):
    ports = [str(free_port()) for _ in range(4)]
    p = subprocess.Popen(["ip", "netns", "exec", netns, AGENT, "proxy", "sidecar",
                          "--discovery-address", "127.0.0.1:1", "--workload", "w.default",
                          "--work-dir", str(tmp_path / "w"), "--proxy-bin", PROXY,
                          "--proxy-uid", "0", "--admin-port", ports[0], "--status-port", ports[1],
                          "--health-port", ports[2], "--stats-port", ports[3],
                          "--concurrency", "1", "--drain-time-s", "1", "--capture"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        rules = eventually(lambda: nat_rules(netns), what="capture rules")
        # Wait for the proxy's admin port (inside the namespace) so SIGTERM meets a running proxy.
        eventually(lambda: ns_run(netns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                  "http://127.0.0.1:%s/ready" % ports[0]).stdout in ("200", "503"),
                   what="the proxy in the namespace")
        assert "-A ISTIO_OUTPUT -m owner --uid-owner 0 -j RETURN" in rules
        # The agent's own ports are never captured inbound.
        assert any(("--dports %s,%s,%s" % (ports[3], ports[2], ports[1])) in l for l in rules), rules
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=30)
    assert p.returncode == 0, out
    assert nat_rules(netns) == [], out


# ---- end to end with the real control plane ----

MASTD = os.path.join(BIN, "mastd")

MESH = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews.default.svc.cluster.local]
  ports: [{ number: %(svc_port)d, name: http, protocol: HTTP }]
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: { labels: { app: reviews } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: reviews-v1, namespace: default }
spec: { address: 127.0.0.11, labels: { app: reviews, version: v1 } }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: %(gw_port)d, name: http, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: ["*"]
  gateways: [gw]
  http: [{ route: [{ destination: { host: reviews.default.svc.cluster.local } }] }]
"""


class NamedHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "7")
        self.end_headers()
        self.wfile.write(b"reviews")


@pytest.mark.skipif(not os.path.exists(MASTD), reason="mastd is not built in this build dir")
def test_router_against_mastd_end_to_end(tmp_path):
    svc_port, gw_port = free_port(), free_port()
    xds_port, http_port = free_port(), free_port()
    upstream = http.server.HTTPServer(("127.0.0.11", svc_port), NamedHandler)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "mesh.yaml").write_text(MESH % {"svc_port": svc_port, "gw_port": gw_port})
    log = open(tmp_path / "mastd.log", "w+")
    mastd = subprocess.Popen([MASTD, "--config-dir", str(cfg), "--xds-port", str(xds_port),
                              "--http-port", str(http_port)], stdout=log, stderr=subprocess.STDOUT)
    ports = {k: str(free_port()) for k in ("admin", "status", "health", "stats")}
    agent = None
    try:
        agent = subprocess.Popen(
            [AGENT, "proxy", "router", "--discovery-address", "127.0.0.1:%d" % xds_port,
             "--workload", "ingressgateway-1.default", "--ip", "127.0.0.1",
             "--labels", "istio=ingressgateway", "--work-dir", str(tmp_path / "w"),
             "--proxy-bin", PROXY, "--proxy-uid", str(os.getuid()), "--concurrency", "1",
             "--drain-time-s", "1", "--admin-port", ports["admin"],
             "--status-port", ports["status"], "--health-port", ports["health"],
             "--stats-port", ports["stats"]], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        r = subprocess.run([AGENT, "wait", "--health-port", ports["health"], "--timeout", "30s",
                            "--period", "100ms"], capture_output=True, text=True, timeout=60)
        log.flush()
        assert r.returncode == 0, r.stderr + open(log.name).read()
        assert get(int(ports["status"]), "/healthz/ready")[0] == 200
        status, body = get(gw_port, "/")
        assert (status, body) == (200, "reviews")
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=20) == 0
    finally:
        if agent and agent.poll() is None:
            agent.kill()
            agent.wait()
        mastd.terminate()
        mastd.wait(timeout=10)
        upstream.shutdown()
        upstream.server_close()
        log.close()


def test_sigint_forwarded_and_proxy_dies_with_the_agent(ads, agents):
    push_config(ads)
    a = agents(ads.port, uid=os.getuid())
    eventually(lambda: a.ready()[0] == 200, what="ready")
    proxy = a.proxy_pid()
    assert a.stop(signal.SIGINT) == 0
    assert "caught signal 2" in a.output()
    assert not alive(proxy)
    # An agent killed outright takes its proxy with it (PR_SET_PDEATHSIG), no orphan left.
    b = agents(ads.port, uid=os.getuid())
    eventually(lambda: b.ready()[0] == 200, what="ready")
    proxy = b.proxy_pid()
    b.proc.kill()
    b.proc.wait()
    eventually(lambda: not alive(proxy), timeout=10, what="the orphaned proxy to exit")
