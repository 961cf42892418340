#!/usr/bin/python3
"""A long-lived gRPC xDS client for test_proxyless_grpc: Debian's python3-grpcio with its own xDS
resolver (GRPC_XDS_BOOTSTRAP), one channel and so one ADS stream for the whole run.

Usage: GRPC_XDS_BOOTSTRAP=bootstrap.json grpc_xds_follower.py TARGET

Calls /mast.test.Echo/Say on xds:///TARGET (raw bytes, no stubs) back to back and prints one
line per call: the reply, or "ERR <code>" for a failed call. Runs until it is terminated or its
stdin is closed. Needs /usr/bin/python3 (Debian's grpcio), not a pyenv python.
"""
import os
import select
import sys
import time

import grpc


def main():
    target = sys.argv[1]
    with grpc.insecure_channel("xds:///" + target) as channel:
        say = channel.unary_unary("/mast.test.Echo/Say")
        while True:
            try:
                reply = say(b"py", timeout=2, wait_for_ready=True).decode()
            except grpc.RpcError as e:
                reply = "ERR %s" % e.code()
            print(reply, flush=True)
            # The test closes stdin to stop us.
            readable, _, _ = select.select([sys.stdin], [], [], 0)
            if readable and not os.read(sys.stdin.fileno(), 1):
                return 0
            time.sleep(0.02)


if __name__ == "__main__":
    sys.exit(main())
