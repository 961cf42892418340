#pragma once
// The terminal HTTP filter: picks the cluster and host, sends the request upstream through the
// worker's connection pool, applies timeouts, retries with back-off, mirrors, and turns upstream
// failures into Envoy's local replies and response flags.
#include <asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/deadline_queue.h"
#include "proxy/filters/filter.h"
#include "proxy/server/upstream_stream.h"

namespace mast::router {
class RouteEntry;
struct WeightedCluster;
struct GeneratedCookie;
}  // namespace mast::router
namespace mast::upstream {
struct Host;
}

namespace mast::proxy::server {

class ActiveStream;
class WorkerCluster;
class PoolStream;
struct UpstreamHostRef;

class RouterFilter final : public filters::HttpFilter, public UpstreamCallbacks {
 public:
  explicit RouterFilter(ActiveStream& stream);
  ~RouterFilter() override;

  filters::FilterStatus decodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  filters::FilterStatus decodeData(std::string& data, bool end_stream) override;
  void decodeTrailers(http::HeaderMap&& trailers);
  void onDestroy() override;
  // A local reply (from any filter) is being sent: stop upstream work.
  void onLocalReply();

  // UpstreamCallbacks
  void onUpstreamConnected(const std::string& local_address) override;
  void onUpstreamHeaders(http::HeaderMap&& headers, bool end_stream) override;
  void onUpstreamData(std::string_view data, bool end_stream) override;
  void onUpstreamTrailers(http::HeaderMap&& trailers) override;
  void onUpstreamReset(ResetReason reason, std::string_view details) override;
  void onUpstreamWatermark(bool above) override;
  // The downstream cannot take the response as fast (its connection's write buffer or, HTTP/2, the
  // stream's unsent bytes crossed a watermark): pause or resume reading the upstream response.
  void onDownstreamWatermark(bool above);

 private:
  void startAttempt();
  void onRequestComplete();
  bool maybeRetry(bool reset, ResetReason reason, int status, const http::HeaderMap* headers);
  void failUpstream(ResetReason reason, std::string_view details);
  void onGlobalTimeout();
  void onPerTryTimeout();
  void cleanupAttempt();
  void releaseHost();
  void finishUpstream();
  void startMirrors();
  void reportOutlier(int status, bool local_failure);

  ActiveStream& stream_;
  const router::RouteEntry* route_ = nullptr;
  WorkerCluster* cluster_ = nullptr;
  std::string cluster_name_;
  std::string details_;  // last upstream failure detail (retry decisions)
  const router::WeightedCluster* weighted_ = nullptr;
  http::HeaderMap upstream_headers_;       // request as sent upstream (for retries)
  std::string body_;                       // request body kept for retries and mirrors
  bool body_overflowed_ = false;           // over the buffer limit: no more retries
  bool downstream_read_disabled_ = false;  // this attempt's upstream holds the downstream paused
  bool request_end_ = false;
  std::optional<http::HeaderMap> trailers_;
  std::unique_ptr<PoolStream> upstream_;
  std::shared_ptr<const upstream::Host> host_;  // the current attempt's host
  std::string host_label_;
  bool host_active_ = false;  // host_->active_requests counts this attempt
  bool request_acquired_ = false;
  bool response_started_ = false;
  bool upstream_response_complete_ = false;
  bool done_ = false;
  bool global_armed_ = false;
  uint32_t attempts_ = 0;
  uint32_t retries_left_ = 0;
  std::optional<uint64_t> hash_;
  std::vector<router::GeneratedCookie> set_cookies_;  // from cookie hash policies with a ttl
  net::Deadline global_deadline_;  // route timeout, on the worker's DeadlineQueue
  net::Deadline try_deadline_;     // per_try_timeout
  std::unique_ptr<asio::steady_timer> backoff_timer_;
  std::chrono::steady_clock::time_point attempt_start_;
  std::chrono::steady_clock::time_point request_start_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace mast::proxy::server
