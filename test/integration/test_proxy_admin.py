"""The admin endpoint as an Envoy user drives it (urllib/curl): /, /ready, /server_info, /stats
(text, ?filter=, ?format=json), /stats/prometheus (parsed by prometheus_client), /clusters,
/config_dump, /listeners, /logging, /healthcheck/fail|ok, /reset_counters, /drain_listeners,
/quitquitquit."""
import json
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import basic_config, curl, raw_exchange, wait_until

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # scripts/install-deps.sh installs python3-prometheus-client
    text_string_to_metric_families = None


@pytest.fixture
def busy_proxy(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port))
    port = p.ports["ingress"]
    for i in range(3):
        assert curl("http://127.0.0.1:%d/r%d" % (port, i))[0] == 200
    assert curl("http://127.0.0.1:%d/status/503" % port)[0] == 503
    return p, up


def test_home_help_and_unknown_path(busy_proxy):
    p, up = busy_proxy
    status, body = p.admin("/")
    assert status == 200 and "/stats/prometheus" in body and "/quitquitquit" in body
    status, body = p.admin("/help")
    assert status == 200 and body.startswith("admin commands are:")
    assert p.admin("/nope")[0] == 404


def test_ready_and_server_info(busy_proxy):
    p, up = busy_proxy
    assert p.admin("/ready") == (200, "LIVE\n")
    info = json.loads(p.admin("/server_info")[1])
    assert info["state"] == "LIVE"
    assert int(info["uptime_current_epoch"].rstrip("s")) >= 0
    assert info["command_line_options"]["concurrency"] == 1
    assert "version" in info


def test_stats_text_filter_and_json(busy_proxy):
    p, up = busy_proxy
    stats = p.stats()
    assert stats["http.ingress_http.downstream_rq_2xx"] == "3"
    assert stats["http.ingress_http.downstream_rq_5xx"] == "1"
    assert stats["cluster.backend.upstream_rq_total"] == "4"
    assert stats["cluster.backend.upstream_rq_503"] == "1"
    assert stats["cluster.backend.membership_healthy"] == "1"
    assert stats["server.live"] == "1"
    # ?filter= is a regex over names.
    status, body = p.admin("/stats?filter=downstream_rq_[25]xx")
    names = [l.split(":")[0] for l in body.splitlines() if l]
    assert names and all("downstream_rq_2xx" in n or "downstream_rq_5xx" in n for n in names), names
    # JSON: {"stats": [{"name", "value"}, ..., {"histograms": ...}]}.
    doc = json.loads(p.admin("/stats?format=json")[1])
    values = {s["name"]: s["value"] for s in doc["stats"] if "name" in s}
    assert values["cluster.backend.upstream_rq_total"] == 4
    hists = [s["histograms"] for s in doc["stats"] if "histograms" in s]
    assert hists, doc["stats"][-3:]
    names = [h["name"] for h in hists[0]["computed_quantiles"]]
    assert "cluster.backend.upstream_rq_time" in names
    assert p.admin("/stats?format=bogus")[0] == 400


@pytest.mark.skipif(text_string_to_metric_families is None,
                    reason="python3-prometheus-client not installed")
def test_prometheus_exposition_parses(busy_proxy):
    p, up = busy_proxy
    status, body = p.admin("/stats/prometheus")
    assert status == 200
    families = list(text_string_to_metric_families(body))
    types = {}
    samples = {}
    for f in families:
        for smp in f.samples:
            types[smp.name] = f.type
            samples[(smp.name, tuple(sorted(smp.labels.items())))] = smp.value

    def value(name, **labels):
        return samples[(name, tuple(sorted(labels.items())))]

    backend = {"envoy_cluster_name": "backend"}
    assert types["envoy_cluster_upstream_rq_total"] == "counter"
    assert value("envoy_cluster_upstream_rq_total", **backend) == 4
    # (the parser names counter samples *_total: upstream_rq_503 is upstream_rq_total{code=503})
    assert value("envoy_cluster_upstream_rq_total", envoy_response_code="503", **backend) == 1
    assert types["envoy_cluster_upstream_rq_time_bucket"] == "histogram"
    buckets = sorted((float(dict(k[1])["le"]), v) for k, v in samples.items()
                     if k[0] == "envoy_cluster_upstream_rq_time_bucket"
                     and dict(k[1]).get("envoy_cluster_name") == "backend")
    assert len(buckets) > 5 and buckets[-1][0] == float("inf")
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] == 4  # cumulative
    assert value("envoy_cluster_upstream_rq_time_count", **backend) == 4
    http = {"envoy_http_conn_manager_prefix": "ingress_http"}
    assert value("envoy_http_downstream_rq_xx_total", envoy_response_code_class="2", **http) == 3
    assert value("envoy_http_downstream_rq_xx_total", envoy_response_code_class="5", **http) == 1
    assert value("envoy_server_live") == 1
    # ?filter= applies here too.
    body = p.admin("/stats/prometheus?filter=upstream_rq_total")[1]
    names = {smp.name for f in text_string_to_metric_families(body) for smp in f.samples}
    assert names == {"envoy_cluster_upstream_rq_total"}, names


def test_clusters_text_and_json(busy_proxy):
    p, up = busy_proxy
    text = p.admin("/clusters")[1]
    host = "backend::127.0.0.1:%d" % up.port
    assert host + "::health_flags::healthy" in text
    assert host + "::rq_total::4" in text
    doc = json.loads(p.admin("/clusters?format=json")[1])
    c = [c for c in doc["cluster_statuses"] if c["name"] == "backend"][0]
    addr = c["host_statuses"][0]["address"]["socket_address"]
    assert addr == {"address": "127.0.0.1", "port_value": up.port}


def test_config_dump_and_listeners(busy_proxy):
    p, up = busy_proxy
    doc = json.loads(p.admin("/config_dump")[1])
    types = [c["@type"] for c in doc["configs"]]
    assert types[0] == "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump"
    for t in ("ListenersConfigDump", "ClustersConfigDump", "RoutesConfigDump"):
        assert "type.googleapis.com/envoy.admin.v3." + t in types
    clusters = [c for c in doc["configs"] if c["@type"].endswith("ClustersConfigDump")][0]
    assert clusters["static_clusters"][0]["cluster"]["name"] == "backend"
    boot = doc["configs"][0]["bootstrap"]
    assert boot["static_resources"]["listeners"][0]["name"] == "ingress"
    listeners = json.loads(p.admin("/listeners?format=json")[1])["listener_statuses"]
    assert listeners[0]["name"] == "ingress"
    assert listeners[0]["local_address"]["socket_address"]["port_value"] == p.ports["ingress"]
    text = p.admin("/listeners")[1]
    assert text.strip() == "ingress::127.0.0.1:%d" % p.ports["ingress"]


def test_logging_levels(busy_proxy):
    p, up = busy_proxy
    assert p.admin("/logging?level=debug")[0] == 405  # GET must not mutate
    status, body = p.admin("/logging?level=debug", method="POST")
    assert status == 200 and "debug" in body
    assert "debug" in p.admin("/logging")[1]
    status, body = p.admin("/logging?level=loud", method="POST")
    assert status == 400
    assert p.admin("/logging?level=info", method="POST")[0] == 200


def test_healthcheck_fail_and_ok(busy_proxy):
    p, up = busy_proxy
    port = p.ports["ingress"]
    assert p.admin("/healthcheck/fail", method="POST")[0] == 200
    assert p.admin("/ready") == (503, "DRAINING\n")
    info = json.loads(p.admin("/server_info")[1])
    assert info["state"] == "DRAINING"
    # Inbound: requests are still served, but HTTP/1.1 connections are closed after each
    # response (Envoy's drain close while health-check failed).
    out, closed = raw_exchange(port, b"GET /hc HTTP/1.1\r\nHost: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and b"connection: close" in out.lower()
    assert closed
    # HTTP/2: the response arrives, followed by GOAWAY (NO_ERROR), as Envoy drains.
    r = subprocess.run(["nghttp", "-v", "http://127.0.0.1:%d/hc2" % port],
                       capture_output=True, text=True, timeout=20)
    assert ":status: 200" in r.stdout, r.stdout + r.stderr
    assert "recv GOAWAY frame" in r.stdout and "error_code=NO_ERROR" in r.stdout, r.stdout
    assert p.admin("/healthcheck/ok", method="POST")[0] == 200
    assert p.admin("/ready") == (200, "LIVE\n")
    r = subprocess.run(["nghttp", "-v", "http://127.0.0.1:%d/hc2" % port],
                       capture_output=True, text=True, timeout=20)
    assert ":status: 200" in r.stdout and "recv GOAWAY frame" not in r.stdout, r.stdout
    out, closed = raw_exchange(port, b"GET /hc HTTP/1.1\r\nHost: x\r\n\r\n", timeout=0.5)
    assert out.startswith(b"HTTP/1.1 200") and not closed


def test_reset_counters(busy_proxy):
    p, up = busy_proxy
    assert p.admin("/reset_counters")[0] == 405
    assert p.admin("/reset_counters", method="POST")[0] == 200
    stats = p.stats()
    assert stats["cluster.backend.upstream_rq_total"] == "0"
    assert stats["http.ingress_http.downstream_rq_2xx"] == "0"
    # Gauges keep their value.
    assert stats["cluster.backend.membership_total"] == "1"
    assert curl("http://127.0.0.1:%d/again" % p.ports["ingress"])[0] == 200
    assert p.stats()["cluster.backend.upstream_rq_total"] == "1"


def test_drain_listeners_stops_accepting(busy_proxy):
    p, up = busy_proxy
    port = p.ports["ingress"]
    # A keep-alive connection open before the drain.
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /before HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(4096).startswith(b"HTTP/1.1 200")
    assert p.admin("/drain_listeners", method="POST")[0] == 200

    def refused():
        try:
            c = socket.create_connection(("127.0.0.1", port), timeout=1)
            c.close()
            return False
        except OSError:
            return True

    wait_until(refused, what="listener closed")
    # The admin endpoint stays up.
    assert p.admin("/ready")[0] in (200, 503)
    s.close()


def test_quitquitquit_exits_zero(busy_proxy):
    p, up = busy_proxy
    assert p.admin("/quitquitquit", method="POST")[0] == 200
    assert p.proc.wait(timeout=10) == 0
