#pragma once
// A small HTTP/1.1 server for mastd's API, debug and metrics endpoints (port 15014).
//
// Thread contract: one thread runs the server's own io_context; the handler is called on it, one
// request at a time per connection. Each connection serves one request and closes (clients are
// mastctl, Prometheus and browsers: cheap reconnects, no keep-alive state to get wrong).
// Request bodies are limited (`max_body_bytes`); a malformed request gets 400 and the close.
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "base/result.h"
#include "net/address.h"

namespace mast::control::server {

struct HttpRequest {
  std::string method;
  std::string path;  // without the query
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string peer;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  explicit HttpServer(Handler handler, size_t max_body_bytes = 8 * 1024 * 1024);
  ~HttpServer();
  // Binds and starts the server thread; returns the bound address.
  Result<net::Endpoint> start(const net::Endpoint& ep);
  void stop();

 private:
  class Connection;
  void accept();

  Handler handler_;
  size_t max_body_bytes_;
  asio::io_context loop_{1};
  asio::ip::tcp::acceptor acceptor_{loop_};
  std::thread thread_;
};

// "a=b&c=d" → map, with %XX and '+' decoded.
std::map<std::string, std::string> parseQuery(std::string_view query);

}  // namespace mast::control::server
