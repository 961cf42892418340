"""HTTP filters through the real proxy with curl: fault (abort, delay, per-route config as Istio
generates it, header-controlled), local_ratelimit (429 + x-ratelimit-* headers, stats), CORS
(preflight answered locally, simple request headers, disallowed origin untouched), and the
config error for an unknown filter."""
import subprocess
import time

from conftest import PROXY, basic_config, curl

FAULT = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"

FILTERS = """
          - name: envoy.filters.http.fault
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault
          - name: envoy.filters.http.cors
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors }"""

ROUTES = """
              - match: { prefix: "/abort" }
                route: { cluster: backend }
                typed_per_filter_config:
                  envoy.filters.http.fault:
                    "@type": %(fault)s
                    abort: { http_status: 503, percentage: { numerator: 100, denominator: HUNDRED } }
              - match: { prefix: "/delay" }
                route: { cluster: backend }
                typed_per_filter_config:
                  envoy.filters.http.fault:
                    "@type": %(fault)s
                    delay: { fixed_delay: 0.4s, percentage: { numerator: 100 } }
              - match: { prefix: "/cors" }
                route: { cluster: backend }
                typed_per_filter_config:
                  envoy.filters.http.cors:
                    "@type": type.googleapis.com/envoy.config.route.v3.CorsPolicy
                    allow_origin_string_match: [{ exact: "https://good.example" }]
                    allow_methods: "GET,POST"
                    allow_headers: "x-custom"
                    max_age: "600"
              - match: { prefix: "/" }
                route: { cluster: backend }""" % {"fault": FAULT}


def test_fault_abort_delay_and_headers(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port, routes=ROUTES, filters=FILTERS))
    port = p.ports["ingress"]
    status, headers, body = curl("http://127.0.0.1:%d/abort" % port)
    assert status == 503 and body == "fault filter abort"
    assert not any(r["path"] == "/abort" for r in up.requests)
    t0 = time.time()
    assert curl("http://127.0.0.1:%d/delay" % port)[0] == 200
    assert time.time() - t0 >= 0.4
    # No per-route config on "/": header-controlled faults still apply (Envoy's behaviour).
    status, _, _ = curl("-H", "x-envoy-fault-abort-request: 418", "http://127.0.0.1:%d/x" % port)
    assert status == 200  # header faults need header_abort in the filter config: not set here
    s = p.stats()
    assert s["http.ingress_http.fault.aborts_injected"] == "1"
    assert s["http.ingress_http.fault.delays_injected"] == "1"


def test_fault_flags_in_access_log(proxy, upstream, tmp_path):
    up = upstream()
    log = tmp_path / "access.log"
    hcm = """
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: %s
              log_format: { text_format_source: { inline_string: "%%RESPONSE_CODE%% %%RESPONSE_FLAGS%%\\n" } }""" % log
    p = proxy(basic_config(up.port, routes=ROUTES, filters=FILTERS, hcm_extra=hcm))
    port = p.ports["ingress"]
    curl("http://127.0.0.1:%d/abort" % port)
    curl("http://127.0.0.1:%d/delay" % port)
    deadline = time.time() + 5
    while time.time() < deadline and len(log.read_text().splitlines()) < 2:
        time.sleep(0.05)
    assert log.read_text().splitlines() == ["503 FI", "200 DI"]


def test_local_ratelimit_429(proxy, upstream):
    up = upstream()
    filters = """
          - name: envoy.filters.http.local_ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              stat_prefix: rl
              token_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: 60s }
              filter_enabled: { default_value: { numerator: 100, denominator: HUNDRED } }
              filter_enforced: { default_value: { numerator: 100, denominator: HUNDRED } }
              enable_x_ratelimit_headers: DRAFT_VERSION_03"""
    p = proxy(basic_config(up.port, filters=filters))
    port = p.ports["ingress"]
    codes = [curl("http://127.0.0.1:%d/" % port) for _ in range(4)]
    assert [c[0] for c in codes] == [200, 200, 429, 429]
    assert codes[2][2] == "local_rate_limited"
    assert codes[2][1]["x-ratelimit-limit"] == "2"
    assert codes[2][1]["x-ratelimit-remaining"] == "0"
    assert len(up.requests) == 2
    s = p.stats()
    assert s["rl.http_local_rate_limit.rate_limited"] == "2"
    assert s["rl.http_local_rate_limit.ok"] == "2"


def test_cors_preflight_simple_and_denied(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port, routes=ROUTES, filters=FILTERS))
    url = "http://127.0.0.1:%d/cors" % p.ports["ingress"]
    status, h, _ = curl("-X", "OPTIONS", "-H", "origin: https://good.example",
                        "-H", "access-control-request-method: POST", url)
    assert status == 200
    assert h["access-control-allow-origin"] == "https://good.example"
    assert "POST" in h["access-control-allow-methods"]
    assert h["access-control-max-age"] == "600"
    assert not any(r["method"] == "OPTIONS" for r in up.requests)  # answered by the proxy
    status, h, _ = curl("-H", "origin: https://good.example", url)
    assert status == 200 and h["access-control-allow-origin"] == "https://good.example"
    status, h, _ = curl("-H", "origin: https://evil.example", url)
    assert status == 200 and "access-control-allow-origin" not in h


def test_unknown_filter_is_a_config_error(tmp_path, upstream):
    up = upstream()
    bad = """
          - name: envoy.filters.http.made_up
            typed_config: { "@type": type.googleapis.com/google.protobuf.Empty }"""
    path = tmp_path / "bad.yaml"
    path.write_text(basic_config(up.port, filters=bad))
    r = subprocess.run([PROXY, "--mode", "validate", "-c", str(path)], capture_output=True, timeout=20)
    assert r.returncode != 0
    assert b"http_filters[0]" in r.stderr and b"unsupported HTTP filter" in r.stderr
    optional = bad.replace("typed_config", "is_optional: true\n            typed_config")
    path.write_text(basic_config(up.port, filters=optional))
    r = subprocess.run([PROXY, "--mode", "validate", "-c", str(path)], capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr
