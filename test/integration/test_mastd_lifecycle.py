"""mastd's view of its peers, end to end with a Python ADS client (grpcio) that decides what to
ACK, NACK or leave unanswered:

- `mastctl proxy-status` and /debug/syncz show each state a type can be in: NOT SENT (subscribed,
  nothing to send), STALE (sent, not answered), SYNCED (ACKed) and ERROR with the NACK message,
  and how ERROR clears (a new version is STALE, its ACK is SYNCED);
- a WorkloadGroup auto-registration disappears once its proxy has been gone for the grace period
  (`--auto-registration-grace`), not before, and a reconnect within it keeps the entry;
- mastd without --config-dir uses ./mast-config, created when missing, and says so in --help."""
import json
import os
import subprocess
import time
import urllib.request

from ads_client import CLUSTER, ENDPOINT, LISTENER, ROUTE, AdsClient
from conftest import free_port
from test_mastd import MASTCTL, MASTD, SERVICES, Mesh, eventually, mesh  # noqa: F401
from test_mastd_status import RATINGS

NODE = "sidecar~127.0.0.40~states-1.default~default.svc.cluster.local"
META = {"NAMESPACE": "default", "LABELS": {"app": "states"}}


def syncz(mesh, node_id):
    with urllib.request.urlopen("http://127.0.0.1:%d/debug/syncz" % mesh.http_port,
                                timeout=5) as r:
        rows = [p for p in json.loads(r.read())["proxies"] if p["proxy"] == node_id]
    assert len(rows) <= 1, rows
    return rows[0]["types"] if rows else None


def status_row(mesh, node_id):
    """(CDS, LDS, EDS, RDS) states of `node_id` in `mastctl proxy-status`, and the ERROR lines."""
    r = mesh.ctl("proxy-status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = lines[0]
    cols = [header.index(c) for c in ("CDS", "LDS", "EDS", "RDS", "VERSION")]
    rows = [l for l in lines if l.startswith(node_id + " ")]
    assert len(rows) == 1, r.stdout
    row = rows[0]
    states = tuple(row[cols[i]:cols[i + 1]].strip() for i in range(4))
    return states, [l for l in lines if l.startswith("ERROR ")]


def hostnames(mesh):
    with urllib.request.urlopen("http://127.0.0.1:%d/debug/registryz" % mesh.http_port,
                                timeout=5) as r:
        return [s["hostname"] for s in json.loads(r.read())["services"]]


def test_proxy_status_not_sent_stale_synced_error(mesh):
    mesh.apply(SERVICES % {"svc_port": mesh.svc_port, "gw_port": mesh.gw_port})
    eds_name = "outbound|%d||reviews.default.svc.cluster.local" % mesh.svc_port
    # Connect once the model has the services: a push of the debounced change after our first
    # CDS would make the NACK below answer an older nonce (ignored, as SotW wants).
    assert eventually(lambda: "reviews.default.svc.cluster.local" in hostnames(mesh),
                      timeout=10)
    c = AdsClient(mesh.xds_port, NODE, META)
    try:
        c.request(CLUSTER)
        cds = c.response(CLUSTER)
        assert len(cds.resources) > 0
        c.nack(cds, "test: cluster rejected (lb_policy)")
        c.request(LISTENER)
        lds = c.response(LISTENER)  # left unanswered: STALE
        c.request(ENDPOINT, [eds_name])
        eds = c.response(ENDPOINT)
        c.ack(eds, [eds_name])
        c.request(ROUTE, ["no-such-route"])  # nothing by that name: NOT SENT

        def states():
            return status_row(mesh, NODE)[0]

        want = ("ERROR", "STALE", "SYNCED", "NOT SENT")
        assert eventually(lambda: states() == want, timeout=10), states()
        _, errors = status_row(mesh, NODE)
        assert errors == ["ERROR %s CDS rejected version %s: test: cluster rejected (lb_policy)"
                          % (NODE, cds.version_info)], errors
        t = syncz(mesh, NODE)
        assert t["CDS"]["state"] == "ERROR" and t["CDS"]["nacked_version"] == cds.version_info
        assert t["CDS"]["error"] == "test: cluster rejected (lb_policy)"
        assert t["CDS"]["acked_version"] == ""
        assert t["LDS"]["state"] == "STALE" and t["LDS"]["sent_version"] == lds.version_info
        assert t["LDS"]["acked_version"] == ""
        assert t["EDS"]["state"] == "SYNCED" and t["EDS"]["acked_version"] == eds.version_info
        assert t["RDS"]["state"] == "NOT SENT" and t["RDS"]["pushes"] == 0

        # The NACKed version is not sent again blindly; a config change sends a new one
        # (STALE until answered), whose ACK clears the error.
        mesh.apply("""
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: extra, namespace: default }
spec:
  hosts: [extra.example.com]
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: DNS
""")
        cds2 = c.response(CLUSTER)
        assert cds2.version_info != cds.version_info
        assert eventually(lambda: states()[0] == "STALE", timeout=10), states()
        c.ack(cds2)
        # The new port-80 service changed LDS too: that newer response is the one to answer
        # (an ACK of the older nonce would be stale and ignored).
        lds2 = c.response(LISTENER)
        assert lds2.version_info != lds.version_info
        c.ack(lds2)
        assert eventually(lambda: states()[:3] == ("SYNCED", "SYNCED", "SYNCED"), timeout=10), \
            states()
        assert status_row(mesh, NODE)[1] == []
        t = syncz(mesh, NODE)
        assert t["CDS"]["error"] == "" and t["CDS"]["acked_version"] == cds2.version_info
    finally:
        c.close()


VM_NODE = "sidecar~127.0.0.41~ratings-vm-1.default~default.svc.cluster.local"
VM_META = {"NAMESPACE": "default", "AUTO_REGISTER_GROUP": "ratings-vm",
           "SERVICE_ACCOUNT": "ratings", "LABELS": {"app": "ratings"}}


def ratings_endpoints(mesh):
    with urllib.request.urlopen("http://127.0.0.1:%d/debug/registryz" % mesh.http_port,
                                timeout=5) as r:
        j = json.loads(r.read())
    for s in j["services"]:
        if s["hostname"] == "ratings.default.svc.cluster.local":
            return [e["address"] for e in s["endpoints"] if e["autoRegistered"]]
    return []


def test_auto_registration_expires_after_the_grace_period(tmp_path):
    grace = 1.5
    mesh = Mesh(tmp_path, ["--auto-registration-grace", str(grace)])
    try:
        mesh.apply(RATINGS)
        c = AdsClient(mesh.xds_port, VM_NODE, VM_META)
        c.request(CLUSTER)
        c.ack(c.response(CLUSTER))
        assert eventually(lambda: ratings_endpoints(mesh) == ["127.0.0.41"], timeout=10), \
            mesh.output()[-2000:]

        # A reconnect within the grace period keeps the entry.
        c.close()
        time.sleep(grace / 3)
        c = AdsClient(mesh.xds_port, VM_NODE, VM_META)
        c.request(CLUSTER)
        c.ack(c.response(CLUSTER))
        time.sleep(grace)
        assert ratings_endpoints(mesh) == ["127.0.0.41"]

        # Gone for good: still listed within the grace period, removed after it.
        c.close()
        gone_at = time.monotonic()
        time.sleep(grace / 3)
        assert ratings_endpoints(mesh) == ["127.0.0.41"]
        assert eventually(lambda: ratings_endpoints(mesh) == [], timeout=grace + 5), \
            mesh.output()[-2000:]
        elapsed = time.monotonic() - gone_at
        assert elapsed >= grace - 0.1, elapsed
    finally:
        mesh.stop()


def test_default_config_dir_is_created_and_used(tmp_path):
    help_text = subprocess.run([MASTD, "--help"], capture_output=True, text=True).stdout
    assert "--config-dir" in help_text and "mast-config" in help_text, help_text
    assert "--auto-registration-grace" in help_text, help_text
    xds_port, http_port = free_port(), free_port()
    work = tmp_path / "work"
    work.mkdir()
    log = open(tmp_path / "mastd.log", "w+")
    proc = subprocess.Popen([MASTD, "--xds-port", str(xds_port), "--http-port", str(http_port)],
                            cwd=work, stdout=log, stderr=subprocess.STDOUT)
    env = dict(os.environ, MASTD_ADDR="127.0.0.1:%d" % http_port)

    def ctl(*args, stdin=None):
        return subprocess.run([MASTCTL, *args], capture_output=True, text=True, input=stdin,
                              env=env, timeout=20)

    try:
        assert eventually(lambda: ctl("proxy-status").returncode == 0, timeout=10)
        assert (work / "mast-config").is_dir()
        r = ctl("apply", "-f", "-", stdin="""
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: default }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews } }] }]
""")
        assert r.returncode == 0, r.stderr
        written = list((work / "mast-config").iterdir())
        assert len(written) == 1 and "reviews" in written[0].name, written
        assert ctl("get", "vs", "reviews").returncode == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
    # A restart in the same directory finds what was applied (the directory is watched state).
    proc = subprocess.Popen([MASTD, "--xds-port", str(xds_port), "--http-port", str(http_port)],
                            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert eventually(lambda: ctl("get", "vs", "reviews").returncode == 0, timeout=10)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
