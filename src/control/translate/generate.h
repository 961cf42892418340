#pragma once
// Translation: the mesh model + one proxy → the Envoy xDS resources that proxy should run,
// laid out and named as istiod does (see README.md for the full contract).
//
// Pure: no I/O, no threads, no globals; the same inputs always give byte-identical output (every
// list is in a deterministic order), so callers can hash each type for its version and push
// only the types that changed.
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

}  // namespace mast::control::translate
