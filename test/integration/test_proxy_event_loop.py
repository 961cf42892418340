"""mast-proxy's workers do their plaintext socket I/O through io_uring where the kernel allows it,
and the same binary falls back to epoll where it does not: under a seccomp filter that forbids
io_uring_setup (as container runtimes' default profiles do), or with MAST_IO_URING=0."""
import ctypes
import json
import os
import platform
import subprocess
import time
import urllib.request

import pytest

from conftest import PROXY, basic_config, curl

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64",
                                reason="the seccomp filter below uses x86_64 syscall numbers")

NR_IO_URING_SETUP = 425
AUDIT_ARCH_X86_64 = 0xC000003E


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def deny_io_uring():
    """preexec_fn: io_uring_setup fails with EPERM in the child, every other syscall is allowed."""
    ld_abs, jeq, ret = 0x20, 0x15, 0x06
    prog = (SockFilter * 6)(
        SockFilter(ld_abs, 0, 0, 4),                    # arch
        SockFilter(jeq, 0, 3, AUDIT_ARCH_X86_64),       # other arch -> allow
        SockFilter(ld_abs, 0, 0, 0),                    # syscall number
        SockFilter(jeq, 0, 1, NR_IO_URING_SETUP),
        SockFilter(ret, 0, 0, 0x00050000 | 1),          # SECCOMP_RET_ERRNO | EPERM
        SockFilter(ret, 0, 0, 0x7FFF0000))              # SECCOMP_RET_ALLOW
    fprog = SockFprog(len(prog), prog)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


def io_uring_allowed():
    code = ("import ctypes; l = ctypes.CDLL(None, use_errno=True); p = ctypes.create_string_buffer(120);"
            "r = l.syscall(%d, 1, p); print(r)" % NR_IO_URING_SETUP)
    out = subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True, timeout=10)
    return out.stdout.strip() != "-1"


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read()


def ready(admin_path):
    if not (admin_path.exists() and admin_path.read_text().strip()):
        return False
    try:
        get("http://%s/ready" % admin_path.read_text().strip())
        return True
    except OSError:
        return False


def test_filter_denies_io_uring_setup():
    # The filter itself works: io_uring_setup(1, params) fails with EPERM under it.
    code = ("import ctypes; l = ctypes.CDLL(None, use_errno=True); p = ctypes.create_string_buffer(120);"
            "r = l.syscall(%d, 1, p); print(r, ctypes.get_errno())" % NR_IO_URING_SETUP)
    out = subprocess.run(["/usr/bin/python3", "-c", code], preexec_fn=deny_io_uring,
                         capture_output=True, text=True, timeout=10)
    assert out.stdout.split() == ["-1", "1"], out.stdout + out.stderr


def serve_and_check(tmp_path, upstream, preexec_fn=None, env=None):
    """Starts mast-proxy, proves it proxies a request with curl, returns its stderr."""
    up = upstream()
    cfg = tmp_path / "bootstrap.yaml"
    cfg.write_text(basic_config(up.port))
    admin_path = tmp_path / "admin_address"
    args = [PROXY, "-c", str(cfg), "--concurrency", "2", "--admin-address-path", str(admin_path)]
    errlog = tmp_path / "stderr.log"
    with open(errlog, "w") as err:
        proc = subprocess.Popen(args, preexec_fn=preexec_fn, env=env, stdout=subprocess.DEVNULL,
                                stderr=err)
    try:
        deadline = time.time() + 15
        while not ready(admin_path):
            assert proc.poll() is None, errlog.read_text()
            assert time.time() < deadline, "mast-proxy did not become ready"
            time.sleep(0.05)
        status = get("http://%s/listeners?format=json" % admin_path.read_text().strip())
        port = json.loads(status)["listener_statuses"][0]["local_address"]["socket_address"][
            "port_value"]
        for i in range(20):  # keep-alive and fresh connections, on both workers
            assert curl("http://127.0.0.1:%d/hello/%d" % (port, i))[0] == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    return errlog.read_text()


def test_proxy_falls_back_to_epoll_without_io_uring(tmp_path, upstream):
    # Where a seccomp profile forbids io_uring (Docker's default does), the same binary serves
    # through epoll and says why.
    log = serve_and_check(tmp_path, upstream, preexec_fn=deny_io_uring)
    assert "socket I/O through epoll: io_uring_setup failed: Operation not permitted" in log, log


def test_proxy_uses_io_uring_where_allowed(tmp_path, upstream):
    if not io_uring_allowed():
        pytest.skip("io_uring_setup is not allowed here")
    log = serve_and_check(tmp_path, upstream)
    assert "socket I/O through io_uring" in log, log


def test_io_uring_can_be_turned_off(tmp_path, upstream):
    env = dict(os.environ, MAST_IO_URING="0")
    log = serve_and_check(tmp_path, upstream, env=env)
    assert "socket I/O through epoll: turned off by MAST_IO_URING=0" in log, log
