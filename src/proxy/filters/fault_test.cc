// Fault filter: percentages (deterministic randoms from the fake callbacks), header-controlled
// faults, real timers on an asio::io_context for delays, per-route override, max_active_faults.
#include "proxy/filters/fault.h"

#include <gtest/gtest.h>

#include <chrono>

#include "proxy/filters/fake_callbacks.h"
#include "proxy/filters/test_util.h"
#include "stats/store.h"

namespace mast::proxy::filters {
namespace {

using testing::factoryOf;
using testing::FakeCallbacks;
using testing::filterError;
using testing::routeConfigOf;

std::string faultFilter(const std::string& body) {
  return R"({"name":"envoy.filters.http.fault","typed_config":{)"
         R"("@type":"type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault")" +
         (body.empty() ? "" : "," + body) + "}}";
}

class FaultTest : public ::testing::Test {
 protected:
  // One stream: a filter from the factory wired to fresh fake callbacks.
  struct Stream {
    explicit Stream(asio::io_context& loop, const FilterFactory& factory)
        : cb(loop), filter(factory.createFilter()) {
      filter->setCallbacks(cb);
      cb.setFilter(filter.get());
    }
    FilterStatus decode(http::HeaderMap h) {
      cb.request_headers = std::move(h);
      return filter->decodeHeaders(cb.request_headers, true);
    }
    FakeCallbacks cb;
    std::unique_ptr<HttpFilter> filter;
  };

  std::shared_ptr<const FilterFactory> make(const std::string& body) {
    return factoryOf(faultFilter(body), ctx_);
  }
  uint64_t counter(const std::string& name) {
    return store_.counter("http.ingress.fault." + name).value();
  }
  int64_t active() { return store_.gauge("http.ingress.fault.active_faults").value(); }

  static http::HeaderMap get() { return {{":method", "GET"}, {":path", "/"}}; }

  asio::io_context loop_;
  stats::Store store_{1};
  FilterContext ctx_{&store_, "ingress"};
};

TEST_F(FaultTest, AbortAtHundredPercentRepliesLocally) {
  auto f = make(R"("abort":{"http_status":503,"percentage":{"numerator":100}})");
  Stream s(loop_, *f);
  EXPECT_EQ(s.decode(get()), FilterStatus::StopIteration);
  ASSERT_TRUE(s.cb.reply);
  EXPECT_EQ(s.cb.reply->status, 503);
  EXPECT_EQ(s.cb.reply->body, "fault filter abort");
  EXPECT_EQ(s.cb.reply->details, "fault_filter_abort");
  EXPECT_TRUE(s.cb.info.hasFlag(http::ResponseFlag::FaultInjected));
  EXPECT_FALSE(s.cb.info.hasFlag(http::ResponseFlag::DelayInjected));
  EXPECT_EQ(counter("aborts_injected"), 1u);
  EXPECT_EQ(active(), 1);
  s.filter->onDestroy();
  EXPECT_EQ(active(), 0);
}

TEST_F(FaultTest, AbortPercentageIsRandomModuloDenominator) {
  auto f = make(R"("abort":{"http_status":500,"percentage":{"numerator":50}})");
  {
    Stream s(loop_, *f);
    s.cb.randoms = {49};
    EXPECT_EQ(s.decode(get()), FilterStatus::StopIteration);
    ASSERT_TRUE(s.cb.reply);
    EXPECT_EQ(s.cb.reply->status, 500);
  }
  {
    Stream s(loop_, *f);
    s.cb.randoms = {50};
    EXPECT_EQ(s.decode(get()), FilterStatus::Continue);
    EXPECT_FALSE(s.cb.reply);
  }
  {
    Stream s(loop_, *f);
    s.cb.randoms = {1049};  // 1049 % 100 = 49
    EXPECT_EQ(s.decode(get()), FilterStatus::StopIteration);
  }
  EXPECT_EQ(counter("aborts_injected"), 2u);
}

TEST_F(FaultTest, TenThousandAndMillionDenominators) {
  auto tt = make(
      R"("abort":{"http_status":500,"percentage":{"numerator":25,"denominator":"TEN_THOUSAND"}})");
  auto mi =
      make(R"("abort":{"http_status":500,"percentage":{"numerator":1,"denominator":"MILLION"}})");
  auto run = [&](const FilterFactory& f, uint64_t r) {
    Stream s(loop_, f);
    s.cb.randoms = {r};
    return s.decode(get());
  };
  EXPECT_EQ(run(*tt, 24), FilterStatus::StopIteration);
  EXPECT_EQ(run(*tt, 25), FilterStatus::Continue);
  EXPECT_EQ(run(*tt, 99), FilterStatus::Continue);  // would hit with a HUNDRED denominator
  EXPECT_EQ(run(*tt, 10000), FilterStatus::StopIteration);
  EXPECT_EQ(run(*mi, 0), FilterStatus::StopIteration);
  EXPECT_EQ(run(*mi, 1), FilterStatus::Continue);
  EXPECT_EQ(run(*mi, 999999), FilterStatus::Continue);
  EXPECT_EQ(run(*mi, 2000000), FilterStatus::StopIteration);
}

TEST_F(FaultTest, UnsetPercentageNeverFaults) {
  auto f = make(R"("abort":{"http_status":500},"delay":{"fixed_delay":"1s"})");
  Stream s(loop_, *f);
  EXPECT_EQ(s.decode(get()), FilterStatus::Continue);
  EXPECT_FALSE(s.cb.reply);
  EXPECT_EQ(counter("delays_injected"), 0u);
}

TEST_F(FaultTest, EmptyConfigPassesThrough) {
  auto f = make("");
  Stream s(loop_, *f);
  EXPECT_EQ(s.decode(get()), FilterStatus::Continue);
  EXPECT_EQ(s.cb.info.response_flags, 0u);
}

TEST_F(FaultTest, FixedDelayHoldsThenContinues) {
  auto f = make(R"("delay":{"fixed_delay":"0.03s","percentage":{"numerator":100}})");
  Stream s(loop_, *f);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(s.decode(get()), FilterStatus::StopIteration);
  EXPECT_TRUE(s.cb.info.hasFlag(http::ResponseFlag::DelayInjected));
  EXPECT_EQ(s.cb.continued, 0);
  EXPECT_EQ(counter("delays_injected"), 1u);
  EXPECT_EQ(active(), 1);
  loop_.run();
  EXPECT_EQ(s.cb.continued, 1);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(30));
  EXPECT_FALSE(s.cb.reply);
  s.filter->onDestroy();
  EXPECT_EQ(active(), 0);
}

TEST_F(FaultTest, DelayThenAbortCountsOneActiveFault) {
  auto f = make(R"("delay":{"fixed_delay":"0.01s","percentage":{"numerator":100}},)"
                R"("abort":{"http_status":502,"percentage":{"numerator":100}})");
  Stream s(loop_, *f);
  EXPECT_EQ(s.decode(get()), FilterStatus::StopIteration);
  EXPECT_FALSE(s.cb.reply);  // the abort waits for the delay
  loop_.run();
  ASSERT_TRUE(s.cb.reply);
  EXPECT_EQ(s.cb.reply->status, 502);
  EXPECT_EQ(s.cb.continued, 0);
  EXPECT_TRUE(s.cb.info.hasFlag(http::ResponseFlag::DelayInjected));
  EXPECT_TRUE(s.cb.info.hasFlag(http::ResponseFlag::FaultInjected));
  EXPECT_EQ(active(), 1);
  s.filter->onDestroy();
  EXPECT_EQ(active(), 0);
}

TEST_F(FaultTest, DestroyCancelsPendingDelay) {
  auto f = make(R"("delay":{"fixed_delay":"0.02s","percentage":{"numerator":100}})");
  Stream s(loop_, *f);
  EXPECT_EQ(s.decode(get()), FilterStatus::StopIteration);
  s.filter->onDestroy();
  s.filter.reset();  // the stream ends before the delay: nothing may resume it afterwards
  EXPECT_EQ(active(), 0);
  loop_.run();
  EXPECT_EQ(s.cb.continued, 0);
}

TEST_F(FaultTest, HeaderDelayUsesRequestHeader) {
  auto f = make(R"("delay":{"header_delay":{},"percentage":{"numerator":100}})");
  {
    Stream s(loop_, *f);
    auto h = get();
    h.add(std::string(kFaultDelayHeader), "15");
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(s.decode(h), FilterStatus::StopIteration);
    loop_.run();
    loop_.restart();
    EXPECT_EQ(s.cb.continued, 1);
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(15));
  }
  for (const char* bad : {"", "abc", "-5", "0"}) {
    Stream s(loop_, *f);
    auto h = get();
    h.add(std::string(kFaultDelayHeader), bad);
    EXPECT_EQ(s.decode(h), FilterStatus::Continue) << bad;
  }
  {
    Stream s(loop_, *f);
    EXPECT_EQ(s.decode(get()), FilterStatus::Continue);  // no header, no delay
  }
  {
    // The percentage header lowers the configured percentage: 0 → never.
    Stream s(loop_, *f);
    auto h = get();
    h.add(std::string(kFaultDelayHeader), "15");
    h.add(std::string(kFaultDelayPercentageHeader), "0");
    EXPECT_EQ(s.decode(h), FilterStatus::Continue);
  }
  EXPECT_EQ(counter("delays_injected"), 1u);
}

TEST_F(FaultTest, HeaderAbortHttpAndGrpc) {
  auto f = make(R"("abort":{"header_abort":{},"percentage":{"numerator":100}})");
  {
    Stream s(loop_, *f);
    auto h = get();
    h.add(std::string(kFaultAbortHeader), "418");
    EXPECT_EQ(s.decode(h), FilterStatus::StopIteration);
    ASSERT_TRUE(s.cb.reply);
    EXPECT_EQ(s.cb.reply->status, 418);
  }
  for (const char* bad : {"199", "600", "x"}) {
    Stream s(loop_, *f);
    auto h = get();
    h.add(std::string(kFaultAbortHeader), bad);
    EXPECT_EQ(s.decode(h), FilterStatus::Continue) << bad;
  }
  {
    Stream s(loop_, *f);
    http::HeaderMap h{{":method", "POST"},
                      {":path", "/pkg.Svc/Call"},
                      {"content-type", "application/grpc"},
                      {std::string(kFaultAbortGrpcHeader), "14"}};
    EXPECT_EQ(s.decode(h), FilterStatus::StopIteration);
    ASSERT_TRUE(s.cb.reply);
    EXPECT_EQ(s.cb.reply->status, 200);
    EXPECT_EQ(s.cb.reply->headers.getOr("grpc-status"), "14");
  }
  {
    Stream s(loop_, *f);
    auto h = get();
    h.add(std::string(kFaultAbortHeader), "503");
    h.add(std::string(kFaultAbortPercentageHeader), "0");
    EXPECT_EQ(s.decode(h), FilterStatus::Continue);
  }
}

TEST_F(FaultTest, ConfiguredGrpcStatusAbort) {
  auto f = make(R"("abort":{"grpc_status":8,"percentage":{"numerator":100}})");
  Stream s(loop_, *f);
  http::HeaderMap h{{":method", "POST"}, {"content-type", "application/grpc+proto"}};
  EXPECT_EQ(s.decode(h), FilterStatus::StopIteration);
  ASSERT_TRUE(s.cb.reply);
  EXPECT_EQ(s.cb.reply->status, 200);
  EXPECT_EQ(s.cb.reply->headers.getOr("grpc-status"), "8");
}

TEST_F(FaultTest, HeaderMatchersLimitTheFault) {
  auto f = make(
      R"("abort":{"http_status":500,"percentage":{"numerator":100}},)"
      R"("headers":[{"name":"x-user","exact_match":"tester"},)"
      R"({"name":"x-env","string_match":{"prefix":"stag"}},{"name":"x-canary","present_match":true}])");
  auto with = [](std::initializer_list<http::HeaderEntry> extra) {
    http::HeaderMap h = get();
    for (const auto& e : extra) h.add(e.name, e.value);
    return h;
  };
  auto run = [&](http::HeaderMap h) {
    Stream s(loop_, *f);
    return s.decode(std::move(h));
  };
  EXPECT_EQ(run(with({{"x-user", "tester"}, {"x-env", "staging"}, {"x-canary", ""}})),
            FilterStatus::StopIteration);
  EXPECT_EQ(run(with({{"x-user", "other"}, {"x-env", "staging"}, {"x-canary", "1"}})),
            FilterStatus::Continue);
  EXPECT_EQ(run(with({{"x-user", "tester"}, {"x-env", "prod"}, {"x-canary", "1"}})),
            FilterStatus::Continue);
  EXPECT_EQ(run(with({{"x-user", "tester"}, {"x-env", "staging"}})), FilterStatus::Continue);
  EXPECT_EQ(counter("aborts_injected"), 1u);
}

TEST_F(FaultTest, InvertedAndRegexMatchers) {
  auto f = make(R"("abort":{"http_status":500,"percentage":{"numerator":100}},)"
                R"("headers":[{"name":"x-id","safe_regex_match":{"regex":"[0-9]+"}},)"
                R"({"name":"x-skip","present_match":true,"invert_match":true}])");
  auto run = [&](http::HeaderMap h) {
    Stream s(loop_, *f);
    return s.decode(std::move(h));
  };
  EXPECT_EQ(run({{":method", "GET"}, {"x-id", "123"}}), FilterStatus::StopIteration);
  EXPECT_EQ(run({{":method", "GET"}, {"x-id", "12a"}}), FilterStatus::Continue);
  EXPECT_EQ(run({{":method", "GET"}, {"x-id", "1"}, {"x-skip", "y"}}), FilterStatus::Continue);
}

TEST_F(FaultTest, MaxActiveFaultsOverflow) {
  auto f = make(
      R"("delay":{"fixed_delay":"0.01s","percentage":{"numerator":100}},"max_active_faults":1)");
  Stream a(loop_, *f);
  Stream b(loop_, *f);
  EXPECT_EQ(a.decode(get()), FilterStatus::StopIteration);
  EXPECT_EQ(b.decode(get()), FilterStatus::Continue);
  EXPECT_EQ(counter("faults_overflow"), 1u);
  EXPECT_EQ(counter("delays_injected"), 1u);
  loop_.run();
  a.filter->onDestroy();
  b.filter->onDestroy();
  Stream c(loop_, *f);
  EXPECT_EQ(c.decode(get()), FilterStatus::StopIteration);  // room again
  c.filter->onDestroy();
  EXPECT_EQ(active(), 0);
}

TEST_F(FaultTest, PerRouteConfigReplacesFilterConfig) {
  // Istio's shape: an empty filter-level HTTPFault, the fault itself per route.
  auto f = make("");
  auto route = routeConfigOf(
      "envoy.filters.http.fault",
      R"({"@type":"type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",)"
      R"("abort":{"http_status":504,"percentage":{"numerator":100}}})",
      ctx_);
  ASSERT_TRUE(route);
  Stream s(loop_, *f);
  s.cb.per_filter["envoy.filters.http.fault"] = route;
  EXPECT_EQ(s.decode(get()), FilterStatus::StopIteration);
  ASSERT_TRUE(s.cb.reply);
  EXPECT_EQ(s.cb.reply->status, 504);

  // And the other way: a route config without faults switches off the filter-level fault.
  auto g = make(R"("abort":{"http_status":500,"percentage":{"numerator":100}})");
  auto quiet = routeConfigOf(
      "envoy.filters.http.fault",
      R"({"@type":"type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"})", ctx_);
  Stream t(loop_, *g);
  t.cb.per_filter["envoy.filters.http.fault"] = quiet;
  EXPECT_EQ(t.decode(get()), FilterStatus::Continue);

  // A config for another filter under this name is ignored, never misread.
  auto cors = routeConfigOf("envoy.filters.http.fault",
                            R"({"@type":"type.googleapis.com/envoy.config.route.v3.CorsPolicy",)"
                            R"("allow_origin_string_match":[{"exact":"a"}]})",
                            ctx_);
  Stream u(loop_, *g);
  u.cb.per_filter["envoy.filters.http.fault"] = cors;
  EXPECT_EQ(u.decode(get()), FilterStatus::StopIteration);
  ASSERT_TRUE(u.cb.reply);
  EXPECT_EQ(u.cb.reply->status, 500);
}

TEST_F(FaultTest, DisabledPerRoute) {
  auto f = make(R"("abort":{"http_status":500,"percentage":{"numerator":100}})");
  auto off = routeConfigOf(
      "envoy.filters.http.fault",
      R"({"@type":"type.googleapis.com/envoy.config.route.v3.FilterConfig","disabled":true})",
      ctx_);
  Stream s(loop_, *f);
  s.cb.per_filter["envoy.filters.http.fault"] = off;
  EXPECT_EQ(s.decode(get()), FilterStatus::Continue);
}

TEST_F(FaultTest, ConfigErrorsNameTheField) {
  EXPECT_EQ(filterError(faultFilter(R"("abort":{"http_status":100})")),
            "hcm.http_filters[0].typed_config.abort.http_status: 100 is not in [200, 600)");
  EXPECT_EQ(filterError(faultFilter(R"("abort":{"percentage":{"numerator":1}})")),
            "hcm.http_filters[0].typed_config.abort: one of http_status, grpc_status, "
            "header_abort is required");
  EXPECT_EQ(filterError(faultFilter(R"("delay":{"percentage":{"numerator":1}})")),
            "hcm.http_filters[0].typed_config.delay: one of fixed_delay, header_delay is required");
  EXPECT_EQ(filterError(faultFilter(R"("delay":{"fixed_delay":"0s"})")),
            "hcm.http_filters[0].typed_config.delay.fixed_delay: must be greater than 0");
  EXPECT_EQ(filterError(faultFilter(R"("headers":[{"name":"x","safe_regex_match":{"regex":"("}}])"))
                .rfind("hcm.http_filters[0].typed_config.headers[0].safe_regex_match.regex: "
                       "invalid regex",
                       0),
            0u);
  EXPECT_EQ(filterError(faultFilter(R"("upstream_cluster":"x")")),
            "hcm.http_filters[0].typed_config.upstream_cluster: not supported");
}

}  // namespace
}  // namespace mast::proxy::filters
