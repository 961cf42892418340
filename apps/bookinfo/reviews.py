#!/usr/bin/python3
"""Bookinfo reviews service (Istio's reviews v1, v2, v3).

GET /reviews/<id> -> {"id": "<id>", "podname": ..., "clustername": ...,
                      "reviews": [{"reviewer": "Reviewer1", "text": ..., "rating": {...}}, ...]}
GET /health       -> {"status": "Reviews is healthy"}

  v1: no ratings (the "rating" key is absent), never calls ratings.
  v2: calls ratings; "rating": {"stars": n, "color": "black"}; ratings timeout 10 s.
  v3: calls ratings; "rating": {"stars": n, "color": "red"};   ratings timeout 2.5 s.
When ratings fails (error status, refused, timeout) each review carries
"rating": {"error": "Ratings service is currently unavailable"}.

As in Istio, ENABLE_RATINGS=true|false and STAR_COLOR override what the version implies, and
the ratings timeout follows the colour (black: 10 s, anything else: 2.5 s). The `id` is a string
and an unset CLUSTER_NAME is reported as the string "null", exactly as the Java original does.
"""

from __future__ import annotations

import http.client
import os
import sys

import bookinfo_common as common

VERSIONS = ("v1", "v2", "v3")
REVIEWS = (
    ("Reviewer1",
     "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"),
    ("Reviewer2",
     "Absolutely fun and entertaining. The play lacks thematic depth when compared to other "
     "plays by Shakespeare."),
)
RATINGS_UNAVAILABLE = "Ratings service is currently unavailable"


class ReviewsHandler(common.Handler):
    ratings_enabled = False
    star_color = "black"
    ratings_timeout = 10.0
    ratings_upstream: common.Upstream | None = None
    podname = "reviews"
    clustername = "null"

    def fetch_ratings(self, pid: int) -> dict | None:
        """Returns {"Reviewer1": n, ...} or None when ratings cannot be had."""
        try:
            resp = common.http_get(self.ratings_upstream, f"/ratings/{pid}",
                                   common.forward_headers(self.headers), self.ratings_timeout)
        except (OSError, http.client.HTTPException) as e:
            common.log(f"reviews: unable to contact {self.ratings_upstream.base_url}: {e!r}")
            return None
        if resp.status != 200:
            common.log(f"reviews: unable to contact {self.ratings_upstream.base_url}: "
                       f"got status {resp.status}")
            return None
        try:
            body = resp.json()
        except ValueError:
            return None
        ratings = body.get("ratings") if isinstance(body, dict) else None
        return ratings if isinstance(ratings, dict) else {}

    def reviews(self, captured):
        try:
            pid = int(captured[0])
        except ValueError:
            self.send_json(404, {"error": "product id must be an integer"})
            return
        ratings = self.fetch_ratings(pid) if self.ratings_enabled else None
        out = []
        for reviewer, text in REVIEWS:
            review = {"reviewer": reviewer, "text": text}
            if self.ratings_enabled:
                stars = ratings.get(reviewer) if ratings is not None else None
                if isinstance(stars, int) and not isinstance(stars, bool):
                    review["rating"] = {"stars": stars, "color": self.star_color}
                else:
                    review["rating"] = {"error": RATINGS_UNAVAILABLE}
            out.append(review)
        self.send_json(200, {"id": str(pid), "podname": self.podname,
                             "clustername": self.clustername, "reviews": out})

    def health(self, _captured):
        self.send_json(200, {"status": "Reviews is healthy"})

    routes = [
        ("GET", "/reviews/*", reviews),
        ("GET", "/health", health),
    ]


def main(argv=None) -> int:
    args = common.parse_args("reviews", argv, versions=VERSIONS)
    env = os.environ
    enabled = args.version in ("v2", "v3")
    if env.get("ENABLE_RATINGS") is not None:
        enabled = env["ENABLE_RATINGS"].lower() == "true"
    color = env.get("STAR_COLOR") or ("red" if args.version == "v3" else "black")
    ReviewsHandler.ratings_enabled = enabled
    ReviewsHandler.star_color = color
    ReviewsHandler.ratings_timeout = 10.0 if color == "black" else 2.5
    ReviewsHandler.ratings_upstream = common.upstream_from_env("ratings")
    ReviewsHandler.podname = (env.get("POD_NAME") or env.get("HOSTNAME")
                              or f"reviews-{args.version}")
    ReviewsHandler.clustername = env.get("CLUSTER_NAME") or "null"
    banner = (f"{args.version}, ratings "
              + (f"{color} stars via {ReviewsHandler.ratings_upstream.connect_host}:"
                 f"{ReviewsHandler.ratings_upstream.connect_port} "
                 f"(Host {ReviewsHandler.ratings_upstream.authority})" if enabled else "off"))
    common.serve("reviews", ReviewsHandler, args.bind, args.port, banner=banner)
    return 0


if __name__ == "__main__":
    sys.exit(main())
