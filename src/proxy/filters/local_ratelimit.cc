#include "proxy/filters/local_ratelimit.h"

#include <algorithm>

#include "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.pb.h"
#include "stats/store.h"

namespace mast::proxy::filters {

namespace lrlv3 = envoy::extensions::filters::http::local_ratelimit::v3;

namespace {

constexpr uint64_t kTokenMask = 0xffffffffull;

uint64_t pack(uint32_t epoch, uint32_t tokens) {
  return (static_cast<uint64_t>(epoch) << 32) | tokens;
}

}  // namespace

TokenBucket::TokenBucket(uint32_t max_tokens, uint32_t tokens_per_fill,
                         std::chrono::nanoseconds fill_interval, Clock clock)
    : max_tokens_(max_tokens),
      tokens_per_fill_(tokens_per_fill),
      fill_interval_(fill_interval),
      clock_(clock),
      start_(clock()),
      state_(pack(0, max_tokens)) {}

TokenBucket::Outcome TokenBucket::take() {
  const auto elapsed = clock_() - start_;
  const auto intervals = static_cast<uint64_t>(elapsed / fill_interval_);
  // The epoch is kept modulo 2^32 (at the minimum 50ms interval that wraps after ~6.8 years;
  // differences are computed modulo 2^32 too).
  const auto now_epoch = static_cast<uint32_t>(intervals);
  const auto in_interval = elapsed - fill_interval_ * static_cast<int64_t>(intervals);
  Outcome out;
  out.reset_seconds = static_cast<uint32_t>(std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::seconds>(
             fill_interval_ - std::chrono::duration_cast<std::chrono::seconds>(in_interval))
             .count()));
  uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    auto epoch = static_cast<uint32_t>(s >> 32);
    auto tokens = static_cast<uint32_t>(s & kTokenMask);
    const uint32_t behind = now_epoch - epoch;
    // `behind` >= 2^31 means another worker already stored a later epoch (it read the clock after
    // us): its state is current.
    if (behind != 0 && behind < 0x80000000u) {
      uint64_t t = static_cast<uint64_t>(tokens) + static_cast<uint64_t>(behind) * tokens_per_fill_;
      tokens = static_cast<uint32_t>(std::min<uint64_t>(t, max_tokens_));
      epoch = now_epoch;
    }
    if (tokens == 0) {
      // Record the refill bookkeeping only when it changes something: nothing to store here.
      out.allowed = false;
      out.remaining = 0;
      return out;
    }
    if (state_.compare_exchange_weak(s, pack(epoch, tokens - 1), std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      out.allowed = true;
      out.remaining = tokens - 1;
      return out;
    }
  }
}

LocalRateLimitStats::LocalRateLimitStats(stats::Store* store, const std::string& stat_prefix)
    : root(store) {
  std::string p = stat_prefix + ".http_local_rate_limit.";
  auto& st = root.store();
  enabled = &st.counter(p + "enabled");
  enforced = &st.counter(p + "enforced");
  rate_limited = &st.counter(p + "rate_limited");
  ok = &st.counter(p + "ok");
}

Result<std::shared_ptr<const LocalRateLimitConfig>> buildLocalRateLimitConfig(
    const lrlv3::LocalRateLimit& proto, const std::string& path, const FilterContext& ctx,
    bool per_route) {
  auto c = std::make_shared<LocalRateLimitConfig>();
  if (proto.stat_prefix().empty()) {
    return Error{joinPath(path, "stat_prefix") + ": must not be empty"};
  }
  c->stat_prefix = proto.stat_prefix();
  c->status = proto.status().code() >= 400 ? static_cast<int>(proto.status().code()) : 429;
  if (proto.has_token_bucket()) {
    const auto& tb = proto.token_bucket();
    std::string tpath = joinPath(path, "token_bucket");
    if (tb.max_tokens() == 0) return Error{joinPath(tpath, "max_tokens") + ": must be > 0"};
    uint32_t per_fill = 1;
    if (tb.has_tokens_per_fill()) {
      per_fill = tb.tokens_per_fill().value();
      if (per_fill == 0) return Error{joinPath(tpath, "tokens_per_fill") + ": must be > 0"};
    }
    if (!tb.has_fill_interval()) return Error{joinPath(tpath, "fill_interval") + ": required"};
    auto interval = std::chrono::seconds(tb.fill_interval().seconds()) +
                    std::chrono::nanoseconds(tb.fill_interval().nanos());
    if (interval < std::chrono::milliseconds(50)) {
      return Error{joinPath(tpath, "fill_interval") + ": must be >= 50ms"};
    }
    c->bucket = std::make_shared<TokenBucket>(tb.max_tokens(), per_fill, interval);
  } else if (per_route) {
    return Error{joinPath(path, "token_bucket") + ": required in a per-route config"};
  }
  if (proto.has_filter_enabled()) {
    c->filter_enabled = parsePercentage(proto.filter_enabled().default_value());
  }
  if (proto.has_filter_enforced()) {
    c->filter_enforced = parsePercentage(proto.filter_enforced().default_value());
  }
  auto rh = parseHeaderMutations(proto.response_headers_to_add(),
                                 joinPath(path, "response_headers_to_add"));
  if (!rh) return Error{rh.error()};
  c->response_headers_to_add = std::move(*rh);
  auto qh = parseHeaderMutations(proto.request_headers_to_add_when_not_enforced(),
                                 joinPath(path, "request_headers_to_add_when_not_enforced"));
  if (!qh) return Error{qh.error()};
  c->request_headers_to_add_when_not_enforced = std::move(*qh);
  c->x_ratelimit_headers = proto.enable_x_ratelimit_headers() ==
                           envoy::extensions::common::ratelimit::v3::DRAFT_VERSION_03;
  c->rate_limited_as_resource_exhausted = proto.rate_limited_as_resource_exhausted();
  // Descriptor-based limits need route rate_limits actions, and per-connection / cluster-wide
  // buckets need state this filter does not have: rejected, not silently ignored.
  if (proto.descriptors_size() > 0) {
    return Error{joinPath(path, "descriptors") + ": not supported"};
  }
  if (proto.local_rate_limit_per_downstream_connection()) {
    return Error{joinPath(path, "local_rate_limit_per_downstream_connection") + ": not supported"};
  }
  if (proto.has_local_cluster_rate_limit()) {
    return Error{joinPath(path, "local_cluster_rate_limit") + ": not supported"};
  }
  c->stats = std::make_shared<LocalRateLimitStats>(ctx.store, c->stat_prefix);
  return std::shared_ptr<const LocalRateLimitConfig>(std::move(c));
}

LocalRateLimitFilterFactory::LocalRateLimitFilterFactory(
    std::string name, std::shared_ptr<const LocalRateLimitConfig> config)
    : shared_(std::make_shared<const Shared>(Shared{std::move(name), std::move(config)})) {}

std::unique_ptr<HttpFilter> LocalRateLimitFilterFactory::createFilter() const {
  return std::make_unique<LocalRateLimitFilter>(shared_);
}

FilterStatus LocalRateLimitFilter::decodeHeaders(http::HeaderMap& headers, bool) {
  const LocalRateLimitConfig* cfg = shared_->config.get();
  if (const void* rc = callbacks_->perFilterConfig(shared_->name)) {
    const auto* base = static_cast<const RouteFilterConfig*>(rc);
    if (base->kind == RouteFilterConfig::Kind::Disabled) return FilterStatus::Continue;
    if (base->kind == RouteFilterConfig::Kind::LocalRateLimit) {
      cfg = static_cast<const LocalRateLimitConfig*>(base);
    }
  }
  if (!cfg->bucket) return FilterStatus::Continue;
  if (!cfg->filter_enabled || !cfg->filter_enabled->hit(callbacks_->random())) {
    return FilterStatus::Continue;
  }
  evaluated_ = cfg;
  cfg->stats->enabled->inc();
  outcome_ = cfg->bucket->take();
  if (outcome_.allowed) {
    cfg->stats->ok->inc();
    return FilterStatus::Continue;
  }
  cfg->stats->rate_limited->inc();
  if (!cfg->filter_enforced || !cfg->filter_enforced->hit(callbacks_->random())) {
    applyHeaderMutations(cfg->request_headers_to_add_when_not_enforced, headers);
    return FilterStatus::Continue;
  }
  cfg->stats->enforced->inc();
  const bool grpc_exhausted = cfg->rate_limited_as_resource_exhausted && isGrpcRequest(headers);
  callbacks_->sendLocalReply(cfg->status, "local_rate_limited",
                             static_cast<uint32_t>(http::ResponseFlag::RateLimited),
                             "local_rate_limited", [cfg, grpc_exhausted](http::HeaderMap& h) {
                               h.set("x-envoy-ratelimited", "true");
                               applyHeaderMutations(cfg->response_headers_to_add, h);
                               // RESOURCE_EXHAUSTED instead of the UNAVAILABLE mapped from 429.
                               if (grpc_exhausted) h.set("grpc-status", "8");
                             });
  return FilterStatus::StopIteration;
}

void LocalRateLimitFilter::encodeHeaders(http::HeaderMap& headers, bool) {
  if (evaluated_ == nullptr || !evaluated_->x_ratelimit_headers) return;
  headers.set("x-ratelimit-limit", std::to_string(evaluated_->bucket->maxTokens()));
  headers.set("x-ratelimit-remaining", std::to_string(outcome_.remaining));
  headers.set("x-ratelimit-reset", std::to_string(outcome_.reset_seconds));
}

}  // namespace mast::proxy::filters
