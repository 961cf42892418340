"""Upstream resilience with real traffic: circuit breakers (max_connections, max_pending_requests,
max_requests) answering 503 UO with overflow stats, outlier detection (consecutive_5xx ejects a
host; ejection stats), and active health checks (HTTP path + expected statuses, TCP connect)
taking hosts out (503 UH "no healthy upstream" once none is left)."""
import json
import threading
import time

import pytest

from conftest import (EchoHandler, Upstream, access_log_hcm, basic_config, curl, free_port,
                      wait_for_lines, wait_until)

from test_proxy_routing import Keepalive, cluster, config, names

FMT = "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_HOST%\\n"
ROUTE = """
              - match: { prefix: "/" }
                route: { cluster: backend, timeout: 10s }"""


def _parallel(port, paths, stagger=0.0, on_started=None):
    """Runs one curl per path concurrently; returns [(status, body)] in path order."""
    results = [None] * len(paths)

    def run(i, path):
        s, _, b = curl("http://127.0.0.1:%d%s" % (port, path))
        results[i] = (s, b)

    threads = []
    for i, path in enumerate(paths):
        t = threading.Thread(target=run, args=(i, path))
        t.start()
        threads.append(t)
        if on_started:
            on_started(i)
        time.sleep(stagger)
    for t in threads:
        t.join()
    return results


# === circuit breakers ===


def test_max_connections_and_pending_overflow_is_503_uo(proxy, upstream, tmp_path):
    up = upstream()
    log = str(tmp_path / "access.log")
    breakers = """    circuit_breakers:
      thresholds:
      - { priority: DEFAULT, max_connections: 1, max_pending_requests: 1 }"""
    p = proxy(config(ROUTE, cluster("backend", [up.port], extra=breakers),
                     hcm_extra=access_log_hcm(log, FMT)))
    port = p.ports["ingress"]

    def started(i):
        if i == 0:  # the first request holds the only connection
            wait_until(lambda: up.requests, what="first request upstream")

    paths = ["/delay/900", "/queued", "/over1", "/over2"]
    res = _parallel(port, paths, stagger=0.15, on_started=started)
    assert res[0][0] == 200 and res[1][0] == 200, res
    for status, body in res[2:]:
        assert status == 503
        assert body == ("upstream connect error or disconnect/reset before headers. "
                        "reset reason: overflow")
    assert [r["path"] for r in up.requests] == ["/delay/900", "/queued"]
    stats = p.stats()
    assert stats["cluster.backend.upstream_rq_pending_overflow"] == "2"
    assert stats["cluster.backend.upstream_cx_total"] == "1"
    flags = {l.split()[0]: l.split()[2] for l in wait_for_lines(log, 4)}
    assert flags["/over1"] == "UO" and flags["/over2"] == "UO"
    assert flags["/queued"] == "-"


def test_max_requests_overflow(proxy, upstream, tmp_path):
    up = upstream()
    log = str(tmp_path / "access.log")
    breakers = """    circuit_breakers:
      thresholds:
      - { priority: DEFAULT, max_requests: 2 }"""
    p = proxy(config(ROUTE, cluster("backend", [up.port], extra=breakers),
                     hcm_extra=access_log_hcm(log, FMT)))
    port = p.ports["ingress"]

    def started(i):
        if i < 2:
            wait_until(lambda: len(up.requests) > i, what="request %d upstream" % i)

    res = _parallel(port, ["/delay/800", "/delay/800", "/third"], on_started=started)
    assert [s for s, _ in res] == [200, 200, 503]
    assert p.stats()["cluster.backend.upstream_rq_pending_overflow"] == "1"
    lines = wait_for_lines(log, 3)
    assert [l.split()[2] for l in lines if l.startswith("/third")] == ["UO"]
    # Once the slots are free again, requests pass.
    assert curl("http://127.0.0.1:%d/after" % port)[0] == 200


# === outlier detection ===


class FailingHandler(EchoHandler):
    def _handle(self):
        if self.path.startswith("/healthz"):
            return EchoHandler._handle(self)
        self.server.requests.append({"path": self.path})
        self.send_response(503)
        self.send_header("content-length", "3")
        self.send_header("x-upstream-name", self.server.name)
        self.end_headers()
        self.wfile.write(b"bad")

    do_GET = do_POST = _handle


@pytest.fixture
def bad_upstream():
    u = Upstream("bad")
    u.RequestHandlerClass = FailingHandler
    yield u
    u.stop()


def test_consecutive_5xx_ejects_host(proxy, upstream, bad_upstream):
    good = upstream("good")
    od = """    outlier_detection:
      consecutive_5xx: 3
      interval: 1s
      base_ejection_time: 30s
      max_ejection_percent: 50"""
    p = proxy(config(ROUTE, cluster("backend", [good.port, bad_upstream.port], extra=od)))
    port = p.ports["ingress"]
    c = Keepalive(port)
    statuses = [c.get("/r%d" % i)[0] for i in range(30)]
    c.close()
    # Round robin: the bad host answers 503 three times in a row (every other request), then
    # it is ejected and everything after goes to the good host.
    assert statuses.count(503) == 3, statuses
    assert statuses[-20:] == [200] * 20
    assert len(bad_upstream.requests) == 3
    stats = p.stats()
    assert stats["cluster.backend.outlier_detection.ejections_enforced_total"] == "1"
    assert stats["cluster.backend.outlier_detection.ejections_enforced_consecutive_5xx"] == "1"
    assert stats["cluster.backend.outlier_detection.ejections_active"] == "1"
    assert stats["cluster.backend.membership_healthy"] == "1"
    clusters = p.admin("/clusters")[1]
    assert ("backend::127.0.0.1:%d::health_flags::/failed_outlier_check" % bad_upstream.port
            in clusters), clusters


def test_ejection_respects_max_ejection_percent(proxy, bad_upstream, upstream):
    other = Upstream("bad2")
    other.RequestHandlerClass = FailingHandler
    try:
        od = """    outlier_detection:
      consecutive_5xx: 2
      base_ejection_time: 30s
      max_ejection_percent: 50"""
        p = proxy(config(ROUTE, cluster("backend", [other.port, bad_upstream.port], extra=od)))
        c = Keepalive(p.ports["ingress"])
        for i in range(12):
            c.get("/r%d" % i)
        c.close()
        stats = p.stats()
        # Both hosts failed, only one of two (50%) may be ejected.
        assert stats["cluster.backend.outlier_detection.ejections_active"] == "1"
        assert int(stats.get("cluster.backend.outlier_detection.ejections_overflow", "1")) >= 1
    finally:
        other.stop()


# === active health checks ===


def _hc(kind="http", path="/healthz", expected=None, extra=""):
    if kind == "tcp":
        check = "tcp_health_check: {}"
    else:
        exp = ""
        if expected:
            exp = ", expected_statuses: [%s]" % ", ".join(
                "{ start: %d, end: %d }" % r for r in expected)
        check = "http_health_check: { path: \"%s\"%s }" % (path, exp)
    return """    health_checks:
    - timeout: 0.5s
      interval: 0.1s
      unhealthy_threshold: 1
      healthy_threshold: 1
      %s
    common_lb_config: { healthy_panic_threshold: { value: 0 } }%s""" % (check, extra)


def test_http_health_check_removes_failing_host(proxy, upstream, bad_upstream):
    good = upstream("good")
    # The bad upstream answers its /healthz? 503 only on other paths; give it a failing path.
    p = proxy(config(ROUTE, cluster("backend", [good.port, bad_upstream.port],
                                    extra=_hc(path="/status/200"))))
    wait_until(lambda: p.stats().get("cluster.backend.membership_healthy") == "1",
               what="bad host marked unhealthy")
    assert names(p.ports["ingress"], 10) == {"good": 10}
    hc_paths = [r["path"] for r in good.requests if r["path"] == "/status/200"]
    assert hc_paths, "the health checker never asked the good host"
    hc = [r for r in good.requests if r["path"] == "/status/200"][0]
    assert hc["headers"]["user-agent"] == "Envoy/HC"
    stats = p.stats()
    assert int(stats["cluster.backend.health_check.failure"]) >= 1
    assert stats["cluster.backend.membership_total"] == "2"
    clusters = p.admin("/clusters")[1]
    assert ("backend::127.0.0.1:%d::health_flags::/failed_active_hc" % bad_upstream.port
            in clusters), clusters


def test_no_healthy_upstream_is_503_uh(proxy, upstream, tmp_path):
    up = upstream()
    log = str(tmp_path / "access.log")
    p = proxy(config(ROUTE, cluster("backend", [up.port], extra=_hc(path="/status/500")),
                     hcm_extra=access_log_hcm(log, FMT)))
    wait_until(lambda: p.stats().get("cluster.backend.membership_healthy") == "0",
               what="host unhealthy")
    status, _, body = curl("http://127.0.0.1:%d/x" % p.ports["ingress"])
    assert status == 503 and body == "no healthy upstream"
    assert wait_for_lines(log, 1)[0].split()[:3] == ["/x", "503", "UH"]
    assert p.stats()["cluster.backend.upstream_cx_none_healthy"] == "1"
    assert not [r for r in up.requests if r["path"] == "/x"]


def test_expected_statuses(proxy, upstream):
    up = upstream()
    clusters = (cluster("accepts204", [up.port],
                        extra=_hc(path="/status/204", expected=[(200, 205)])) +
                cluster("default200", [up.port], extra=_hc(path="/status/204")))
    p = proxy(config(ROUTE.replace("backend", "accepts204"), clusters))
    wait_until(lambda: p.stats().get("cluster.default200.membership_healthy") == "0",
               what="204 rejected by default")
    assert p.stats()["cluster.accepts204.membership_healthy"] == "1"
    assert curl("http://127.0.0.1:%d/ok" % p.ports["ingress"])[0] == 200


def test_tcp_health_check_and_recovery(proxy, upstream):
    up = upstream("live")
    dead = free_port()
    clusters = (cluster("live", [up.port], extra=_hc(kind="tcp")) +
                cluster("backend", [dead], extra=_hc(kind="tcp")))
    p = proxy(config(ROUTE, clusters))
    wait_until(lambda: p.stats().get("cluster.backend.membership_healthy") == "0",
               what="dead port unhealthy")
    assert p.stats()["cluster.live.membership_healthy"] == "1"
    status, _, body = curl("http://127.0.0.1:%d/" % p.ports["ingress"])
    assert status == 503 and body == "no healthy upstream"
    # Something starts listening on the dead port: the host comes back.
    import socket
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", dead))
    s.listen(16)
    try:
        wait_until(lambda: p.stats().get("cluster.backend.membership_healthy") == "1",
                   what="host healthy again")
    finally:
        s.close()
