#include "proxy/server/hcm_stats.h"

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

ClusterStats::ClusterStats(stats::Store& s, const std::string& name)
    : store(s), prefix("cluster." + name + ".") {
  s.registerTagPrefix(prefix, "envoy_cluster_name", name, "cluster.");
  auto c = [&](const char* n) { return &s.counter(prefix + n); };
  auto g = [&](const char* n) { return &s.gauge(prefix + n); };
  upstream_cx_total = c("upstream_cx_total");
  upstream_cx_active = g("upstream_cx_active");
  upstream_cx_connect_fail = c("upstream_cx_connect_fail");
  upstream_cx_overflow = c("upstream_cx_overflow");
  upstream_cx_none_healthy = c("upstream_cx_none_healthy");
  upstream_cx_destroy = c("upstream_cx_destroy");
  upstream_rq_total = c("upstream_rq_total");
  upstream_rq_active = g("upstream_rq_active");
  upstream_rq_completed = c("upstream_rq_completed");
  upstream_rq_pending_overflow = c("upstream_rq_pending_overflow");
  upstream_rq_timeout = c("upstream_rq_timeout");
  upstream_rq_per_try_timeout = c("upstream_rq_per_try_timeout");
  upstream_rq_retry = c("upstream_rq_retry");
  upstream_rq_retry_overflow = c("upstream_rq_retry_overflow");
  upstream_rq_rx_reset = c("upstream_rq_rx_reset");
  upstream_rq_1xx = c("upstream_rq_1xx");
  upstream_rq_2xx = c("upstream_rq_2xx");
  upstream_rq_3xx = c("upstream_rq_3xx");
  upstream_rq_4xx = c("upstream_rq_4xx");
  upstream_rq_5xx = c("upstream_rq_5xx");
  upstream_rq_time = &s.histogram(prefix + "upstream_rq_time");
  membership_total = g("membership_total");
  membership_healthy = g("membership_healthy");
  outlier_ejections_enforced_total = c("outlier_detection.ejections_enforced_total");
  outlier_ejections_active = g("outlier_detection.ejections_active");
  outlier_ejections_consecutive_5xx = c("outlier_detection.ejections_enforced_consecutive_5xx");
  outlier_ejections_detected_consecutive_5xx =
      c("outlier_detection.ejections_detected_consecutive_5xx");
  outlier_ejections_enforced_consecutive_gateway_failure =
      c("outlier_detection.ejections_enforced_consecutive_gateway_failure");
  outlier_ejections_detected_consecutive_gateway_failure =
      c("outlier_detection.ejections_detected_consecutive_gateway_failure");
  outlier_ejections_overflow = c("outlier_detection.ejections_overflow");
  health_check_attempt = c("health_check.attempt");
  health_check_failure = c("health_check.failure");
  health_check_success = c("health_check.success");
}

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
  if (code < 100 || code >= 600) return;
  stats::Counter* ctr = by_code[code].load(std::memory_order_acquire);
  if (!ctr) {
    std::lock_guard<std::mutex> l(by_code_mu);
    ctr = &store.counter(prefix + "upstream_rq_" + std::to_string(code));
    by_code[code].store(ctr, std::memory_order_release);
  }
  ctr->inc();
}

ListenerStats::ListenerStats(stats::Store& s, const std::string& name) {
  std::string p = "listener." + name + ".";
  s.registerTagPrefix(p, "envoy_listener_address", name, "listener.");
  downstream_cx_total = &s.counter(p + "downstream_cx_total");
  no_filter_chain_match = &s.counter(p + "no_filter_chain_match");
  ssl_handshake_error = &s.counter(p + "ssl.connection_error");
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
