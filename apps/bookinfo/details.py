#!/usr/bin/python3
"""Bookinfo details service (Istio's details, v1).

GET /details/<id> -> {"id": <id>, "author": "William Shakespeare", "year": 1595,
                      "type": "paperback", "pages": 200, "publisher": "PublisherA",
                      "language": "English", "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"}
    a non-numeric id -> 400 {"error": "please provide numeric product id"}
GET /health -> {"status": "Details is healthy"}

With ENABLE_EXTERNAL_BOOK_SERVICE=true (Istio's egress tasks) the details come from the Google
Books API (www.googleapis.com; plain HTTP on port 80 when DO_NOT_ENCRYPT=true, else HTTPS 443;
EXTERNAL_BOOK_SERVICE_URL overrides the base URL), forwarding the propagated headers.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import sys
import urllib.parse

import bookinfo_common as common

BOOK_ISBN = "0486424618"  # one Comedy of Errors edition with Shakespeare as the only author


def local_details(pid: int) -> dict:
    return {
        "id": pid,
        "author": "William Shakespeare",
        "year": 1595,
        "type": "paperback",
        "pages": 200,
        "publisher": "PublisherA",
        "language": "English",
        "ISBN-10": "1234567890",
        "ISBN-13": "123-1234567890",
    }


def external_details(pid: int, headers: dict[str, str]) -> dict:
    base = os.environ.get("EXTERNAL_BOOK_SERVICE_URL")
    if base:
        parsed = urllib.parse.urlsplit(base)
        https = parsed.scheme == "https"
        host, port = parsed.hostname, parsed.port or (443 if https else 80)
        prefix = parsed.path.rstrip("/")
    else:
        https = os.environ.get("DO_NOT_ENCRYPT") != "true"
        host, port, prefix = "www.googleapis.com", 443 if https else 80, ""
    if https:
        conn = http.client.HTTPSConnection(host, port, timeout=5,
                                           context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", f"{prefix}/books/v1/volumes?q=isbn:{BOOK_ISBN}", headers=headers)
        resp = conn.getresponse()
        data = json.loads(resp.read().decode("utf-8"))
    finally:
        conn.close()
    book = data["items"][0]["volumeInfo"]

    def isbn(kind: str):
        for ident in book.get("industryIdentifiers", []):
            if ident.get("type") == kind:
                return ident.get("identifier")
        return None

    return {
        "id": pid,
        "author": book["authors"][0],
        "year": book.get("publishedDate"),
        "type": "paperback" if book.get("printType") == "BOOK" else "unknown",
        "pages": book.get("pageCount"),
        "publisher": book.get("publisher"),
        "language": "English" if book.get("language") == "en" else "unknown",
        "ISBN-10": isbn("ISBN_10"),
        "ISBN-13": isbn("ISBN_13"),
    }


class DetailsHandler(common.Handler):
    def details(self, captured):
        # Like Istio's WEBrick mount, anything under /details/ is accepted and the id is the
        # last path segment.
        last = captured[0].split("/")[-1] if captured[0] else ""
        try:
            pid = int(last)
        except ValueError:
            self.send_json(400, {"error": "please provide numeric product id"})
            return
        try:
            if os.environ.get("ENABLE_EXTERNAL_BOOK_SERVICE") == "true":
                body = external_details(pid, common.forward_headers(self.headers))
            else:
                body = local_details(pid)
        except Exception as e:  # noqa: BLE001 (any failure of the external call is a 400 there)
            self.send_json(400, {"error": str(e) or type(e).__name__})
            return
        self.send_json(200, body)

    def health(self, _captured):
        self.send_json(200, {"status": "Details is healthy"})

    routes = [
        ("GET", "/details/**", details),
        ("GET", "/health", health),
    ]


def main(argv=None) -> int:
    args = common.parse_args("details", argv)
    common.serve("details", DetailsHandler, args.bind, args.port, banner=args.version)
    return 0


if __name__ == "__main__":
    sys.exit(main())
