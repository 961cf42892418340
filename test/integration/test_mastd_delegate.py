"""VirtualService delegation end to end: a root VirtualService bound to a Gateway hands
/productpage and /reviews to two delegate VirtualServices (one in another namespace, exported to
the root's), mastd merges them into the root's routes, and a real mast-proxy gateway serves them
to curl. Editing a delegate with mastctl moves the traffic (the root's routes are re-pushed);
deleting it takes its routes away (404, no upstream) and `mastctl analyze` names the missing
delegate (IST0101)."""
import json

import pytest

from conftest import Proxy, curl, xds_bootstrap
from test_mastd import GATEWAY_NODE, SERVICES, Mesh, Named, eventually

DETAILS = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: details, namespace: default }
spec:
  hosts: [details.default.svc.cluster.local]
  ports: [{ number: %(svc_port)d, name: http, protocol: HTTP }]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{ address: 127.0.0.13 }]
"""

ROOT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: bookinfo, namespace: default }
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - name: pp
    match: [{ uri: { prefix: /productpage } }]
    delegate: { name: productpage-routes }
  - name: reviews
    match: [{ uri: { prefix: /reviews } }]
    delegate: { name: reviews-routes, namespace: team }
"""

PRODUCTPAGE_ROUTES = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: productpage-routes, namespace: default }
spec:
  http:
  - name: v2
    match: [{ uri: { prefix: /productpage/v2 } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - name: static
    match: [{ uri: { prefix: /static } }]
    route: [{ destination: { host: details } }]
  - name: rest
    route: [{ destination: { host: %(rest)s } }]
"""

REVIEWS_ROUTES = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-routes, namespace: team }
spec:
  exportTo: [default]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews.default.svc.cluster.local, subset: v2 } }]
  - route: [{ destination: { host: reviews.default.svc.cluster.local, subset: v1 } }]
"""


@pytest.fixture
def mesh(tmp_path):
    m = Mesh(tmp_path)
    m.ups.append(Named("127.0.0.13", m.svc_port, "details"))
    yield m
    m.stop()


def path(port, p, *headers):
    args = []
    for h in headers:
        args += ["-H", h]
    return curl(*args, "http://127.0.0.1:%d%s" % (port, p))


def test_delegates_merge_into_the_root_and_follow_edits(mesh, tmp_path):
    mesh.apply(SERVICES % {"svc_port": mesh.svc_port, "gw_port": mesh.gw_port})
    mesh.apply(DETAILS % {"svc_port": mesh.svc_port})
    mesh.apply(ROOT)
    mesh.apply(PRODUCTPAGE_ROUTES % {"rest": "details"})
    mesh.apply(REVIEWS_ROUTES)
    gw_dir = tmp_path / "gw"
    gw_dir.mkdir()
    gw = Proxy(gw_dir, xds_bootstrap(mesh.xds_port, GATEWAY_NODE))
    try:
        port = mesh.gw_port
        body = lambda p, *h: path(port, p, *h)[2]
        assert eventually(lambda: body("/productpage") == "details", timeout=10), gw.output()
        # productpage-routes, narrowed to /productpage: its own prefix under the root's...
        assert body("/productpage/v2/x") == "v2"
        assert body("/productpage/anything") == "details"
        # ...and /static is not under /productpage: Istio drops that route, nothing else matches.
        status, headers, _ = path(port, "/static/app.js")
        assert status == 404 and "x-envoy-upstream-service-time" not in headers
        # reviews-routes lives in namespace team, exported to default; header routes merge
        # with the root's /reviews prefix.
        assert body("/reviews") == "v1"
        assert body("/reviews/1", "end-user: jason") == "v2"
        assert path(port, "/", "end-user: jason")[0] == 404  # root prefix still required

        # The gateway's route configuration holds the merged routes, named root-delegate.
        dump = json.loads(gw.admin("/config_dump")[1])
        text = json.dumps(dump)
        assert '"pp-v2"' in text and '"pp-rest"' in text and '"pp-static"' not in text

        # Only the delegate changes: the root's routes are regenerated and pushed.
        mesh.apply(PRODUCTPAGE_ROUTES % {"rest": "reviews"})
        assert eventually(lambda: body("/productpage") in ("v1", "v2"), timeout=10)
        assert body("/productpage/v2/x") == "v2"
        assert body("/reviews") == "v1"  # the other delegate is untouched

        clean = mesh.ctl("analyze")
        assert clean.returncode == 0, clean.stdout + clean.stderr

        # Deleting a delegate: its routes disappear (404 from the gateway, no upstream), the
        # other delegate keeps serving, and analyze names the reference.
        d = mesh.ctl("delete", "virtualservice", "productpage-routes")
        assert d.returncode == 0, d.stderr
        assert eventually(lambda: path(port, "/productpage")[0] == 404, timeout=10)
        status, headers, _ = path(port, "/productpage/v2/x")
        assert status == 404 and "x-envoy-upstream-service-time" not in headers
        assert body("/reviews/1", "end-user: jason") == "v2"
        r = mesh.ctl("analyze")
        assert r.returncode == 79, r.stdout + r.stderr
        assert ('Error [IST0101] (VirtualService default/bookinfo) Referenced delegate '
                'VirtualService not found: "default/productpage-routes"') in r.stdout, r.stdout

        # Brought back, it serves again.
        mesh.apply(PRODUCTPAGE_ROUTES % {"rest": "details"})
        assert eventually(lambda: body("/productpage") == "details", timeout=10)
    finally:
        gw.stop()


def test_delegate_not_exported_to_the_root_is_ignored(mesh, tmp_path):
    mesh.apply(SERVICES % {"svc_port": mesh.svc_port, "gw_port": mesh.gw_port})
    mesh.apply(DETAILS % {"svc_port": mesh.svc_port})
    mesh.apply(ROOT)
    mesh.apply(PRODUCTPAGE_ROUTES % {"rest": "details"})
    mesh.apply(REVIEWS_ROUTES.replace("exportTo: [default]", "exportTo: [.]"))
    gw_dir = tmp_path / "gw"
    gw_dir.mkdir()
    gw = Proxy(gw_dir, xds_bootstrap(mesh.xds_port, GATEWAY_NODE))
    try:
        port = mesh.gw_port
        assert eventually(lambda: path(port, "/productpage")[2] == "details", timeout=10)
        assert path(port, "/reviews")[0] == 404  # team/reviews-routes is private to team
        mesh.apply(REVIEWS_ROUTES)  # exported to default now
        assert eventually(lambda: path(port, "/reviews")[2] == "v1", timeout=10)
    finally:
        gw.stop()
