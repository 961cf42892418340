#pragma once
// The agent's small HTTP/1.1 pieces: a blocking client (one request per connection, used for the
// proxy's admin port, the application's metrics and `mast-agent wait`) and a thread-per-connection
// server for the status (15020) and health (15021) ports. Both speak "connection: close" and parse
// with the project's HTTP/1 codec (src/http/http1). Traffic on these ports is a probe every few
// seconds and a Prometheus scrape, so a thread per request is simpler than an event loop and lets
// handlers make blocking calls to the proxy's admin port.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "base/result.h"

namespace mast::agent {

struct HttpResponse {
  int status = 0;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

struct HttpRequest {
  std::string method;
  std::string path;   // without the query
  std::string query;  // after '?', may be empty
  std::string body;
};

// One request, "connection: close"; `timeout` covers resolve, connect, write and read.
Result<HttpResponse> httpRequest(const std::string& host, uint16_t port, std::string_view method,
                                 std::string_view target, std::string_view body = {},
                                 std::chrono::milliseconds timeout = std::chrono::seconds(2));

// "http://host[:port][/path]" -> host, port (default 80), target (default "/").
struct Url {
  std::string host;
  uint16_t port = 80;
  std::string target = "/";
};
Result<Url> parseUrl(std::string_view url);

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Thread contract: listen() and start() from one thread; the handler runs on a fresh thread per
// request (at most kMaxConnections at once; more are closed unanswered) and must be thread-safe.
class HttpServer {
 public:
  static constexpr int kMaxConnections = 32;
  HttpServer(std::string name, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens (port 0 picks one). Errors name the address.
  Status listen(const std::string& address, uint16_t port);
  uint16_t port() const { return port_; }
  // Starts accepting on a background thread.
  void start();
  // Stops accepting and waits (bounded) for requests in flight.
  void stop();

 private:
  struct Impl;
  std::string name_;
  HttpHandler handler_;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace mast::agent
