"""End-to-end tests for the Bookinfo services: real processes of the C++ binary
(`$MAST_BIN/bookinfo <service>`, MAST_BIN defaulting to <repo>/build/bin) on 127.0.0.1, ports
chosen by the OS (`--port 0`, the bound port is read from the service's "listening on" line),
upstream URLs passed through the environment, plain http.client as the client.

Where a test needs to see exactly what a service sent upstream, or an upstream that hangs, it
uses a small in-test HTTP server (`Recorder`) in place of the peer service (a test seam).

Run: MAST_BIN=$PWD/build/bin /usr/bin/python3 -m pytest -q -p no:cacheprovider apps/bookinfo
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.abspath(os.environ.get("MAST_BIN", os.path.join(HERE, "..", "..", "build", "bin")))
BOOKINFO = os.path.join(BIN, "bookinfo")
LISTEN_RE = re.compile(r"^(\w+) listening on ([^ ]+):(\d+)")

# Variables the services read; cleared so the caller's environment cannot leak in.
SERVICE_ENV = [f"{s}_{k}" for s in ("DETAILS", "REVIEWS", "RATINGS")
               for k in ("URL", "HOSTNAME", "SERVICE_PORT")] + [
    "SERVICES_DOMAIN", "SERVICE_VERSION", "ENABLE_RATINGS", "STAR_COLOR", "POD_NAME",
    "HOSTNAME", "CLUSTER_NAME", "FLOOD_FACTOR", "BIND_ADDRESS", "ENABLE_EXTERNAL_BOOK_SERVICE",
    "EXTERNAL_BOOK_SERVICE_URL", "DO_NOT_ENCRYPT"]

STAR = 'class="glyphicon glyphicon-star"'
EMPTY_STAR = 'class="glyphicon glyphicon-star-empty"'
RATINGS_DOWN = "Ratings service is currently unavailable"
REVIEWS_DOWN = "Sorry, product reviews are currently unavailable for this book."
DETAILS_DOWN = "Sorry, product details are currently unavailable for this book."


# ---------------------------------------------------------------------------------------------
# Process handling


class Service:
    """One running Bookinfo service; stdout is drained into `lines` by a reader thread."""

    def __init__(self, script: str, version: str | None = None, env: dict | None = None,
                 bind: str = "127.0.0.1"):
        self.name = script
        full_env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV}
        full_env.update(env or {})
        cmd = [BOOKINFO, script, "--port", "0", "--bind", bind]
        if version:
            cmd += ["--version", version]
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: list[str] = []
        self.port: int | None = None
        self._ready = threading.Event()
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(10) or self.port is None:
            self.stop()
            raise RuntimeError(f"{script} did not start: {self.lines}")

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
            m = LISTEN_RE.match(line)
            if m and self.port is None:
                self.port = int(m.group(3))
                self._ready.set()
        self._ready.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_line(self, predicate, timeout: float = 5.0) -> str:
        """Returns the first stdout line satisfying `predicate`, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if predicate(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: no matching log line in {self.lines}")
                self._cond.wait(left)

    def wait_request_lines(self, n: int, timeout: float = 5.0) -> list[str]:
        """Waits until at least `n` request log lines were read; returns them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.request_lines()) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self.request_lines()

    def request_lines(self) -> list[str]:
        with self._cond:
            return [ln for ln in self.lines if '"GET ' in ln or '"POST ' in ln]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2)
        return self.proc.returncode


@pytest.fixture
def spawn():
    """Factory for services that are stopped when the test ends."""
    started: list[Service] = []

    def start(script, version=None, **env):
        svc = Service(script, version, env)
        started.append(svc)
        return svc

    yield start
    for svc in reversed(started):
        svc.stop()


class Stack:
    def __init__(self):
        self.all: list[Service] = []
        try:
            self.ratings = self._start("ratings")
            self.details = self._start("details")
            self.reviews = {}
            self.productpage = {}
            for v in ("v1", "v2", "v3"):
                self.reviews[v] = self._start("reviews", v, RATINGS_URL=self.ratings.url,
                                              POD_NAME=f"reviews-{v}-test")
                self.productpage[v] = self._start(
                    "productpage", None, DETAILS_URL=self.details.url,
                    REVIEWS_URL=self.reviews[v].url, RATINGS_URL=self.ratings.url)
        except BaseException:
            self.stop()
            raise

    def _start(self, script, version=None, **env):
        svc = Service(script, version, env)
        self.all.append(svc)
        return svc

    def stop(self):
        for svc in reversed(self.all):
            svc.stop()


@pytest.fixture(scope="module")
def stack():
    s = Stack()
    yield s
    s.stop()


# ---------------------------------------------------------------------------------------------
# Client and test seam


def request(svc_or_port, path: str, method: str = "GET", headers: dict | None = None,
            body: bytes | None = None, timeout: float = 30.0):
    port = svc_or_port if isinstance(svc_or_port, int) else svc_or_port.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data.decode("utf-8")
    finally:
        conn.close()


def get_json(svc, path, **kw):
    status, _, body = request(svc, path, **kw)
    return status, json.loads(body)


class Recorder:
    """In-test HTTP server standing in for a peer service: records each request's path and
    headers and answers with `reply` (status, JSON body), or hangs until released."""

    def __init__(self, reply=(200, {}), hang: bool = False):
        self.requests: list[tuple[str, dict]] = []
        self.reply = reply
        self.hang = hang
        self.release = threading.Event()
        recorder = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802
                recorder.requests.append((self.path, {k.lower(): v for k, v in
                                                      self.headers.items()}))
                if recorder.hang:
                    recorder.release.wait(30)
                    return
                status, obj = recorder.reply
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    made: list[Recorder] = []

    def make(**kw):
        r = Recorder(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def review_sections(page: str) -> list[str]:
    return re.findall(r'<section class="review">(.*?)</section>', page, re.S)


# ---------------------------------------------------------------------------------------------
# productpage HTML per reviews version


def test_productpage_reviews_v1_has_no_stars(stack):
    rid = str(uuid.uuid4())
    status, _, page = request(stack.productpage["v1"], "/productpage",
                              headers={"x-request-id": rid})
    assert status == 200
    assert "The Comedy of Errors" in page
    assert "Book Details" in page and "1234567890" in page and "PublisherA" in page
    sections = review_sections(page)
    assert len(sections) == 2
    assert "An extremely entertaining play by Shakespeare" in sections[0]
    assert "Reviewer2" in sections[1]
    assert "glyphicon" not in page and "<font" not in page
    assert RATINGS_DOWN not in page
    assert "reviews-v1-test" in page
    # v1 never calls ratings: reviews logged this request, ratings did not.
    assert stack.reviews["v1"].wait_line(lambda ln: rid in ln)
    # Any ratings call made for this page finished before the page did, so it is logged before
    # a marker request sent now.
    marker = str(uuid.uuid4())
    request(stack.ratings, "/health", headers={"x-request-id": marker})
    stack.ratings.wait_line(lambda ln: marker in ln)
    assert not any(rid in ln for ln in stack.ratings.request_lines())


@pytest.mark.parametrize("version,color", [("v2", "black"), ("v3", "red")])
def test_productpage_stars_per_version(stack, version, color):
    status, _, page = request(stack.productpage[version], "/productpage")
    assert status == 200
    sections = review_sections(page)
    assert len(sections) == 2
    # Reviewer1 gets 5 stars, Reviewer2 gets 4 (+1 empty), in the version's colour only.
    assert sections[0].count(STAR) == 5 and sections[0].count(EMPTY_STAR) == 0
    assert sections[1].count(STAR) == 4 and sections[1].count(EMPTY_STAR) == 1
    assert page.count(f'<font color="{color}"') == 2
    other = "red" if color == "black" else "black"
    assert f'<font color="{other}"' not in page
    assert RATINGS_DOWN not in page
    assert f"reviews-{version}-test" in page


def test_index_and_health(stack):
    status, _, page = request(stack.productpage["v1"], "/")
    assert status == 200
    assert "simple bookstore application" in page
    assert 'href="/productpage?u=normal"' in page and 'href="/productpage?u=test"' in page
    assert "http://details:9080" in page and "http://reviews:9080" in page
    assert request(stack.productpage["v1"], "/health")[2] == "Product page is healthy"
    assert get_json(stack.details, "/health") == (200, {"status": "Details is healthy"})
    assert get_json(stack.reviews["v2"], "/health") == (200, {"status": "Reviews is healthy"})
    assert get_json(stack.ratings, "/health") == (200, {"status": "Ratings is healthy"})
    assert request(stack.productpage["v1"], "/nope")[0] == 404


# ---------------------------------------------------------------------------------------------
# JSON services and the productpage API

EXPECTED_DETAILS = {
    "id": 0, "author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200,
    "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890",
    "ISBN-13": "123-1234567890",
}


def test_details_json(stack):
    assert get_json(stack.details, "/details/0") == (200, EXPECTED_DETAILS)
    status, body = get_json(stack.details, "/details/42")
    assert status == 200 and body["id"] == 42 and body["author"] == "William Shakespeare"
    assert get_json(stack.details, "/details/abc") == (
        400, {"error": "please provide numeric product id"})
    _, headers, _ = request(stack.details, "/details/0")
    assert headers["content-type"] == "application/json"


def test_ratings_json_and_post(stack):
    assert get_json(stack.ratings, "/ratings/0") == (
        200, {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}})
    assert get_json(stack.ratings, "/ratings/x")[0] == 400
    new = {"Reviewer1": 1, "Reviewer2": 2}
    status, body = get_json(stack.ratings, "/ratings/7", method="POST",
                            body=json.dumps(new).encode(),
                            headers={"Content-Type": "application/json"})
    assert (status, body) == (200, {"id": 7, "ratings": new})
    assert get_json(stack.ratings, "/ratings/7") == (200, {"id": 7, "ratings": new})
    assert get_json(stack.ratings, "/ratings/7", method="POST", body=b"not json")[0] == 400


def test_reviews_json_shape(stack):
    status, body = get_json(stack.reviews["v1"], "/reviews/0")
    assert status == 200
    assert body["id"] == "0" and body["podname"] == "reviews-v1-test"
    assert body["clustername"] == "null"
    assert [r["reviewer"] for r in body["reviews"]] == ["Reviewer1", "Reviewer2"]
    assert all("rating" not in r for r in body["reviews"])
    _, body = get_json(stack.reviews["v3"], "/reviews/0")
    assert [r["rating"] for r in body["reviews"]] == [
        {"stars": 5, "color": "red"}, {"stars": 4, "color": "red"}]


def test_productpage_api(stack):
    pp = stack.productpage["v2"]
    status, products = get_json(pp, "/api/v1/products")
    assert status == 200 and products[0]["id"] == 0
    assert products[0]["title"] == "The Comedy of Errors"
    assert get_json(pp, "/api/v1/products/0") == (200, EXPECTED_DETAILS)
    status, reviews = get_json(pp, "/api/v1/products/0/reviews")
    assert status == 200 and reviews["reviews"][1]["rating"] == {"stars": 4, "color": "black"}
    assert get_json(pp, "/api/v1/products/0/ratings") == (
        200, {"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}})
    # details' 400 is passed through with productpage's error body.
    assert get_json(pp, "/api/v1/products/abc") == (400, {"error": DETAILS_DOWN})
    status, _, metrics = request(pp, "/metrics")
    assert status == 200
    assert 'request_result_total{destination_app="details",response_code="400"}' in metrics


# ---------------------------------------------------------------------------------------------
# Login / end-user / header propagation


def test_login_sets_cookie_and_end_user_reaches_reviews(stack):
    pp, reviews = stack.productpage["v2"], stack.reviews["v2"]
    status, headers, _ = request(pp, "/login", method="POST", body=b"username=jason&passwd=x",
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "Referer": "http://bookinfo.example/productpage"})
    assert status == 302
    assert headers["location"] == "http://bookinfo.example/productpage"
    cookie = headers["set-cookie"].split(";")[0]
    assert cookie == "user=jason"

    rid_in, rid_out = str(uuid.uuid4()), str(uuid.uuid4())
    _, _, page = request(pp, "/productpage", headers={"Cookie": cookie, "x-request-id": rid_in})
    assert "jason" in page and "Sign out" in page
    line = reviews.wait_line(lambda ln: f"x-request-id={rid_in}" in ln)
    assert "end-user=jason" in line
    # reviews forwards end-user to ratings as well.
    assert "end-user=jason" in stack.ratings.wait_line(lambda ln: rid_in in ln)

    _, _, page = request(pp, "/productpage", headers={"x-request-id": rid_out})
    assert "Sign in" in page and "Sign out" not in page
    assert "end-user=-" in reviews.wait_line(lambda ln: f"x-request-id={rid_out}" in ln)

    status, headers, _ = request(pp, "/logout", headers={"Cookie": cookie})
    assert status == 302 and headers["location"] == "/productpage"
    assert headers["set-cookie"].startswith("user=;") and "Max-Age=0" in headers["set-cookie"]


def test_x_request_id_reaches_ratings_end_to_end(stack):
    rid = str(uuid.uuid4())
    request(stack.productpage["v3"], "/productpage", headers={"x-request-id": rid})
    for svc in (stack.details, stack.reviews["v3"], stack.ratings):
        assert svc.wait_line(lambda ln: f"x-request-id={rid}" in ln)


TRACE_HEADERS = {
    "x-request-id": "rid-1",
    "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
    "x-b3-spanid": "e457b5a2e4d86bd1",
    "x-b3-parentspanid": "05e3ac9a4f6e3b90",
    "x-b3-sampled": "1",
    "x-b3-flags": "1",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tracestate": "congo=t61rcWkgMzE",
    "x-ot-span-context": "otctx",
    "user-agent": "bookinfo-test/1",
}


def test_trace_headers_propagated_to_ratings(spawn, recorder):
    ratings = recorder(reply=(200, {"id": 0, "ratings": {"Reviewer1": 3, "Reviewer2": 1}}))
    reviews = spawn("reviews", "v2", RATINGS_URL=ratings.url)
    details = spawn("details")
    pp = spawn("productpage", DETAILS_URL=details.url, REVIEWS_URL=reviews.url)
    sent = dict(TRACE_HEADERS, **{"end-user": "mallory", "x-unrelated": "no"})
    _, _, page = request(pp, "/productpage", headers={**sent, "Cookie": "user=jason"})
    assert page.count(STAR) == 4  # 3 + 1 stars from the recorder's ratings
    assert len(ratings.requests) == 1
    path, got = ratings.requests[0]
    assert path == "/ratings/0"
    for k, v in TRACE_HEADERS.items():
        assert got.get(k) == v, k
    # productpage takes end-user from the login, never from the incoming header.
    assert got["end-user"] == "jason"
    assert got["cookie"] == "user=jason"
    assert "x-unrelated" not in got
    assert got["host"] == "ratings:9080"


def test_upstream_host_header_and_env_names(spawn, recorder):
    details = recorder(reply=(200, EXPECTED_DETAILS))
    reviews = recorder(reply=(200, {"id": "0", "podname": "p", "clustername": "c1",
                                    "reviews": []}))
    pp = spawn("productpage", DETAILS_URL=details.url, REVIEWS_URL=reviews.url,
               DETAILS_HOSTNAME="book-details", SERVICES_DOMAIN="bookinfo.svc",
               DETAILS_SERVICE_PORT="9081")
    _, _, page = request(pp, "/productpage")
    assert details.requests[0][0] == "/details/0"
    assert details.requests[0][1]["host"] == "book-details.bookinfo.svc:9081"
    assert reviews.requests[0][1]["host"] == "reviews.bookinfo.svc:9080"
    assert "Book Details" in page and "Book Reviews" in page


# ---------------------------------------------------------------------------------------------
# Failures


def test_ratings_down_shows_ratings_unavailable(spawn):
    ratings = spawn("ratings")
    reviews = spawn("reviews", "v2", RATINGS_URL=ratings.url)
    details = spawn("details")
    pp = spawn("productpage", DETAILS_URL=details.url, REVIEWS_URL=reviews.url)
    page = request(pp, "/productpage")[2]
    assert page.count(STAR) == 9 and RATINGS_DOWN not in page

    assert ratings.stop() == 0
    status, _, page = request(pp, "/productpage")
    assert status == 200
    assert page.count(RATINGS_DOWN) == 2
    assert "glyphicon" not in page
    assert "Book Reviews" in page and REVIEWS_DOWN not in page
    _, body = get_json(reviews, "/reviews/0")
    assert [r["rating"] for r in body["reviews"]] == [{"error": RATINGS_DOWN}] * 2


def test_ratings_error_status_shows_ratings_unavailable(spawn, recorder):
    ratings = recorder(reply=(500, {"error": "fault filter abort"}))
    reviews = spawn("reviews", "v3", RATINGS_URL=ratings.url)
    _, body = get_json(reviews, "/reviews/0")
    assert [r["rating"] for r in body["reviews"]] == [{"error": RATINGS_DOWN}] * 2


def test_reviews_down_shows_reviews_unavailable(spawn):
    reviews = spawn("reviews", "v1")
    details = spawn("details")
    pp = spawn("productpage", DETAILS_URL=details.url, REVIEWS_URL=reviews.url)
    assert REVIEWS_DOWN not in request(pp, "/productpage")[2]

    assert reviews.stop() == 0
    status, _, page = request(pp, "/productpage")
    assert status == 200
    assert REVIEWS_DOWN in page and "Error fetching product reviews!" in page
    assert "Book Details" in page and "PublisherA" in page  # details unaffected
    assert get_json(pp, "/api/v1/products/0/reviews") == (500, {"error": REVIEWS_DOWN})


def test_reviews_error_is_retried_once(spawn, recorder):
    reviews = recorder(reply=(503, {"error": "unavailable"}))
    details = spawn("details")
    pp = spawn("productpage", DETAILS_URL=details.url, REVIEWS_URL=reviews.url)
    assert get_json(pp, "/api/v1/products/0/reviews") == (503, {"error": REVIEWS_DOWN})
    assert len(reviews.requests) == 2


def test_details_down_shows_error(spawn):
    details = spawn("details")
    reviews = spawn("reviews", "v1")
    pp = spawn("productpage", DETAILS_URL=details.url, REVIEWS_URL=reviews.url)
    assert "Book Details" in request(pp, "/productpage")[2]
    details.stop()
    page = request(pp, "/productpage")[2]
    assert "Error fetching product details!" in page and DETAILS_DOWN in page
    assert "Book Details" not in page and "Book Reviews" in page


def test_reviews_timeout_3s_twice(spawn, recorder):
    """A hanging reviews costs productpage 2 x 3 s (why Istio's 7 s ratings delay fault shows
    the reviews error rather than slow stars)."""
    reviews = recorder(hang=True)
    details = spawn("details")
    pp = spawn("productpage", DETAILS_URL=details.url, REVIEWS_URL=reviews.url)
    start = time.monotonic()
    page = request(pp, "/productpage")[2]
    elapsed = time.monotonic() - start
    assert REVIEWS_DOWN in page
    assert len(reviews.requests) == 2
    assert 5.8 <= elapsed < 10.0, elapsed


def test_reviews_v3_ratings_timeout_2_5s(spawn, recorder):
    ratings = recorder(hang=True)
    reviews = spawn("reviews", "v3", RATINGS_URL=ratings.url)
    start = time.monotonic()
    _, body = get_json(reviews, "/reviews/0")
    elapsed = time.monotonic() - start
    assert [r["rating"] for r in body["reviews"]] == [{"error": RATINGS_DOWN}] * 2
    assert 2.4 <= elapsed < 5.0, elapsed


# ---------------------------------------------------------------------------------------------
# Process behaviour


def test_sigterm_exits_cleanly_and_logs_one_line_per_request(spawn):
    for script in ("details", "ratings", "reviews", "productpage"):
        svc = spawn(script)
        request(svc, "/health")
        request(svc, "/health")
        svc.wait_request_lines(2)
        assert svc.stop() == 0
        assert len(svc.request_lines()) == 2, svc.lines
        assert all('"GET /health HTTP/1.1" 200' in ln for ln in svc.request_lines())
        assert svc.lines[-1] == f"{script} stopped"


def test_bind_ipv6_any_is_dual_stack():
    svc = Service("details", bind="::")
    try:
        assert svc.lines[0].startswith(f"details listening on :::{svc.port} ")
        assert get_json(svc, "/details/1")[1]["id"] == 1  # IPv4 client on 127.0.0.1
        if socket.has_ipv6:
            conn = http.client.HTTPConnection("::1", svc.port, timeout=10)
            try:
                conn.request("GET", "/health")
                assert conn.getresponse().status == 200
            except OSError as e:  # a host without IPv6 loopback still proved the IPv4 half
                pytest.skip(f"no IPv6 loopback: {e}")
            finally:
                conn.close()
        lines = svc.wait_request_lines(1)
        assert " ::ffff:127.0.0.1 " in lines[0]  # IPv4 peers show in mapped form
    finally:
        assert svc.stop() == 0


def test_cli_rejects_unknown_service_and_version():
    for args in (["catalog"], ["reviews", "--version", "v9"], ["details", "--port", "70000"]):
        r = subprocess.run([BOOKINFO, *args], capture_output=True, text=True, timeout=10)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "listening" not in r.stdout


GOOGLE_BOOKS_REPLY = {"kind": "books#volumes", "totalItems": 1, "items": [{"volumeInfo": {
    "title": "The Comedy of Errors", "authors": ["William Shakespeare"], "publisher": "Dover",
    "publishedDate": "2002", "printType": "BOOK", "pageCount": 96, "language": "en",
    "industryIdentifiers": [{"type": "ISBN_13", "identifier": "9780486424613"},
                            {"type": "ISBN_10", "identifier": "0486424618"}]}}]}


def test_details_external_book_service(spawn, recorder):
    """Istio's egress tasks: details asks the Google Books API (here a recorder named by
    EXTERNAL_BOOK_SERVICE_URL) and forwards the propagated headers."""
    books = recorder(reply=(200, GOOGLE_BOOKS_REPLY))
    details = spawn("details", ENABLE_EXTERNAL_BOOK_SERVICE="true",
                    EXTERNAL_BOOK_SERVICE_URL=books.url + "/api/")
    status, body = get_json(details, "/details/3",
                            headers={"x-request-id": "ext-1", "x-unrelated": "no"})
    assert (status, body) == (200, {
        "id": 3, "author": "William Shakespeare", "year": "2002", "type": "paperback",
        "pages": 96, "publisher": "Dover", "language": "English", "ISBN-10": "0486424618",
        "ISBN-13": "9780486424613"})
    path, got = books.requests[0]
    assert path == "/api/books/v1/volumes?q=isbn:0486424618"
    assert got["x-request-id"] == "ext-1" and "x-unrelated" not in got
    assert got["host"] == books.url[len("http://"):]
    # An answer without the book is details' 400 with the reason.
    books.reply = (200, {"kind": "books#volumes", "totalItems": 0})
    status, body = get_json(details, "/details/3")
    assert status == 400 and body["error"]
