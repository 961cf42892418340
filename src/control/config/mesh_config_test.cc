#include "control/config/mesh_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace mast::control::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using Mesh = istio::mesh::v1alpha1::MeshConfig;

std::vector<std::string> strings(const std::vector<ConfigError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.toString());
  return out;
}

TEST(MeshConfig, IstioDefaults) {
  Mesh m = defaultMeshConfig();
  EXPECT_EQ(m.connect_timeout().seconds(), 10);
  EXPECT_TRUE(m.enable_auto_mtls().value());
  EXPECT_EQ(m.outbound_traffic_policy().mode(), Mesh::OutboundTrafficPolicy::ALLOW_ANY);
  EXPECT_EQ(m.root_namespace(), "istio-system");
  EXPECT_EQ(m.trust_domain(), "cluster.local");
  EXPECT_EQ(m.dns_refresh_rate().seconds(), 60);
  EXPECT_EQ(m.default_config().proxy_admin_port(), 15000);
  EXPECT_EQ(m.default_config().status_port(), 15020);
  EXPECT_EQ(m.default_config().discovery_address(), "istiod.istio-system.svc:15012");
  EXPECT_EQ(m.access_log_file(), "");
  EXPECT_FALSE(m.has_default_http_retry_policy());
  // An empty file is the defaults.
  auto r = parseMeshConfig("mesh.yaml", "");
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.config.SerializeAsString(), m.SerializeAsString());
}

TEST(MeshConfig, UserValuesMergeOverDefaults) {
  auto r = parseMeshConfig("mesh.yaml", R"(# as in the istio ConfigMap's "mesh" key
accessLogFile: /dev/stdout
enableAutoMtls: false
trustDomain: example.org
outboundTrafficPolicy:
  mode: REGISTRY_ONLY
connectTimeout: 2s
defaultConfig:
  discoveryAddress: mastd.mast-system.svc:15012
  proxyMetadata:
    ISTIO_META_DNS_CAPTURE: "true"
  holdApplicationUntilProxyStarts: true
defaultHttpRetryPolicy:
  attempts: 3
  retryOn: 5xx,connect-failure
  perTryTimeout: 500ms
)");
  ASSERT_THAT(strings(r.errors), IsEmpty());
  const Mesh& m = r.config;
  EXPECT_EQ(m.access_log_file(), "/dev/stdout");
  EXPECT_FALSE(m.enable_auto_mtls().value());
  EXPECT_TRUE(m.has_enable_auto_mtls());
  EXPECT_EQ(m.trust_domain(), "example.org");
  // Explicitly set to the proto default (0): must not fall back to Istio's ALLOW_ANY default.
  EXPECT_EQ(m.outbound_traffic_policy().mode(), Mesh::OutboundTrafficPolicy::REGISTRY_ONLY);
  EXPECT_EQ(m.connect_timeout().seconds(), 2);
  // Nested maps merge: defaults not mentioned survive.
  EXPECT_EQ(m.default_config().discovery_address(), "mastd.mast-system.svc:15012");
  EXPECT_EQ(m.default_config().proxy_admin_port(), 15000);
  EXPECT_EQ(m.default_config().proxy_metadata().at("ISTIO_META_DNS_CAPTURE"), "true");
  EXPECT_TRUE(m.default_config().hold_application_until_proxy_starts().value());
  EXPECT_EQ(m.default_http_retry_policy().attempts(), 3);
  EXPECT_EQ(m.default_http_retry_policy().per_try_timeout().nanos(), 500000000);
  EXPECT_EQ(m.root_namespace(), "istio-system");
}

TEST(MeshConfig, ErrorsNameLineAndPath) {
  auto r = parseMeshConfig("mesh.yaml", R"(trustDomain: cluster.local
outboundTrafficPolicy:
  mode: BLOCK_ALL
defaultConfig:
  proxyAdminPortt: 15000
connectTimeout: 10
)");
  EXPECT_THAT(strings(r.errors),
              ElementsAre("mesh.yaml: line 3: outboundTrafficPolicy.mode: invalid value "
                          "\"BLOCK_ALL\" (expected one of REGISTRY_ONLY, ALLOW_ANY, "
                          "ALLOW_ANY_DYNAMIC_DNS)",
                          "mesh.yaml: line 5: defaultConfig.proxyAdminPortt: unknown field "
                          "\"proxyAdminPortt\"",
                          "mesh.yaml: line 6: connectTimeout: expected a duration string such as "
                          "\"5s\" or \"100ms\", got an integer"));
  r = parseMeshConfig("mesh.yaml", "rootNamespace: Istio_System\nconnectTimeout: 0s\n");
  EXPECT_THAT(strings(r.errors),
              ElementsAre("mesh.yaml: line 1: rootNamespace: invalid namespace \"Istio_System\"",
                          "mesh.yaml: line 2: connectTimeout: duration must be greater than 1ms"));
}

}  // namespace
}  // namespace mast::control::config
