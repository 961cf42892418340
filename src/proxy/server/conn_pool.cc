#include "proxy/server/conn_pool.h"

#include <asio/connect.hpp>
#include <unordered_map>

#include "base/logging.h"
#include "http/http1/codec.h"
#include "http/http2/codec.h"
#include "net/dispatch.h"
#include "net/transport.h"
#include "net/watermark.h"
#include "proxy/server/cluster_manager.h"
#include "proxy/server/hcm_stats.h"

namespace mast::proxy::server {

std::string_view resetReasonString(ResetReason r) {
  switch (r) {
    case ResetReason::ConnectFailure:
      return "connection failure";
    case ResetReason::ConnectionTermination:
      return "connection termination";
    case ResetReason::RemoteReset:
      return "remote reset";
    case ResetReason::Overflow:
      return "overflow";
    case ResetReason::ProtocolError:
      return "protocol error";
    case ResetReason::LocalReset:
      return "local reset";
  }
  return "unknown";
}

// === PoolStream ===

void PoolStream::sendHeaders(const http::HeaderMap& headers, bool end_stream) {
  if (end_stream) request_complete = true;
  if (sink_) {
    sink_->sendHeaders(*this, headers, end_stream);
  } else {
    headers_ = headers;
    headers_end_ = end_stream;
  }
}

void PoolStream::sendData(std::string_view data, bool end_stream) {
  if (end_stream) request_complete = true;
  if (sink_) {
    sink_->sendData(*this, data, end_stream);
  } else {
    body_.append(data);
    body_end_ = body_end_ || end_stream;
    uint32_t limit = pool_ ? pool_->settings().buffer_limit : 0;
    if (limit && body_.size() > limit && !pending_above_) {
      pending_above_ = true;
      reportWatermark();
    }
  }
}

void PoolStream::readDisable(bool disable) {
  if (read_disabled_ == disable) return;
  read_disabled_ = disable;
  if (sink_) sink_->readDisable(*this, disable);
}

void PoolStream::onConnectionWatermark(bool above) {
  connection_above_ = above;
  reportWatermark();
}

void PoolStream::onStreamWatermark(bool above) {
  stream_above_ = above;
  reportWatermark();
}

void PoolStream::reportWatermark() {
  bool above = pending_above_ || connection_above_ || stream_above_;
  if (above == reported_above_) return;
  reported_above_ = above;
  if (callbacks_) callbacks_->onUpstreamWatermark(above);
}

void PoolStream::sendTrailers(const http::HeaderMap& trailers) {
  request_complete = true;
  if (sink_) {
    sink_->sendTrailers(*this, trailers);
  } else {
    trailers_ = trailers;
  }
}

void PoolStream::reset() {
  callbacks_ = nullptr;
  if (sink_) {
    StreamSink* s = sink_;
    sink_ = nullptr;
    s->resetStream(*this);
  } else if (pool_) {
    ConnPool* p = pool_;
    pool_ = nullptr;
    p->cancelPending(*this);
  }
}

void PoolStream::bind(StreamSink& sink) {
  pool_ = nullptr;
  sink_ = &sink;
  if (read_disabled_) sink.readDisable(*this, true);
  if (headers_) {
    auto h = std::move(*headers_);
    headers_.reset();
    sink.sendHeaders(*this, h, headers_end_ && body_.empty() && !body_end_ && !trailers_);
    if (!sink_) return;
  }
  if (!body_.empty() || body_end_) {
    std::string b = std::move(body_);
    body_.clear();
    sink.sendData(*this, b, body_end_ && !trailers_);
    if (!sink_) return;
  }
  if (trailers_) {
    auto t = std::move(*trailers_);
    trailers_.reset();
    sink.sendTrailers(*this, t);
    if (!sink_) return;
  }
  // What was buffered here now sits in the connection's write buffer, which reports its own
  // watermarks from now on.
  if (pending_above_) {
    pending_above_ = false;
    reportWatermark();
  }
}

void PoolStream::fail(ResetReason r, std::string_view details) {
  sink_ = nullptr;
  pool_ = nullptr;
  UpstreamCallbacks* cb = callbacks_;
  callbacks_ = nullptr;
  if (cb) cb->onUpstreamReset(r, details);
}

// === Connection ===

class ConnPool::Connection : public StreamSink, public std::enable_shared_from_this<Connection> {
 public:
  explicit Connection(ConnPool& pool)
      : pool_(&pool), transport_(asio::ip::tcp::socket(pool.loop())), timer_(pool.loop()) {}
  // Takes over the connected (and handshaken) transport of an ALPN pool's connection.
  Connection(ConnPool& pool, net::Transport&& transport, std::string local_address)
      : pool_(&pool),
        transport_(std::move(transport)),
        timer_(pool.loop()),
        local_address_(std::move(local_address)) {}
  ~Connection() override = default;

  // The successor of an ALPN pool's connection starts where onTransportReady would have.
  void adoptReady() { becomeReady(); }

  void connect() {
    auto self = shared_from_this();
    auto& sock = transport_.socket();
    std::error_code ec;
    sock.open(pool_->address().protocol(), ec);
    if (!ec && pool_->settings().source_address) {
      sock.set_option(asio::socket_base::reuse_address(true), ec);
      sock.bind(net::Endpoint(pool_->settings().source_address->address(), 0), ec);
    }
    if (ec) {
      asio::post(pool_->loop(), [self, ec] { self->onConnectFailed(ec.message()); });
      return;
    }
    timer_.expires_after(pool_->settings().connect_timeout);
    timer_.async_wait([self](std::error_code e) {
      if (!e && self->state_ == State::Connecting) {
        self->onConnectFailed("connection timeout");
      }
    });
    sock.async_connect(pool_->address(), [self](std::error_code e) {
      if (self->state_ != State::Connecting) return;
      if (e) return self->onConnectFailed(e.message());
      std::error_code ignored;
      self->transport_.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
      auto local = self->transport_.socket().local_endpoint(ignored);
      self->local_address_ = net::toString(local);
      if (self->pool_ && self->pool_->settings().tls) {
        self->startTls();
      } else {
        self->onTransportReady();
      }
    });
  }

  virtual bool idle() const = 0;
  virtual bool canTakeStream() const = 0;
  virtual void attach(PoolStream& s) = 0;
  bool ready() const { return state_ == State::Ready; }
  bool failedToConnect() const { return !failure_reason_.empty(); }
  const std::string& failureReason() const { return failure_reason_; }
  void closeIfIdle() {
    if (idle()) close(ResetReason::ConnectionTermination, "drained");
  }
  // Starts the pool's idle timeout on a connection that has just become idle; the connect timer
  // is done by then, so the same timer serves. Envoy closes an upstream connection that stays
  // without streams for common_http_protocol_options.idle_timeout (0 = never). Called after every
  // response, so it only notes the time: re-arming an asio timer per request would cost a
  // cancelled handler and a reactor turn each time. The armed wait checks the time when it fires.
  void armIdleTimer() {
    if (!pool_ || !idle()) return;
    auto timeout = pool_->settings().idle_timeout;
    if (timeout.count() <= 0) return;
    idle_since_ = std::chrono::steady_clock::now();
    if (!idle_wait_armed_) waitIdle(timeout);
  }

 protected:
  enum class State { Connecting, Handshaking, Ready, Closed };

  void waitIdle(std::chrono::steady_clock::duration d) {
    idle_wait_armed_ = true;
    timer_.expires_after(d);
    timer_.async_wait([weak = weak_from_this()](std::error_code e) {
      auto self = weak.lock();
      if (!self) return;
      self->idle_wait_armed_ = false;
      // Busy now: armed again when it next goes idle.
      if (e || !self->idle() || !self->pool_) return;
      auto left = self->idle_since_ + self->pool_->settings().idle_timeout -
                  std::chrono::steady_clock::now();
      if (left > std::chrono::steady_clock::duration::zero()) {
        self->waitIdle(left);
        return;
      }
      self->pool_->cluster().stats().upstream_cx_idle_timeout->inc();
      self->close(ResetReason::ConnectionTermination, "idle timeout");
    });
  }

  void startTls() {
    state_ = State::Handshaking;
    transport_.enableTls(pool_->settings().tls);
    SSL* ssl = transport_.ssl();
    if (!pool_->settings().sni.empty()) {
      SSL_set_tlsext_host_name(ssl, pool_->settings().sni.c_str());
    }
    auto self = shared_from_this();
    transport_.asyncHandshake(false, [self](std::error_code e) {
      if (self->state_ != State::Handshaking) return;
      std::string bad = net::clientHandshakeFailure(self->transport_.ssl(), e,
                                                    self->pool_->settings().tls->config());
      if (!bad.empty()) return self->onConnectFailed(bad);
      self->onTransportReady();
    });
  }

  void onTransportReady() {
    timer_.cancel();
    if (handsOver() && pool_) {
      // Nothing is in flight on the transport now; the successor owns it from here. This
      // object stays alive (the handshake handler holds it) but is no longer the pool's.
      state_ = State::Closed;
      ConnPool* p = pool_;
      pool_ = nullptr;
      p->onAlpnNegotiated(*this, std::move(transport_), local_address_);
      return;
    }
    becomeReady();
  }

  void becomeReady() {
    state_ = State::Ready;
    onReady();
    startRead();
    if (pool_) pool_->onConnectionReady(*this);
  }

  // An ALPN pool's connection: its codec is chosen after the handshake (onAlpnNegotiated).
  virtual bool handsOver() const { return false; }

  void onConnectFailed(const std::string& reason) {
    if (state_ == State::Closed) return;
    failure_reason_ = reason;
    close(ResetReason::ConnectFailure, reason);
  }

  void startRead() {
    auto self = shared_from_this();
    transport_.asyncReadSome(asio::buffer(read_buf_), [self](std::error_code e, size_t n) {
      if (self->state_ == State::Closed) return;
      net::DispatchScope scope;
      if (e) {
        self->onRemoteClose();
        return;
      }
      self->onBytes(self->read_buf_.data(), n);
      if (self->state_ == State::Closed) return;
      if (self->read_disabled_) {
        self->read_paused_ = true;
      } else {
        self->startRead();
      }
    });
  }

  // Flow control: while disabled no read is outstanding, so the upstream's sends block in the
  // kernel once the socket buffers are full.
  void setReadDisabled(bool disable) {
    read_disabled_ = disable;
    if (!disable && read_paused_ && state_ == State::Ready) {
      read_paused_ = false;
      startRead();
    }
  }

  void checkWatermarks() {
    uint32_t limit = pool_ ? pool_->settings().buffer_limit : 0;
    if (auto crossed = watermark_.update(inflight_out_.size() + pending_out_.size(), limit)) {
      onWatermark(*crossed);
    }
  }

  void write(std::string&& data) {
    if (data.empty() || state_ == State::Closed) return;
    if (writing_) {
      pending_out_ += data;
      checkWatermarks();
      return;
    }
    inflight_out_ = std::move(data);
    checkWatermarks();
    doWrite();
  }

  void doWrite() {
    writing_ = true;
    auto self = shared_from_this();
    transport_.asyncWrite(asio::buffer(inflight_out_), [self](std::error_code e, size_t) {
      self->writing_ = false;
      if (self->state_ == State::Closed) return;
      if (e) {
        self->onRemoteClose();
        return;
      }
      if (!self->pending_out_.empty()) {
        self->inflight_out_.swap(self->pending_out_);
        self->pending_out_.clear();
        self->checkWatermarks();
        self->doWrite();
      } else {
        self->inflight_out_.clear();
        self->checkWatermarks();
        if (self->close_after_write_) self->close(ResetReason::ConnectionTermination, "");
      }
    });
  }

  // Fails every stream with `reason` and leaves the pool.
  virtual void failStreams(ResetReason reason, std::string_view details) = 0;
  virtual void onReady() {}
  virtual void onBytes(const char* data, size_t n) = 0;
  virtual void onRemoteClose() = 0;
  // The write buffer crossed a watermark: tell the streams whose requests fill it.
  virtual void onWatermark(bool above) = 0;

 public:
  void close(ResetReason reason, std::string_view details) {
    if (state_ == State::Closed) return;
    bool was_connecting = state_ != State::Ready;
    state_ = State::Closed;
    timer_.cancel();
    transport_.close();
    failStreams(was_connecting ? ResetReason::ConnectFailure : reason, details);
    if (pool_) {
      ConnPool* p = pool_;
      pool_ = nullptr;
      p->onConnectionClosed(*this);
    }
  }
  void detachPool() { pool_ = nullptr; }

 protected:
  ConnPool* pool_;
  net::Transport transport_;
  asio::steady_timer timer_;
  std::chrono::steady_clock::time_point idle_since_{};  // when it last became idle
  bool idle_wait_armed_ = false;                        // timer_ waits for the idle timeout
  State state_ = State::Connecting;
  std::array<char, 16384> read_buf_{};
  std::string inflight_out_;
  std::string pending_out_;
  bool writing_ = false;
  bool close_after_write_ = false;
  bool read_disabled_ = false;
  bool read_paused_ = false;  // a read is due once reading is enabled again
  net::Watermark watermark_;
  std::string local_address_;
  std::string failure_reason_;
  uint32_t requests_ = 0;
};

namespace {

// === HTTP/1.1 ===

class Http1Connection final : public ConnPool::Connection, public http1::ClientCallbacks {
 public:
  explicit Http1Connection(ConnPool& pool) : Connection(pool), codec_(*this) {}
  Http1Connection(ConnPool& pool, net::Transport&& t, std::string local)
      : Connection(pool, std::move(t), std::move(local)), codec_(*this) {}

  bool idle() const override { return state_ == State::Ready && stream_ == nullptr; }
  bool canTakeStream() const override { return idle(); }

  void attach(PoolStream& s) override {
    stream_ = &s;
    response_complete_ = false;
    ++requests_;
    if (watermark_.high()) s.onConnectionWatermark(true);
    if (auto* cb = s.callbacks()) cb->onUpstreamConnected(local_address_);
    s.bind(*this);
  }

  void sendHeaders(PoolStream&, const http::HeaderMap& h, bool end) override {
    std::string out;
    codec_.encodeHeaders(h, end, out);
    write(std::move(out));
  }
  void sendData(PoolStream&, std::string_view d, bool end) override {
    std::string out;
    codec_.encodeData(d, end, out);
    write(std::move(out));
    maybeDone();
  }
  void sendTrailers(PoolStream&, const http::HeaderMap& t) override {
    std::string out;
    codec_.encodeTrailers(t, out);
    write(std::move(out));
    maybeDone();
  }
  void readDisable(PoolStream&, bool disable) override { setReadDisabled(disable); }
  void resetStream(PoolStream&) override {
    // The router releases its stream from inside the callback that delivered the end of the
    // response; an exchange that is complete both ways keeps the connection for reuse.
    if (stream_ && response_complete_ && stream_->request_complete) {
      maybeDone();
      return;
    }
    // An HTTP/1 request cannot be cancelled without closing the connection.
    stream_ = nullptr;
    auto self = shared_from_this();
    close(ResetReason::LocalReset, "");
  }

  // http1::ClientCallbacks
  void onHeaders(http::HeaderMap&& headers, bool end_stream) override {
    if (!stream_) return;
    if (end_stream) response_complete_ = true;
    if (auto* cb = stream_->callbacks()) cb->onUpstreamHeaders(std::move(headers), end_stream);
    if (end_stream) maybeDone();
  }
  void onData(std::string_view data, bool end_stream) override {
    if (!stream_) return;
    if (end_stream) response_complete_ = true;
    if (auto* cb = stream_->callbacks()) cb->onUpstreamData(data, end_stream);
    if (end_stream) maybeDone();
  }
  void onTrailers(http::HeaderMap&& trailers) override {
    if (!stream_) return;
    response_complete_ = true;
    if (auto* cb = stream_->callbacks()) cb->onUpstreamTrailers(std::move(trailers));
    maybeDone();
  }
  void onError(int, std::string_view details) override {
    auto self = shared_from_this();
    close(ResetReason::ProtocolError, details);
  }

 private:
  void onBytes(const char* data, size_t n) override {
    auto self = shared_from_this();
    if (!stream_) {
      // Bytes on an idle keep-alive connection: the server is misbehaving; drop it.
      close(ResetReason::ConnectionTermination, "");
      return;
    }
    codec_.dispatch(data, n);
  }

  void onRemoteClose() override {
    auto self = shared_from_this();
    if (stream_) codec_.onConnectionClose();
    close(ResetReason::ConnectionTermination, "");
  }

  void onWatermark(bool above) override {
    if (stream_) stream_->onConnectionWatermark(above);
  }

  void failStreams(ResetReason reason, std::string_view details) override {
    PoolStream* s = stream_;
    stream_ = nullptr;
    if (s) s->fail(reason, details.empty() && !failure_reason_.empty() ? failure_reason_ : details);
  }

  void maybeDone() {
    if (!stream_ || !response_complete_ || !stream_->request_complete) return;
    stream_->detachFromSink();
    stream_ = nullptr;
    // An idle pooled connection reads again (to notice the server closing it).
    setReadDisabled(false);
    bool reuse = codec_.keepAlive();
    uint32_t max = pool_ ? pool_->settings().max_requests_per_connection : 0;
    if (max && requests_ >= max) reuse = false;
    if (!reuse) {
      auto self = shared_from_this();
      close_after_write_ = writing_;
      if (!writing_) close(ResetReason::ConnectionTermination, "");
      return;
    }
    codec_.reset();
    if (pool_) pool_->onStreamDone(*this);
  }

  http1::ClientCodec codec_;
  PoolStream* stream_ = nullptr;
  bool response_complete_ = false;
};

// === HTTP/2 ===

class Http2Connection final : public ConnPool::Connection, public http2::ClientCallbacks {
 public:
  explicit Http2Connection(ConnPool& pool) : Connection(pool) {}
  Http2Connection(ConnPool& pool, net::Transport&& t, std::string local)
      : Connection(pool, std::move(t), std::move(local)) {}

  bool idle() const override { return state_ == State::Ready && streams_.empty(); }
  bool canTakeStream() const override {
    return state_ == State::Ready && !goaway_ && session_ && session_->canSubmit();
  }

  void attach(PoolStream& s) override {
    ++requests_;
    attached_.push_back(&s);
    if (auto* cb = s.callbacks()) cb->onUpstreamConnected(local_address_);
    s.bind(*this);
    flush();
  }

  void sendHeaders(PoolStream& s, const http::HeaderMap& h, bool end) override {
    int32_t id = session_->submitRequest(h, end);
    std::erase(attached_, &s);
    if (id < 0) {
      s.fail(ResetReason::RemoteReset, "refused stream");
      return;
    }
    s.stream_id = id;
    streams_[id] = &s;
    // Paused before it had an id (PoolStream::bind replays the pause first).
    if (s.readDisabled()) session_->readDisable(id, true);
    flush();
  }
  void sendData(PoolStream& s, std::string_view d, bool end) override {
    if (s.stream_id < 0) return;
    session_->submitData(s.stream_id, d, end);
    flush();
    checkStreamWatermark(s);
  }
  void sendTrailers(PoolStream& s, const http::HeaderMap& t) override {
    if (s.stream_id < 0) return;
    session_->submitTrailers(s.stream_id, t);
    flush();
  }
  // Pausing the connection would stall every stream on it: the stream's received bytes stop
  // returning to the upstream's windows instead, so this stream's response stops after one
  // stream window (the held bytes also count against the connection window, as in Envoy).
  void readDisable(PoolStream& s, bool disable) override {
    if (s.stream_id < 0 || !session_) return;  // applied in sendHeaders once it has an id
    session_->readDisable(s.stream_id, disable);
    if (!disable) flush();  // the WINDOW_UPDATEs it held
  }
  void resetStream(PoolStream& s) override {
    std::erase(attached_, &s);
    if (s.stream_id >= 0) {
      if (streams_.erase(s.stream_id)) forgetStream(s);
      session_->resetStream(s.stream_id, 0x8 /* CANCEL */);
      flush();
    }
    maybeIdle();
  }

  // http2::ClientCallbacks
  void onStreamHeaders(int32_t id, http::HeaderMap&& headers, bool end_stream) override {
    if (auto* s = find(id); s && s->callbacks()) {
      s->callbacks()->onUpstreamHeaders(std::move(headers), end_stream);
    }
  }
  void onStreamData(int32_t id, std::string_view data, bool end_stream) override {
    if (auto* s = find(id); s && s->callbacks()) s->callbacks()->onUpstreamData(data, end_stream);
  }
  void onStreamTrailers(int32_t id, http::HeaderMap&& trailers) override {
    if (auto* s = find(id); s && s->callbacks()) {
      s->callbacks()->onUpstreamTrailers(std::move(trailers));
    }
  }
  void onStreamReset(int32_t id, uint32_t error_code) override {
    if (auto* s = find(id)) {
      streams_.erase(id);
      forgetStream(*s);
      s->fail(error_code == 0x7 ? ResetReason::RemoteReset : ResetReason::RemoteReset,
              error_code == 0x7 ? "refused stream" : "remote reset");
    }
  }
  void onStreamClose(int32_t id) override {
    if (auto* s = find(id)) {
      streams_.erase(id);
      forgetStream(*s);
      s->detachFromSink();
    }
    maybeIdle();
  }
  void onGoaway(int32_t last_stream_id, uint32_t error_code) override { goaway_ = true; }

 private:
  void onReady() override {
    http2::ClientSettings settings;
    session_ = std::make_unique<http2::ClientSession>(*this, settings);
    flush();
  }

  PoolStream* find(int32_t id) {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second;
  }

  void flush() {
    if (!session_) return;
    std::string out;
    session_->drainOutput(out);
    write(std::move(out));
  }

  // Envoy's per-stream send buffer watermark: request bytes the upstream has no window for wait
  // in the codec, not in the connection's write buffer.
  void checkStreamWatermark(PoolStream& s) {
    if (find(s.stream_id) != &s) return;  // closed meanwhile (forgetStream counted it out)
    uint32_t limit = pool_ ? pool_->settings().buffer_limit : 0;
    if (auto crossed = s.send_watermark.update(session_->bufferedBytes(s.stream_id), limit)) {
      if (*crossed) ++high_streams_;
      if (!*crossed && high_streams_) --high_streams_;
      s.onStreamWatermark(*crossed);
    }
  }
  // After the upstream opened windows: streams whose unsent bytes went low again resume.
  void checkHighStreams() {
    if (high_streams_ == 0) return;
    for (auto& [id, s] : streams_) {
      if (s->send_watermark.high()) checkStreamWatermark(*s);
    }
  }
  void forgetStream(PoolStream& s) {
    if (s.send_watermark.high() && high_streams_) --high_streams_;
  }

  void maybeIdle() {
    if (streams_.empty() && attached_.empty() && pool_) {
      if (goaway_) {
        close(ResetReason::ConnectionTermination, "");
      } else {
        pool_->onStreamDone(*this);
      }
    }
  }

  void onBytes(const char* data, size_t n) override {
    auto self = shared_from_this();
    bool ok = session_->dispatch(data, n);
    flush();
    checkHighStreams();
    if (!ok) {
      close(ResetReason::ProtocolError, "protocol error");
      return;
    }
    if (goaway_ && streams_.empty()) close(ResetReason::ConnectionTermination, "");
  }

  void onRemoteClose() override {
    auto self = shared_from_this();
    close(ResetReason::ConnectionTermination, "");
  }

  void failStreams(ResetReason reason, std::string_view details) override {
    auto streams = std::move(streams_);
    streams_.clear();
    high_streams_ = 0;
    auto attached = std::move(attached_);
    attached_.clear();
    std::string d =
        details.empty() && !failure_reason_.empty() ? failure_reason_ : std::string(details);
    for (auto& [id, s] : streams) s->fail(reason, d);
    for (auto* s : attached) s->fail(reason, d);
  }

  void onWatermark(bool above) override {
    for (auto& [id, s] : streams_) s->onConnectionWatermark(above);
  }

  std::unique_ptr<http2::ClientSession> session_;
  std::unordered_map<int32_t, PoolStream*> streams_;
  std::vector<PoolStream*> attached_;
  bool goaway_ = false;
  size_t high_streams_ = 0;  // streams whose send_watermark is high
};

// === ALPN (auto_config): connects and handshakes, then hands over to the negotiated codec ===

class AlpnConnection final : public ConnPool::Connection {
 public:
  explicit AlpnConnection(ConnPool& pool) : Connection(pool) {}
  bool idle() const override { return false; }
  bool canTakeStream() const override { return false; }
  // Streams wait in the pool until the successor is ready; none is ever bound here.
  void attach(PoolStream&) override {}
  void sendHeaders(PoolStream&, const http::HeaderMap&, bool) override {}
  void sendData(PoolStream&, std::string_view, bool) override {}
  void sendTrailers(PoolStream&, const http::HeaderMap&) override {}
  void resetStream(PoolStream&) override {}
  void readDisable(PoolStream&, bool) override {}

 private:
  bool handsOver() const override { return true; }
  void onBytes(const char*, size_t) override {}
  void onRemoteClose() override { close(ResetReason::ConnectionTermination, ""); }
  void onWatermark(bool) override {}
  void failStreams(ResetReason, std::string_view) override {}
};

}  // namespace

// === ConnPool ===

ConnPool::ConnPool(asio::io_context& loop, ClusterRuntime& cluster, net::Endpoint address,
                   std::string host_label, const PoolSettings& settings)
    : loop_(loop),
      cluster_(cluster),
      address_(address),
      host_label_(std::move(host_label)),
      settings_(settings),
      http2_(settings.codec == PoolSettings::Codec::Http2) {}

ConnPool::~ConnPool() {
  for (auto* s : pending_) s->detachFromPool();
  pending_.clear();
  auto conns = std::move(conns_);
  for (auto& c : conns) {
    c->detachPool();
    c->close(ResetReason::LocalReset, "pool destroyed");
  }
}

std::unique_ptr<PoolStream> ConnPool::newStream(UpstreamCallbacks& cb) {
  auto s = std::make_unique<PoolStream>(*this, cb);
  for (auto& c : conns_) {
    if (c->canTakeStream()) {
      c->attach(*s);
      return s;
    }
  }
  // HTTP/2: a connection still connecting will take every waiting stream.
  bool connecting_h2 = http2_ && connecting_ > 0;
  if (!connecting_h2 && cluster_.tryAcquireConnection()) {
    pending_.push_back(s.get());
    createConnection();
    return s;
  }
  if (connecting_h2 || cluster_.tryAcquirePending()) {
    if (!connecting_h2) s->stream_id = -2;  // marks a pending-breaker slot
    pending_.push_back(s.get());
    return s;
  }
  // Overflow is reported asynchronously so the router never re-enters itself.
  cluster_.onPendingOverflow();
  PoolStream* raw = s.get();
  overflowed_.push_back(raw);
  asio::post(loop_, [this, raw, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired()) return;
    auto it = std::find(overflowed_.begin(), overflowed_.end(), raw);
    if (it == overflowed_.end()) return;
    overflowed_.erase(it);
    raw->fail(ResetReason::Overflow, "overflow");
  });
  return s;
}

void ConnPool::cancelPending(PoolStream& s) {
  if (auto it = std::find(pending_.begin(), pending_.end(), &s); it != pending_.end()) {
    if (s.stream_id == -2) cluster_.releasePending();
    pending_.erase(it);
  }
  std::erase(overflowed_, &s);
}

void ConnPool::createConnection() {
  std::shared_ptr<Connection> c;
  switch (settings_.codec) {
    case PoolSettings::Codec::Http2:
      c = std::make_shared<Http2Connection>(*this);
      cluster_.stats().upstream_cx_http2_total->inc();
      break;
    case PoolSettings::Codec::Http1:
      c = std::make_shared<Http1Connection>(*this);
      cluster_.stats().upstream_cx_http1_total->inc();
      break;
    case PoolSettings::Codec::Alpn:
      // Counted as HTTP/1 or HTTP/2 once the handshake decided (onAlpnNegotiated).
      c = std::make_shared<AlpnConnection>(*this);
      break;
  }
  ++connecting_;
  conns_.push_back(c);
  cluster_.onConnectionCreated();
  c->connect();
}

void ConnPool::onConnectionReady(Connection& c) {
  if (connecting_) --connecting_;
  attachPending();
  c.armIdleTimer();
}

void ConnPool::attachPending() {
  while (!pending_.empty()) {
    Connection* target = nullptr;
    for (auto& c : conns_) {
      if (c->canTakeStream()) {
        target = c.get();
        break;
      }
    }
    if (!target) {
      // HTTP/1: every connection is busy; open another if the breaker allows.
      if (!http2_ && connecting_ < pending_.size() && cluster_.tryAcquireConnection()) {
        createConnection();
      }
      return;
    }
    PoolStream* s = pending_.front();
    pending_.pop_front();
    if (s->stream_id == -2) {
      cluster_.releasePending();
      s->stream_id = -1;
    }
    target->attach(*s);
  }
}

void ConnPool::onAlpnNegotiated(Connection& c, net::Transport&& transport,
                                std::string local_address) {
  // "h2" selects HTTP/2; anything else (http/1.1, a custom protocol, no ALPN) is HTTP/1.1.
  bool h2 = transport.alpn() == "h2";
  http2_ = h2;
  std::shared_ptr<Connection> next;
  if (h2) {
    next = std::make_shared<Http2Connection>(*this, std::move(transport), std::move(local_address));
    cluster_.stats().upstream_cx_http2_total->inc();
  } else {
    next = std::make_shared<Http1Connection>(*this, std::move(transport), std::move(local_address));
    cluster_.stats().upstream_cx_http1_total->inc();
  }
  // Same slot, same circuit-breaker connection: only the object changes.
  for (auto& slot : conns_) {
    if (slot.get() == &c) {
      slot = next;
      break;
    }
  }
  next->adoptReady();
}

void ConnPool::onStreamDone(Connection& c) {
  if (draining_) {
    c.closeIfIdle();
    return;
  }
  attachPending();
  c.armIdleTimer();
}

void ConnPool::onConnectionClosed(Connection& c) {
  if (!c.ready() && connecting_) --connecting_;
  cluster_.onConnectionClosed();
  for (auto it = conns_.begin(); it != conns_.end(); ++it) {
    if (it->get() == &c) {
      // Keep the object alive until the current handler unwinds.
      auto keep = *it;
      conns_.erase(it);
      asio::post(loop_, [keep] {});
      break;
    }
  }
  if (c.failedToConnect()) {
    // Streams waiting for this pool fail the same way: the host is unreachable.
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto* s : pending) {
      if (s->stream_id == -2) cluster_.releasePending();
      s->fail(ResetReason::ConnectFailure, c.failureReason());
    }
  } else {
    attachPending();
  }
}

void ConnPool::drain() {
  draining_ = true;
  auto conns = conns_;
  for (auto& c : conns) c->closeIfIdle();
}

}  // namespace mast::proxy::server
