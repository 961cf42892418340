"""Upgrades through mast-proxy on raw sockets: a WebSocket handshake (upgrade_configs) answered 101
by the upstream, then frames echoed both ways; upgrades not enabled (HCM or per route) are 403
upgrade_failed like Envoy; CONNECT forwarded when upgrade_configs allows it."""
import base64
import hashlib
import os
import socket
import struct
import threading

import pytest

from conftest import access_log_hcm, basic_config, curl, wait_for_lines

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class TunnelUpstream:
    """Answers an Upgrade: websocket request with 101 (or CONNECT with 200) and then echoes every
    byte back; plain requests get a 200 with a small body. Records request heads."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.heads = []
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        buf = b""
        while b"\r\n\r\n" not in buf:
            b = c.recv(65536)
            if not b:
                c.close()
                return
            buf += b
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        self.heads.append((lines[0], headers))
        if headers.get("upgrade", "").lower() == "websocket":
            accept = base64.b64encode(hashlib.sha1(
                headers["sec-websocket-key"].encode() + WS_GUID).digest()).decode()
            c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
        elif lines[0].startswith("CONNECT "):
            c.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain")
            c.close()
            return
        if rest:
            c.sendall(rest)
        while True:
            try:
                b = c.recv(65536)
            except OSError:
                break
            if not b:
                break
            c.sendall(b)
        c.close()
        self.closed.set()

    def stop(self):
        self.sock.close()


@pytest.fixture
def tunnel_upstream():
    u = TunnelUpstream()
    yield u
    u.stop()


def ws_frame(payload, opcode=1):
    """A masked client frame (RFC 6455)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack(">H", n)
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_until(s, marker, limit=1 << 20):
    buf = b""
    while marker not in buf:
        b = s.recv(65536)
        if not b:
            break
        buf += b
        assert len(buf) < limit
    return buf


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        b = s.recv(n - len(buf))
        assert b, "connection closed after %d of %d bytes" % (len(buf), n)
        buf += b
    return buf


WS_REQUEST = (b"GET /chat HTTP/1.1\r\nHost: ws.example\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n")

UPGRADES = "          upgrade_configs: [{ upgrade_type: websocket }]\n"


def test_websocket_upgrade_and_echo(proxy, tunnel_upstream, tmp_path):
    log = str(tmp_path / "access.log")
    p = proxy(basic_config(tunnel_upstream.port, hcm_extra=UPGRADES + access_log_hcm(
        log, "%REQ(:PATH)% %RESPONSE_CODE% %BYTES_RECEIVED% %BYTES_SENT%\\n")))
    s = socket.create_connection(("127.0.0.1", p.ports["ingress"]), timeout=5)
    s.sendall(WS_REQUEST)
    head = read_until(s, b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), head
    lower = head.lower()
    assert b"upgrade: websocket" in lower and b"connection: upgrade" in lower
    assert b"sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=" in lower
    line, headers = tunnel_upstream.heads[0]
    assert line == "GET /chat HTTP/1.1"
    assert headers["upgrade"] == "websocket" and headers["connection"].lower() == "upgrade"
    assert headers["sec-websocket-key"] == "dGhlIHNhbXBsZSBub25jZQ=="
    # Frames both ways, small and large (the upstream echoes the raw bytes).
    total = 0
    for payload in (b"hello", b"x" * 1000, os.urandom(200000)):
        f = ws_frame(payload, opcode=2)
        s.sendall(f)
        assert read_exact(s, len(f)) == f
        total += len(f)
    # Closing the client side closes the tunnel to the upstream.
    s.shutdown(socket.SHUT_WR)
    assert s.recv(10) == b""
    s.close()
    assert tunnel_upstream.closed.wait(5)
    fields = wait_for_lines(log, 1)[0].split()
    assert fields[:2] == ["/chat", "101"]
    assert int(fields[2]) == total and int(fields[3]) == total


def test_websocket_data_sent_with_the_handshake(proxy, tunnel_upstream):
    """Bytes right behind the request head belong to the tunnel."""
    p = proxy(basic_config(tunnel_upstream.port, hcm_extra=UPGRADES))
    s = socket.create_connection(("127.0.0.1", p.ports["ingress"]), timeout=5)
    f = ws_frame(b"early")
    s.sendall(WS_REQUEST + f)
    head = read_until(s, b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    rest = head.partition(b"\r\n\r\n")[2]
    assert rest + read_exact(s, len(f) - len(rest)) == f
    s.close()


def test_upgrade_not_configured_is_403(proxy, tunnel_upstream, tmp_path):
    log = str(tmp_path / "access.log")
    p = proxy(basic_config(tunnel_upstream.port, hcm_extra=access_log_hcm(log)))
    s = socket.create_connection(("127.0.0.1", p.ports["ingress"]), timeout=5)
    s.sendall(WS_REQUEST)
    head = read_until(s, b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 Forbidden\r\n"), head
    assert b"connection: close" in head.lower()
    assert s.recv(100) == b""  # closed
    s.close()
    assert tunnel_upstream.heads == []
    assert wait_for_lines(log, 1)[0].split()[:3] == ["403", "-", "upgrade_failed"]
    # Plain requests on the same listener still work.
    status, _, body = curl("http://127.0.0.1:%d/" % p.ports["ingress"])
    assert status == 200 and body == "plain"


def test_upgrade_disabled_per_route(proxy, tunnel_upstream):
    routes = """
              - match: { prefix: "/nows" }
                route:
                  cluster: backend
                  upgrade_configs: [{ upgrade_type: websocket, enabled: false }]
              - match: { prefix: "/" }
                route: { cluster: backend }"""
    p = proxy(basic_config(tunnel_upstream.port, hcm_extra=UPGRADES, routes=routes))
    port = p.ports["ingress"]
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(WS_REQUEST.replace(b"/chat", b"/nows/x"))
    assert read_until(s, b"\r\n\r\n").startswith(b"HTTP/1.1 403")
    s.close()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(WS_REQUEST)
    assert read_until(s, b"\r\n\r\n").startswith(b"HTTP/1.1 101")
    s.close()


def test_upgrade_enabled_per_route_only(proxy, tunnel_upstream):
    """The HCM lists websocket as disabled; one route turns it on."""
    routes = """
              - match: { prefix: "/ws" }
                route:
                  cluster: backend
                  upgrade_configs: [{ upgrade_type: websocket, enabled: true }]
              - match: { prefix: "/" }
                route: { cluster: backend }"""
    p = proxy(basic_config(tunnel_upstream.port, routes=routes, hcm_extra=(
        "          upgrade_configs: [{ upgrade_type: websocket, enabled: false }]\n")))
    port = p.ports["ingress"]
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(WS_REQUEST.replace(b"/chat", b"/ws/x"))
    assert read_until(s, b"\r\n\r\n").startswith(b"HTTP/1.1 101")
    s.close()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(WS_REQUEST)
    assert read_until(s, b"\r\n\r\n").startswith(b"HTTP/1.1 403")
    s.close()


CONNECT_REQUEST = b"CONNECT tunnel.example:443 HTTP/1.1\r\nHost: tunnel.example:443\r\n\r\n"


def test_connect_forwarded_when_allowed(proxy, tunnel_upstream):
    routes = """
              - match: { connect_matcher: {} }
                route: { cluster: backend }
              - match: { prefix: "/" }
                route: { cluster: backend }"""
    p = proxy(basic_config(tunnel_upstream.port, routes=routes, hcm_extra=(
        "          upgrade_configs: [{ upgrade_type: CONNECT }]\n")))
    s = socket.create_connection(("127.0.0.1", p.ports["ingress"]), timeout=5)
    s.sendall(CONNECT_REQUEST)
    head = read_until(s, b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"transfer-encoding" not in head.lower()
    assert tunnel_upstream.heads[0][0] == "CONNECT tunnel.example:443 HTTP/1.1"
    for chunk in (b"\x16\x03\x01raw-bytes", b"y" * 50000):
        s.sendall(chunk)
        assert read_exact(s, len(chunk)) == chunk
    s.close()


def test_connect_not_allowed_is_403(proxy, tunnel_upstream):
    routes = """
              - match: { connect_matcher: {} }
                route: { cluster: backend }"""
    p = proxy(basic_config(tunnel_upstream.port, routes=routes))
    s = socket.create_connection(("127.0.0.1", p.ports["ingress"]), timeout=5)
    s.sendall(CONNECT_REQUEST)
    assert read_until(s, b"\r\n\r\n").startswith(b"HTTP/1.1 403")
    s.close()
    assert tunnel_upstream.heads == []
