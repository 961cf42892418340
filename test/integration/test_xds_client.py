"""mast-proxy's xDS client against an independent ADS server (Python grpcio): initial fetch
(CDS -> EDS -> LDS -> RDS) before /ready, ACKs by version and nonce, pushed updates, NACK of an
invalid resource with the last good config still serving, EDS endpoint moves, config_dump of
dynamic resources, and serving on after the control plane is gone."""
import json
import time

import pytest

from conftest import curl, wait_until, xds_bootstrap

xds = pytest.importorskip("xds_fixture")

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"


def bootstrap(ads_port):
    return xds_bootstrap(ads_port, '{ id: "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local", cluster: productpage }')


def cluster(name):
    return {"name": name, "type": "EDS", "connect_timeout": "1s",
            "eds_cluster_config": {"eds_config": {"ads": {}, "resource_api_version": "V3"}}}


def cla(name, *ports):
    return {"cluster_name": name, "endpoints": [{"locality": {"region": "local"}, "lb_endpoints": [
        {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}}
        for p in ports]}]}


def listener(name="outbound", filters=None):
    return {"name": name,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {"@type": HCM, "stat_prefix": name,
                                 "rds": {"route_config_name": "9080",
                                         "config_source": {"ads": {}, "resource_api_version": "V3"}},
                                 "http_filters": filters or [
                                     {"name": "envoy.filters.http.router",
                                      "typed_config": {"@type": ROUTER}}]}}]}]}


def route(cluster_name, prefix="/"):
    return {"name": "9080", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
        {"match": {"prefix": prefix}, "route": {"cluster": cluster_name}}]}]}


@pytest.fixture
def ads():
    s = xds.AdsServer()
    yield s
    s.stop()


def acked(server, type_url, version, timeout=10):
    return server.wait_for(lambda r: r.type_url == type_url and r.version_info == version and
                           r.response_nonce and not r.error_detail.message, timeout=timeout)


def test_initial_fetch_updates_nack_and_control_plane_loss(proxy, upstream, ads):
    up1, up2 = upstream("one"), upstream("two")
    ads.set(xds.CLUSTER, "c1", [cluster("backend")])
    ads.set(xds.ENDPOINT, "e1", [cla("backend", up1.port)])
    ads.set(xds.LISTENER, "l1", [listener()])
    ads.set(xds.ROUTE, "r1", [route("backend")])
    p = proxy(bootstrap(ads.port))  # returns once /ready is 200: everything fetched and applied
    port = p.ports["outbound"]
    status, headers, body = curl("http://127.0.0.1:%d/hello" % port)
    assert status == 200 and json.loads(body)["name"] == "one"
    # The node goes on the first request; every type is ACKed with its version and nonce.
    first = ads.requests[0][1]
    assert first.node.id.startswith("sidecar~127.0.0.1~productpage-v1.default")
    for t, v in [(xds.CLUSTER, "c1"), (xds.ENDPOINT, "e1"), (xds.LISTENER, "l1"), (xds.ROUTE, "r1")]:
        acked(ads, t, v)
    eds_req = ads.wait_for(lambda r: r.type_url == xds.ENDPOINT)
    assert list(eds_req.resource_names) == ["backend"]

    # EDS: the endpoint moves to another upstream.
    ads.set(xds.ENDPOINT, "e2", [cla("backend", up2.port)])
    acked(ads, xds.ENDPOINT, "e2")
    assert json.loads(curl("http://127.0.0.1:%d/" % port)[2])["name"] == "two"

    # RDS: a new route table.
    ads.set(xds.CLUSTER, "c2", [cluster("backend"), cluster("other")])
    ads.set(xds.ENDPOINT, "e3", [cla("backend", up2.port), cla("other", up1.port)])
    acked(ads, xds.CLUSTER, "c2")
    ads.set(xds.ROUTE, "r2", [route("other")])
    acked(ads, xds.ROUTE, "r2")
    status, _, body = curl("http://127.0.0.1:%d/" % port)
    assert status == 200, body
    assert json.loads(body)["name"] == "one"

    # An invalid listener is NACKed with a precise error; the last good config keeps serving.
    bad = listener(filters=[{"name": "envoy.filters.http.nope",
                             "typed_config": {"@type": "type.googleapis.com/google.protobuf.Empty"}}])
    ads.set(xds.LISTENER, "l2", [bad])
    nack = ads.wait_for(lambda r: r.type_url == xds.LISTENER and r.error_detail.message)
    assert nack.version_info == "l1"
    assert "Listener 'outbound'" in nack.error_detail.message
    assert "http_filters[0]" in nack.error_detail.message
    assert curl("http://127.0.0.1:%d/" % port)[0] == 200

    # config_dump shows dynamic resources with their versions.
    dump = json.loads(p.admin("/config_dump")[1])
    by_type = {c["@type"].rsplit(".", 1)[1]: c for c in dump["configs"]}
    dl = by_type["ListenersConfigDump"]["dynamic_listeners"][0]
    assert dl["name"] == "outbound" and dl["active_state"]["version_info"] == "l1"
    names = {c["cluster"]["name"]: c["version_info"]
             for c in by_type["ClustersConfigDump"]["dynamic_active_clusters"]}
    assert names == {"backend": "c1", "other": "c2"}
    assert by_type["RoutesConfigDump"]["dynamic_route_configs"][0]["version_info"] == "r2"

    # The control plane goes away: the proxy keeps serving its last config.
    ads.stop()
    time.sleep(0.5)
    assert curl("http://127.0.0.1:%d/" % port)[0] == 200


def test_listener_removed_and_added(proxy, upstream, ads):
    up = upstream()
    ads.set(xds.CLUSTER, "1", [cluster("backend")])
    ads.set(xds.ENDPOINT, "1", [cla("backend", up.port)])
    ads.set(xds.LISTENER, "1", [listener("a")])
    ads.set(xds.ROUTE, "1", [route("backend")])
    p = proxy(bootstrap(ads.port))
    port_a = p.ports["a"]
    assert curl("http://127.0.0.1:%d/" % port_a)[0] == 200
    ads.set(xds.LISTENER, "2", [listener("b")])
    acked(ads, xds.LISTENER, "2")
    listeners = json.loads(p.admin("/listeners?format=json")[1])["listener_statuses"]
    assert [l["name"] for l in listeners] == ["b"]
    port_b = listeners[0]["local_address"]["socket_address"]["port_value"]
    assert curl("http://127.0.0.1:%d/" % port_b)[0] == 200
    deadline = time.time() + 5
    while time.time() < deadline and curl("http://127.0.0.1:%d/" % port_a, timeout=1)[0] != 0:
        time.sleep(0.05)
    assert curl("http://127.0.0.1:%d/" % port_a, timeout=1)[0] == 0  # connection refused


def serve_one(ads, up_port, version):
    ads.set(xds.CLUSTER, "c" + version, [cluster("backend")])
    ads.set(xds.ENDPOINT, "e" + version, [cla("backend", up_port)])
    ads.set(xds.LISTENER, "l" + version, [listener()])
    ads.set(xds.ROUTE, "r" + version, [route("backend")])


def stream_requests(server, stream_no):
    with server.lock:
        return [r for n, r in server.requests if n == stream_no]


def test_reconnect_after_server_restart(proxy, upstream):
    """The control plane restarts on the same port: the proxy serves on meanwhile, then opens a
    new stream whose first request carries the node again and every subscription with the last
    accepted version and no nonce (nonces belong to the old stream)."""
    up1, up2 = upstream("one"), upstream("two")
    first = xds.AdsServer()
    serve_one(first, up1.port, "1")
    p = proxy(bootstrap(first.port))
    port = p.ports["outbound"]
    for t, v in [(xds.CLUSTER, "c1"), (xds.ENDPOINT, "e1"), (xds.LISTENER, "l1"), (xds.ROUTE, "r1")]:
        acked(first, t, v)
    ads_port = first.port
    first.stop()
    time.sleep(1.0)  # the proxy retries against a closed port meanwhile
    assert json.loads(curl("http://127.0.0.1:%d/" % port)[2])["name"] == "one"

    second = xds.AdsServer(port=ads_port)
    try:
        serve_one(second, up2.port, "2")
        for t, v in [(xds.CLUSTER, "c2"), (xds.ENDPOINT, "e2"), (xds.LISTENER, "l2"),
                     (xds.ROUTE, "r2")]:
            acked(second, t, v)
        reqs = stream_requests(second, 1)
        assert reqs[0].node.id.startswith("sidecar~127.0.0.1~productpage-v1.default")
        assert all(not r.HasField("node") for r in reqs[1:])
        initial = {}
        for r in reqs:
            initial.setdefault(r.type_url, r)
        assert {t: (r.version_info, r.response_nonce) for t, r in initial.items()} == {
            xds.CLUSTER: ("c1", ""), xds.ENDPOINT: ("e1", ""), xds.LISTENER: ("l1", ""),
            xds.ROUTE: ("r1", "")}
        assert list(initial[xds.ENDPOINT].resource_names) == ["backend"]
        assert list(initial[xds.ROUTE].resource_names) == ["9080"]
        wait_until(lambda: json.loads(curl("http://127.0.0.1:%d/" % port)[2]).get("name") == "two",
                   what="traffic on the new endpoint")
        assert "xds: stream to 127.0.0.1:%d closed" % ads_port in p.output()
    finally:
        second.stop()


def test_stream_ended_with_unavailable_is_retried(proxy, upstream):
    """The server ends the first two streams at once with grpc-status UNAVAILABLE and no message
    (a trailers-only response): the proxy backs off, retries, and takes its config from the
    third stream."""
    up = upstream()
    ads = xds.AdsServer()
    try:
        ads.abort_next(2, xds.grpc.StatusCode.UNAVAILABLE, "warming up, 100% busy")
        serve_one(ads, up.port, "1")
        started = time.time()
        p = proxy(bootstrap(ads.port))  # ready only once the config arrived
        assert ads.stream_count == 3
        # Two back-offs: 250..500 ms, then 500..1000 ms.
        assert time.time() - started >= 0.7
        assert curl("http://127.0.0.1:%d/" % p.ports["outbound"])[0] == 200
        out = p.output()
        # grpc-message is percent-decoded.
        assert out.count("closed (grpc-status 14: warming up, 100% busy)") == 2, out
        # The stream that stayed: the node on its first request only.
        acked(ads, xds.LISTENER, "l1")
        reqs = stream_requests(ads, 3)
        assert reqs[0].HasField("node") and not any(r.HasField("node") for r in reqs[1:])
    finally:
        ads.stop()


def test_large_response_spans_flow_control_windows(proxy, upstream):
    """A CDS response of ~6 MB: several times the proxy's 1 MiB HTTP/2 receive window, so it
    only arrives if the proxy returns credit (WINDOW_UPDATE) as it reads; many DATA frames carry
    one gRPC message."""
    up = upstream()
    ads = xds.AdsServer()
    try:
        serve_one(ads, up.port, "1")
        p = proxy(bootstrap(ads.port))
        blob = "x" * (1 << 20)
        big = [cluster("backend")] + [
            {"name": "big%d" % i, "type": "STATIC", "connect_timeout": "1s",
             "metadata": {"filter_metadata": {"test": {"blob": blob}}},
             "load_assignment": {"cluster_name": "big%d" % i, "endpoints": [{"lb_endpoints": [
                 {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                              "port_value": up.port}}}}]}]}}
            for i in range(6)]
        ads.set(xds.CLUSTER, "big", big)
        acked(ads, xds.CLUSTER, "big", timeout=30)
        clusters = p.admin("/clusters")[1]
        assert all("big%d::" % i in clusters for i in range(6))
        # Clusters from CDS are "added via API", as Envoy's /clusters says.
        assert "big0::added_via_api::true" in clusters, clusters[:2000]
        statuses = json.loads(p.admin("/clusters?format=json")[1])["cluster_statuses"]
        assert any(s["name"] == "big0" and s.get("added_via_api") is True for s in statuses)
        # Still the first stream: nothing broke on the way.
        assert ads.stream_count == 1
        assert curl("http://127.0.0.1:%d/" % p.ports["outbound"])[0] == 200
    finally:
        ads.stop()
