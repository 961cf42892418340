#!/usr/bin/python3
"""Bookinfo productpage service (Istio's productpage v1).

UI:  GET /, /index.html     service overview with "Normal user" / "Test user" links
     GET /productpage       the book page: details table + reviews (stars per reviews version)
     POST /login            form field `username` (or `user`) -> cookie `user`, redirect back
     GET /logout            clears the cookie, redirect back
API: GET /api/v1/products, /api/v1/products/<id>, /api/v1/products/<id>/reviews,
     GET /api/v1/products/<id>/ratings
     GET /health ("Product page is healthy"), GET /metrics (request_result counters)

Upstream calls follow Istio's sample: details once with a 3 s timeout, reviews up to twice with a
3 s timeout each (the sample keeps this retry on purpose for the fault-injection task), ratings
once with 3 s. When a user is logged in, `end-user: <user>` goes to reviews (and details); the
tracing/context headers of the incoming request are copied onto every outgoing call.
"""

from __future__ import annotations

import http.client
import http.cookies
import os
import sys
import threading
import urllib.parse
from html import escape

import bookinfo_common as common

UPSTREAM_TIMEOUT = 3.0
REVIEWS_ATTEMPTS = 2

PRODUCTS = [
    {
        "id": 0,
        "title": "The Comedy of Errors",
        "descriptionHtml": (
            '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: '
            "The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his "
            "shortest and one of his most farcical comedies, with a major part of the humour "
            "coming from slapstick and mistaken identity, in addition to puns and word play."),
    }
]

DETAILS_ERROR = "Sorry, product details are currently unavailable for this book."
REVIEWS_ERROR = "Sorry, product reviews are currently unavailable for this book."
RATINGS_ERROR = "Sorry, product ratings are currently unavailable for this book."


class Metrics:
    """request_result{destination_app, response_code} counters, Prometheus text format."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}

    def inc(self, app: str, code: int) -> None:
        with self._lock:
            self._counts[(app, code)] = self._counts.get((app, code), 0) + 1

    def render(self) -> str:
        lines = ["# HELP request_result_total Results of requests",
                 "# TYPE request_result_total counter"]
        with self._lock:
            for (app, code), n in sorted(self._counts.items()):
                lines.append(f'request_result_total{{destination_app="{app}",'
                             f'response_code="{code}"}} {float(n)}')
        return "\n".join(lines) + "\n"


class ProductPageHandler(common.Handler):
    details_upstream: common.Upstream
    reviews_upstream: common.Upstream
    ratings_upstream: common.Upstream
    flood_factor = 0
    metrics = Metrics()

    # -- session --

    def current_user(self) -> str:
        raw = self.headers.get("Cookie")
        if not raw:
            return ""
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(raw)
        except http.cookies.CookieError:
            return ""
        morsel = jar.get("user")
        return urllib.parse.unquote(morsel.value) if morsel else ""

    def outgoing_headers(self) -> dict[str, str]:
        # productpage does not forward an incoming end-user header: it derives it from the login.
        headers = common.forward_headers(self.headers, include_end_user=False)
        user = self.current_user()
        if user:
            headers["end-user"] = user
        return headers

    def back_location(self) -> str:
        return self.headers.get("Referer") or "/productpage"

    # -- upstream calls: (status, json body) --

    def _call(self, app: str, upstream: common.Upstream, path: str, headers: dict[str, str],
              error: str, attempts: int = 1):
        resp = None
        for _ in range(attempts):
            try:
                resp = common.http_get(upstream, path, headers, UPSTREAM_TIMEOUT)
            except (OSError, http.client.HTTPException) as e:
                common.log(f"productpage: {app} call to {upstream.base_url}{path} failed: {e!r}")
                resp = None
            if resp is not None and resp.status == 200:
                try:
                    body = resp.json()
                except ValueError:
                    body = None
                if body is not None:
                    self.metrics.inc(app, 200)
                    return 200, body
        status = resp.status if resp is not None and resp.status else 500
        if status == 200:  # a 200 with an unparsable body
            status = 500
        self.metrics.inc(app, status)
        return status, {"error": error}

    def product_details(self, pid, headers):
        return self._call("details", self.details_upstream, f"/details/{pid}", headers,
                          DETAILS_ERROR)

    def product_reviews(self, pid, headers):
        return self._call("reviews", self.reviews_upstream, f"/reviews/{pid}", headers,
                          REVIEWS_ERROR, attempts=REVIEWS_ATTEMPTS)

    def product_ratings(self, pid, headers):
        return self._call("ratings", self.ratings_upstream, f"/ratings/{pid}", headers,
                          RATINGS_ERROR)

    # -- routes --

    def index(self, _captured):
        self.send_text(200, render_index(self.details_upstream, self.reviews_upstream,
                                         self.ratings_upstream),
                       "text/html; charset=utf-8")

    def health(self, _captured):
        self.send_text(200, "Product page is healthy", "text/html; charset=utf-8")

    def login(self, _captured):
        body = self.read_body().decode("utf-8", "replace")
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body, keep_blank_values=True).items()}
        form = {**self.query, **form}
        user = form.get("username") or form.get("user") or ""
        if user:
            cookie = f"user={urllib.parse.quote(user, safe='')}; Path=/; HttpOnly"
        else:
            cookie = "user=; Path=/; Max-Age=0"
        self.redirect(self.back_location(), [("Set-Cookie", cookie)])

    def logout(self, _captured):
        self.redirect(self.back_location(), [("Set-Cookie", "user=; Path=/; Max-Age=0")])

    def productpage(self, _captured):
        pid = 0
        headers = self.outgoing_headers()
        details_status, details = self.product_details(pid, headers)
        for _ in range(self.flood_factor):  # Istio's FLOOD_FACTOR, for rate-limiting demos
            self.product_reviews(pid, headers)
        reviews_status, reviews = self.product_reviews(pid, headers)
        page = render_productpage(PRODUCTS[pid], details_status, details, reviews_status,
                                  reviews, self.current_user())
        self.send_text(200, page, "text/html; charset=utf-8")

    def api_products(self, _captured):
        self.send_json(200, PRODUCTS)

    def api_product(self, captured):
        status, body = self.product_details(urllib.parse.quote(captured[0], safe=""),
                                            self.outgoing_headers())
        self.send_json(status, body)

    def api_reviews(self, captured):
        status, body = self.product_reviews(urllib.parse.quote(captured[0], safe=""),
                                            self.outgoing_headers())
        self.send_json(status, body)

    def api_ratings(self, captured):
        status, body = self.product_ratings(urllib.parse.quote(captured[0], safe=""),
                                            self.outgoing_headers())
        self.send_json(status, body)

    def metrics_route(self, _captured):
        self.send_text(200, self.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")

    routes = [
        ("GET", "/", index),
        ("GET", "/index.html", index),
        ("GET", "/health", health),
        ("POST", "/login", login),
        ("GET", "/logout", logout),
        ("GET", "/productpage", productpage),
        ("GET", "/api/v1/products", api_products),
        ("GET", "/api/v1/products/*", api_product),
        ("GET", "/api/v1/products/*/reviews", api_reviews),
        ("GET", "/api/v1/products/*/ratings", api_ratings),
        ("GET", "/metrics", metrics_route),
    ]


# ---------------------------------------------------------------------------------------------
# HTML

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #222; }
nav { background: #1f2937; color: #fff; padding: 12px 24px; display: flex;
      justify-content: space-between; align-items: center; }
nav a, nav .user { color: #fff; }
.container { max-width: 1000px; margin: 0 auto; padding: 16px 24px; }
h1 { color: #1e3a8a; }
table { border-collapse: collapse; }
th, td { border: 1px solid #d1d5db; padding: 6px 10px; text-align: left; }
th { background: #466bb0; color: #fff; }
.error { color: #ef4444; }
.reviews { background: #eff6ff; }
.review { display: inline-block; vertical-align: top; width: 45%; padding: 12px; }
.stars { font-size: 1.4em; }
blockquote { font-size: 1.2em; font-weight: 600; margin: 8px 0; }
dialog form label { display: block; margin-top: 8px; }
"""


def _page(title: str, body: str) -> str:
    return ("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1.0\">\n"
            f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"{body}\n</body>\n</html>\n")


def render_index(details: common.Upstream, reviews: common.Upstream,
                 ratings: common.Upstream) -> str:
    def row(name, upstream, children=""):
        return (f"<tr><th>name</th><td>{escape(upstream.base_url)}</td></tr>"
                f"<tr><th>endpoint</th><td>{escape(name)}</td></tr>"
                f"<tr><th>children</th><td>{children}</td></tr>")

    ratings_t = f"<table>{row('ratings', ratings)}</table>"
    reviews_t = f"<table>{row('reviews', reviews, ratings_t)}</table>"
    details_t = f"<table>{row('details', details)}</table>"
    table = (f"<table class=\"table table-condensed table-bordered table-hover\">"
             f"<tr><th>name</th><td>productpage</td></tr>"
             f"<tr><th>endpoint</th><td>productpage</td></tr>"
             f"<tr><th>children</th><td>{details_t}{reviews_t}</td></tr></table>")
    body = (
        "<div class=\"container\">\n"
        "<h3>Hello! This is a simple bookstore application consisting of three services as "
        "shown below</h3>\n"
        f"{table}\n"
        "<p>Click on one of the links below to auto generate a request to the backend as a real "
        "user or a tester</p>\n"
        "<ul>\n<li><a href=\"/productpage?u=normal\">Normal user</a></li>\n"
        "<li><a href=\"/productpage?u=test\">Test user</a></li>\n</ul>\n</div>")
    return _page("Simple Bookstore App", body)


def _stars(rating: dict) -> str:
    stars = rating.get("stars")
    if isinstance(stars, int) and stars:
        stars = max(0, min(5, stars))
        color = escape(str(rating.get("color", "black")))
        full = "<span class=\"glyphicon glyphicon-star\">&#9733;</span>" * stars
        empty = "<span class=\"glyphicon glyphicon-star-empty\">&#9734;</span>" * (5 - stars)
        return (f"<font color=\"{color}\" class=\"stars text-{color}-500\" "
                f"data-stars=\"{stars}\">\n{full}{empty}\n</font>\n")
    if rating.get("error"):
        return f"<p class=\"error\"><i>{escape(str(rating['error']))}</i></p>\n"
    return ""


def render_productpage(product: dict, details_status: int, details: dict,
                       reviews_status: int, reviews: dict, user: str) -> str:
    if user:
        nav_right = (f"<span class=\"user\">{escape(user)}</span> "
                     "<a href=\"logout\">Sign out</a>")
    else:
        nav_right = "<button type=\"button\" id=\"sign-in-button\" " \
                    "onclick=\"document.getElementById('dialog').showModal()\">Sign in</button>"
    parts = [
        f"<nav><a href=\"#\">BookInfo Sample</a><div>{nav_right}</div></nav>",
        "<dialog id=\"dialog\">\n<h2>Sign in to BookInfo</h2>\n"
        "<form method=\"post\" action=\"login\" name=\"login_form\">\n"
        "<label for=\"username\">Username</label>"
        "<input id=\"username\" name=\"username\" required>\n"
        "<label for=\"password\">Password</label>"
        "<input id=\"password\" name=\"passwd\" type=\"password\">\n"
        "<button type=\"submit\">Sign in</button>\n"
        "<button type=\"button\" onclick=\"document.getElementById('dialog').close()\">"
        "Close</button>\n</form>\n</dialog>",
        "<div class=\"container\">",
        f"<h1>{escape(product['title'])}</h1>",
        f"<p>{product['descriptionHtml']}</p>",  # trusted HTML, as in Istio's template
        "</div>",
        "<div class=\"container details\">",
    ]
    if details_status == 200:
        fields = ("ISBN-10", "publisher", "pages", "type", "language")
        heads = ("ISBN-10", "Publisher", "Pages", "Type", "Language")
        parts.append("<h4>Book Details</h4>\n<table>\n<thead><tr>"
                     + "".join(f"<th>{h}</th>" for h in heads) + "</tr></thead>\n<tbody><tr>"
                     + "".join(f"<td>{escape(str(details.get(f, '')))}</td>" for f in fields)
                     + "</tr></tbody>\n</table>")
    else:
        parts.append("<h4 class=\"error\">Error fetching product details!</h4>")
        if details:
            parts.append(f"<p>{escape(str(details.get('error', '')))}</p>")
    parts.append("</div>")
    parts.append("<div class=\"reviews\"><div class=\"container\">")
    if reviews_status == 200:
        parts.append("<h4>Book Reviews</h4>")
        podname = escape(str(reviews.get("podname", "")))
        cluster = reviews.get("clustername")
        served = f"Reviews served by: <u>{podname}</u>"
        if cluster is not None and cluster != "null":
            served += f" on cluster <u>{escape(str(cluster))}</u>"
        for review in reviews.get("reviews", []):
            rating = review.get("rating")
            stars = _stars(rating) if isinstance(rating, dict) else ""
            parts.append(
                "<section class=\"review\">\n" + stars
                + f"<blockquote><p>\"{escape(str(review.get('text', '')))}\"</p></blockquote>\n"
                + f"<div class=\"reviewer\">{escape(str(review.get('reviewer', '')))}</div>\n"
                + f"<div class=\"served-by\">{served}</div>\n</section>")
    else:
        parts.append("<h4 class=\"error\">Error fetching product reviews!</h4>")
        if reviews:
            parts.append(f"<p>{escape(str(reviews.get('error', '')))}</p>")
    parts.append("</div></div>")
    return _page("Simple Bookstore App", "\n".join(parts))


def main(argv=None) -> int:
    args = common.parse_args("productpage", argv)
    ProductPageHandler.details_upstream = common.upstream_from_env("details")
    ProductPageHandler.reviews_upstream = common.upstream_from_env("reviews")
    ProductPageHandler.ratings_upstream = common.upstream_from_env("ratings")
    ProductPageHandler.flood_factor = int(os.environ.get("FLOOD_FACTOR") or 0)
    ups = (ProductPageHandler.details_upstream, ProductPageHandler.reviews_upstream,
           ProductPageHandler.ratings_upstream)
    banner = ", ".join(f"{u.name} -> {u.connect_host}:{u.connect_port} (Host {u.authority})"
                       for u in ups)
    common.serve("productpage", ProductPageHandler, args.bind, args.port, banner=banner)
    return 0


if __name__ == "__main__":
    sys.exit(main())
