#include "proxy/server/hcm_stats.h"

#include <iterator>
#include <mutex>
#include <string_view>

namespace mast::proxy::server {

HcmStats::HcmStats(stats::Store& store, const std::string& prefix) {
  std::string p = "http." + prefix + ".";
  store.registerTagPrefix(p, "envoy_http_conn_manager_prefix", prefix, "http.");
  auto c = [&](const char* n) { return &store.counter(p + n); };
  auto g = [&](const char* n) { return &store.gauge(p + n); };
  downstream_cx_total = c("downstream_cx_total");
  downstream_cx_active = g("downstream_cx_active");
  downstream_cx_http1_total = c("downstream_cx_http1_total");
  downstream_cx_http2_total = c("downstream_cx_http2_total");
  downstream_cx_destroy = c("downstream_cx_destroy");
  downstream_cx_rx_bytes_total = c("downstream_cx_rx_bytes_total");
  downstream_cx_tx_bytes_total = c("downstream_cx_tx_bytes_total");
  downstream_cx_idle_timeout = c("downstream_cx_idle_timeout");
  downstream_rq_total = c("downstream_rq_total");
  downstream_rq_active = g("downstream_rq_active");
  downstream_rq_http1_total = c("downstream_rq_http1_total");
  downstream_rq_http2_total = c("downstream_rq_http2_total");
  downstream_rq_completed = c("downstream_rq_completed");
  downstream_rq_rx_reset = c("downstream_rq_rx_reset");
  downstream_rq_idle_timeout = c("downstream_rq_idle_timeout");
  downstream_rq_timeout = c("downstream_rq_timeout");
  downstream_rq_1xx = c("downstream_rq_1xx");
  downstream_rq_2xx = c("downstream_rq_2xx");
  downstream_rq_3xx = c("downstream_rq_3xx");
  downstream_rq_4xx = c("downstream_rq_4xx");
  downstream_rq_5xx = c("downstream_rq_5xx");
  no_route = c("no_route");
  rq_protocol_error = c("downstream_cx_protocol_error");
  downstream_rq_time = &store.histogram(p + "downstream_rq_time");
}

void HcmStats::recordResponseCode(int code) {
  downstream_rq_completed->inc();
  switch (code / 100) {
    case 1:
      downstream_rq_1xx->inc();
      break;
    case 2:
      downstream_rq_2xx->inc();
      break;
    case 3:
      downstream_rq_3xx->inc();
      break;
    case 4:
      downstream_rq_4xx->inc();
      break;
    case 5:
      downstream_rq_5xx->inc();
      break;
  }
}

namespace {
// Every cluster's fixed stats: one StatBlock per cluster, whose names are stored once, here.
template <class T>
struct Field {
  std::string_view suffix;
  T* ClusterStats::*member;
};
const Field<stats::Counter> kCounters[] = {
    {"upstream_cx_total", &ClusterStats::upstream_cx_total},
    {"upstream_cx_connect_fail", &ClusterStats::upstream_cx_connect_fail},
    {"upstream_cx_overflow", &ClusterStats::upstream_cx_overflow},
    {"upstream_cx_none_healthy", &ClusterStats::upstream_cx_none_healthy},
    {"upstream_cx_destroy", &ClusterStats::upstream_cx_destroy},
    {"upstream_cx_idle_timeout", &ClusterStats::upstream_cx_idle_timeout},
    {"upstream_cx_http1_total", &ClusterStats::upstream_cx_http1_total},
    {"upstream_cx_http2_total", &ClusterStats::upstream_cx_http2_total},
    {"upstream_rq_total", &ClusterStats::upstream_rq_total},
    {"upstream_rq_completed", &ClusterStats::upstream_rq_completed},
    {"upstream_rq_pending_overflow", &ClusterStats::upstream_rq_pending_overflow},
    {"upstream_rq_timeout", &ClusterStats::upstream_rq_timeout},
    {"upstream_rq_per_try_timeout", &ClusterStats::upstream_rq_per_try_timeout},
    {"upstream_rq_retry", &ClusterStats::upstream_rq_retry},
    {"upstream_rq_retry_overflow", &ClusterStats::upstream_rq_retry_overflow},
    {"retry_or_shadow_abandoned", &ClusterStats::retry_or_shadow_abandoned},
    {"upstream_rq_rx_reset", &ClusterStats::upstream_rq_rx_reset},
    {"upstream_rq_1xx", &ClusterStats::upstream_rq_1xx},
    {"upstream_rq_2xx", &ClusterStats::upstream_rq_2xx},
    {"upstream_rq_3xx", &ClusterStats::upstream_rq_3xx},
    {"upstream_rq_4xx", &ClusterStats::upstream_rq_4xx},
    {"upstream_rq_5xx", &ClusterStats::upstream_rq_5xx},
    {"outlier_detection.ejections_enforced_total", &ClusterStats::outlier_ejections_enforced_total},
    {"outlier_detection.ejections_enforced_consecutive_5xx",
     &ClusterStats::outlier_ejections_consecutive_5xx},
    {"outlier_detection.ejections_detected_consecutive_5xx",
     &ClusterStats::outlier_ejections_detected_consecutive_5xx},
    {"outlier_detection.ejections_enforced_consecutive_gateway_failure",
     &ClusterStats::outlier_ejections_enforced_consecutive_gateway_failure},
    {"outlier_detection.ejections_detected_consecutive_gateway_failure",
     &ClusterStats::outlier_ejections_detected_consecutive_gateway_failure},
    {"outlier_detection.ejections_overflow", &ClusterStats::outlier_ejections_overflow},
    {"health_check.attempt", &ClusterStats::health_check_attempt},
    {"health_check.failure", &ClusterStats::health_check_failure},
    {"health_check.success", &ClusterStats::health_check_success},
};
const Field<stats::Gauge> kGauges[] = {
    {"upstream_cx_active", &ClusterStats::upstream_cx_active},
    {"upstream_rq_active", &ClusterStats::upstream_rq_active},
    {"membership_total", &ClusterStats::membership_total},
    {"membership_healthy", &ClusterStats::membership_healthy},
    {"outlier_detection.ejections_active", &ClusterStats::outlier_ejections_active},
};
const Field<stats::Histogram> kHistograms[] = {
    {"upstream_rq_time", &ClusterStats::upstream_rq_time},
};

const stats::StatBlockSpec& clusterSpec() {
  static const stats::StatBlockSpec spec = [] {
    stats::StatBlockSpec s;
    for (const auto& f : kCounters) s.counters.push_back(f.suffix);
    for (const auto& f : kGauges) s.gauges.push_back(f.suffix);
    for (const auto& f : kHistograms) s.histograms.push_back(f.suffix);
    s.tag = "envoy_cluster_name";
    s.metric_prefix = "cluster.";
    return s;
  }();
  return spec;
}

// upstream_rq_<code> creation (rare: once per cluster and code).
std::mutex g_by_code_mu;
}  // namespace

ClusterStats::ClusterStats(stats::Store& s, const std::string& name)
    : store(s), block(s.block("cluster." + name + ".", clusterSpec())) {
  for (size_t i = 0; i < std::size(kCounters); ++i) this->*kCounters[i].member = &block.counter(i);
  for (size_t i = 0; i < std::size(kGauges); ++i) this->*kGauges[i].member = &block.gauge(i);
  for (size_t i = 0; i < std::size(kHistograms); ++i) {
    this->*kHistograms[i].member = &block.histogram(i);
  }
}

ClusterStats::~ClusterStats() { delete[] by_code_.load(std::memory_order_relaxed); }

void ClusterStats::recordResponseCode(int code) {
  switch (code / 100) {
    case 1:
      upstream_rq_1xx->inc();
      break;
    case 2:
      upstream_rq_2xx->inc();
      break;
    case 3:
      upstream_rq_3xx->inc();
      break;
    case 4:
      upstream_rq_4xx->inc();
      break;
    case 5:
      upstream_rq_5xx->inc();
      break;
  }
  if (code < kMinCode || code >= kMaxCode) return;
  std::atomic<stats::Counter*>* table = by_code_.load(std::memory_order_acquire);
  stats::Counter* ctr = table ? table[code - kMinCode].load(std::memory_order_acquire) : nullptr;
  if (!ctr) {
    std::lock_guard<std::mutex> l(g_by_code_mu);
    table = by_code_.load(std::memory_order_acquire);
    if (!table) {
      table = new std::atomic<stats::Counter*>[kMaxCode - kMinCode];
      for (int i = 0; i < kMaxCode - kMinCode; ++i) table[i].store(nullptr);
      by_code_.store(table, std::memory_order_release);
    }
    ctr = &store.counter(prefix() + "upstream_rq_" + std::to_string(code));
    table[code - kMinCode].store(ctr, std::memory_order_release);
  }
  ctr->inc();
}

ListenerStats::ListenerStats(stats::Store& s, const std::string& name) {
  std::string p = "listener." + name + ".";
  s.registerTagPrefix(p, "envoy_listener_address", name, "listener.");
  downstream_cx_total = &s.counter(p + "downstream_cx_total");
  downstream_cx_active = &s.gauge(p + "downstream_cx_active");
  downstream_cx_destroy = &s.counter(p + "downstream_cx_destroy");
  downstream_cx_length_ms = &s.histogram(p + "downstream_cx_length_ms");
  no_filter_chain_match = &s.counter(p + "no_filter_chain_match");
  ssl_handshake_error = &s.counter(p + "ssl.connection_error");
}

ListenerConnectionStats::ListenerConnectionStats(std::shared_ptr<ListenerStats> stats)
    : stats_(std::move(stats)), start_(std::chrono::steady_clock::now()) {
  if (stats_) stats_->downstream_cx_active->inc();
}

ListenerConnectionStats::~ListenerConnectionStats() {
  if (!stats_) return;
  stats_->downstream_cx_active->dec();
  stats_->downstream_cx_destroy->inc();
  stats_->downstream_cx_length_ms->record(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              std::chrono::steady_clock::now() - start_)
                                              .count());
}

TcpProxyStats::TcpProxyStats(stats::Store& s, const std::string& prefix) {
  std::string p = "tcp." + prefix + ".";
  s.registerTagPrefix(p, "envoy_tcp_prefix", prefix, "tcp.");
  downstream_cx_total = &s.counter(p + "downstream_cx_total");
  downstream_cx_active = &s.gauge(p + "downstream_cx_active");
  downstream_cx_rx_bytes_total = &s.counter(p + "downstream_cx_rx_bytes_total");
  downstream_cx_tx_bytes_total = &s.counter(p + "downstream_cx_tx_bytes_total");
  downstream_cx_no_route = &s.counter(p + "downstream_cx_no_route");
  idle_timeout = &s.counter(p + "idle_timeout");
}

}  // namespace mast::proxy::server
