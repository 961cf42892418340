#include "proxy/server/active_stream.h"

#include <charconv>

#include "base/logging.h"
#include "proxy/access_log/access_log.h"
#include "proxy/router/route_table.h"
#include "proxy/server/hcm_stats.h"
#include "proxy/server/http_util.h"
#include "proxy/server/router_filter.h"
#include "proxy/server/server.h"

namespace mast::proxy::server {

ActiveStream::ActiveStream(HttpConnection& conn, ResponseSink& sink, http::Protocol protocol)
    : conn_(conn), sink_(sink) {
  info_.start_time = std::chrono::system_clock::now();
  info_.start_mono = std::chrono::steady_clock::now();
  info_.protocol = protocol;
  const auto& ci = conn.info();
  info_.downstream_remote_address = ci.remote_str;
  info_.downstream_direct_remote_address = ci.remote_str;
  info_.downstream_local_address = ci.local_str;
  info_.requested_server_name = ci.sni;
  info_.filter_chain_name = ci.filter_chain_name;
  info_.downstream_tls = ci.tls;
  info_.request_headers = &request_headers_;
  auto& st = *conn.config().stats;
  st.downstream_rq_total->inc();
  st.downstream_rq_active->inc();
  if (protocol == http::Protocol::Http2) {
    st.downstream_rq_http2_total->inc();
  } else {
    st.downstream_rq_http1_total->inc();
  }
  // A stream that starts while the connection's write buffer is high starts paused; the
  // connection's "low" later counts down this one too.
  if (conn.aboveWriteHighWatermark()) downstream_above_ = 1;
  idle_timeout_ = conn.config().stream_idle_timeout;
  if (idle_timeout_.count() > 0) armIdleTimer();
  if (conn.config().request_timeout.count() > 0) {
    // request_timeout: the whole request must arrive within it (disarmed once it has).
    request_deadline_.arm(conn_.worker().deadlines(), conn.config().request_timeout,
                          [this] { onRequestTimeout(); });
  }
}

void ActiveStream::onRequestComplete() {
  request_complete_ = true;
  info_.last_downstream_rx_byte = std::chrono::steady_clock::now() - info_.start_mono;
  request_deadline_.cancel();
}

void ActiveStream::onRequestTimeout() {
  if (finished_ || request_complete_) return;
  conn_.config().stats->downstream_rq_timeout->inc();
  if (!response_started_) {
    sendLocalReply(408, "request timeout", 0, "request_overall_timeout", nullptr);
  } else {
    resetDownstream("request_overall_timeout");
  }
}

ActiveStream::~ActiveStream() {
  if (!finished_) {
    // Destroyed with the connection before completing.
    info_.setFlag(http::ResponseFlag::DownstreamConnectionTermination);
    finish();
  }
}

void ActiveStream::armIdleTimer() {
  last_activity_ = std::chrono::steady_clock::now();
  armIdleDeadline(idle_timeout_);
}

void ActiveStream::armIdleDeadline(std::chrono::steady_clock::duration after) {
  idle_deadline_.arm(conn_.worker().deadlines(), after, [this] {
    // Lazily re-armed: activity only records a time stamp.
    auto idle_for = std::chrono::steady_clock::now() - last_activity_;
    if (idle_for < idle_timeout_) {
      armIdleDeadline(idle_timeout_ - idle_for);
      return;
    }
    onIdleTimeout();
  });
}

void ActiveStream::onIdleTimeout() {
  if (finished_) return;
  auto idle_for = std::chrono::steady_clock::now() - last_activity_;
  if (idle_for < idle_timeout_) {
    armIdleDeadline(idle_timeout_ - idle_for);
    return;
  }
  conn_.config().stats->downstream_rq_idle_timeout->inc();
  info_.setFlag(http::ResponseFlag::StreamIdleTimeout);
  if (!response_started_) {
    // Envoy: 408 while the request is still arriving, 504 once it is complete.
    sendLocalReply(request_complete_ ? 504 : 408, "stream timeout", 0, "stream_idle_timeout",
                   nullptr);
  } else {
    resetDownstream("stream_idle_timeout");
  }
}

bool ActiveStream::prepareRequest() {
  auto& h = request_headers_;
  const auto& cfg = conn_.config();
  std::string_view method = h.method();
  is_head_ = method == "HEAD";
  std::string_view ct = h.getOr("content-type");
  is_grpc_ = ct.substr(0, 16) == "application/grpc";
  // Absolute-form request target (a proxy request): split into :authority and :path.
  std::string_view path = h.path();
  if (path.substr(0, 7) == "http://" || path.substr(0, 8) == "https://") {
    std::string p(path);
    size_t start = p.find("://") + 3;
    size_t slash = p.find('/', start);
    std::string authority =
        p.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    std::string rest = slash == std::string::npos ? "/" : p.substr(slash);
    h.set(":authority", authority);
    h.set(":path", rest);
  }
  if (method != "CONNECT") {
    if (h.path().empty() || (h.path()[0] != '/' && h.path() != "*")) {
      sendLocalReply(400, "", 0, "http1.invalid_url", nullptr);
      return false;
    }
    if (info_.protocol == http::Protocol::Http11 && h.authority().empty()) {
      sendLocalReply(400, "missing_host_header", 0, "missing_host_header", nullptr);
      return false;
    }
  }
  if (!h.has(":scheme")) h.add(":scheme", conn_.info().tls ? "https" : "http");
  if (cfg.normalize_path || cfg.merge_slashes) {
    auto normalized = normalizePath(h.path(), cfg.normalize_path, cfg.merge_slashes);
    if (!normalized) {
      sendLocalReply(400, "", 0, "path_normalization_failed", nullptr);
      return false;
    }
    if (*normalized != h.path()) h.set(":path", *normalized);
  }
  // x-forwarded-for / x-forwarded-proto (Envoy's edge rules when use_remote_address is set).
  if (cfg.use_remote_address) {
    if (!cfg.skip_xff_append) {
      std::string ip = net::ipString(conn_.info().remote);
      const std::string* xff = h.get("x-forwarded-for");
      h.set("x-forwarded-for", xff ? *xff + "," + ip : ip);
    }
    h.set("x-forwarded-proto", conn_.info().tls ? "https" : "http");
  } else {
    h.setIfAbsent("x-forwarded-proto", conn_.info().tls ? "https" : "http");
    // The client address is the one xff_num_trusted_hops from the right of x-forwarded-for.
    if (const std::string* xff = h.get("x-forwarded-for")) {
      if (auto client = xffClientAddress(*xff, cfg.xff_num_trusted_hops)) {
        info_.downstream_remote_address = *client;
      }
    }
  }
  if (cfg.generate_request_id && !h.has("x-request-id")) {
    h.add("x-request-id", uuid4(conn_.worker()));
  }
  if (!cfg.via.empty()) {
    const std::string* via = h.get("via");
    h.set("via", via ? *via + ", " + cfg.via : cfg.via);
  }
  return true;
}

void ActiveStream::decodeHeaders(http::HeaderMap&& headers, bool end_stream) {
  request_headers_ = std::move(headers);
  last_activity_ = std::chrono::steady_clock::now();
  if (end_stream) onRequestComplete();
  if (!prepareRequest()) return;
  const auto& cfg = conn_.config();
  // RDS: this worker's current table, held for the stream's life (route_ points into it).
  route_table_ = cfg.routes ? cfg.routes
                 : cfg.rds  ? cfg.rds->per_worker[conn_.worker().index()]
                            : nullptr;
  if (route_table_) {
    route_ = route_table_->route(request_headers_, conn_.worker().random());
  }
  if (route_) info_.route_name = route_->name();
  if (route_ && route_->idleTimeout()) {
    // The route's idle_timeout replaces stream_idle_timeout for this stream (0 disables).
    idle_timeout_ = *route_->idleTimeout();
    if (idle_timeout_.count() > 0) {
      armIdleTimer();
    } else {
      idle_deadline_.cancel();
    }
  }
  if (!upgradeAllowed()) {
    // Envoy: an upgrade (or CONNECT) that neither upgrade_configs nor the route enables.
    bool http1 = info_.protocol != http::Protocol::Http2;
    sendLocalReply(403, "", 0, "upgrade_failed", [http1](http::HeaderMap& h) {
      if (http1) h.set("connection", "close");
    });
    return;
  }
  // Build the chain: configured filters, then the router.
  filters_.reserve(cfg.filters.size() + 1);
  for (const auto& [name, factory] : cfg.filters) {
    auto f = factory->createFilter();
    f->setCallbacks(*this);
    filters_.emplace_back(&name, std::move(f));
  }
  auto router = std::make_unique<RouterFilter>(*this);
  router_ = router.get();
  router->setCallbacks(*this);
  static const std::string kRouterName = "envoy.filters.http.router";
  filters_.emplace_back(&kRouterName, std::move(router));
  runDecodeFilters(0, true);
}

bool ActiveStream::upgradeAllowed() const {
  std::string type;
  if (request_headers_.method() == "CONNECT") {
    type = "connect";
  } else if (const std::string* u = request_headers_.get("upgrade")) {
    type = *u;
    http::toLowerInPlace(type);
  } else {
    return true;  // not an upgrade
  }
  // A route's explicit setting wins; otherwise the connection manager's upgrade_configs.
  if (route_) {
    if (auto o = route_->upgradeOverride(type)) return *o;
  }
  for (const auto& [t, enabled] : conn_.config().upgrades) {
    if (t == type) return enabled;
  }
  return false;
}

void ActiveStream::runDecodeFilters(size_t from, bool headers_pending) {
  for (size_t i = from; i < filters_.size(); ++i) {
    if (local_reply_sent_ || finished_) return;
    auto* f = filters_[i].second.get();
    if (headers_pending) {
      bool end =
          request_complete_ && buffered_body_.empty() && !buffered_trailers_ && !buffered_end_;
      if (f->decodeHeaders(request_headers_, end) == filters::FilterStatus::StopIteration &&
          i + 1 < filters_.size()) {
        stopped_ = true;
        stopped_at_ = i;
        return;
      }
    }
  }
  if (local_reply_sent_ || finished_) return;
  headers_passed_ = true;
  stopped_ = false;
  if (buffer_read_disabled_) {
    buffer_read_disabled_ = false;
    readDisable(false);
  }
  if (!buffered_body_.empty() || buffered_end_) {
    std::string body = std::move(buffered_body_);
    buffered_body_.clear();
    bool end = buffered_end_ && !buffered_trailers_;
    buffered_end_ = false;
    for (auto& [name, f] : filters_) {
      if (f->decodeData(body, end) == filters::FilterStatus::StopIteration) break;
    }
  }
  if (buffered_trailers_ && router_) {
    auto t = std::move(*buffered_trailers_);
    buffered_trailers_.reset();
    router_->decodeTrailers(std::move(t));
  }
}

void ActiveStream::continueDecoding() {
  if (!stopped_ || finished_) return;
  stopped_ = false;
  runDecodeFilters(stopped_at_ + 1, true);
}

void ActiveStream::decodeData(std::string_view data, bool end_stream) {
  last_activity_ = std::chrono::steady_clock::now();
  info_.bytes_received += data.size();
  if (end_stream) onRequestComplete();
  if (local_reply_sent_ || finished_) return;
  if (!headers_passed_) {
    buffered_body_.append(data);
    buffered_end_ = buffered_end_ || end_stream;
    uint32_t limit = conn_.bufferLimit();
    if (limit && buffered_body_.size() > limit && !buffer_read_disabled_) {
      buffer_read_disabled_ = true;
      readDisable(true);
    }
    return;
  }
  std::string body(data);
  for (auto& [name, f] : filters_) {
    if (f->decodeData(body, end_stream) == filters::FilterStatus::StopIteration) break;
  }
}

void ActiveStream::decodeTrailers(http::HeaderMap&& trailers) {
  onRequestComplete();
  if (local_reply_sent_ || finished_) return;
  if (!headers_passed_) {
    buffered_trailers_ = std::move(trailers);
    return;
  }
  if (router_) router_->decodeTrailers(std::move(trailers));
}

const void* ActiveStream::perFilterConfig(std::string_view filter_name) const {
  return route_ ? route_->perFilterConfig(filter_name) : nullptr;
}

void ActiveStream::encodeHeaders(http::HeaderMap&& headers, bool end_stream) {
  if (finished_ || response_started_) return;
  response_started_ = true;
  last_activity_ = std::chrono::steady_clock::now();
  response_headers_ = std::move(headers);
  info_.response_headers = &response_headers_;
  // Encoder filters run last-to-first.
  for (auto it = filters_.rbegin(); it != filters_.rend(); ++it) {
    it->second->encodeHeaders(response_headers_, end_stream);
  }
  const auto& cfg = conn_.config();
  if (!cfg.server_header_pass_through || !response_headers_.has("server")) {
    response_headers_.set("server", cfg.server_name);
  }
  response_headers_.setIfAbsent("date", httpDate(conn_.worker()));
  // /healthcheck/fail: Envoy drain-closes inbound connections: HTTP/1 after each response,
  // HTTP/2 with a GOAWAY (streams already open finish, then the connection closes).
  if (conn_.worker().server().healthCheckFailed()) {
    if (info_.protocol != http::Protocol::Http2) {
      response_headers_.set("connection", "close");
    } else {
      conn_.startDrain();
    }
  }
  int status = response_headers_.status();
  info_.response_code = status;
  if (is_head_) end_stream = true;
  info_.first_downstream_tx_byte = std::chrono::steady_clock::now() - info_.start_mono;
  if (end_stream) response_complete_ = true;
  sink_.writeHeaders(response_headers_, end_stream);
  if (end_stream) finish();
}

void ActiveStream::encodeData(std::string_view data, bool end_stream) {
  if (finished_) return;
  last_activity_ = std::chrono::steady_clock::now();
  info_.bytes_sent += data.size();
  if (is_head_) {
    if (end_stream) {
      response_complete_ = true;
      finish();
    }
    return;
  }
  if (end_stream) response_complete_ = true;
  sink_.writeData(data, end_stream);
  if (end_stream) finish();
}

void ActiveStream::encodeTrailers(http::HeaderMap&& trailers) {
  if (finished_) return;
  response_trailers_ = std::move(trailers);
  info_.response_trailers = &response_trailers_;
  response_complete_ = true;
  if (!is_head_) sink_.writeTrailers(response_trailers_);
  finish();
}

void ActiveStream::resetDownstream(std::string_view details) {
  if (finished_) return;
  if (info_.response_code_details.empty()) info_.response_code_details = details;
  sink_.resetStream();
  finish();
}

void ActiveStream::onDownstreamWatermark(bool above) {
  if (above) {
    if (downstream_above_++ > 0) return;
  } else if (downstream_above_ == 0 || --downstream_above_ > 0) {
    return;
  }
  if (router_ && !finished_) router_->onDownstreamWatermark(above);
}

void ActiveStream::readDisable(bool disable) {
  if (conn_.isHttp2()) {
    conn_.readDisableStream(stream_id, disable);
  } else {
    conn_.readDisable(disable);
  }
}

void ActiveStream::onDownstreamReset(std::string_view details) {
  if (finished_) return;
  info_.setFlag(http::ResponseFlag::DownstreamConnectionTermination);
  if (info_.connection_termination_details.empty()) info_.connection_termination_details = details;
  conn_.config().stats->downstream_rq_rx_reset->inc();
  finish();
}

void ActiveStream::sendLocalReply(int status, std::string_view body, uint32_t response_flags,
                                  std::string_view details,
                                  const std::function<void(http::HeaderMap&)>& modify_headers) {
  if (finished_) return;
  info_.response_flags |= response_flags;
  info_.response_code_details = details;
  if (response_started_) {
    // Too late for a reply: the only thing left is to abort the stream.
    resetDownstream(details);
    return;
  }
  local_reply_sent_ = true;
  if (router_) router_->onLocalReply();
  http::HeaderMap h;
  h.add(":status", std::to_string(status));
  if (is_grpc_) {
    // gRPC clients get a trailers-only response carrying grpc-status (Envoy's mapping).
    h.add("content-type", "application/grpc");
    h.add("grpc-status", std::to_string(grpcStatusForHttp(status)));
    if (!body.empty()) h.add("grpc-message", std::string(body));
    h.set(":status", "200");
    if (modify_headers) modify_headers(h);
    encodeHeaders(std::move(h), true);
    return;
  }
  if (modify_headers) modify_headers(h);
  if (body.empty()) {
    h.add("content-length", "0");
    encodeHeaders(std::move(h), true);
    return;
  }
  h.add("content-length", std::to_string(body.size()));
  h.add("content-type", "text/plain");
  std::string b(body);
  encodeHeaders(std::move(h), false);
  encodeData(b, true);
}

void ActiveStream::finish() {
  if (finished_) return;
  finished_ = true;
  idle_deadline_.cancel();
  request_deadline_.cancel();
  info_.request_complete = std::chrono::steady_clock::now() - info_.start_mono;
  if (response_complete_) info_.last_downstream_tx_byte = info_.request_complete;
  if (buffer_read_disabled_) {
    buffer_read_disabled_ = false;
    readDisable(false);
  }
  for (auto& [name, f] : filters_) f->onDestroy();
  auto& st = *conn_.config().stats;
  st.downstream_rq_active->dec();
  if (info_.response_code) {
    st.recordResponseCode(*info_.response_code);
  }
  st.downstream_rq_time->record(
      std::chrono::duration_cast<std::chrono::milliseconds>(*info_.request_complete).count());
  for (const auto& log : conn_.config().access_logs) log->log(info_);
  conn_.onStreamDone(*this);
}

}  // namespace mast::proxy::server
