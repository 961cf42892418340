#pragma once
// envoy.filters.http.local_ratelimit (envoy.extensions.filters.http.local_ratelimit.v3
// .LocalRateLimit): a token bucket per filter config and per route config, shared by all workers.
//
// Per request: the route's typed_per_filter_config (its own bucket and stats) or the filter-level
// config. Without a token_bucket at that level the filter does nothing. filter_enabled (default
// 0%, as in Envoy) selects the requests that are counted (<stat_prefix>.http_local_rate_limit
// .enabled) and take a token (ok / rate_limited); filter_enforced (default 0%) selects the limited
// requests that are answered locally: status (default 429; < 400 means 429), body
// "local_rate_limited", response flag RL, x-envoy-ratelimited, response_headers_to_add. Limited but
// not enforced requests get request_headers_to_add_when_not_enforced and go on. With
// enable_x_ratelimit_headers: DRAFT_VERSION_03 every evaluated response carries x-ratelimit-limit,
// x-ratelimit-remaining and x-ratelimit-reset.
//
// Runtime keys (runtime_key) are not consulted: this build has no runtime layer, so default_value
// is the value.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "proxy/filters/common.h"
#include "proxy/filters/filter.h"

namespace envoy::extensions::filters::http::local_ratelimit::v3 {
class LocalRateLimit;
}
namespace mast::stats {
class Counter;
}

namespace mast::proxy::filters {

// A token bucket shared across workers without locks. Tokens are refilled in whole fill
// intervals counted from the bucket's creation (like Envoy's fill timer), computed lazily from the
// monotonic clock on each take: the state is one atomic word (fill epoch << 32 | tokens) updated
// with compare-and-swap. The bucket starts full.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock::time_point (*)();
  TokenBucket(uint32_t max_tokens, uint32_t tokens_per_fill, std::chrono::nanoseconds fill_interval,
              Clock clock = &std::chrono::steady_clock::now);

  struct Outcome {
    bool allowed = false;
    uint32_t remaining = 0;      // tokens left after this take
    uint32_t reset_seconds = 0;  // seconds until the next fill (Envoy's x-ratelimit-reset)
  };
  Outcome take();
  uint32_t maxTokens() const { return max_tokens_; }

 private:
  const uint32_t max_tokens_;
  const uint32_t tokens_per_fill_;
  const std::chrono::nanoseconds fill_interval_;
  const Clock clock_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<uint64_t> state_;
};

// <stat_prefix>.http_local_rate_limit.*
struct LocalRateLimitStats {
  LocalRateLimitStats(stats::Store* store, const std::string& stat_prefix);
  StatsRoot root;
  stats::Counter* enabled;
  stats::Counter* enforced;
  stats::Counter* rate_limited;
  stats::Counter* ok;
};

// Typed runtime form of one LocalRateLimit (filter-level or per-route). Immutable; the bucket and
// the counters inside are atomic and shared by all workers.
struct LocalRateLimitConfig : RouteFilterConfig {
  LocalRateLimitConfig() : RouteFilterConfig(Kind::LocalRateLimit) {}
  std::string stat_prefix;
  int status = 429;
  std::shared_ptr<TokenBucket> bucket;        // nullptr: no token_bucket at this level
  std::optional<Percentage> filter_enabled;   // unset: never
  std::optional<Percentage> filter_enforced;  // unset: never
  std::vector<HeaderMutation> response_headers_to_add;
  std::vector<HeaderMutation> request_headers_to_add_when_not_enforced;
  bool x_ratelimit_headers = false;  // DRAFT_VERSION_03
  bool rate_limited_as_resource_exhausted = false;
  std::shared_ptr<LocalRateLimitStats> stats;
};

// `per_route`: a route's config must have a token_bucket (Envoy rejects it otherwise).
Result<std::shared_ptr<const LocalRateLimitConfig>> buildLocalRateLimitConfig(
    const envoy::extensions::filters::http::local_ratelimit::v3::LocalRateLimit& proto,
    const std::string& path, const FilterContext& ctx, bool per_route);

class LocalRateLimitFilterFactory final : public FilterFactory {
 public:
  LocalRateLimitFilterFactory(std::string name, std::shared_ptr<const LocalRateLimitConfig> config);
  std::unique_ptr<HttpFilter> createFilter() const override;
  const LocalRateLimitConfig& config() const { return *shared_->config; }

  struct Shared {
    std::string name;
    std::shared_ptr<const LocalRateLimitConfig> config;
  };

 private:
  std::shared_ptr<const Shared> shared_;
};

class LocalRateLimitFilter final : public HttpFilter {
 public:
  explicit LocalRateLimitFilter(std::shared_ptr<const LocalRateLimitFilterFactory::Shared> shared)
      : shared_(std::move(shared)) {}
  FilterStatus decodeHeaders(http::HeaderMap& headers, bool end_stream) override;
  void encodeHeaders(http::HeaderMap& headers, bool end_stream) override;

 private:
  std::shared_ptr<const LocalRateLimitFilterFactory::Shared> shared_;
  // Set when this request took part (filter enabled, bucket consulted).
  const LocalRateLimitConfig* evaluated_ = nullptr;
  TokenBucket::Outcome outcome_;
};

}  // namespace mast::proxy::filters
