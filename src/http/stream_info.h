#pragma once
// Everything known about one HTTP request (or one TCP connection for tcp_proxy) that access logs,
// stats and local replies read. Filled by the connection manager and the router on the owning
// worker; read by access loggers after the stream ends. Not thread-safe.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/header_map.h"

namespace mast::http {

// Envoy's response flags. The short strings and their print order are Envoy's
// (%RESPONSE_FLAGS%: the set flags joined with ',', or "-" when none is set).
enum class ResponseFlag : uint32_t {
  FailedLocalHealthCheck = 1u << 0,          // LH
  NoHealthyUpstream = 1u << 1,               // UH
  UpstreamRequestTimeout = 1u << 2,          // UT
  LocalReset = 1u << 3,                      // LR
  UpstreamRemoteReset = 1u << 4,             // UR
  UpstreamConnectionFailure = 1u << 5,       // UF
  UpstreamConnectionTermination = 1u << 6,   // UC
  UpstreamOverflow = 1u << 7,                // UO
  NoRouteFound = 1u << 8,                    // NR
  DelayInjected = 1u << 9,                   // DI
  FaultInjected = 1u << 10,                  // FI
  RateLimited = 1u << 11,                    // RL
  UnauthorizedExternalService = 1u << 12,    // UAEX
  RateLimitServiceError = 1u << 13,          // RLSE
  DownstreamConnectionTermination = 1u << 14,  // DC
  UpstreamRetryLimitExceeded = 1u << 15,     // URX
  StreamIdleTimeout = 1u << 16,              // SI
  InvalidEnvoyRequestHeaders = 1u << 17,     // IH
  DownstreamProtocolError = 1u << 18,        // DPE
  UpstreamMaxStreamDurationReached = 1u << 19,  // UMSDR
  ResponseFromCacheFilter = 1u << 20,        // RFCF
  NoFilterConfigFound = 1u << 21,            // NFCF
  DurationTimeout = 1u << 22,                // DT
  UpstreamProtocolError = 1u << 23,          // UPE
  NoClusterFound = 1u << 24,                 // NC
  OverloadManager = 1u << 25,                // OM
  DnsResolutionFailed = 1u << 26,            // DF
  DropOverLoad = 1u << 27,                   // DO
};

// "UH,UF" style; "-" when none.
std::string responseFlagsString(uint32_t flags);

struct StreamInfo {
  using SystemTime = std::chrono::system_clock::time_point;
  using MonoTime = std::chrono::steady_clock::time_point;

  SystemTime start_time{};
  MonoTime start_mono{};
  // Offsets from start_mono; unset until the event happens.
  std::optional<std::chrono::nanoseconds> last_downstream_rx_byte;
  std::optional<std::chrono::nanoseconds> first_upstream_tx_byte;
  std::optional<std::chrono::nanoseconds> first_upstream_rx_byte;
  std::optional<std::chrono::nanoseconds> last_upstream_rx_byte;
  std::optional<std::chrono::nanoseconds> first_downstream_tx_byte;
  std::optional<std::chrono::nanoseconds> last_downstream_tx_byte;
  std::optional<std::chrono::nanoseconds> request_complete;  // stream end

  Protocol protocol = Protocol::Http11;
  std::optional<uint32_t> response_code;
  std::string response_code_details;          // e.g. "via_upstream", "route_not_found"
  std::string connection_termination_details;
  uint32_t response_flags = 0;
  void setFlag(ResponseFlag f) { response_flags |= static_cast<uint32_t>(f); }
  bool hasFlag(ResponseFlag f) const { return response_flags & static_cast<uint32_t>(f); }

  uint64_t bytes_received = 0;  // request body bytes
  uint64_t bytes_sent = 0;      // response body bytes

  std::string upstream_host;           // "ip:port" of the chosen endpoint
  std::string upstream_cluster;
  std::string upstream_local_address;
  std::string upstream_transport_failure_reason;
  uint32_t attempt_count = 0;

  std::string downstream_remote_address;  // "ip:port"
  std::string downstream_direct_remote_address;
  std::string downstream_local_address;
  std::string requested_server_name;  // SNI
  std::string route_name;
  std::string virtual_cluster_name;
  std::string filter_chain_name;
  std::string upstream_transport_protocol;
  bool downstream_tls = false;

  // Borrowed, valid while the stream lives (access logs run before the stream is freed).
  const HeaderMap* request_headers = nullptr;
  const HeaderMap* response_headers = nullptr;
  const HeaderMap* response_trailers = nullptr;
};

}  // namespace mast::http
