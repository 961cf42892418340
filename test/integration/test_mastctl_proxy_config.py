"""`mastctl proxy-config TYPE PROXY` by proxy name (root): two sidecars, each run by mast-agent in
a network namespace this test creates (a veth to the root namespace, where mastd runs), with
their admin on 127.0.0.1 inside their namespace (15000 and, announced through the node
metadata's PROXY_CONFIG.proxyAdminPort, 15123). A Sidecar resource per workload scopes each to
its own service, so their clusters differ. mastctl, in the root namespace, finds each proxy
through mastd (NAME.NAMESPACE, node id, unique prefix), enters the namespace holding its IP and
prints that proxy's clusters; unknown and ambiguous names fail with the candidates; --admin
still wins; without root the namespaces cannot be entered and the error says so. The
namespaces are removed even when a check fails."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import BIN, free_port

MASTD = os.path.join(BIN, "mastd")
MASTCTL = os.path.join(BIN, "mastctl")
AGENT = os.path.join(BIN, "mast-agent")
PROXY = os.path.join(BIN, "mast-proxy")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces")

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: alpha, namespace: default }
spec:
  hosts: [alpha.default.svc.cluster.local]
  ports: [{ number: 8001, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 10.250.0.1 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: beta, namespace: default }
spec:
  hosts: [beta.default.svc.cluster.local]
  ports: [{ number: 8002, name: http, protocol: HTTP }]
  resolution: STATIC
  endpoints: [{ address: 10.250.0.2 }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: web-a, namespace: default }
spec:
  workloadSelector: { labels: { app: web-a } }
  egress: [{ hosts: ["./alpha.default.svc.cluster.local"] }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: web-b, namespace: default }
spec:
  workloadSelector: { labels: { app: web-b } }
  egress: [{ hosts: ["./beta.default.svc.cluster.local"] }]
"""


def sh(*args, check=True):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s%s" % (" ".join(map(str, args)), r.stdout, r.stderr))
    return r


def eventually(fn, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return fn()


class Netns:
    """Two namespaces, each with a veth to the root namespace: root side 10.251.N.{1,5}/30,
    namespace side .2 and .6 (N from the pid, so that concurrent runs do not collide)."""

    def __init__(self):
        pid = os.getpid()
        third = 16 + pid % 200
        self.names = ["mpc%da" % pid, "mpc%db" % pid]
        self.host_ips = ["10.251.%d.1" % third, "10.251.%d.5" % third]
        self.ips = ["10.251.%d.2" % third, "10.251.%d.6" % third]
        self.made = []
        for ns, host, ip in zip(self.names, self.host_ips, self.ips):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            sh("ip", "link", "add", ns + "0", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "addr", "add", host + "/30", "dev", ns + "0")
            sh("ip", "link", "set", ns + "0", "up")
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", ip + "/30", "dev", "eth0")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

    def remove(self):
        for ns in self.made:
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            sh("ip", "netns", "del", ns, check=False)  # its veth pair goes with it


@pytest.fixture
def two_sidecars(tmp_path):
    net = None
    procs = []
    mastd = None
    try:
        net = Netns()
        xds, http = free_port(), free_port()
        (tmp_path / "config").mkdir()
        mastd = subprocess.Popen([MASTD, "--config-dir", str(tmp_path / "config"), "--listen-address",
                                  "0.0.0.0", "--xds-port", str(xds), "--http-port", str(http),
                                  "--debounce-after", "20", "--debounce-max", "200"],
                                 stdout=open(tmp_path / "mastd.log", "w"), stderr=subprocess.STDOUT)
        env = dict(os.environ, MASTD_ADDR="127.0.0.1:%d" % http)

        def ctl(*args, user=None):
            cmd = [MASTCTL, *args]
            if user is not None:
                cmd = ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups"] + cmd
            return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30)

        assert eventually(lambda: ctl("proxy-status").returncode == 0, 10), \
            open(tmp_path / "mastd.log").read()
        r = subprocess.run([MASTCTL, "apply", "-f", "-"], input=CONFIG, capture_output=True,
                           text=True, env=env, timeout=30)
        assert r.returncode == 0, r.stderr
        for i, (name, admin) in enumerate([("web-a", 15000), ("web-b", 15123)]):
            work = tmp_path / name
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", net.names[i], AGENT, "proxy", "sidecar",
                 "--discovery-address", "%s:%d" % (net.host_ips[i], xds),
                 "--workload", name + ".default", "--ip", net.ips[i], "--labels", "app=" + name,
                 "--admin-port", str(admin), "--work-dir", str(work), "--proxy-bin", PROXY,
                 "--proxy-uid", "0", "--concurrency", "1", "--drain-time-s", "1"],
                stdout=open(tmp_path / (name + ".log"), "w"), stderr=subprocess.STDOUT,
                start_new_session=True))

        def synced():
            rows = [l for l in ctl("proxy-status").stdout.splitlines() if l.startswith("sidecar~")]
            return len(rows) == 2 and all(r.split()[2:4] == ["SYNCED"] * 2 for r in rows)
        assert eventually(synced, 30), ctl("proxy-status").stdout + "".join(
            open(tmp_path / (n + ".log")).read() for n in ("web-a", "web-b"))
        yield ctl, net
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        if mastd:
            mastd.terminate()
            mastd.wait(timeout=10)
        if net:
            net.remove()


def clusters_of(out):
    """The SERVICE FQDN column of a `proxy-config cluster` table."""
    lines = out.splitlines()
    assert lines and lines[0].startswith("SERVICE FQDN"), out
    return [l.split()[0] for l in lines[1:] if l.strip()]


def test_proxy_config_by_name_enters_the_proxy_namespace(two_sidecars):
    ctl, net = two_sidecars
    # By NAME.NAMESPACE: each proxy's own clusters, read from its admin inside its namespace
    # (web-b's on 15123, known only from its node metadata).
    a = ctl("proxy-config", "cluster", "web-a.default")
    assert a.returncode == 0, a.stderr
    assert "alpha.default.svc.cluster.local" in clusters_of(a.stdout), a.stdout
    assert "beta.default.svc.cluster.local" not in clusters_of(a.stdout), a.stdout
    b = ctl("proxy-config", "cluster", "web-b.default")
    assert b.returncode == 0, b.stderr
    assert "beta.default.svc.cluster.local" in clusters_of(b.stdout), b.stdout
    assert "alpha.default.svc.cluster.local" not in clusters_of(b.stdout), b.stdout
    row = [l for l in b.stdout.splitlines() if l.startswith("beta.")][0]
    assert row.split()[1:4] == ["8002", "-", "outbound"], row

    # The full node id and a unique prefix name the same proxy; -o json gives the resources.
    node_b = "sidecar~%s~web-b.default~default.svc.cluster.local" % net.ips[1]
    assert ctl("proxy-config", "cluster", node_b).stdout == b.stdout
    assert ctl("proxy-config", "clusters", "web-b").stdout == b.stdout
    j = ctl("proxy-config", "cluster", "web-a", "-o", "json")
    assert j.returncode == 0, j.stderr
    assert "outbound|8001||alpha.default.svc.cluster.local" in [c["name"] for c in json.loads(j.stdout)]
    # Other types go the same way.
    lst = ctl("proxy-config", "listener", "web-b.default")
    assert lst.returncode == 0 and "virtualOutbound" in lst.stdout, lst.stdout + lst.stderr
    boot = ctl("proxy-config", "bootstrap", "web-b.default")
    assert boot.returncode == 0, boot.stderr
    assert json.loads(boot.stdout)["node"]["id"] == node_b
    ep = ctl("proxy-config", "endpoint", "web-a.default")
    assert ep.returncode == 0 and "10.250.0.1:8001" in ep.stdout, ep.stdout + ep.stderr


def test_proxy_config_unknown_ambiguous_and_admin_precedence(two_sidecars):
    ctl, net = two_sidecars
    r = ctl("proxy-config", "cluster", "nosuch.default")
    assert r.returncode == 1 and r.stdout == "", r.stdout
    assert 'no proxy named "nosuch.default"' in r.stderr, r.stderr
    assert "web-a.default" in r.stderr and "web-b.default" in r.stderr, r.stderr

    r = ctl("proxy-config", "cluster", "web-")
    assert r.returncode == 1 and r.stdout == "", r.stdout
    assert '"web-" matches 2 proxies' in r.stderr, r.stderr
    assert "web-a.default" in r.stderr and "web-b.default" in r.stderr, r.stderr
    r = ctl("proxy-config", "cluster", "sidecar~")
    assert r.returncode == 1 and "matches 2 proxies" in r.stderr, r.stderr

    # --admin wins over PROXY (nothing listens on port 1 here).
    r = ctl("proxy-config", "cluster", "web-a.default", "--admin", "127.0.0.1:1")
    assert r.returncode == 1 and "127.0.0.1:1" in r.stderr, r.stderr

    # Without root the proxy's namespace cannot be entered: the error says why and what to do.
    r = ctl("proxy-config", "cluster", "web-a.default", user=65534)
    assert r.returncode == 1, r.stdout
    assert "not permitted" in r.stderr and "--admin 127.0.0.1:15000" in r.stderr, r.stderr
