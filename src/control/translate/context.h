#pragma once
// Internal to translate: the per-generate() context and helpers shared by the cluster, route
// and listener builders. Not a public header.
#include <google/protobuf/any.pb.h>
#include <google/protobuf/duration.pb.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/model/mesh_model.h"
#include "control/translate/generate.h"
#include "control/xds/proxy_info.h"

namespace mast::control::translate::detail {

enum class Flavor { kSidecar, kGateway, kProxyless };

// What a generate() call builds: everything, only what does not depend on the proxy's own
// workload (no inbound clusters, no virtualInbound), or only that workload-specific part.
enum class Part { kAll, kShared, kInbound };

// Istio's magic names (spec §0.2).
inline constexpr std::string_view kBlackHoleCluster = "BlackHoleCluster";
inline constexpr std::string_view kPassthroughCluster = "PassthroughCluster";
inline constexpr std::string_view kInboundPassthroughCluster = "InboundPassthroughCluster";
inline constexpr uint32_t kVirtualOutboundPort = 15001;
inline constexpr uint32_t kVirtualInboundPort = 15006;

// A service port this proxy can reach.
struct VisiblePort {
  const model::Service* service;
  const model::ServicePort* port;
};

// A port the proxy's own workload serves (it is an endpoint of some service).
struct InboundPort {
  const model::Service* service;  // nullptr for a Sidecar ingress port no service declares
  const model::ServicePort* service_port;
  uint32_t target_port;
  std::string address;  // the workload address the endpoint was registered with
  // From a Sidecar `ingress` entry (spec §2.4): the port's declaration, where the inbound cluster
  // sends (defaultEndpoint), and for captureMode NONE the address of a really bound listener.
  std::shared_ptr<const model::ServicePort> ingress_port;
  uint32_t endpoint_port = 0;  // 0: target_port
  bool bound = false;
  std::string bind;
};

struct HttpRouteList;  // delegate.h

struct Ctx {
  const model::MeshModel& mesh;
  const xds::ProxyInfo& proxy;
  Flavor flavor = Flavor::kSidecar;
  Part part = Part::kAll;
  const MeshIndex* index = nullptr;  // optional, for inboundPorts()
  SharedSelection selection;         // what of the shared part to build (kShared only)
  std::string ns;                    // the proxy's config namespace
  std::string dns_domain;            // "<ns>.svc.cluster.local" unless the node id says otherwise
  bool allow_any = true;             // outbound traffic policy (mesh, overridden by Sidecar)
  const model::SidecarInfo* sidecar = nullptr;  // the Sidecar resource selecting this proxy
  std::vector<VisiblePort> ports;               // in scope, ordered by (hostname, port)
  std::vector<InboundPort> inbound;             // de-duplicated by target port, in port order

  // The DestinationRule that applies to `svc` for this proxy (cached per call).
  const model::EffectiveDestinationRule* destinationRule(const model::Service& svc) const;
  // The service a route destination names, as seen from this proxy (nullptr if unknown).
  const model::Service* service(std::string_view host) const;
  bool inScope(const model::Service& svc) const;
  // The HTTP routes of `vs` with delegation applied (delegate.h), merged once per call.
  const std::vector<const istio::networking::v1alpha3::HTTPRoute*>& httpRoutes(
      const model::VirtualServiceInfo& vs) const;

  mutable std::map<const model::Service*, std::optional<model::EffectiveDestinationRule>> dr_cache;
  mutable std::map<const model::VirtualServiceInfo*, std::shared_ptr<const HttpRouteList>>
      http_routes_cache;
};

// gRPC cannot follow an original destination: a service without a cluster it can use (no
// endpoints, resolution NONE) gets no listener or route either.
bool proxylessReachable(const Ctx& ctx, const VisiblePort& vp);

std::string outboundClusterName(uint32_t port, std::string_view subset, std::string_view host);
std::string inboundClusterName(uint32_t port);

google::protobuf::Duration durationMs(int64_t ms);
template <class T>
google::protobuf::Any pack(const T& m) {
  google::protobuf::Any a;
  a.PackFrom(m);
  return a;
}

// Builders (clusters.cc, routes.cc, listeners.cc).
void buildClusters(const Ctx& ctx, ProxyResources& out);
void buildSidecarRoutes(const Ctx& ctx, ProxyResources& out);
void buildGatewayRoutesAndListeners(const Ctx& ctx, ProxyResources& out);
void buildProxylessRoutes(const Ctx& ctx, ProxyResources& out);
void buildSidecarListeners(const Ctx& ctx, ProxyResources& out);  // + virtualInbound unless kShared
void buildVirtualInbound(const Ctx& ctx, ProxyResources& out);
void buildInboundClusters(const Ctx& ctx, ProxyResources& out);
void buildProxylessListeners(const Ctx& ctx, ProxyResources& out);

// Host names a service answers to from this proxy (spec §3.2): FQDN, FQDN., short forms
// relative to the proxy's DNS domain, VIPs. With `with_port` each is followed by "name:port".
std::vector<std::string> serviceDomains(const Ctx& ctx, const model::Service& svc, uint32_t port,
                                        bool with_port);

}  // namespace mast::control::translate::detail
