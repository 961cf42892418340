"""mast-xds-load (bench/xds_load) as a correctness test at small scale: 20 simulated sidecars
against a real mastd. Every proxy must reach synced (CDS, EDS, LDS, RDS answered), every resource
must parse into its Envoy message (nested Anys included), a VirtualService change applied
through mastd's API must reach every proxy's RDS, and an endpoint-only change must reach every
subscribed proxy's EDS with no CDS/LDS/RDS pushed."""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import BIN

MASTD = os.path.join(BIN, "mastd")
LOAD = os.path.join(BIN, "mast-xds-load")
SHAPE = ["--services", "20", "--endpoints-per-service", "3", "--namespaces", "2",
         "--routed-every", "2"]


@pytest.mark.skipif(not os.path.exists(LOAD), reason="mast-xds-load not built (MAST_BENCH=ON)")
def test_twenty_simulated_sidecars_converge(tmp_path):
    mesh = tmp_path / "mesh"
    subprocess.run([LOAD, "generate", "--dir", str(mesh)] + SHAPE, check=True, timeout=10)
    log = open(tmp_path / "mastd.log", "w+")
    mastd = subprocess.Popen([MASTD, "--config-dir", str(mesh), "--xds-port", "0",
                              "--http-port", "0", "-l", "info"], stdout=log,
                             stderr=subprocess.STDOUT)
    try:
        ports = None
        deadline = time.time() + 10
        while time.time() < deadline and ports is None:
            log.seek(0)
            m = re.search(r"ADS on ([0-9.]+:\d+), HTTP API on ([0-9.]+:\d+)", log.read())
            if m:
                ports = m.groups()
            else:
                assert mastd.poll() is None, "mastd exited"
                time.sleep(0.05)
        assert ports, "mastd did not report its ports"
        out = tmp_path / "result.json"
        run = subprocess.run(
            [LOAD, "run", "--xds", ports[0], "--http", ports[1], "--mastd-pid", str(mastd.pid),
             "--proxies", "20", "--rounds", "1", "--settle-ms", "100", "--quiet-ms", "300",
             "--phase-timeout", "5", "--deadline", "15", "--json", str(out)] + SHAPE,
            capture_output=True, text=True, timeout=20)
        assert run.returncode == 0, run.stdout + run.stderr
        r = json.loads(out.read_text())
        assert r["synced"] == 20
        assert r["invalid_resources"] == 0 and r["wrong_type_resources"] == 0
        assert r["vs_change"]["n"] == 20
        vs = r["vs_rounds"][0]
        assert vs["pushes_CDS"] == 0 and vs["pushes_LDS"] == 0 and vs["pushes_EDS"] == 0
        ep = r["endpoint_rounds"][0]
        assert ep["needed"] == 20 and ep["n"] == 20
        assert r["endpoint_change_eds_only"]
        assert ep["pushes_EDS"] >= 20
    finally:
        mastd.terminate()
        mastd.wait(timeout=10)
        log.close()
