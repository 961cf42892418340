"""HTTP/2 through mast-proxy: nghttp and h2load downstream (prior knowledge), HTTP/1.1 clients
to an HTTP/2 upstream (typed_extension_protocol_options, one multiplexed connection), and a real
gRPC pair (python grpcio): unary, server/bidi streaming, metadata, grpc-status propagation, and
local replies as gRPC trailers-only responses."""
import json
import subprocess
import threading
from concurrent import futures

import grpc
import pytest

from conftest import basic_config, curl, wait_for_lines

H2_OPTIONS = """
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }"""


def test_nghttp_prior_knowledge(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port))
    r = subprocess.run(["nghttp", "-v", "-H", "x-test: h2",
                        "http://127.0.0.1:%d/nghttp?q=1" % p.ports["ingress"]],
                       capture_output=True, timeout=15)
    out = r.stdout.decode()
    assert r.returncode == 0, out
    assert ":status: 200" in out and "server: envoy" in out
    body = out[out.index("{"):out.rindex("}") + 1]
    seen = json.loads(body)
    assert seen["path"] == "/nghttp?q=1" and seen["headers"]["x-test"] == "h2"
    # The HTTP/2 request reached the HTTP/1.1 upstream with a Host header.
    assert seen["headers"]["host"] == "127.0.0.1:%d" % p.ports["ingress"]
    assert p.stats()["http.ingress_http.downstream_rq_http2_total"] == "1"


def test_nghttp_post_body_and_multiplexing(proxy, upstream, tmp_path):
    up = upstream()
    p = proxy(basic_config(up.port))
    data = tmp_path / "body"
    data.write_bytes(b"z" * 300000)
    port = p.ports["ingress"]
    r = subprocess.run(["nghttp", "-s", "-d", str(data), "http://127.0.0.1:%d/up" % port],
                       capture_output=True, timeout=15)
    assert r.returncode == 0, r.stdout + r.stderr
    assert [q["body"] for q in up.requests] == [b"z" * 300000]
    # Several concurrent streams on one connection, answered independently.
    urls = ["http://127.0.0.1:%d/delay/%d" % (port, ms) for ms in (300, 10, 150)]
    r = subprocess.run(["nghttp", "-n", "-s", *urls], capture_output=True, timeout=15)
    assert r.returncode == 0, r.stdout
    assert p.stats()["http.ingress_http.downstream_cx_http2_total"] == "2"


def test_h2load_bounded_load(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port))
    r = subprocess.run(["h2load", "-n", "300", "-c", "3", "-m", "10",
                        "http://127.0.0.1:%d/load" % p.ports["ingress"]],
                       capture_output=True, timeout=30)
    out = r.stdout.decode()
    assert "300 succeeded" in out and "0 failed" in out and "0 errored" in out, out
    assert p.stats()["http.ingress_http.downstream_rq_2xx"] == "300"


def test_http1_clients_to_http2_upstream_share_one_connection(proxies, upstream, tmp_path):
    """Proxy A's cluster speaks HTTP/2 (typed_extension_protocol_options) to proxy B, whose
    listener only accepts HTTP/2 (codec_type: HTTP2) and forwards to the echo upstream."""
    up = upstream("origin")
    log = str(tmp_path / "b.log")
    b = proxies(basic_config(up.port, hcm_extra="""          codec_type: HTTP2
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: %s
              log_format: { text_format_source: { inline_string: "%%PROTOCOL%% %%REQ(:PATH)%%\\n" } }
""" % log))
    a = proxies(basic_config(b.ports["ingress"], cluster_extra=H2_OPTIONS))
    url = "http://127.0.0.1:%d/via-h2/%%d" % a.ports["ingress"]
    threads = [threading.Thread(target=curl, args=(url % i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    status, headers, body = curl(url % 99, "--data-binary", "payload")
    assert status == 200
    seen = json.loads(body)
    assert seen["path"] == "/via-h2/99" and seen["body_len"] == 7 and seen["method"] == "POST"
    assert sorted(r["path"] for r in up.requests) == sorted(["/via-h2/%d" % i
                                                            for i in list(range(10)) + [99]])
    lines = wait_for_lines(log, 11)
    assert all(l.startswith("HTTP/2 /via-h2/") for l in lines), lines
    stats = a.stats()
    assert stats["cluster.backend.upstream_cx_total"] == "1", stats
    assert stats["cluster.backend.upstream_rq_total"] == "11"
    assert b.stats()["http.ingress_http.downstream_cx_http2_total"] == "1"


# === gRPC ===

UNARY = "/mast.test.Echo/Unary"
SERVER_STREAM = "/mast.test.Echo/ServerStream"
BIDI = "/mast.test.Echo/Bidi"
FAIL = "/mast.test.Echo/Fail"


class EchoService(grpc.GenericRpcHandler):
    """Bytes in, bytes out; no generated code needed."""

    def __init__(self):
        self.metadata = []

    def service(self, details):
        self.metadata.append(dict(details.invocation_metadata))
        if details.method == UNARY:
            return grpc.unary_unary_rpc_method_handler(self.unary)
        if details.method == SERVER_STREAM:
            return grpc.unary_stream_rpc_method_handler(self.server_stream)
        if details.method == BIDI:
            return grpc.stream_stream_rpc_method_handler(self.bidi)
        if details.method == FAIL:
            return grpc.unary_unary_rpc_method_handler(self.fail)
        return None

    def unary(self, request, context):
        context.set_trailing_metadata((("x-echo-trailer", "t-" + request[:8].decode()),))
        return b"echo:" + request

    def server_stream(self, request, context):
        for i in range(int(request)):
            yield b"item-%d" % i

    def bidi(self, requests, context):
        for r in requests:
            yield r.upper()

    def fail(self, request, context):
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing: " + request.decode())


@pytest.fixture
def grpc_server():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    svc = EchoService()
    server.add_generic_rpc_handlers((svc,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield port, svc
    server.stop(0)


@pytest.fixture
def grpc_proxy(proxy, grpc_server, tmp_path):
    port, svc = grpc_server
    log = str(tmp_path / "access.log")
    p = proxy(basic_config(port, cluster_extra=H2_OPTIONS, hcm_extra="""          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: %s
              log_format: { text_format_source: { inline_string: "%%REQ(:PATH)%% %%RESPONSE_CODE%% %%RESP(GRPC-STATUS)%% %%TRAILER(GRPC-STATUS)%% %%PROTOCOL%%\\n" } }
""" % log))
    channel = grpc.insecure_channel("127.0.0.1:%d" % p.ports["ingress"])
    yield p, svc, channel, log
    channel.close()


def test_grpc_unary_with_metadata(grpc_proxy):
    p, svc, channel, log = grpc_proxy
    call = channel.unary_unary(UNARY)
    resp, info = call.with_call(b"hello", metadata=(("x-client", "42"),), timeout=5)
    assert resp == b"echo:hello"
    assert dict(info.trailing_metadata())["x-echo-trailer"] == "t-hello"
    assert info.code() == grpc.StatusCode.OK
    assert svc.metadata[-1]["x-client"] == "42"
    # The proxy's request headers reached the server too.
    assert "x-request-id" in svc.metadata[-1]
    # A large message crosses flow-control windows both ways.
    big = b"b" * 3000000
    assert call(big, timeout=10) == b"echo:" + big
    line = wait_for_lines(log, 2)[0].split()
    assert line == [UNARY, "200", "-", "0", "HTTP/2"]


def test_grpc_server_streaming(grpc_proxy):
    p, svc, channel, log = grpc_proxy
    items = list(channel.unary_stream(SERVER_STREAM)(b"500", timeout=10))
    assert items == [b"item-%d" % i for i in range(500)]


def test_grpc_bidi_streaming_interleaved(grpc_proxy):
    """Each reply arrives before the next request is sent: real streaming, not buffering."""
    p, svc, channel, log = grpc_proxy
    import queue
    q = queue.Queue()

    def requests():
        for i in range(20):
            yield b"msg-%d" % i
            assert q.get(timeout=5) == b"MSG-%d" % i

    replies = channel.stream_stream(BIDI)(requests(), timeout=20)
    got = []
    for r in replies:
        got.append(r)
        q.put(r)
    assert got == [b"MSG-%d" % i for i in range(20)]


def test_grpc_status_propagates(grpc_proxy):
    p, svc, channel, log = grpc_proxy
    with pytest.raises(grpc.RpcError) as e:
        channel.unary_unary(FAIL)(b"widget", timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert e.value.details() == "no such thing: widget"
    line = wait_for_lines(log, 1)[0].split()
    assert line == [FAIL, "200", "5", "-", "HTTP/2"]  # trailers-only
    assert p.stats()["cluster.backend.upstream_rq_200"] == "1"


def test_grpc_local_replies_are_trailers_only(proxy, grpc_server, tmp_path):
    """No route → 404 mapped to UNIMPLEMENTED; dead upstream → 503 mapped to UNAVAILABLE."""
    from conftest import free_port
    port, svc = grpc_server
    dead = free_port()
    cfg = basic_config(port, cluster_extra=H2_OPTIONS, routes="""
              - match: { prefix: "/mast.test.Echo/" }
                route: { cluster: backend }
              - match: { prefix: "/mast.test.Dead/" }
                route: { cluster: dead }""", clusters_extra="""
  - name: dead
    connect_timeout: 1s
    type: STATIC%s
    load_assignment:
      cluster_name: dead
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %d } } } }] }]
""" % (H2_OPTIONS, dead))
    p = proxy(cfg)
    channel = grpc.insecure_channel("127.0.0.1:%d" % p.ports["ingress"])
    try:
        with pytest.raises(grpc.RpcError) as e:
            channel.unary_unary("/mast.test.Other/X")(b"", timeout=5)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.RpcError) as e:
            channel.unary_unary("/mast.test.Dead/X")(b"", timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "upstream connect error" in e.value.details()
        assert channel.unary_unary(UNARY)(b"ok", timeout=5) == b"echo:ok"
    finally:
        channel.close()
