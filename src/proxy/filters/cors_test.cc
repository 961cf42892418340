// CORS: preflight answered locally, simple requests decorated on the way out, denied origins
// untouched, shadow mode, per-route policy types, stats, config errors.
#include "proxy/filters/cors.h"

#include <gtest/gtest.h>

#include "proxy/filters/fake_callbacks.h"
#include "proxy/filters/test_util.h"
#include "stats/store.h"

namespace mast::proxy::filters {
namespace {

using testing::factoryOf;
using testing::FakeCallbacks;
using testing::routeConfigOf;

constexpr const char* kName = "envoy.filters.http.cors";
constexpr const char* kFilter =
    R"({"name":"envoy.filters.http.cors","typed_config":{)"
    R"("@type":"type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}})";

class CorsTest : public ::testing::Test {
 protected:
  struct Stream {
    Stream(asio::io_context& loop, const FilterFactory& factory)
        : cb(loop), filter(factory.createFilter()) {
      filter->setCallbacks(cb);
      cb.setFilter(filter.get());
    }
    FilterStatus decode(http::HeaderMap h) {
      cb.request_headers = std::move(h);
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

  void SetUp() override {
    factory_ = factoryOf(kFilter, ctx_);
    policy_ = routeConfigOf(
        kName,
        R"({"@type":"type.googleapis.com/envoy.config.route.v3.CorsPolicy",)"
        R"("allow_origin_string_match":[{"exact":"https://app.example.com"},)"
        R"({"suffix":".trusted.io"},{"safe_regex":{"regex":"https://dev-[0-9]+\\.example\\.org"}}],)"
        R"("allow_methods":"GET,POST","allow_headers":"content-type,x-token",)"
        R"("expose_headers":"x-request-id","max_age":"600","allow_credentials":true})",
        ctx_);
    ASSERT_TRUE(factory_ && policy_);
  }
  Stream stream(const std::shared_ptr<const void>& policy) {
    Stream s(loop_, *factory_);
    if (policy) s.cb.per_filter[kName] = policy;
    return s;
  }
  uint64_t counter(const std::string& n) {
    return store_.counter("http.ingress.cors." + n).value();
  }

  asio::io_context loop_;
  stats::Store store_{1};
  FilterContext ctx_{&store_, "ingress"};
  std::shared_ptr<const FilterFactory> factory_;
  std::shared_ptr<const void> policy_;
};

TEST_F(CorsTest, PreflightIsAnsweredLocally) {
  auto s = stream(policy_);
  EXPECT_EQ(s.decode({{":method", "OPTIONS"},
                      {":path", "/api"},
                      {"origin", "https://app.example.com"},
                      {"access-control-request-method", "POST"}}),
            FilterStatus::StopIteration);
  ASSERT_TRUE(s.cb.reply);
  EXPECT_EQ(s.cb.reply->status, 200);
  EXPECT_EQ(s.cb.reply->body, "");
  EXPECT_EQ(s.cb.reply->details, "cors_response");
  const auto& h = s.cb.reply->headers;
  EXPECT_EQ(h.getOr("access-control-allow-origin"), "https://app.example.com");
  EXPECT_EQ(h.getOr("access-control-allow-credentials"), "true");
  EXPECT_EQ(h.getOr("access-control-allow-methods"), "GET,POST");
  EXPECT_EQ(h.getOr("access-control-allow-headers"), "content-type,x-token");
  EXPECT_EQ(h.getOr("access-control-max-age"), "600");
  EXPECT_FALSE(h.has("access-control-expose-headers"));
  EXPECT_EQ(counter("origin_valid"), 1u);
}

TEST_F(CorsTest, SimpleRequestGetsHeadersOnResponse) {
  auto s = stream(policy_);
  EXPECT_EQ(s.decode({{":method", "GET"}, {":path", "/"}, {"origin", "https://x.trusted.io"}}),
            FilterStatus::Continue);
  EXPECT_FALSE(s.cb.reply);
  auto h = s.respond();
  EXPECT_EQ(h.getOr("access-control-allow-origin"), "https://x.trusted.io");
  EXPECT_EQ(h.getOr("access-control-allow-credentials"), "true");
  EXPECT_EQ(h.getOr("access-control-expose-headers"), "x-request-id");
  EXPECT_FALSE(h.has("access-control-allow-methods"));
}

TEST_F(CorsTest, OptionsWithoutRequestMethodIsNotPreflight) {
  auto s = stream(policy_);
  EXPECT_EQ(s.decode({{":method", "OPTIONS"}, {"origin", "https://dev-42.example.org"}}),
            FilterStatus::Continue);
  EXPECT_FALSE(s.cb.reply);
  EXPECT_EQ(s.respond().getOr("access-control-allow-origin"), "https://dev-42.example.org");
}

TEST_F(CorsTest, DeniedOriginPassesThroughUntouched) {
  for (const char* origin :
       {"https://evil.com", "https://dev-4x.example.org", "https://trusted.io"}) {
    auto s = stream(policy_);
    EXPECT_EQ(
        s.decode(
            {{":method", "OPTIONS"}, {"origin", origin}, {"access-control-request-method", "GET"}}),
        FilterStatus::Continue)
        << origin;
    EXPECT_FALSE(s.cb.reply);
    auto h = s.respond();
    EXPECT_FALSE(h.has("access-control-allow-origin")) << origin;
  }
  EXPECT_EQ(counter("origin_invalid"), 3u);
}

TEST_F(CorsTest, NoOriginOrNoPolicyIsIgnored) {
  auto a = stream(policy_);
  EXPECT_EQ(a.decode({{":method", "GET"}}), FilterStatus::Continue);
  EXPECT_FALSE(a.respond().has("access-control-allow-origin"));
  auto b = stream(nullptr);
  EXPECT_EQ(b.decode({{":method", "OPTIONS"},
                      {"origin", "https://app.example.com"},
                      {"access-control-request-method", "GET"}}),
            FilterStatus::Continue);
  EXPECT_FALSE(b.cb.reply);
  EXPECT_EQ(counter("origin_valid") + counter("origin_invalid"), 0u);
}

TEST_F(CorsTest, WildcardMatcherAllowsAnyOrigin) {
  auto any = routeConfigOf(
      kName,
      R"({"@type":"type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",)"
      R"("allow_origin_string_match":[{"exact":"*"}]})",
      ctx_);
  auto s = stream(any);
  EXPECT_EQ(s.decode({{":method", "GET"}, {"origin", "https://whatever.net"}}),
            FilterStatus::Continue);
  auto h = s.respond();
  EXPECT_EQ(h.getOr("access-control-allow-origin"), "https://whatever.net");
  EXPECT_FALSE(h.has("access-control-allow-credentials"));
}

TEST_F(CorsTest, FilterDisabledAndShadowMode) {
  auto shadow = routeConfigOf(kName,
                              R"({"@type":"type.googleapis.com/envoy.config.route.v3.CorsPolicy",)"
                              R"("allow_origin_string_match":[{"exact":"https://a.com"}],)"
                              R"("filter_enabled":{"default_value":{"numerator":0}},)"
                              R"("shadow_enabled":{"default_value":{"numerator":100}}})",
                              ctx_);
  auto s = stream(shadow);
  EXPECT_EQ(s.decode({{":method", "OPTIONS"},
                      {"origin", "https://a.com"},
                      {"access-control-request-method", "GET"}}),
            FilterStatus::Continue);
  EXPECT_FALSE(s.cb.reply);  // shadow: counted, not enforced
  EXPECT_FALSE(s.respond().has("access-control-allow-origin"));
  EXPECT_EQ(counter("origin_valid"), 1u);
}

TEST_F(CorsTest, NonMatchingPreflightAnsweredWhenNotForwarded) {
  auto strict = routeConfigOf(kName,
                              R"({"@type":"type.googleapis.com/envoy.config.route.v3.CorsPolicy",)"
                              R"("allow_origin_string_match":[{"exact":"https://a.com"}],)"
                              R"("forward_not_matching_preflights":false})",
                              ctx_);
  auto s = stream(strict);
  EXPECT_EQ(s.decode({{":method", "OPTIONS"},
                      {"origin", "https://b.com"},
                      {"access-control-request-method", "GET"}}),
            FilterStatus::StopIteration);
  ASSERT_TRUE(s.cb.reply);
  EXPECT_EQ(s.cb.reply->status, 200);
  EXPECT_FALSE(s.cb.reply->headers.has("access-control-allow-origin"));
}

TEST_F(CorsTest, RouteCorsFieldHelper) {
  envoy::config::route::v3::CorsPolicy p;
  p.add_allow_origin_string_match()->set_prefix("https://");
  p.set_allow_methods("PUT");
  auto c = createRouteCorsPolicy(p, "virtual_hosts[0].cors");
  ASSERT_TRUE(c.ok());
  auto s = stream(*c);
  EXPECT_EQ(s.decode({{":method", "OPTIONS"},
                      {"origin", "https://q.com"},
                      {"access-control-request-method", "PUT"}}),
            FilterStatus::StopIteration);
  ASSERT_TRUE(s.cb.reply);
  EXPECT_EQ(s.cb.reply->headers.getOr("access-control-allow-methods"), "PUT");
}

TEST_F(CorsTest, PolicyErrorsNameTheField) {
  auto bad = createPerRouteConfig(
      kName,
      testing::anyOf(
          R"({"@type":"type.googleapis.com/envoy.config.route.v3.CorsPolicy",)"
          R"("allow_origin_string_match":[{"exact":"a"},{"safe_regex":{"regex":"[a"}}]})"),
      "virtual_hosts[0].typed_per_filter_config[envoy.filters.http.cors]");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().rfind("virtual_hosts[0].typed_per_filter_config[envoy.filters.http.cors]"
                              ".allow_origin_string_match[1].safe_regex.regex: invalid regex",
                              0),
            0u)
      << bad.error();
  auto age = createPerRouteConfig(
      kName,
      testing::anyOf(
          R"({"@type":"type.googleapis.com/envoy.config.route.v3.CorsPolicy","max_age":"ten"})"),
      "r");
  ASSERT_FALSE(age.ok());
  EXPECT_EQ(age.error(), "r.max_age: 'ten' is not a number of seconds");
  auto wrong = createPerRouteConfig(
      kName,
      testing::anyOf(
          R"({"@type":"type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"})"),
      "r");
  ASSERT_FALSE(wrong.ok());
}

}  // namespace
}  // namespace mast::proxy::filters
