"""Seeing the truth, end to end: real mastd, real mast-proxy gateways, mastctl.

- per-resource convergence in `mastctl get` (-o yaml / -o json / table): accepted by N of the M
  proxies that need the resource, rejected with the proxy's NACK message, write → last ACK time;
  the NACK comes from a real mast-proxy (a VirtualService header value with a %VARIABLE% that
  mastd's validation lets through, as Istio's does, and mast-proxy's RDS loader refuses);
- /metrics parsed as Prometheus text (prometheus_client's parser when installed, and a strict
  line check always);
- /debug/adsz and /debug/registryz;
- apply/delete of a resource that lives in a hand-written multi-document file;
- analyze IST0104."""
import datetime
import json
import re
import time
import urllib.request

import os

import pytest

try:
    import yaml
except ImportError:  # PyYAML is optional: status_yaml() then reads the block's scalars itself
    yaml = None
if os.environ.get("MAST_TEST_NO_YAML"):  # exercise the fallback
    yaml = None

from conftest import Proxy, xds_bootstrap
from test_mastd import GATEWAY_NODE, SERVICES, VS_BY_HEADER, Mesh, eventually, get

# A second router that also joins the WorkloadGroup below (auto-registration).
OTHER_ROUTER_NODE = ("{ id: router~127.0.0.1~egress-1.default~default.svc.cluster.local, "
                     "cluster: istio-egressgateway, "
                     "metadata: { LABELS: { istio: egressgateway }, NAMESPACE: default, "
                     "AUTO_REGISTER_GROUP: ratings-vm, SERVICE_ACCOUNT: ratings } }")

RATINGS = """
apiVersion: networking.istio.io/v1
kind: WorkloadGroup
metadata: { name: ratings-vm, namespace: default }
spec:
  metadata: { labels: { app: ratings } }
  template: { serviceAccount: ratings, locality: us-east/zone-a }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings, namespace: default }
spec:
  hosts: [ratings.default.svc.cluster.local]
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: { labels: { app: ratings } }
"""

MESH_VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-mesh, namespace: default }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews, subset: v1 } }] }]
"""


@pytest.fixture
def mesh(tmp_path):
    m = Mesh(tmp_path)
    yield m
    m.stop()


def http_get(mesh, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (mesh.http_port, path), timeout=5) as r:
        return r.status, r.headers.get("content-type", ""), r.read().decode()


def status_yaml(mesh, kind, name):
    r = mesh.ctl("get", kind, name, "-o", "yaml")
    assert r.returncode == 0, r.stderr
    if yaml is not None:
        docs = [d for d in yaml.safe_load_all(r.stdout) if d]
        assert len(docs) == 1, r.stdout
        return docs[0]
    # Without PyYAML: the document from -o json, its status scalars read from the YAML text,
    # the lists the YAML text has taken from the JSON form.
    assert r.stdout.count("\nstatus:\n") == 1, r.stdout
    doc = json.loads(mesh.ctl("get", kind, name, "-o", "json").stdout)
    st = {}
    for line in r.stdout.split("\nstatus:\n", 1)[1].splitlines():
        m = re.match(r"^  (\w+): (.+)$", line)
        if m:
            v = m.group(2).strip('"')
            st[m.group(1)] = json.loads(v) if re.match(r"^-?[0-9.]+$", v) else v
    for k, v in doc["status"].items():
        if isinstance(v, list) and ("\n  %s:\n" % k) in r.stdout:
            st[k] = v
    doc["status"] = st
    return doc


def as_time(v):
    return v if isinstance(v, datetime.datetime) else \
        datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))


def status_json(mesh, kind, name):
    r = mesh.ctl("get", kind, name, "-o", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["status"]


def start_proxy(tmp_path, name, mesh, node):
    d = tmp_path / name
    d.mkdir()
    return Proxy(d, xds_bootstrap(mesh.xds_port, node))


def test_per_resource_convergence_accept_reject_fix(mesh, tmp_path):
    mesh.apply(SERVICES % {"svc_port": mesh.svc_port, "gw_port": mesh.gw_port})
    mesh.apply(VS_BY_HEADER)
    mesh.apply(MESH_VS)
    mesh.apply(RATINGS)
    gw = start_proxy(tmp_path, "gw", mesh, GATEWAY_NODE)
    other = start_proxy(tmp_path, "other", mesh, OTHER_ROUTER_NODE)
    try:
        port = mesh.gw_port
        assert get(port)[2] == "v1"

        # Accepted by the one proxy that needs it (the gateway its Gateway selects), with the
        # time from mastd's observation of the write to that proxy's ACK.
        def accepted():
            doc = status_yaml(mesh, "vs", "reviews")
            st = doc.get("status", {})
            return doc if st.get("accepted") == 1 and "convergenceSeconds" in st else None

        doc = eventually(accepted, timeout=10)
        assert doc, mesh.ctl("get", "vs", "reviews", "-o", "yaml").stdout
        st = doc["status"]
        assert doc["kind"] == "VirtualService" and doc["spec"]["gateways"] == ["gw"]
        assert (st["proxies"], st["accepted"], st["rejected"], st["pending"]) == (1, 1, 0, 0)
        assert st["summary"] == "accepted by 1/1 proxies"
        assert 0 <= st["convergenceSeconds"] < 10
        # YAML readers see RFC 3339 timestamps; the JSON form has the text.
        assert as_time(st["lastAckAt"]) >= as_time(st["observedAt"])
        sj = status_json(mesh, "vs", "reviews")
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", sj["observedAt"])
        assert sj["convergenceSeconds"] == st["convergenceSeconds"]

        # Both routers have clusters for reviews: its DestinationRule is needed by 2 of 2; the
        # mesh-bound VirtualService by no router; the Gateway only by the one it selects.
        dr = eventually(lambda: (lambda s: s if s["accepted"] == 2 else None)(
            status_json(mesh, "dr", "reviews")), timeout=10)
        assert dr and dr["proxies"] == 2, status_json(mesh, "dr", "reviews")
        mesh_vs = status_json(mesh, "vs", "reviews-mesh")
        assert mesh_vs["proxies"] == 0 and mesh_vs["summary"] == "needed by no connected proxy"
        assert status_json(mesh, "gateway", "gw")["proxies"] == 1

        # A change the proxy rejects: mastd accepts the value (Istio's API allows it), the real
        # mast-proxy NACKs the route configuration and keeps routing with the previous one.
        bad = VS_BY_HEADER.replace(
            "    route: [{ destination: { host: reviews, subset: v2 } }]",
            "    route: [{ destination: { host: reviews, subset: v2 } }]\n"
            "    headers: { request: { set: { x-node: \"%HOSTNAME%\" } } }")
        assert bad != VS_BY_HEADER
        mesh.apply(bad)

        def rejected():
            s = status_yaml(mesh, "vs", "reviews")["status"]
            return s if s["rejected"] == 1 else None

        st = eventually(rejected, timeout=10)
        assert st, mesh.ctl("get", "vs", "reviews", "-o", "yaml").stdout
        assert (st["proxies"], st["accepted"], st["rejected"]) == (1, 0, 1)
        assert "convergenceSeconds" not in st
        rej = st["rejections"][0]
        assert rej["proxy"].startswith("router~127.0.0.1~ingressgateway-1")
        assert rej["type"] == "RDS"
        assert "unsupported variable" in rej["message"] and "%HOSTNAME%" in rej["message"]
        assert get(port)[2] == "v1" and get(port, "end-user: jason")[2] == "v2"
        # The DestinationRule is untouched by that change: still accepted everywhere.
        assert status_json(mesh, "dr", "reviews")["accepted"] == 2

        # The table form of a list shows the same.
        table = mesh.ctl("get", "vs").stdout
        header = table.splitlines()[0].split()
        assert header[:5] == ["NAME", "KIND", "ACCEPTED", "REJECTED", "CONVERGED"], table
        row = [l.split() for l in table.splitlines() if l.startswith("reviews ")][0]
        assert row[2:5] == ["0/1", "1", "-"], table
        mesh_row = [l.split() for l in table.splitlines() if l.startswith("reviews-mesh ")][0]
        assert mesh_row[2:4] == ["-", "-"], table

        # The fix: accepted again, and the routing change is live.
        mesh.apply(VS_BY_HEADER.replace("subset: v1", "subset: v2"))
        st = eventually(lambda: (lambda s: s if s["accepted"] == 1 else None)(
            status_yaml(mesh, "vs", "reviews")["status"]), timeout=10)
        assert st and st["rejected"] == 0 and "rejections" not in st
        assert st["convergenceSeconds"] < 10
        assert get(port)[2] == "v2"
        row = [l.split() for l in mesh.ctl("get", "vs").stdout.splitlines()
               if l.startswith("reviews ")][0]
        assert row[2:4] == ["1/1", "0"]
        assert re.match(r"\d+(ms|\.\ds)$", row[4]), row

        check_registryz(mesh)
        # The auto-registered workload's group is needed by proxies with a ratings cluster.
        wg = eventually(lambda: (lambda s: s if s["accepted"] == 2 else None)(
            status_json(mesh, "wg", "ratings-vm")), timeout=10)
        assert wg and wg["proxies"] == 2, status_json(mesh, "wg", "ratings-vm")

        # A proxy that goes away no longer counts.
        other.stop()
        assert eventually(lambda: status_json(mesh, "dr", "reviews")["proxies"] == 1, timeout=10)

        check_metrics(mesh)
        check_adsz(mesh)
    finally:
        gw.stop()
        other.stop()


def check_metrics(mesh):
    status, ctype, text = http_get(mesh, "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    # Strict line check of the text exposition format.
    sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
                        r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? '
                        r'(-?[0-9.e+-]+|\+Inf|-Inf|NaN)$')
    types = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in types, "duplicate family " + name
            types[name] = kind
            continue
        assert sample.match(line), "bad sample line: %r" % line
    values = {}
    for line in text.splitlines():
        if not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            values[k] = float(v)
    assert values["pilot_xds"] == 1
    assert values['pilot_xds_pushes{type="rds"}'] >= 2
    assert values['pilot_xds_pushes{type="cds"}'] >= 1
    assert values["pilot_total_xds_rejects"] >= 1
    assert values['pilot_xds_rejects{type="rds"}'] >= 1
    assert types["pilot_proxy_convergence_time"] == "histogram"
    assert values["pilot_proxy_convergence_time_count"] >= 1
    assert values['pilot_proxy_convergence_time_bucket{le="+Inf"}'] == \
        values["pilot_proxy_convergence_time_count"]
    assert values["pilot_xds_push_time_count"] >= 1
    assert values["pilot_virt_services"] == 2
    assert values["mast_config_resources"] == 9
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        return  # the strict line check above stands alone
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["pilot_proxy_convergence_time"].type == "histogram"
    assert families["pilot_xds"].type == "gauge"
    assert families["pilot_xds_pushes"].type == "counter"
    buckets = [s for s in families["pilot_proxy_convergence_time"].samples
               if s.name.endswith("_bucket")]
    counts = [s.value for s in buckets]
    assert counts == sorted(counts) and buckets[-1].labels["le"] == "+Inf"


def check_adsz(mesh):
    status, ctype, body = http_get(mesh, "/debug/adsz")
    assert status == 200 and ctype.startswith("application/json")
    j = json.loads(body)
    assert j["totalClients"] == 1
    c = j["clients"][0]
    assert c["node"]["id"].startswith("router~127.0.0.1~ingressgateway-1")
    assert c["node"]["type"] == "router"
    assert c["node"]["labels"] == {"istio": "ingressgateway"}
    assert c["node"]["metadata"]["NAMESPACE"] == "default"
    assert c["protocol"] in ("sotw", "delta") and c["peer"].startswith("ipv4:127.0.0.1:")
    assert c["streamId"] >= 1 and c["connectedAt"].endswith("Z")
    rds = c["types"]["RDS"]
    assert rds["subscribed"] == ["http.%d" % mesh.gw_port]
    assert rds["state"] == "SYNCED" and rds["ackedVersion"] == rds["sentVersion"]
    assert rds["ackedNonce"] == rds["sentNonce"] and rds["nacks"] >= 1
    assert c["types"]["CDS"]["wildcard"] is True
    eds = c["types"]["EDS"]["subscribed"]
    assert "outbound|%d|v1|reviews.default.svc.cluster.local" % mesh.svc_port in eds


def check_registryz(mesh):
    status, _, body = http_get(mesh, "/debug/registryz")
    assert status == 200
    j = json.loads(body)
    svc = [s for s in j["services"] if s["hostname"] == "reviews.default.svc.cluster.local"][0]
    assert svc["namespace"] == "default" and svc["source"] == "ServiceEntry default/reviews"
    assert svc["resolution"] == "STATIC" and svc["location"] == "MESH_INTERNAL"
    assert svc["ports"] == [{"name": "http", "port": mesh.svc_port, "protocol": "HTTP",
                             "targetPort": 0}]
    eps = {e["address"]: e for e in svc["endpoints"]}
    assert set(eps) == {"127.0.0.11", "127.0.0.12"}
    v1 = eps["127.0.0.11"]
    assert v1["labels"] == {"app": "reviews", "version": "v1"}
    assert v1["workload"] == "WorkloadEntry default/reviews-v1" and v1["autoRegistered"] is False
    assert v1["port"] == mesh.svc_port and v1["weight"] == 1
    ratings = [s for s in j["services"] if s["hostname"] == "ratings.default.svc.cluster.local"][0]
    vm = ratings["endpoints"][0]
    assert vm["autoRegistered"] is True and vm["address"] == "127.0.0.1"
    assert vm["workload"] == "WorkloadGroup instance default/ratings-vm-127.0.0.1"
    assert vm["labels"]["app"] == "ratings" and vm["serviceAccount"] == "ratings"
    assert vm["locality"] == "us-east/zone-a"


MULTI = """# hand-written: routing for reviews and a rule, one file
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }   # kept as written
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
  - route: [{ destination: { host: reviews, subset: v1 } }]
---
# the subsets
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: default }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
"""


def test_apply_and_delete_inside_a_multi_document_file(mesh, tmp_path):
    mesh.apply((SERVICES % {"svc_port": mesh.svc_port, "gw_port": mesh.gw_port})
               .split("---\napiVersion: networking.istio.io/v1\nkind: DestinationRule")[0])
    path = mesh.dir / "reviews-routing.yaml"
    path.write_text(MULTI)
    gw = start_proxy(tmp_path, "gw", mesh, GATEWAY_NODE)
    try:
        port = mesh.gw_port
        # The first route waits for the proxy to start and sync: allow for a loaded CI machine,
        # and say what was seen when it never comes.
        if not eventually(lambda: get(port)[2] == "v1", timeout=30):
            pytest.fail("gateway never routed to v1; last answer %r\nproxy-status:\n%s" %
                        (get(port), mesh.ctl("proxy-status").stdout))
        files = sorted(p.name for p in mesh.dir.iterdir())

        r = mesh.ctl("apply", "-f", "-", stdin=VS_BY_HEADER)
        assert r.returncode == 0, r.stderr
        assert "virtualservice.networking.istio.io/reviews configured" in r.stdout
        assert eventually(lambda: get(port, "end-user: jason")[2] == "v2", timeout=10)
        text = path.read_text()
        # Only the VirtualService's document changed; the rule's document and the comments
        # around it are byte for byte what was written; no new file appeared.
        assert text.endswith(MULTI[MULTI.index("---\n# the subsets"):])
        assert "end-user" in text and "kept as written" not in text
        assert sorted(p.name for p in mesh.dir.iterdir()) == files
        assert "end-user" in mesh.ctl("get", "vs", "reviews", "-o", "yaml").stdout

        # Applying it again changes nothing.
        r = mesh.ctl("apply", "-f", "-", stdin=VS_BY_HEADER)
        assert "reviews unchanged" in r.stdout and path.read_text() == text

        # delete: the document and its separator go, the rule stays.
        d = mesh.ctl("delete", "vs", "reviews")
        assert d.returncode == 0, d.stderr
        assert path.read_text() == MULTI[MULTI.index("# the subsets"):]
        assert eventually(lambda: get(port)[0] == 404, timeout=10)
        assert mesh.ctl("get", "dr", "reviews").returncode == 0
        assert mesh.ctl("get", "vs", "reviews").returncode == 1
    finally:
        gw.stop()


def test_analyze_gateway_port_not_on_workload(mesh):
    mesh.apply(SERVICES % {"svc_port": mesh.svc_port, "gw_port": mesh.gw_port})
    assert mesh.ctl("analyze").returncode == 0  # the gateway workload is unknown: not checked
    workload = """
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: istio-ingressgateway, namespace: default }
spec:
  hosts: [istio-ingressgateway.default.svc.cluster.local]
  ports: [{ number: 80, name: http, targetPort: 8080 }]
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: { labels: { istio: ingressgateway } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ingressgateway-1, namespace: default }
spec: { address: 127.0.0.1, labels: { istio: ingressgateway } }
"""
    r = mesh.ctl("analyze", "-f", "-", stdin=workload)
    assert r.returncode == 79, r.stdout + r.stderr
    assert ("Error [IST0104] (Gateway default/gw) The gateway refers to a port that is not "
            "exposed on the workload (pod selector istio=ingressgateway; port %d)" % mesh.gw_port
            ) in r.stdout
    fixed = workload.replace("targetPort: 8080", "targetPort: %d" % mesh.gw_port)
    r = mesh.ctl("analyze", "-f", "-", stdin=fixed)
    assert r.returncode == 0 and "IST0104" not in r.stdout, r.stdout
