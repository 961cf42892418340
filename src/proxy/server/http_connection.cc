#include "proxy/server/http_connection.h"

#include <unordered_map>

#include "base/logging.h"
#include "http/http1/codec.h"
#include "http/http2/codec.h"
#include "net/dispatch.h"
#include "proxy/server/active_stream.h"
#include "proxy/server/hcm_stats.h"

namespace mast::proxy::server {

// === HTTP/1.1: one stream at a time; pipelined requests wait in the codec ===

class Http1Downstream final : public http1::ServerCallbacks, public ResponseSink {
 public:
  explicit Http1Downstream(HttpConnection& conn)
      : conn_(conn), codec_(*this, settings(conn.config())) {}

  static http1::ServerSettings settings(const HcmConfig& cfg) {
    http1::ServerSettings s;
    s.max_request_headers_kb = cfg.max_request_headers_kb;
    s.accept_http_10 = cfg.accept_http_10;
    return s;
  }

  // Feeds bytes to the codec. The codec stops consuming after a complete request (until the
  // response is done), so what it leaves (pipelined requests) waits in pending_.
  void onBytes(const char* data, size_t n) {
    if (pending_.empty()) {
      size_t used = dispatch(data, n);
      if (used < n && !failed_) pending_.append(data + used, n - used);
      if (resume_pending_) resume();
      return;
    }
    pending_.append(data, n);
    drainPending();
  }

  void drainPending() {
    while (!pending_.empty() && !failed_ && !conn_.closed_) {
      std::string buf = std::move(pending_);
      pending_.clear();
      size_t used = dispatch(buf.data(), buf.size());
      if (used < buf.size()) pending_.assign(buf, used, std::string::npos);
      if (resume_pending_) {
        resume_pending_ = false;
        codec_.resumeAfterResponse();
        continue;
      }
      if (used == 0) break;
    }
  }

  // A stream can finish inside dispatch (a local reply sent from onHeaders): the codec pauses
  // only when it reaches the end of that message, so resuming must wait until dispatch returns.
  size_t dispatch(const char* data, size_t n) {
    in_dispatch_ = true;
    size_t used = codec_.dispatch(data, n);
    in_dispatch_ = false;
    return used;
  }
  void resume() {
    resume_pending_ = false;
    codec_.resumeAfterResponse();
    drainPending();
  }

  bool idle() const { return !stream_; }
  ActiveStream* stream() { return stream_.get(); }
  void onConnectionClosed() {
    if (stream_) {
      auto s = std::move(stream_);
      s->onDownstreamReset("downstream_remote_disconnect");
    }
  }

  // http1::ServerCallbacks
  void onHeaders(http::HeaderMap&& headers, bool end_stream) override {
    // Envoy answers "Expect: 100-continue" itself and does not forward the expectation.
    if (const std::string* e = headers.get("expect");
        e && http::iequals(*e, "100-continue") && codec_.protocol() == http::Protocol::Http11) {
      headers.remove("expect");
      if (!end_stream) conn_.write("HTTP/1.1 100 Continue\r\n\r\n");
    }
    // Envoy counts max_requests_per_connection as requests start, so that the last one's
    // response already says "connection: close".
    uint32_t max = conn_.config().max_requests_per_connection;
    if (max && ++conn_.requests_ >= max) conn_.draining_ = true;
    stream_ = std::make_unique<ActiveStream>(conn_, *this, codec_.protocol());
    stream_->decodeHeaders(std::move(headers), end_stream);
  }
  void onData(std::string_view data, bool end_stream) override {
    if (stream_) stream_->decodeData(data, end_stream);
  }
  void onTrailers(http::HeaderMap&& trailers) override {
    if (stream_) stream_->decodeTrailers(std::move(trailers));
  }
  void onError(int status, std::string_view details) override {
    failed_ = true;
    conn_.config().stats->downstream_rq_protocol_error();
    if (stream_ && stream_->responseStarted()) {
      conn_.close(details);
      return;
    }
    // Envoy answers codec errors locally and closes the connection.
    if (!stream_) stream_ = std::make_unique<ActiveStream>(conn_, *this, codec_.protocol());
    stream_->streamInfo().setFlag(http::ResponseFlag::DownstreamProtocolError);
    close_after_response_ = true;
    stream_->sendLocalReply(status, status == 431 ? "" : "", 0, details, nullptr);
  }

  // ResponseSink
  void writeHeaders(const http::HeaderMap& headers, bool end_stream) override {
    std::string out;
    if (conn_.draining_ || close_after_response_) {
      http::HeaderMap h = headers;
      h.set("connection", "close");
      close_after_response_ = true;
      codec_.encodeHeaders(h, end_stream, out);
    } else {
      codec_.encodeHeaders(headers, end_stream, out);
    }
    conn_.write(out);
  }
  void writeData(std::string_view data, bool end_stream) override {
    std::string out;
    codec_.encodeData(data, end_stream, out);
    conn_.write(out);
  }
  void writeTrailers(const http::HeaderMap& trailers) override {
    std::string out;
    codec_.encodeTrailers(trailers, out);
    conn_.write(out);
  }
  void resetStream() override {
    close_after_response_ = true;
    reset_ = true;
  }

  // The stream finished: close or take the next pipelined request.
  void onStreamDone() {
    if (!stream_) return;  // already released (connection closing underneath the stream)
    bool close = reset_ || close_after_response_ || failed_ || codec_.shouldClose() ||
                 conn_.draining_ || !stream_->requestComplete();
    auto done = std::move(stream_);
    // Destroyed after the current call stack unwinds (the stream may be on it).
    conn_.worker().deferDelete(std::move(done));
    if (close) {
      conn_.closeAfterWrite(reset_ ? "upstream_reset" : "");
      return;
    }
    if (in_dispatch_) {
      resume_pending_ = true;
      return;
    }
    resume();
  }

 private:
  HttpConnection& conn_;
  http1::ServerCodec codec_;
  std::unique_ptr<ActiveStream> stream_;
  std::string pending_;
  bool failed_ = false;
  bool close_after_response_ = false;
  bool reset_ = false;
  bool in_dispatch_ = false;
  bool resume_pending_ = false;
};

// === HTTP/2: many streams ===

class Http2Downstream final : public http2::ServerCallbacks {
 public:
  explicit Http2Downstream(HttpConnection& conn) : conn_(conn) {
    http2::ServerSettings s;
    s.max_header_list_size = conn.config().max_request_headers_kb * 1024;
    session_ = std::make_unique<http2::ServerSession>(*this, s);
    flush();
  }

  struct StreamSink final : ResponseSink {
    Http2Downstream* owner;
    int32_t id;
    void writeHeaders(const http::HeaderMap& headers, bool end_stream) override {
      owner->session_->submitResponseHeaders(id, headers, end_stream);
      owner->scheduleFlush();
    }
    void writeData(std::string_view data, bool end_stream) override {
      owner->session_->submitData(id, data, end_stream);
      owner->checkStreamWatermark(id);
      owner->scheduleFlush();
    }
    void writeTrailers(const http::HeaderMap& trailers) override {
      owner->session_->submitTrailers(id, trailers);
      owner->scheduleFlush();
    }
    void resetStream() override {
      owner->session_->resetStream(id, 0x2 /* INTERNAL_ERROR */);
      owner->scheduleFlush();
    }
  };

  struct Entry {
    std::unique_ptr<StreamSink> sink;
    std::unique_ptr<ActiveStream> stream;
    // Response bytes waiting for the client's window (Session::bufferedBytes) against the
    // connection's buffer limit: high pauses the stream's upstream response.
    net::Watermark watermark;
  };

  // Envoy's per-stream send buffer watermark: a client that does not open its window fills the
  // stream's buffer, not the connection's, so the connection's watermark would not see it.
  void checkStreamWatermark(int32_t id) {
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    auto crossed = it->second.watermark.update(session_->bufferedBytes(id), conn_.bufferLimit());
    if (!crossed) return;
    if (*crossed) ++high_streams_;
    if (!*crossed && high_streams_) --high_streams_;
    if (it->second.stream) it->second.stream->onDownstreamWatermark(*crossed);
  }
  // After output drained (the client opened windows): streams that went low again resume.
  void checkHighStreams() {
    if (high_streams_ == 0) return;
    for (auto& [id, e] : streams_) {
      if (e.watermark.high()) checkStreamWatermark(id);
    }
  }
  void readDisable(int32_t id, bool disable) {
    session_->readDisable(id, disable);
    // Resuming queues WINDOW_UPDATEs.
    if (!disable) scheduleFlush();
  }

  void onBytes(const char* data, size_t n) {
    in_dispatch_ = true;
    bool ok = session_->dispatch(data, n);
    in_dispatch_ = false;
    flush();
    if (!ok) {
      conn_.config().stats->downstream_rq_protocol_error();
      conn_.closeAfterWrite("http2.protocol_error");
    } else if (session_->wantsClose()) {
      conn_.closeAfterWrite("");
    }
  }

  void flush() {
    flush_scheduled_ = false;
    std::string out;
    session_->drainOutput(out);
    if (!out.empty()) conn_.write(out);
    checkHighStreams();
  }
  // Coalesces writes of several streams handled in one loop iteration.
  void scheduleFlush() {
    if (in_dispatch_ || flush_scheduled_) return;
    flush_scheduled_ = true;
    asio::post(conn_.worker().loop(), [w = conn_.weak_from_this(), this] {
      if (auto c = w.lock(); c && !c->closed_ && c->http2_) flush();
    });
  }

  void goAway() {
    session_->goAway(0);
    flush();
  }
  bool idle() const { return streams_.empty(); }
  template <class F>
  void forEachStream(F&& f) {
    for (auto& [id, e] : streams_) {
      if (e.stream) f(*e.stream);
    }
  }
  void onConnectionClosed() {
    auto streams = std::move(streams_);
    streams_.clear();
    high_streams_ = 0;
    for (auto& [id, e] : streams) {
      if (e.stream) e.stream->onDownstreamReset("downstream_remote_disconnect");
    }
  }

  // http2::ServerCallbacks
  void onStreamHeaders(int32_t id, http::HeaderMap&& headers, bool end_stream) override {
    auto& e = streams_[id];
    if (e.stream) {
      // Trailers arrive as a second HEADERS frame.
      e.stream->decodeTrailers(std::move(headers));
      return;
    }
    e.sink = std::make_unique<StreamSink>();
    e.sink->owner = this;
    e.sink->id = id;
    e.stream = std::make_unique<ActiveStream>(conn_, *e.sink, http::Protocol::Http2);
    e.stream->stream_id = id;
    e.stream->decodeHeaders(std::move(headers), end_stream);
  }
  void onStreamData(int32_t id, std::string_view data, bool end_stream) override {
    if (auto it = streams_.find(id); it != streams_.end() && it->second.stream) {
      it->second.stream->decodeData(data, end_stream);
    }
  }
  void onStreamTrailers(int32_t id, http::HeaderMap&& trailers) override {
    if (auto it = streams_.find(id); it != streams_.end() && it->second.stream) {
      it->second.stream->decodeTrailers(std::move(trailers));
    }
  }
  void onStreamReset(int32_t id, uint32_t error_code) override {
    if (auto it = streams_.find(id); it != streams_.end() && it->second.stream) {
      auto e = std::move(it->second);
      streams_.erase(it);
      if (e.watermark.high() && high_streams_) --high_streams_;
      e.stream->onDownstreamReset("http2.remote_reset");
      deferDelete(std::move(e));
    }
  }
  void onStreamClose(int32_t id) override {
    if (auto it = streams_.find(id); it != streams_.end()) {
      auto e = std::move(it->second);
      streams_.erase(it);
      if (e.watermark.high() && high_streams_) --high_streams_;
      if (e.stream && !e.stream->complete()) e.stream->onDownstreamReset("http2.stream_closed");
      deferDelete(std::move(e));
    }
    if (streams_.empty() && conn_.draining_) conn_.closeAfterWrite("");
  }
  void onConnectionError(std::string_view details) override {}

  // A stream finished its response; its HTTP/2 stream closes when nghttp2 says so.
  void onStreamDone(ActiveStream& s) {}

 private:
  void deferDelete(Entry&& e) {
    auto holder = std::make_shared<Entry>(std::move(e));
    asio::post(conn_.worker().loop(), [holder] {});
  }

  HttpConnection& conn_;
  std::unique_ptr<http2::ServerSession> session_;
  std::unordered_map<int32_t, Entry> streams_;
  bool in_dispatch_ = false;
  bool flush_scheduled_ = false;
  size_t high_streams_ = 0;  // entries whose watermark is high
};

// === HttpConnection ===

HttpConnection::HttpConnection(Worker& worker, net::Transport&& transport,
                               std::shared_ptr<const HcmConfig> cfg, ConnectionInfo info,
                               uint32_t buffer_limit, ListenerConnectionStats listener_stats)
    : worker_(worker),
      transport_(std::move(transport)),
      config_(std::move(cfg)),
      info_(std::move(info)),
      buffer_limit_(buffer_limit),
      idle_timer_(worker.loop()),
      listener_stats_(std::move(listener_stats)) {
  config_->stats->downstream_cx_total->inc();
  config_->stats->downstream_cx_active->inc();
  worker_.track(this);
  worker_.onConnectionCountChanged();
}

HttpConnection::~HttpConnection() {
  config_->stats->downstream_cx_active->dec();
  worker_.untrack(this);
  worker_.onConnectionCountChanged();
}

void HttpConnection::start() {
  std::error_code ec;
  transport_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
  if (config_->codec == HcmConfig::Codec::Http2 || info_.alpn == "h2") {
    chooseCodec("h2");
  } else if (config_->codec == HcmConfig::Codec::Http1 || info_.tls) {
    chooseCodec("http/1.1");
  }
  armIdleTimer();
  startRead();
}

void HttpConnection::chooseCodec(std::string_view proto) {
  codec_chosen_ = true;
  if (proto == "h2") {
    config_->stats->downstream_cx_http2_total->inc();
    http2_ = std::make_unique<Http2Downstream>(*this);
  } else {
    config_->stats->downstream_cx_http1_total->inc();
    http1_ = std::make_unique<Http1Downstream>(*this);
  }
}

void HttpConnection::startRead() {
  if (closed_) return;
  auto self = shared_from_this();
  transport_.asyncReadSome(asio::buffer(read_buf_), [self](std::error_code ec, size_t n) {
    if (self->closed_) return;
    net::DispatchScope scope;
    if (ec) {
      self->close(ec == asio::error::eof ? "downstream_remote_disconnect"
                                         : "downstream_connection_error");
      return;
    }
    self->onBytes(self->read_buf_.data(), n);
    if (self->closed_) return;
    if (self->read_disable_count_ > 0) {
      self->reading_paused_ = true;
      // No read outstanding now: this reference keeps the connection alive until it resumes
      // or closes.
      self->paused_self_ = self;
    } else {
      self->startRead();
    }
  });
}

void HttpConnection::readDisable(bool disable) {
  if (http2_) return;
  if (disable) {
    ++read_disable_count_;
    return;
  }
  if (read_disable_count_ == 0) return;
  if (--read_disable_count_ == 0 && reading_paused_ && !closed_) {
    reading_paused_ = false;
    auto keep = std::move(paused_self_);
    startRead();
  }
}

void HttpConnection::readDisableStream(int32_t stream_id, bool disable) {
  if (http2_ && !closed_) http2_->readDisable(stream_id, disable);
}

void HttpConnection::checkWatermarks() {
  if (auto crossed = watermark_.update(out_inflight_.size() + out_pending_.size(), buffer_limit_)) {
    notifyWatermark(*crossed);
  }
}

void HttpConnection::notifyWatermark(bool above) {
  if (http1_) {
    if (ActiveStream* s = http1_->stream()) s->onDownstreamWatermark(above);
  } else if (http2_) {
    http2_->forEachStream([above](ActiveStream& s) { s.onDownstreamWatermark(above); });
  }
}

void HttpConnection::onBytes(const char* data, size_t n) {
  last_activity_ = std::chrono::steady_clock::now();
  config_->stats->downstream_cx_rx_bytes_total->add(n);
  if (!codec_chosen_) {
    // AUTO on plaintext: HTTP/2 prior knowledge starts with the connection preface.
    static constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    sniff_.append(data, n);
    size_t cmp = std::min(sniff_.size(), kPreface.size());
    if (sniff_.compare(0, cmp, kPreface.substr(0, cmp)) == 0) {
      if (sniff_.size() < kPreface.size()) return;
      chooseCodec("h2");
    } else {
      chooseCodec("http/1.1");
    }
    std::string buf = std::move(sniff_);
    sniff_.clear();
    onBytes(buf.data(), buf.size());
    return;
  }
  if (http2_) {
    http2_->onBytes(data, n);
  } else {
    http1_->onBytes(data, n);
  }
}

void HttpConnection::write(std::string_view data) {
  if (closed_ || data.empty()) return;
  config_->stats->downstream_cx_tx_bytes_total->add(data.size());
  out_pending_.append(data);
  checkWatermarks();
  if (writing_ || flush_scheduled_) return;
  // Writes made while handling one I/O completion (a response's headers and body, several
  // pipelined responses, HTTP/2 frames) go out in one send: flush when it is done.
  flush_scheduled_ = true;
  net::deferToEndOfDispatch(worker_.loop(), [self = shared_from_this()] {
    self->flush_scheduled_ = false;
    if (self->closed_ || self->writing_) return;
    if (!self->out_pending_.empty()) {
      self->out_inflight_.swap(self->out_pending_);
      self->out_pending_.clear();
      self->doWrite();
    } else if (self->close_after_write_) {
      self->close("");
    }
  });
}

void HttpConnection::doWrite() {
  writing_ = true;
  auto self = shared_from_this();
  transport_.asyncWrite(asio::buffer(out_inflight_), [self](std::error_code ec, size_t) {
    self->writing_ = false;
    if (self->closed_) return;
    if (ec) {
      self->close("downstream_write_error");
      return;
    }
    if (!self->out_pending_.empty()) {
      self->out_inflight_.swap(self->out_pending_);
      self->out_pending_.clear();
      self->checkWatermarks();
      self->doWrite();
    } else {
      self->out_inflight_.clear();
      self->checkWatermarks();
      if (self->close_after_write_) self->close("");
    }
  });
}

void HttpConnection::closeAfterWrite(std::string_view details) {
  if (writing_ || flush_scheduled_) {
    close_after_write_ = true;
  } else {
    close(details);
  }
}

void HttpConnection::onStreamDone(ActiveStream& s) {
  if (http1_) {
    http1_->onStreamDone();
  } else if (http2_) {
    http2_->onStreamDone(s);
  }
}

void HttpConnection::armIdleTimer() {
  if (config_->idle_timeout.count() == 0) return;
  last_activity_ = std::chrono::steady_clock::now();
  auto self = weak_from_this();
  idle_timer_.expires_after(config_->idle_timeout);
  idle_timer_.async_wait([self](std::error_code ec) {
    auto c = self.lock();
    if (ec || !c || c->closed_) return;
    auto idle_for = std::chrono::steady_clock::now() - c->last_activity_;
    bool busy = c->http1_ ? !c->http1_->idle() : (c->http2_ && !c->http2_->idle());
    if (busy || idle_for < c->config_->idle_timeout) {
      c->armIdleTimer();
      return;
    }
    c->config_->stats->downstream_cx_idle_timeout->inc();
    if (c->http2_) {
      c->http2_->goAway();
    }
    c->closeAfterWrite("idle_timeout");
  });
}

void HttpConnection::startDrain() {
  if (closed_ || draining_) return;
  draining_ = true;
  if (http2_) {
    http2_->goAway();
    if (http2_->idle()) closeAfterWrite("");
  } else if (!http1_ || http1_->idle()) {
    closeAfterWrite("");
  }
}

void HttpConnection::closeNow() { close("drain_timeout"); }

void HttpConnection::close(std::string_view details) {
  if (closed_) return;
  closed_ = true;
  idle_timer_.cancel();
  transport_.close();
  auto self = shared_from_this();
  paused_self_.reset();
  if (http1_) http1_->onConnectionClosed();
  if (http2_) http2_->onConnectionClosed();
  config_->stats->downstream_cx_destroy->inc();
}

void HttpConnection::touch() { last_activity_ = std::chrono::steady_clock::now(); }
void HttpConnection::flushCodec() {
  if (http2_) http2_->flush();
}

}  // namespace mast::proxy::server
