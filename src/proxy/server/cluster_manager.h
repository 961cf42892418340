#pragma once
// Clusters at run time.
//
// ClusterRuntime: one per cluster, built on the main thread, shared by all workers. Holds the
// typed config, circuit breakers and outlier detector (both atomic), stats, and the current host
// list, which only the main thread replaces (DNS refresh, health changes) by posting a new
// immutable snapshot to every worker.
//
// WorkerCluster: the per-worker view: the host snapshot, a load balancer over it, and the
// connection pools to each host. Touched only by its worker.
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "http/header_map.h"
#include "net/address.h"
#include "proxy/server/conn_pool.h"

namespace mast::upstream {
class ClusterConfig;
struct EndpointSpec;
struct Host;
class LoadBalancer;
class ResourceManager;
class OutlierDetector;
class HealthChecker;
}  // namespace mast::upstream

namespace mast::proxy::server {

struct ClusterStats;
class Worker;
class Server;

// The host chosen for one request/connection.
struct HostChoice {
  std::shared_ptr<const upstream::Host> host;
  net::Endpoint address;
  std::string label;     // "ip:port"
  std::string hostname;  // for auto_host_rewrite
};

class ClusterRuntime {
 public:
  ClusterRuntime(Server& server, std::shared_ptr<const upstream::ClusterConfig> cfg,
                 std::shared_ptr<ClusterStats> stats, PoolSettings pool_settings);
  ~ClusterRuntime();

  const std::string& name() const { return name_; }
  const upstream::ClusterConfig& config() const { return *config_; }
  ClusterStats& stats() { return *stats_; }
  const PoolSettings& poolSettings() const { return pool_settings_; }
  bool isOriginalDst() const;
  // use_downstream_protocol_config: requests pick their pool by their downstream protocol.
  bool useDownstreamProtocol() const { return use_downstream_protocol_; }

  // Circuit breakers (any worker).
  bool tryAcquireConnection();
  void onConnectionCreated();
  void onConnectionClosed();
  bool tryAcquirePending();
  void releasePending();
  void onPendingOverflow();
  bool tryAcquireRequest();
  void releaseRequest();
  bool tryAcquireRetry();
  void releaseRetry();

  // Outlier detection input (any worker).
  void reportResult(const upstream::Host& host, int http_status, bool local_origin_failure);

  // Main thread: resolve DNS / start health checks; `on_ready` runs once the first host list
  // exists (or resolution failed).
  void initialize(asio::io_context& main_loop, std::function<void()> on_ready);
  // The current host list (main thread).
  std::shared_ptr<const std::vector<std::shared_ptr<upstream::Host>>> hosts() const;
  upstream::ResourceManager& resources() { return *resources_; }
  upstream::OutlierDetector* outlier() { return outlier_.get(); }
  // Called (main thread) when hosts or their health changed: workers get a new snapshot.
  void publishHosts();
  // EDS (main thread): a new endpoint set. Hosts that stay keep their health and outlier state.
  // The first call completes initialize().
  void setEndpoints(const std::vector<upstream::EndpointSpec>& endpoints);

 private:
  void resolve(asio::io_context& loop, bool first);
  void updateMembershipStats();

  Server& server_;
  std::string name_;
  std::shared_ptr<const upstream::ClusterConfig> config_;
  std::shared_ptr<ClusterStats> stats_;
  PoolSettings pool_settings_;
  bool use_downstream_protocol_ = false;
  std::unique_ptr<upstream::ResourceManager> resources_;
  std::unique_ptr<upstream::OutlierDetector> outlier_;
  std::unique_ptr<upstream::HealthChecker> health_checker_;
  std::shared_ptr<const std::vector<std::shared_ptr<upstream::Host>>> hosts_;
  std::unique_ptr<asio::ip::tcp::resolver> resolver_;
  std::unique_ptr<asio::steady_timer> dns_timer_;
  std::unique_ptr<asio::steady_timer> outlier_timer_;
  std::unique_ptr<asio::steady_timer> eds_timer_;
  std::function<void()> on_ready_;
};

class WorkerCluster {
 public:
  WorkerCluster(Worker& worker, std::shared_ptr<ClusterRuntime> runtime);
  ~WorkerCluster();
  ClusterRuntime& runtime() { return *runtime_; }
  // nullopt: no healthy host (503 UH). `hash` from route hash policies; `original_dst` for
  // ORIGINAL_DST clusters; `exclude` lets a retry avoid the previous host.
  std::optional<HostChoice> chooseHost(std::optional<uint64_t> hash,
                                       const std::optional<net::Endpoint>& original_dst,
                                       const upstream::Host* exclude);
  // The pool for `h`; `downstream` is the protocol of the request being proxied (clusters with
  // use_downstream_protocol_config keep an HTTP/1 and an HTTP/2 pool per host).
  ConnPool& pool(const HostChoice& h, http::Protocol downstream);
  void setHosts(std::shared_ptr<const std::vector<std::shared_ptr<upstream::Host>>> hosts);
  void shutdown();
  // Closes idle connections; in-flight requests finish on the old pools.
  void drain();
  bool idle() const;

 private:
  Worker& worker_;
  std::shared_ptr<ClusterRuntime> runtime_;
  std::shared_ptr<const std::vector<std::shared_ptr<upstream::Host>>> hosts_;
  std::unique_ptr<upstream::LoadBalancer> lb_;  // built on the first pick (see setHosts)
  std::map<std::string, std::unique_ptr<ConnPool>> pools_;     // by "ip:port"
  std::map<std::string, std::unique_ptr<ConnPool>> h2_pools_;  // use_downstream: HTTP/2 ones
};

// All clusters of one worker.
class WorkerClusters {
 public:
  explicit WorkerClusters(Worker& worker) : worker_(worker) {}
  WorkerCluster* get(std::string_view name) {
    auto it = clusters_.find(name);
    return it == clusters_.end() ? nullptr : it->second.get();
  }
  // Adds or replaces (CDS update) a cluster. A replaced or removed cluster is retired, not
  // destroyed: streams in flight hold pointers to it and its pools until they finish.
  void add(std::shared_ptr<ClusterRuntime> runtime);
  void remove(const std::string& name);
  void shutdown();

 private:
  void retire(std::unique_ptr<WorkerCluster> c);

  Worker& worker_;
  // Keyed by a view of the cluster's name, owned by the WorkerCluster's runtime.
  std::unordered_map<std::string_view, std::unique_ptr<WorkerCluster>> clusters_;
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::unique_ptr<WorkerCluster>>>
      retired_;
};

}  // namespace mast::proxy::server
