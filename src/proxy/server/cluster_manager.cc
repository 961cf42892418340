#include "proxy/server/cluster_manager.h"

#include "base/logging.h"
#include "proxy/server/hcm_stats.h"
#include "proxy/server/server.h"
#include "proxy/server/worker.h"
#include "proxy/upstream/health_checker.h"
#include "proxy/upstream/upstream.h"

namespace mast::proxy::server {

using upstream::DiscoveryType;

ClusterRuntime::ClusterRuntime(Server& server, std::shared_ptr<const upstream::ClusterConfig> cfg,
                               std::shared_ptr<ClusterStats> stats, PoolSettings pool_settings)
    : server_(server),
      name_(cfg->name),
      config_(std::move(cfg)),
      stats_(std::move(stats)),
      pool_settings_(std::move(pool_settings)),
      use_downstream_protocol_(config_->protocol == upstream::UpstreamProtocol::UseDownstream),
      resources_(std::make_unique<upstream::ResourceManager>(config_->thresholds)),
      hosts_(std::make_shared<const upstream::HostList>()) {
  if (config_->outlier.enabled) {
    outlier_ = std::make_unique<upstream::OutlierDetector>(config_->outlier, hosts_);
  }
}

ClusterRuntime::~ClusterRuntime() {
  if (health_checker_) health_checker_->stop();
}

bool ClusterRuntime::isOriginalDst() const { return config_->type == DiscoveryType::OriginalDst; }

bool ClusterRuntime::tryAcquireConnection() {
  if (resources_->tryAcquireConnection()) return true;
  stats_->upstream_cx_overflow->inc();
  return false;
}
void ClusterRuntime::onConnectionCreated() {
  stats_->upstream_cx_total->inc();
  stats_->upstream_cx_active->inc();
}
void ClusterRuntime::onConnectionClosed() {
  resources_->releaseConnection();
  stats_->upstream_cx_active->dec();
  stats_->upstream_cx_destroy->inc();
}
bool ClusterRuntime::tryAcquirePending() { return resources_->tryAcquirePending(); }
void ClusterRuntime::releasePending() { resources_->releasePending(); }
void ClusterRuntime::onPendingOverflow() { stats_->upstream_rq_pending_overflow->inc(); }
bool ClusterRuntime::tryAcquireRequest() { return resources_->tryAcquireRequest(); }
void ClusterRuntime::releaseRequest() { resources_->releaseRequest(); }
bool ClusterRuntime::tryAcquireRetry() { return resources_->tryAcquireRetry(); }
void ClusterRuntime::releaseRetry() { resources_->releaseRetry(); }

void ClusterRuntime::reportResult(const upstream::Host& host, int http_status,
                                  bool local_origin_failure) {
  if (!outlier_) return;
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  auto& od = *outlier_;
  uint64_t detected_5xx = od.ejections_detected_consecutive_5xx.load();
  uint64_t enforced_5xx = od.ejections_enforced_consecutive_5xx.load();
  uint64_t detected_gw = od.ejections_detected_consecutive_gateway_failure.load();
  uint64_t enforced_gw = od.ejections_enforced_consecutive_gateway_failure.load();
  uint64_t overflow = od.ejections_overflow.load();
  bool ejected =
      od.reportResult(const_cast<upstream::Host&>(host), http_status, local_origin_failure, rng());
  stats_->outlier_ejections_detected_consecutive_5xx->add(
      od.ejections_detected_consecutive_5xx.load() - detected_5xx);
  stats_->outlier_ejections_consecutive_5xx->add(od.ejections_enforced_consecutive_5xx.load() -
                                                 enforced_5xx);
  stats_->outlier_ejections_detected_consecutive_gateway_failure->add(
      od.ejections_detected_consecutive_gateway_failure.load() - detected_gw);
  stats_->outlier_ejections_enforced_consecutive_gateway_failure->add(
      od.ejections_enforced_consecutive_gateway_failure.load() - enforced_gw);
  stats_->outlier_ejections_overflow->add(od.ejections_overflow.load() - overflow);
  if (ejected) {
    stats_->outlier_ejections_enforced_total->inc();
    stats_->outlier_ejections_active->set(od.ejections_active.load());
    // membership_healthy counts outlier ejections too (Envoy); the main thread recomputes it
    // when the ejection ends.
    if (!host.failed_active_hc.load() && !host.eds_unhealthy.load()) {
      stats_->membership_healthy->dec();
    }
    MAST_LOG(INFO, "cluster {}: ejected host {}", name_, host.label);
  }
}

std::shared_ptr<const upstream::HostList> ClusterRuntime::hosts() const { return hosts_; }

void ClusterRuntime::updateMembershipStats() {
  size_t healthy = 0;
  for (const auto& h : *hosts_) healthy += h->healthy() ? 1 : 0;
  stats_->membership_total->set(static_cast<int64_t>(hosts_->size()));
  stats_->membership_healthy->set(static_cast<int64_t>(healthy));
}

void ClusterRuntime::publishHosts() {
  if (outlier_) outlier_->setHosts(hosts_);
  // New hosts start failed_active_hc: count membership after the checker has seen them.
  if (health_checker_) health_checker_->setHosts(*hosts_);
  updateMembershipStats();
  server_.publishHosts(*this);
}

void ClusterRuntime::initialize(asio::io_context& loop, std::function<void()> on_ready) {
  on_ready_ = std::move(on_ready);
  if (config_->health_check) {
    health_checker_ =
        std::make_unique<upstream::HealthChecker>(loop, *config_->health_check, name_, [this] {
          updateMembershipStats();
          // Workers read health atomically; membership stats are all that changes.
        });
    health_checker_->setOnCheck([this](bool ok) {
      stats_->health_check_attempt->inc();
      (ok ? stats_->health_check_success : stats_->health_check_failure)->inc();
    });
  }
  if (outlier_) {
    outlier_timer_ = std::make_unique<asio::steady_timer>(loop);
    auto tick = std::make_shared<std::function<void()>>();
    *tick = [this, tick] {
      outlier_timer_->expires_after(config_->outlier.interval);
      outlier_timer_->async_wait([this, tick](std::error_code ec) {
        if (ec) return;
        if (outlier_->onInterval(std::chrono::steady_clock::now())) {
          stats_->outlier_ejections_active->set(outlier_->ejections_active.load());
          updateMembershipStats();
        }
        (*tick)();
      });
    };
    (*tick)();
  }
  switch (config_->type) {
    case DiscoveryType::Static: {
      auto list = std::make_shared<upstream::HostList>();
      for (const auto& e : config_->endpoints) {
        auto ep = net::parseEndpoint(e.address, e.port);
        if (!ep) continue;
        auto h = std::make_shared<upstream::Host>(*ep, e.hostname, e.weight, e.priority);
        h->eds_unhealthy = !e.healthy;
        list->push_back(h);
      }
      hosts_ = list;
      publishHosts();
      if (on_ready_) std::exchange(on_ready_, nullptr)();
      return;
    }
    case DiscoveryType::StrictDns:
    case DiscoveryType::LogicalDns:
      resolver_ = std::make_unique<asio::ip::tcp::resolver>(loop);
      dns_timer_ = std::make_unique<asio::steady_timer>(loop);
      resolve(loop, true);
      return;
    case DiscoveryType::Eds:
      if (const auto* eps = server_.edsEndpoints(config_->eds_service_name)) {
        setEndpoints(*eps);
        return;
      }
      // Warming: wait for the ClusterLoadAssignment, at most Envoy's initial_fetch_timeout.
      publishHosts();
      eds_timer_ = std::make_unique<asio::steady_timer>(loop);
      eds_timer_->expires_after(std::chrono::seconds(15));
      eds_timer_->async_wait([this](std::error_code ec) {
        if (ec || !on_ready_) return;
        MAST_LOG(WARN, "cluster {}: no endpoints after 15s; activating it empty", name_);
        std::exchange(on_ready_, nullptr)();
      });
      return;
    default:
      // ORIGINAL_DST has no predefined hosts.
      publishHosts();
      if (on_ready_) std::exchange(on_ready_, nullptr)();
      return;
  }
}

void ClusterRuntime::setEndpoints(const std::vector<upstream::EndpointSpec>& endpoints) {
  std::map<std::string, std::shared_ptr<upstream::Host>> old;
  if (hosts_) {
    for (const auto& h : *hosts_) old[h->label] = h;
  }
  auto list = std::make_shared<upstream::HostList>();
  for (const auto& e : endpoints) {
    auto ep = net::parseEndpoint(e.address, e.port);
    if (!ep) continue;
    std::string label = net::toString(*ep);
    auto it = old.find(label);
    if (it != old.end() && it->second->weight == e.weight && it->second->priority == e.priority) {
      it->second->eds_unhealthy = !e.healthy;
      list->push_back(it->second);
      continue;
    }
    auto h = std::make_shared<upstream::Host>(*ep, e.hostname, e.weight, e.priority);
    h->eds_unhealthy = !e.healthy;
    list->push_back(h);
  }
  hosts_ = list;
  publishHosts();
  if (eds_timer_) eds_timer_->cancel();
  if (on_ready_) std::exchange(on_ready_, nullptr)();
}

void ClusterRuntime::resolve(asio::io_context& loop, bool first) {
  auto remaining = std::make_shared<size_t>(config_->endpoints.size());
  auto results = std::make_shared<upstream::HostList>();
  auto done = [this, &loop, first, results] {
    // Keep existing Host objects (and their health state) for addresses that remain.
    auto next = std::make_shared<upstream::HostList>();
    bool changed = results->size() != hosts_->size();
    for (const auto& r : *results) {
      upstream::HostPtr keep;
      for (const auto& h : *hosts_) {
        if (h->address == r->address) keep = h;
      }
      if (!keep) changed = true;
      next->push_back(keep ? keep : r);
    }
    if (changed || first) {
      hosts_ = next;
      publishHosts();
    }
    if (first && on_ready_) std::exchange(on_ready_, nullptr)();
    dns_timer_->expires_after(config_->dns_refresh_rate);
    dns_timer_->async_wait([this, &loop](std::error_code ec) {
      if (!ec) resolve(loop, false);
    });
  };
  if (config_->endpoints.empty()) {
    done();
    return;
  }
  for (const auto& e : config_->endpoints) {
    auto proto = config_->dns_v4_only ? asio::ip::tcp::v4() : asio::ip::tcp::v6();
    auto handler = [this, e, remaining, results, done](std::error_code ec,
                                                       asio::ip::tcp::resolver::results_type r) {
      if (ec) {
        MAST_LOG(WARN, "cluster {}: DNS resolution of {} failed: {}", name_, e.address,
                 ec.message());
      } else {
        for (const auto& entry : r) {
          auto ep = entry.endpoint();
          results->push_back(std::make_shared<upstream::Host>(
              net::Endpoint(ep.address(), static_cast<uint16_t>(e.port)), e.hostname, e.weight,
              e.priority));
          if (config_->type == DiscoveryType::LogicalDns) break;
        }
      }
      if (--*remaining == 0) done();
    };
    if (config_->dns_v4_only) {
      resolver_->async_resolve(proto, e.address, std::to_string(e.port), handler);
    } else {
      resolver_->async_resolve(e.address, std::to_string(e.port), handler);
    }
  }
}

// === WorkerCluster ===

WorkerCluster::WorkerCluster(Worker& worker, std::shared_ptr<ClusterRuntime> runtime)
    : worker_(worker), runtime_(std::move(runtime)) {}

WorkerCluster::~WorkerCluster() = default;

void WorkerCluster::setHosts(std::shared_ptr<const upstream::HostList> hosts) {
  hosts_ = std::move(hosts);
  // Ring hash and Maglev build their tables here, off the request path. The others are cheap
  // to build and are built on the first pick: most clusters of a large config never see a
  // request on a given worker, and their balancer would only take memory.
  lb_.reset();
  auto policy = runtime_->config().lb_policy;
  if (policy == upstream::LbPolicy::RingHash || policy == upstream::LbPolicy::Maglev) {
    lb_ = upstream::createLoadBalancer(runtime_->config(), hosts_, worker_.random());
  }
  // Drop pools of hosts that left; their connections finish what they carry.
  for (auto* pools : {&pools_, &h2_pools_}) {
    for (auto it = pools->begin(); it != pools->end();) {
      bool present = false;
      for (const auto& h : *hosts_) present |= h->label == it->first;
      if (!present && !runtime_->isOriginalDst()) {
        it->second->drain();
        it = pools->erase(it);
      } else {
        ++it;
      }
    }
  }
}

std::optional<HostChoice> WorkerCluster::chooseHost(
    std::optional<uint64_t> hash, const std::optional<net::Endpoint>& original_dst,
    const upstream::Host* exclude) {
  if (runtime_->isOriginalDst()) {
    if (!original_dst) return std::nullopt;
    HostChoice c;
    c.address = *original_dst;
    c.label = net::toString(*original_dst);
    c.hostname = c.label;
    return c;
  }
  if (!hosts_) return std::nullopt;
  if (!lb_) lb_ = upstream::createLoadBalancer(runtime_->config(), hosts_, worker_.random());
  auto h = lb_->chooseHost(hash, exclude);
  if (!h) return std::nullopt;
  HostChoice c;
  c.address = h->address;
  c.label = h->label;
  c.hostname = h->hostname;
  c.host = std::move(h);
  return c;
}

ConnPool& WorkerCluster::pool(const HostChoice& h, http::Protocol downstream) {
  bool h2 = runtime_->useDownstreamProtocol() && downstream == http::Protocol::Http2;
  auto& p = (h2 ? h2_pools_ : pools_)[h.label];
  if (!p) {
    PoolSettings settings = runtime_->poolSettings();
    if (h2) settings.codec = PoolSettings::Codec::Http2;
    p = std::make_unique<ConnPool>(worker_.loop(), *runtime_, h.address, h.label, settings);
  }
  return *p;
}

void WorkerCluster::shutdown() {
  pools_.clear();
  h2_pools_.clear();
}

void WorkerCluster::drain() {
  for (auto& [label, p] : pools_) p->drain();
  for (auto& [label, p] : h2_pools_) p->drain();
}

bool WorkerCluster::idle() const {
  for (const auto* pools : {&pools_, &h2_pools_}) {
    for (const auto& [label, p] : *pools) {
      if (!p->idle()) return false;
    }
  }
  return true;
}

void WorkerClusters::add(std::shared_ptr<ClusterRuntime> runtime) {
  // The key views the name held by the entry's own runtime: re-key on replacement.
  if (auto it = clusters_.find(runtime->name()); it != clusters_.end()) {
    retire(std::move(it->second));
    clusters_.erase(it);
  }
  auto c = std::make_unique<WorkerCluster>(worker_, std::move(runtime));
  std::string_view name = c->runtime().name();
  clusters_.emplace(name, std::move(c));
}

void WorkerClusters::remove(const std::string& name) {
  auto it = clusters_.find(name);
  if (it == clusters_.end()) return;
  retire(std::move(it->second));
  clusters_.erase(it);
}

void WorkerClusters::retire(std::unique_ptr<WorkerCluster> c) {
  auto now = std::chrono::steady_clock::now();
  // Retired clusters go once idle and old enough that no retry timer can still refer to them.
  std::erase_if(retired_, [now](const auto& r) {
    return now - r.first > std::chrono::seconds(60) && r.second->idle();
  });
  c->drain();
  retired_.emplace_back(now, std::move(c));
}

void WorkerClusters::shutdown() {
  for (auto& [n, c] : clusters_) c->shutdown();
  for (auto& [t, c] : retired_) c->shutdown();
}

}  // namespace mast::proxy::server
