"""Timeouts on raw sockets: stream_idle_timeout (408 while the request is incomplete, 504 once it
is, "stream timeout"), a route's idle_timeout overriding it, request_timeout (408 "request
timeout"), and common_http_protocol_options.idle_timeout closing idle downstream connections
(HTTP/1.1 close, HTTP/2 GOAWAY)."""
import socket
import struct
import time

from conftest import access_log_hcm, basic_config, curl, raw_exchange, wait_for_lines

FMT = "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\\n"


def _timed(port, data, timeout=5):
    start = time.time()
    out, closed = raw_exchange(port, data, timeout=timeout)
    return out, closed, time.time() - start


def test_stream_idle_timeout_incomplete_request_is_408(proxy, upstream, tmp_path):
    up = upstream()
    log = str(tmp_path / "access.log")
    p = proxy(basic_config(up.port, hcm_extra="          stream_idle_timeout: 0.3s\n" +
                           access_log_hcm(log, FMT)))
    out, closed, took = _timed(p.ports["ingress"], b"POST /slow HTTP/1.1\r\nHost: x\r\n"
                               b"Content-Length: 100\r\n\r\npartial")
    assert out.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), out
    assert out.endswith(b"stream timeout") and closed
    assert 0.25 < took < 2.5
    assert wait_for_lines(log, 1)[0].split() == ["/slow", "408", "SI", "stream_idle_timeout"]
    assert p.stats()["http.ingress_http.downstream_rq_idle_timeout"] == "1"


def test_stream_idle_timeout_waiting_for_upstream_is_504(proxy, upstream, tmp_path):
    up = upstream()
    log = str(tmp_path / "access.log")
    p = proxy(basic_config(up.port, hcm_extra="          stream_idle_timeout: 0.3s\n" +
                           access_log_hcm(log, FMT)))
    start = time.time()
    status, _, body = curl("http://127.0.0.1:%d/delay/2000" % p.ports["ingress"])
    assert status == 504 and body == "stream timeout"
    assert time.time() - start < 1.5
    assert wait_for_lines(log, 1)[0].split()[:3] == ["/delay/2000", "504", "SI"]


def test_active_stream_is_not_idle(proxy, upstream):
    """Activity re-arms the idle timeout: a body trickling in slower than the timeout in
    total, but faster than it per chunk, goes through."""
    up = upstream()
    p = proxy(basic_config(up.port, hcm_extra="          stream_idle_timeout: 0.4s\n"))
    s = socket.create_connection(("127.0.0.1", p.ports["ingress"]), timeout=5)
    s.sendall(b"POST /trickle HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
    for c in b"abcde":
        time.sleep(0.15)
        s.sendall(bytes([c]))
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    s.close()
    assert up.requests[0]["body"] == b"abcde"


def test_route_idle_timeout_overrides(proxy, upstream):
    up = upstream()
    routes = """
              - match: { prefix: "/patient/" }
                route: { cluster: backend, idle_timeout: 3s, prefix_rewrite: "/" }
              - match: { prefix: "/strict/" }
                route: { cluster: backend, idle_timeout: 0.2s, prefix_rewrite: "/" }
              - match: { prefix: "/" }
                route: { cluster: backend }"""
    p = proxy(basic_config(up.port, routes=routes,
                           hcm_extra="          stream_idle_timeout: 2s\n"))
    port = p.ports["ingress"]
    start = time.time()
    status, _, body = curl("http://127.0.0.1:%d/strict/delay/1500" % port)
    assert status == 504 and body == "stream timeout"
    # The route's 0.2 s, not the connection manager's 2 s (wide margin for a loaded machine).
    assert time.time() - start < 1.5
    status, _, _ = curl("http://127.0.0.1:%d/patient/delay/900" % port)
    assert status == 200
    status, _, body = curl("http://127.0.0.1:%d/delay/2500" % port)
    assert status == 504


def test_request_timeout(proxy, upstream, tmp_path):
    up = upstream()
    log = str(tmp_path / "access.log")
    p = proxy(basic_config(up.port, hcm_extra="          request_timeout: 0.4s\n" +
                           access_log_hcm(log, FMT)))
    port = p.ports["ingress"]
    # Headers arrive, the body never completes: 408 even though bytes keep coming (the stream
    # is not idle).
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
    start = time.time()
    out = b""
    try:
        for _ in range(20):
            s.sendall(b"x")
            time.sleep(0.05)
            s.setblocking(False)
            try:
                out += s.recv(4096)
            except BlockingIOError:
                pass
            s.setblocking(True)
            if out:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.settimeout(3)
    try:
        while b"request timeout" not in out:
            b = s.recv(4096)
            if not b:
                break
            out += b
    except OSError:
        pass
    s.close()
    assert out.startswith(b"HTTP/1.1 408"), out
    assert out.endswith(b"request timeout")
    assert 0.35 < time.time() - start < 2
    assert wait_for_lines(log, 1)[0].split()[:2] == ["/upload", "408"]
    assert p.stats()["http.ingress_http.downstream_rq_timeout"] == "1"
    # A request that completes in time is unaffected, even if the response is slow.
    status, _, _ = curl("http://127.0.0.1:%d/delay/700" % port)
    assert status == 200


def test_connection_idle_timeout_http1(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port, hcm_extra="""          common_http_protocol_options: { idle_timeout: 0.3s }
"""))
    s = socket.create_connection(("127.0.0.1", p.ports["ingress"]), timeout=5)
    s.sendall(b"GET /bytes/10 HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while not (b"\r\n\r\n" in buf and buf.endswith(b"x" * 10)):
        buf += s.recv(4096)
    assert buf.startswith(b"HTTP/1.1 200")
    start = time.time()
    assert s.recv(4096) == b""  # the proxy closed the idle keep-alive connection
    assert 0.2 < time.time() - start < 2.5
    s.close()
    assert p.stats()["http.ingress_http.downstream_cx_idle_timeout"] == "1"


def test_connection_idle_timeout_http2_goaway(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port, hcm_extra="""          common_http_protocol_options: { idle_timeout: 0.3s }
"""))
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
    out, closed, took = _timed(p.ports["ingress"], preface, timeout=4)
    assert closed and 0.2 < took < 3
    i, goaway = 0, None
    while i + 9 <= len(out):
        length = int.from_bytes(out[i:i + 3], "big")
        if out[i + 3] == 7:
            goaway = struct.unpack(">I", out[i + 13:i + 17])[0]
        i += 9 + length
    assert goaway == 0  # NO_ERROR
