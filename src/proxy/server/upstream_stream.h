#pragma once
// The router's view of one upstream request: a stream obtained from a per-worker connection pool.
// Everything here lives on one worker's event loop.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http/header_map.h"

namespace mast::proxy::server {

enum class ResetReason {
  ConnectFailure,         // UF
  ConnectionTermination,  // UC: the connection closed before a complete response
  RemoteReset,            // UR: RST_STREAM / reset from upstream
  Overflow,               // UO: circuit breaker
  ProtocolError,          // UPE
  LocalReset,
};
std::string_view resetReasonString(ResetReason r);

// Implemented by the router. Calls arrive on the worker's loop, never re-entrantly from inside
// a send*() call.
class UpstreamCallbacks {
 public:
  virtual ~UpstreamCallbacks() = default;
  virtual void onUpstreamConnected(const std::string& local_address) {}
  virtual void onUpstreamHeaders(http::HeaderMap&& headers, bool end_stream) = 0;
  virtual void onUpstreamData(std::string_view data, bool end_stream) = 0;
  virtual void onUpstreamTrailers(http::HeaderMap&& trailers) = 0;
  virtual void onUpstreamReset(ResetReason reason, std::string_view details) = 0;
  // Flow control: the bytes of this request buffered towards the upstream went above the
  // cluster's per_connection_buffer_limit_bytes (`above`), or drained below half of it. May
  // arrive from inside a send*() call: implementations only flip state here.
  virtual void onUpstreamWatermark(bool above) = 0;
};

// A request in flight upstream. Sends before the connection is ready are buffered.
// Destroying it (or reset()) abandons the request: no more callbacks; an HTTP/1 connection
// carrying it is closed, an HTTP/2 stream is reset.
class UpstreamStream {
 public:
  virtual ~UpstreamStream() = default;
  virtual void sendHeaders(const http::HeaderMap& headers, bool end_stream) = 0;
  virtual void sendData(std::string_view data, bool end_stream) = 0;
  virtual void sendTrailers(const http::HeaderMap& trailers) = 0;
  virtual void reset() = 0;
  // Flow control: stop (true) or resume (false) reading the response, because the downstream
  // cannot take more yet.
  virtual void readDisable(bool disable) = 0;
};
using UpstreamStreamPtr = std::unique_ptr<UpstreamStream>;

}  // namespace mast::proxy::server
