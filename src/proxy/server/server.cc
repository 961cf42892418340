#include "proxy/server/server.h"

#include <malloc.h>
#include <signal.h>

#include <asio/ip/v6_only.hpp>
#include <fstream>
#include <iostream>

#include "base/logging.h"
#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "proxy/access_log/access_log.h"
#include "proxy/admin/admin_server.h"
#include "proxy/config/bootstrap.h"
#include "proxy/server/active_listener.h"
#include "proxy/server/admin_handler.h"
#include "proxy/server/cluster_manager.h"
#include "proxy/server/hcm_stats.h"
#include "proxy/server/worker.h"
#include "proxy/xds/ads_client.h"
#include "stats/store.h"

namespace mast::proxy::server {

Server::Server(ServerOptions opts) : opts_(std::move(opts)) {
  start_time_ = std::chrono::system_clock::now();
}

Server::~Server() {
  if (ads_) ads_->stop();
  for (auto& w : workers_) {
    w->stop();
    w->join();
  }
  workers_.clear();
}

std::string Server::state() const {
  switch (state_.load()) {
    case 0:
      return "PRE_INITIALIZING";
    case 1:
      return "LIVE";
    case 2:
      return "DRAINING";
    case 3:
      return "INITIALIZING";
    default:
      return "INITIALIZING";
  }
}

int Server::run() {
  if (auto s = loadConfig(); !s) {
    // One line: "FILE:LINE: FIELD.PATH: message".
    std::cerr << s.error() << std::endl;
    return 1;
  }
  if (opts_.mode == "validate") {
    std::cout << "configuration '" << opts_.config_path << "' OK" << std::endl;
    return 0;
  }
  if (auto s = openListenSockets(); !s) {
    MAST_LOG(CRITICAL, "{}", s.error());
    std::cerr << s.error() << std::endl;
    return 1;
  }
  startAdmin();
  signals_ = std::make_unique<asio::signal_set>(main_loop_, SIGTERM, SIGINT);
  signals_->async_wait([this](std::error_code ec, int sig) {
    if (ec) return;
    MAST_LOG(INFO, "caught signal {}: draining for {}s", sig, opts_.drain_time.count());
    shutdown(true);
  });
  // Workers start serving once every cluster has its first host list (DNS resolved).
  size_t remaining = clusters_.size();
  auto ready = std::make_shared<size_t>(remaining);
  if (remaining == 0) {
    onClustersReady();
  } else {
    for (auto& [name, c] : clusters_) {
      c->initialize(main_loop_, [this, ready] {
        if (--*ready == 0) onClustersReady();
      });
    }
  }
  stats_timer_ = std::make_unique<asio::steady_timer>(main_loop_);
  updateServerStats();
  main_loop_.run();
  if (ads_) ads_->stop();
  for (auto& w : workers_) {
    w->stop();
  }
  for (auto& w : workers_) w->join();
  if (access_logs_) access_logs_->flushAll();
  MAST_LOG(INFO, "exiting");
  return 0;
}

void Server::onClustersReady() {
  startWorkers();
  if (auto s = startXds(); !s) {
    MAST_LOG(CRITICAL, "{}", s.error());
    shutdown(false);
    return;
  }
  maybeGoLive();
}

void Server::maybeGoLive() {
  if (state_ != 0 && state_ != 3) return;
  if (!workers_started_) return;
  if (ads_) {
    // Envoy's initialization: the first CDS and LDS applied, clusters warmed, routes received.
    bool routes_ready = true;
    for (const auto& [name, slots] : rds_slots_) {
      bool used = false;
      for (const auto& w : slots) used = used || !w.expired();
      if (used && !route_tables_.count(name)) routes_ready = false;
    }
    if (!cds_initialized_ || !lds_initialized_ || !warming_clusters_.empty() || !routes_ready) {
      state_ = 3;
      return;
    }
    if (init_timer_) init_timer_->cancel();
  }
  state_ = 1;
  MAST_LOG(INFO, "server live: {} listener(s), {} cluster(s) on {} worker(s)", listeners_.size(),
           clusters_.size(), workers_.size());
}

void Server::onWorkerThreadStart(uint32_t index) { stats_->registerThread(index); }

void Server::startWorkers() {
  for (size_t i = 0; i < workers_.size(); ++i) {
    for (auto& [name, c] : clusters_) workers_[i]->clusters().add(c);
    for (auto& [name, c] : clusters_) {
      workers_[i]->clusters().get(name)->setHosts(c->hosts());
    }
  }
  for (auto& w : workers_) w->start();
  workers_started_ = true;
  for (const auto& e : listeners_) startListenerOnWorkers(e);
}

void Server::startListenerOnWorkers(const ListenerEntry& e) {
  for (size_t i = 0; i < workers_.size(); ++i) {
    Worker* w = workers_[i].get();
    auto l = e.per_worker[i];
    w->post([w, l] {
      w->listeners().push_back(l);
      l->start();
    });
  }
}

Status Server::openListenSockets() {
  uint32_t n = std::max(1u, opts_.concurrency);
  for (uint32_t i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(i, *this));
  auto entries = std::move(listeners_);
  listeners_.clear();
  for (auto& e : entries) {
    if (auto s = installListener(std::move(e)); !s) return s;
  }
  return {};
}

Status Server::installListener(ListenerEntry e) {
  const auto& cfg = e.config;
  net::Endpoint ep = cfg->address;
  std::vector<asio::ip::tcp::acceptor> acceptors;
  for (size_t i = 0; i < workers_.size(); ++i) {
    asio::ip::tcp::acceptor acc(workers_[i]->loop());
    if (cfg->bind_to_port) {
      std::error_code ec;
      acc.open(ep.protocol(), ec);
      if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec) {
        int one = 1;
        ::setsockopt(acc.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (cfg->transparent) {
          ::setsockopt(acc.native_handle(), SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
        }
        if (cfg->freebind)
          ::setsockopt(acc.native_handle(), SOL_IP, IP_FREEBIND, &one, sizeof(one));
        if (ep.address().is_v6()) acc.set_option(asio::ip::v6_only(false), ec);
        ec.clear();
        acc.bind(ep, ec);
      }
      if (!ec) acc.listen(static_cast<int>(cfg->backlog), ec);
      if (ec) {
        return Error{"cannot bind listener '" + cfg->name + "' to " + net::toString(ep) + ": " +
                     ec.message()};
      }
      // Port 0: every worker's socket shares the port the first one got.
      if (i == 0) ep = acc.local_endpoint(ec);
    }
    acceptors.push_back(std::move(acc));
  }
  std::string stat_name = cfg->address_str;
  for (auto& ch : stat_name) {
    if (ch == ':') ch = '_';
  }
  e.stats = std::make_shared<ListenerStats>(*stats_, stat_name);
  e.endpoint = ep;
  for (size_t i = 0; i < workers_.size(); ++i) {
    e.per_worker.push_back(
        std::make_shared<ActiveListener>(*workers_[i], cfg, e.stats, std::move(acceptors[i])));
  }
  if (workers_started_) startListenerOnWorkers(e);
  listeners_.push_back(std::move(e));
  return {};
}

void Server::removeListener(size_t index) {
  ListenerEntry e = std::move(listeners_[index]);
  listeners_.erase(listeners_.begin() + static_cast<long>(index));
  for (size_t i = 0; i < workers_.size() && i < e.per_worker.size(); ++i) {
    Worker* w = workers_[i].get();
    auto l = e.per_worker[i];
    w->post([w, l] {
      l->stop();
      std::erase(w->listeners(), l);
      w->drainConnectionsOf(l->config());
    });
  }
}

std::shared_ptr<ActiveListener> Server::findListener(Worker& w, const net::Endpoint& ep) {
  std::shared_ptr<ActiveListener> wildcard;
  for (const auto& l : w.listeners()) {
    const auto& bound = l->boundEndpoint();
    if (bound.port() != ep.port()) continue;
    if (bound.address() == ep.address()) return l;
    if (bound.address().is_unspecified() && !wildcard) wildcard = l;
  }
  return wildcard;
}

void Server::stopListenersOn(Worker& w) {
  for (auto& l : w.listeners()) l->stop();
}

void Server::drainListeners() {
  for (auto& w : workers_) w->drain();
}

void Server::shutdown(bool graceful) {
  if (shutting_down_) return;
  shutting_down_ = true;
  state_ = 2;
  if (!graceful) {
    main_loop_.stop();
    return;
  }
  for (auto& w : workers_) w->drain();
  // Finish in-flight requests within the drain time, then close whatever is left and exit.
  auto deadline = std::chrono::steady_clock::now() + opts_.drain_time;
  auto timer = std::make_shared<asio::steady_timer>(main_loop_);
  auto tick = std::make_shared<std::function<void()>>();
  *tick = [this, deadline, timer, tick] {
    size_t live = 0;
    for (auto& w : workers_) live += w->liveConnections();
    if (live == 0 || std::chrono::steady_clock::now() >= deadline) {
      if (live) {
        MAST_LOG(INFO, "drain time over: closing {} connection(s)", live);
        for (auto& w : workers_) w->closeAllConnections();
      }
      main_loop_.stop();
      *tick = nullptr;
      return;
    }
    timer->expires_after(std::chrono::milliseconds(50));
    timer->async_wait([tick](std::error_code ec) {
      if (!ec && *tick) (*tick)();
    });
  };
  (*tick)();
}

void Server::publishHosts(ClusterRuntime& c) {
  auto hosts = c.hosts();
  std::string name = c.name();
  const ClusterRuntime* runtime = &c;
  for (auto& w : workers_) {
    Worker* wp = w.get();
    // Only the worker clusters built from this runtime: a warming replacement publishes its
    // hosts before it is installed, and must not touch the cluster it will replace.
    w->post([wp, name, hosts, runtime] {
      if (auto* wc = wp->clusters().get(name); wc && &wc->runtime() == runtime) {
        wc->setHosts(hosts);
      }
    });
  }
}

void Server::updateServerStats() {
  auto& s = *stats_;
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() -
                                                                 start_time_)
                    .count();
  s.rootScope().gauge("server.uptime").set(uptime);
  s.rootScope().gauge("server.live").set(state_ == 1 ? 1 : 0);
  s.rootScope().gauge("server.state").set(state_ == 1 ? 0 : (state_ == 2 ? 1 : 2));
  s.rootScope().gauge("server.concurrency").set(workers_.size());
  struct mallinfo2 mi = mallinfo2();
  s.rootScope().gauge("server.memory_allocated").set(mi.uordblks + mi.hblkhd);
  s.rootScope().gauge("server.memory_heap_size").set(mi.arena + mi.hblkhd);
  size_t live = 0;
  for (auto& w : workers_) live += w->liveConnections();
  s.rootScope().gauge("server.total_connections").set(live);
  stats_timer_->expires_after(std::chrono::seconds(1));
  stats_timer_->async_wait([this](std::error_code ec) {
    if (!ec) updateServerStats();
  });
}

void Server::startAdmin() {
  if (!bootstrap_->has_admin() || !bootstrap_->admin().has_address()) return;
  const auto& sa = bootstrap_->admin().address().socket_address();
  auto ep = net::parseEndpoint(sa.address(), sa.port_value());
  if (!ep) {
    MAST_LOG(CRITICAL, "admin address: {}", ep.error());
    return;
  }
  admin_handler_ = std::make_unique<AdminHandler>(*this);
  admin_ = std::make_unique<admin::AdminServer>(main_loop_, *admin_handler_);
  auto bound = admin_->listen(*ep);
  if (!bound) {
    MAST_LOG(CRITICAL, "admin: {}", bound.error());
    return;
  }
  MAST_LOG(INFO, "admin address: {}", net::toString(*bound));
  if (!opts_.admin_address_path.empty()) {
    std::string tmp = opts_.admin_address_path + ".tmp";
    {
      std::ofstream out(tmp);
      out << net::toString(*bound) << "\n";
    }
    std::rename(tmp.c_str(), opts_.admin_address_path.c_str());
  }
}

}  // namespace mast::proxy::server
