#pragma once
// The ADS server: envoy.service.discovery.v3.AggregatedDiscoveryService, both
// StreamAggregatedResources (state of the world) and DeltaAggregatedResources (incremental),
// serving per-node Snapshots from a SnapshotCache. It knows nothing of Istio: whoever owns the
// cache computes the snapshots (see README.md for the protocol rules it implements).
//
// Thread contract:
// - Built on gRPC's callback API. Stream events run on gRPC's callback threads; pushes triggered
//   by SnapshotCache::setSnapshot run on the setter's thread (they only build a response and
//   start an asynchronous write; they never block on the network).
// - Callbacks are called with no lock of this module held, so they may call setSnapshot,
//   status() or metrics(). onProxyConnected runs before anything is sent to that stream, so a
//   snapshot set from inside it is the first thing the proxy gets. Callbacks for one stream are
//   serialized (reads are one at a time); callbacks of different streams run concurrently.
// - status(), metrics(), port() are safe from any thread.
// - stop() (or the destructor) cancels every stream and returns when gRPC has finished them;
//   no callback runs after it returns. Do not call stop() from inside a callback.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/server.h>

#include "base/result.h"
#include "control/xds/proxy_info.h"
#include "control/xds/snapshot.h"
#include "control/xds/status.h"

namespace mast::control::xds {

struct AckEvent {
  std::string node_id;
  uint64_t stream_id = 0;
  std::string type_url;
  std::string version;  // the version ACKed, or the version rejected for a NACK
  std::string nonce;
  std::string error_detail;  // empty for an ACK
};

struct Callbacks {
  // A stream identified its node (first request). Return an error to refuse the stream (it is
  // finished with PERMISSION_DENIED and the message); unset = accept everyone.
  std::function<Status(const ProxyInfo&)> on_proxy_connected;
  // A stream whose node was accepted ended (client gone, cancelled, or server stopping).
  std::function<void(const std::string& node_id, uint64_t stream_id)> on_proxy_disconnected;
  std::function<void(const AckEvent&)> on_ack;
  std::function<void(const AckEvent&)> on_nack;
};

// The gRPC service. Register it on any grpc::ServerBuilder (to share a port with other
// services), or use XdsServer below. Must outlive the grpc::Server it is registered on; call
// shutdown() before (or right after) the server's Shutdown to drop late snapshot pushes.
class AdsService {
 public:
  AdsService(SnapshotCache& cache, Callbacks callbacks);
  ~AdsService();
  AdsService(const AdsService&) = delete;
  AdsService& operator=(const AdsService&) = delete;

  grpc::Service* grpcService();

  // With `with_names`, each TypeStatus also lists the subscribed resource names.
  std::vector<ProxyStatus> status(bool with_names = false) const;
  Metrics metrics() const;

  // Finishes every open stream with UNAVAILABLE and refuses new ones. Non-blocking.
  void shutdown();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

struct XdsServerOptions {
  std::string address = "0.0.0.0";
  int port = 15010;  // 0 = let the OS choose (see XdsServer::port())
  // Keepalive pings so that dead proxies are noticed (gRPC's defaults only ping when asked).
  std::chrono::milliseconds keepalive_time{30'000};
  std::chrono::milliseconds keepalive_timeout{10'000};
  // How long stop() lets streams finish on their own before cancelling them.
  std::chrono::milliseconds shutdown_grace{500};
};

// AdsService on its own plaintext gRPC server.
class XdsServer {
 public:
  XdsServer(SnapshotCache& cache, Callbacks callbacks, XdsServerOptions options = {});
  ~XdsServer();  // stop()

  // Binds and starts serving; returns the bound port. Fails when the port cannot be bound.
  Result<int> start();
  void stop();
  int port() const { return port_; }

  std::vector<ProxyStatus> status(bool with_names = false) const {
    return service_.status(with_names);
  }
  Metrics metrics() const { return service_.metrics(); }
  AdsService& service() { return service_; }

 private:
  XdsServerOptions options_;
  AdsService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex stop_mu_;
};

}  // namespace mast::control::xds
