"""mast-proxy where io_uring is forbidden, as container runtimes' seccomp profiles do: a build with
asio's io_uring backend (CMake option MAST_IO_URING) must exit at once with a message that names
the way out; an epoll build must start and serve under the same filter."""
import ctypes
import json
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


def uses_io_uring():
    return b"liburing" in subprocess.check_output(["ldd", PROXY])


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


def test_proxy_without_io_uring(tmp_path, upstream):
    up = upstream()
    cfg = tmp_path / "bootstrap.yaml"
    cfg.write_text(basic_config(up.port))
    admin_path = tmp_path / "admin_address"
    args = [PROXY, "-c", str(cfg), "--concurrency", "1", "--admin-address-path", str(admin_path)]
    if uses_io_uring():
        r = subprocess.run(args, preexec_fn=deny_io_uring, capture_output=True, text=True,
                           timeout=20)
        assert r.returncode == 1, r.stderr
        assert "io_uring" in r.stderr and "-DMAST_IO_URING=OFF" in r.stderr, r.stderr
        assert "terminate called" not in r.stderr
        return
    proc = subprocess.Popen(args, preexec_fn=deny_io_uring, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 15
        while not ready(admin_path):
            assert proc.poll() is None, proc.stderr.read()
            assert time.time() < deadline, "mast-proxy did not become ready"
            time.sleep(0.05)
        status = get("http://%s/listeners?format=json" % admin_path.read_text().strip())
        port = json.loads(status)["listener_statuses"][0]["local_address"]["socket_address"][
            "port_value"]
        assert curl("http://127.0.0.1:%d/hello" % port)[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
