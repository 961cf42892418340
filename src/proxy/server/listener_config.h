#pragma once
// Immutable listener configuration (built on the main thread from Envoy's Listener proto) and
// filter-chain selection, a pure function of a connection's properties.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/address.h"
#include "net/tls.h"
#include "proxy/server/hcm_config.h"

namespace mast::proxy::server {

struct TcpProxyStats;

struct TcpProxyConfig {
  std::string stat_prefix;
  // Either one cluster or weighted clusters.
  std::vector<std::pair<std::string, uint32_t>> clusters;
  uint64_t total_weight = 0;
  std::chrono::milliseconds idle_timeout{3600 * 1000};  // Envoy default 1h; 0 = none
  std::vector<std::shared_ptr<const accesslog::AccessLogger>> access_logs;
  std::shared_ptr<TcpProxyStats> stats;
  uint32_t max_connect_attempts = 1;
  // hash_policy source_ip: the downstream address picks the host of a RING_HASH/MAGLEV cluster
  // (the same client address, the same host); other load balancers ignore the hash.
  bool hash_source_ip = false;
};

struct FilterChainMatch {
  std::optional<uint32_t> destination_port;
  std::vector<net::CidrRange> prefix_ranges;
  std::vector<net::CidrRange> source_prefix_ranges;
  std::vector<uint32_t> source_ports;
  std::vector<std::string> server_names;  // exact or "*.suffix"
  std::string transport_protocol;         // "", "tls", "raw_buffer"
  std::vector<std::string> application_protocols;
};

struct FilterChainConfig {
  std::string name;
  FilterChainMatch match;
  std::shared_ptr<const net::TlsContext> tls;  // DownstreamTlsContext, or null
  std::shared_ptr<const HcmConfig> hcm;        // exactly one of hcm / tcp_proxy
  std::shared_ptr<const TcpProxyConfig> tcp_proxy;
};

struct ListenerConfig {
  std::string name;
  net::Endpoint address;
  std::string address_str;
  bool bind_to_port = true;
  bool use_original_dst = false;  // hand connections to the listener owning the original dst
  bool original_dst_filter = false;
  bool tls_inspector = false;
  bool http_inspector = false;
  std::chrono::milliseconds listener_filters_timeout{15000};
  uint32_t per_connection_buffer_limit_bytes = 1024 * 1024;
  bool transparent = false;
  bool freebind = false;
  uint32_t backlog = 1024;
  std::vector<FilterChainConfig> filter_chains;
  std::optional<FilterChainConfig> default_filter_chain;
};

// What filter-chain matching looks at (after listener filters ran).
struct ConnectionProperties {
  net::Endpoint local;  // original destination when restored
  net::Endpoint remote;
  std::string sni;
  std::string transport_protocol;  // "tls" or "raw_buffer"
  std::vector<std::string> application_protocols;
};

// Envoy's order: destination port, destination IP, server name, transport protocol,
// application protocols, source IP, source port; at each step the most specific match wins and
// chains that don't match are dropped. nullptr = no chain (connection closed).
const FilterChainConfig* selectFilterChain(const ListenerConfig& l, const ConnectionProperties& c);

}  // namespace mast::proxy::server
