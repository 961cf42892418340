"""mast-proxy's xDS client against an independent ADS server (Python grpcio): initial fetch
(CDS -> EDS -> LDS -> RDS) before /ready, ACKs by version and nonce, pushed updates, NACK of an
invalid resource with the last good config still serving, EDS endpoint moves, config_dump of
dynamic resources, and serving on after the control plane is gone."""
import json
import time

import pytest

from conftest import curl, xds_bootstrap

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


def acked(server, type_url, version):
    return server.wait_for(lambda r: r.type_url == type_url and r.version_info == version and
                           r.response_nonce and not r.error_detail.message)


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
