// Registry: which filter types exist, dispatch of typed_config / typed_per_filter_config, errors.
#include "proxy/filters/registry.h"

#include <gtest/gtest.h>

#include "proxy/filters/cors.h"
#include "proxy/filters/fault.h"
#include "proxy/filters/local_ratelimit.h"
#include "proxy/filters/test_util.h"

namespace mast::proxy::filters {
namespace {

TEST(RegistryTest, KnownFilterTypes) {
  EXPECT_TRUE(
      isKnownFilterType("type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"));
  EXPECT_TRUE(isKnownFilterType(
      "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"));
  EXPECT_TRUE(isKnownFilterType("envoy.extensions.filters.http.cors.v3.Cors"));
  EXPECT_TRUE(
      isKnownFilterType("type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"));
  EXPECT_FALSE(isKnownFilterType("type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"));
  EXPECT_FALSE(isKnownFilterType(""));
}

TEST(RegistryTest, FactoriesByType) {
  auto fault = testing::factoryOf(
      R"({"name":"f","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}})",
      {});
  EXPECT_NE(dynamic_cast<const FaultFilterFactory*>(fault.get()), nullptr);
  auto cors = testing::factoryOf(
      R"({"name":"c","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}})",
      {});
  EXPECT_NE(dynamic_cast<const CorsFilterFactory*>(cors.get()), nullptr);
  EXPECT_EQ(
      testing::filterError(
          R"({"name":"r","typed_config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"}})"),
      "hcm.http_filters[0].typed_config: HTTP filter 'envoy.extensions.filters.http.rbac.v3.RBAC' "
      "is not available in this build");
  EXPECT_EQ(testing::filterError(R"({"name":"x"})"), "hcm.http_filters[0].typed_config: required");
}

TEST(RegistryTest, PerRouteConfigKinds) {
  auto kindOf = [](const std::string& json) {
    auto c = createPerRouteConfig("n", testing::anyOf(json), "p");
    EXPECT_TRUE(c.ok());
    EXPECT_TRUE(*c);
    return static_cast<const RouteFilterConfig*>(c->get())->kind;
  };
  EXPECT_EQ(
      kindOf(R"({"@type":"type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"})"),
      RouteFilterConfig::Kind::Fault);
  EXPECT_EQ(kindOf(R"({"@type":"type.googleapis.com/envoy.config.route.v3.CorsPolicy"})"),
            RouteFilterConfig::Kind::Cors);
  EXPECT_EQ(
      kindOf(
          R"({"@type":"type.googleapis.com/envoy.config.route.v3.FilterConfig",)"
          R"("config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"}})"),
      RouteFilterConfig::Kind::Cors);
  EXPECT_EQ(
      kindOf(
          R"({"@type":"type.googleapis.com/envoy.config.route.v3.FilterConfig","disabled":true})"),
      RouteFilterConfig::Kind::Disabled);
  // Another filter's per-route config: ignored (ok, nullptr).
  auto other = createPerRouteConfig(
      "envoy.filters.http.rbac",
      testing::anyOf(
          R"({"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"})"),
      "p");
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(*other, nullptr);
  // Errors inside a wrapped config name the wrapper's field.
  auto bad = createPerRouteConfig(
      "n",
      testing::anyOf(
          R"({"@type":"type.googleapis.com/envoy.config.route.v3.FilterConfig",)"
          R"("config":{"@type":"type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",)"
          R"("abort":{"http_status":700}}})"),
      "route.typed_per_filter_config[n]");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(),
            "route.typed_per_filter_config[n].config.abort.http_status: 700 is not in [200, 600)");
}

}  // namespace
}  // namespace mast::proxy::filters
