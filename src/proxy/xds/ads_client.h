#pragma once
// mast-proxy's xDS client: one ADS stream (state of the world) to the control plane.
//
// Thread contract: a dedicated stream thread owns the gRPC call (connect, read, reconnect with
// jittered exponential back-off). Every DiscoveryResponse is posted to the owner's main loop,
// where `Handler` applies it and returns OK (ACK) or an error (NACK with that error_detail);
// the reply is written from the main loop (gRPC allows one writer next to one reader).
// subscribe() is main-thread only. The client never forgets what it applied: after a reconnect
// it re-sends every subscription with the last accepted version, and the owner keeps serving
// its last good config while the control plane is away.
#include <asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
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

struct AdsOptions {
  std::string target;  // "host:port" of the ADS server (plaintext gRPC)
  envoy::config::core::v3::Node node;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{10000};
};

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

  // Starts the stream thread with wildcard CDS and LDS subscriptions.
  void start();
  void stop();
  // Main thread: replace the resource names subscribed for a named type (EDS, RDS).
  void subscribe(const std::string& type_url, std::set<std::string> names);

  bool connected() const { return connected_.load(); }
  // Main thread.
  const std::map<std::string, TypeState>& state() const { return state_; }
  uint64_t connectCount() const { return connects_.load(); }

 private:
  struct Stream;
  void run();
  void onResponse(std::shared_ptr<Stream> stream, const std::string& type_url,
                  std::vector<google::protobuf::Any> resources, const std::string& version,
                  const std::string& nonce);
  void sendRequest(Stream& s, const std::string& type_url, const std::string& error_detail);

  asio::io_context& main_loop_;
  AdsOptions options_;
  Handler handler_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> connects_{0};
  // Main-thread state.
  std::map<std::string, TypeState> state_;
  std::map<std::string, std::set<std::string>> subscriptions_;
  // The live stream (main thread writes through it; the stream thread reads).
  std::mutex stream_mu_;
  std::shared_ptr<Stream> stream_;
  std::condition_variable wake_;
  std::mutex wake_mu_;
};

}  // namespace mast::proxy::xds
