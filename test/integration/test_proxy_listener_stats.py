"""Listener stats as Envoy names them: listener.<address>.downstream_cx_total, _active, _destroy
and the downstream_cx_length_ms histogram, for HTTP and tcp_proxy listeners."""
import socket
import time

from conftest import basic_config, curl, wait_until
from test_proxy_listeners import tcp_config


def listener_stats(p, port):
    # Named after the configured address, as Envoy does (port 0 here: chosen by the OS).
    prefix = "listener.127.0.0.1_0."
    return {k[len(prefix):]: v for k, v in p.stats().items() if k.startswith(prefix)}


def test_http_listener_connection_stats(proxy, upstream):
    up = upstream()
    p = proxy(basic_config(up.port))
    port = p.ports["ingress"]
    s = listener_stats(p, port)
    assert s["downstream_cx_total"] == "0"
    assert s["downstream_cx_active"] == "0"
    assert s["downstream_cx_destroy"] == "0"
    assert s["downstream_cx_length_ms"] == "No recorded values"
    held = socket.create_connection(("127.0.0.1", port))
    held.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
    assert held.recv(65536).startswith(b"HTTP/1.1 200")
    for _ in range(3):
        assert curl("http://127.0.0.1:%d/" % port)[0] == 200
    wait_until(lambda: listener_stats(p, port)["downstream_cx_destroy"] == "3", what="3 destroyed")
    s = listener_stats(p, port)
    assert s["downstream_cx_total"] == "4"
    assert s["downstream_cx_active"] == "1"
    time.sleep(0.3)
    held.close()
    wait_until(lambda: listener_stats(p, port)["downstream_cx_active"] == "0", what="none active")
    s = listener_stats(p, port)
    assert s["downstream_cx_destroy"] == "4"
    # The held connection lived >= 300 ms: the histogram's maximum says so.
    hist = s["downstream_cx_length_ms"]
    assert hist.startswith("P0("), hist
    p100 = float(hist.split("P100(")[1].split(",")[0])
    assert p100 >= 300, hist
    prom = p.admin("/stats/prometheus")[1]
    assert 'envoy_listener_downstream_cx_active{envoy_listener_address="127.0.0.1_0"} 0' in prom
    assert "envoy_listener_downstream_cx_length_ms_bucket" in prom


def test_tcp_listener_connection_stats(proxy):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    try:
        p = proxy(tcp_config("          cluster: one", [("one", srv.getsockname()[1])]))
        port = p.ports["tcp"]
        c = socket.create_connection(("127.0.0.1", port))
        conn, _ = srv.accept()
        wait_until(lambda: listener_stats(p, port)["downstream_cx_active"] == "1", what="active")
        c.close()
        conn.close()
        wait_until(lambda: listener_stats(p, port)["downstream_cx_destroy"] == "1", what="destroy")
        assert listener_stats(p, port)["downstream_cx_active"] == "0"
    finally:
        srv.close()
