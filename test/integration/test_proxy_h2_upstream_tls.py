"""HTTP/2 to the upstream over TLS, agreed with ALPN: a cluster with an UpstreamTlsContext
(alpn_protocols [h2]) and HttpProtocolOptions explicit_http_config http2_protocol_options, in
front of nghttpd — nghttp2's HTTP/2-only server, which refuses a TLS client that does not negotiate
h2 and, with -v, logs the ALPN offer, the negotiated protocol and every frame it receives. Clients
are curl over HTTP/1.1 and HTTP/2 (h2c prior knowledge) to a plaintext listener."""
import os
import re
import shutil
import socket
import subprocess
import threading

import pytest

from conftest import curl, free_port, wait_until

NGHTTPD = shutil.which("nghttpd") or "/usr/sbin/nghttpd"

pytestmark = pytest.mark.skipif(not os.path.exists(NGHTTPD),
                                reason="nghttpd (nghttp2-server) missing: scripts/install-deps.sh")


class Nghttpd:
    """nghttpd -v over TLS with the test PKI's server certificate, serving `htdocs`."""

    def __init__(self, certs, tmp_path, echo_upload=False):
        self.port = free_port()
        self.htdocs = tmp_path / "htdocs"
        self.htdocs.mkdir()
        self.log_path = tmp_path / "nghttpd.log"
        self.log = open(self.log_path, "w")
        args = [NGHTTPD, "-v", "-a", "127.0.0.1", "-d", str(self.htdocs)]
        if echo_upload:
            args.append("--echo-upload")
        args += [str(self.port), certs["server.key"], certs["server.crt"]]
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        # Wait on the listening socket without connecting (a probe would be a logged session).
        wait_until(lambda: self._listening(), what="nghttpd listening")

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError("nghttpd exited:\n" + self.output())
        with open("/proc/net/tcp") as f:
            return any(":%04X 00000000:0000 0A" % self.port in l for l in f)

    def output(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def requests(self):
        """(session id, stream id, :path) of every request HEADERS it received."""
        return [(int(m.group(1)), int(m.group(2)), m.group(3)) for m in re.finditer(
            r"^\[id=(\d+)\] \[[ 0-9.]+\] recv \(stream_id=(\d+)\) :path: (\S+)$", self.output(),
            re.M)]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=5)
        self.log.close()


@pytest.fixture
def nghttpd(certs, tmp_path):
    started = []

    def make(**kw):
        n = Nghttpd(certs, tmp_path, **kw)
        started.append(n)
        return n

    yield make
    for n in started:
        n.stop()


def bootstrap(certs, port, alpn=("h2",), protocol="explicit_http_config: { http2_protocol_options: {} }"):
    return """
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
  - name: l
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: l
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
  - name: origin
    connect_timeout: 2s
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        %(protocol)s
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: server.test
        common_tls_context:
          alpn_protocols: [%(alpn)s]
          validation_context:
            trusted_ca: { filename: %(ca)s }
            match_typed_subject_alt_names:
            - san_type: DNS
              matcher: { exact: server.test }
    load_assignment:
      cluster_name: origin
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %(port)d } } }
""" % {"protocol": protocol, "alpn": ", ".join(alpn), "ca": certs["ca.crt"], "port": port}


def test_h2_over_tls_negotiated_with_alpn(proxy, certs, nghttpd):
    origin = nghttpd()
    (origin.htdocs / "hello.txt").write_text("hello over h2\n")
    p = proxy(bootstrap(certs, origin.port))
    url = "http://127.0.0.1:%d/hello.txt" % p.ports["l"]
    for args in ([], ["--http2-prior-knowledge"], []):
        status, _, body = curl(*args, url)
        assert (status, body) == (200, "hello over h2\n"), origin.output()[-2000:]
    log = origin.output()
    # The proxy offered exactly h2, nghttpd selected it, and all three requests were streams 1, 3,
    # 5 of one HTTP/2 session (one TLS handshake: the connection is pooled and reused).
    assert re.search(r"\[ALPN\] client offers:\n \* h2\n(?! \*)", log), log[:1000]
    assert log.count("The negotiated protocol: h2") == 1, log[:2000]
    assert log.count("SSL/TLS handshake completed") == 1
    assert origin.requests() == [(1, 1, "/hello.txt"), (1, 3, "/hello.txt"), (1, 5, "/hello.txt")]
    assert p.stats()["cluster.origin.upstream_cx_total"] == "1"


def test_h2_over_tls_request_bodies_and_concurrent_streams(proxy, certs, nghttpd, tmp_path):
    """nghttpd --echo-upload answers a POST with its body: 200 KB each way is more than the 64 KB
    initial HTTP/2 window, so both directions need WINDOW_UPDATEs; eight concurrent clients share
    the one upstream session as separate streams."""
    origin = nghttpd(echo_upload=True)
    p = proxy(bootstrap(certs, origin.port))
    results = {}

    def post(i):
        data = tmp_path / ("body%d" % i)
        data.write_bytes(bytes([48 + i]) * 200_000)
        results[i] = curl("--data-binary", "@%s" % data, "-H", "content-type: application/x-test",
                          "http://127.0.0.1:%d/upload/%d" % (p.ports["l"], i), timeout=20)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        status, _, body = results[i]
        assert status == 200, origin.output()[-2000:]
        assert body == chr(48 + i) * 200_000
    reqs = origin.requests()
    assert sorted(r[2] for r in reqs) == ["/upload/%d" % i for i in range(8)]
    # Streams of HTTP/2 sessions (nghttpd's ids), never one connection per request: with the
    # requests racing the first handshake the pool may open at most a couple of sessions.
    sessions = {r[0] for r in reqs}
    assert len(sessions) < 8 and len(reqs) == 8
    assert "recv WINDOW_UPDATE" in origin.output()


def test_tls_upstream_without_h2_in_alpn_is_refused_by_an_h2_only_origin(proxy, certs, nghttpd):
    """The control: offering only http/1.1 makes nghttpd drop the session (no h2 negotiated), so
    the tests above pass because of ALPN h2, not in spite of it."""
    origin = nghttpd()
    (origin.htdocs / "hello.txt").write_text("hello\n")
    p = proxy(bootstrap(certs, origin.port, alpn=("http/1.1",),
                        protocol="explicit_http_config: { http_protocol_options: {} }"))
    status, _, _ = curl("http://127.0.0.1:%d/hello.txt" % p.ports["l"])
    assert status == 503
    assert origin.requests() == []
    assert "The negotiated protocol: h2" not in origin.output()
