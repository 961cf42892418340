"""Proxyless gRPC against mastd: gRPC's own xDS client (Debian's python3-grpcio, xds:/// resolver,
GENERATOR=grpc node metadata, as Istio's proxyless support) resolves a ServiceEntry host through
mastd's LDS → RDS → CDS → EDS and follows a VirtualService edit between subsets; one long-lived
client follows a weight shift on its one ADS stream, ACKing everything."""
import json
import os
import subprocess
import threading
import time
import urllib.request
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


FOLLOWER = os.path.join(os.path.dirname(__file__), "grpc_xds_follower.py")

WEIGHTED_VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo }
spec:
  hosts: [echo]
  http:
  - route:
    - { destination: { host: echo, subset: v1 }, weight: %d }
    - { destination: { host: echo, subset: v2 }, weight: %d }
"""

CLIENT_ID = "sidecar~127.0.0.1~client-1.default~default.svc.cluster.local"


class Follower:
    """grpc_xds_follower.py as one long-lived process; its replies collected in order."""

    def __init__(self, tmp_path, xds_port, target):
        boot = tmp_path / "grpc-follower-bootstrap.json"
        boot.write_text(json.dumps({
            "xds_servers": [{"server_uri": "127.0.0.1:%d" % xds_port,
                             "channel_creds": [{"type": "insecure"}],
                             "server_features": ["xds_v3"]}],
            "node": {"id": CLIENT_ID, "cluster": "client", "locality": {"region": "region1"},
                     "metadata": {"GENERATOR": "grpc", "NAMESPACE": "default"}}}))
        env = dict(os.environ, GRPC_XDS_BOOTSTRAP=str(boot))
        self.proc = subprocess.Popen(["/usr/bin/python3", FOLLOWER, target], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.replies = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.replies.append(line.strip())

    def count(self):
        with self.lock:
            return len(self.replies)

    def since(self, n):
        with self.lock:
            return list(self.replies[n:])

    def wait_for_run(self, prefix, run=20, timeout=30):
        """Waits until the last `run` replies all start with `prefix`; returns the index of the
        first reply of that run."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                tail = self.replies[-run:]
                if len(tail) == run and all(r.startswith(prefix) for r in tail):
                    return len(self.replies) - run
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError("no run of %d %r replies; last: %r; stderr: %s" % (
            run, prefix, self.since(max(0, self.count() - 10)), self.stop()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.stderr.read()


def adsz_entries(mesh, node_id):
    with urllib.request.urlopen("http://127.0.0.1:%d/debug/adsz" % mesh.http_port,
                                timeout=5) as r:
        j = json.loads(r.read())
    return [c for c in j["clients"] if c["node"]["id"] == node_id]


def test_one_grpc_client_follows_a_weight_shift_on_one_stream(tmp_path):
    """Issue 3's proof: one gRPC xDS client process keeps calling while the VirtualService moves
    the weights 100/0 -> 0/100; its traffic follows on the same ADS stream (no reconnect), and
    it ACKed every type mastd sent (no NACK: gRPC's validator accepts all of it)."""
    mesh = Mesh(tmp_path)
    port = free_port()
    servers = [echo_server("127.0.0.21", port, "v1"), echo_server("127.0.0.22", port, "v2")]
    client = None
    try:
        mesh.apply(CONFIG % {"port": port})
        mesh.apply(WEIGHTED_VS % (100, 0))
        client = Follower(tmp_path, mesh.xds_port, "echo.default.svc.cluster.local:%d" % port)
        client.wait_for_run("v1:")
        before = adsz_entries(mesh, CLIENT_ID)
        assert len(before) == 1, before
        stream = before[0]["streamId"]
        rds_pushes = before[0]["types"]["RDS"]["pushes"]
        mark = client.count()

        mesh.apply(WEIGHTED_VS % (0, 100))
        first_v2 = client.wait_for_run("v2:")
        after_shift = client.since(mark)
        # Traffic moved: v1 until the push landed, then v2 only; no failed call on the way.
        assert not [r for r in after_shift if r.startswith("ERR")], after_shift
        switched = [i for i, r in enumerate(after_shift) if r.startswith("v2:")]
        assert switched and all(r.startswith("v2:") for r in after_shift[switched[0]:]), \
            after_shift
        assert first_v2 >= mark

        # Same stream, every type ACKed at the version sent, never NACKed.
        after = adsz_entries(mesh, CLIENT_ID)
        assert len(after) == 1 and after[0]["streamId"] == stream, (before, after)
        types = after[0]["types"]
        assert set(types) >= {"LDS", "RDS", "CDS", "EDS"}, types
        for name, t in types.items():
            assert t["state"] == "SYNCED", (name, t)
            assert t["ackedVersion"] == t["sentVersion"] and t["nacks"] == 0, (name, t)
            assert "lastNack" not in t, (name, t)
        assert types["RDS"]["pushes"] > rds_pushes  # the weight change reached this stream
        status = mesh.ctl("proxy-status")
        row = [l for l in status.stdout.splitlines() if l.startswith(CLIENT_ID)]
        assert len(row) == 1 and row[0].split()[2:6] == ["SYNCED"] * 4, status.stdout
        assert "ERROR" not in status.stdout, status.stdout
        # mastd saw the client connect once.
        log = mesh.output()
        assert log.count("xds: proxy %s connected" % CLIENT_ID) == 1, log[-3000:]
        assert log.count("xds: proxy %s disconnected" % CLIENT_ID) == 0, log[-3000:]
        assert "v1:" in " ".join(client.since(0)[:mark])
    finally:
        if client:
            client.stop()
        for s in servers:
            s.stop(0)
        mesh.stop()
