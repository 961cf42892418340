#pragma once
// Internal to translate: route building shared by sidecar, gateway and proxyless generation.
#include <optional>
#include <string>
#include <vector>

#include "control/translate/context.h"
#include "envoy/config/route/v3/route.pb.h"

namespace mast::control::translate::detail {

// Routes of one VirtualService for (listener/server port, gateway "mesh" or "<ns>/<name>"),
// appended to `out` in VS order, one per applicable match block. Returns true when the last
// route appended is a catch-all (later routes could never match).
bool virtualServiceRoutes(const Ctx& ctx, const model::VirtualServiceInfo& vs, uint32_t port,
                          std::string_view gateway,
                          std::vector<envoy::config::route::v3::Route>& out);

// The route of a service without a VirtualService (name "default", prefix "/").
envoy::config::route::v3::Route defaultRoute(const Ctx& ctx, const model::Service& svc,
                                             uint32_t port);

// outbound|PORT|SUBSET|HOST for a route destination written in namespace `ns_of`.
std::string destinationCluster(const Ctx& ctx, const istio::networking::v1alpha3::Destination& d,
                               std::string_view ns_of, uint32_t listener_port);

// The DestinationRule consistentHash settings in force for an outbound cluster
// (outbound|PORT|SUBSET|HOST: its DR, subset and port-level settings), or null: none, or not an
// outbound cluster name.
const istio::networking::v1alpha3::LoadBalancerSettings::ConsistentHashLB* consistentHash(
    const Ctx& ctx, const std::string& cluster);

// Istio's retry policy: default (2 attempts, connect-failure,refused-stream,unavailable,
// cancelled,retriable-status-codes) when `r` is null; nullopt when attempts <= 0.
std::optional<envoy::config::route::v3::RetryPolicy> retryPolicy(
    const istio::networking::v1alpha3::HTTPRetry* r, bool consistent_hash);

}  // namespace mast::control::translate::detail
