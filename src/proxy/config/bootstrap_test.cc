#include "proxy/config/bootstrap.h"

#include <gtest/gtest.h>

#include "envoy/config/bootstrap/v3/bootstrap.pb.h"

namespace mast::proxy::config {
namespace {

const char* kDemo = R"(static_resources:
  listeners:
  - name: listener_0
    address:
      socket_address:
        address: 0.0.0.0
        port_value: 10000
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          access_log:
          - name: envoy.access_loggers.stdout
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          route_config:
            name: local_route
            virtual_hosts:
            - name: local_service
              domains: ["*"]
              routes:
              - match:
                  prefix: "/"
                route:
                  host_rewrite_literal: www.envoyproxy.io
                  cluster: service_envoyproxy_io
  clusters:
  - name: service_envoyproxy_io
    type: LOGICAL_DNS
    dns_lookup_family: V4_ONLY
    connect_timeout: 5s
    load_assignment:
      cluster_name: service_envoyproxy_io
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address:
                address: www.envoyproxy.io
                port_value: 443
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: www.envoyproxy.io
admin:
  address:
    socket_address: { address: 0.0.0.0, port_value: 9901 }
)";

std::string replace(std::string s, const std::string& from, const std::string& to) {
  size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  return s.replace(p, from.size(), to);
}

TEST(BootstrapTest, EnvoyDemoLoads) {
  auto b = loadBootstrapFromString(kDemo, "envoy-demo.yaml");
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ((*b)->static_resources().listeners(0).address().socket_address().port_value(), 10000u);
  EXPECT_EQ((*b)->static_resources().clusters(0).connect_timeout().seconds(), 5);
}

TEST(BootstrapTest, ConfigYamlMergesOverFile) {
  char path[] = "/tmp/mast-bootstrap-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, kDemo, strlen(kDemo)), static_cast<ssize_t>(strlen(kDemo)));
  close(fd);
  auto b = loadBootstrap({path, "admin:\n  address:\n    socket_address:\n      address: 0.0.0.0\n      port_value: 9902\n"});
  unlink(path);
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ((*b)->admin().address().socket_address().port_value(), 9902u);
  EXPECT_EQ((*b)->static_resources().listeners_size(), 1);
}

TEST(BootstrapTest, UnknownFieldNamesFileLineAndPath) {
  auto b = loadBootstrapFromString(replace(kDemo, "stat_prefix:", "stat_prefx:"), "envoy.yaml");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error(),
            "envoy.yaml:13: static_resources.listeners[0].filter_chains[0].filters[0].typed_config."
            "stat_prefx: unknown field \"stat_prefx\" in "
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager");
}

TEST(BootstrapTest, TypeErrorsAndBadValues) {
  auto b1 = loadBootstrapFromString(replace(kDemo, "port_value: 10000", "port_value: ten"), "e.yaml");
  ASSERT_FALSE(b1.ok());
  EXPECT_EQ(b1.error(), "e.yaml:7: static_resources.listeners[0].address.socket_address.port_value: "
                        "expected a number");
  auto b2 = loadBootstrapFromString(replace(kDemo, "connect_timeout: 5s", "connect_timeout: 5x"), "e.yaml");
  ASSERT_FALSE(b2.ok());
  EXPECT_NE(b2.error().find("e.yaml:37: static_resources.clusters[0].connect_timeout: invalid duration"),
            std::string::npos)
      << b2.error();
  auto b3 = loadBootstrapFromString(replace(kDemo, "type: LOGICAL_DNS", "type: LOGICAL"), "e.yaml");
  ASSERT_FALSE(b3.ok());
  EXPECT_NE(b3.error().find("e.yaml:35: static_resources.clusters[0].type: invalid value \"LOGICAL\""),
            std::string::npos)
      << b3.error();
  auto b4 = loadBootstrapFromString(
      replace(kDemo, "access_loggers.stream.v3.StdoutAccessLog", "access_loggers.nope.v3.Nope"), "e.yaml");
  ASSERT_FALSE(b4.ok());
  EXPECT_NE(b4.error().find("unknown type \"type.googleapis.com/envoy.extensions.access_loggers.nope.v3.Nope\""),
            std::string::npos)
      << b4.error();
}

TEST(BootstrapTest, SemanticErrors) {
  auto b = loadBootstrapFromString(replace(kDemo, "cluster: service_envoyproxy_io", "cluster: missing"),
                                   "e.yaml");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error(), "e.yaml:32: static_resources.listeners[0].filter_chains[0].filters[0]."
                       "typed_config.route_config.virtual_hosts[0].routes[0].route.cluster: unknown "
                       "cluster 'missing'");
  auto b2 = loadBootstrapFromString(
      replace(kDemo, "filters.http.router.v3.Router", "filters.http.rbac.v3.RBAC"), "e.yaml");
  ASSERT_FALSE(b2.ok());
  EXPECT_NE(b2.error().find("unsupported HTTP filter 'envoy.extensions.filters.http.rbac.v3.RBAC'"),
            std::string::npos)
      << b2.error();
}

TEST(BootstrapTest, JsonInputWorks) {
  auto b = loadBootstrapFromString(
      R"({"admin":{"address":{"socket_address":{"address":"127.0.0.1","port_value":9901}}}})", "b.json");
  ASSERT_TRUE(b.ok()) << b.error();
  EXPECT_EQ((*b)->admin().address().socket_address().port_value(), 9901u);
}

}  // namespace
}  // namespace mast::proxy::config
