#pragma once
// Immutable configuration of one http_connection_manager (and of tcp_proxy), built on the main
// thread from the Envoy protos and shared by all workers.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "proxy/filters/filter.h"

namespace mast::router {
class RouteTable;
}
namespace mast::accesslog {
class AccessLogger;
}

namespace mast::proxy::server {

struct HcmStats;

// A route configuration delivered by RDS, as seen by each worker. Entry i is read and replaced
// only on worker i (the server posts new tables), so the request path takes no lock. Null until
// the first RouteConfiguration arrives (requests then get 404 NR, as Envoy's warming-less path).
struct RdsSlot {
  std::string name;
  std::vector<std::shared_ptr<const router::RouteTable>> per_worker;
};

struct HcmConfig {
  enum class Codec { Auto, Http1, Http2 };
  std::string stat_prefix;
  Codec codec = Codec::Auto;
  std::shared_ptr<const router::RouteTable> routes;  // inline route_config
  std::shared_ptr<RdsSlot> rds;                      // or RDS
  // HTTP filters before the router, with the names used for typed_per_filter_config lookup.
  std::vector<std::pair<std::string, std::shared_ptr<const filters::FilterFactory>>> filters;
  std::vector<std::shared_ptr<const accesslog::AccessLogger>> access_logs;
  std::string server_name = "envoy";
  bool server_header_pass_through = false;
  bool generate_request_id = true;
  bool use_remote_address = false;
  uint32_t xff_num_trusted_hops = 0;
  bool skip_xff_append = false;
  std::string via;
  std::chrono::milliseconds stream_idle_timeout{300000};
  std::chrono::milliseconds request_timeout{0};
  std::chrono::milliseconds idle_timeout{3600 * 1000};
  std::chrono::milliseconds drain_timeout{5000};
  uint32_t max_request_headers_kb = 60;
  bool accept_http_10 = false;  // http_protocol_options.accept_http_10
  // upgrade_configs: lower-case upgrade type ("websocket", "connect") → enabled.
  std::vector<std::pair<std::string, bool>> upgrades;
  uint32_t max_requests_per_connection = 0;
  bool normalize_path = false;
  bool merge_slashes = false;
  bool suppress_envoy_headers = false;  // router config
  std::shared_ptr<HcmStats> stats;      // http.<stat_prefix>.*
};

}  // namespace mast::proxy::server
