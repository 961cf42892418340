#pragma once
// Internal to translate: DestinationRule trafficPolicy resolution for one (port, subset).
#include <cstdint>

#include "istio/networking/v1alpha3/destination_rule.pb.h"

namespace mast::control::translate::detail {

// The field groups of a TrafficPolicy that apply to one cluster; nullptr = unset (defaults).
struct Policy {
  const istio::networking::v1alpha3::LoadBalancerSettings* load_balancer = nullptr;
  const istio::networking::v1alpha3::ConnectionPoolSettings* connection_pool = nullptr;
  const istio::networking::v1alpha3::OutlierDetection* outlier_detection = nullptr;
  const istio::networking::v1alpha3::ClientTLSSettings* tls = nullptr;
};

// Istio's merge: start from the rule's trafficPolicy; a portLevelSettings entry for `port`
// replaces all four groups (unset ones fall back to defaults, not to the top level); then the
// subset's own policy (with its own port-level settings) replaces each group it sets.
Policy effectivePolicy(const istio::networking::v1alpha3::DestinationRule* dr,
                       const istio::networking::v1alpha3::Subset* subset, uint32_t port);

}  // namespace mast::control::translate::detail
