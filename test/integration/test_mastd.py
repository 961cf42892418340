"""mastd end to end on loopback: Istio YAML applied with mastctl → mastd (ADS) → mast-proxy as an
ingress gateway → Python upstreams on 127.0.0.x, driven with curl. Covers subset routing by
header, live edits (mastctl apply and direct file edits seen by inotify), validation errors with
file/line/path and nothing written, get/delete, proxy-status, fault injection from a
VirtualService, and an endpoint-only change pushing EDS alone."""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import BIN, Proxy, curl, free_port, xds_bootstrap
import http.server
import socketserver
import threading

MASTD = os.path.join(BIN, "mastd")
MASTCTL = os.path.join(BIN, "mastctl")


class NamedHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Named(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, ip, port, name):
        super().__init__((ip, port), NamedHandler)
        self.name = name
        threading.Thread(target=self.serve_forever, daemon=True).start()


SERVICES = """
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
kind: WorkloadEntry
metadata: { name: reviews-v2, namespace: default }
spec: { address: 127.0.0.12, labels: { app: reviews, version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: { name: gw, namespace: default }
spec:
  selector: { istio: ingressgateway }
  servers: [{ port: { number: %(gw_port)d, name: http, protocol: HTTP }, hosts: ["*"] }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
"""

VS_BY_HEADER = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
"""

GATEWAY_NODE = ("{ id: router~127.0.0.1~ingressgateway-1.default~default.svc.cluster.local, "
                "cluster: istio-ingressgateway, "
                "metadata: { LABELS: { istio: ingressgateway }, NAMESPACE: default } }")


class Mesh:
    def __init__(self, tmp_path, extra_args=()):
        self.extra_args = list(extra_args)
        self.dir = tmp_path / "config"
        self.dir.mkdir()
        self.svc_port = free_port()
        self.gw_port = free_port()
        self.xds_port = free_port()
        self.http_port = free_port()
        self.ups = [Named("127.0.0.11", self.svc_port, "v1"), Named("127.0.0.12", self.svc_port, "v2")]
        self.log = open(tmp_path / "mastd.log", "w+")
        self.env = dict(os.environ, MASTD_ADDR="127.0.0.1:%d" % self.http_port)
        self.start()

    def start(self):
        self.proc = subprocess.Popen(
            [MASTD, "--config-dir", str(self.dir), "--xds-port", str(self.xds_port),
             "--http-port", str(self.http_port), "--debounce-after", "20", "--debounce-max", "200",
             *self.extra_args],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.ctl("proxy-status").returncode == 0:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("mastd not up:\n" + self.output())

    def output(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def ctl(self, *args, stdin=None):
        return subprocess.run([MASTCTL, *args], capture_output=True, text=True, input=stdin,
                              env=self.env, timeout=20)

    def apply(self, text):
        r = self.ctl("apply", "-f", "-", stdin=text)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def stop(self):
        for u in self.ups:
            u.shutdown()
            u.server_close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture
def mesh(tmp_path):
    m = Mesh(tmp_path)
    yield m
    m.stop()


def eventually(fn, timeout=5.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    return last


def get(port, *headers):
    args = []
    for h in headers:
        args += ["-H", h]
    return curl(*args, "http://127.0.0.1:%d/" % port)


def test_gateway_routing_live_edits_and_status(mesh, tmp_path):
    out = mesh.apply(SERVICES % {"svc_port": mesh.svc_port, "gw_port": mesh.gw_port})
    assert "serviceentry.networking.istio.io/reviews created" in out
    assert "gateway.networking.istio.io/gw created" in out
    mesh.apply(VS_BY_HEADER)
    gw_dir = tmp_path / "gw"
    gw_dir.mkdir()
    gw = Proxy(gw_dir, xds_bootstrap(mesh.xds_port, GATEWAY_NODE))
    try:
        port = mesh.gw_port
        assert get(port)[2] == "v1"
        assert get(port, "end-user: jason")[2] == "v2"

        # proxy-status: every type acknowledged.
        st = mesh.ctl("proxy-status")
        row = [l for l in st.stdout.splitlines() if l.startswith("router~")][0]
        assert row.split()[2:6] == ["SYNCED"] * 4, st.stdout

        # proxy-config: the proxy's own view, from its admin endpoint, in istioctl's shapes.
        pc = lambda *a: mesh.ctl("proxy-config", *a, "--admin", gw.admin_address)
        clusters = pc("cluster").stdout
        assert re.search(r"reviews\.default\.svc\.cluster\.local\s+%d\s+v2\s+outbound\s+EDS"
                         % mesh.svc_port, clusters), clusters
        listeners = pc("listener").stdout
        assert re.search(r"0\.0\.0\.0_%d\s+0\.0\.0\.0\s+%d\s+ALL\s+Route: http\.%d"
                         % ((mesh.gw_port,) * 3), listeners), listeners
        routes = pc("route").stdout
        assert "http.%d" % mesh.gw_port in routes and "/*" in routes, routes
        endpoints = pc("endpoint").stdout
        assert re.search(r"127\.0\.0\.12:%d\s+HEALTHY\s+OK\s+outbound\|%d\|v2\|reviews"
                         % (mesh.svc_port, mesh.svc_port), endpoints), endpoints
        raw = json.loads(pc("cluster", "-o", "json").stdout)
        assert any(c["name"].startswith("outbound|") for c in raw)

        # A live edit through mastctl: everyone to v2.
        mesh.apply(VS_BY_HEADER.replace("subset: v1", "subset: v2"))
        assert eventually(lambda: get(port)[2] == "v2")

        # An invalid edit is rejected with file, line and field path; nothing changes.
        files_before = sorted(os.listdir(mesh.dir))
        bad = VS_BY_HEADER.replace("  - route: [{ destination: { host: reviews, subset: v1 } }]",
                                   "  - route: [{ destination: { host: reviews, subset: v1 } }]\n    timeout: 5 parsecs")
        r = mesh.ctl("apply", "-f", "-", stdin=bad)
        assert r.returncode == 1
        assert re.search(r"line \d+: spec\.http\[1\]\.timeout", r.stderr), r.stderr
        assert sorted(os.listdir(mesh.dir)) == files_before
        assert get(port)[2] == "v2"

        # get round-trips the YAML; json too.
        y = mesh.ctl("get", "vs", "reviews", "-o", "yaml")
        assert y.returncode == 0 and "kind: VirtualService" in y.stdout and "end-user" in y.stdout
        j = json.loads(mesh.ctl("get", "virtualservices", "reviews", "-o", "json").stdout)
        assert j["spec"]["http"][0]["match"][0]["headers"]["end-user"]["exact"] == "jason"
        missing = mesh.ctl("get", "dr", "nope")
        assert missing.returncode == 1 and "not found" in missing.stderr

        # Fault injection from the VirtualService reaches the proxy's fault filter.
        fault = VS_BY_HEADER.replace(
            "  - route: [{ destination: { host: reviews, subset: v1 } }]",
            "  - route: [{ destination: { host: reviews, subset: v1 } }]\n"
            "    fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }")
        mesh.apply(fault)
        assert eventually(lambda: get(port)[0] == 418)
        assert get(port, "end-user: jason")[0] == 200

        # A direct edit of a file in the config directory is picked up (inotify).
        vs_file = [f for f in os.listdir(mesh.dir) if f.startswith("virtualservice.")][0]
        (mesh.dir / vs_file).write_text(VS_BY_HEADER)
        assert eventually(lambda: get(port)[0] == 200 and get(port)[2] == "v1")

        # An endpoint-only change (WorkloadEntry moved) pushes EDS and nothing else.
        def versions():
            line = [l for l in mesh.ctl("proxy-status").stdout.splitlines()
                    if l.startswith("router~")][0]
            return {l.split("=")[0]: l.split("=")[1] for l in line.split()[6:]}

        before = versions()
        mesh.apply("""
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: reviews-v1, namespace: default }
spec: { address: 127.0.0.12, labels: { app: reviews, version: v1 } }
""")
        assert eventually(lambda: get(port)[2] == "v2")  # subset v1 now points at 127.0.0.12
        assert eventually(lambda: versions()["EDS"] != before["EDS"])
        after = versions()
        assert (after["CDS"], after["LDS"], after["RDS"]) == (before["CDS"], before["LDS"], before["RDS"])

        # delete: the route goes away → 404 from the gateway.
        d = mesh.ctl("delete", "virtualservice", "reviews")
        assert d.returncode == 0 and "deleted" in d.stdout
        assert eventually(lambda: get(port)[0] == 404)
    finally:
        gw.stop()


def test_proxy_keeps_serving_without_mastd_and_reconnects(mesh, tmp_path):
    mesh.apply(SERVICES % {"svc_port": mesh.svc_port, "gw_port": mesh.gw_port})
    mesh.apply(VS_BY_HEADER)
    gw_dir = tmp_path / "gw"
    gw_dir.mkdir()
    gw = Proxy(gw_dir, xds_bootstrap(mesh.xds_port, GATEWAY_NODE))
    try:
        port = mesh.gw_port
        assert get(port)[2] == "v1"
        mesh.proc.kill()
        mesh.proc.wait()
        time.sleep(0.3)
        assert get(port)[2] == "v1"  # last good config keeps serving
        mesh.start()  # same ports, same config directory: nothing was lost
        assert eventually(lambda: "router~" in mesh.ctl("proxy-status").stdout, timeout=20)
        mesh.apply(VS_BY_HEADER.replace("subset: v1", "subset: v2"))
        assert eventually(lambda: get(port)[2] == "v2", timeout=10)
    finally:
        gw.stop()


def test_analyze_reports_istio_codes(mesh):
    mesh.apply(SERVICES % {"svc_port": mesh.svc_port, "gw_port": mesh.gw_port})
    mesh.apply(VS_BY_HEADER)
    clean = mesh.ctl("analyze")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "No validation issues" in clean.stdout
    bad = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: ["*"]
  gateways: [gw, missing-gw]
  http:
  - route: [{ destination: { host: reviews, subset: v4 }, weight: 50 }, { destination: { host: nowhere.example }, weight: 50 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r1, namespace: default }
spec: { hosts: [reviews], http: [{ route: [{ destination: { host: reviews } }] }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: r2, namespace: default }
spec: { hosts: [reviews.default.svc.cluster.local], http: [{ route: [{ destination: { host: reviews } }] }] }
"""
    r = mesh.ctl("analyze", "-f", "-", stdin=bad)
    assert r.returncode == 79, r.stdout + r.stderr
    out = r.stdout
    assert 'Error [IST0101] (VirtualService default/reviews) Referenced gateway not found: "missing-gw"' in out
    assert 'Error [IST0101] (VirtualService default/reviews) Referenced host+subset in destinationrule not found: "reviews+v4"' in out
    assert 'Error [IST0101] (VirtualService default/reviews) Referenced host not found: "nowhere.example"' in out
    assert "[IST0109]" in out and "default/r1,default/r2" in out
    # analyze -f applies nothing.
    assert mesh.ctl("get", "vs", "r1").returncode == 1
    # An invalid file in the config directory shows up as IST0106.
    (mesh.dir / "broken.yaml").write_text("apiVersion: networking.istio.io/v1\nkind: VirtualService\n"
                                          "metadata: { name: b }\nspec: { hosts: [b], http: [{ timeout: 5 parsecs }] }\n")
    r = eventually(lambda: (lambda x: x if "IST0106" in x.stdout else None)(mesh.ctl("analyze")))
    assert r and r.returncode == 79 and "broken.yaml" in r.stdout, r and r.stdout


SIDECAR_NODE = ("{ id: sidecar~127.0.0.20~productpage-1.default~default.svc.cluster.local, "
                "cluster: productpage.default, "
                "metadata: { LABELS: { app: productpage }, NAMESPACE: default } }")

NO_CAPTURE = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: productpage-no-capture, namespace: default }
spec:
  workloadSelector: { labels: { app: productpage } }
  egress:
  - port: { number: %(svc_port)d, protocol: HTTP, name: http }
    bind: 127.0.0.21
    captureMode: NONE
    hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-mesh, namespace: default }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - route: [{ destination: { host: reviews, subset: v1 } }]
"""


def test_sidecar_egress_listener_without_capture(mesh, tmp_path):
    """No iptables (no root): the Sidecar's explicit egress listener (bind + port, captureMode
    NONE) is a real listener the app connects to, and mesh routing applies through it."""
    mesh.apply(SERVICES % {"svc_port": mesh.svc_port, "gw_port": mesh.gw_port})
    mesh.apply(NO_CAPTURE % {"svc_port": mesh.svc_port})
    sc_dir = tmp_path / "sidecar"
    sc_dir.mkdir()
    sc = Proxy(sc_dir, xds_bootstrap(mesh.xds_port, SIDECAR_NODE))
    try:
        url = "http://127.0.0.21:%d/" % mesh.svc_port

        def via_egress(*headers):
            args = ["-H", "host: reviews:%d" % mesh.svc_port]
            for h in headers:
                args += ["-H", h]
            try:
                return curl(*args, url)
            except Exception:
                return (0, {}, "")

        assert eventually(lambda: via_egress()[0] == 200, timeout=10), sc.output()
        status, headers, body = via_egress()
        assert (status, body) == (200, "v1")
        assert "x-envoy-upstream-service-time" in headers  # answered through the sidecar
        assert via_egress("end-user: jason")[2] == "v2"
        listeners = json.loads(sc.admin("/listeners?format=json")[1])
        names = [l["name"] for l in listeners["listener_statuses"]]
        assert "127.0.0.21_%d" % mesh.svc_port in names, names
        # The Sidecar scopes only this workload: the gateway-less VS did not leak a bound
        # listener into other sidecars (checked in translate tests); here, removing the
        # Sidecar removes the listener.
        mesh.ctl("delete", "sidecar", "productpage-no-capture")
        assert eventually(lambda: "127.0.0.21_%d" % mesh.svc_port not in [
            l["name"] for l in json.loads(sc.admin("/listeners?format=json")[1])["listener_statuses"]],
            timeout=10)
    finally:
        sc.stop()


INGRESS_NONE = """
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: productpage-ingress, namespace: default }
spec:
  workloadSelector: { labels: { app: productpage } }
  ingress:
  - port: { number: %(port)d, protocol: HTTP, name: http }
    bind: 127.0.0.23
    captureMode: NONE
    defaultEndpoint: 127.0.0.1:%(app_port)d
"""


def test_sidecar_ingress_listener_without_capture(mesh, tmp_path):
    """A Sidecar ingress entry with captureMode NONE: a real inbound listener on bind:port that
    forwards to defaultEndpoint, the app's own port."""
    app_port = free_port()
    app = Named("127.0.0.1", app_port, "the-app")
    port = free_port()
    mesh.apply(INGRESS_NONE % {"port": port, "app_port": app_port})
    sc_dir = tmp_path / "sidecar"
    sc_dir.mkdir()
    sc = Proxy(sc_dir, xds_bootstrap(mesh.xds_port, SIDECAR_NODE))
    try:
        url = "http://127.0.0.23:%d/" % port

        def inbound():
            try:
                return curl(url)
            except Exception:
                return (0, {}, "")

        assert eventually(lambda: inbound()[0] == 200, timeout=10), sc.output()
        status, headers, body = inbound()
        assert (status, body) == (200, "the-app")
        assert headers.get("server") == "istio-envoy"  # the inbound HCM answered
        clusters = sc.admin("/clusters")[1]
        assert "inbound|%d||::127.0.0.1:%d" % (port, app_port) in clusters, clusters
    finally:
        sc.stop()
        app.shutdown()
        app.server_close()
