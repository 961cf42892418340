#include "mesh.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

namespace mast::bench {

namespace fs = std::filesystem;

ServiceInfo serviceAt(const MeshShape& shape, int i) {
  int per_ns = std::max(1, (shape.services + shape.namespaces - 1) / shape.namespaces);
  ServiceInfo s;
  s.index = i;
  s.name = fmt::format("svc-{:04d}", i);
  s.ns = fmt::format("ns-{:02d}", i / per_ns);
  s.host = s.name + "." + s.ns + ".svc.cluster.local";
  s.vip = fmt::format("240.240.{}.{}", i / 250, i % 250 + 1);
  s.routed = shape.routed_every > 0 && i % shape.routed_every == 0;
  return s;
}

WorkloadInfo workloadAt(const MeshShape& shape, int service, int k) {
  auto s = serviceAt(shape, service);
  WorkloadInfo w;
  w.service = service;
  w.index = k;
  w.name = fmt::format("{}-{}", s.name, k);
  w.ns = s.ns;
  w.address = fmt::format("10.{}.{}.{}", 1 + service / 250, service % 250, k + 1);
  w.labels = {{"app", s.name}, {"version", k % 2 == 0 ? "v1" : "v2"}};
  w.service_account = s.name;
  return w;
}

WorkloadInfo proxyWorkload(const MeshShape& shape, int j) {
  return workloadAt(shape, j % shape.services, j / shape.services);
}

int changedEndpoint(const MeshShape& shape) { return shape.endpoints_per_service - 1; }

namespace {

std::string serviceEntryYaml(const MeshShape& shape, int i) {
  auto s = serviceAt(shape, i);
  std::string ports = "  - {number: 8080, name: http, protocol: HTTP}\n";
  if (i % 10 == 5) ports += "  - {number: 9090, name: grpc, protocol: GRPC}\n";
  if (i % 25 == 3) ports += "  - {number: 6379, name: tcp-redis, protocol: TCP}\n";
  return fmt::format(
      "apiVersion: networking.istio.io/v1\n"
      "kind: ServiceEntry\n"
      "metadata: {{name: {}, namespace: {}}}\n"
      "spec:\n"
      "  hosts: [{}]\n"
      "  addresses: [{}]\n"
      "  location: MESH_INTERNAL\n"
      "  resolution: STATIC\n"
      "  ports:\n{}"
      "  workloadSelector: {{labels: {{app: {}}}}}\n",
      s.name, s.ns, s.host, s.vip, ports, s.name);
}

std::string destinationRuleYaml(const MeshShape& shape, int i) {
  auto s = serviceAt(shape, i);
  return fmt::format(
      "apiVersion: networking.istio.io/v1\n"
      "kind: DestinationRule\n"
      "metadata: {{name: {}, namespace: {}}}\n"
      "spec:\n"
      "  host: {}\n"
      "  trafficPolicy:\n"
      "    connectionPool: {{http: {{http1MaxPendingRequests: 1024, maxRequestsPerConnection: "
      "100}}}}\n"
      "    outlierDetection: {{consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}}\n"
      "  subsets:\n"
      "  - {{name: v1, labels: {{version: v1}}}}\n"
      "  - {{name: v2, labels: {{version: v2}}}}\n",
      s.name, s.ns, s.name);
}

std::string sidecarYaml(const std::string& ns) {
  return fmt::format(
      "apiVersion: networking.istio.io/v1\n"
      "kind: Sidecar\n"
      "metadata: {{name: default, namespace: {}}}\n"
      "spec:\n"
      "  egress:\n"
      "  - hosts: [\"./*\", \"istio-system/*\"]\n",
      ns);
}

}  // namespace

std::string virtualServiceYaml(const MeshShape& shape, int i, int weight_v1) {
  auto s = serviceAt(shape, i);
  return fmt::format(
      "apiVersion: networking.istio.io/v1\n"
      "kind: VirtualService\n"
      "metadata: {{name: {}, namespace: {}}}\n"
      "spec:\n"
      "  hosts: [{}]\n"
      "  http:\n"
      "  - match: [{{headers: {{end-user: {{exact: jason}}}}}}]\n"
      "    route: [{{destination: {{host: {}, subset: v2}}}}]\n"
      "  - route:\n"
      "    - {{destination: {{host: {}, subset: v1}}, weight: {}}}\n"
      "    - {{destination: {{host: {}, subset: v2}}, weight: {}}}\n"
      "    timeout: 5s\n"
      "    retries: {{attempts: 3, perTryTimeout: 2s}}\n",
      s.name, s.ns, s.name, s.name, s.name, weight_v1, s.name, 100 - weight_v1);
}

std::string workloadEntryYaml(const MeshShape& shape, int service, int k,
                              const std::string& address_override) {
  auto w = workloadAt(shape, service, k);
  return fmt::format(
      "apiVersion: networking.istio.io/v1\n"
      "kind: WorkloadEntry\n"
      "metadata: {{name: {}, namespace: {}}}\n"
      "spec:\n"
      "  address: {}\n"
      "  labels: {{app: {}, version: {}}}\n"
      "  serviceAccount: {}\n"
      "  locality: region1/zone{}\n",
      w.name, w.ns, address_override.empty() ? w.address : address_override, w.labels["app"],
      w.labels["version"], w.service_account, k % 3);
}

std::string writeMesh(const MeshShape& shape, const std::string& dir) {
  std::error_code ec;
  std::map<std::string, bool> namespaces;
  for (int i = 0; i < shape.services; ++i) {
    auto s = serviceAt(shape, i);
    fs::path nsdir = fs::path(dir) / s.ns;
    if (!namespaces.count(s.ns)) {
      fs::create_directories(nsdir, ec);
      if (ec) return nsdir.string() + ": " + ec.message();
      namespaces[s.ns] = true;
      if (shape.sidecar_scope) {
        std::ofstream(nsdir / "sidecar.yaml") << sidecarYaml(s.ns);
      }
    }
    std::string text = serviceEntryYaml(shape, i);
    for (int k = 0; k < shape.endpoints_per_service; ++k) {
      std::string we = workloadEntryYaml(shape, i, k);
      if (i == kChangedService && k == changedEndpoint(shape)) {
        std::ofstream(nsdir / (s.name + "-we-" + std::to_string(k) + ".yaml")) << we;
      } else {
        text += "---\n" + we;
      }
    }
    std::ofstream out(nsdir / (s.name + ".yaml"));
    out << text;
    if (!out) return (nsdir / (s.name + ".yaml")).string() + ": write failed";
    if (s.routed) {
      std::ofstream(nsdir / (s.name + "-vs.yaml")) << virtualServiceYaml(shape, i, 90);
      std::ofstream(nsdir / (s.name + "-dr.yaml")) << destinationRuleYaml(shape, i);
    }
  }
  return {};
}

}  // namespace mast::bench
