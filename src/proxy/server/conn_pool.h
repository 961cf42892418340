#pragma once
// Per-worker upstream connection pools, one per (cluster, host, protocol). HTTP/1.1 pools keep
// idle keep-alive connections and run one request per connection at a time; HTTP/2 pools
// multiplex streams over one connection (a new one when the current one drains or is full).
// ALPN pools (auto_config, Envoy's "mixed" pool) offer h2 and http/1.1 over TLS and let each
// connection's handshake decide its codec; once one connection negotiated h2 the pool counts on
// HTTP/2 for the connections it opens next.
// Circuit breakers (shared by workers) bound connections, pending requests and requests.
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/header_map.h"
#include "net/address.h"
#include "net/tls.h"
#include "net/transport.h"
#include "net/watermark.h"
#include "proxy/server/upstream_stream.h"

namespace mast::proxy::server {

class PoolStream;
class ClusterRuntime;

// What a connection offers a bound stream.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  virtual void sendHeaders(PoolStream& s, const http::HeaderMap& h, bool end) = 0;
  virtual void sendData(PoolStream& s, std::string_view d, bool end) = 0;
  virtual void sendTrailers(PoolStream& s, const http::HeaderMap& t) = 0;
  virtual void resetStream(PoolStream& s) = 0;
  virtual void readDisable(PoolStream& s, bool disable) = 0;
};

class ConnPool;

// The stream handle given to the router. Buffers sends until bound to a connection.
class PoolStream final : public UpstreamStream {
 public:
  PoolStream(ConnPool& pool, UpstreamCallbacks& cb) : pool_(&pool), callbacks_(&cb) {}
  ~PoolStream() override { reset(); }

  void sendHeaders(const http::HeaderMap& headers, bool end_stream) override;
  void sendData(std::string_view data, bool end_stream) override;
  void sendTrailers(const http::HeaderMap& trailers) override;
  void reset() override;
  void readDisable(bool disable) override;

  // Connection side.
  void bind(StreamSink& sink);
  UpstreamCallbacks* callbacks() { return callbacks_; }
  void detachFromSink() { sink_ = nullptr; }
  void detachFromPool() { pool_ = nullptr; }
  // Delivers a failure to the router; the stream is dead afterwards.
  void fail(ResetReason r, std::string_view details);
  // The connection's write buffer crossed a watermark (see UpstreamCallbacks::onUpstreamWatermark).
  void onConnectionWatermark(bool above);
  // HTTP/2: this stream's request bytes waiting for the upstream's window crossed a watermark.
  void onStreamWatermark(bool above);
  bool readDisabled() const { return read_disabled_; }
  net::Watermark send_watermark;  // HTTP/2: the stream's unsent request bytes
  int32_t stream_id = -1;         // HTTP/2 stream id once bound
  bool request_complete = false;

 private:
  ConnPool* pool_;
  UpstreamCallbacks* callbacks_;
  StreamSink* sink_ = nullptr;
  // Buffered until bound.
  std::optional<http::HeaderMap> headers_;
  bool headers_end_ = false;
  std::string body_;
  bool body_end_ = false;
  std::optional<http::HeaderMap> trailers_;
  bool read_disabled_ = false;
  // Watermarks: the body buffered here while unbound, and the bound connection's write buffer.
  bool pending_above_ = false;
  bool connection_above_ = false;
  bool stream_above_ = false;
  bool reported_above_ = false;
  void reportWatermark();
};

struct PoolSettings {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds idle_timeout{3600 * 1000};
  uint32_t max_requests_per_connection = 0;  // 0 = unlimited
  enum class Codec { Http1, Http2, Alpn };   // Alpn: per connection, from the TLS handshake
  Codec codec = Codec::Http1;
  std::shared_ptr<const net::TlsContext> tls;  // null: plaintext (Alpn needs TLS)
  std::string sni;
  std::optional<net::Endpoint> source_address;  // upstream_bind_config
  // per_connection_buffer_limit_bytes: a connection's write buffer above this pauses the
  // downstream that fills it (0 = no limit).
  uint32_t buffer_limit = 1024 * 1024;
};

class ConnPool {
 public:
  ConnPool(asio::io_context& loop, ClusterRuntime& cluster, net::Endpoint address,
           std::string host_label, const PoolSettings& settings);
  virtual ~ConnPool();

  // Always returns a stream; failures (overflow, connect failure) arrive as onUpstreamReset.
  std::unique_ptr<PoolStream> newStream(UpstreamCallbacks& cb);
  // PoolStream::reset while still pending.
  void cancelPending(PoolStream& s);

  asio::io_context& loop() { return loop_; }
  ClusterRuntime& cluster() { return cluster_; }
  const net::Endpoint& address() const { return address_; }
  const std::string& hostLabel() const { return host_label_; }
  const PoolSettings& settings() const { return settings_; }

  // Connection callbacks.
  class Connection;
  void onConnectionReady(Connection& c);
  void onConnectionClosed(Connection& c);
  void onStreamDone(Connection& c);
  // An ALPN pool's connection finished its handshake: a connection of the negotiated codec takes
  // over its transport and replaces it.
  void onAlpnNegotiated(Connection& c, net::Transport&& transport, std::string local_address);
  // Closes idle connections (drain); active ones finish.
  void drain();
  size_t activeConnections() const { return conns_.size(); }
  bool idle() const { return conns_.empty() && pending_.empty(); }

 private:
  void attachPending();
  void createConnection();
  // HTTP/2 connections take every waiting stream; HTTP/1 ones one at a time.
  bool expectHttp2() const { return http2_; }

  asio::io_context& loop_;
  ClusterRuntime& cluster_;
  net::Endpoint address_;
  std::string host_label_;
  PoolSettings settings_;
  std::list<std::shared_ptr<Connection>> conns_;
  std::deque<PoolStream*> pending_;
  std::vector<PoolStream*> overflowed_;
  size_t connecting_ = 0;
  bool draining_ = false;
  bool http2_ = false;  // Http2 pools; Alpn pools once a connection negotiated h2
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace mast::proxy::server
