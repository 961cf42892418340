#pragma once
// Stats structs, created once from a scope at config time (Envoy names); the request path only
// bumps pointers.
#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "stats/store.h"

namespace mast::proxy::server {

// http.<stat_prefix>.*
struct HcmStats {
  HcmStats(stats::Store& store, const std::string& stat_prefix);
  stats::Counter* downstream_cx_total;
  stats::Gauge* downstream_cx_active;
  stats::Counter* downstream_cx_http1_total;
  stats::Counter* downstream_cx_http2_total;
  stats::Counter* downstream_cx_destroy;
  stats::Counter* downstream_cx_rx_bytes_total;
  stats::Counter* downstream_cx_tx_bytes_total;
  stats::Counter* downstream_cx_idle_timeout;
  stats::Counter* downstream_rq_total;
  stats::Gauge* downstream_rq_active;
  stats::Counter* downstream_rq_http1_total;
  stats::Counter* downstream_rq_http2_total;
  stats::Counter* downstream_rq_completed;
  stats::Counter* downstream_rq_rx_reset;
  stats::Counter* downstream_rq_idle_timeout;
  stats::Counter* downstream_rq_timeout;
  stats::Counter* downstream_rq_1xx;
  stats::Counter* downstream_rq_2xx;
  stats::Counter* downstream_rq_3xx;
  stats::Counter* downstream_rq_4xx;
  stats::Counter* downstream_rq_5xx;
  stats::Counter* no_route;
  stats::Counter* rq_protocol_error;
  stats::Histogram* downstream_rq_time;
  void recordResponseCode(int code);
  void downstream_rq_no_route() { no_route->inc(); }
  void downstream_rq_protocol_error() { rq_protocol_error->inc(); }
};

// cluster.<name>.*: one StatBlock per cluster (the store keeps the names once); the pointers
// below point into it.
struct ClusterStats {
  ClusterStats(stats::Store& store, const std::string& cluster_name);
  ~ClusterStats();
  ClusterStats(const ClusterStats&) = delete;
  ClusterStats& operator=(const ClusterStats&) = delete;
  stats::Store& store;
  stats::StatBlock& block;
  const std::string& prefix() const { return block.prefix(); }
  stats::Counter* upstream_cx_total;
  stats::Gauge* upstream_cx_active;
  stats::Counter* upstream_cx_connect_fail;
  stats::Counter* upstream_cx_overflow;
  stats::Counter* upstream_cx_none_healthy;
  stats::Counter* upstream_cx_destroy;
  stats::Counter* upstream_cx_idle_timeout;
  stats::Counter* upstream_cx_http1_total;
  stats::Counter* upstream_cx_http2_total;
  stats::Counter* upstream_rq_total;
  stats::Gauge* upstream_rq_active;
  stats::Counter* upstream_rq_completed;
  stats::Counter* upstream_rq_pending_overflow;
  stats::Counter* upstream_rq_timeout;
  stats::Counter* upstream_rq_per_try_timeout;
  stats::Counter* upstream_rq_retry;
  stats::Counter* upstream_rq_retry_overflow;
  stats::Counter* retry_or_shadow_abandoned;
  stats::Counter* upstream_rq_rx_reset;
  stats::Counter* upstream_rq_1xx;
  stats::Counter* upstream_rq_2xx;
  stats::Counter* upstream_rq_3xx;
  stats::Counter* upstream_rq_4xx;
  stats::Counter* upstream_rq_5xx;
  stats::Histogram* upstream_rq_time;
  stats::Gauge* membership_total;
  stats::Gauge* membership_healthy;
  stats::Counter* outlier_ejections_enforced_total;
  stats::Gauge* outlier_ejections_active;
  stats::Counter* outlier_ejections_consecutive_5xx;
  stats::Counter* outlier_ejections_detected_consecutive_5xx;
  stats::Counter* outlier_ejections_enforced_consecutive_gateway_failure;
  stats::Counter* outlier_ejections_detected_consecutive_gateway_failure;
  stats::Counter* outlier_ejections_overflow;
  stats::Counter* health_check_attempt;
  stats::Counter* health_check_failure;
  stats::Counter* health_check_success;
  void recordResponseCode(int code);

 private:
  // upstream_rq_<code>: created on first use of a code, then looked up by index in a table
  // allocated with the first response.
  static constexpr int kMinCode = 100, kMaxCode = 600;
  std::atomic<std::atomic<stats::Counter*>*> by_code_{nullptr};
};

// listener.<address>.*
struct ListenerStats {
  ListenerStats(stats::Store& store, const std::string& stat_name);
  stats::Counter* downstream_cx_total;
  stats::Gauge* downstream_cx_active;
  stats::Counter* downstream_cx_destroy;
  stats::Histogram* downstream_cx_length_ms;
  stats::Counter* no_filter_chain_match;
  stats::Counter* ssl_handshake_error;
};

// One downstream connection's part in its listener's stats, held by the connection (HCM or
// tcp_proxy): counted active while it lives; on destruction counted destroyed and its length
// recorded. Empty (no listener) counts nothing.
class ListenerConnectionStats {
 public:
  ListenerConnectionStats() = default;
  explicit ListenerConnectionStats(std::shared_ptr<ListenerStats> stats);
  ~ListenerConnectionStats();
  ListenerConnectionStats(ListenerConnectionStats&& o) noexcept
      : stats_(std::move(o.stats_)), start_(o.start_) {}
  ListenerConnectionStats(const ListenerConnectionStats&) = delete;
  ListenerConnectionStats& operator=(const ListenerConnectionStats&) = delete;
  ListenerConnectionStats& operator=(ListenerConnectionStats&&) = delete;

 private:
  std::shared_ptr<ListenerStats> stats_;
  std::chrono::steady_clock::time_point start_;
};

// tcp.<stat_prefix>.*
struct TcpProxyStats {
  TcpProxyStats(stats::Store& store, const std::string& stat_prefix);
  stats::Counter* downstream_cx_total;
  stats::Gauge* downstream_cx_active;
  stats::Counter* downstream_cx_rx_bytes_total;
  stats::Counter* downstream_cx_tx_bytes_total;
  stats::Counter* downstream_cx_no_route;
  stats::Counter* idle_timeout;
};

}  // namespace mast::proxy::server
