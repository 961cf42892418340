"""VirtualService `tls` routes on a sidecar, end to end: mastd translates them into SNI-matched
filter chains (tcp_proxy to weighted subset clusters) on a real mast-proxy sidecar; curl speaks
TLS through it (no termination in the proxy) to two Python HTTPS backends, and the SNI it sends
picks the backend. A weight edit with mastctl moves one SNI's traffic to the other subset.

No iptables here: the Sidecar's egress listener (bind + port, captureMode NONE) is the really
bound listener the client connects to; it carries the same L4 chains as the captured one."""
import http.server
import socketserver
import ssl
import subprocess
import threading

from conftest import Proxy, curl, free_port, xds_bootstrap
from test_mastd import SIDECAR_NODE, Mesh, NamedHandler, eventually

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: secure, namespace: default }
spec:
  hosts: [secure.example.com]
  ports: [{ number: %(port)d, name: tls, protocol: TLS }]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints:
  - { address: 127.0.0.31, labels: { version: v1 } }
  - { address: 127.0.0.32, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: secure, namespace: default }
spec:
  host: secure.example.com
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: productpage-tls, namespace: default }
spec:
  workloadSelector: { labels: { app: productpage } }
  egress:
  - port: { number: %(port)d, protocol: TLS, name: tls }
    bind: 127.0.0.30
    captureMode: NONE
    hosts: ["./*"]
"""

VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: secure, namespace: default }
spec:
  hosts: [secure.example.com, a.example.com, b.example.com]
  tls:
  - match: [{ port: %(port)d, sniHosts: [a.example.com] }]
    route:
    - { destination: { host: secure.example.com, subset: v1 }, weight: %(a_v1)d }
    - { destination: { host: secure.example.com, subset: v2 }, weight: %(a_v2)d }
  - match: [{ sniHosts: [b.example.com] }]
    route: [{ destination: { host: secure.example.com, subset: v2 } }]
"""


class TlsNamed(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """An HTTPS server answering every GET with its name."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, ip, port, name, cert, key):
        super().__init__((ip, port), NamedHandler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.socket = ctx.wrap_socket(self.socket, server_side=True)
        self.name = name
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_sidecar_routes_tls_by_sni_with_weights(tmp_path, certs):
    mesh = Mesh(tmp_path)
    port = free_port()
    backends = [TlsNamed("127.0.0.31", port, "v1", certs["server.crt"], certs["server.key"]),
                TlsNamed("127.0.0.32", port, "v2", certs["server.crt"], certs["server.key"])]
    sc_dir = tmp_path / "sidecar"
    sc_dir.mkdir()
    sc = None
    try:
        mesh.apply(CONFIG % {"port": port})
        mesh.apply(VS % {"port": port, "a_v1": 100, "a_v2": 0})
        sc = Proxy(sc_dir, xds_bootstrap(mesh.xds_port, SIDECAR_NODE))

        def via(sni):
            try:
                status, _, body = curl("-k", "--resolve", "%s:%d:127.0.0.30" % (sni, port),
                                       "https://%s:%d/" % (sni, port), timeout=3)
                return body if status == 200 else ""
            except Exception:
                return ""

        assert eventually(lambda: via("a.example.com") == "v1", timeout=10), (
            sc.output() + mesh.output()[-2000:])
        # TLS passes through the sidecar: the backend's own certificate reaches the client.
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.30:%d" % port,
                            "-servername", "b.example.com", "-CAfile", certs["ca.crt"]],
                           input=b"", capture_output=True, timeout=10)
        text = r.stdout.decode(errors="replace")
        assert "CN = server.test" in text and "Verify return code: 0 (ok)" in text, text
        assert [via("a.example.com") for _ in range(5)] == ["v1"] * 5
        assert [via("b.example.com") for _ in range(5)] == ["v2"] * 5
        # An SNI no route names matches no chain: the connection is closed, nothing answers.
        assert via("c.example.com") == ""
        # Weighted destinations: 100/0 -> 0/100 moves a.example.com to v2 without restart.
        mesh.apply(VS % {"port": port, "a_v1": 0, "a_v2": 100})
        assert eventually(lambda: via("a.example.com") == "v2", timeout=10), sc.output()
        assert [via("a.example.com") for _ in range(5)] == ["v2"] * 5
        clusters = sc.admin("/clusters")[1]
        assert "outbound|%d|v1|secure.example.com::127.0.0.31:%d" % (port, port) in clusters
        assert "outbound|%d|v2|secure.example.com::127.0.0.32:%d" % (port, port) in clusters
    finally:
        if sc:
            sc.stop()
        for b in backends:
            b.shutdown()
            b.server_close()
        mesh.stop()
