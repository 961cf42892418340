#pragma once
// mastctl's client for mastd's HTTP API (blocking, one request per connection).
#include <chrono>
#include <string>

#include "base/result.h"

namespace mast::cli {

struct ApiResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

// `address` is "host:port" (mastd's --http-port, 127.0.0.1:15014 by default).
Result<ApiResponse> request(const std::string& address, const std::string& method,
                            const std::string& path_and_query, const std::string& body = "",
                            std::chrono::milliseconds timeout = std::chrono::seconds(10));

// GET from a proxy's admin endpoint ("host:port"); errors name the proxy admin, not mastd.
Result<ApiResponse> adminGet(const std::string& address, const std::string& path,
                             std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Percent-encodes a query value.
std::string urlEncode(std::string_view s);

}  // namespace mast::cli
