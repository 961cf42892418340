#include "control/translate/policy.h"

namespace mast::control::translate::detail {

namespace net = istio::networking::v1alpha3;

namespace {

Policy fromTrafficPolicy(const net::TrafficPolicy& tp, uint32_t port) {
  Policy p;
  if (tp.has_load_balancer()) p.load_balancer = &tp.load_balancer();
  if (tp.has_connection_pool()) p.connection_pool = &tp.connection_pool();
  if (tp.has_outlier_detection()) p.outlier_detection = &tp.outlier_detection();
  if (tp.has_tls()) p.tls = &tp.tls();
  for (const auto& pl : tp.port_level_settings()) {
    if (pl.port().number() != port) continue;
    p.load_balancer = pl.has_load_balancer() ? &pl.load_balancer() : nullptr;
    p.connection_pool = pl.has_connection_pool() ? &pl.connection_pool() : nullptr;
    p.outlier_detection = pl.has_outlier_detection() ? &pl.outlier_detection() : nullptr;
    p.tls = pl.has_tls() ? &pl.tls() : nullptr;
    break;
  }
  return p;
}

}  // namespace

Policy effectivePolicy(const net::DestinationRule* dr, const net::Subset* subset, uint32_t port) {
  Policy p;
  if (!dr) return p;
  if (dr->has_traffic_policy()) p = fromTrafficPolicy(dr->traffic_policy(), port);
  if (subset && subset->has_traffic_policy()) {
    Policy s = fromTrafficPolicy(subset->traffic_policy(), port);
    if (s.load_balancer) p.load_balancer = s.load_balancer;
    if (s.connection_pool) p.connection_pool = s.connection_pool;
    if (s.outlier_detection) p.outlier_detection = s.outlier_detection;
    if (s.tls) p.tls = s.tls;
  }
  return p;
}

}  // namespace mast::control::translate::detail
