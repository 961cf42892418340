"""Shared plumbing for the four Bookinfo services (stdlib only).

Each service is a small ThreadingHTTPServer. This module provides:
  * command-line parsing common to all services (--port / positional port, --bind, --version),
  * a request handler base with routing, one access-log line per request on stdout and
    HTTP/1.1 keep-alive (every response carries Content-Length),
  * upstream resolution (Istio's *_HOSTNAME / SERVICES_DOMAIN / *_SERVICE_PORT, plus a
    *_URL override that changes only where we connect, never the Host header),
  * header propagation (the list Istio's Bookinfo keeps in sync across its services),
  * an HTTP GET helper with Istio's per-operation timeout semantics,
  * clean SIGTERM/SIGINT shutdown.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterable

# Headers every Bookinfo service copies from its incoming request onto its outgoing calls.
# Same list (and order) as Istio's sample; productpage excludes `end-user` because it derives
# that header from the login cookie instead of forwarding it.
PROPAGATED_HEADERS = (
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "b3",
    "sw8",
    "end-user",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
)


def forward_headers(incoming, include_end_user: bool = True) -> dict[str, str]:
    """Picks the propagated headers out of `incoming` (an email.message.Message)."""
    out: dict[str, str] = {}
    for name in PROPAGATED_HEADERS:
        if name == "end-user" and not include_end_user:
            continue
        value = incoming.get(name)
        if value is not None:
            out[name] = value
    return out


# ---------------------------------------------------------------------------------------------
# Upstreams


@dataclass(frozen=True)
class Upstream:
    """Where a service calls a peer.

    `authority` is the logical name (`details:9080`), always sent as the Host header so a mesh
    proxy in between can route by it. `connect_host`/`connect_port` are where the TCP connection
    goes: the logical name itself, unless `<NAME>_URL` points somewhere else (for example a local
    sidecar listener `http://127.0.0.1:15001`, or the real server in tests).
    """

    name: str
    authority: str
    connect_host: str
    connect_port: int
    path_prefix: str

    @property
    def base_url(self) -> str:
        return f"http://{self.authority}"


def upstream_from_env(name: str, env=None) -> Upstream:
    """Resolves the upstream for service `name` (details, reviews or ratings).

    Istio's variables: <NAME>_HOSTNAME (default `name`), SERVICES_DOMAIN (appended as
    `.domain`), <NAME>_SERVICE_PORT (default 9080). Mast's addition: <NAME>_URL, a full
    `http://host:port[/prefix]` to connect to instead of the logical name.
    """
    env = os.environ if env is None else env
    upper = name.upper()
    host = env.get(f"{upper}_HOSTNAME") or name
    domain = env.get("SERVICES_DOMAIN")
    if domain:
        host = f"{host}.{domain}"
    port = env.get(f"{upper}_SERVICE_PORT") or "9080"
    authority = f"{host}:{port}"
    override = env.get(f"{upper}_URL")
    if override:
        parsed = urllib.parse.urlsplit(override)
        if parsed.scheme not in ("http", "") or not parsed.hostname:
            raise ValueError(f"{upper}_URL must look like http://host:port, got {override!r}")
        return Upstream(name, authority, parsed.hostname, parsed.port or 80,
                        parsed.path.rstrip("/"))
    return Upstream(name, authority, host, int(port), "")


@dataclass
class UpstreamResponse:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def http_get(upstream: Upstream, path: str, headers: dict[str, str],
             timeout: float) -> UpstreamResponse:
    """One GET on a fresh connection (Istio's sample deliberately does not pool, so that load
    spreads over backend versions). `timeout` bounds connect and each socket read, like the
    Python requests / JAX-RS client timeouts the original services use. Raises OSError /
    http.client.HTTPException on connection failures and timeouts."""
    conn = http.client.HTTPConnection(upstream.connect_host, upstream.connect_port,
                                      timeout=timeout)
    try:
        send = {k: v for k, v in headers.items() if k.lower() != "host"}
        send["Host"] = upstream.authority
        send.setdefault("Accept", "application/json")
        conn.request("GET", upstream.path_prefix + path, headers=send)
        resp = conn.getresponse()
        body = resp.read()
        return UpstreamResponse(resp.status, body, {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# Server side


Route = Callable[["Handler", list[str]], None]


class Handler(BaseHTTPRequestHandler):
    """Routing request handler. Subclasses set `routes`: a list of (method, path pattern,
    callable). A pattern is a '/'-separated path whose `*` segments are captured and passed to
    the callable as a list of strings; a trailing `**` captures the remaining segments joined."""

    protocol_version = "HTTP/1.1"
    # Headers and body are written separately; without TCP_NODELAY a keep-alive client can sit
    # out a delayed-ACK (~40 ms) per response.
    disable_nagle_algorithm = True
    server_version = "bookinfo"
    sys_version = ""
    service_name = "bookinfo"
    routes: list[tuple[str, str, Route]] = []

    # -- responses --

    def send_body(self, status: int, body: bytes, content_type: str,
                  extra_headers: Iterable[tuple[str, str]] = ()) -> None:
        self._headers_sent = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, obj) -> None:
        self.send_body(status, json.dumps(obj).encode("utf-8"), "application/json")

    def send_text(self, status: int, text: str, content_type: str = "text/plain; charset=utf-8",
                  extra_headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_body(status, text.encode("utf-8"), content_type, extra_headers)

    def redirect(self, location: str, extra_headers: Iterable[tuple[str, str]] = ()) -> None:
        self.send_body(302, b"", "text/plain", [("Location", location), *extra_headers])

    # -- request helpers --

    @property
    def path_only(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    @property
    def query(self) -> dict[str, str]:
        q = urllib.parse.urlsplit(self.path).query
        return {k: v[0] for k, v in urllib.parse.parse_qs(q, keep_blank_values=True).items()}

    def read_body(self) -> bytes:
        """The request body (read once, eagerly, before dispatch)."""
        return getattr(self, "_body", b"")

    def _read_body_from_socket(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length:
            return self.rfile.read(int(length))
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers end with an empty line.
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return b""

    # -- dispatch --

    def _dispatch(self) -> None:
        self._started = time.monotonic()
        self._headers_sent = False  # one handler instance serves every request of a connection
        try:
            # Always consume the body so a keep-alive connection stays in sync, whatever the
            # route does with it.
            self._body = self._read_body_from_socket()
        except (ValueError, OSError):
            self.close_connection = True
            self.send_json(400, {"error": "malformed request body"})
            return
        segments = [s for s in self.path_only.split("/") if s != ""]
        path_matched = False
        for method, pattern, fn in self.routes:
            captured = _match(pattern, segments)
            if captured is None:
                continue
            path_matched = True
            if method == self.command or (method == "GET" and self.command == "HEAD"):
                try:
                    fn(self, captured)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                except Exception as e:  # noqa: BLE001 (a bug must not kill the connection silently)
                    _log(f"{self.service_name}: error handling {self.requestline!r}: {e!r}")
                    self.close_connection = True
                    if not getattr(self, "_headers_sent", False):
                        self.send_json(500, {"error": "internal error"})
                return
        if path_matched:
            self.send_json(405, {"error": "method not allowed"})
        else:
            self.send_json(404, {"error": "not found"})

    def do_GET(self):  # noqa: N802 (http.server naming)
        self._dispatch()

    do_HEAD = do_GET
    do_POST = do_GET
    do_PUT = do_GET
    do_DELETE = do_GET

    # -- logging: exactly one line per request, on stdout --

    def log_request(self, code="-", size="-"):
        elapsed_ms = (time.monotonic() - getattr(self, "_started", time.monotonic())) * 1000
        code = getattr(code, "value", code)
        rid = self.headers.get("x-request-id", "-") if self.headers else "-"
        user = self.headers.get("end-user", "-") if self.headers else "-"
        line = (f'{time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())} {self.service_name} '
                f'{self.client_address[0]} "{self.requestline}" {code} {elapsed_ms:.1f}ms '
                f'x-request-id={rid} end-user={user}')
        _log(line)

    def log_error(self, format, *args):  # noqa: A002 (signature fixed by http.server)
        pass  # http.server also calls log_request for these; keep one line per request.

    def log_message(self, format, *args):  # noqa: A002
        _log(f"{self.service_name} " + (format % args))


_log_lock = threading.Lock()


def _log(line: str) -> None:
    with _log_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log(line: str) -> None:
    _log(line)


def _match(pattern: str, segments: list[str]) -> list[str] | None:
    parts = [p for p in pattern.split("/") if p != ""]
    captured: list[str] = []
    for i, part in enumerate(parts):
        if part == "**":
            captured.append("/".join(segments[i:]))
            return captured
        if i >= len(segments):
            return None
        if part == "*":
            captured.append(urllib.parse.unquote(segments[i]))
        elif part != segments[i]:
            return None
    return captured if len(parts) == len(segments) else None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # Client resets and the like: one line instead of socketserver's traceback on stderr.
        _log(f"connection error from {client_address[0]}: {sys.exc_info()[1]!r}")


def parse_args(service: str, argv=None, versions=("v1",), default_version="v1"):
    p = argparse.ArgumentParser(prog=f"{service}.py", description=f"Bookinfo {service} service")
    p.add_argument("port_positional", nargs="?", type=int, metavar="PORT",
                   help="listen port (Istio's sample takes it positionally)")
    p.add_argument("--port", type=int, default=None, help="listen port (default 9080)")
    p.add_argument("--bind", default=os.environ.get("BIND_ADDRESS", "0.0.0.0"),
                   help="listen address (default 0.0.0.0, env BIND_ADDRESS); '::' for IPv6")
    p.add_argument("--version", default=os.environ.get("SERVICE_VERSION", default_version),
                   choices=versions, help=f"service version (env SERVICE_VERSION); {versions}")
    args = p.parse_args(argv)
    port = args.port if args.port is not None else args.port_positional
    args.port = 9080 if port is None else port
    return args


def serve(service: str, handler_cls: type[Handler], bind: str, port: int,
          banner: str = "") -> None:
    """Serves until SIGTERM/SIGINT, then closes the listener and returns (exit code 0)."""
    handler_cls.service_name = service
    server_cls = Server
    if ":" in bind:
        server_cls = type("Server6", (Server,), {"address_family": socket.AF_INET6})
    server = server_cls((bind, port), handler_cls)
    actual_port = server.server_address[1]

    def stop(signum, _frame):
        # serve_forever runs on this (main) thread, so shut it down from a helper thread.
        _log(f"{service} received signal {signum}, shutting down")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    _log(f"{service} listening on {bind}:{actual_port}" + (f" ({banner})" if banner else ""))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        _log(f"{service} stopped")
