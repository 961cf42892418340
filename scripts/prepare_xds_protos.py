#!/usr/bin/env python3
"""Fetches Envoy's xDS v3 protos from the pinned npm package and lays out an overlay tree.

Usage: prepare_xds_protos.py CACHE_DIR OUT_DIR

The npm tarball is cached in CACHE_DIR and checked against a pinned sha256. Only the transitive
import closure of ROOTS is copied to OUT_DIR/src (well-known types come from the system protobuf),
two protoc-3.21 incompatibilities are patched, and OUT_DIR/protos.txt lists the files. Files are
rewritten only when their content changes so that re-running CMake does not rebuild everything.
"""
import hashlib, io, os, re, subprocess, sys, tarfile

PACKAGE = "@grpc/grpc-js-xds@1.14.1"
TARBALL = "grpc-grpc-js-xds-1.14.1.tgz"
SHA256 = "fd27db4119c139d5b59e8fe99d109bed04bff491302743ae3bf096667105c607"
DEPS = ["envoy-api", "xds", "googleapis", "protoc-gen-validate"]

ROOTS = [
    "envoy/service/discovery/v3/ads.proto",
    "envoy/service/discovery/v3/discovery.proto",
    "envoy/service/secret/v3/sds.proto",
    "envoy/service/status/v3/csds.proto",
    "envoy/config/bootstrap/v3/bootstrap.proto",
    "envoy/config/listener/v3/listener.proto",
    "envoy/config/route/v3/route.proto",
    "envoy/config/cluster/v3/cluster.proto",
    "envoy/config/endpoint/v3/endpoint.proto",
    "envoy/config/rbac/v3/rbac.proto",
    "envoy/config/accesslog/v3/accesslog.proto",
    "envoy/admin/v3/config_dump.proto",
    "envoy/admin/v3/clusters.proto",
    "envoy/admin/v3/server_info.proto",
    "envoy/admin/v3/listeners.proto",
    "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
    "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto",
    "envoy/extensions/filters/network/rbac/v3/rbac.proto",
    "envoy/extensions/filters/http/router/v3/router.proto",
    "envoy/extensions/filters/http/fault/v3/fault.proto",
    "envoy/extensions/filters/http/rbac/v3/rbac.proto",
    "envoy/extensions/filters/http/jwt_authn/v3/config.proto",
    "envoy/extensions/filters/http/cors/v3/cors.proto",
    "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto",
    "envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto",
    "envoy/extensions/filters/http/health_check/v3/health_check.proto",
    "envoy/extensions/filters/http/grpc_stats/v3/config.proto",
    "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto",
    "envoy/extensions/filters/listener/original_dst/v3/original_dst.proto",
    "envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto",
    "envoy/extensions/transport_sockets/tls/v3/tls.proto",
    "envoy/extensions/transport_sockets/tls/v3/cert.proto",
    "envoy/extensions/access_loggers/file/v3/file.proto",
    "envoy/extensions/access_loggers/stream/v3/stream.proto",
    "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
    "envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto",
    "envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto",
    "envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto",
    "envoy/extensions/load_balancing_policies/maglev/v3/maglev.proto",
]

IMPORT_RE = re.compile(r'^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;', re.M)


def fetch(cache_dir):
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, TARBALL)
    if not os.path.exists(path) or sha256(path) != SHA256:
        subprocess.run(["npm", "pack", "--silent", PACKAGE, "--pack-destination", cache_dir],
                       check=True, stdout=subprocess.DEVNULL)
    got = sha256(path)
    if got != SHA256:
        sys.exit(f"prepare_xds_protos: {TARBALL} sha256 {got} != pinned {SHA256}")
    return path


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def patch(name, text):
    if name == "validate/validate.proto" and "ignore_empty" not in text:
        # protoc 3.21 needs StringRules.ignore_empty, used by envoy/config/core/v3/protocol.proto.
        text = re.sub(r"(message StringRules \{)", r"\1\n    optional bool ignore_empty = 26;", text, 1)
    if name == "envoy/extensions/filters/http/jwt_authn/v3/config.proto":
        # `requires` is a C++20 keyword; renaming keeps wire format and the JSON name.
        text = re.sub(r"(\s)requires = (\d+);", r'\1requires_ = \2 [json_name = "requires"];', text)
    return text


def write_if_changed(path, data):
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() == data:
                return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    cache_dir, out_dir = sys.argv[1], sys.argv[2]
    tar = tarfile.open(fetch(cache_dir))
    files = {}
    for member in tar.getmembers():
        if not member.isfile() or not member.name.endswith(".proto"):
            continue
        parts = member.name.split("/")
        if len(parts) > 3 and parts[0] == "package" and parts[1] == "deps" and parts[2] in DEPS:
            rel = "/".join(parts[3:])
            # envoy-api and xds trees win over copies nested elsewhere.
            files.setdefault(rel, tar.extractfile(member).read().decode())
    closure, todo = [], list(ROOTS)
    seen = set()
    while todo:
        name = todo.pop()
        if name in seen or name.startswith("google/protobuf/"):
            continue
        seen.add(name)
        if name not in files:
            sys.exit(f"prepare_xds_protos: {name} not found in {PACKAGE}")
        closure.append(name)
        todo.extend(IMPORT_RE.findall(files[name]))
    closure.sort()
    for name in closure:
        write_if_changed(os.path.join(out_dir, "src", name), patch(name, files[name]).encode())
    services = [n for n in closure if re.search(r"^service\s+\w+", files[n], re.M)]
    write_if_changed(os.path.join(out_dir, "protos.txt"), ("\n".join(closure) + "\n").encode())
    write_if_changed(os.path.join(out_dir, "services.txt"), ("\n".join(services) + "\n").encode())


if __name__ == "__main__":
    main()
