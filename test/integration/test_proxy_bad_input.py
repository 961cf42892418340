"""Bad input never reaches an upstream: request smuggling shapes, bare CR/LF, HTTP/1.0 without
accept_http_10, oversized headers (raw sockets), HTTP/2 protocol errors (raw frames → GOAWAY with
the right code), and configuration errors under --mode validate (one line: file, YAML line, path).
"""
import os
import re
import socket
import struct
import subprocess

import pytest

from conftest import PROXY, access_log_hcm, basic_config, curl, raw_exchange, wait_for_lines


def _status_line(out):
    return out.split(b"\r\n", 1)[0].decode(errors="replace")


def _headers(out):
    head = out.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in head)}


@pytest.fixture
def guarded(proxy, upstream, tmp_path):
    """A proxy with an access log in front of an upstream that must never see a request."""
    up = upstream()
    log = str(tmp_path / "access.log")
    p = proxy(basic_config(up.port, hcm_extra=access_log_hcm(log) +
                           "          max_request_headers_kb: 8"))
    return p, up, log


BAD_REQUESTS = {
    "cl_and_te": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_and_cl": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                 b"Content-Length: 4\r\n\r\n0\r\n\r\n",
    "differing_cl": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n"
                    b"\r\nabcd",
    "cl_list": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabcd",
    "negative_cl": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "chunk_size_not_hex": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"zz\r\nabc\r\n0\r\n\r\n",
    "chunk_size_overflow": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"fffffffffffffffff1\r\nabc\r\n0\r\n\r\n",
    "chunk_without_crlf": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"3\r\nabcX0\r\n\r\n",
    "bare_lf_request_line": b"GET / HTTP/1.1\nHost: x\r\n\r\n",
    "bare_lf_header": b"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
    "bare_cr_header": b"GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n",
    "bare_cr_request_line": b"GET /\r HTTP/1.1\r\nHost: x\r\n\r\n",
    "space_before_colon": b"GET / HTTP/1.1\r\nHost: x\r\nX-A : b\r\n\r\n",
    "obs_fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n",
    "nul_in_header": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\x00c\r\n\r\n",
    "garbage": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
    "http_2_0_line": b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_malformed_request_is_400_and_closed(guarded, name):
    p, up, log = guarded
    out, closed = raw_exchange(p.ports["ingress"], BAD_REQUESTS[name])
    assert _status_line(out) == "HTTP/1.1 400 Bad Request", out
    assert _headers(out).get("connection") == "close"
    assert closed, "connection left open after a 400"
    assert up.requests == []
    line = wait_for_lines(log, 1)[0].split()
    assert line[0] == "400" and "DPE" in line[1].split(","), line


def test_smuggled_second_request_is_not_forwarded(guarded):
    """The classic CL.TE shape: the bytes after the smuggled body would be a second request."""
    p, up, log = guarded
    payload = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked"
               b"\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    out, closed = raw_exchange(p.ports["ingress"], payload)
    assert out.count(b"HTTP/1.1 ") == 1 and _status_line(out).startswith("HTTP/1.1 400")
    assert closed and up.requests == []


def test_http10_gets_426_upgrade_required(guarded):
    p, up, log = guarded
    for req in (b"GET / HTTP/1.0\r\n\r\n",
                b"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"):
        out, closed = raw_exchange(p.ports["ingress"], req)
        assert _status_line(out) == "HTTP/1.1 426 Upgrade Required", out
        assert closed
    assert up.requests == []
    lines = wait_for_lines(log, 2)
    assert all(l.split()[0] == "426" for l in lines), lines


def test_http10_accepted_when_configured(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port, hcm_extra="          http_protocol_options: "
                                                "{ accept_http_10: true }"))
    out, closed = raw_exchange(p.ports["ingress"], b"GET /ten HTTP/1.0\r\nHost: x\r\n\r\n")
    assert re.match(rb"HTTP/1\.[01] 200 OK\r\n", out), out
    assert closed  # HTTP/1.0 without keep-alive
    assert [r["path"] for r in up.requests] == ["/ten"]


def test_headers_over_limit_get_431(guarded):
    p, up, log = guarded
    port = p.ports["ingress"]
    # max_request_headers_kb is 8: one 9000-byte header, and many small ones adding up.
    out, closed = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 +
                               b"\r\n\r\n")
    assert _status_line(out) == "HTTP/1.1 431 Request Header Fields Too Large", out
    assert closed
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 100) for i in range(90))
    out, closed = raw_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert _status_line(out) == "HTTP/1.1 431 Request Header Fields Too Large", out
    # Just under the limit passes.
    status, _, _ = curl("http://127.0.0.1:%d/ok" % port, "-H", "X-Big: " + "a" * 6000)
    assert status == 200
    assert [r["path"] for r in up.requests] == ["/ok"]
    assert p.stats()["http.ingress_http.downstream_rq_4xx"] == "2"


def test_too_many_headers_get_431(guarded):
    p, up, log = guarded
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(120))  # Envoy's default limit is 100
    out, closed = raw_exchange(p.ports["ingress"], b"GET / HTTP/1.1\r\nHost: x\r\n" + many +
                               b"\r\n")
    assert _status_line(out) == "HTTP/1.1 431 Request Header Fields Too Large", out
    assert closed and up.requests == []


def test_worker_survives_bad_input(guarded):
    """One worker, every bad request in a row, split at odd places; then a good request."""
    p, up, log = guarded
    port = p.ports["ingress"]
    for name, data in sorted(BAD_REQUESTS.items()):
        mid = len(data) // 3
        out, _ = raw_exchange(port, None, chunks=[data[:mid], data[mid:]])
        assert _status_line(out).startswith("HTTP/1.1 400"), (name, out)
    assert up.requests == []
    # A client that sends half a request and vanishes (its headers may already be upstream).
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /half HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    s.close()
    status, _, _ = curl("http://127.0.0.1:%d/after" % port)
    assert status == 200
    assert up.requests[-1]["path"] == "/after"


# === HTTP/2 protocol errors: raw frames ===

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def _goaway_code(data):
    """The error code of the first GOAWAY frame in a server's byte stream, or None."""
    i = 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i:i + 3], "big")
        ftype = data[i + 3]
        if ftype == 7 and i + 9 + 8 <= len(data):
            return struct.unpack(">I", data[i + 13:i + 17])[0]
        i += 9 + length
    return None


H2_ERRORS = {
    # DATA on stream 0: PROTOCOL_ERROR.
    "data_on_stream_0": (_frame(0, 1, 0, b"x"), 0x1),
    # SETTINGS with a length that is not a multiple of 6: FRAME_SIZE_ERROR.
    "bad_settings_length": (_frame(4, 0, 0, b"\x00\x01\x00"), 0x6),
    # HEADERS with an HPACK index that does not exist: COMPRESSION_ERROR.
    "bad_hpack": (_frame(1, 5, 1, b"\xff\xff\xff\x7f"), 0x9),
    # WINDOW_UPDATE that overflows the connection window: FLOW_CONTROL_ERROR.
    "window_overflow": (_frame(8, 0, 0, struct.pack(">I", 0x7fffffff)), 0x3),
    # A frame larger than SETTINGS_MAX_FRAME_SIZE (16384): FRAME_SIZE_ERROR.
    "oversized_frame": (_frame(0, 0, 1, b"x" * 20000), 0x6),
}


@pytest.mark.parametrize("name", sorted(H2_ERRORS))
def test_http2_protocol_error_is_goaway_with_code(proxy, upstream, name):
    up = upstream()
    p = proxy(basic_config(up.port))
    frame, code = H2_ERRORS[name]
    out, closed = raw_exchange(p.ports["ingress"], PREFACE + _frame(4, 0, 0) + frame)
    assert _goaway_code(out) == code, out
    assert closed
    assert up.requests == []
    status, _, _ = curl("--http2-prior-knowledge", "http://127.0.0.1:%d/" % p.ports["ingress"])
    assert status == 200


# === Configuration errors: --mode validate ===

GOOD = basic_config(9)


def _validate(tmp_path, text, name="bad.yaml"):
    path = tmp_path / name
    path.write_text(text)
    r = subprocess.run([PROXY, "--mode", "validate", "-c", str(path)], capture_output=True,
                       timeout=20)
    return r.returncode, r.stdout.decode(), r.stderr.decode(), str(path)


def _line_of(text, needle, nth=0):
    hits = [i + 1 for i, l in enumerate(text.splitlines()) if needle in l]
    return hits[nth]


def test_validate_accepts_good_config(tmp_path):
    rc, out, err, path = _validate(tmp_path, GOOD, "good.yaml")
    assert rc == 0, err
    assert "OK" in out


CONFIG_ERRORS = {
    "unknown_field": (
        lambda t: t.replace("    connect_timeout: 1s", "    connect_timeout: 1s\n    bogus_knob: 3"),
        "bogus_knob", "static_resources.clusters[0].bogus_knob", "unknown field"),
    "wrong_type": (
        lambda t: t.replace("port_value: 9 }", "port_value: nine }"),
        "port_value: nine",
        "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint."
        "address.socket_address.port_value", "number"),
    "wrong_type_duration": (
        lambda t: t.replace("connect_timeout: 1s", "connect_timeout: soon"),
        "connect_timeout: soon", "static_resources.clusters[0].connect_timeout", "duration"),
    "unknown_extension_type": (
        lambda t: t.replace("envoy.extensions.filters.http.router.v3.Router",
                            "envoy.extensions.filters.http.nosuch.v3.NoSuch"),
        "nosuch", "static_resources.listeners[0].filter_chains[0].filters[0].typed_config."
                  "http_filters[0].typed_config", "nosuch"),
    "unsupported_network_filter": (
        lambda t: t.replace(
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "envoy.extensions.filters.network.redis_proxy.v3.RedisProxy"),
        "RedisProxy", "static_resources.listeners[0].filter_chains[0].filters[0]", "RedisProxy"),
    "dangling_cluster": (
        lambda t: t.replace("route: { cluster: backend }", "route: { cluster: missing }"),
        "cluster: missing", "static_resources.listeners[0].filter_chains[0].filters[0]."
                            "typed_config.route_config.virtual_hosts[0].routes[0].route.cluster",
        "missing"),
    "bad_enum": (
        lambda t: t.replace("type: STATIC", "type: STATIK"),
        "type: STATIK", "static_resources.clusters[0].type", "STATIK"),
    "static_cluster_with_hostname": (
        lambda t: t.replace("address: 127.0.0.1, port_value: 9 }", "address: example.com, "
                            "port_value: 9 }"),
        "example.com", "static_resources.clusters[0].load_assignment.endpoints[0]."
                       "lb_endpoints[0].endpoint.address.socket_address.address", "example.com"),
    "bad_regex": (
        lambda t: t.replace('- match: { prefix: "/" }', '- match: { safe_regex: { regex: "(" } }'),
        "safe_regex", "static_resources.listeners[0].filter_chains[0].filters[0].typed_config."
                      "route_config.virtual_hosts[0].routes[0].match.safe_regex", "regex"),
}


@pytest.mark.parametrize("name", sorted(CONFIG_ERRORS))
def test_validate_reports_one_located_error(tmp_path, name):
    mutate, needle, field_path, mention = CONFIG_ERRORS[name]
    text = mutate(GOOD)
    assert text != GOOD
    rc, out, err, path = _validate(tmp_path, text)
    assert rc != 0
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    line = _line_of(text, needle)
    assert lines[0].startswith("%s:%d: %s" % (path, line, field_path)), (lines[0], line)
    assert mention.lower() in lines[0].lower()
    assert "OK" not in out


def test_serving_with_bad_config_exits_nonzero_with_the_same_error(tmp_path):
    text = GOOD.replace("route: { cluster: backend }", "route: { cluster: missing }")
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    r = subprocess.run([PROXY, "-c", str(path)], capture_output=True, timeout=20)
    assert r.returncode != 0
    assert "%s:%d: " % (path, _line_of(text, "cluster: missing")) in r.stderr.decode()
