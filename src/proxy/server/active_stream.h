#pragma once
// One HTTP request/response exchange on a downstream connection: connection-manager header
// handling, the filter chain (router last), local replies, stats and access logging.
// Owned by its HttpConnection's codec adapter; lives on one worker.
#include <asio/steady_timer.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/header_map.h"
#include "http/stream_info.h"
#include "net/deadline_queue.h"
#include "proxy/filters/filter.h"
#include "proxy/server/http_connection.h"

namespace mast::router {
class RouteEntry;
}

namespace mast::proxy::server {

// Where a stream's response goes: implemented per codec (HTTP/1 connection, HTTP/2 stream).
class ResponseSink {
 public:
  virtual ~ResponseSink() = default;
  virtual void writeHeaders(const http::HeaderMap& headers, bool end_stream) = 0;
  virtual void writeData(std::string_view data, bool end_stream) = 0;
  virtual void writeTrailers(const http::HeaderMap& trailers) = 0;
  // Abort the response (HTTP/2 RST_STREAM; HTTP/1 closes the connection).
  virtual void resetStream() = 0;
};

class RouterFilter;

class ActiveStream final : public filters::FilterCallbacks {
 public:
  ActiveStream(HttpConnection& conn, ResponseSink& sink, http::Protocol protocol);
  ~ActiveStream() override;

  // From the downstream codec.
  void decodeHeaders(http::HeaderMap&& headers, bool end_stream);
  void decodeData(std::string_view data, bool end_stream);
  void decodeTrailers(http::HeaderMap&& trailers);
  // The downstream went away (connection closed / RST_STREAM) before the response completed.
  void onDownstreamReset(std::string_view details);

  // From the router (and local replies): the response, run through encoder filters.
  void encodeHeaders(http::HeaderMap&& headers, bool end_stream);
  void encodeData(std::string_view data, bool end_stream);
  void encodeTrailers(http::HeaderMap&& trailers);
  // Upstream failed after the response started: abort the downstream stream.
  void resetDownstream(std::string_view details);
  // The connection's write buffer, or (HTTP/2) this stream's response bytes waiting for the
  // client's window, crossed a watermark; counted, since both can be high at once.
  void onDownstreamWatermark(bool above);
  bool aboveDownstreamWatermark() const { return downstream_above_ > 0; }
  // Flow control towards the client: stop (true) or resume reading this request. HTTP/1 pauses
  // the connection; HTTP/2 holds back this stream's window (see
  // HttpConnection::readDisableStream).
  // Counted per holder.
  void readDisable(bool disable);

  // filters::FilterCallbacks
  void continueDecoding() override;
  void sendLocalReply(int status, std::string_view body, uint32_t response_flags,
                      std::string_view details,
                      const std::function<void(http::HeaderMap&)>& modify_headers) override;
  const void* perFilterConfig(std::string_view filter_name) const override;
  http::StreamInfo& streamInfo() override { return info_; }
  asio::io_context& eventLoop() override { return conn_.worker().loop(); }
  uint64_t random() override { return conn_.worker().random(); }
  const http::HeaderMap& requestHeaders() const override { return request_headers_; }

  HttpConnection& connection() { return conn_; }
  const router::RouteEntry* route() const { return route_; }
  http::HeaderMap& mutableRequestHeaders() { return request_headers_; }
  bool responseStarted() const { return response_started_; }
  bool complete() const { return response_complete_; }
  bool requestComplete() const { return request_complete_; }
  // Request body bytes received so far, kept for retries/mirrors while under the buffer limit.
  int32_t stream_id = 0;

 private:
  bool prepareRequest();
  // Upgrade/CONNECT requests: whether upgrade_configs (HCM or route) let this one through.
  bool upgradeAllowed() const;
  void runDecodeFilters(size_t from, bool headers_pending);
  void finish();
  void onIdleTimeout();
  void armIdleTimer();
  void armIdleDeadline(std::chrono::steady_clock::duration after);
  void onRequestComplete();
  void onRequestTimeout();

  HttpConnection& conn_;
  ResponseSink& sink_;
  http::HeaderMap request_headers_;
  http::HeaderMap response_headers_;
  http::HeaderMap response_trailers_;
  http::StreamInfo info_;
  std::shared_ptr<const router::RouteTable> route_table_;
  const router::RouteEntry* route_ = nullptr;
  std::vector<std::pair<const std::string*, std::unique_ptr<filters::HttpFilter>>> filters_;
  RouterFilter* router_ = nullptr;
  // Decode state: index of the filter that stopped iteration; body buffered while stopped.
  size_t stopped_at_ = 0;
  bool stopped_ = false;
  bool headers_passed_ = false;
  std::string buffered_body_;
  bool buffered_end_ = false;
  std::optional<http::HeaderMap> buffered_trailers_;
  // Body buffered while a filter holds the headers went over the buffer limit: the connection
  // stops reading until the filters continue (Envoy's StopIterationAndWatermark).
  bool buffer_read_disabled_ = false;
  uint32_t downstream_above_ = 0;  // onDownstreamWatermark count
  bool request_complete_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;
  bool local_reply_sent_ = false;
  bool finished_ = false;
  bool is_head_ = false;
  bool is_grpc_ = false;
  net::Deadline idle_deadline_;  // on the worker's DeadlineQueue
  // stream_idle_timeout, or the route's idle_timeout once the route is known.
  std::chrono::milliseconds idle_timeout_{0};
  net::Deadline request_deadline_;  // request_timeout
  std::chrono::steady_clock::time_point last_activity_;
};

}  // namespace mast::proxy::server
