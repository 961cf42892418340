// Local rate limit: the token bucket (fake clock for exact refill arithmetic, real time for one
// short refill), filter_enabled / filter_enforced, the 429 reply and its headers, x-ratelimit-*
// headers, per-route buckets, stats, config errors.
#include "proxy/filters/local_ratelimit.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "proxy/filters/fake_callbacks.h"
#include "proxy/filters/test_util.h"
#include "stats/store.h"

namespace mast::proxy::filters {
namespace {

using testing::factoryOf;
using testing::FakeCallbacks;
using testing::filterError;
using testing::routeConfigOf;

std::chrono::steady_clock::time_point g_now{};
std::chrono::steady_clock::time_point fakeNow() { return g_now; }

TEST(TokenBucketTest, StartsFullAndRefillsWholeIntervals) {
  g_now = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  TokenBucket b(3, 2, std::chrono::seconds(1), &fakeNow);
  EXPECT_EQ(b.take().remaining, 2u);
  EXPECT_EQ(b.take().remaining, 1u);
  auto last = b.take();
  EXPECT_TRUE(last.allowed);
  EXPECT_EQ(last.remaining, 0u);
  auto denied = b.take();
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.reset_seconds, 1u);
  g_now += std::chrono::milliseconds(999);
  EXPECT_FALSE(b.take().allowed);  // no fill before the interval ends
  g_now += std::chrono::milliseconds(1);
  auto after = b.take();  // one fill of 2 tokens
  EXPECT_TRUE(after.allowed);
  EXPECT_EQ(after.remaining, 1u);
  g_now += std::chrono::seconds(10);  // many fills, capped at max_tokens
  EXPECT_EQ(b.take().remaining, 2u);
}

TEST(TokenBucketTest, ResetSecondsCountsDownWithinTheInterval) {
  g_now = std::chrono::steady_clock::time_point{} + std::chrono::hours(2);
  TokenBucket b(100, 1, std::chrono::seconds(60), &fakeNow);
  EXPECT_EQ(b.take().reset_seconds, 60u);
  g_now += std::chrono::milliseconds(10500);
  EXPECT_EQ(b.take().reset_seconds, 50u);
}

TEST(TokenBucketTest, SharedAcrossThreadsNeverOverspends) {
  // Far longer interval than the test: exactly max_tokens takes succeed in total.
  TokenBucket b(1000, 1, std::chrono::hours(1));
  std::atomic<int> allowed{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        if (b.take().allowed) allowed.fetch_add(1);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(allowed.load(), 1000);
}

TEST(TokenBucketTest, RefillsOverRealTime) {
  TokenBucket b(2, 1, std::chrono::milliseconds(50));
  // Drain (a fill may land while draining, so take until refused).
  int taken = 0;
  while (b.take().allowed && taken < 100) ++taken;
  ASSERT_LT(taken, 100);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_TRUE(b.take().allowed);
}

std::string lrlFilter(const std::string& body) {
  return R"({"name":"envoy.filters.http.local_ratelimit","typed_config":{)"
         R"("@type":"type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",)"
         R"("stat_prefix":"http_local_rate_limiter")" +
         (body.empty() ? "" : "," + body) + "}}";
}

constexpr const char* kAlways =
    R"("filter_enabled":{"runtime_key":"e","default_value":{"numerator":100}},)"
    R"("filter_enforced":{"runtime_key":"f","default_value":{"numerator":100}})";

class LocalRateLimitTest : public ::testing::Test {
 protected:
  struct Stream {
    Stream(asio::io_context& loop, const FilterFactory& factory)
        : cb(loop), filter(factory.createFilter()) {
      filter->setCallbacks(cb);
      cb.setFilter(filter.get());
    }
    FilterStatus decode() {
      cb.request_headers = {{":method", "GET"}, {":path", "/"}};
      return filter->decodeHeaders(cb.request_headers, true);
    }
    http::HeaderMap respond() {
      http::HeaderMap h{{":status", "200"}};
      filter->encodeHeaders(h, true);
      return h;
    }
    FakeCallbacks cb;
    std::unique_ptr<HttpFilter> filter;
  };
  uint64_t counter(const std::string& prefix, const std::string& name) {
    return store_.counter(prefix + ".http_local_rate_limit." + name).value();
  }

  asio::io_context loop_;
  stats::Store store_{1};
  FilterContext ctx_{&store_, "ingress"};
};

TEST_F(LocalRateLimitTest, LimitsWith429AndHeaders) {
  auto f = factoryOf(
      lrlFilter(std::string(kAlways) +
                R"(,"token_bucket":{"max_tokens":2,"tokens_per_fill":1,"fill_interval":"3600s"},)"
                R"("response_headers_to_add":[{"append_action":"OVERWRITE_IF_EXISTS_OR_ADD",)"
                R"("header":{"key":"x-local-rate-limit","value":"true"}}],)"
                R"("enable_x_ratelimit_headers":"DRAFT_VERSION_03")"),
      ctx_);
  for (int i = 0; i < 2; ++i) {
    Stream s(loop_, *f);
    EXPECT_EQ(s.decode(), FilterStatus::Continue);
    auto h = s.respond();
    EXPECT_EQ(h.getOr("x-ratelimit-limit"), "2");
    EXPECT_EQ(h.getOr("x-ratelimit-remaining"), std::to_string(1 - i));
    EXPECT_EQ(h.getOr("x-ratelimit-reset"), "3600");
    EXPECT_FALSE(h.has("x-local-rate-limit"));
  }
  Stream s(loop_, *f);
  EXPECT_EQ(s.decode(), FilterStatus::StopIteration);
  ASSERT_TRUE(s.cb.reply);
  EXPECT_EQ(s.cb.reply->status, 429);
  EXPECT_EQ(s.cb.reply->body, "local_rate_limited");
  EXPECT_EQ(s.cb.reply->details, "local_rate_limited");
  EXPECT_TRUE(s.cb.info.hasFlag(http::ResponseFlag::RateLimited));
  EXPECT_EQ(s.cb.reply->headers.getOr("x-local-rate-limit"), "true");
  EXPECT_EQ(s.cb.reply->headers.getOr("x-envoy-ratelimited"), "true");
  EXPECT_EQ(s.cb.reply->headers.getOr("x-ratelimit-remaining"), "0");
  EXPECT_EQ(s.cb.reply->headers.getOr("x-ratelimit-limit"), "2");
  const std::string p = "http_local_rate_limiter";
  EXPECT_EQ(counter(p, "enabled"), 3u);
  EXPECT_EQ(counter(p, "ok"), 2u);
  EXPECT_EQ(counter(p, "rate_limited"), 1u);
  EXPECT_EQ(counter(p, "enforced"), 1u);
}

TEST_F(LocalRateLimitTest, CustomStatusAndBelow400MeansTooManyRequests) {
  auto make = [&](int code) {
    return factoryOf(
        lrlFilter(std::string(kAlways) + R"(,"status":{"code":)" + std::to_string(code) +
                  R"(},"token_bucket":{"max_tokens":1,"fill_interval":"3600s"})"),
        ctx_);
  };
  for (auto [code, want] : {std::pair{503, 503}, std::pair{200, 429}}) {
    auto f = make(code);
    Stream a(loop_, *f);
    EXPECT_EQ(a.decode(), FilterStatus::Continue);
    Stream b(loop_, *f);
    EXPECT_EQ(b.decode(), FilterStatus::StopIteration);
    ASSERT_TRUE(b.cb.reply);
    EXPECT_EQ(b.cb.reply->status, want);
    EXPECT_FALSE(b.respond().has("x-ratelimit-limit"));  // headers off by default
  }
}

TEST_F(LocalRateLimitTest, EnabledAndEnforcedDefaultToOff) {
  auto f = factoryOf(lrlFilter(R"("token_bucket":{"max_tokens":1,"fill_interval":"3600s"})"), ctx_);
  for (int i = 0; i < 3; ++i) {
    Stream s(loop_, *f);
    EXPECT_EQ(s.decode(), FilterStatus::Continue);
  }
  EXPECT_EQ(counter("http_local_rate_limiter", "enabled"), 0u);
}

TEST_F(LocalRateLimitTest, EnabledButNotEnforcedOnlyCountsAndTagsRequest) {
  auto f = factoryOf(
      lrlFilter(
          R"("filter_enabled":{"default_value":{"numerator":100}},)"
          R"("filter_enforced":{"default_value":{"numerator":50}},)"
          R"("request_headers_to_add_when_not_enforced":[{"header":{"key":"x-would-limit","value":"1"}}],)"
          R"("token_bucket":{"max_tokens":1,"fill_interval":"3600s"})"),
      ctx_);
  Stream a(loop_, *f);
  EXPECT_EQ(a.decode(), FilterStatus::Continue);
  Stream b(loop_, *f);
  b.cb.randoms = {0, 77};  // enabled (0 < 100), enforced? 77 >= 50: no
  EXPECT_EQ(b.decode(), FilterStatus::Continue);
  EXPECT_FALSE(b.cb.reply);
  EXPECT_EQ(b.cb.request_headers.getOr("x-would-limit"), "1");
  Stream c(loop_, *f);
  c.cb.randoms = {0, 49};  // enforced
  EXPECT_EQ(c.decode(), FilterStatus::StopIteration);
  EXPECT_EQ(counter("http_local_rate_limiter", "rate_limited"), 2u);
  EXPECT_EQ(counter("http_local_rate_limiter", "enforced"), 1u);
}

TEST_F(LocalRateLimitTest, FilterEnabledPercentage) {
  auto f = factoryOf(
      lrlFilter(
          R"("filter_enabled":{"default_value":{"numerator":10,"denominator":"TEN_THOUSAND"}},)"
          R"("token_bucket":{"max_tokens":1,"fill_interval":"3600s"})"),
      ctx_);
  Stream a(loop_, *f);
  a.cb.randoms = {10};  // not selected: no token taken
  EXPECT_EQ(a.decode(), FilterStatus::Continue);
  Stream b(loop_, *f);
  b.cb.randoms = {9};
  EXPECT_EQ(b.decode(), FilterStatus::Continue);
  EXPECT_EQ(counter("http_local_rate_limiter", "enabled"), 1u);
  EXPECT_EQ(counter("http_local_rate_limiter", "ok"), 1u);
}

TEST_F(LocalRateLimitTest, PerRouteBucketsAreIndependent) {
  // Filter level: no bucket (Istio's shape); each route config brings its own bucket and stats.
  auto f = factoryOf(lrlFilter(""), ctx_);
  auto route = [&](const std::string& prefix) {
    return routeConfigOf(
        "envoy.filters.http.local_ratelimit",
        R"({"@type":"type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",)"
        R"("stat_prefix":")" +
            prefix + R"(",)" + kAlways +
            R"(,"token_bucket":{"max_tokens":1,"fill_interval":"3600s"}})",
        ctx_);
  };
  auto r1 = route("r1");
  auto r2 = route("r2");
  ASSERT_TRUE(r1 && r2);
  auto run = [&](const std::shared_ptr<const void>& rc) {
    Stream s(loop_, *f);
    if (rc) s.cb.per_filter["envoy.filters.http.local_ratelimit"] = rc;
    return s.decode();
  };
  EXPECT_EQ(run(nullptr), FilterStatus::Continue);  // no bucket at the filter level
  EXPECT_EQ(run(r1), FilterStatus::Continue);
  EXPECT_EQ(run(r1), FilterStatus::StopIteration);
  EXPECT_EQ(run(r2), FilterStatus::Continue);  // r2 has its own bucket
  EXPECT_EQ(run(r2), FilterStatus::StopIteration);
  EXPECT_EQ(counter("r1", "rate_limited"), 1u);
  EXPECT_EQ(counter("r2", "ok"), 1u);
  EXPECT_EQ(counter("http_local_rate_limiter", "enabled"), 0u);
}

TEST_F(LocalRateLimitTest, GrpcResourceExhausted) {
  auto f = factoryOf(lrlFilter(std::string(kAlways) +
                               R"(,"rate_limited_as_resource_exhausted":true,)"
                               R"("token_bucket":{"max_tokens":1,"fill_interval":"3600s"})"),
                     ctx_);
  Stream a(loop_, *f);
  EXPECT_EQ(a.decode(), FilterStatus::Continue);
  Stream b(loop_, *f);
  b.cb.request_headers = {{":method", "POST"}, {"content-type", "application/grpc"}};
  EXPECT_EQ(b.filter->decodeHeaders(b.cb.request_headers, true), FilterStatus::StopIteration);
  ASSERT_TRUE(b.cb.reply);
  EXPECT_EQ(b.cb.reply->headers.getOr("grpc-status"), "8");
}

TEST_F(LocalRateLimitTest, ConfigErrorsNameTheField) {
  EXPECT_EQ(filterError(lrlFilter(R"("token_bucket":{"max_tokens":1,"fill_interval":"0.01s"})")),
            "hcm.http_filters[0].typed_config.token_bucket.fill_interval: must be >= 50ms");
  EXPECT_EQ(filterError(lrlFilter(R"("token_bucket":{"max_tokens":0,"fill_interval":"1s"})")),
            "hcm.http_filters[0].typed_config.token_bucket.max_tokens: must be > 0");
  EXPECT_EQ(filterError(lrlFilter(R"("token_bucket":{"max_tokens":1})")),
            "hcm.http_filters[0].typed_config.token_bucket.fill_interval: required");
  EXPECT_EQ(
      filterError(
          R"({"name":"rl","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"}})"),
      "hcm.http_filters[0].typed_config.stat_prefix: must not be empty");
  EXPECT_EQ(filterError(lrlFilter(
                R"("response_headers_to_add":[{"header":{"key":":status","value":"1"}}])")),
            "hcm.http_filters[0].typed_config.response_headers_to_add[0].header.key: ':status' may "
            "not be modified");
  auto rc = createPerRouteConfig(
      "envoy.filters.http.local_ratelimit",
      testing::anyOf(
          R"({"@type":"type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit","stat_prefix":"x"})"),
      "vh[0].typed_per_filter_config[envoy.filters.http.local_ratelimit]");
  ASSERT_FALSE(rc.ok());
  EXPECT_EQ(rc.error(),
            "vh[0].typed_per_filter_config[envoy.filters.http.local_ratelimit].token_bucket: "
            "required in a per-route config");
}

}  // namespace
}  // namespace mast::proxy::filters
