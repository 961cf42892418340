#!/usr/bin/python3
"""A real, independent xDS client for grpc_xds_client_test: Python grpcio's xds resolver.

Usage: GRPC_XDS_BOOTSTRAP=bootstrap.json xds_python_client.py TARGET EXPECTED_PREFIX TIMEOUT_S

Calls /mast.test.Echo/Say on xds:///TARGET (raw bytes, no stubs needed) until a reply starts
with EXPECTED_PREFIX, printing each distinct reply on its own line. Exits 0 on success, 1 when
TIMEOUT_S passes first. Needs Debian's python3-grpcio (/usr/bin/python3), not a pyenv python.
"""
import sys
import time

import grpc


def main():
    target, expected, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel("xds:///" + target) as channel:
        say = channel.unary_unary("/mast.test.Echo/Say")
        last = None
        while time.monotonic() < deadline:
            try:
                reply = say(b"py", timeout=max(0.5, min(5.0, deadline - time.monotonic())),
                            wait_for_ready=True).decode()
            except grpc.RpcError as e:
                reply = "ERR %s: %s" % (e.code(), e.details())
            if reply != last:
                print(reply, flush=True)
                last = reply
            if reply.startswith(expected):
                return 0
            time.sleep(0.05)
    return 1


if __name__ == "__main__":
    sys.exit(main())
