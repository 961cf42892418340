"""A small state-of-the-world ADS server in Python (grpcio), used as an independent xDS peer for
mast-proxy's xDS client. Python stubs are generated from the same Envoy protos the build fetched
(build/xds/src), once per build directory.

The server records every DiscoveryRequest (to assert ACK/NACK by nonce and error_detail) and
pushes a resource set to every open stream when the test calls set()."""
import os
import queue
import subprocess
import sys
import threading
import time
from concurrent import futures

BUILD = os.environ.get("MAST_BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
XDS = os.path.join(os.path.abspath(BUILD), "xds")
PY = os.path.join(XDS, "py")

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"


def _generate():
    stamp = os.path.join(PY, ".done")
    if os.path.exists(stamp):
        return
    os.makedirs(PY, exist_ok=True)
    src = os.path.join(XDS, "src")
    with open(os.path.join(XDS, "protos.txt")) as f:
        protos = [l.strip() for l in f if l.strip()]
    with open(os.path.join(XDS, "services.txt")) as f:
        services = [l.strip() for l in f if l.strip()]
    subprocess.run(["protoc", "-I", src, "-I", "/usr/include", "--python_out", PY, *protos],
                   check=True, cwd=src)
    subprocess.run(["protoc", "-I", src, "-I", "/usr/include", "--grpc_out", PY,
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", *services],
                   check=True, cwd=src)
    open(stamp, "w").close()


_generate()
sys.path.insert(0, PY)

import grpc  # noqa: E402
from google.protobuf import any_pb2, json_format  # noqa: E402
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2  # noqa: E402
# Register every message type the resources use (for "@type" in JSON).
from envoy.config.cluster.v3 import cluster_pb2  # noqa: E402
from envoy.config.endpoint.v3 import endpoint_pb2  # noqa: E402
from envoy.config.listener.v3 import listener_pb2  # noqa: E402
from envoy.config.route.v3 import route_pb2  # noqa: E402
from envoy.extensions.filters.network.http_connection_manager.v3 import (  # noqa: E402,F401
    http_connection_manager_pb2)
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: E402,F401

_MESSAGES = {CLUSTER: cluster_pb2.Cluster, ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
             LISTENER: listener_pb2.Listener, ROUTE: route_pb2.RouteConfiguration}


def pack(type_url, d):
    msg = json_format.ParseDict(d, _MESSAGES[type_url]())
    a = any_pb2.Any()
    a.Pack(msg)
    return a


class AdsServer:
    def __init__(self, port=0):
        """`port`: 0 for one the OS picks, or a previous server's port (a restarted server)."""
        self.requests = []  # (stream_no, DiscoveryRequest)
        self.state = {}  # type_url -> (version, [Any])
        self.streams = []
        self.stream_count = 0  # streams opened so far
        self.aborts = []  # (grpc.StatusCode, message): how the next streams end, before any reply
        self.lock = threading.Lock()
        self.nonce = 0
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(_Servicer(self), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:%d" % port)
        if port and self.port != port:
            raise RuntimeError("port %d is taken" % port)
        self.server.start()

    def abort_next(self, count, code, message):
        """Ends the next `count` streams with `code` at once (trailers-only: no message, no
        initial metadata)."""
        with self.lock:
            self.aborts.extend([(code, message)] * count)

    def stop(self):
        for q in list(self.streams):
            q.put(None)
        self.server.stop(0)

    def set(self, type_url, version, resources):
        """Replaces the resources of a type and pushes them to every stream subscribed to it."""
        with self.lock:
            self.state[type_url] = (version, [pack(type_url, r) for r in resources])
            streams = list(self.streams)
        for q in streams:
            q.put(("push", type_url))

    def next_nonce(self):
        with self.lock:
            self.nonce += 1
            return str(self.nonce)

    def wait_for(self, pred, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                reqs = list(self.requests)
            for r in reqs:
                if pred(r[1]):
                    return r[1]
            time.sleep(0.05)
        raise AssertionError("no matching DiscoveryRequest; got:\n" + "\n".join(
            "%s v=%r nonce=%r names=%s err=%r" % (r.type_url, r.version_info, r.response_nonce,
                                                   list(r.resource_names), r.error_detail.message)
            for _, r in self.requests))


class _Servicer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, owner):
        self.owner = owner

    def StreamAggregatedResources(self, request_iterator, context):
        owner = self.owner
        with owner.lock:
            owner.stream_count += 1
            abort = owner.aborts.pop(0) if owner.aborts else None
        if abort:
            context.abort(*abort)
        q = queue.Queue()
        subscribed = {}  # type_url -> names
        with owner.lock:
            owner.streams.append(q)
            stream_no = owner.stream_count

        def reader():
            try:
                for req in request_iterator:
                    with owner.lock:
                        owner.requests.append((stream_no, req))
                    q.put(("req", req))
            except Exception:
                pass
            q.put(None)

        threading.Thread(target=reader, daemon=True).start()
        sent_version = {}
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                kind, arg = item
                if kind == "req":
                    req = arg
                    t = req.type_url
                    changed = subscribed.get(t) != list(req.resource_names)
                    subscribed[t] = list(req.resource_names)
                    # Answer new subscriptions and changed name sets; ACK/NACKs need nothing.
                    if not changed and req.response_nonce:
                        continue
                    types = [t]
                else:
                    types = [arg] if arg in subscribed else []
                for t in types:
                    with owner.lock:
                        if t not in owner.state:
                            continue
                        version, res = owner.state[t]
                    names = subscribed.get(t, [])
                    if t in (ENDPOINT, ROUTE):
                        res = [r for r in res if _name(t, r) in names]
                    resp = discovery_pb2.DiscoveryResponse(version_info=version, type_url=t,
                                                           nonce=owner.next_nonce())
                    resp.resources.extend(res)
                    sent_version[t] = version
                    yield resp
        finally:
            with owner.lock:
                if q in owner.streams:
                    owner.streams.remove(q)


def _name(t, any_msg):
    m = _MESSAGES[t]()
    any_msg.Unpack(m)
    return m.cluster_name if t == ENDPOINT else m.name
