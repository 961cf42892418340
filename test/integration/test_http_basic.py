"""HTTP/1.1 proxying through mast-proxy with curl and raw sockets."""
import json
import socket
import subprocess
import time

from conftest import basic_config, curl, raw


def test_proxies_request_and_sets_envoy_headers(proxy, upstream):
    up = upstream("a")
    p = proxy(basic_config(up.port))
    port = p.ports["ingress"]
    status, headers, body = curl("http://127.0.0.1:%d/hello?x=1" % port, "-H", "Host: example.com")
    assert status == 200
    assert headers["server"] == "envoy"
    assert "x-envoy-upstream-service-time" in headers
    assert "date" in headers
    seen = json.loads(body)
    assert seen["path"] == "/hello?x=1"
    assert seen["headers"]["host"] == "example.com"
    assert seen["headers"]["x-forwarded-proto"] == "http"
    assert len(seen["headers"]["x-request-id"]) == 36
    # An incoming x-request-id is kept.
    _, _, body = curl("http://127.0.0.1:%d/" % port, "-H", "x-request-id: abc")
    assert json.loads(body)["headers"]["x-request-id"] == "abc"


def test_post_body_and_chunked_upload(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port))
    port = p.ports["ingress"]
    status, _, body = curl("http://127.0.0.1:%d/post" % port, "--data-binary", "x" * 100000)
    assert status == 200 and json.loads(body)["body_len"] == 100000
    status, _, body = curl("http://127.0.0.1:%d/post" % port, "-H", "Transfer-Encoding: chunked",
                           "--data-binary", "y" * 5000)
    assert status == 200 and json.loads(body)["body_len"] == 5000


def test_large_response_and_head(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port))
    port = p.ports["ingress"]
    status, headers, body = curl("http://127.0.0.1:%d/bytes/2000000" % port)
    assert status == 200 and len(body) == 2000000
    status, headers, body = curl("-I", "http://127.0.0.1:%d/bytes/10" % port)
    assert status == 200 and body.strip() == "" and headers["content-length"] == "10"


def test_keepalive_reuses_connection(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port))
    port = p.ports["ingress"]
    urls = ["http://127.0.0.1:%d/r%d" % (port, i) for i in range(5)]
    r = subprocess.run(["curl", "-s", "-v", *urls], capture_output=True, timeout=10)
    err = r.stderr.decode()
    assert err.count("Re-using existing connection") + err.count("Reusing existing") >= 4
    assert [q["path"] for q in up.requests] == ["/r%d" % i for i in range(5)]


def test_pipelined_requests_answered_in_order(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port))
    port = p.ports["ingress"]
    reqs = b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(3))
    out = raw(port, reqs + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    text = out.decode()
    assert text.count("HTTP/1.1 200") == 4
    assert text.index("/p0") < text.index("/p1") < text.index("/p2") < text.index("/last")


def test_no_route_is_404_nr(proxy, upstream, tmp_path):
    up = upstream()
    cfg = basic_config(up.port, routes="""
              - match: { prefix: "/api" }
                route: { cluster: backend }""")
    p = proxy(cfg)
    status, headers, body = curl("http://127.0.0.1:%d/other" % p.ports["ingress"])
    assert status == 404 and body == ""
    assert p.stats()["http.ingress_http.downstream_rq_4xx"] == "1"


def test_connect_failure_is_503_uf(proxy):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    s.close()
    p = proxy(basic_config(dead))
    status, headers, body = curl("http://127.0.0.1:%d/" % p.ports["ingress"])
    assert status == 503
    assert body.startswith("upstream connect error or disconnect/reset before headers. "
                           "reset reason: connection failure")
    assert p.stats()["cluster.backend.upstream_cx_connect_fail"] != "0"


def test_upstream_timeout_is_504(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port, route_extra=", timeout: 0.3s"))
    status, _, body = curl("http://127.0.0.1:%d/delay/2000" % p.ports["ingress"])
    assert status == 504 and body == "upstream request timeout"
    assert p.stats()["cluster.backend.upstream_rq_timeout"] == "1"


def test_direct_response_and_redirect(proxy, upstream):
    up = upstream()
    cfg = basic_config(up.port, routes="""
              - match: { path: "/direct" }
                direct_response: { status: 418, body: { inline_string: "teapot" } }
              - match: { prefix: "/old" }
                redirect: { path_redirect: "/new", response_code: FOUND }
              - match: { prefix: "/" }
                route: { cluster: backend }""")
    p = proxy(cfg)
    port = p.ports["ingress"]
    status, _, body = curl("http://127.0.0.1:%d/direct" % port)
    assert status == 418 and body == "teapot"
    status, headers, _ = curl("http://127.0.0.1:%d/old" % port, "-H", "Host: example.com")
    assert status == 302 and headers["location"] == "http://example.com/new"


def test_malformed_request_gets_400_and_close(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port))
    port = p.ports["ingress"]
    out = raw(port, b"GARBAGE\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    # Smuggling: Content-Length together with Transfer-Encoding.
    out = raw(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    out = raw(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    assert len(up.requests) == 0


def test_headers_over_limit_get_431(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port, hcm_extra="          max_request_headers_kb: 2"))
    out = raw(p.ports["ingress"], b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431")


def test_http2_prior_knowledge_and_tls_free_h2load(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port))
    port = p.ports["ingress"]
    status, headers, body = curl("--http2-prior-knowledge", "http://127.0.0.1:%d/h2" % port)
    assert status == 200 and json.loads(body)["path"] == "/h2"
    r = subprocess.run(["h2load", "-n", "200", "-c", "2", "-m", "10",
                        "http://127.0.0.1:%d/load" % port], capture_output=True, timeout=30)
    out = r.stdout.decode()
    assert "200 succeeded" in out and "0 failed" in out, out


def test_sigterm_drains_and_exits_zero(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port))
    assert p.stop() == 0
