#pragma once
// Internal to translate: VirtualService delegation (spec §5.8), Istio's
// mergeVirtualServicesIfNeeded applied per root VirtualService at generation time.
#include <memory>
#include <optional>
#include <vector>

#include "control/model/mesh_model.h"

namespace mast::control::translate::detail {

// The HTTP routes of one VirtualService once delegation is applied: every route with a
// `delegate` is replaced, in place, by the routes of the delegate VirtualService merged with it
// (dropped when the delegate is missing, has hosts, or is not exported to the root's
// namespace). Merged routes are owned here; the others point into the VirtualService's spec.
// Destination hosts and match gateways of merged routes are already resolved (FQDN, "ns/name")
// relative to the namespace they were written in, so the root's resolution keeps them.
struct HttpRouteList {
  std::vector<const istio::networking::v1alpha3::HTTPRoute*> routes;
  std::vector<std::unique_ptr<istio::networking::v1alpha3::HTTPRoute>> owned;
};
HttpRouteList delegatedHttpRoutes(const model::MeshModel& mesh,
                                  const model::VirtualServiceInfo& root);

// One delegate route merged under the root route that delegates to it (Istio's
// mergeHTTPRoute): nullopt when one of its match blocks has no compatible root match block.
// `root_vs` resolves the root's match gateways, `delegate_vs` the delegate's (names, hosts).
std::optional<istio::networking::v1alpha3::HTTPRoute> mergeDelegateRoute(
    const model::VirtualServiceInfo& root_vs, const istio::networking::v1alpha3::HTTPRoute& root,
    const model::VirtualServiceInfo& delegate_vs,
    const istio::networking::v1alpha3::HTTPRoute& delegate);

}  // namespace mast::control::translate::detail
