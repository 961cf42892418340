#pragma once
// Translation: the mesh model + one proxy → the Envoy xDS resources that proxy should run,
// laid out and named as istiod does (see README.md for the full contract).
//
// Pure: no I/O, no threads, no globals; the same inputs always give byte-identical output (every
// list is in a deterministic order), so callers can hash each type for its version and push
// only the types that changed.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "control/model/mesh_model.h"
#include "control/xds/proxy_info.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"

namespace mast::control::translate {

struct ProxyResources {
  std::vector<envoy::config::listener::v3::Listener> listeners;
  std::vector<envoy::config::route::v3::RouteConfiguration> routes;
  std::vector<envoy::config::cluster::v3::Cluster> clusters;
  std::vector<envoy::config::endpoint::v3::ClusterLoadAssignment> endpoints;
};

// Sidecars (ProxyType::kSidecar), gateways (kRouter) and proxyless gRPC clients
// (proxy.proxyless) each get their own layout. A proxy of unknown type gets nothing.
ProxyResources generate(const model::MeshModel& mesh, const xds::ProxyInfo& proxy);

// generate() in two parts, so a control plane can compute the bulk once for many proxies:
// generateShared() is everything except what depends on the proxy's own workload (its IPs), and
// generateInbound() is exactly that: the `inbound|PORT||` clusters and the `virtualInbound`
// listener of a sidecar (nothing for other proxies). Their union, by resource name, is
// generate(): generateShared's virtualInbound is left out, every other name is disjoint.
class MeshIndex;
ProxyResources generateShared(const model::MeshModel& mesh, const xds::ProxyInfo& proxy);

// Part of generateShared()'s output, for a caller that keeps the rest from an earlier
// translation of the same proxy shape (mastd's incremental pushes). Each resource built is
// exactly the one generateShared() gives; the caller decides what a change can affect.
struct SharedSelection {
  bool clusters = true;  // clusters with their ClusterLoadAssignments
  bool listeners = true;
  bool routes = true;
  // When set: of the clusters, only the outbound ones (and their CLAs) of these hostnames, none
  // of the fixed ones (BlackHoleCluster, PassthroughCluster, ...).
  const std::set<std::string>* only_hosts = nullptr;
  // When set: of a sidecar's route configurations (named by port), only these ports'.
  const std::set<uint32_t>* only_route_ports = nullptr;
};
ProxyResources generateShared(const model::MeshModel& mesh, const xds::ProxyInfo& proxy,
                              const SharedSelection& selection);
// With `index` (built from the same `mesh`), the proxy's service instances are looked up by
// address instead of walking every endpoint of the mesh.
ProxyResources generateInbound(const model::MeshModel& mesh, const xds::ProxyInfo& proxy,
                               const MeshIndex* index = nullptr);

// Per-model precomputation for translating many proxies (what mastd does on every push).
// Immutable once built; holds a reference to `mesh`.
class MeshIndex {
 public:
  explicit MeshIndex(const model::MeshModel& mesh);

  // Proxies with equal keys get identical generateShared() output: the key holds every proxy
  // input translation reads apart from the workload's IPs (proxy type, proxyless, namespace,
  // DNS domain, locality) and, instead of the labels, which of the model's label selectors
  // (VirtualService sourceLabels, DestinationRule and Sidecar workloadSelectors, Gateway
  // selectors) match them.
  std::string shareKey(const xds::ProxyInfo& proxy) const;
  // The label selectors shareKey() tests, in key order: keys of two models compare only when
  // these are equal.
  const std::vector<model::Labels>& selectors() const { return selectors_; }

  // An endpoint as a service instance of the workload at its address (UDP ports and the
  // proxy's own 15001/15006 left out), `order` = position in the oldest-service-first walk.
  struct Instance {
    const model::Service* service;
    const model::ServicePort* port;
    uint32_t target_port;
    std::string address;
    size_t order;
  };
  const std::vector<Instance>* instancesAt(const std::string& address) const;

 private:
  const model::MeshModel& mesh_;
  std::vector<model::Labels> selectors_;
  std::map<std::string, std::vector<Instance>> by_address_;
};

}  // namespace mast::control::translate
