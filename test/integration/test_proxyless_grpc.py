"""Proxyless gRPC against mastd: gRPC's own xDS client (Debian's python3-grpcio, xds:/// resolver,
GENERATOR=grpc node metadata, as Istio's proxyless support) resolves a ServiceEntry host through
mastd's LDS → RDS → CDS → EDS and follows a VirtualService edit between subsets."""
import json
import os
import subprocess
from concurrent import futures

import grpc
import pytest

from conftest import free_port
from test_mastd import Mesh

CLIENT = os.path.join(os.path.dirname(__file__), "..", "..", "src", "control", "xds",
                      "xds_python_client.py")


def echo_server(ip, port, name):
    def say(request, context):
        return ("%s:%s" % (name, request.decode())).encode()

    handler = grpc.method_handlers_generic_handler(
        "mast.test.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)})
    s = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    s.add_generic_rpc_handlers((handler,))
    s.add_insecure_port("%s:%d" % (ip, port))
    s.start()
    return s


CONFIG = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: echo }
spec:
  hosts: [echo.default.svc.cluster.local]
  ports: [{ number: %(port)d, name: grpc, protocol: GRPC }]
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: { labels: { app: echo } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: echo-v1 }
spec: { address: 127.0.0.21, labels: { app: echo, version: v1 }, locality: region1/zone1 }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: echo-v2 }
spec: { address: 127.0.0.22, labels: { app: echo, version: v2 }, locality: region1/zone1 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo }
spec:
  host: echo
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
"""

VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo }
spec:
  hosts: [echo]
  http:
  - route: [{ destination: { host: echo, subset: %s } }]
"""


def run_client(tmp_path, xds_port, target, expected):
    boot = tmp_path / "grpc-bootstrap.json"
    boot.write_text(json.dumps({
        "xds_servers": [{"server_uri": "127.0.0.1:%d" % xds_port,
                         "channel_creds": [{"type": "insecure"}], "server_features": ["xds_v3"]}],
        "node": {"id": "sidecar~127.0.0.1~client-1.default~default.svc.cluster.local",
                 "cluster": "client", "locality": {"region": "region1"},
                 "metadata": {"GENERATOR": "grpc", "NAMESPACE": "default"}}}))
    env = dict(os.environ, GRPC_XDS_BOOTSTRAP=str(boot))
    return subprocess.run(["/usr/bin/python3", CLIENT, target, expected, "20"],
                          capture_output=True, text=True, env=env, timeout=60)


def test_grpc_xds_client_follows_mastd(tmp_path):
    mesh = Mesh(tmp_path)
    port = free_port()
    servers = [echo_server("127.0.0.21", port, "v1"), echo_server("127.0.0.22", port, "v2")]
    try:
        mesh.apply(CONFIG % {"port": port})
        mesh.apply(VS % "v2")
        target = "echo.default.svc.cluster.local:%d" % port
        r = run_client(tmp_path, mesh.xds_port, target, "v2:")
        assert r.returncode == 0, r.stdout + r.stderr + mesh.output()[-3000:]
        mesh.apply(VS % "v1")
        r = run_client(tmp_path, mesh.xds_port, target, "v1:")
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        for s in servers:
            s.stop(0)
        mesh.stop()
