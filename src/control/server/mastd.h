#pragma once
// mastd: the control plane process. Reads Istio resources from a config directory (watched),
// keeps the registry/model, translates it into xDS per connected proxy and serves it over ADS;
// exposes the HTTP API (apply/get/delete), debug views (syncz, config errors, config dump) and
// Prometheus metrics.
//
// Thread contract: configuration changes arrive on the watcher thread or the HTTP thread and
// only trigger the debouncer; pushes are computed on the debouncer thread (one at a time) from an
// immutable model; a newly connected proxy gets its snapshot on the gRPC callback thread before
// anything is sent to it. Shared state (the model, the connected proxies) is guarded by mu_; the
// translation itself runs without the lock on immutable inputs.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/result.h"
#include "control/config/mesh_config.h"
#include "control/config/store.h"
#include "control/server/convergence.h"
#include "control/server/http_server.h"
#include "control/xds/ads_server.h"
#include "control/xds/debouncer.h"
#include "control/xds/snapshot.h"

namespace mast::control::config {
class DirectoryWatcher;
}
namespace mast::control::model {
class MeshModel;
}

namespace mast::control::server {

struct MastdOptions {
  std::string config_dir;
  std::string mesh_config_file;  // optional
  std::string listen_address = "127.0.0.1";
  int xds_port = 15010;
  int http_port = 15014;
  xds::DebounceOptions debounce;
  // How long a WorkloadGroup-registered workload outlives its proxy's disconnect.
  std::chrono::milliseconds auto_registration_grace{10000};
};

// The translation seam: everything one proxy should see, computed from immutable inputs.
class Generator {
 public:
  virtual ~Generator() = default;
  // Rebuilds the model from a config snapshot (called after each debounced burst).
  virtual void update(std::shared_ptr<const config::ConfigSnapshot> snapshot,
                      const config::MeshConfig& mesh,
                      const std::vector<xds::ProxyInfo>& auto_registered) = 0;
  // The xDS resources for one proxy (pure given the last update()).
  virtual xds::Snapshot generate(const xds::ProxyInfo& proxy) = 0;
  // The model the last update() built, when the generator has one: per-resource status
  // (which proxies need a resource) and /debug/registryz read it. Null = not available.
  virtual std::shared_ptr<const model::MeshModel> model() const { return nullptr; }
  // How many per-share-key translations the last update() kept from the model before (an
  // endpoint-only change keeps those of proxies that do not import the services concerned).
  virtual size_t reusedSharedParts() const { return 0; }
  // How many per-share-key translations the last update() rebuilt only in part (the rest taken
  // from the model before); counted as they are made, so read it after the proxies' generate.
  virtual size_t patchedSharedParts() const { return 0; }
  // True when generate(proxy) would give what it gave under the update() before the last one,
  // so a proxy's current snapshot can stay as it is. false = unknown.
  virtual bool sameAsBefore(const xds::ProxyInfo&) const { return false; }
  // What the proxy should hold now, given `current`: the snapshot it got under the update()
  // before the last one (nullptr: none). Returns `current` itself when the content is the same
  // (its streams need not wake). A generator that knows what the last update() changed may
  // reuse parts of `current` instead of translating them again; the result must equal
  // generate(proxy) in content.
  virtual std::shared_ptr<const xds::Snapshot> generateFrom(
      const xds::ProxyInfo& proxy, std::shared_ptr<const xds::Snapshot> current);
};

class Mastd {
 public:
  Mastd(MastdOptions options, std::unique_ptr<Generator> generator);
  ~Mastd();

  // Loads the config directory and the mesh config, starts the watcher, the ADS server and the
  // HTTP server. Initial config errors are logged, not fatal (the valid resources serve).
  Status start();
  void stop();
  int xdsPort() const { return xds_port_; }
  int httpPort() const { return http_port_; }

  // HTTP API (the HTTP server thread).
  HttpResponse handle(const HttpRequest& req);

 private:
  void onConfigChanged();
  void pushAll(const std::set<std::string>& keys);
  // The snapshot `proxy` should hold under the current model: `current` itself when the proxy
  // would be sent nothing new (its streams then need not wake), else a new one. Recorded for
  // convergence either way. Under mu_.
  std::shared_ptr<const xds::Snapshot> snapshotFor(const xds::ProxyInfo& proxy,
                                                   std::shared_ptr<const xds::Snapshot> current);
  // generator_->update() from the store's current snapshot (mu_ held).
  void updateModelLocked(const std::vector<xds::ProxyInfo>& auto_registered);
  Status onProxyConnected(const xds::ProxyInfo& proxy);
  void onProxyDisconnected(const std::string& node_id, uint64_t stream_id);
  void runExpiry();

  HttpResponse apply(const HttpRequest& req);
  HttpResponse get(const HttpRequest& req);
  HttpResponse remove(const HttpRequest& req);
  HttpResponse syncz();
  HttpResponse adsz();
  HttpResponse registryz();
  HttpResponse configErrors();
  HttpResponse configDump(const HttpRequest& req);
  HttpResponse metrics();
  HttpResponse analyzeRequest(const HttpRequest& req);

  MastdOptions options_;
  std::unique_ptr<Generator> generator_;
  config::MeshConfig mesh_;
  config::ConfigStore store_;
  std::unique_ptr<config::DirectoryWatcher> watcher_;
  xds::SnapshotCache cache_;
  std::unique_ptr<xds::XdsServer> xds_;
  std::unique_ptr<xds::Debouncer> debouncer_;
  std::unique_ptr<HttpServer> http_;
  ConvergenceTracker convergence_;
  int xds_port_ = 0;
  int http_port_ = 0;

  // Held from generating snapshots until they are in the cache (pushAll, onProxyConnected), so
  // that a snapshot of an older model never lands after one of a newer model. Taken before mu_.
  std::mutex publish_mu_;
  std::mutex mu_;                                  // guards the maps below and generator_ calls
  std::map<std::string, xds::ProxyInfo> proxies_;  // connected, by node id
  std::map<std::string, uint64_t> streams_;        // node id → open stream count
  std::map<std::string, xds::ProxyInfo> auto_registered_;  // WorkloadGroup members
  std::map<std::string, std::chrono::steady_clock::time_point> auto_expiry_;
  std::condition_variable expiry_cv_;  // with mu_: auto_expiry_ changed or stopping
  std::thread expiry_thread_;
  bool stopping_ = false;
  // glibc keeps what gRPC's threads free in per-thread arenas (about half of mastd's heap after
  // 2,000 proxies connected): once xDS work (pushes, connects, ACKs) has been quiet for
  // five seconds after proxies connected or disconnected, runTrim() gives free pages back
  // (malloc_trim). Not after pushes alone: the next push would fault the pages in again.
  // noteXdsActivity() is lock-free; `connections` = proxies came or went.
  void noteXdsActivity(bool connections = false);
  void runTrim();
  std::atomic<int64_t> last_xds_activity_{0};  // steady_clock ns
  std::atomic<bool> trim_pending_{false};
  std::mutex trim_mu_;
  std::condition_variable trim_cv_;  // with trim_mu_: stopping
  bool trim_stop_ = false;
  std::thread trim_thread_;
  uint64_t model_version_ = 0;  // config version the generator's model was built from (mu_)
  std::shared_ptr<const DependencyResolver> dependencies_;  // of that model (mu_)
  std::shared_ptr<const model::MeshModel> model_;           // the generator's model (mu_)
  mutable std::mutex push_time_mu_;
  Histogram push_time_;  // pilot_xds_push_time: one debounced push to every proxy
  std::atomic<uint64_t> pushes_{0};
  std::atomic<uint64_t> push_rounds_{0};
  std::atomic<uint64_t> model_builds_{0};
  std::atomic<uint64_t> config_version_{0};
  std::chrono::steady_clock::time_point last_push_{};
  std::chrono::microseconds last_push_duration_{0};
};

}  // namespace mast::control::server
