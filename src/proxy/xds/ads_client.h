#pragma once
// mast-proxy's xDS client: one ADS stream (state of the world) to the control plane.
//
// The stream is a gRPC bidi call spoken directly over HTTP/2 with prior knowledge (h2c, no
// gRPC library): POST /envoy.service.discovery.v3.AggregatedDiscoveryService/
// StreamAggregatedResources on our HTTP/2 codec (src/http/http2), messages framed by
// grpc_frame.h. Flow control is nghttp2's: WINDOW_UPDATEs go out as response bytes are consumed.
//
// Thread contract: everything (connect, reads, writes, subscription state, reconnect timer)
// happens on the owner's main loop; no thread of its own. Each DiscoveryResponse is applied by
// `Handler` on that loop, which returns OK (ACK) or an error (NACK with that error_detail).
// The client never forgets what it applied: when the stream breaks (grpc-status in trailers, a
// reset, a closed connection, a protocol or framing error) it reconnects with jittered
// exponential back-off and re-sends every subscription with the last accepted version; the
// owner keeps serving its last good config while the control plane is away.
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "envoy/config/core/v3/base.pb.h"
#include "google/protobuf/any.pb.h"

namespace mast::proxy::xds {

inline constexpr char kClusterType[] = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
inline constexpr char kEndpointType[] =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
inline constexpr char kListenerType[] = "type.googleapis.com/envoy.config.listener.v3.Listener";
inline constexpr char kRouteType[] = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";

inline constexpr char kAdsPath[] =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";

struct AdsOptions {
  // The ADS server, plaintext HTTP/2: "host:port", "[v6]:port", or the gRPC target forms
  // "dns:///host:port", "ipv4:addr:port", "ipv6:[addr]:port".
  std::string target;
  envoy::config::core::v3::Node node;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{10000};
  std::chrono::milliseconds connect_timeout{5000};  // name resolution + TCP connect
  uint32_t max_message_bytes = 64 * 1024 * 1024;    // a larger response breaks the stream
};

// Host and port of an AdsOptions::target; an error names what is wrong with it.
struct AdsTarget {
  std::string host;  // without brackets
  uint16_t port = 0;
};
Result<AdsTarget> parseAdsTarget(std::string_view target);

// Per type: what the control plane sent and what this proxy did with it.
struct TypeState {
  std::string accepted_version;  // last ACKed version_info
  std::string last_nonce;
  std::string rejected_version;  // last NACKed version_info
  std::string error;             // last NACK error_detail ("" once a later update is accepted)
  std::chrono::system_clock::time_point last_updated{};
  uint64_t updates_accepted = 0;
  uint64_t updates_rejected = 0;
};

class AdsClient {
 public:
  // Applies one response on the main loop. `resources` is the complete set (SotW).
  using Handler = std::function<Status(const std::string& type_url,
                                       const std::vector<google::protobuf::Any>& resources,
                                       const std::string& version_info)>;

  AdsClient(asio::io_context& main_loop, AdsOptions options, Handler handler);
  ~AdsClient();

  // Main thread. Connects (with wildcard CDS and LDS subscriptions); an error only for a target
  // that cannot be parsed. Failures to connect are retried, never returned.
  Status start();
  // Main thread; idempotent. Closes the stream; no callback runs after it.
  void stop();
  // Main thread: replace the resource names subscribed for a named type (EDS, RDS).
  void subscribe(const std::string& type_url, std::set<std::string> names);

  // Main thread. Connected: the current stream has delivered a response.
  bool connected() const { return connected_; }
  const std::map<std::string, TypeState>& state() const { return state_; }
  // Streams that delivered at least one response.
  uint64_t connectCount() const { return connects_; }

 private:
  class Stream;  // one connection attempt and its gRPC stream (ads_client.cc)
  void connect();
  void onStreamUp(Stream& s);
  void onResponse(Stream& s, const std::string& type_url,
                  std::vector<google::protobuf::Any> resources, const std::string& version,
                  const std::string& nonce);
  void onStreamDown(Stream& s, const std::string& reason);
  void sendRequest(Stream& s, const std::string& type_url, const std::string& error_detail);

  asio::io_context& main_loop_;
  AdsOptions options_;
  Handler handler_;
  AdsTarget target_;
  bool stopping_ = false;
  bool connected_ = false;
  uint64_t connects_ = 0;
  std::chrono::milliseconds backoff_;
  std::mt19937_64 rng_;
  asio::steady_timer retry_timer_;
  std::shared_ptr<Stream> stream_;  // the live attempt (connecting or streaming)
  // Expires with this object: a retry-timer completion that was already queued when stop() ran
  // must not touch a destroyed client.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::map<std::string, TypeState> state_;
  std::map<std::string, std::set<std::string>> subscriptions_;
};

}  // namespace mast::proxy::xds
