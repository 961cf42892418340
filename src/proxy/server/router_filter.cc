#include "proxy/server/router_filter.h"

#include "base/logging.h"
#include "proxy/router/route_table.h"
#include "proxy/server/active_stream.h"
#include "proxy/server/cluster_manager.h"
#include "proxy/server/hcm_stats.h"
#include "proxy/server/http_util.h"
#include "proxy/upstream/upstream.h"

namespace mast::proxy::server {

namespace {
constexpr std::string_view kResetBody =
    "upstream connect error or disconnect/reset before headers. reset reason: ";

uint32_t flagFor(ResetReason r) {
  switch (r) {
    case ResetReason::ConnectFailure:
      return uint32_t(http::ResponseFlag::UpstreamConnectionFailure);
    case ResetReason::ConnectionTermination:
      return uint32_t(http::ResponseFlag::UpstreamConnectionTermination);
    case ResetReason::RemoteReset:
      return uint32_t(http::ResponseFlag::UpstreamRemoteReset);
    case ResetReason::Overflow:
      return uint32_t(http::ResponseFlag::UpstreamOverflow);
    case ResetReason::ProtocolError:
      return uint32_t(http::ResponseFlag::UpstreamProtocolError);
    case ResetReason::LocalReset:
      return uint32_t(http::ResponseFlag::LocalReset);
  }
  return 0;
}

// Fire-and-forget shadow request: keeps itself alive until the upstream answers or fails.
class ShadowRequest final : public UpstreamCallbacks {
 public:
  static void start(asio::io_context& loop, WorkerCluster& cluster, const http::HeaderMap& headers,
                    const std::string& body, std::optional<uint64_t> hash,
                    http::Protocol downstream) {
    auto choice = cluster.chooseHost(hash, std::nullopt, nullptr);
    if (!choice) return;
    auto* self = new ShadowRequest(loop);
    self->stream_ = cluster.pool(*choice, downstream).newStream(*self);
    self->stream_->sendHeaders(headers, body.empty());
    if (!body.empty()) self->stream_->sendData(body, true);
  }
  void onUpstreamHeaders(http::HeaderMap&&, bool end) override {
    if (end) done();
  }
  void onUpstreamData(std::string_view, bool end) override {
    if (end) done();
  }
  void onUpstreamTrailers(http::HeaderMap&&) override { done(); }
  void onUpstreamReset(ResetReason, std::string_view) override { done(); }
  // The whole shadow request is handed over at once; there is no source to pause.
  void onUpstreamWatermark(bool) override {}

 private:
  explicit ShadowRequest(asio::io_context& loop) : loop_(loop) {}
  void done() {
    if (done_) return;
    done_ = true;
    // The pool is still on the stack: free on the next loop turn.
    asio::post(loop_, [this] { delete this; });
  }
  asio::io_context& loop_;
  std::unique_ptr<PoolStream> stream_;
  bool done_ = false;
};

// "10.0.0.1:80" or "[::1]:80".
std::optional<net::Endpoint> parseHostPort(std::string_view v) {
  size_t colon = v.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= v.size()) return std::nullopt;
  std::string_view host = v.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  uint32_t port = 0;
  for (char c : v.substr(colon + 1)) {
    if (c < '0' || c > '9' || port > 65535) return std::nullopt;
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port == 0 || port > 65535) return std::nullopt;
  auto ep = net::parseEndpoint(host, port);
  if (!ep) return std::nullopt;
  return *ep;
}

std::string shadowAuthority(std::string_view authority) {
  size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && authority.find(']') == std::string_view::npos) {
    return std::string(authority.substr(0, colon)) + "-shadow" +
           std::string(authority.substr(colon));
  }
  return std::string(authority) + "-shadow";
}

}  // namespace

RouterFilter::RouterFilter(ActiveStream& stream) : stream_(stream) {}

RouterFilter::~RouterFilter() { cleanupAttempt(); }

void RouterFilter::onDestroy() {
  done_ = true;
  global_deadline_.cancel();
  if (backoff_timer_) backoff_timer_->cancel();
  cleanupAttempt();
}

void RouterFilter::onLocalReply() {
  done_ = true;
  global_deadline_.cancel();
  if (backoff_timer_) backoff_timer_->cancel();
  cleanupAttempt();
}

filters::FilterStatus RouterFilter::decodeHeaders(http::HeaderMap& headers, bool end_stream) {
  route_ = stream_.route();
  auto& info = stream_.streamInfo();
  if (!route_) {
    stream_.connection().config().stats->downstream_rq_no_route();
    stream_.sendLocalReply(404, "", uint32_t(http::ResponseFlag::NoRouteFound), "route_not_found",
                           nullptr);
    return filters::FilterStatus::StopIteration;
  }
  if (const auto* dr = route_->directResponse()) {
    std::string body = dr->body;
    stream_.sendLocalReply(
        static_cast<int>(dr->status), body, 0, "direct_response",
        [this](http::HeaderMap& h) { route_->applyResponseHeaders(h, nullptr); });
    return filters::FilterStatus::StopIteration;
  }
  if (route_->isRedirect()) {
    std::string location = route_->redirectLocation(headers, stream_.connection().info().tls);
    int code = route_->redirectResponseCode();
    stream_.sendLocalReply(code, "", 0, "direct_response",
                           [&](http::HeaderMap& h) { h.set("location", location); });
    return filters::FilterStatus::StopIteration;
  }
  auto choice = route_->selectCluster(headers, stream_.random());
  if (!choice.name || choice.name->empty()) {
    stream_.sendLocalReply(503, "", uint32_t(http::ResponseFlag::NoClusterFound),
                           "cluster_not_found", nullptr);
    return filters::FilterStatus::StopIteration;
  }
  cluster_name_ = *choice.name;
  weighted_ = choice.weighted;
  info.upstream_cluster = cluster_name_;
  cluster_ = stream_.connection().worker().clusters().get(cluster_name_);
  if (!cluster_) {
    stream_.sendLocalReply(503, "", uint32_t(http::ResponseFlag::NoClusterFound),
                           "cluster_not_found", nullptr);
    return filters::FilterStatus::StopIteration;
  }
  // The request as it goes upstream.
  upstream_headers_ = headers;
  route_->applyRewrites(upstream_headers_);
  route_->applyRequestHeaders(upstream_headers_, weighted_, info);
  const auto& conn_info = stream_.connection().info();
  hash_ = route_->computeHash(upstream_headers_, net::ipString(conn_info.remote),
                              conn_info.remote_str + conn_info.local_str, &set_cookies_);
  if (const auto* rp = route_->retryPolicy()) retries_left_ = rp->num_retries;
  request_end_ = end_stream;
  request_start_ = std::chrono::steady_clock::now();
  if (!stream_.connection().config().suppress_envoy_headers) {
    auto t = route_->timeout();
    if (t.count() > 0) {
      upstream_headers_.set("x-envoy-expected-rq-timeout-ms", std::to_string(t.count()));
    }
  }
  startAttempt();
  if (end_stream) onRequestComplete();
  return filters::FilterStatus::StopIteration;
}

filters::FilterStatus RouterFilter::decodeData(std::string& data, bool end_stream) {
  if (done_) return filters::FilterStatus::StopIteration;
  // Keep the body for retries and mirrors while it fits the connection's buffer limit
  // (per_connection_buffer_limit_bytes); past it Envoy gives up retrying and mirroring.
  bool buffering = retries_left_ > 0 || route_->hasMirrors();
  uint32_t limit = stream_.connection().bufferLimit();
  if (!body_overflowed_ && buffering) {
    if (limit && body_.size() + data.size() > limit) {
      body_overflowed_ = true;
      body_.clear();
      body_.shrink_to_fit();
      if (cluster_) cluster_->runtime().stats().retry_or_shadow_abandoned->inc();
      if (!upstream_) {
        // Waiting for a retry's back-off with a body that can no longer be replayed.
        if (backoff_timer_) backoff_timer_->cancel();
        global_deadline_.cancel();
        stream_.sendLocalReply(507, "exceeded request buffer limit while retrying upstream", 0,
                               "request_payload_exceeded_retry_buffer_limit", nullptr);
        return filters::FilterStatus::StopIteration;
      }
    } else {
      body_.append(data);
    }
  }
  request_end_ = end_stream;
  if (upstream_) upstream_->sendData(data, end_stream);
  if (end_stream) onRequestComplete();
  return filters::FilterStatus::StopIteration;
}

void RouterFilter::decodeTrailers(http::HeaderMap&& trailers) {
  if (done_) return;
  request_end_ = true;
  trailers_ = trailers;
  if (upstream_) upstream_->sendTrailers(trailers);
  onRequestComplete();
}

void RouterFilter::onRequestComplete() {
  // The global route timeout starts once the whole request has been received (Envoy).
  auto t = route_->timeout();
  if (t.count() > 0 && !global_armed_) {
    global_armed_ = true;
    global_deadline_.arm(stream_.connection().worker().deadlines(), t,
                         [this] { onGlobalTimeout(); });
  }
  startMirrors();
}

void RouterFilter::startMirrors() {
  // A body over the buffer limit was not kept: Envoy abandons the shadows then.
  if (body_overflowed_) return;
  for (const auto& m : route_->mirrorPolicies()) {
    if (!m.sampled(stream_.random())) continue;
    auto* cluster = stream_.connection().worker().clusters().get(m.cluster);
    if (!cluster) continue;
    http::HeaderMap h = upstream_headers_;
    h.set(":authority", shadowAuthority(h.authority()));
    ShadowRequest::start(stream_.eventLoop(), *cluster, h, body_, hash_,
                         stream_.streamInfo().protocol);
  }
}

void RouterFilter::startAttempt() {
  auto& info = stream_.streamInfo();
  auto& rt = cluster_->runtime();
  auto& cstats = rt.stats();
  std::optional<net::Endpoint> orig;
  if (rt.isOriginalDst()) {
    orig = stream_.connection().info().local;
    // original_dst_lb_config.use_http_header: "x-envoy-original-dst-host: ip:port" wins.
    if (rt.config().use_http_header_for_original_dst) {
      if (const std::string* v = upstream_headers_.get("x-envoy-original-dst-host")) {
        if (auto ep = parseHostPort(*v)) orig = *ep;
      }
    }
  }
  auto host = cluster_->chooseHost(hash_, orig, attempts_ > 0 ? host_.get() : nullptr);
  if (!host) {
    cstats.upstream_cx_none_healthy->inc();
    stream_.sendLocalReply(503, "no healthy upstream",
                           uint32_t(http::ResponseFlag::NoHealthyUpstream), "no_healthy_upstream",
                           nullptr);
    return;
  }
  if (!rt.tryAcquireRequest()) {
    cstats.upstream_rq_pending_overflow->inc();
    stream_.sendLocalReply(503, std::string(kResetBody) + "overflow",
                           uint32_t(http::ResponseFlag::UpstreamOverflow),
                           "upstream_reset_before_response_started{overflow}", nullptr);
    return;
  }
  request_acquired_ = true;
  ++attempts_;
  if (host->host) {
    // LEAST_REQUEST reads this; released when the attempt ends (releaseHost).
    host->host->active_requests.fetch_add(1, std::memory_order_relaxed);
    host->host->rq_total.fetch_add(1, std::memory_order_relaxed);
    host_active_ = true;
  }
  info.attempt_count = attempts_;
  host_ = host->host;
  host_label_ = host->label;
  info.upstream_host = host->label;
  attempt_start_ = std::chrono::steady_clock::now();
  cstats.upstream_rq_total->inc();
  cstats.upstream_rq_active->inc();
  http::HeaderMap& h = upstream_headers_;
  if (route_->autoHostRewrite() && !host->hostname.empty()) h.set(":authority", host->hostname);
  if (attempts_ > 1 || route_->retryPolicy()) {
    h.set("x-envoy-attempt-count", std::to_string(attempts_));
  }
  upstream_ = cluster_->pool(*host, stream_.streamInfo().protocol).newStream(*this);
  if (stream_.aboveDownstreamWatermark()) upstream_->readDisable(true);
  bool end = request_end_ && !trailers_ && (attempts_ == 1 || body_.empty());
  if (attempts_ == 1) {
    upstream_->sendHeaders(h, request_end_ && !trailers_ && body_.empty() && request_end_);
  } else {
    // A retry replays what was buffered.
    upstream_->sendHeaders(h, request_end_ && body_.empty() && !trailers_);
    if (!body_.empty()) upstream_->sendData(body_, request_end_ && !trailers_);
    if (trailers_) upstream_->sendTrailers(*trailers_);
  }
  (void)end;
  if (!info.first_upstream_tx_byte) {
    info.first_upstream_tx_byte = std::chrono::steady_clock::now() - info.start_mono;
  }
  if (const auto* rp = route_->retryPolicy(); rp && rp->per_try_timeout.count() > 0) {
    try_deadline_.arm(stream_.connection().worker().deadlines(), rp->per_try_timeout,
                      [this] { onPerTryTimeout(); });
  }
}

void RouterFilter::releaseHost() {
  if (host_active_ && host_) host_->active_requests.fetch_sub(1, std::memory_order_relaxed);
  host_active_ = false;
}

void RouterFilter::cleanupAttempt() {
  releaseHost();
  if (downstream_read_disabled_) {
    downstream_read_disabled_ = false;
    stream_.readDisable(false);
  }
  try_deadline_.cancel();
  if (upstream_) {
    upstream_->reset();
    upstream_.reset();
  }
  if (request_acquired_ && cluster_) {
    cluster_->runtime().releaseRequest();
    cluster_->runtime().stats().upstream_rq_active->dec();
    request_acquired_ = false;
  }
}

void RouterFilter::onUpstreamWatermark(bool above) {
  if (above == downstream_read_disabled_ || (above && done_)) return;
  downstream_read_disabled_ = above;
  stream_.readDisable(above);
}

void RouterFilter::onDownstreamWatermark(bool above) {
  if (upstream_) upstream_->readDisable(above);
}

void RouterFilter::onUpstreamConnected(const std::string& local_address) {
  stream_.streamInfo().upstream_local_address = local_address;
}

void RouterFilter::reportOutlier(int status, bool local_failure) {
  if (host_) {
    auto& c = local_failure || status >= 500 ? host_->rq_error : host_->rq_success;
    c.fetch_add(1, std::memory_order_relaxed);
  }
  if (host_ && cluster_) cluster_->runtime().reportResult(*host_, status, local_failure);
}

void RouterFilter::onUpstreamHeaders(http::HeaderMap&& headers, bool end_stream) {
  if (done_) return;
  auto& info = stream_.streamInfo();
  int status = headers.status();
  info.first_upstream_rx_byte = std::chrono::steady_clock::now() - info.start_mono;
  reportOutlier(status, false);
  if (!response_started_ && maybeRetry(false, ResetReason::RemoteReset, status, &headers)) return;
  response_started_ = true;
  auto& cstats = cluster_->runtime().stats();
  cstats.recordResponseCode(status);
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - request_start_);
  cstats.upstream_rq_time->record(elapsed.count());
  if (!stream_.connection().config().suppress_envoy_headers) {
    headers.set("x-envoy-upstream-service-time", std::to_string(elapsed.count()));
  }
  route_->applyResponseHeaders(headers, weighted_);
  for (const auto& c : set_cookies_) headers.add("set-cookie", c.setCookieValue());
  info.response_code_details = "via_upstream";
  if (end_stream) {
    upstream_response_complete_ = true;
    finishUpstream();
  }
  stream_.encodeHeaders(std::move(headers), end_stream);
}

void RouterFilter::onUpstreamData(std::string_view data, bool end_stream) {
  if (done_ || !response_started_) return;
  if (end_stream) {
    upstream_response_complete_ = true;
    finishUpstream();
  }
  stream_.encodeData(data, end_stream);
}

void RouterFilter::onUpstreamTrailers(http::HeaderMap&& trailers) {
  if (done_ || !response_started_) return;
  upstream_response_complete_ = true;
  finishUpstream();
  stream_.encodeTrailers(std::move(trailers));
}

void RouterFilter::finishUpstream() {
  releaseHost();
  global_deadline_.cancel();
  try_deadline_.cancel();
  // The pool stream completed on its own; release the breaker slot only.
  if (request_acquired_ && cluster_) {
    cluster_->runtime().releaseRequest();
    cluster_->runtime().stats().upstream_rq_active->dec();
    cluster_->runtime().stats().upstream_rq_completed->inc();
    request_acquired_ = false;
  }
}

void RouterFilter::onUpstreamReset(ResetReason reason, std::string_view details) {
  if (done_) return;
  details_ = details;
  upstream_.reset();
  auto& info = stream_.streamInfo();
  auto& cstats = cluster_->runtime().stats();
  if (reason == ResetReason::ConnectFailure) {
    cstats.upstream_cx_connect_fail->inc();
    reportOutlier(0, true);
    info.upstream_transport_failure_reason = std::string(details);
  } else if (reason == ResetReason::Overflow) {
    // Counted by the pool (upstream_rq_pending_overflow) when it refused the stream.
  } else {
    cstats.upstream_rq_rx_reset->inc();
  }
  if (!response_started_ && maybeRetry(true, reason, 0, nullptr)) return;
  failUpstream(reason, details);
}

void RouterFilter::failUpstream(ResetReason reason, std::string_view details) {
  cleanupAttempt();
  global_deadline_.cancel();
  auto& info = stream_.streamInfo();
  if (response_started_) {
    info.setFlag(http::ResponseFlag(flagFor(reason)));
    stream_.resetDownstream("upstream_reset_after_response_started{" +
                            std::string(resetReasonString(reason)) + "}");
    return;
  }
  std::string reason_str(resetReasonString(reason));
  if (reason == ResetReason::ConnectFailure) reason_str = "connection failure";
  std::string body = std::string(kResetBody) + reason_str;
  if (reason == ResetReason::ConnectFailure && !details.empty()) {
    body += ", transport failure reason: " + std::string(details);
  }
  std::string code_details = "upstream_reset_before_response_started{" + reason_str + "}";
  for (auto& c : code_details) {
    if (c == ' ') c = '_';
  }
  stream_.sendLocalReply(503, body, flagFor(reason), code_details, nullptr);
}

bool RouterFilter::maybeRetry(bool reset, ResetReason reason, int status,
                              const http::HeaderMap* headers) {
  const auto* rp = route_->retryPolicy();
  if (!rp || body_overflowed_) return false;
  bool retriable = false;
  if (reset) {
    if (reason == ResetReason::Overflow) return false;
    bool timeout = details_ == "per_try_timeout";
    retriable = timeout ? rp->retriableTimeout()
                        : rp->retriableReset(reason == ResetReason::ConnectFailure,
                                             details_ == "refused stream");
  } else {
    retriable = rp->retriableStatus(status, *headers);
  }
  if (!retriable) return false;
  if (retries_left_ == 0) {
    // Retriable, but num_retries is used up (Envoy: URX).
    stream_.streamInfo().setFlag(http::ResponseFlag::UpstreamRetryLimitExceeded);
    return false;
  }
  auto& rt = cluster_->runtime();
  if (!rt.tryAcquireRetry()) {
    rt.stats().upstream_rq_retry_overflow->inc();
    return false;
  }
  --retries_left_;
  rt.stats().upstream_rq_retry->inc();
  cleanupAttempt();
  rt.releaseRetry();
  // Exponential back-off with full jitter: random in [0, base * 2^(n-1)], capped at max.
  auto base = rp->back_off_base;
  auto max = rp->back_off_max;
  uint64_t ceiling = static_cast<uint64_t>(base.count()) << std::min<uint32_t>(attempts_ - 1, 20);
  ceiling = std::min<uint64_t>(ceiling, static_cast<uint64_t>(max.count()));
  auto delay = std::chrono::milliseconds(ceiling ? stream_.random() % (ceiling + 1) : 0);
  backoff_timer_ = std::make_unique<asio::steady_timer>(stream_.eventLoop());
  backoff_timer_->expires_after(delay);
  backoff_timer_->async_wait([this, alive = std::weak_ptr<bool>(alive_)](std::error_code ec) {
    if (ec || alive.expired() || done_) return;
    startAttempt();
  });
  return true;
}

void RouterFilter::onGlobalTimeout() {
  if (done_ || response_started_) {
    if (response_started_ && !upstream_response_complete_) {
      stream_.streamInfo().setFlag(http::ResponseFlag::UpstreamRequestTimeout);
      cleanupAttempt();
      stream_.resetDownstream("upstream_response_timeout");
    }
    return;
  }
  cluster_->runtime().stats().upstream_rq_timeout->inc();
  if (host_) reportOutlier(504, false);
  cleanupAttempt();
  if (backoff_timer_) backoff_timer_->cancel();
  stream_.sendLocalReply(504, "upstream request timeout",
                         uint32_t(http::ResponseFlag::UpstreamRequestTimeout),
                         "upstream_response_timeout", nullptr);
}

void RouterFilter::onPerTryTimeout() {
  if (done_ || response_started_) return;
  cluster_->runtime().stats().upstream_rq_per_try_timeout->inc();
  cleanupAttempt();
  details_ = "per_try_timeout";
  if (maybeRetry(true, ResetReason::RemoteReset, 0, nullptr)) return;
  stream_.sendLocalReply(504, "upstream request timeout",
                         uint32_t(http::ResponseFlag::UpstreamRequestTimeout),
                         "upstream_per_try_timeout", nullptr);
}

}  // namespace mast::proxy::server
