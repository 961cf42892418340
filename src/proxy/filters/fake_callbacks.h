#pragma once
// Test-only FilterCallbacks. This fake is the one mock in these tests, and only because the seam
// cannot be reached otherwise from this module: the real implementation (ActiveStream) lives in
// the server, which depends on this module. It records what a filter asks of the stream (local
// replies, continueDecoding) and runs local replies through the filter's encodeHeaders, as the
// connection manager does. Timers run on a real asio::io_context owned by the test.
#include <asio/io_context.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "proxy/filters/filter.h"

namespace mast::proxy::filters::testing {

class FakeCallbacks : public FilterCallbacks {
 public:
  struct LocalReply {
    int status = 0;
    std::string body;
    uint32_t flags = 0;
    std::string details;
    http::HeaderMap headers;  // after modify_headers and the filter's encodeHeaders
  };

  explicit FakeCallbacks(asio::io_context& loop) : loop_(loop) {}

  // The filter under test: local replies are encoded through it.
  void setFilter(HttpFilter* f) { filter_ = f; }

  void continueDecoding() override { ++continued; }
  void sendLocalReply(int status, std::string_view body, uint32_t response_flags,
                      std::string_view details,
                      const std::function<void(http::HeaderMap&)>& modify_headers) override {
    LocalReply r;
    r.status = status;
    r.body = std::string(body);
    r.flags = response_flags;
    r.details = std::string(details);
    info.response_flags |= response_flags;
    r.headers.add(":status", std::to_string(status));
    if (modify_headers) modify_headers(r.headers);
    if (filter_) filter_->encodeHeaders(r.headers, body.empty());
    reply = std::move(r);
  }
  const void* perFilterConfig(std::string_view filter_name) const override {
    auto it = per_filter.find(std::string(filter_name));
    return it == per_filter.end() ? nullptr : it->second.get();
  }
  http::StreamInfo& streamInfo() override { return info; }
  asio::io_context& eventLoop() override { return loop_; }
  // Deterministic: the queued values first, then `default_random`.
  uint64_t random() override {
    if (randoms.empty()) return default_random;
    uint64_t v = randoms.front();
    randoms.pop_front();
    return v;
  }
  const http::HeaderMap& requestHeaders() const override { return request_headers; }

  int continued = 0;
  std::optional<LocalReply> reply;
  http::StreamInfo info;
  http::HeaderMap request_headers;
  std::map<std::string, std::shared_ptr<const void>> per_filter;
  std::deque<uint64_t> randoms;
  uint64_t default_random = 0;

 private:
  asio::io_context& loop_;
  HttpFilter* filter_ = nullptr;
};

}  // namespace mast::proxy::filters::testing
