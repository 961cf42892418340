"""A minimal state-of-the-world ADS client in Python (grpcio), for driving mastd from tests with
full control over what is ACKed, NACKed or left unanswered. Stubs come from xds_fixture (the
build's own Envoy protos)."""
import queue
import threading

import xds_fixture  # noqa: F401  (generates and imports the Python stubs)
import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from xds_fixture import CLUSTER, ENDPOINT, LISTENER, ROUTE  # noqa: F401


class AdsClient:
    """One StreamAggregatedResources stream to 127.0.0.1:port as node `node_id`."""

    def __init__(self, port, node_id, metadata):
        self.node = base_pb2.Node(id=node_id, cluster="test")
        self.node.metadata.update(metadata)
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % port)
        self._requests = queue.Queue()
        self._responses = queue.Queue()
        self._stash = []
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        self.call = stub.StreamAggregatedResources(self._next_request())
        threading.Thread(target=self._read, daemon=True).start()

    def _next_request(self):
        while True:
            r = self._requests.get()
            if r is None:
                return
            yield r

    def _read(self):
        try:
            for resp in self.call:
                self._responses.put(resp)
        except grpc.RpcError:
            pass

    def request(self, type_url, names=(), version="", nonce="", error=None):
        """Sends a DiscoveryRequest; `error` makes it a NACK with that error_detail message."""
        r = discovery_pb2.DiscoveryRequest(type_url=type_url, resource_names=list(names),
                                           version_info=version, response_nonce=nonce)
        r.node.CopyFrom(self.node)
        if error is not None:
            r.error_detail.code = 3  # INVALID_ARGUMENT, as Envoy sends
            r.error_detail.message = error
        self._requests.put(r)

    def response(self, type_url, timeout=10):
        """The next response of `type_url` (others received meanwhile are kept for later)."""
        for i, resp in enumerate(self._stash):
            if resp.type_url == type_url:
                return self._stash.pop(i)
        while True:
            resp = self._responses.get(timeout=timeout)
            if resp.type_url == type_url:
                return resp
            self._stash.append(resp)

    def ack(self, resp, names=()):
        self.request(resp.type_url, names, resp.version_info, resp.nonce)

    def nack(self, resp, message, names=()):
        # A NACK carries the version the client still has (none yet here) and the nonce.
        self.request(resp.type_url, names, "", resp.nonce, error=message)

    def close(self):
        self._requests.put(None)
        self.call.cancel()
        self.channel.close()
