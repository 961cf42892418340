"""Connection reuse on both sides: upstream HTTP/1.1 keep-alive pooling, downstream keep-alive
after local replies (404, direct_response) and after proxied ones."""
import socket

from conftest import basic_config, curl


def _read_responses(sock, count, timeout=5.0):
    """Reads `count` complete Content-Length responses from sock; returns their status lines."""
    sock.settimeout(timeout)
    buf = b""
    statuses = []
    while len(statuses) < count:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, "connection closed after %d responses" % len(statuses)
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = 0
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v)
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk
            rest += chunk
        statuses.append(lines[0].decode())
        buf = rest[length:]
    return statuses


def test_upstream_http1_connection_is_reused(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port))
    port = p.ports["ingress"]
    urls = ["http://127.0.0.1:%d/r%d" % (port, i) for i in range(20)]
    # Separate curl processes: new downstream connections, one worker (concurrency=1).
    for u in urls:
        assert curl(u)[0] == 200
    peers = {r["peer_port"] for r in up.requests}
    assert len(up.requests) == 20
    assert len(peers) == 1, "upstream saw %d connections for 20 sequential requests" % len(peers)
    s = p.stats()
    assert s["cluster.backend.upstream_cx_total"] == "1"
    assert s["cluster.backend.upstream_rq_total"] == "20"


def test_downstream_keepalive_after_local_replies(proxy, upstream):
    up = upstream()
    routes = """
              - match: { path: "/direct" }
                direct_response: { status: 200, body: { inline_string: "hi" } }
              - match: { prefix: "/up" }
                route: { cluster: backend }"""
    p = proxy(basic_config(up.port, routes=routes))
    sock = socket.create_connection(("127.0.0.1", p.ports["ingress"]))
    try:
        for path in ["/nothing", "/direct", "/up/1", "/nothing", "/up/2", "/direct"]:
            sock.sendall(b"GET %s HTTP/1.1\r\nhost: x\r\n\r\n" % path.encode())
            status = _read_responses(sock, 1)[0]
            expected = "404" if path == "/nothing" else "200"
            assert expected in status, (path, status)
        # Pipelined mix of local and proxied replies, answered in order on the same connection.
        sock.sendall(b"".join(b"GET %s HTTP/1.1\r\nhost: x\r\n\r\n" % q for q in
                              [b"/nothing", b"/up/3", b"/direct", b"/nothing"]))
        statuses = _read_responses(sock, 4)
        assert [s.split()[1] for s in statuses] == ["404", "200", "200", "404"]
    finally:
        sock.close()
    assert p.stats()["http.ingress_http.downstream_cx_total"] == "1"
