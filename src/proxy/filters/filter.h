#pragma once
// The HTTP filter contract between the connection manager (which owns a stream and runs its
// filter chain) and HTTP filters (fault, local_ratelimit, cors, router, ...).
//
// Thread model: a FilterFactory is built once on the main thread from config and is immutable
// (shared by every worker through std::shared_ptr<const FilterFactory>); any state it shares
// across workers (e.g. a token bucket) must be atomic. An HttpFilter instance belongs to one
// stream on one worker and is destroyed with the stream.
//
// Decoding (request) runs first-to-last, encoding (response) last-to-first. A filter that returns
// StopIteration from decodeHeaders/decodeData holds the stream until it calls
// callbacks.continueDecoding() (e.g. after a timer) or sends a local reply.
#include <asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "http/header_map.h"
#include "http/stream_info.h"

namespace mast::proxy::filters {

enum class FilterStatus { Continue, StopIteration };

class FilterCallbacks {
 public:
  virtual ~FilterCallbacks() = default;
  // Resumes a chain stopped by this filter; runs the following filters with the saved headers
  // and any body buffered meanwhile.
  virtual void continueDecoding() = 0;
  // Answers the request locally (the rest of the decode chain is skipped; encode filters run).
  // `flag` is added to the stream's response flags; `details` becomes %RESPONSE_CODE_DETAILS%.
  // `modify_headers` may add headers (e.g. x-ratelimit-*) to the reply.
  virtual void sendLocalReply(int status, std::string_view body, uint32_t response_flags,
                              std::string_view details,
                              const std::function<void(http::HeaderMap&)>& modify_headers) = 0;
  // The most specific typed_per_filter_config for `filter_name` on the selected route
  // (route > virtual host > route configuration), as built by createPerRouteConfig
  // (registry.h: the pointer is to a RouteFilterConfig whose `kind` names the struct), or nullptr.
  virtual const void* perFilterConfig(std::string_view filter_name) const = 0;
  virtual http::StreamInfo& streamInfo() = 0;
  // The owning worker's event loop, for timers.
  virtual asio::io_context& eventLoop() = 0;
  virtual uint64_t random() = 0;
  // Request headers of this stream (valid for the stream's life).
  virtual const http::HeaderMap& requestHeaders() const = 0;
};

class HttpFilter {
 public:
  virtual ~HttpFilter() = default;
  virtual void setCallbacks(FilterCallbacks& callbacks) { callbacks_ = &callbacks; }
  virtual FilterStatus decodeHeaders(http::HeaderMap& headers, bool end_stream) {
    return FilterStatus::Continue;
  }
  virtual FilterStatus decodeData(std::string& data, bool end_stream) {
    return FilterStatus::Continue;
  }
  // Response headers on their way downstream (also for local replies).
  virtual void encodeHeaders(http::HeaderMap& headers, bool end_stream) {}
  // The stream is ending (completed or reset): cancel timers, release resources.
  virtual void onDestroy() {}

 protected:
  FilterCallbacks* callbacks_ = nullptr;
};

class FilterFactory {
 public:
  virtual ~FilterFactory() = default;
  // Called on the owning worker for every new stream.
  virtual std::unique_ptr<HttpFilter> createFilter() const = 0;
};

}  // namespace mast::proxy::filters
