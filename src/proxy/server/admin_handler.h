#pragma once
// The server's side of the admin endpoint (proxy/admin's AdminContext). Main thread only.
#include "proxy/admin/admin_server.h"

namespace mast::proxy::server {

class Server;

class AdminHandler final : public admin::AdminContext {
 public:
  explicit AdminHandler(Server& s) : server_(s) {}
  std::string statsText(const std::string& filter, bool used_only) override;
  std::string statsJson(const std::string& filter, bool used_only) override;
  std::string statsPrometheus(const std::string& filter, bool used_only) override;
  void resetCounters() override;
  std::string clustersText() override;
  nlohmann::json clustersJson() override;
  nlohmann::json configDump(const admin::ConfigDumpQuery& q) override;
  std::string listenersText() override;
  nlohmann::json listenersJson() override;
  nlohmann::json serverInfo() override;
  std::string serverState() override;
  void setHealthCheckFailed(bool failed) override;
  bool healthCheckFailed() override;
  void drainListeners() override;
  void quit() override;
  bool setLogLevel(const std::string& level) override;
  std::string logLevel() override;
  nlohmann::json memory() override;

 private:
  Server& server_;
};

}  // namespace mast::proxy::server
