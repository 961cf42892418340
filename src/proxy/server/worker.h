#pragma once
// A worker: one thread, one event loop, and everything created on it (listeners' accept loops,
// downstream connections, per-worker cluster state and connection pools). Config reaches a
// worker as immutable snapshots posted to its loop; nothing on the request path takes a lock.
#include <asio/io_context.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "net/address.h"
#include "net/deadline_queue.h"
#include "net/uring.h"

namespace mast::proxy::server {

class Server;
class WorkerClusters;

// Facts about a downstream connection that streams and access logs read.
struct ConnectionInfo {
  net::Endpoint local;
  net::Endpoint remote;
  std::string local_str;
  std::string remote_str;
  std::string sni;
  std::string alpn;
  std::string filter_chain_name;
  bool tls = false;
};

// Something a worker can ask to finish gracefully (drain) or close at once (shutdown).
class Drainable {
 public:
  virtual ~Drainable() = default;
  virtual void startDrain() = 0;
  virtual void closeNow() = 0;
  // The network filter config (HcmConfig / TcpProxyConfig) the connection runs under, so that a
  // listener update or removal can drain exactly the connections of the old listener config.
  virtual const void* configTag() const = 0;
};

class ActiveListener;
class ActiveStream;
struct ListenerConfig;

class Worker {
 public:
  Worker(uint32_t index, Server& server);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  uint32_t index() const { return index_; }
  asio::io_context& loop() { return loop_; }
  Server& server() { return server_; }
  WorkerClusters& clusters() { return *clusters_; }
  uint64_t random() { return rng_(); }
  bool draining() const { return draining_; }

  void start();
  // Stops accepting and asks every connection to finish (HTTP/1: close after the current
  // response; HTTP/2: GOAWAY). Thread-safe (posts to the loop).
  void drain();
  void closeAllConnections();
  void stop();
  void join();
  void post(std::function<void()> fn);

  // This worker's listeners (worker thread only; the server posts changes).
  std::vector<std::shared_ptr<ActiveListener>>& listeners() { return listeners_; }
  // Asks every connection accepted under `cfg` to finish (HTTP/1: close after the current
  // response; HTTP/2: GOAWAY). Worker thread.
  void drainConnectionsOf(const ListenerConfig& cfg);

  void track(Drainable* d) { live_.insert(d); }
  void untrack(Drainable* d) { live_.erase(d); }
  size_t liveConnections() const { return live_count_.load(std::memory_order_relaxed); }
  void onConnectionCountChanged() { live_count_.store(live_.size(), std::memory_order_relaxed); }

  // Per-request timeouts (stream idle, route, per-try): one kernel timer for the whole loop.
  net::DeadlineQueue& deadlines() { return deadlines_; }

  // Destroys a finished stream once the current call stack has unwound (it may be on it).
  // (net::deferToEndOfDispatch: at the end of the current I/O completion, else posted.)
  void deferDelete(std::unique_ptr<ActiveStream> stream);

 private:
  uint32_t index_;
  Server& server_;
  void wakeRing();

  asio::io_context loop_{1};
  // The worker thread's io_uring ring while it exists (nullptr on epoll). Guarded because posting
  // threads wake it while the worker may be tearing it down; not on any per-request path.
  std::mutex ring_mu_;
  net::Uring* ring_ = nullptr;
  std::unique_ptr<WorkerClusters> clusters_;  // destroyed on the worker thread
  std::mt19937_64 rng_;
  std::thread thread_;
  bool draining_ = false;
  std::unordered_set<Drainable*> live_;
  std::vector<std::shared_ptr<ActiveListener>> listeners_;
  std::atomic<size_t> live_count_{0};
  net::DeadlineQueue deadlines_{loop_};
  std::vector<std::unique_ptr<ActiveStream>> graveyard_;
};

}  // namespace mast::proxy::server
