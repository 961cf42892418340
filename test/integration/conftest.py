"""Integration test harness: real mast-proxy binaries, real clients, loopback only, OS-chosen ports.

Upstreams are small Python servers started per test; the proxy is started from a bootstrap written
into a temp dir with port 0 everywhere; the bound ports are read back from the admin endpoint
(--admin-address-path and /listeners?format=json), as an Envoy user would.
"""
import http.server
import json
import os
import signal
import socket
import socketserver
import subprocess
import threading
import time
import urllib.request

import pytest

BIN = os.environ.get("MAST_BIN", os.path.join(os.path.dirname(__file__), "../../build/bin"))
PROXY = os.path.join(BIN, "mast-proxy")


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers with JSON describing the request. Path controls behaviour:
    /status/NNN -> that status; /delay/MS -> sleep first; /bytes/N -> N-byte body;
    /close -> close without a response."""

    protocol_version = "HTTP/1.1"
    server_version = "upstream"

    def log_message(self, *a):
        pass

    def _handle(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked()
        self.server.requests.append({"method": self.command, "path": self.path,
                                     "headers": {k.lower(): v for k, v in self.headers.items()},
                                     "body": body, "peer_port": self.client_address[1]})
        path = self.path.split("?")[0]
        status = 200
        payload = None
        if path.startswith("/delay/"):
            time.sleep(int(path.split("/")[2]) / 1000.0)
        if path.startswith("/status/"):
            status = int(path.split("/")[2])
        if path.startswith("/bytes/"):
            payload = b"x" * int(path.split("/")[2])
        if path == "/close":
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if payload is None:
            payload = json.dumps({"method": self.command, "path": self.path,
                                  "headers": {k.lower(): v for k, v in self.headers.items()},
                                  "body_len": len(body), "name": self.server.name}).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.send_header("x-upstream-name", self.server.name)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _read_chunked(self):
        out = b""
        while True:
            line = self.rfile.readline().strip()
            n = int(line.split(b";")[0], 16)
            if n == 0:
                self.rfile.readline()
                return out
            out += self.rfile.read(n)
            self.rfile.readline()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = _handle


class Upstream(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name="upstream", host="127.0.0.1"):
        super().__init__((host, 0), EchoHandler)
        self.name = name
        self.requests = []
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.shutdown()
        self.server_close()


@pytest.fixture
def upstream():
    servers = []

    def make(name="upstream"):
        s = Upstream(name)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


class Proxy:
    def __init__(self, tmp_path, config, extra_args=(), concurrency=1):
        self.tmp = tmp_path
        self.config_path = tmp_path / "bootstrap.yaml"
        self.config_path.write_text(config)
        self.admin_path = tmp_path / "admin_address"
        self.log = open(tmp_path / "proxy.log", "w+")
        self.proc = subprocess.Popen(
            [PROXY, "-c", str(self.config_path), "--concurrency", str(concurrency),
             "--admin-address-path", str(self.admin_path), "--drain-time-s", "1", *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mast-proxy exited %s:\n%s" % (self.proc.returncode, self.output()))
            if self.admin_path.exists() and self.admin_path.read_text().strip():
                try:
                    if self.admin("/ready")[0] == 200:
                        break
                except OSError:
                    pass
            time.sleep(0.05)
        else:
            raise RuntimeError("mast-proxy not ready:\n" + self.output())
        listeners = json.loads(self.admin("/listeners?format=json")[1])
        self.ports = {l["name"]: l["local_address"]["socket_address"]["port_value"]
                      for l in listeners["listener_statuses"]}

    def output(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    @property
    def admin_address(self):
        return self.admin_path.read_text().strip()

    def admin(self, path, method="GET"):
        req = urllib.request.Request("http://%s%s" % (self.admin_address, path), method=method)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stats(self):
        out = {}
        for line in self.admin("/stats")[1].splitlines():
            if ": " in line:
                k, v = line.split(": ", 1)
                out[k] = v
        return out

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def proxy(tmp_path):
    started = []

    def make(config, **kw):
        p = Proxy(tmp_path, config, **kw)
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


def curl(*args, timeout=10):
    """Runs curl; returns (status_code:int, headers:dict, body:str)."""
    cmd = ["curl", "-s", "-S", "-D", "-", "--max-time", str(timeout), *args]
    r = subprocess.run(cmd, capture_output=True, timeout=timeout + 5)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0 and not out:
        return 0, {}, r.stderr.decode()
    head, _, body = out.partition("\r\n\r\n")
    # Skip interim 100 Continue blocks.
    while head.startswith("HTTP/") and " 100 " in head.split("\r\n")[0]:
        head, _, body = body.partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith("HTTP") else 0
    headers = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            headers.setdefault(k.strip().lower(), v.strip())
    return status, headers, body


def raw(port, data, read_timeout=3.0):
    """Sends raw bytes, returns everything read until close or timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=read_timeout)
    s.sendall(data)
    chunks = []
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    except socket.timeout:
        pass
    s.close()
    return b"".join(chunks)


def basic_config(cluster_port, route_extra="", cluster_extra="", hcm_extra="", vhost_extra="",
                 routes=None, clusters_extra="", filters=""):
    routes = routes or """
              - match: { prefix: "/" }
                route: { cluster: backend%s }""" % route_extra
    return """
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
  - name: ingress
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
%s
          route_config:
            name: local_route
            virtual_hosts:
            - name: local
              domains: ["*"]
%s
              routes:%s
          http_filters:%s
          - name: envoy.filters.http.router
            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }
  clusters:
  - name: backend
    connect_timeout: 1s
    type: STATIC
%s
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %d } } }
%s
""" % (hcm_extra, vhost_extra, routes, filters, cluster_extra, cluster_port, clusters_extra)


def xds_bootstrap(ads_port, node):
    """A mast-proxy bootstrap that takes everything from an ADS server on 127.0.0.1:ads_port.
    `node` is the YAML flow mapping of the bootstrap's node (id, cluster, metadata)."""
    return """
node: %s
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services: [{ envoy_grpc: { cluster_name: xds-grpc } }]
  cds_config: { ads: {}, resource_api_version: V3 }
  lds_config: { ads: {}, resource_api_version: V3 }
static_resources:
  clusters:
  - name: xds-grpc
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: { http2_protocol_options: {} }
    load_assignment:
      cluster_name: xds-grpc
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: %d } } } }] }]
""" % (node, ads_port)


def free_port():
    """A port the OS just handed out on 127.0.0.1 (for processes that need a fixed number)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# === Helpers for the test_proxy_*.py feature tests ===


def raw_exchange(port, data, timeout=3.0, host="127.0.0.1", chunks=None):
    """Sends raw bytes (or the list `chunks`, one send each), reads until the peer closes or
    `timeout` passes. Returns (bytes read, whether the peer closed the connection)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    for c in (chunks if chunks is not None else [data]):
        s.sendall(c)
    out = []
    closed = False
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            s.settimeout(max(0.01, deadline - time.time()))
            b = s.recv(65536)
            if not b:
                closed = True
                break
            out.append(b)
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return b"".join(out), closed


def access_log_hcm(path, fmt="%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%"
                              " %UPSTREAM_HOST% %UPSTREAM_CLUSTER%\\n"):
    """An hcm_extra snippet for basic_config: a file access log with `fmt` at `path`."""
    return """          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: %s
              log_format: { text_format_source: { inline_string: "%s" } }
""" % (path, fmt)


def wait_for_lines(path, count, timeout=4.0):
    """The access log's lines once it has at least `count` (the proxy flushes about once a
    second); fails after `timeout`."""
    deadline = time.time() + timeout
    lines = []
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                lines = [l for l in f.read().splitlines() if l]
            if len(lines) >= count:
                return lines
        time.sleep(0.05)
    raise AssertionError("access log %s has %d lines, wanted %d: %r" % (path, len(lines), count,
                                                                        lines))


def wait_until(predicate, timeout=5.0, interval=0.05, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError("timed out waiting for " + what)


def make_certs(d):
    """Test PKI generated with openssl into directory `d` (never committed): a CA, a server
    certificate for localhost/server.test/127.0.0.1, a client certificate signed by the CA, and a
    second CA with its own client certificate (untrusted by the first). Returns name → path."""
    d = str(d)
    p = lambda n: os.path.join(d, n)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)

    def ca(name):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", p(name + ".key"), "-out", p(name + ".crt"), "-days", "2",
            "-subj", "/CN=" + name)

    def leaf(name, ca_name, cn, san):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", p(name + ".key"), "-out", p(name + ".csr"), "-subj", "/CN=" + cn)
        with open(p(name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        run("x509", "-req", "-in", p(name + ".csr"), "-CA", p(ca_name + ".crt"),
            "-CAkey", p(ca_name + ".key"), "-CAcreateserial", "-out", p(name + ".crt"),
            "-days", "2", "-extfile", p(name + ".ext"))

    ca("ca")
    ca("other-ca")
    leaf("server", "ca", "server.test", "DNS:localhost,DNS:server.test,IP:127.0.0.1")
    leaf("client", "ca", "client.test", "DNS:client.test,URI:spiffe://test/client")
    leaf("other-client", "other-ca", "intruder", "DNS:intruder.test")
    return {n: p(n) for n in os.listdir(d)}


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def proxies(tmp_path):
    """Like `proxy`, for tests that run several proxies: each gets its own directory."""
    started = []

    def make(config, **kw):
        d = tmp_path / ("proxy%d" % len(started))
        d.mkdir()
        p = Proxy(d, config, **kw)
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()
