"""Flow control with per_connection_buffer_limit_bytes (listener and cluster): a slow reader on one
side stops the proxy reading from the other side, so the proxy's memory stays bounded whatever
the body size (Envoy's watermark buffers). Upstreams here are raw sockets that count what they
could send or what they were sent; the kernel's socket buffers (several MB on loopback) are the
only other place bytes can wait."""
import socket
import subprocess
import threading
import time

from conftest import basic_config, free_port, wait_until
from test_proxy_listeners import tcp_config

MB = 1024 * 1024
BODY = 96 * MB
# Bytes that may be in flight without the proxy holding them: two loopback connections' send and
# receive buffers (tcp_wmem/tcp_rmem autotuning reaches ~4 + 6 MB per connection).
KERNEL_SLACK = 40 * MB


def settle(value, quiet=0.5, timeout=15.0):
    """Waits until value() stops changing for `quiet` seconds (the sender is blocked); returns
    it. Fails if it keeps changing for `timeout` seconds."""
    deadline = time.time() + timeout
    last = value()
    while time.time() < deadline:
        time.sleep(quiet)
        now = value()
        if now == last:
            return now
        last = now
    raise AssertionError("still moving after %.0f s: %d bytes" % (timeout, last))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def with_limits(config, listener_limit, cluster_limit):
    config = config.replace("    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }\n"
                            "    filter_chains:",
                            "    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }\n"
                            "    per_connection_buffer_limit_bytes: %d\n"
                            "    filter_chains:" % listener_limit, 1)
    return config.replace("    connect_timeout: 1s\n",
                          "    connect_timeout: 1s\n"
                          "    per_connection_buffer_limit_bytes: %d\n" % cluster_limit)


class RawUpstream:
    """Accepts one connection at a time and runs `behaviour(conn, self)` on it in a thread."""

    def __init__(self, behaviour):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.behaviour = behaviour
        self.sent = 0
        self.received = 0
        self.release = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        try:
            self.behaviour(conn, self)
        except OSError:
            pass
        finally:
            self.done.set()
            conn.close()

    def stop(self):
        self.release.set()
        self.sock.close()


def read_request_head(conn):
    buf = b""
    while b"\r\n\r\n" not in buf:
        b = conn.recv(65536)
        if not b:
            raise OSError("closed")
        buf += b
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def serve_large_response(conn, up):
    read_request_head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % BODY)
    chunk = b"y" * 65536
    while up.sent < BODY:
        conn.sendall(chunk)
        up.sent += len(chunk)


def test_slow_downstream_reader_pauses_upstream(proxy):
    up = RawUpstream(serve_large_response)
    try:
        p = proxy(with_limits(basic_config(up.port), 65536, 65536))
        base = rss_kb(p.proc.pid)
        c = socket.create_connection(("127.0.0.1", p.ports["ingress"]), timeout=10)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        c.sendall(b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n")
        got = c.recv(4096)
        assert got.startswith(b"HTTP/1.1 200")
        # The client reads nothing more: the upstream soon cannot send any further.
        settle(lambda: up.sent)
        assert up.sent < KERNEL_SLACK, "upstream sent %d MB to a stalled client" % (up.sent // MB)
        grown = rss_kb(p.proc.pid) - base
        assert grown < 16 * 1024, "proxy RSS grew by %d KB" % grown
        # Reading resumes the flow to the end.
        total = len(got) - got.index(b"\r\n\r\n") - 4
        while total < BODY:
            b = c.recv(1 << 20)
            assert b, "closed after %d bytes" % total
            total += len(b)
        assert total == BODY
        c.close()
    finally:
        up.stop()


def absorb_after_release(conn, up):
    head, rest = read_request_head(conn)
    up.received = len(rest)
    up.release.wait(20)
    while up.received < BODY:
        b = conn.recv(1 << 20)
        if not b:
            return
        up.received += len(b)
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")


def test_large_upload_to_slow_upstream_pauses_downstream(proxy):
    up = RawUpstream(absorb_after_release)
    try:
        p = proxy(with_limits(basic_config(up.port), 65536, 65536))
        base = rss_kb(p.proc.pid)
        c = socket.create_connection(("127.0.0.1", p.ports["ingress"]), timeout=20)
        c.sendall(b"POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % BODY)
        sent = [0]

        def pump():
            chunk = b"z" * 65536
            try:
                while sent[0] < BODY:
                    c.sendall(chunk)
                    sent[0] += len(chunk)
            except OSError:
                pass

        t = threading.Thread(target=pump, daemon=True)
        t.start()
        settle(lambda: sent[0])
        assert sent[0] < KERNEL_SLACK, "proxy took %d MB for a stalled upstream" % (sent[0] // MB)
        grown = rss_kb(p.proc.pid) - base
        assert grown < 16 * 1024, "proxy RSS grew by %d KB" % grown
        up.release.set()
        t.join(30)
        assert sent[0] == BODY
        buf = b""
        while b"ok" not in buf:
            b = c.recv(4096)
            assert b
            buf += b
        assert buf.startswith(b"HTTP/1.1 200")
        assert up.received == BODY
        c.close()
    finally:
        up.stop()


def stream_forever(conn, up):
    chunk = b"t" * 65536
    while up.sent < BODY:
        conn.sendall(chunk)
        up.sent += len(chunk)


def test_tcp_proxy_slow_reader_pauses_upstream(proxy):
    up = RawUpstream(stream_forever)
    try:
        cfg = tcp_config("          cluster: one", [("one", up.port)])
        p = proxy(with_limits(cfg, 65536, 65536))
        base = rss_kb(p.proc.pid)
        c = socket.create_connection(("127.0.0.1", p.ports["tcp"]), timeout=10)
        assert c.recv(4096)
        settle(lambda: up.sent)
        assert up.sent < KERNEL_SLACK
        assert rss_kb(p.proc.pid) - base < 16 * 1024
        c.close()
    finally:
        up.stop()


def test_retry_buffer_over_limit_abandons_retry(proxy, upstream):
    # A body larger than the listener's buffer limit cannot be replayed: Envoy gives up retrying
    # (cluster.<name>.retry_or_shadow_abandoned) and the first attempt's answer stands.
    up = upstream()
    cfg = with_limits(basic_config(up.port, route_extra=", retry_policy: { retry_on: 5xx, num_retries: 2 }"),
                      4096, 1 << 20)
    p = proxy(cfg)
    body = b"b" * 20000
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "@-",
                        "http://127.0.0.1:%d/status/503" % p.ports["ingress"]], input=body,
                       capture_output=True, timeout=10)
    assert r.stdout == b"503"
    assert len(up.requests) == 1
    s = p.stats()
    assert s["cluster.backend.retry_or_shadow_abandoned"] == "1"
    assert s["cluster.backend.upstream_rq_retry"] == "0"
    # A small body is retried as before.
    r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "small",
                        "http://127.0.0.1:%d/status/503" % p.ports["ingress"]],
                       capture_output=True, timeout=10)
    assert r.stdout == b"503"
    assert len(up.requests) == 4


# === HTTP/2: a paused stream stops returning window to its peer (Envoy's per-stream flow control)

# An HTTP/2 stream may still deliver one receive window (16 MiB, our initial stream window) after
# it was paused: the peer was allowed to send that much.
H2_WINDOW = 16 * MB


def test_h2_upload_to_slow_http1_upstream_pauses_the_stream(proxy, tmp_path):
    up = RawUpstream(absorb_after_release)
    try:
        p = proxy(with_limits(basic_config(up.port), 65536, 65536))
        base = rss_kb(p.proc.pid)
        body = tmp_path / "upload.bin"
        with open(body, "wb") as f:
            block = bytes(range(256)) * 4096
            for _ in range(BODY // len(block)):
                f.write(block)
        c = subprocess.Popen(["curl", "-s", "-S", "--http2-prior-knowledge", "-T", str(body),
                              "-o", "-", "-w", " %{http_code} %{http_version}", "--max-time", "60",
                              "http://127.0.0.1:%d/up" % p.ports["ingress"]],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        rx = lambda: int(p.stats()["http.ingress_http.downstream_cx_rx_bytes_total"])
        wait_until(lambda: rx() > MB, what="upload started")
        taken = settle(rx)
        assert taken < KERNEL_SLACK + H2_WINDOW, "proxy took %d MB" % (taken // MB)
        grown = rss_kb(p.proc.pid) - base
        assert grown < H2_WINDOW // 1024 + 16 * 1024, "proxy RSS grew by %d KB" % grown
        assert c.poll() is None
        up.release.set()
        out, err = c.communicate(timeout=60)
        assert out == b"ok 200 2", (out, err)
        assert up.received == BODY
    finally:
        up.stop()


class CountingRelay:
    """Relays one upstream connection to `target_port`, counting the bytes the target sends."""

    def __init__(self, target_port):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.target = target_port
        self.sent = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        try:
            c, _ = self.sock.accept()
        except OSError:
            return
        u = socket.create_connection(("127.0.0.1", self.target))

        def down():
            try:
                while True:
                    d = u.recv(65536)
                    if not d:
                        break
                    c.sendall(d)
                    self.sent += len(d)
            except OSError:
                pass

        threading.Thread(target=down, daemon=True).start()
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                u.sendall(d)
        except OSError:
            pass

    def stop(self):
        self.sock.close()


def test_h2_download_from_h2_upstream_to_stalled_h2_client(proxy, tmp_path):
    import hashlib
    import shutil

    nghttpd = shutil.which("nghttpd") or "/usr/sbin/nghttpd"
    htdocs = tmp_path / "htdocs"
    htdocs.mkdir()
    digest = hashlib.sha256()
    with open(htdocs / "big", "wb") as f:
        for i in range(BODY // MB):
            block = bytes([i % 251]) * MB
            digest.update(block)
            f.write(block)
    port = free_port()
    log = open(tmp_path / "nghttpd.log", "w")
    origin = subprocess.Popen([nghttpd, "--no-tls", "-a", "127.0.0.1", "-d", str(htdocs),
                               str(port)], stdout=log, stderr=subprocess.STDOUT)
    relay = None
    try:
        def listening():
            with open("/proc/net/tcp") as f:
                return any(":%04X 00000000:0000 0A" % port in l for l in f)

        wait_until(listening, what="nghttpd listening")
        relay = CountingRelay(port)
        h2 = """
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }"""
        p = proxy(with_limits(basic_config(relay.port, cluster_extra=h2), 65536, 65536))
        base = rss_kb(p.proc.pid)
        # curl writes into a pipe nobody reads yet: once it is full curl stops reading its socket.
        c = subprocess.Popen(["curl", "-s", "-S", "--http2-prior-knowledge", "--max-time", "60",
                              "http://127.0.0.1:%d/big" % p.ports["ingress"]],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until(lambda: relay.sent > MB, what="download started")
        sent = settle(lambda: relay.sent)
        assert sent < KERNEL_SLACK + H2_WINDOW, "upstream sent %d MB" % (sent // MB)
        grown = rss_kb(p.proc.pid) - base
        assert grown < H2_WINDOW // 1024 + 16 * 1024, "proxy RSS grew by %d KB" % grown
        got = hashlib.sha256()
        total = 0
        while True:
            b = c.stdout.read(1 << 20)
            if not b:
                break
            got.update(b)
            total += len(b)
        assert c.wait(timeout=60) == 0, c.stderr.read()
        assert total == BODY
        assert got.hexdigest() == digest.hexdigest()
        assert p.stats()["cluster.backend.upstream_cx_http2_total"] == "1"
    finally:
        if relay:
            relay.stop()
        origin.terminate()
        origin.wait(timeout=5)
        log.close()
