"""TLS on both sides with real clients: downstream termination from files (openssl s_client ALPN
negotiation, curl over HTTP/1.1 and HTTP/2, h2load, client certificates required and checked
against the CA), and upstream TLS (SNI, CA validation, match_typed_subject_alt_names, a client
certificate) towards a Python TLS server and `openssl s_server -www`. The PKI is generated per
test session with openssl."""
import http.server
import json
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import EchoHandler, Upstream, access_log_hcm, curl, wait_for_lines, wait_until

HCM = """
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %(prefix)s
%(hcm_extra)s
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: %(cluster)s }
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
"""


def downstream_tls(certs, alpn=("h2", "http/1.1"), require_client=False, ca=None):
    vc = ""
    if ca:
        vc = """
            validation_context: { trusted_ca: { filename: %s } }""" % ca
    return """
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: %s
          common_tls_context:
            alpn_protocols: [%s]
            tls_certificates:
            - certificate_chain: { filename: %s }
              private_key: { filename: %s }%s
""" % ("true" if require_client else "false", ", ".join('"%s"' % a for a in alpn),
       certs["server.crt"], certs["server.key"], vc)


def config(listeners, clusters):
    return """
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:%s
  clusters:%s
""" % (listeners, clusters)


def listener(name, chain_extra, cluster="backend", hcm_extra="", prefix=None):
    return """
  - name: %s
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:%s%s""" % (name, HCM % {"prefix": prefix or name, "cluster": cluster,
                                      "hcm_extra": hcm_extra}, chain_extra)


def cluster(name, port, extra="", address="127.0.0.1"):
    return """
  - name: %s
    connect_timeout: 2s
    type: STATIC
%s
    load_assignment:
      cluster_name: %s
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: %s, port_value: %d } } }
""" % (name, extra, name, address, port)


def s_client(port, *args, data=b"Q\n", timeout=10):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                        "-servername", "localhost", *args], input=data, capture_output=True,
                       timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


# === Downstream termination ===


@pytest.fixture
def tls_proxy(proxy, upstream, certs, tmp_path):
    up = upstream("plain")
    log = str(tmp_path / "access.log")
    fmt = "%PROTOCOL% %RESPONSE_CODE% %REQUESTED_SERVER_NAME% %REQ(X-FORWARDED-PROTO)%\\n"
    listeners = (listener("tls", downstream_tls(certs), hcm_extra=access_log_hcm(log, fmt)) +
                 listener("mtls", downstream_tls(certs, require_client=True, ca=certs["ca.crt"])) +
                 listener("h1only", downstream_tls(certs, alpn=("http/1.1",))))
    p = proxy(config(listeners, cluster("backend", up.port)))
    return p, up, log


@pytest.mark.parametrize("offer,expect", [("h2,http/1.1", "h2"), ("http/1.1,h2", "h2"),
                                          ("http/1.1", "http/1.1"), ("foo", None)])
def test_alpn_negotiation_with_s_client(tls_proxy, certs, offer, expect):
    p, up, log = tls_proxy
    rc, out = s_client(p.ports["tls"], "-alpn", offer, "-CAfile", certs["ca.crt"])
    assert "Verify return code: 0 (ok)" in out, out
    if expect:
        assert "ALPN protocol: %s" % expect in out, out
    else:
        assert "No ALPN negotiated" in out, out


def test_listener_offering_only_http11_never_picks_h2(tls_proxy, certs):
    p, up, log = tls_proxy
    rc, out = s_client(p.ports["h1only"], "-alpn", "h2,http/1.1", "-CAfile", certs["ca.crt"])
    assert "ALPN protocol: http/1.1" in out, out
    status, headers, body = curl("--http2", "--cacert", certs["ca.crt"], "-w", "%{http_version}",
                                 "https://localhost:%d/x" % p.ports["h1only"])
    assert status == 200 and body.endswith("1.1")


def test_curl_http1_and_http2_over_tls(tls_proxy, certs):
    p, up, log = tls_proxy
    port = p.ports["tls"]
    status, headers, body = curl("--http1.1", "--cacert", certs["ca.crt"],
                                 "https://localhost:%d/one" % port)
    assert status == 200
    seen = json.loads(body)
    assert seen["path"] == "/one" and seen["headers"]["x-forwarded-proto"] == "https"
    status, headers, body = curl("--http2", "--cacert", certs["ca.crt"], "-w", "\n%{http_version}",
                                 "https://localhost:%d/two" % port)
    assert status == 200
    payload, _, version = body.rpartition("\n")
    assert version == "2" and json.loads(payload)["path"] == "/two"
    lines = wait_for_lines(log, 2)
    assert lines[0].split() == ["HTTP/1.1", "200", "localhost", "https"]
    assert lines[1].split() == ["HTTP/2", "200", "localhost", "https"]
    stats = p.stats()
    assert stats["http.tls.downstream_cx_http1_total"] == "1"
    assert stats["http.tls.downstream_cx_http2_total"] == "1"


def test_h2load_over_tls(tls_proxy, certs):
    p, up, log = tls_proxy
    r = subprocess.run(["h2load", "-n", "100", "-c", "2", "-m", "5",
                        "https://127.0.0.1:%d/load" % p.ports["tls"]], capture_output=True,
                       timeout=30)
    out = r.stdout.decode()
    assert "Application protocol: h2" in out, out
    assert "100 succeeded" in out and "0 failed" in out, out


def test_client_certificate_required(tls_proxy, certs):
    p, up, log = tls_proxy
    port = p.ports["mtls"]
    url = "https://localhost:%d/m" % port
    # No certificate: the handshake fails, nothing reaches the upstream.
    status, _, err = curl("--cacert", certs["ca.crt"], url)
    assert status == 0, err
    rc, out = s_client(port, "-CAfile", certs["ca.crt"], data=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert "HTTP/1.1 200" not in out
    # A certificate from another CA: rejected too.
    status, _, err = curl("--cacert", certs["ca.crt"], "--cert", certs["other-client.crt"],
                          "--key", certs["other-client.key"], url)
    assert status == 0, err
    assert up.requests == []
    # Signed by the trusted CA: accepted.
    status, _, body = curl("--cacert", certs["ca.crt"], "--cert", certs["client.crt"],
                           "--key", certs["client.key"], url)
    assert status == 200 and json.loads(body)["path"] == "/m"
    stats = p.stats()
    ssl_errors = [v for k, v in stats.items()
                  if k.startswith("listener.") and k.endswith("ssl.connection_error")]
    assert sum(int(v) for v in ssl_errors) >= 3


def test_plaintext_to_tls_listener_is_dropped(tls_proxy):
    p, up, log = tls_proxy
    s = socket.create_connection(("127.0.0.1", p.ports["tls"]), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
    except (socket.timeout, ConnectionResetError):
        pass
    assert b"HTTP/1.1 200" not in data
    assert up.requests == []


# === Upstream TLS ===


class TlsUpstream(Upstream):
    """The echo upstream behind TLS; records the SNI of every handshake and the client
    certificate's subject CN."""

    def __init__(self, certs, name="tls-upstream", client_ca=None, alpn=None):
        self.sni = []
        self.peer_cns = []
        super().__init__(name)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certs["server.crt"], certs["server.key"])
        if client_ca:
            ctx.load_verify_locations(client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        if alpn:
            ctx.set_alpn_protocols(alpn)
        ctx.sni_callback = lambda sock, name, c: self.sni.append(name)
        self.ctx = ctx

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.settimeout(5)
        tls = self.ctx.wrap_socket(sock, server_side=True)
        cert = tls.getpeercert()
        if cert:
            for rdn in cert.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        self.peer_cns.append(v)
        tls.settimeout(None)
        return tls, addr

    def handle_error(self, request, client_address):
        pass  # failed handshakes are part of the tests


def upstream_tls(certs, sni="server.test", ca=None, sans=(), client_cert=False, alpn=None):
    vc = ""
    if ca:
        matchers = "".join("""
                - san_type: %s
                  matcher: { %s: "%s" }""" % m for m in sans)
        vc = """
            validation_context:
              trusted_ca: { filename: %s }%s""" % (ca, ("\n              match_typed_subject_alt_names:" + matchers) if sans else "")
    cc = ""
    if client_cert:
        cc = """
            tls_certificates:
            - certificate_chain: { filename: %s }
              private_key: { filename: %s }""" % (certs["client.crt"], certs["client.key"])
    al = ""
    if alpn:
        al = "\n            alpn_protocols: [%s]" % ", ".join(alpn)
    return """
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: %s
        common_tls_context:%s%s%s
""" % (sni, vc, cc, al)


@pytest.fixture
def tls_upstreams():
    started = []

    def make(*a, **kw):
        u = TlsUpstream(*a, **kw)
        started.append(u)
        return u

    yield make
    for u in started:
        u.stop()


def _routes_to(names):
    return "".join(listener(n, "", cluster=n) for n in names)


def test_upstream_tls_sni_ca_and_san_matching(proxy, certs, tls_upstreams, tmp_path):
    up = tls_upstreams(certs)
    ca = certs["ca.crt"]
    clusters = {
        "good": upstream_tls(certs, ca=ca, sans=[("DNS", "exact", "server.test")]),
        "good_ip_san": upstream_tls(certs, ca=ca, sans=[("IP_ADDRESS", "exact", "127.0.0.1")]),
        "good_suffix": upstream_tls(certs, sni="other.name", ca=ca,
                                    sans=[("DNS", "suffix", ".test")]),
        "wrong_san": upstream_tls(certs, ca=ca, sans=[("DNS", "exact", "wrong.test")]),
        "wrong_san_type": upstream_tls(certs, ca=ca, sans=[("URI", "exact", "server.test")]),
        "wrong_ca": upstream_tls(certs, ca=certs["other-ca.crt"]),
        "no_validation": upstream_tls(certs),
    }
    log = str(tmp_path / "access.log")
    fmt = "%UPSTREAM_CLUSTER% %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_TRANSPORT_FAILURE_REASON%\\n"
    listeners = "".join(listener(n, "", cluster=n, prefix=n,
                                 hcm_extra=access_log_hcm(log, fmt)) for n in clusters)
    p = proxy(config(listeners, "".join(cluster(n, up.port, extra=x) for n, x in clusters.items())))

    def get(name):
        return curl("http://127.0.0.1:%d/%s" % (p.ports[name], name))

    for name in ("good", "good_ip_san", "good_suffix", "no_validation"):
        status, _, body = get(name)
        assert status == 200, (name, body)
        assert json.loads(body)["path"] == "/" + name
    assert up.sni.count("server.test") >= 3 and "other.name" in up.sni
    for name in ("wrong_san", "wrong_san_type", "wrong_ca"):
        status, _, body = get(name)
        assert status == 503, (name, body)
        assert body.startswith("upstream connect error or disconnect/reset before headers. "
                               "reset reason: connection failure, transport failure reason: "), body
        assert "CERTIFICATE_VERIFY_FAILED" in body, body
    paths = [r["path"] for r in up.requests]
    assert sorted(paths) == ["/good", "/good_ip_san", "/good_suffix", "/no_validation"]
    lines = {l.split()[0]: l.split(" ", 3) for l in wait_for_lines(log, 7)}
    assert lines["wrong_ca"][1:3] == ["503", "UF"]
    assert "CERTIFICATE_VERIFY_FAILED" in lines["wrong_san"][3]
    assert lines["good"][1:] == ["200", "-", "-"]


def test_upstream_tls_client_certificate(proxy, certs, tls_upstreams):
    up = tls_upstreams(certs, client_ca=certs["ca.crt"])
    clusters = {"with_cert": upstream_tls(certs, ca=certs["ca.crt"], client_cert=True),
                "without_cert": upstream_tls(certs, ca=certs["ca.crt"])}
    listeners = "".join(listener(n, "", cluster=n) for n in clusters)
    p = proxy(config(listeners, "".join(cluster(n, up.port, extra=x) for n, x in clusters.items())))
    status, _, body = curl("http://127.0.0.1:%d/c" % p.ports["with_cert"])
    assert status == 200, body
    assert up.peer_cns == ["client.test"]
    status, _, body = curl("http://127.0.0.1:%d/c" % p.ports["without_cert"])
    assert status == 503
    assert [r["path"] for r in up.requests] == ["/c"]


def test_upstream_tls_keepalive_reuses_the_session(proxy, certs, tls_upstreams):
    up = tls_upstreams(certs)
    p = proxy(config(listener("l", "", cluster="c"),
                     cluster("c", up.port, extra=upstream_tls(certs, ca=certs["ca.crt"]))))
    for i in range(5):
        status, _, _ = curl("http://127.0.0.1:%d/k%d" % (p.ports["l"], i))
        assert status == 200
    assert len(up.sni) == 1  # one handshake, one connection for five requests
    assert len({r["peer_port"] for r in up.requests}) == 1


def test_upstream_openssl_s_server_www(proxy, certs, tmp_path):
    """openssl s_server -www answers with a close-delimited HTTP/1.0 status page."""
    from conftest import free_port
    port = free_port()
    srv = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-www",
                            "-cert", certs["server.crt"], "-key", certs["server.key"]],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0,
                   what="s_server")
        p = proxy(config(listener("l", "", cluster="s"),
                         cluster("s", port, extra=upstream_tls(
                             certs, ca=certs["ca.crt"],
                             sans=[("DNS", "exact", "localhost")]))))
        status, headers, body = curl("http://127.0.0.1:%d/" % p.ports["l"])
        assert status == 200
        assert "s_server" in body and "Ciphers supported" in body, body[:300]
    finally:
        srv.kill()
        srv.wait()
