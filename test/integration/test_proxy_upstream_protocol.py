"""Upstream protocol selection from HttpProtocolOptions (typed_extension_protocol_options):
use_downstream_protocol_config (the upstream request speaks what the downstream request spoke)
and auto_config (TLS ALPN "h2,http/1.1" decides per connection), as Envoy does. Backends are
real servers: nghttpd (nghttp2's HTTP/2 server, h2c or TLS), Python's http.server, and a Python
TLS server that only offers http/1.1. Clients are curl over HTTP/1.1 and HTTP/2 prior knowledge."""
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading

import pytest

from conftest import Upstream, basic_config, curl, free_port, wait_until, PROXY
from test_proxy_h2_upstream_tls import bootstrap as tls_bootstrap, nghttpd  # noqa: F401 (fixture)

NGHTTPD = shutil.which("nghttpd") or "/usr/sbin/nghttpd"

pytestmark = pytest.mark.skipif(not os.path.exists(NGHTTPD),
                                reason="nghttpd (nghttp2-server) missing: scripts/install-deps.sh")

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def protocol_options(body):
    return """    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        %s""" % body


class SniffingFront:
    """A plaintext backend that speaks both protocols: it reads each connection's first bytes,
    records "h2" (the HTTP/2 connection preface) or "http/1.1", and relays the connection to
    nghttpd --no-tls (h2c) or to Python's http.server accordingly."""

    def __init__(self, h2_port, h1_port):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.targets = {"h2": h2_port, "http/1.1": h1_port}
        self.seen = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(c,), daemon=True).start()

    def _relay(self, c):
        first = b""
        while len(first) < len(H2_PREFACE):
            b = c.recv(len(H2_PREFACE) - len(first))
            if not b:
                c.close()
                return
            first += b
            if not H2_PREFACE.startswith(first):
                break
        proto = "h2" if first == H2_PREFACE else "http/1.1"
        self.seen.append(proto)
        u = socket.create_connection(("127.0.0.1", self.targets[proto]))
        u.sendall(first)

        def pipe(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pipe, args=(u, c), daemon=True).start()
        pipe(c, u)

    def stop(self):
        self.sock.close()


@pytest.fixture
def dual_backend(tmp_path):
    htdocs = tmp_path / "h2docs"
    htdocs.mkdir()
    (htdocs / "hello").write_text("from nghttpd\n")
    port = free_port()
    log = open(tmp_path / "nghttpd-h2c.log", "w")
    h2 = subprocess.Popen([NGHTTPD, "--no-tls", "-a", "127.0.0.1", "-d", str(htdocs), str(port)],
                          stdout=log, stderr=subprocess.STDOUT)

    def listening():
        with open("/proc/net/tcp") as f:
            return any(":%04X 00000000:0000 0A" % port in l for l in f)

    wait_until(listening, what="nghttpd --no-tls listening")
    h1 = Upstream("python-http1")
    front = SniffingFront(port, h1.port)
    yield front, h1
    front.stop()
    h1.stop()
    h2.terminate()
    h2.wait(timeout=5)
    log.close()


def test_use_downstream_protocol_follows_each_request(proxy, dual_backend):
    front, h1 = dual_backend
    p = proxy(basic_config(front.port, cluster_extra=protocol_options(
        "use_downstream_protocol_config: {}")))
    url = "http://127.0.0.1:%d/hello" % p.ports["ingress"]
    # HTTP/2 downstream -> an HTTP/2 pool: nghttpd answers, over one pooled connection.
    for _ in range(2):
        status, _, body = curl("--http2-prior-knowledge", url)
        assert (status, body) == (200, "from nghttpd\n")
    # HTTP/1.1 downstream -> the HTTP/1 pool of the same host: Python answers.
    for _ in range(2):
        status, headers, _ = curl("--http1.1", url)
        assert status == 200 and headers.get("x-upstream-name") == "python-http1"
    # And HTTP/2 again: the HTTP/2 pool kept its connection beside the HTTP/1 one.
    status, _, body = curl("--http2-prior-knowledge", url)
    assert (status, body) == (200, "from nghttpd\n")
    assert front.seen == ["h2", "http/1.1"], front.seen
    assert len(h1.requests) == 2
    st = p.stats()
    assert st["cluster.backend.upstream_cx_http2_total"] == "1"
    assert st["cluster.backend.upstream_cx_http1_total"] == "1"
    assert st["cluster.backend.upstream_cx_total"] == "2"
    # The cluster's config is shown as given.
    dump = p.admin("/config_dump")[1]
    assert "use_downstream_protocol_config" in dump


def test_explicit_http1_stays_http1_for_h2_clients(proxy, dual_backend):
    """The control: without use_downstream_protocol_config an HTTP/2 client's request still goes
    upstream over HTTP/1.1."""
    front, h1 = dual_backend
    p = proxy(basic_config(front.port))
    status, headers, _ = curl("--http2-prior-knowledge", "http://127.0.0.1:%d/hello"
                              % p.ports["ingress"])
    assert status == 200 and headers.get("x-upstream-name") == "python-http1"
    assert front.seen == ["http/1.1"]
    assert p.stats()["cluster.backend.upstream_cx_http1_total"] == "1"
    assert p.stats()["cluster.backend.upstream_cx_http2_total"] == "0"


AUTO = "auto_config: {}"


def test_auto_config_negotiates_h2_with_an_h2_origin(proxy, certs, nghttpd):
    origin = nghttpd()
    (origin.htdocs / "hello.txt").write_text("auto h2\n")
    # No alpn_protocols in the TLS context: the cluster offers Envoy's default "h2,http/1.1".
    cfg = tls_bootstrap(certs, origin.port, alpn=(), protocol=AUTO).replace(
        "          alpn_protocols: []\n", "")
    assert "alpn_protocols" not in cfg
    p = proxy(cfg)
    url = "http://127.0.0.1:%d/hello.txt" % p.ports["l"]
    for args in (["--http1.1"], ["--http2-prior-knowledge"], ["--http1.1"]):
        status, _, body = curl(*args, url)
        assert (status, body) == (200, "auto h2\n"), origin.output()[-2000:]
    log = origin.output()
    assert re.search(r"\[ALPN\] client offers:\n \* h2\n \* http/1\.1\n", log), log[:1000]
    assert log.count("The negotiated protocol: h2") == 1, log[:2000]
    # One HTTP/2 session carried all three requests, whatever the client spoke.
    assert origin.requests() == [(1, 1, "/hello.txt"), (1, 3, "/hello.txt"), (1, 5, "/hello.txt")]
    st = p.stats()
    assert st["cluster.origin.upstream_cx_http2_total"] == "1"
    assert st["cluster.origin.upstream_cx_http1_total"] == "0"
    assert st["cluster.origin.upstream_cx_total"] == "1"


class Http1TlsOrigin:
    """A TLS HTTP/1.1 server that only knows ALPN http/1.1 (Python ssl + http.server); records
    the protocol each handshake selected."""

    def __init__(self, certs):
        import http.server
        import socketserver

        origin = self
        self.alpn = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                body = ("http/1.1 origin saw %s\n" % self.request_version).encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certs["server.crt"], certs["server.key"])
        ctx.set_alpn_protocols(["http/1.1"])

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, addr = self.socket.accept()
                tls = ctx.wrap_socket(sock, server_side=True)
                origin.alpn.append(tls.selected_alpn_protocol())
                return tls, addr

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_auto_config_falls_back_to_http1_when_the_origin_only_offers_it(proxy, certs):
    origin = Http1TlsOrigin(certs)
    try:
        cfg = tls_bootstrap(certs, origin.port, alpn=(), protocol=AUTO).replace(
            "          alpn_protocols: []\n", "")
        p = proxy(cfg)
        url = "http://127.0.0.1:%d/x" % p.ports["l"]
        for args in (["--http2-prior-knowledge"], ["--http1.1"], ["--http2-prior-knowledge"]):
            status, _, body = curl(*args, url)
            assert (status, body) == (200, "http/1.1 origin saw HTTP/1.1\n")
        # One keep-alive connection, on which ALPN selected http/1.1.
        assert origin.alpn == ["http/1.1"]
        st = p.stats()
        assert st["cluster.origin.upstream_cx_http1_total"] == "1"
        assert st["cluster.origin.upstream_cx_http2_total"] == "0"
    finally:
        origin.stop()


def _validate(tmp_path, text):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    r = subprocess.run([PROXY, "--mode", "validate", "-c", str(path)], capture_output=True,
                       timeout=20)
    return r.returncode, r.stderr.decode(), str(path)


def test_auto_config_without_tls_is_rejected_like_envoy(tmp_path):
    """Envoy refuses ALPN-based selection on a transport socket without ALPN."""
    rc, err, path = _validate(tmp_path, basic_config(9, cluster_extra=protocol_options(AUTO)))
    assert rc != 0
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(path + ":")
    assert ("static_resources.clusters[0].typed_extension_protocol_options"
            "[envoy.extensions.upstreams.http.v3.HttpProtocolOptions].auto_config: ALPN configured "
            "for cluster backend which has a non-ALPN transport socket") in lines[0], lines[0]


def test_protocol_options_need_a_protocol(tmp_path):
    rc, err, _ = _validate(tmp_path, basic_config(9, cluster_extra=protocol_options(
        "common_http_protocol_options: { idle_timeout: 5s }")))
    assert rc != 0
    assert ("typed_extension_protocol_options[envoy.extensions.upstreams.http.v3."
            "HttpProtocolOptions]: one of explicit_http_config, use_downstream_protocol_config or "
            "auto_config is required") in err, err


def test_good_protocol_options_validate(tmp_path):
    for body in ("use_downstream_protocol_config: { http2_protocol_options: {} }",
                 "explicit_http_config: { http2_protocol_options: {} }"):
        rc, err, _ = _validate(tmp_path, basic_config(9, cluster_extra=protocol_options(body)))
        assert rc == 0, err
