#pragma once
// Envoy-compatible admin endpoint: an HTTP/1.1 server on the main thread's loop that dispatches
// Envoy's admin paths to an AdminContext implemented by the server. The admin module knows
// nothing of the server's internals.
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"
#include "net/address.h"

namespace mast::proxy::admin {

struct ConfigDumpQuery {
  std::string resource;  // "" = everything
  std::string mask;
  bool include_eds = false;
};

// All calls happen on the admin loop's thread (the main thread).
class AdminContext {
 public:
  virtual ~AdminContext() = default;
  virtual std::string statsText(const std::string& filter, bool used_only) = 0;
  virtual std::string statsJson(const std::string& filter, bool used_only) = 0;
  virtual std::string statsPrometheus(const std::string& filter, bool used_only) = 0;
  virtual void resetCounters() = 0;
  virtual std::string clustersText() = 0;
  virtual nlohmann::json clustersJson() = 0;
  virtual nlohmann::json configDump(const ConfigDumpQuery& q) = 0;
  virtual std::string listenersText() = 0;
  virtual nlohmann::json listenersJson() = 0;
  virtual nlohmann::json serverInfo() = 0;
  virtual std::string serverState() = 0;  // "LIVE", "DRAINING", ...
  virtual void setHealthCheckFailed(bool failed) = 0;
  virtual bool healthCheckFailed() = 0;
  virtual void drainListeners() = 0;
  virtual void quit() = 0;
  virtual bool setLogLevel(const std::string& level) = 0;
  virtual std::string logLevel() = 0;
  virtual nlohmann::json memory() = 0;
};

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=UTF-8";
  std::string body;
};

// Pure request → response dispatch (tested without sockets).
AdminResponse handleAdminRequest(AdminContext& ctx, std::string_view method,
                                 std::string_view path_and_query);

class AdminServer {
 public:
  AdminServer(asio::io_context& loop, AdminContext& ctx);
  ~AdminServer();
  // Binds and starts accepting; returns the bound address (port 0 resolved).
  Result<net::Endpoint> listen(const net::Endpoint& ep);

 private:
  class Connection;
  void accept();
  asio::io_context& loop_;
  AdminContext& ctx_;
  asio::ip::tcp::acceptor acceptor_;
};

}  // namespace mast::proxy::admin
