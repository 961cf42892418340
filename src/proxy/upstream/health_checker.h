#pragma once
// Active health checking (HTTP GET or TCP connect) of one cluster's hosts, run on the main
// thread's loop. New hosts start unhealthy until their first check passes (Envoy). Health flips
// only after healthy_threshold / unhealthy_threshold consecutive results; each flip calls
// `on_change` so the owner can publish new snapshots.
#include <asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/upstream/upstream.h"

namespace mast::upstream {

class HealthChecker {
 public:
  HealthChecker(asio::io_context& loop, HealthCheckConfig cfg, std::string cluster_name,
                std::function<void()> on_change);
  ~HealthChecker();
  void setHosts(const HostList& hosts);
  void stop();
  uint64_t attempts() const { return attempts_; }
  // Called after every check with its outcome (stats: health_check.attempt/success/failure).
  void setOnCheck(std::function<void(bool ok)> f) { on_check_ = std::move(f); }
  uint64_t failures() const { return failures_; }

  class Session;

 private:
  friend class Session;
  void onResult(Host& h, bool ok);

  asio::io_context& loop_;
  HealthCheckConfig cfg_;
  std::string cluster_name_;
  std::function<void()> on_change_;
  std::function<void(bool)> on_check_;
  std::vector<std::shared_ptr<Session>> sessions_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  uint64_t attempts_ = 0;
  uint64_t failures_ = 0;
};

}  // namespace mast::upstream
