"""DestinationRule consistentHash.useSourceIp on a TCP port, end to end: mastd gives the
sidecar's tcp_proxy `hash_policy: [{source_ip: {}}]` and the cluster RING_HASH; the real
mast-proxy then sends every connection of one client address to the same of four TCP backends
(127.0.0.41-44, each naming itself), with twelve client addresses (127.0.0.50-61, bound by the
client socket) spread over several backends. Switching the DestinationRule to ROUND_ROBIN with
mastctl ends the stickiness, so it was the hash.

No iptables: the Sidecar's egress listener (bind 127.0.0.40, captureMode NONE) is the listener
the clients connect to."""
import json
import socket

from conftest import Proxy, free_port, xds_bootstrap
from test_mastd import SIDECAR_NODE, Mesh, eventually
from test_proxy_listeners import NamedEcho

CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: db, namespace: default }
spec:
  hosts: [db.example.com]
  ports: [{ number: %(port)d, name: tcp-db, protocol: TCP }]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints:
  - { address: 127.0.0.41 }
  - { address: 127.0.0.42 }
  - { address: 127.0.0.43 }
  - { address: 127.0.0.44 }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: productpage-db, namespace: default }
spec:
  workloadSelector: { labels: { app: productpage } }
  egress:
  - port: { number: %(port)d, protocol: TCP, name: tcp-db }
    bind: 127.0.0.40
    captureMode: NONE
    hosts: ["./*"]
"""

DR = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: db, namespace: default }
spec:
  host: db.example.com
  trafficPolicy: { loadBalancer: %s }
"""

SOURCES = ["127.0.0.%d" % i for i in range(50, 62)]


def backend_from(src, port):
    """The name the backend behind 127.0.0.40:port sends, over a connection from `src`."""
    s = socket.socket()
    s.settimeout(3)
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.40", port))
        return s.makefile("rb").readline().strip().decode()
    except OSError:
        return ""
    finally:
        s.close()


def by_source(port, per_source):
    return {src: {backend_from(src, port) for _ in range(per_source)} for src in SOURCES}


def test_sidecar_tcp_consistent_hash_by_source_ip(tmp_path):
    mesh = Mesh(tmp_path)
    port = free_port()
    backends = [NamedEcho("b%d" % i, "127.0.0.%d" % (41 + i), port) for i in range(4)]
    sc_dir = tmp_path / "sidecar"
    sc_dir.mkdir()
    sc = None
    try:
        mesh.apply(CONFIG % {"port": port})
        mesh.apply(DR % "{ consistentHash: { useSourceIp: true } }")
        sc = Proxy(sc_dir, xds_bootstrap(mesh.xds_port, SIDECAR_NODE))
        cluster = "outbound|%d||db.example.com" % port

        def hashed_config():
            dump = json.loads(sc.admin("/config_dump")[1])
            text = json.dumps(dump)
            return '"source_ip": {}' in text and '"RING_HASH"' in text
        assert eventually(hashed_config, timeout=10), sc.output()
        assert eventually(lambda: backend_from(SOURCES[0], port) != "", timeout=10), sc.output()

        seen = by_source(port, 5)
        assert all(len(names) == 1 for names in seen.values()), seen
        assert "" not in set().union(*seen.values()), seen
        assert len(set().union(*seen.values())) >= 2, seen

        # ROUND_ROBIN: no hash policy, connections of one client rotate over the backends.
        mesh.apply(DR % "{ simple: ROUND_ROBIN }")
        assert eventually(lambda: not hashed_config(), timeout=10), sc.output()
        unhashed = by_source(port, 5)
        assert any(len(names) > 1 for names in unhashed.values()), unhashed
        assert cluster in sc.admin("/clusters")[1]
    finally:
        if sc:
            sc.stop()
        for b in backends:
            b.stop()
        mesh.stop()
