#pragma once
// The upstream model: typed cluster config (built once from Envoy's Cluster proto), hosts with
// atomic runtime state shared by all workers, per-worker load balancers over immutable host
// snapshots, circuit breakers and outlier detection.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/result.h"
#include "net/address.h"
#include "net/tls.h"

namespace envoy::config::cluster::v3 {
class Cluster;
}
namespace envoy::config::endpoint::v3 {
class ClusterLoadAssignment;
}

namespace mast::upstream {

enum class DiscoveryType { Static, StrictDns, LogicalDns, OriginalDst, Eds };
enum class LbPolicy { RoundRobin, LeastRequest, Random, RingHash, Maglev, ClusterProvided };

struct EndpointSpec {
  std::string address;  // IP literal or DNS name
  uint32_t port = 0;
  uint32_t weight = 1;
  uint32_t priority = 0;
  std::string region, zone, sub_zone;
  std::string hostname;
  bool healthy = true;  // EDS health status (HEALTHY/UNKNOWN → true)
};

struct Thresholds {
  uint32_t max_connections = 1024;
  uint32_t max_pending_requests = 1024;
  uint32_t max_requests = 1024;
  uint32_t max_retries = 3;
};

struct OutlierConfig {
  bool enabled = false;
  uint32_t consecutive_5xx = 5;
  uint32_t consecutive_gateway_failure = 5;
  uint32_t consecutive_local_origin_failure = 5;
  std::chrono::milliseconds interval{10000};
  std::chrono::milliseconds base_ejection_time{30000};
  std::chrono::milliseconds max_ejection_time{300000};
  uint32_t max_ejection_percent = 10;
  uint32_t enforcing_consecutive_5xx = 100;
  uint32_t enforcing_consecutive_gateway_failure = 0;
  uint32_t enforcing_consecutive_local_origin_failure = 100;
  bool split_external_local_origin_errors = false;
};

struct HealthCheckConfig {
  enum class Kind { Http, Tcp };
  Kind kind = Kind::Http;
  std::chrono::milliseconds timeout{1000};
  std::chrono::milliseconds interval{10000};
  std::chrono::milliseconds interval_jitter{0};
  uint32_t unhealthy_threshold = 2;
  uint32_t healthy_threshold = 2;
  std::string path = "/";
  std::string host;
  std::vector<std::pair<uint32_t, uint32_t>> expected_statuses;  // [start, end)
};

// The upstream HTTP protocol (HttpProtocolOptions.upstream_protocol_options).
enum class UpstreamProtocol {
  Http1,          // explicit_http_config.http_protocol_options, or nothing configured
  Http2,          // explicit_http_config.http2_protocol_options (or the legacy field)
  UseDownstream,  // use_downstream_protocol_config: what the downstream request spoke
  Auto,           // auto_config: what TLS ALPN negotiates per connection ("h2" or HTTP/1.1)
};

class ClusterConfig {
 public:
  static Result<std::shared_ptr<const ClusterConfig>> create(
      const envoy::config::cluster::v3::Cluster& proto);

  std::string name;
  DiscoveryType type = DiscoveryType::Static;
  LbPolicy lb_policy = LbPolicy::RoundRobin;
  uint32_t least_request_choice_count = 2;
  uint64_t ring_min_size = 1024;
  uint64_t ring_max_size = 8 * 1024 * 1024;
  uint64_t maglev_table_size = 65537;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds dns_refresh_rate{5000};
  bool dns_v4_only = false;
  uint32_t per_connection_buffer_limit_bytes = 1024 * 1024;
  Thresholds thresholds;
  OutlierConfig outlier;
  // Rare parts behind pointers (null: none): inline they cost ~330 bytes in every cluster.
  std::shared_ptr<const HealthCheckConfig> health_check;
  uint32_t healthy_panic_threshold = 50;
  UpstreamProtocol protocol = UpstreamProtocol::Http1;
  std::chrono::milliseconds idle_timeout{3600 * 1000};
  uint32_t max_requests_per_connection = 0;
  std::shared_ptr<const net::TlsContextConfig> tls;
  std::optional<net::Endpoint> source_address;
  std::vector<EndpointSpec> endpoints;
  bool use_http_header_for_original_dst = false;
  // EDS: the ClusterLoadAssignment name this cluster takes its endpoints from
  // (eds_cluster_config.service_name, or the cluster name).
  std::string eds_service_name;
};

// Endpoints of a ClusterLoadAssignment (a cluster's load_assignment, or an EDS resource).
// `require_ip` rejects DNS names (STATIC and EDS clusters). Errors name the field path.
Result<std::vector<EndpointSpec>> parseLoadAssignment(
    const envoy::config::endpoint::v3::ClusterLoadAssignment& la, bool require_ip);

// One upstream endpoint. Identity fields are immutable; health and load are atomics written by
// the main thread (health checks, outlier timer) and workers (outlier counts, active requests).
struct Host {
  Host(net::Endpoint address, std::string hostname, uint32_t weight, uint32_t priority);
  net::Endpoint address;
  std::string label;  // "ip:port"
  std::string hostname;
  uint32_t weight;
  uint32_t priority;
  std::string region, zone, sub_zone;

  mutable std::atomic<bool> failed_active_hc{false};
  mutable std::atomic<bool> eds_unhealthy{false};
  mutable std::atomic<bool> outlier_ejected{false};
  mutable std::atomic<uint32_t> active_requests{0};
  // Per-host request counters for /clusters (router attempts; relaxed).
  mutable std::atomic<uint64_t> rq_total{0};
  mutable std::atomic<uint64_t> rq_success{0};  // answered below 500
  mutable std::atomic<uint64_t> rq_error{0};    // 5xx, reset, connect failure, timeout
  // Outlier detection state.
  mutable std::atomic<uint32_t> consecutive_5xx{0};
  mutable std::atomic<uint32_t> consecutive_gateway_failure{0};
  mutable std::atomic<uint32_t> consecutive_local_origin_failure{0};
  mutable std::atomic<uint32_t> ejection_count{0};
  mutable std::atomic<int64_t> ejected_until_ns{0};
  // Health-check state (main thread only).
  uint32_t hc_successes = 0;
  uint32_t hc_failures = 0;
  bool hc_checked = false;

  bool healthy() const {
    return !failed_active_hc.load(std::memory_order_relaxed) &&
           !outlier_ejected.load(std::memory_order_relaxed) &&
           !eds_unhealthy.load(std::memory_order_relaxed);
  }
};
using HostPtr = std::shared_ptr<Host>;
using HostList = std::vector<HostPtr>;

// Per-worker. Not thread-safe; built from an immutable host snapshot.
class LoadBalancer {
 public:
  virtual ~LoadBalancer() = default;
  // `hash`: from route hash policies (ring hash / maglev); `exclude`: a host to avoid (retry).
  virtual HostPtr chooseHost(std::optional<uint64_t> hash, const Host* exclude) = 0;
};

std::unique_ptr<LoadBalancer> createLoadBalancer(const ClusterConfig& cfg,
                                                 std::shared_ptr<const HostList> hosts,
                                                 uint64_t seed);

// Circuit breakers for one cluster (DEFAULT priority), shared by all workers.
class ResourceManager {
 public:
  explicit ResourceManager(const Thresholds& t) : t_(t) {}
  bool tryAcquireConnection() { return tryAcquire(connections_, t_.max_connections); }
  void releaseConnection() { connections_.fetch_sub(1, std::memory_order_relaxed); }
  bool tryAcquirePending() { return tryAcquire(pending_, t_.max_pending_requests); }
  void releasePending() { pending_.fetch_sub(1, std::memory_order_relaxed); }
  bool tryAcquireRequest() { return tryAcquire(requests_, t_.max_requests); }
  void releaseRequest() { requests_.fetch_sub(1, std::memory_order_relaxed); }
  bool tryAcquireRetry() { return tryAcquire(retries_, t_.max_retries); }
  void releaseRetry() { retries_.fetch_sub(1, std::memory_order_relaxed); }
  uint32_t connections() const { return connections_.load(std::memory_order_relaxed); }
  uint32_t pending() const { return pending_.load(std::memory_order_relaxed); }
  uint32_t requests() const { return requests_.load(std::memory_order_relaxed); }
  uint32_t retries() const { return retries_.load(std::memory_order_relaxed); }
  const Thresholds& thresholds() const { return t_; }

 private:
  static bool tryAcquire(std::atomic<uint32_t>& c, uint32_t max) {
    uint32_t cur = c.load(std::memory_order_relaxed);
    while (cur < max) {
      if (c.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed)) return true;
    }
    return false;
  }
  Thresholds t_;
  std::atomic<uint32_t> connections_{0}, pending_{0}, requests_{0}, retries_{0};
};

// Consecutive-failure outlier detection (Envoy semantics). reportResult is called by workers;
// onInterval by the main thread's timer.
class OutlierDetector {
 public:
  OutlierDetector(const OutlierConfig& cfg, std::shared_ptr<const HostList> hosts);
  void setHosts(std::shared_ptr<const HostList> hosts);
  // `status` 0 with local_origin = connect failure / reset / timeout.
  // Returns true when this report ejected the host.
  bool reportResult(Host& host, int status, bool local_origin, uint64_t random);
  // Un-ejects hosts whose ejection time is over; returns true if anything changed.
  bool onInterval(std::chrono::steady_clock::time_point now);

  std::atomic<uint64_t> ejections_enforced_total{0};
  std::atomic<uint64_t> ejections_enforced_consecutive_5xx{0};
  std::atomic<uint64_t> ejections_detected_consecutive_5xx{0};
  std::atomic<uint64_t> ejections_enforced_consecutive_gateway_failure{0};
  std::atomic<uint64_t> ejections_detected_consecutive_gateway_failure{0};
  std::atomic<uint64_t> ejections_overflow{0};
  std::atomic<int64_t> ejections_active{0};
  // Test hook: the clock used to stamp ejections.
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };

 private:
  bool tryEject(Host& host, uint32_t enforcing, uint64_t random, std::atomic<uint64_t>& detected,
                std::atomic<uint64_t>& enforced);
  OutlierConfig cfg_;
  std::shared_ptr<const HostList> hosts_;
  std::atomic<size_t> host_count_{0};
};

}  // namespace mast::upstream
