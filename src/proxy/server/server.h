#pragma once
// The proxy process: loads the bootstrap, builds immutable config, starts workers and listeners,
// the admin endpoint and signal handling, and drains on shutdown.
//
// Thread model: the main thread runs `main_loop_` (config, admin, DNS, health checks, outlier
// timers, signals); each Worker runs its own loop. Config objects are built on the main thread
// and shared read-only (shared_ptr<const T>) with workers.
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "net/address.h"

namespace envoy::config::bootstrap::v3 {
class Bootstrap;
}
namespace mast::stats {
class Store;
}
namespace mast::accesslog {
class AccessLogManager;
}
namespace mast::proxy::admin {
class AdminServer;
}

namespace mast::proxy::server {

class Worker;
class ActiveListener;
class ClusterRuntime;
struct ListenerConfig;
struct ListenerStats;
class AdminHandler;

struct ServerOptions {
  std::string config_path;
  std::string config_yaml;
  uint32_t concurrency = 0;  // 0 = number of cores
  std::string log_level = "info";
  std::chrono::seconds drain_time{5};
  std::string mode = "serve";  // serve | validate
  std::string service_node;
  std::string service_cluster;
  std::string service_zone;
  std::string admin_address_path;
  std::string command_line;
};

class Server {
 public:
  explicit Server(ServerOptions opts);
  ~Server();

  // Loads and validates config; in validate mode prints the result. Exit code.
  int run();

  // Worker hooks.
  void onWorkerThreadStart(uint32_t index);
  void stopListenersOn(Worker& w);
  std::shared_ptr<ActiveListener> findListener(Worker& w, const net::Endpoint& ep);

  stats::Store& statsStore() { return *stats_; }
  asio::io_context& mainLoop() { return main_loop_; }
  std::vector<std::unique_ptr<Worker>>& workers() { return workers_; }
  const envoy::config::bootstrap::v3::Bootstrap& bootstrap() const { return *bootstrap_; }
  const ServerOptions& options() const { return opts_; }
  std::chrono::system_clock::time_point startTime() const { return start_time_; }
  std::string state() const;
  bool healthCheckFailed() const { return hc_failed_; }
  void setHealthCheckFailed(bool f) { hc_failed_ = f; }
  const std::map<std::string, std::shared_ptr<ClusterRuntime>>& clusters() const {
    return clusters_;
  }
  const std::vector<std::shared_ptr<const ListenerConfig>>& listenerConfigs() const {
    return listener_configs_;
  }
  const std::vector<net::Endpoint>& listenerEndpoints() const { return listener_endpoints_; }
  // Posts a cluster's new host list to every worker (main thread).
  void publishHosts(ClusterRuntime& c);
  // Drain then exit (SIGTERM, /quitquitquit).
  void shutdown(bool graceful);
  void drainListeners();

 private:
  friend class AdminHandler;
  Status loadConfig();
  Status buildClusters();
  Status buildListeners();
  Status openListenSockets();
  void startWorkers();
  void onClustersReady();
  void startAdmin();
  void updateServerStats();

  ServerOptions opts_;
  asio::io_context main_loop_{1};
  std::unique_ptr<envoy::config::bootstrap::v3::Bootstrap> bootstrap_;
  std::unique_ptr<stats::Store> stats_;
  std::unique_ptr<accesslog::AccessLogManager> access_logs_;
  std::map<std::string, std::shared_ptr<ClusterRuntime>> clusters_;
  std::vector<std::shared_ptr<const ListenerConfig>> listener_configs_;
  std::vector<std::shared_ptr<ListenerStats>> listener_stats_;
  std::vector<net::Endpoint> listener_endpoints_;  // bound addresses (port 0 resolved)
  // Per worker, per listener (same order as listener_configs_).
  std::vector<std::vector<std::shared_ptr<ActiveListener>>> active_listeners_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<AdminHandler> admin_handler_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::unique_ptr<asio::signal_set> signals_;
  std::unique_ptr<asio::steady_timer> stats_timer_;
  std::chrono::system_clock::time_point start_time_;
  std::atomic<bool> hc_failed_{false};
  std::atomic<int> state_{0};  // 0 initializing, 1 live, 2 draining
  bool shutting_down_ = false;
};

}  // namespace mast::proxy::server
