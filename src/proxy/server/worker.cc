#include "proxy/server/worker.h"

#include <asio/post.hpp>

#include "base/logging.h"
#include "net/dispatch.h"
#include "proxy/server/active_listener.h"
#include "proxy/server/active_stream.h"
#include "proxy/server/cluster_manager.h"
#include "proxy/server/server.h"

namespace mast::proxy::server {

Worker::Worker(uint32_t index, Server& server)
    : index_(index),
      server_(server),
      clusters_(std::make_unique<WorkerClusters>(*this)),
      rng_(std::random_device{}() ^ (uint64_t(index) << 32)) {}

Worker::~Worker() { join(); }

void Worker::start() {
  thread_ = std::thread([this] {
    server_.onWorkerThreadStart(index_);
    auto guard = asio::make_work_guard(loop_);
    std::string why_not;
    auto ring = net::Uring::create(loop_, &why_not);
    if (index_ == 0) {
      if (ring) {
        MAST_LOG(INFO, "workers run socket I/O through io_uring");
      } else {
        MAST_LOG(WARN, "workers run socket I/O through epoll: {}", why_not);
      }
    }
    {
      std::lock_guard lock(ring_mu_);
      ring_ = ring.get();
    }
    if (ring) {
      ring->run();
    } else {
      loop_.run();
    }
    // Tear down on this thread: close every connection and pool, then let the aborted
    // handlers run so nothing outlives the loop.
    auto live = live_;
    for (auto* d : live) {
      if (live_.count(d)) d->closeNow();
    }
    for (auto& l : listeners_) l->stop();
    listeners_.clear();
    clusters_->shutdown();
    loop_.restart();
    loop_.poll();
    // Reads and writes still in the ring complete (aborted) now, so their handlers release
    // what they hold before the clusters go.
    if (ring) ring->drain(std::chrono::seconds(2));
    clusters_.reset();
    loop_.restart();
    loop_.poll();
    if (ring) ring->drain(std::chrono::seconds(2));
    std::lock_guard lock(ring_mu_);
    ring_ = nullptr;
  });
}

void Worker::post(std::function<void()> fn) {
  asio::post(loop_, std::move(fn));
  wakeRing();
}

void Worker::wakeRing() {
  // A thread blocked in io_uring_enter is not woken by asio's post or stop; the ring is.
  if (std::this_thread::get_id() == thread_.get_id()) return;
  std::lock_guard lock(ring_mu_);
  if (ring_) ring_->wake();
}

void Worker::deferDelete(std::unique_ptr<ActiveStream> stream) {
  graveyard_.push_back(std::move(stream));
  if (graveyard_.size() > 1) return;  // a clean-up is already deferred
  net::deferToEndOfDispatch(loop_, [this] {
    net::DispatchScope scope;  // destructors may defer work of their own
    auto dead = std::move(graveyard_);
    graveyard_.clear();
  });
}

void Worker::drain() {
  post([this] {
    draining_ = true;
    server_.stopListenersOn(*this);
    auto live = live_;
    for (auto* d : live) {
      if (live_.count(d)) d->startDrain();
    }
  });
}

void Worker::closeAllConnections() {
  post([this] {
    auto live = live_;
    for (auto* d : live) {
      if (live_.count(d)) d->closeNow();
    }
  });
}

void Worker::drainConnectionsOf(const ListenerConfig& cfg) {
  std::unordered_set<const void*> tags;
  auto addChain = [&](const FilterChainConfig& c) {
    if (c.hcm) tags.insert(c.hcm.get());
    if (c.tcp_proxy) tags.insert(c.tcp_proxy.get());
  };
  for (const auto& c : cfg.filter_chains) addChain(c);
  if (cfg.default_filter_chain) addChain(*cfg.default_filter_chain);
  auto live = live_;
  for (auto* d : live) {
    if (live_.count(d) && tags.count(d->configTag())) d->startDrain();
  }
}

void Worker::stop() {
  loop_.stop();
  wakeRing();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace mast::proxy::server
