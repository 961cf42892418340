"""Routing and load balancing through the real proxy with curl/raw HTTP: runtime_fraction,
weighted_clusters, cluster_header, request mirroring (-shadow host, fire and forget), retries
(5xx, retriable-status-codes, reset, num_retries, x-envoy-attempt-count), hash policies with
RING_HASH and MAGLEV, LEAST_REQUEST, STRICT_DNS/LOGICAL_DNS on localhost, ORIGINAL_DST."""
import collections
import json
import math
import threading
import time
import urllib.request

import pytest

from conftest import EchoHandler, Upstream, access_log_hcm, basic_config, curl, wait_for_lines

HCM_HEAD = """
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
  - name: ingress
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
%(hcm_extra)s
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:%(routes)s
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  clusters:%(clusters)s
"""


def cluster(name, ports, extra="", address="127.0.0.1", type_="STATIC"):
    eps = "".join("""
        - endpoint: { address: { socket_address: { address: %s, port_value: %d } } }""" % (
        address, p) for p in ports)
    return """
  - name: %s
    connect_timeout: 1s
    type: %s
%s
    load_assignment:
      cluster_name: %s
      endpoints:
      - lb_endpoints:%s
""" % (name, type_, extra, name, eps)


def config(routes, clusters, hcm_extra=""):
    return HCM_HEAD % {"routes": routes, "clusters": clusters, "hcm_extra": hcm_extra}


class Keepalive:
    """Many requests over one keep-alive connection (fast, bounded)."""

    def __init__(self, port):
        import http.client
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get(self, path, headers=None, method="GET", body=None):
        self.conn.request(method, path, body=body, headers=headers or {})
        r = self.conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def close(self):
        self.conn.close()


def names(port, n, path="/", headers=None):
    """Which upstream (by name) answered each of n requests."""
    c = Keepalive(port)
    out = []
    for _ in range(n):
        status, h, body = c.get(path, headers)
        assert status == 200, body
        out.append(h["x-upstream-name"])
    c.close()
    return collections.Counter(out)


def within(count, n, p, sigmas=5):
    mean = n * p
    sd = math.sqrt(n * p * (1 - p))
    return mean - sigmas * sd <= count <= mean + sigmas * sd


# === runtime_fraction ===


def test_runtime_fraction_zero_hundred_and_split(proxy, upstream):
    a, b, c, d = upstream("a"), upstream("b"), upstream("c"), upstream("d")
    routes = """
              - match:
                  prefix: "/zero"
                  runtime_fraction: { default_value: { numerator: 0 }, runtime_key: k0 }
                route: { cluster: a }
              - match:
                  prefix: "/all"
                  runtime_fraction: { default_value: { numerator: 100 }, runtime_key: k1 }
                route: { cluster: a }
              - match:
                  prefix: "/split"
                  runtime_fraction:
                    default_value: { numerator: 3000, denominator: TEN_THOUSAND }
                    runtime_key: k2
                route: { cluster: c }
              - match: { prefix: "/" }
                route: { cluster: b }"""
    clusters = cluster("a", [a.port]) + cluster("b", [b.port]) + cluster("c", [c.port])
    p = proxy(config(routes, clusters))
    port = p.ports["ingress"]
    assert names(port, 30, "/zero") == {"b": 30}
    assert names(port, 30, "/all") == {"a": 30}
    n = 200
    got = names(port, n, "/split")
    assert within(got["c"], n, 0.3), got
    assert got["c"] + got["b"] == n


# === weighted_clusters, cluster_header ===


def test_weighted_clusters_any_total(proxy, upstream):
    a, b, z = upstream("a"), upstream("b"), upstream("z")
    routes = """
              - match: { prefix: "/" }
                route:
                  weighted_clusters:
                    clusters:
                    - { name: a, weight: 1 }
                    - { name: b, weight: 3 }
                    - { name: z, weight: 0 }"""
    clusters = cluster("a", [a.port]) + cluster("b", [b.port]) + cluster("z", [z.port])
    p = proxy(config(routes, clusters))
    n = 200
    got = names(p.ports["ingress"], n)
    assert got["z"] == 0
    assert within(got["a"], n, 0.25), got
    assert got["a"] + got["b"] == n
    stats = p.stats()
    assert int(stats["cluster.a.upstream_rq_total"]) == got["a"]


def test_weighted_cluster_headers_and_host_rewrite(proxy, upstream):
    a = upstream("a")
    routes = """
              - match: { prefix: "/" }
                route:
                  weighted_clusters:
                    clusters:
                    - name: a
                      weight: 7
                      host_rewrite_literal: rewritten.example
                      request_headers_to_add: [{ header: { key: x-wc, value: a } }]
                      response_headers_to_add: [{ header: { key: x-wc-resp, value: yes } }]"""
    p = proxy(config(routes, cluster("a", [a.port])))
    status, headers, body = curl("http://127.0.0.1:%d/w" % p.ports["ingress"])
    assert status == 200 and headers["x-wc-resp"] == "yes"
    seen = json.loads(body)["headers"]
    assert seen["x-wc"] == "a" and seen["host"] == "rewritten.example"


def test_cluster_header(proxy, upstream, tmp_path):
    a, b = upstream("a"), upstream("b")
    log = str(tmp_path / "access.log")
    routes = """
              - match: { prefix: "/" }
                route: { cluster_header: x-target-cluster }"""
    p = proxy(config(routes, cluster("a", [a.port]) + cluster("b", [b.port]),
                     hcm_extra=access_log_hcm(log)))
    port = p.ports["ingress"]
    assert names(port, 3, headers={"x-target-cluster": "b"}) == {"b": 3}
    assert names(port, 2, headers={"x-target-cluster": "a"}) == {"a": 2}
    # Unknown cluster and missing header: 503 with NC, like Envoy.
    status, _, body = curl("http://127.0.0.1:%d/" % port, "-H", "x-target-cluster: nope")
    assert status == 503
    status, _, body = curl("http://127.0.0.1:%d/" % port)
    assert status == 503
    lines = wait_for_lines(log, 7)
    assert [l.split()[:3] for l in lines[-2:]] == [["503", "NC", "cluster_not_found"]] * 2


# === request mirroring ===


class SlowHandler(EchoHandler):
    def _handle(self):
        time.sleep(self.server.delay)
        EchoHandler._handle(self)

    do_GET = do_POST = _handle


class SlowUpstream(Upstream):
    def __init__(self, name, delay):
        self.delay = delay
        super().__init__(name)
        self.RequestHandlerClass = SlowHandler


def test_request_mirror_is_fire_and_forget(proxy, upstream):
    main = upstream("main")
    shadow = SlowUpstream("shadow", 1.5)
    try:
        routes = """
              - match: { prefix: "/" }
                route:
                  cluster: main
                  request_mirror_policies:
                  - cluster: shadow
                    runtime_fraction: { default_value: { numerator: 100 } }"""
        p = proxy(config(routes, cluster("main", [main.port]) + cluster("shadow", [shadow.port])))
        port = p.ports["ingress"]
        start = time.time()
        status, _, body = curl("http://127.0.0.1:%d/m?q=1" % port, "-H", "Host: api.example:8080",
                               "--data-binary", "mirrored-body")
        elapsed = time.time() - start
        assert status == 200 and json.loads(body)["name"] == "main"
        assert elapsed < 1.0, "the client waited for the shadow (%.2fs)" % elapsed
        deadline = time.time() + 5
        while not shadow.requests and time.time() < deadline:
            time.sleep(0.05)
        assert len(shadow.requests) == 1
        s = shadow.requests[0]
        assert s["path"] == "/m?q=1" and s["method"] == "POST" and s["body"] == b"mirrored-body"
        assert s["headers"]["host"] == "api.example-shadow:8080"
        assert main.requests[0]["headers"]["host"] == "api.example:8080"
    finally:
        shadow.stop()


def test_request_mirror_fraction_zero(proxy, upstream):
    main, shadow = upstream("main"), upstream("shadow")
    routes = """
              - match: { prefix: "/" }
                route:
                  cluster: main
                  request_mirror_policies:
                  - cluster: shadow
                    runtime_fraction: { default_value: { numerator: 0 } }"""
    p = proxy(config(routes, cluster("main", [main.port]) + cluster("shadow", [shadow.port])))
    assert names(p.ports["ingress"], 20) == {"main": 20}
    time.sleep(0.2)
    assert shadow.requests == []


# === retries ===


class FlakyHandler(EchoHandler):
    """/flaky/<key>/<k>/<status>: the first k requests for key get <status> (or, for status 0,
    a closed connection without a response), later ones 200."""

    def _handle(self):
        parts = self.path.split("/")
        if len(parts) >= 5 and parts[1] == "flaky":
            key, k, status = parts[2], int(parts[3]), int(parts[4])
            with self.server.lock:
                self.server.seen[key] += 1
                n = self.server.seen[key]
            self.server.attempt_headers.append(self.headers.get("x-envoy-attempt-count"))
            if n <= k:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                if status == 0:
                    import socket as _s
                    self.close_connection = True
                    self.connection.shutdown(_s.SHUT_RDWR)
                    return
                self.send_response(status)
                self.send_header("content-length", "4")
                self.send_header("x-upstream-name", self.server.name)
                self.end_headers()
                self.wfile.write(b"fail")
                return
        EchoHandler._handle(self)

    do_GET = do_POST = _handle


class FlakyUpstream(Upstream):
    def __init__(self, name="flaky"):
        super().__init__(name)
        self.RequestHandlerClass = FlakyHandler
        self.lock = threading.Lock()
        self.seen = collections.Counter()
        self.attempt_headers = []


@pytest.fixture
def flaky():
    u = FlakyUpstream()
    yield u
    u.stop()


RETRY_ROUTES = """
              - match: { prefix: "/r5xx/" }
                route:
                  cluster: backend
                  prefix_rewrite: "/"
                  retry_policy:
                    retry_on: 5xx
                    num_retries: 2
                    retry_back_off: { base_interval: 0.01s, max_interval: 0.02s }
              - match: { prefix: "/rcodes/" }
                route:
                  cluster: backend
                  prefix_rewrite: "/"
                  retry_policy:
                    retry_on: retriable-status-codes
                    retriable_status_codes: [418]
                    num_retries: 3
                    retry_back_off: { base_interval: 0.01s, max_interval: 0.02s }
              - match: { prefix: "/rreset/" }
                route:
                  cluster: backend
                  prefix_rewrite: "/"
                  retry_policy:
                    retry_on: reset
                    num_retries: 1
                    retry_back_off: { base_interval: 0.01s, max_interval: 0.02s }
              - match: { prefix: "/none/" }
                route: { cluster: backend, prefix_rewrite: "/" }"""


def test_retry_on_5xx_and_attempt_count(proxy, flaky, tmp_path):
    log = str(tmp_path / "access.log")
    p = proxy(config(RETRY_ROUTES, cluster("backend", [flaky.port]), hcm_extra=access_log_hcm(
        log, "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS%\\n")))
    port = p.ports["ingress"]
    c = Keepalive(port)
    # Two failures, two retries: the third attempt succeeds.
    status, _, body = c.get("/r5xx/flaky/a/2/503")
    assert status == 200 and json.loads(body)["headers"]["x-envoy-attempt-count"] == "3"
    assert flaky.attempt_headers == ["1", "2", "3"]
    # Three failures: retries exhausted, the client gets the upstream's last 503 (not a local
    # reply) after num_retries + 1 attempts.
    status, _, body = c.get("/r5xx/flaky/b/3/503")
    assert status == 503 and body == b"fail"
    assert flaky.seen["b"] == 3
    # 5xx does not cover 4xx.
    status, _, _ = c.get("/r5xx/flaky/c/1/404")
    assert status == 404 and flaky.seen["c"] == 1
    stats = p.stats()
    assert stats["cluster.backend.upstream_rq_retry"] == "4"
    c.close()
    lines = wait_for_lines(log, 3)
    assert lines[1].split() == ["/r5xx/flaky/b/3/503", "503", "URX"]


def test_retriable_status_codes(proxy, flaky):
    p = proxy(config(RETRY_ROUTES, cluster("backend", [flaky.port])))
    c = Keepalive(p.ports["ingress"])
    status, _, _ = c.get("/rcodes/flaky/a/2/418")
    assert status == 200 and flaky.seen["a"] == 3
    # Not listed: no retry, even for a 5xx.
    status, _, _ = c.get("/rcodes/flaky/b/1/500")
    assert status == 500 and flaky.seen["b"] == 1
    c.close()


def test_retry_on_reset(proxy, flaky):
    p = proxy(config(RETRY_ROUTES, cluster("backend", [flaky.port])))
    port = p.ports["ingress"]
    status, _, body = curl("http://127.0.0.1:%d/rreset/flaky/a/1/0" % port)
    assert status == 200 and flaky.seen["a"] == 2
    # Without a retry policy the reset is a local 503 (UC: the connection closed).
    status, _, body = curl("http://127.0.0.1:%d/none/flaky/b/1/0" % port)
    assert status == 503
    assert body.startswith("upstream connect error or disconnect/reset before headers. "
                           "reset reason: connection termination")
    # A POST body is replayed on the retry.
    status, _, body = curl("http://127.0.0.1:%d/rreset/flaky/c/1/0" % port,
                           "--data-binary", "replay-me")
    assert status == 200 and json.loads(body)["body_len"] == 9


# === hash policies ===


@pytest.fixture
def four(upstream):
    return [upstream("h%d" % i) for i in range(4)]


@pytest.mark.parametrize("policy", ["RING_HASH", "MAGLEV"])
def test_hash_policy_sticks_and_spreads(proxy, four, policy):
    routes = """
              - match: { prefix: "/" }
                route:
                  cluster: backend
                  hash_policy:
                  - header: { header_name: x-user }"""
    p = proxy(config(routes, cluster("backend", [u.port for u in four],
                                     extra="    lb_policy: %s" % policy)))
    port = p.ports["ingress"]
    for user in ("alice", "bob", "carol"):
        got = names(port, 15, headers={"x-user": user})
        assert len(got) == 1, (user, got)
    owners = collections.Counter()
    c = Keepalive(port)
    for i in range(60):
        status, h, _ = c.get("/", {"x-user": "user-%d" % i})
        owners[h["x-upstream-name"]] += 1
    c.close()
    assert len(owners) == 4, owners
    assert min(owners.values()) >= 3, owners


def test_hash_policy_cookie_and_query(proxy, four):
    routes = """
              - match: { prefix: "/" }
                route:
                  cluster: backend
                  hash_policy:
                  - query_parameter: { name: session }"""
    p = proxy(config(routes, cluster("backend", [u.port for u in four],
                                     extra="    lb_policy: RING_HASH")))
    port = p.ports["ingress"]
    for s in ("s1", "s2", "s3"):
        assert len(names(port, 10, "/?session=%s&other=%d" % (s, 1))) == 1


# === LEAST_REQUEST ===


def test_least_request_avoids_the_busy_host(proxy, upstream):
    a, b = upstream("a"), upstream("b")
    p = proxy(config("""
              - match: { prefix: "/" }
                route: { cluster: backend, timeout: 5s }""",
                     cluster("backend", [a.port, b.port], extra="""    lb_policy: LEAST_REQUEST
    least_request_lb_config: { choice_count: 6 }""")))
    port = p.ports["ingress"]
    result = {}

    def slow():
        result["slow"] = curl("http://127.0.0.1:%d/delay/1500" % port)

    t = threading.Thread(target=slow)
    t.start()
    deadline = time.time() + 3
    while not (a.requests or b.requests) and time.time() < deadline:
        time.sleep(0.01)
    busy = "a" if a.requests else "b"
    got = names(port, 20, "/quick")
    t.join()
    assert result["slow"][0] == 200
    idle = "b" if busy == "a" else "a"
    assert got[idle] >= 16, (busy, got)


# === DNS clusters ===


@pytest.mark.parametrize("kind", ["STRICT_DNS", "LOGICAL_DNS"])
def test_dns_cluster_resolves_localhost(proxy, upstream, kind):
    up = upstream("dns")
    p = proxy(config("""
              - match: { prefix: "/" }
                route: { cluster: backend, auto_host_rewrite: true }""",
                     cluster("backend", [up.port], address="localhost", type_=kind,
                             extra="    dns_lookup_family: V4_ONLY")))
    status, _, body = curl("http://127.0.0.1:%d/dns" % p.ports["ingress"])
    assert status == 200
    seen = json.loads(body)
    assert seen["path"] == "/dns"
    # auto_host_rewrite puts the DNS name of the endpoint in Host.
    assert seen["headers"]["host"].split(":")[0] == "localhost"
    clusters = p.admin("/clusters")[1]
    assert "backend::127.0.0.1:%d::" % up.port in clusters


# === ORIGINAL_DST ===


def test_original_dst_with_http_header(proxy, upstream):
    a, b = upstream("a"), upstream("b")
    p = proxy(config("""
              - match: { prefix: "/" }
                route: { cluster: passthrough }""", """
  - name: passthrough
    connect_timeout: 1s
    type: ORIGINAL_DST
    lb_policy: CLUSTER_PROVIDED
    original_dst_lb_config: { use_http_header: true }
"""))
    port = p.ports["ingress"]
    for up in (a, b, a):
        status, h, _ = curl("http://127.0.0.1:%d/od" % port, "-H",
                            "x-envoy-original-dst-host: 127.0.0.1:%d" % up.port)
        assert status == 200 and h["x-upstream-name"] == up.name
    assert len(a.requests) == 2 and len(b.requests) == 1
