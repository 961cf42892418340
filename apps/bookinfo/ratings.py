#!/usr/bin/python3
"""Bookinfo ratings service (Istio's ratings, in-memory variant).

GET  /ratings/<id>  -> {"id": <id>, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
POST /ratings/<id>  body {"Reviewer1": n, ...} replaces that product's ratings (in memory)
GET  /health        -> {"status": "Ratings is healthy"}

Versions (--version or SERVICE_VERSION), as in Istio's sample:
  v1          always answers from memory
  v-faulty    half the requests fail with 503 {"error": "Service unavailable"}
  v-delayed   half the requests are answered after 7 s
  v-unavailable  alternates every 60 s between serving and 503
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time

import bookinfo_common as common

VERSIONS = ("v1", "v-faulty", "v-delayed", "v-unavailable")
DEFAULT_RATINGS = {"Reviewer1": 5, "Reviewer2": 4}


class RatingsHandler(common.Handler):
    version = "v1"
    started = time.monotonic()
    user_ratings: dict[int, dict] = {}
    lock = threading.Lock()

    def _product_id(self, raw: str) -> int | None:
        try:
            return int(raw)
        except ValueError:
            self.send_json(400, {"error": "please provide numeric product ID"})
            return None

    def _ratings_for(self, pid: int) -> dict:
        with self.lock:
            stored = self.user_ratings.get(pid)
        if stored is not None:
            return stored
        return {"id": pid, "ratings": dict(DEFAULT_RATINGS)}

    def get_ratings(self, captured):
        pid = self._product_id(captured[0])
        if pid is None:
            return
        if self.version == "v-faulty" and random.random() <= 0.5:
            self.send_json(503, {"error": "Service unavailable"})
            return
        if self.version == "v-delayed" and random.random() <= 0.5:
            time.sleep(7)
        if self.version == "v-unavailable" and int((time.monotonic() - self.started) // 60) % 2:
            self.send_json(503, {"error": "Service unavailable"})
            return
        self.send_json(200, self._ratings_for(pid))

    def post_ratings(self, captured):
        body = self.read_body()
        pid = self._product_id(captured[0])
        if pid is None:
            return
        try:
            ratings = json.loads(body.decode("utf-8"))
            if not isinstance(ratings, dict):
                raise ValueError("not an object")
        except ValueError:
            self.send_json(400, {"error": "please provide valid ratings JSON"})
            return
        entry = {"id": pid, "ratings": ratings}
        with self.lock:
            self.user_ratings[pid] = entry
        self.send_json(200, entry)

    def health(self, _captured):
        self.send_json(200, {"status": "Ratings is healthy"})

    routes = [
        ("GET", "/ratings/*", get_ratings),
        ("POST", "/ratings/*", post_ratings),
        ("GET", "/health", health),
    ]


def main(argv=None) -> int:
    args = common.parse_args("ratings", argv, versions=VERSIONS)
    RatingsHandler.version = args.version
    common.serve("ratings", RatingsHandler, args.bind, args.port, banner=args.version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
