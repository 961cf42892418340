"""Listeners: filter_chain_match (server_names via tls_inspector incl. wildcards,
transport_protocol, application_protocols, source_prefix_ranges, destination_port) and
default_filter_chain, told apart by direct responses; tcp_proxy (cluster, weighted_clusters,
idle_timeout, hash_policy source_ip from several client addresses) with raw sockets; a listener on ::1."""
import json
import math
import socket
import threading
import time

import pytest

from conftest import access_log_hcm, basic_config, curl, free_port, wait_for_lines, wait_until

from test_proxy_tls import downstream_tls


def direct_chain(body, match="", tls=""):
    return """
    - %sfilters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: %s
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                direct_response: { status: 200, body: { inline_string: "%s" } }
          http_filters:
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }%s""" % (
        ("filter_chain_match: %s\n      " % match) if match else "", body.replace("-", "_"),
        body, tls)


def default_chain(body):
    """The same chain as default_filter_chain (a mapping, not a list item)."""
    return direct_chain(body).replace("\n    - filters:", "\n    default_filter_chain:\n"
                                      "      filters:", 1)


def tls_socket(certs):
    return downstream_tls(certs)


LISTENER = """
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
  - name: multi
    address: { socket_address: { address: %(address)s, port_value: %(port)d } }
%(listener_filters)s
    filter_chains:%(chains)s%(default)s
  clusters: []
"""


@pytest.fixture
def multi(proxy, certs):
    ts = tls_socket(certs)
    chains = (direct_chain("chain-a", "{ server_names: [a.test] }", ts) +
              direct_chain("chain-wild", "{ server_names: ['*.wild.test'] }", ts) +
              direct_chain("chain-h2", "{ transport_protocol: tls, application_protocols: [h2] }",
                           ts) +
              direct_chain("chain-tls", "{ transport_protocol: tls }", ts) +
              direct_chain("chain-src2", "{ source_prefix_ranges: [{ address_prefix: 127.0.0.2,"
                                         " prefix_len: 32 }] }"))
    cfg = LISTENER % {"address": "127.0.0.1", "port": 0, "chains": chains,
                      "default": default_chain("default"), "listener_filters": """    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector }"""}
    p = proxy(cfg)
    return p, p.ports["multi"]


def _https(certs, port, name, *args):
    return curl("--cacert", certs["ca.crt"], "-k", "--resolve", "%s:%d:127.0.0.1" % (name, port),
                *args, "https://%s:%d/" % (name, port))


def test_server_names_exact_and_wildcard(multi, certs):
    p, port = multi
    assert _https(certs, port, "a.test", "--http1.1")[2] == "chain-a"
    assert _https(certs, port, "x.wild.test", "--http1.1")[2] == "chain-wild"
    assert _https(certs, port, "deep.x.wild.test", "--http1.1")[2] == "chain-wild"
    # "*.wild.test" does not match the bare domain: falls to the transport_protocol chains.
    assert _https(certs, port, "wild.test", "--http1.1")[2] == "chain-tls"


def test_application_protocols_and_transport_protocol(multi, certs):
    p, port = multi
    status, _, body = _https(certs, port, "other.test", "--http2")
    assert status == 200 and body == "chain-h2"
    assert _https(certs, port, "other.test", "--http1.1")[2] == "chain-tls"
    # A server name match outranks application_protocols (Envoy's order).
    assert _https(certs, port, "a.test", "--http2")[2] == "chain-a"


def test_source_prefix_and_default_chain(multi):
    p, port = multi
    status, _, body = curl("--interface", "127.0.0.2", "http://127.0.0.1:%d/" % port)
    assert status == 200 and body == "chain-src2"
    status, _, body = curl("http://127.0.0.1:%d/" % port)
    assert status == 200 and body == "default"


def test_no_matching_chain_closes_connection(proxy, certs):
    cfg = LISTENER % {"address": "127.0.0.1", "port": 0, "default": "", "listener_filters": "",
                      "chains": direct_chain("only-src2", "{ source_prefix_ranges: "
                                                          "[{ address_prefix: 127.0.0.2 }] }")}
    p = proxy(cfg)
    status, _, _ = curl("http://127.0.0.1:%d/" % p.ports["multi"])
    assert status == 0
    stats = p.stats()
    assert sum(int(v) for k, v in stats.items() if k.endswith("no_filter_chain_match")) == 1


def test_destination_port(proxy):
    port = free_port()
    chains = (direct_chain("other-port", "{ destination_port: %d }" % (port + 1)) +
              direct_chain("this-port", "{ destination_port: %d }" % port) +
              direct_chain("any-port"))
    p = proxy(LISTENER % {"address": "127.0.0.1", "port": port, "chains": chains, "default": "",
                          "listener_filters": ""})
    assert curl("http://127.0.0.1:%d/" % port)[2] == "this-port"


def test_ipv6_listener(proxy, upstream, tmp_path):
    up = upstream()
    log = str(tmp_path / "access.log")
    cfg = basic_config(up.port, hcm_extra=access_log_hcm(
        log, "%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %RESPONSE_CODE%\\n"))
    cfg = cfg.replace("address: { socket_address: { address: 127.0.0.1, port_value: 0 } }\n    "
                      "filter_chains", "address: { socket_address: { address: \"::1\", "
                      "port_value: 0 } }\n    filter_chains", 1)
    p = proxy(cfg)
    port = p.ports["ingress"]
    status, _, body = curl("-g", "http://[::1]:%d/six" % port)
    assert status == 200 and json.loads(body)["path"] == "/six"
    # use_remote_address is off: x-forwarded-for is not invented, but the log shows the peer.
    remote, local, code = wait_for_lines(log, 1)[0].split()
    assert remote.startswith("[::1]:") and local == "[::1]:%d" % port and code == "200"
    # Not reachable over IPv4.
    assert curl("http://127.0.0.1:%d/" % port)[0] == 0


# === tcp_proxy ===


class NamedEcho:
    """TCP server: sends "<name>\\n" on connect, then echoes. Counts connections."""

    def __init__(self, name, host="127.0.0.1", port=0):
        self.name = name
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.closed = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._conn, args=(c,), daemon=True).start()

    def _conn(self, c):
        try:
            c.sendall(self.name.encode() + b"\n")
            while True:
                b = c.recv(65536)
                if not b:
                    break
                c.sendall(b)
        except OSError:
            pass
        c.close()
        self.closed += 1

    def stop(self):
        self.sock.close()


@pytest.fixture
def echoes():
    made = []

    def make(name):
        e = NamedEcho(name)
        made.append(e)
        return e

    yield make
    for e in made:
        e.stop()


def tcp_config(tcp, clusters):
    return """
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
  - name: tcp
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: tcp_in
%s
  clusters:%s
""" % (tcp, "".join("""
  - name: %s
    connect_timeout: 1s
    type: STATIC
    load_assignment:
      cluster_name: %s
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %d } } } }] }]
""" % (n, n, port) for n, port in clusters))


def _tcp_session(port, payload=b"", timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    f = s.makefile("rb")
    name = f.readline().strip().decode()
    echoed = b""
    if payload:
        s.sendall(payload)
        while len(echoed) < len(payload):
            b = s.recv(65536)
            assert b
            echoed += b
    return s, name, echoed


def test_tcp_proxy_cluster(proxy, echoes):
    e = echoes("one")
    p = proxy(tcp_config("          cluster: one", [("one", e.port)]))
    payload = bytes(range(256)) * 4000
    s, name, echoed = _tcp_session(p.ports["tcp"], payload)
    assert name == "one" and echoed == payload
    s.close()
    wait_until(lambda: e.closed == 1, what="upstream side closed")
    stats = p.stats()
    assert stats["tcp.tcp_in.downstream_cx_total"] == "1"
    assert int(stats["tcp.tcp_in.downstream_cx_rx_bytes_total"]) == len(payload)


def test_tcp_proxy_weighted_clusters(proxy, echoes):
    a, b = echoes("a"), echoes("b")
    p = proxy(tcp_config("""          weighted_clusters:
            clusters:
            - { name: a, weight: 1 }
            - { name: b, weight: 3 }""", [("a", a.port), ("b", b.port)]))
    n = 120
    got = {"a": 0, "b": 0}
    for _ in range(n):
        s, name, _ = _tcp_session(p.ports["tcp"])
        got[name] += 1
        s.close()
    sd = math.sqrt(n * 0.25 * 0.75)
    assert abs(got["a"] - n * 0.25) <= 5 * sd, got


def test_tcp_proxy_idle_timeout(proxy, echoes):
    e = echoes("idle")
    p = proxy(tcp_config("          cluster: idle\n          idle_timeout: 0.4s",
                         [("idle", e.port)]))
    s, name, _ = _tcp_session(p.ports["tcp"], b"ping")
    start = time.time()
    s.settimeout(5)
    assert s.recv(10) == b""  # closed by the proxy
    assert 0.2 < time.time() - start < 3
    assert p.stats()["tcp.tcp_in.idle_timeout"] == "1"
    wait_until(lambda: e.closed == 1, what="upstream closed too")


def hashed_tcp_config(hash_policy, lb_policy, echoes):
    """One tcp_proxy listener to cluster `ring` (lb_policy) of all `echoes` as endpoints."""
    endpoints = ", ".join(
        "{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %d } } } }"
        % e.port for e in echoes)
    return tcp_config("          cluster: ring\n" + hash_policy, []) + """
  - name: ring
    connect_timeout: 1s
    type: STATIC
    lb_policy: %s
    load_assignment:
      cluster_name: ring
      endpoints: [{ lb_endpoints: [%s] }]
""" % (lb_policy, endpoints)


def _backends_by_source(port, sources, per_source):
    """{source address: set of backend names} over `per_source` connections from each."""
    seen = {}
    for src in sources:
        for _ in range(per_source):
            s = socket.socket()
            s.settimeout(5)
            s.bind((src, 0))
            s.connect(("127.0.0.1", port))
            name = s.makefile("rb").readline().strip().decode()
            s.close()
            seen.setdefault(src, set()).add(name)
    return seen


@pytest.mark.parametrize("lb_policy", ["RING_HASH", "MAGLEV"])
def test_tcp_proxy_hash_policy_source_ip(proxies, echoes, lb_policy):
    """hash_policy [{source_ip: {}}] (Istio's DestinationRule consistentHash.useSourceIp on a TCP
    port): every connection from one client address goes to the same backend, and the clients
    spread over the backends. Without the hash policy the same cluster picks per connection."""
    backends = [echoes("b%d" % i) for i in range(4)]
    sources = ["127.0.0.%d" % i for i in range(2, 14)]
    p = proxies(hashed_tcp_config("          hash_policy: [{ source_ip: {} }]", lb_policy, backends))
    seen = _backends_by_source(p.ports["tcp"], sources, 6)
    assert all(len(names) == 1 for names in seen.values()), seen
    assert len(set().union(*seen.values())) >= 2, seen
    # The same mapping on a second proxy with the same config (the hash is of the address only).
    p2 = proxies(hashed_tcp_config("          hash_policy: [{ source_ip: {} }]", lb_policy, backends))
    assert _backends_by_source(p2.ports["tcp"], sources, 1) == seen
    # Control: no hash policy, no stickiness.
    p3 = proxies(hashed_tcp_config("", lb_policy, backends))
    unhashed = _backends_by_source(p3.ports["tcp"], sources, 6)
    assert any(len(names) > 1 for names in unhashed.values()), unhashed


def test_tcp_proxy_hash_policy_filter_state_rejected(tmp_path):
    import subprocess
    from conftest import PROXY
    text = tcp_config("          cluster: one\n          hash_policy: [{ filter_state: { key: k } }]",
                      [("one", 9)])
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    r = subprocess.run([PROXY, "--mode", "validate", "-c", str(path)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode != 0
    assert "hash_policy[0]: only source_ip is supported" in r.stderr, r.stderr


def test_tcp_proxy_upstream_down_closes(proxy):
    p = proxy(tcp_config("          cluster: dead", [("dead", free_port())]))
    s = socket.create_connection(("127.0.0.1", p.ports["tcp"]), timeout=5)
    assert s.recv(10) == b""
    wait_until(lambda: p.stats().get("cluster.dead.upstream_cx_connect_fail") == "1",
               what="connect failure counted")
