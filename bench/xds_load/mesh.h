#pragma once
// The synthetic mesh the load client drives: services as mesh-internal ServiceEntries (one VIP
// each) with WorkloadEntry endpoints, a fraction of them routed by a VirtualService over
// DestinationRule subsets. The proxies the client simulates are some of those endpoints, so each
// gets its own inbound listeners and clusters as a real sidecar would.
//
// Everything is derived from MeshShape by index, so the generator (which writes the YAML) and the
// client (which impersonates the workloads) agree without sharing files.
#include <map>
#include <string>
#include <vector>

namespace mast::bench {

struct MeshShape {
  int services = 1000;
  int endpoints_per_service = 10;
  int namespaces = 20;
  int routed_every = 10;       // every Nth service has a VirtualService + DestinationRule
  bool sidecar_scope = false;  // a Sidecar per namespace: egress "./*" and "istio-system/*"
};

struct ServiceInfo {
  int index;
  std::string name;  // svc-0042
  std::string ns;    // ns-03
  std::string host;  // svc-0042.ns-03.svc.cluster.local
  std::string vip;
  bool routed;
};

struct WorkloadInfo {
  int service;
  int index;         // endpoint index within the service
  std::string name;  // svc-0042-3
  std::string ns;
  std::string address;
  std::map<std::string, std::string> labels;
  std::string service_account;
};

ServiceInfo serviceAt(const MeshShape& shape, int i);
WorkloadInfo workloadAt(const MeshShape& shape, int service, int k);

// The workload proxy `j` impersonates: service j % services, endpoint j / services.
WorkloadInfo proxyWorkload(const MeshShape& shape, int j);

// The endpoint the endpoint-only change moves (never one of the simulated proxies for
// proxies <= services * (endpoints - 1)) and the service whose VirtualService is changed.
inline constexpr int kChangedService = 0;
int changedEndpoint(const MeshShape& shape);

// YAML documents.
std::string virtualServiceYaml(const MeshShape& shape, int service, int weight_v1);
std::string workloadEntryYaml(const MeshShape& shape, int service, int k,
                              const std::string& address_override = {});

// Writes the mesh under `dir` (one file per service with its ServiceEntry and WorkloadEntries;
// the VirtualService, DestinationRule and the endpoint that changes in files of their own, so
// `mastctl apply` can replace them). Returns an error message or "".
std::string writeMesh(const MeshShape& shape, const std::string& dir);

}  // namespace mast::bench
