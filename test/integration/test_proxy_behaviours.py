"""Behaviours of mast-proxy that are Envoy's and had no test of their own: retry_on
retriable-4xx / gateway-error / connect-failure / retriable-headers, per_try_timeout, the
max_retries circuit breaker, max_requests_per_connection (cluster and HCM), outlier detection on
consecutive gateway failures, the source_ip hash policy, scheme/port redirects,
response_headers_to_remove, --service-node/--service-cluster in /server_info, the response flags
UT, UF, UR, RL and DC and the access-log operators %UPSTREAM_LOCAL_ADDRESS% and
%CONNECTION_TERMINATION_DETAILS%. Real binary, curl and python sockets."""
import collections
import json
import socket
import struct
import threading
import time

import pytest

from conftest import (EchoHandler, Upstream, access_log_hcm, basic_config, curl, free_port,
                      wait_for_lines, wait_until)
from test_proxy_routing import Keepalive, cluster, config


class ScriptedHandler(EchoHandler):
    """/s/<key>/<k>/<status>[/<delay_ms>]: the first k requests for key answer <status> with
    `x-retry-me: yes` after delay_ms; later ones go to EchoHandler (200)."""

    def _handle(self):
        parts = self.path.split("/")
        if len(parts) >= 5 and parts[1] == "s":
            key, k, status = parts[2], int(parts[3]), int(parts[4])
            delay = int(parts[5]) / 1000.0 if len(parts) > 5 else 0
            with self.server.lock:
                self.server.seen[key] += 1
                n = self.server.seen[key]
            if n <= k:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                time.sleep(delay)
                self.send_response(status)
                self.send_header("content-length", "4")
                self.send_header("x-retry-me", "yes")
                self.send_header("x-upstream-name", self.server.name)
                self.end_headers()
                self.wfile.write(b"fail")
                return
        EchoHandler._handle(self)

    do_GET = do_POST = _handle


class ScriptedUpstream(Upstream):
    def __init__(self, name="scripted"):
        super().__init__(name)
        self.RequestHandlerClass = ScriptedHandler
        self.lock = threading.Lock()
        self.seen = collections.Counter()


@pytest.fixture
def scripted():
    servers = []

    def make(name="scripted"):
        s = ScriptedUpstream(name)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


def retry_route(prefix, policy):
    return """
              - match: { prefix: "%s" }
                route:
                  cluster: backend
                  prefix_rewrite: "/"
                  retry_policy:
%s
                    retry_back_off: { base_interval: 0.01s, max_interval: 0.02s }""" % (
        prefix, "\n".join("                    " + l for l in policy.strip().splitlines()))


# === retry_on ===


def test_retry_on_retriable_4xx_retries_409_only(proxy, scripted):
    up = scripted()
    p = proxy(config(retry_route("/r/", "retry_on: retriable-4xx\nnum_retries: 2"),
                     cluster("backend", [up.port])))
    port = p.ports["ingress"]
    status, _, _ = curl("http://127.0.0.1:%d/r/s/a/1/409" % port)
    assert status == 200 and up.seen["a"] == 2
    # Other 4xx are not retriable-4xx.
    status, _, _ = curl("http://127.0.0.1:%d/r/s/b/1/404" % port)
    assert status == 404 and up.seen["b"] == 1
    assert p.stats()["cluster.backend.upstream_rq_retry"] == "1"


def test_retry_on_gateway_error(proxy, scripted):
    up = scripted()
    p = proxy(config(retry_route("/r/", "retry_on: gateway-error\nnum_retries: 3"),
                     cluster("backend", [up.port])))
    port = p.ports["ingress"]
    for key, code in (("a", 502), ("b", 503), ("c", 504)):
        status, _, _ = curl("http://127.0.0.1:%d/r/s/%s/1/%d" % (port, key, code))
        assert status == 200 and up.seen[key] == 2, (code, status)
    # 500 is not a gateway error.
    status, _, _ = curl("http://127.0.0.1:%d/r/s/d/1/500" % port)
    assert status == 500 and up.seen["d"] == 1


def test_retry_on_retriable_headers(proxy, scripted):
    up = scripted()
    policy = """retry_on: retriable-headers
num_retries: 2
retriable_headers: [{ name: x-retry-me, string_match: { exact: "yes" } }]"""
    p = proxy(config(retry_route("/r/", policy), cluster("backend", [up.port])))
    port = p.ports["ingress"]
    # A 200 carrying the header is retried too (the header decides, not the status).
    status, _, _ = curl("http://127.0.0.1:%d/r/s/a/2/200" % port)
    assert status == 200 and up.seen["a"] == 3
    status, h, body = curl("http://127.0.0.1:%d/r/s/b/5/200" % port)
    assert status == 200 and body == "fail" and up.seen["b"] == 3


def test_retry_on_connect_failure_moves_to_another_host(proxy, upstream, tmp_path):
    up = upstream("alive")
    dead = free_port()
    log = str(tmp_path / "access.log")
    routes = retry_route("/r/", "retry_on: connect-failure\nnum_retries: 2") + """
              - match: { prefix: "/" }
                route: { cluster: backend }"""
    p = proxy(config(routes, cluster("backend", [dead, up.port]),
                     hcm_extra=access_log_hcm(log, "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS%\\n")))
    port = p.ports["ingress"]
    for i in range(6):
        status, h, _ = curl("http://127.0.0.1:%d/r/%d" % (port, i))
        assert status == 200 and h["x-upstream-name"] == "alive"
    s = p.stats()
    assert int(s["cluster.backend.upstream_cx_connect_fail"]) >= 3
    assert int(s["cluster.backend.upstream_rq_retry"]) >= 3
    # Without the policy, round robin sends every other request to the dead port: 503 UF.
    codes = [curl("http://127.0.0.1:%d/x%d" % (port, i))[0] for i in range(4)]
    assert sorted(codes) == [200, 200, 503, 503]
    lines = wait_for_lines(log, 10)
    assert sum(1 for l in lines if l.endswith(" 503 UF")) == 2


def test_per_try_timeout_retries_then_times_out(proxy, scripted, tmp_path):
    up = scripted()
    log = str(tmp_path / "access.log")
    routes = retry_route("/r/", "retry_on: 5xx\nnum_retries: 1\nper_try_timeout: 0.2s") + \
        retry_route("/once/", "retry_on: 5xx\nnum_retries: 0\nper_try_timeout: 0.2s")
    p = proxy(config(routes, cluster("backend", [up.port]), hcm_extra=access_log_hcm(
        log, "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\\n")))
    port = p.ports["ingress"]
    # The first attempt hangs for 1 s; the per-try timeout cuts it and the retry succeeds.
    t0 = time.time()
    status, _, _ = curl("http://127.0.0.1:%d/r/s/a/1/200/1000" % port)
    assert status == 200 and up.seen["a"] == 2
    assert time.time() - t0 < 0.9
    # No retry left: 504 from the per-try timeout.
    status, _, body = curl("http://127.0.0.1:%d/once/s/b/1/200/1000" % port)
    assert status == 504 and body == "upstream request timeout"
    s = p.stats()
    assert s["cluster.backend.upstream_rq_per_try_timeout"] == "2"
    lines = wait_for_lines(log, 2)
    # num_retries 0: the timeout was retriable but no retry was left (URX), as Envoy logs it.
    assert lines[1] == "504 UT,URX upstream_per_try_timeout"


def test_max_retries_circuit_breaker_overflow(proxy, scripted):
    up = scripted()
    p = proxy(config(retry_route("/r/", "retry_on: 5xx\nnum_retries: 3"),
                     cluster("backend", [up.port], extra="""    circuit_breakers:
      thresholds: [{ max_retries: 0 }]""")))
    status, _, body = curl("http://127.0.0.1:%d/r/s/a/1/503" % p.ports["ingress"])
    # The retry budget is empty: the upstream's own 503 goes back, no second attempt.
    assert status == 503 and body == "fail" and up.seen["a"] == 1
    s = p.stats()
    assert s["cluster.backend.upstream_rq_retry_overflow"] == "1"
    assert s["cluster.backend.upstream_rq_retry"] == "0"


# === connections ===


def test_max_requests_per_connection_upstream_and_downstream(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port, cluster_extra="    max_requests_per_connection: 2",
                           hcm_extra="          common_http_protocol_options: "
                                     "{ max_requests_per_connection: 3 }"))
    port = p.ports["ingress"]
    for i in range(6):
        assert curl("http://127.0.0.1:%d/%d" % (port, i))[0] == 200
    # Upstream: a new connection every 2 requests.
    peers = [r["peer_port"] for r in up.requests]
    assert len(set(peers)) == 3 and peers[0] == peers[1] and peers[2] == peers[3]
    # Downstream: the third response on one connection says close, and the proxy closes it.
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    answers = b""
    for i in range(3):
        s.sendall(b"GET /k%d HTTP/1.1\r\nhost: x\r\n\r\n" % i)
        time.sleep(0.1)
    deadline = time.time() + 5
    while time.time() < deadline:
        b = s.recv(65536)
        if not b:
            break
        answers += b
    s.close()
    assert answers.count(b"HTTP/1.1 200") == 3
    assert answers.lower().count(b"connection: close") == 1


class Always502(EchoHandler):
    def _handle(self):
        self.server.requests.append({"path": self.path})
        self.send_response(502)
        self.send_header("content-length", "0")
        self.send_header("x-upstream-name", self.server.name)
        self.end_headers()

    do_GET = _handle


def test_outlier_consecutive_gateway_failure_ejects_host(proxy, upstream):
    good = upstream("good")
    bad = Upstream("bad")
    bad.RequestHandlerClass = Always502
    try:
        p = proxy(config("""
              - match: { prefix: "/" }
                route: { cluster: backend }""", cluster("backend", [good.port, bad.port], extra="""
    outlier_detection:
      consecutive_5xx: 1000
      consecutive_gateway_failure: 3
      enforcing_consecutive_gateway_failure: 100
      interval: 10s
      base_ejection_time: 30s
      max_ejection_percent: 50""")))
        port = p.ports["ingress"]
        c = Keepalive(port)
        got = [c.get("/%d" % i)[0] for i in range(10)]
        c.close()
        assert got.count(502) == 3, got
        # After the third consecutive 502 the bad host is out; every later request is good.
        assert got[got.index(502, got.index(502, got.index(502) + 1) + 1) + 1:] == [200] * (
            10 - 1 - got.index(502, got.index(502, got.index(502) + 1) + 1))
        s = p.stats()
        assert s["cluster.backend.outlier_detection.ejections_enforced_consecutive_gateway_failure"] \
            == "1"
        assert s["cluster.backend.outlier_detection.ejections_active"] == "1"
        assert len(bad.requests) == 3
    finally:
        bad.stop()


def test_hash_policy_source_ip(proxy, upstream):
    ups = [upstream("h%d" % i) for i in range(4)]
    p = proxy(config("""
              - match: { prefix: "/" }
                route:
                  cluster: backend
                  hash_policy:
                  - connection_properties: { source_ip: true }""",
                     cluster("backend", [u.port for u in ups], extra="    lb_policy: RING_HASH")))
    port = p.ports["ingress"]
    by_ip = {}
    for last in range(1, 9):
        ip = "127.0.0.%d" % last
        # Separate connections (new source ports) from one address go to one host.
        got = {curl("--interface", ip, "http://127.0.0.1:%d/" % port)[1]["x-upstream-name"]
               for _ in range(4)}
        assert len(got) == 1, (ip, got)
        by_ip[ip] = got.pop()
    assert len(set(by_ip.values())) >= 2, by_ip


# === route features ===


def test_scheme_and_port_redirect(proxy, upstream):
    up = upstream()
    p = proxy(config("""
              - match: { prefix: "/secure" }
                redirect: { scheme_redirect: https, port_redirect: 8443 }
              - match: { prefix: "/port" }
                redirect: { port_redirect: 9090, response_code: TEMPORARY_REDIRECT }
              - match: { prefix: "/" }
                route: { cluster: backend }""", cluster("backend", [up.port])))
    port = p.ports["ingress"]
    status, h, _ = curl("-H", "host: example.com", "http://127.0.0.1:%d/secure/a?b=1" % port)
    assert status == 301 and h["location"] == "https://example.com:8443/secure/a?b=1"
    status, h, _ = curl("-H", "host: example.com:81", "http://127.0.0.1:%d/port/x" % port)
    assert status == 307 and h["location"] == "http://example.com:9090/port/x"
    assert not up.requests


def test_response_headers_to_remove(proxy, upstream):
    up = upstream()
    p = proxy(config("""
              - match: { prefix: "/strip" }
                route: { cluster: backend }
                response_headers_to_remove: [x-upstream-name, content-type]
              - match: { prefix: "/" }
                route: { cluster: backend }""", cluster("backend", [up.port])))
    port = p.ports["ingress"]
    status, h, _ = curl("http://127.0.0.1:%d/strip" % port)
    assert status == 200 and "x-upstream-name" not in h and "content-type" not in h
    status, h, _ = curl("http://127.0.0.1:%d/keep" % port)
    assert status == 200 and h["x-upstream-name"] == "upstream"


def test_service_node_and_cluster_in_server_info(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port),
              extra_args=("--service-node", "node-7", "--service-cluster", "cluster-x"))
    info = json.loads(p.admin("/server_info")[1])
    assert info["command_line_options"]["service_node"] == "node-7"
    assert info["command_line_options"]["service_cluster"] == "cluster-x"
    assert info["node"]["id"] == "node-7"
    assert info["node"]["cluster"] == "cluster-x"


# === response flags and access-log operators ===

FLAGS_FMT = "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_LOCAL_ADDRESS% " \
            "%CONNECTION_TERMINATION_DETAILS%\\n"


def test_response_flags_ut_uf_rl_dc_and_operators(proxy, upstream, tmp_path):
    up = upstream()
    dead = free_port()
    log = str(tmp_path / "access.log")
    filters = """
          - name: envoy.filters.http.local_ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              stat_prefix: rl
              token_bucket: { max_tokens: 100, tokens_per_fill: 100, fill_interval: 60s }
              filter_enabled: { default_value: { numerator: 100, denominator: HUNDRED } }
              filter_enforced: { default_value: { numerator: 100, denominator: HUNDRED } }"""
    cfg = basic_config(up.port, routes="""
              - match: { prefix: "/slow/" }
                route: { cluster: backend, timeout: 0.2s, prefix_rewrite: "/delay/" }
              - match: { prefix: "/dead" }
                route: { cluster: dead }
              - match: { prefix: "/limited" }
                route: { cluster: backend }
                typed_per_filter_config:
                  envoy.filters.http.local_ratelimit:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                    stat_prefix: rl_route
                    token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s }
                    filter_enabled: { default_value: { numerator: 100, denominator: HUNDRED } }
                    filter_enforced: { default_value: { numerator: 100, denominator: HUNDRED } }
              - match: { prefix: "/" }
                route: { cluster: backend }""", hcm_extra=access_log_hcm(log, FLAGS_FMT),
                       filters=filters, clusters_extra="""
  - name: dead
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: dead
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %d } } } }] }]""" % dead)
    p = proxy(cfg)
    port = p.ports["ingress"]
    url = "http://127.0.0.1:%d" % port
    assert curl(url + "/ok")[0] == 200
    assert curl(url + "/slow/1000")[0] == 504
    assert curl(url + "/dead")[0] == 503
    assert curl(url + "/limited")[0] == 200
    assert curl(url + "/limited")[0] == 429
    # DC: the client goes away while the upstream is still working.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /delay/600 HTTP/1.1\r\nhost: x\r\n\r\n")
    time.sleep(0.2)
    s.close()
    lines = wait_for_lines(log, 6, timeout=5)
    by_path = {l.split()[0]: l.split() for l in lines}
    ok = by_path["/ok"]
    assert ok[1:3] == ["200", "-"]
    # %UPSTREAM_LOCAL_ADDRESS% is the address the upstream saw the request come from.
    assert ok[3] == "127.0.0.1:%d" % up.requests[0]["peer_port"]
    assert ok[4] == "-"
    assert by_path["/slow/1000"][1:3] == ["504", "UT"]
    assert by_path["/dead"][1:3] == ["503", "UF"]
    assert by_path["/dead"][3] == "-"
    assert by_path["/limited"][1:3] == ["429", "RL"] or \
        [l.split()[1:3] for l in lines if l.startswith("/limited")] == [["200", "-"], ["429", "RL"]]
    dc = by_path["/delay/600"]
    assert dc[1:3] == ["0", "DC"]
    assert dc[4] == "downstream_remote_disconnect"


def h2_frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


class RstStreamUpstream:
    """A minimal HTTP/2 server: answers every request stream with RST_STREAM(INTERNAL_ERROR)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.resets = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        try:
            while len(buf) < 24:
                buf += conn.recv(65536)
            buf = buf[24:]
            conn.sendall(h2_frame(4, 0, 0))  # SETTINGS
            while True:
                while len(buf) < 9:
                    b = conn.recv(65536)
                    if not b:
                        return
                    buf += b
                length = int.from_bytes(buf[:3], "big")
                while len(buf) < 9 + length:
                    buf += conn.recv(65536)
                ftype, flags = buf[3], buf[4]
                stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                buf = buf[9 + length:]
                if ftype == 4 and not flags & 1:
                    conn.sendall(h2_frame(4, 1, 0))  # SETTINGS ACK
                elif ftype == 1:
                    self.resets += 1
                    conn.sendall(h2_frame(3, 0, stream, struct.pack(">I", 2)))
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.sock.close()


def test_response_flag_ur_from_http2_rst_stream(proxy, tmp_path):
    up = RstStreamUpstream()
    log = str(tmp_path / "access.log")
    try:
        p = proxy(basic_config(up.port, hcm_extra=access_log_hcm(
            log, "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\\n"), cluster_extra="""
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }"""))
        status, _, body = curl("http://127.0.0.1:%d/" % p.ports["ingress"])
        assert status == 503
        assert body == ("upstream connect error or disconnect/reset before headers. "
                        "reset reason: remote reset")
        assert up.resets == 1
        assert wait_for_lines(log, 1)[0] == \
            "503 UR upstream_reset_before_response_started{remote_reset}"
    finally:
        up.stop()
