"""Upstream connection pool lifetime: common_http_protocol_options.idle_timeout closes pooled
HTTP/1.1 and HTTP/2 connections that stay idle (cluster.<name>.upstream_cx_idle_timeout), as
Envoy does."""
import os
import shutil
import subprocess
import time

import pytest

from conftest import EchoHandler, Upstream, basic_config, curl, free_port, wait_until


class CountingHandler(EchoHandler):
    """EchoHandler that counts the connections the proxy closes (the handler's finish() runs
    once the peer has closed its keep-alive connection)."""

    def finish(self):
        super().finish()
        self.server.closed += 1


class CountingUpstream(Upstream):
    def __init__(self):
        self.closed = 0
        super().__init__("counting")
        self.RequestHandlerClass = CountingHandler


def _pool_options(idle):
    return """    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        common_http_protocol_options: { idle_timeout: %s }
        explicit_http_config: { http_protocol_options: {} }""" % idle


@pytest.fixture
def counting_upstream():
    servers = []

    def make():
        s = CountingUpstream()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def test_idle_upstream_connection_closed_after_idle_timeout(proxy, counting_upstream):
    up = counting_upstream()
    p = proxy(basic_config(up.port, cluster_extra=_pool_options("0.4s")))
    port = p.ports["ingress"]
    for i in range(3):
        assert curl("http://127.0.0.1:%d/a%d" % (port, i))[0] == 200
    # Sequential requests reuse one pooled connection.
    assert len({r["peer_port"] for r in up.requests}) == 1
    assert up.closed == 0
    wait_until(lambda: up.closed == 1, timeout=3, what="the upstream to see a close")
    s = p.stats()
    assert s["cluster.backend.upstream_cx_idle_timeout"] == "1"
    assert s["cluster.backend.upstream_cx_active"] == "0"
    assert s["cluster.backend.upstream_cx_destroy"] == "1"
    # The next request opens a new connection.
    assert curl("http://127.0.0.1:%d/b" % port)[0] == 200
    assert len({r["peer_port"] for r in up.requests}) == 2
    assert p.stats()["cluster.backend.upstream_cx_total"] == "2"


def test_busy_connection_is_not_closed_by_idle_timeout(proxy, counting_upstream):
    # A request longer than the idle timeout: the timer only runs while the connection is idle.
    up = counting_upstream()
    p = proxy(basic_config(up.port, cluster_extra=_pool_options("0.5s")))
    port = p.ports["ingress"]
    assert curl("http://127.0.0.1:%d/delay/900" % port)[0] == 200
    assert p.stats()["cluster.backend.upstream_cx_idle_timeout"] == "0"
    assert up.closed == 0
    wait_until(lambda: up.closed == 1, timeout=3, what="the idle close")


def test_default_idle_timeout_keeps_connection(proxy, counting_upstream):
    # Without idle_timeout (Envoy's default: 1 hour) the connection stays pooled.
    up = counting_upstream()
    p = proxy(basic_config(up.port))
    assert curl("http://127.0.0.1:%d/x" % p.ports["ingress"])[0] == 200
    time.sleep(1.0)
    assert up.closed == 0
    assert p.stats()["cluster.backend.upstream_cx_active"] == "1"


NGHTTPD = shutil.which("nghttpd") or "/usr/sbin/nghttpd"


@pytest.mark.skipif(not os.path.exists(NGHTTPD), reason="nghttpd missing: scripts/install-deps.sh")
def test_idle_http2_upstream_connection_closed(proxy, tmp_path):
    htdocs = tmp_path / "htdocs"
    htdocs.mkdir()
    (htdocs / "hello").write_text("hi")
    port = free_port()
    log = open(tmp_path / "nghttpd.log", "w")
    srv = subprocess.Popen([NGHTTPD, "--no-tls", "-v", "-a", "127.0.0.1", "-d", str(htdocs),
                            str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: any(":%04X 00000000:0000 0A" % port in l
                               for l in open("/proc/net/tcp")), what="nghttpd listening")
        opts = _pool_options("0.4s").replace("{ http_protocol_options: {} }",
                                             "{ http2_protocol_options: {} }")
        p = proxy(basic_config(port, cluster_extra=opts))
        url = "http://127.0.0.1:%d/hello" % p.ports["ingress"]
        for _ in range(2):
            status, _, body = curl(url)
            assert status == 200 and body == "hi"
        wait_until(lambda: p.stats()["cluster.backend.upstream_cx_idle_timeout"] == "1",
                   timeout=3, what="the HTTP/2 connection's idle timeout")
        assert p.stats()["cluster.backend.upstream_cx_active"] == "0"
        assert curl(url)[0] == 200
        assert p.stats()["cluster.backend.upstream_cx_total"] == "2"
    finally:
        srv.terminate()
        srv.wait(timeout=5)
        log.close()
