"""The Bookinfo mesh end to end (issue 4's main scenario), as root: network namespaces per
workload, mast-agent with iptables capture and mast-proxy sidecars, mastd, the ingress gateway,
Istio's Bookinfo YAML applied with mastctl, and Istio's tasks checked with curl through `mastctl demo check`: round robin over
reviews v1/v2/v3, all-v1, jason → v2, ratings abort and 7 s delay, reviews 50/50 v3 (binomial
bound over 200 requests), proxy-status SYNCED, traffic without mastd and resync after its restart,
a host-bound VirtualService (other host → 404). The script removes every
namespace it created, even when a check fails."""
import os
import subprocess

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces and iptables")
def test_bookinfo_mesh_check():
    env = dict(os.environ)
    if "MAST_BIN" in env:
        env["MAST_BIN"] = os.path.abspath(env["MAST_BIN"])
    bin_dir = env.get("MAST_BIN", os.path.join(ROOT, "build", "bin"))
    r = subprocess.run([os.path.join(bin_dir, "mastctl"), "demo", "check"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "all checks passed" in r.stdout
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "mast-" not in left, left
