#!/usr/bin/env python3
"""A stand-in for www.envoyproxy.io: an HTTPS site on localhost (self-signed certificate) that
answers every GET with a small HTML page, so the Envoy demo bootstrap works offline."""
import http.server
import ssl
import sys

PAGE = b"""<!DOCTYPE html><html><head><title>Envoy proxy - home</title></head>
<body><h1>Envoy is an open source edge and service proxy</h1></body></html>"""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(PAGE)))
        self.send_header("x-served-host", self.headers.get("host", ""))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *a):
        pass


def main():
    port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
