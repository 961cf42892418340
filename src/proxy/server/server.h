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
#include "proxy/upstream/upstream.h"

namespace envoy::config::bootstrap::v3 {
class Bootstrap;
}
namespace envoy::config::listener::v3 {
class Listener;
}
namespace envoy::config::cluster::v3 {
class Cluster;
}
namespace envoy::config::route::v3 {
class RouteConfiguration;
}
namespace google::protobuf {
class Any;
}
namespace mast::router {
class RouteTable;
}

namespace mast::proxy::xds {
class AdsClient;
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
struct HcmConfig;
struct RdsSlot;
struct PoolSettings;
class AdminHandler;

// One listener as the main thread knows it (static or from LDS).
struct ListenerEntry {
  std::shared_ptr<const ListenerConfig> config;
  std::shared_ptr<ListenerStats> stats;
  net::Endpoint endpoint;  // bound address (port 0 resolved)
  std::vector<std::shared_ptr<ActiveListener>> per_worker;
  bool dynamic = false;
  std::string version_info;
  std::chrono::system_clock::time_point last_updated;
  std::shared_ptr<const envoy::config::listener::v3::Listener> proto;  // dynamic only
  std::string proto_bytes;  // to tell an unchanged resource from an update
};

// A resource received over xDS, kept for /config_dump.
template <class Proto>
struct XdsRecord {
  std::string version_info;
  std::chrono::system_clock::time_point last_updated;
  std::shared_ptr<const Proto> proto;
  std::string proto_bytes;
};

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
  const std::vector<ListenerEntry>& listeners() const { return listeners_; }
  // Static clusters, serialized, in bootstrap order: the bootstrap() proto keeps none of them
  // once they are built (a parsed Cluster costs ~2 KB; /config_dump rebuilds them from these).
  const std::vector<std::string>& staticClusterProtos() const { return static_cluster_protos_; }
  // CDS clusters: `proto` is null, `proto_bytes` holds the cluster (a parsed copy per cluster
  // would cost ~2 KB; /config_dump packs the bytes as they are).
  const std::map<std::string, XdsRecord<envoy::config::cluster::v3::Cluster>>& dynamicClusters()
      const {
    return dynamic_clusters_;
  }
  const std::map<std::string, XdsRecord<envoy::config::route::v3::RouteConfiguration>>&
  dynamicRoutes() const {
    return route_records_;
  }
  const xds::AdsClient* adsClient() const { return ads_.get(); }
  // Posts a cluster's new host list to every worker (main thread).
  void publishHosts(ClusterRuntime& c);
  // EDS endpoints received for `service_name`, if any (main thread).
  const std::vector<upstream::EndpointSpec>* edsEndpoints(const std::string& service_name) const;
  // Applies one xDS response (main thread): OK = ACK, error = NACK with that detail.
  Status applyXds(const std::string& type_url, const std::vector<google::protobuf::Any>& resources,
                  const std::string& version);
  // Drain then exit (SIGTERM, /quitquitquit).
  void shutdown(bool graceful);
  void drainListeners();

 private:
  friend class AdminHandler;
  Status loadConfig();
  Status buildClusters();
  Status buildListeners();
  Result<std::shared_ptr<ListenerConfig>> buildListener(
      const envoy::config::listener::v3::Listener& l, const std::string& path);
  Result<std::shared_ptr<const HcmConfig>> buildHcm(const google::protobuf::Any& any,
                                                    const std::string& path);
  Result<PoolSettings> poolSettingsFor(const upstream::ClusterConfig& c);
  std::shared_ptr<RdsSlot> rdsSlot(const std::string& name);
  // Binds one socket per worker and registers the listener; starts it if workers run.
  Status installListener(ListenerEntry entry);
  void removeListener(size_t index);
  void startListenerOnWorkers(const ListenerEntry& e);
  void installCluster(std::shared_ptr<ClusterRuntime> c);
  Status openListenSockets();
  Status applyClusters(const std::vector<google::protobuf::Any>& resources,
                       const std::string& version);
  Status applyEndpoints(const std::vector<google::protobuf::Any>& resources,
                        const std::string& version);
  Status applyListeners(const std::vector<google::protobuf::Any>& resources,
                        const std::string& version);
  Status applyRoutes(const std::vector<google::protobuf::Any>& resources,
                     const std::string& version);
  void updateEdsSubscriptions();
  void updateRdsSubscriptions();
  Status startXds();
  void maybeGoLive();
  void startWorkers();
  void onClustersReady();
  void startAdmin();
  void updateServerStats();

  ServerOptions opts_;
  asio::io_context main_loop_{1};
  std::unique_ptr<envoy::config::bootstrap::v3::Bootstrap> bootstrap_;
  std::vector<std::string> static_cluster_protos_;
  std::unique_ptr<stats::Store> stats_;
  std::unique_ptr<accesslog::AccessLogManager> access_logs_;
  std::map<std::string, std::shared_ptr<ClusterRuntime>> clusters_;
  std::vector<ListenerEntry> listeners_;
  std::vector<std::unique_ptr<Worker>> workers_;
  bool workers_started_ = false;
  // xDS state (main thread).
  std::unique_ptr<xds::AdsClient> ads_;
  std::map<std::string, XdsRecord<envoy::config::cluster::v3::Cluster>> dynamic_clusters_;
  std::map<std::string, std::shared_ptr<ClusterRuntime>> warming_clusters_;
  std::map<std::string, std::vector<upstream::EndpointSpec>> eds_endpoints_;
  std::map<std::string, XdsRecord<envoy::config::route::v3::RouteConfiguration>> route_records_;
  std::map<std::string, std::shared_ptr<const router::RouteTable>> route_tables_;
  std::map<std::string, std::vector<std::weak_ptr<RdsSlot>>> rds_slots_;
  bool cds_initialized_ = false;
  bool lds_initialized_ = false;
  std::unique_ptr<asio::steady_timer> init_timer_;
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
