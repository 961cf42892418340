"""The Bookinfo mesh end to end (issue 4's main scenario), as root: network namespaces per
workload, mast-agent with iptables capture and mast-proxy sidecars, mastd, the ingress gateway,
Istio's Bookinfo YAML applied with mastctl, and Istio's tasks checked with curl through `mastctl demo check`: round robin over
reviews v1/v2/v3, all-v1, jason → v2, ratings abort and 7 s delay, reviews 50/50 v3 (binomial
bound over 200 requests), proxy-status SYNCED, `mastctl proxy-config cluster
productpage-v1.default` from the root namespace (outbound|9080||reviews... listed), traffic without mastd and resync after its restart,
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


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces and iptables")
def test_bookinfo_demo_down_after_a_crash():
    """`mastctl demo up` killed with SIGKILL (no clean-up of its own) leaves its namespaces,
    processes and the root-namespace relays publishing 127.0.0.1:8080; `mastctl demo down`
    must remove all of them from what the run recorded on disk."""
    import signal
    import time
    env = dict(os.environ)
    if "MAST_BIN" in env:
        env["MAST_BIN"] = os.path.abspath(env["MAST_BIN"])
    mastctl = os.path.join(env.get("MAST_BIN", os.path.join(ROOT, "build", "bin")), "mastctl")
    up = subprocess.Popen([mastctl, "demo", "up"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.time() + 300
        out = []
        for line in up.stdout:
            out.append(line)
            if "Ctrl-C stops the mesh" in line:
                break
            assert time.time() < deadline, "".join(out)
        assert up.poll() is None, "".join(out)
        up.kill()  # SIGKILL: no atexit, no clean-up
        up.wait(timeout=10)
        relays = subprocess.run(["pgrep", "-f", "socat TCP-LISTEN:8080"], capture_output=True,
                                text=True).stdout.split()
        assert relays, "the crash should have left the 8080 relay running"
        assert "mast-" in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                         text=True).stdout
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGKILL)
        down = subprocess.run([mastctl, "demo", "down"], capture_output=True, text=True,
                              timeout=120, env=env)
    assert down.returncode == 0, down.stdout + down.stderr
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "mast-" not in left, left
    for port in ("8080", "15010", "15014"):
        still = subprocess.run(["pgrep", "-f", "socat TCP-LISTEN:%s" % port],
                               capture_output=True, text=True).stdout
        assert not still, "relay for %s survived demo down: %s" % (port, still)
    assert subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", "3",
                           "http://127.0.0.1:8080/"]).returncode != 0
