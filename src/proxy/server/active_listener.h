#pragma once
// A listener on one worker: its accept loop (an SO_REUSEPORT socket of its own), the listener
// filters (original_dst, tls_inspector, http_inspector), filter-chain selection, and the hand-off
// of each accepted connection to the chain's network filter (HCM or tcp_proxy).
#include <asio/ip/tcp.hpp>
#include <memory>

#include "proxy/server/listener_config.h"
#include "proxy/server/worker.h"

namespace mast::proxy::server {

struct ListenerStats;

class ActiveListener : public std::enable_shared_from_this<ActiveListener> {
 public:
  // `socket` is already bound and listening (created by the server on the main thread).
  ActiveListener(Worker& worker, std::shared_ptr<const ListenerConfig> cfg,
                 std::shared_ptr<ListenerStats> stats, asio::ip::tcp::acceptor&& acceptor);
  void start();
  void stop();
  const ListenerConfig& config() const { return *cfg_; }
  std::shared_ptr<const ListenerConfig> configPtr() const { return cfg_; }
  // The address this listener's socket is bound to (port 0 resolved).
  const net::Endpoint& boundEndpoint() const { return bound_; }
  // An LDS update with the same address: new connections use `cfg`; connections accepted under
  // the old config are asked to drain (worker thread).
  void updateConfig(std::shared_ptr<const ListenerConfig> cfg);
  // Runs listener filters and the filter chain for a connection accepted here or handed off by
  // another listener (use_original_dst).
  void onConnection(asio::ip::tcp::socket&& socket, std::optional<net::Endpoint> original_dst);
  ListenerStats& stats() { return *stats_; }
  const std::shared_ptr<ListenerStats>& statsPtr() const { return stats_; }

 private:
  void accept();

  Worker& worker_;
  std::shared_ptr<const ListenerConfig> cfg_;
  std::shared_ptr<ListenerStats> stats_;
  asio::ip::tcp::acceptor acceptor_;
  net::Endpoint bound_;
  bool stopped_ = false;
};

}  // namespace mast::proxy::server
