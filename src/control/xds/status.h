#pragma once
// What `mastctl proxy-status` shows: per connected proxy stream, per type URL, what was sent,
// what the proxy acknowledged or rejected. Plain values, copied out of the server under its locks.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "control/xds/proxy_info.h"

namespace mast::control::xds {

enum class SyncState {
  kNotSent,  // subscribed (or not), nothing sent yet for this type
  kStale,    // a response was sent and is not acknowledged yet
  kSynced,   // the last response sent was ACKed
  kError,    // the last response sent was NACKed (error_message says why)
};

std::string_view syncStateName(SyncState state);  // "NOT SENT", "STALE", "SYNCED", "ERROR"

struct TypeStatus {
  std::string type_url;
  SyncState state = SyncState::kNotSent;
  std::string sent_version;   // version_info (SotW) / system_version_info (delta) last sent
  std::string sent_nonce;     // nonce of the last response sent
  std::string acked_version;  // version of the last ACKed response
  std::string acked_nonce;
  std::string nacked_version;  // version the proxy rejected last (kept until a later ACK)
  std::string error_message;   // the proxy's error_detail.message of that NACK
  size_t subscribed = 0;       // explicit resource names subscribed
  std::vector<std::string> subscribed_names;  // only when status(with_names = true)
  bool wildcard = false;
  size_t resources_sent = 0;  // resources in the last response
  uint64_t pushes = 0;        // responses sent on this stream for this type
  uint64_t nacks = 0;
};

struct ProxyStatus {
  ProxyInfo proxy;
  uint64_t stream_id = 0;
  bool delta = false;  // DeltaAggregatedResources, else StreamAggregatedResources
  std::string peer;    // "ipv4:127.0.0.1:54321"
  std::chrono::system_clock::time_point connected_at;
  std::map<std::string, TypeStatus> types;  // by type URL
};

struct Metrics {
  uint64_t connected_proxies = 0;  // gauge: distinct node ids with at least one open stream
  uint64_t connected_streams = 0;  // gauge: streams with a known node
  uint64_t streams_total = 0;      // counter: streams that identified a node
  uint64_t streams_rejected = 0;   // counter: missing node / onProxyConnected refused
  uint64_t pushes_total = 0;
  uint64_t acks_total = 0;
  uint64_t nacks_total = 0;
  std::map<std::string, uint64_t> pushes_by_type;  // by type URL
  std::map<std::string, uint64_t> nacks_by_type;
};

// A text table like `istioctl proxy-status`: one row per stream, one column per type
// (CDS LDS EDS RDS, plus SDS/others when any stream has them). A cell is the state, with the
// version sent when there is one ("SYNCED v3", "STALE v4", "ERROR v4", "NOT SENT"); a "-" when
// the proxy never asked for the type. NACK messages follow the table, one line each.
std::string formatStatusTable(const std::vector<ProxyStatus>& status);

}  // namespace mast::control::xds
