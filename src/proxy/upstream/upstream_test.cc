#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <asio.hpp>

#include <map>
#include <thread>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "proxy/upstream/health_checker.h"
#include "proxy/upstream/upstream.h"

namespace mast::upstream {
namespace {

std::shared_ptr<const HostList> makeHosts(int n, std::vector<uint32_t> weights = {},
                                          std::vector<uint32_t> prios = {}) {
  auto hs = std::make_shared<HostList>();
  for (int i = 0; i < n; ++i) {
    auto ep = *net::parseEndpoint("10.0.0." + std::to_string(i + 1), 80);
    hs->push_back(std::make_shared<Host>(ep, "", weights.empty() ? 1 : weights[i],
                                         prios.empty() ? 0 : prios[i]));
  }
  return hs;
}

ClusterConfig cfgWith(LbPolicy p) {
  ClusterConfig c;
  c.lb_policy = p;
  return c;
}

TEST(LoadBalancerTest, RoundRobinCyclesAndSkipsUnhealthy) {
  auto hosts = makeHosts(3);
  auto lb = createLoadBalancer(cfgWith(LbPolicy::RoundRobin), hosts, 1);
  std::vector<std::string> seq;
  for (int i = 0; i < 6; ++i) seq.push_back(lb->chooseHost(std::nullopt, nullptr)->label);
  EXPECT_EQ(seq[0], seq[3]);
  EXPECT_EQ(seq[1], seq[4]);
  EXPECT_NE(seq[0], seq[1]);
  (*hosts)[1]->outlier_ejected = true;
  for (int i = 0; i < 10; ++i) EXPECT_NE(lb->chooseHost(std::nullopt, nullptr), (*hosts)[1]);
  // Excluding the previous host on retry.
  for (int i = 0; i < 10; ++i) {
    EXPECT_NE(lb->chooseHost(std::nullopt, (*hosts)[0].get()), (*hosts)[0]);
  }
}

TEST(LoadBalancerTest, WeightedRoundRobinProportions) {
  auto hosts = makeHosts(2, {1, 3});
  auto lb = createLoadBalancer(cfgWith(LbPolicy::RoundRobin), hosts, 1);
  std::map<std::string, int> n;
  for (int i = 0; i < 400; ++i) n[lb->chooseHost(std::nullopt, nullptr)->label]++;
  EXPECT_EQ(n["10.0.0.1:80"], 100);
  EXPECT_EQ(n["10.0.0.2:80"], 300);
}

TEST(LoadBalancerTest, LeastRequestPrefersIdleHost) {
  auto hosts = makeHosts(2);
  (*hosts)[0]->active_requests = 50;
  auto lb = createLoadBalancer(cfgWith(LbPolicy::LeastRequest), hosts, 7);
  int idle = 0;
  for (int i = 0; i < 1000; ++i) idle += lb->chooseHost(std::nullopt, nullptr) == (*hosts)[1];
  // P2C picks the busy host only when both choices land on it (~25%).
  EXPECT_GT(idle, 650);
}

TEST(LoadBalancerTest, RandomRoughlyUniform) {
  auto hosts = makeHosts(4);
  auto lb = createLoadBalancer(cfgWith(LbPolicy::Random), hosts, 3);
  std::map<const Host*, int> n;
  for (int i = 0; i < 4000; ++i) n[lb->chooseHost(std::nullopt, nullptr).get()]++;
  for (auto& [h, c] : n) EXPECT_NEAR(c, 1000, 200);
}

double movedFraction(LbPolicy p) {
  auto all = makeHosts(5);
  auto fewer = std::make_shared<HostList>(all->begin(), all->end() - 1);
  ClusterConfig c = cfgWith(p);
  auto a = createLoadBalancer(c, all, 1);
  auto b = createLoadBalancer(c, fewer, 1);
  int moved = 0, n = 5000;
  for (int i = 0; i < n; ++i) {
    uint64_t key = std::hash<int>{}(i)*0x9E3779B97F4A7C15ULL;
    auto x = a->chooseHost(key, nullptr);
    auto y = b->chooseHost(key, nullptr);
    EXPECT_EQ(a->chooseHost(key, nullptr), x);  // consistent
    if (x->label != y->label) ++moved;
  }
  return double(moved) / n;
}

TEST(LoadBalancerTest, RingHashAndMaglevMoveFewKeysWhenAHostLeaves) {
  // Removing 1 of 5 hosts should move about 1/5 of the keys, not most of them.
  EXPECT_LT(movedFraction(LbPolicy::RingHash), 0.30);
  EXPECT_LT(movedFraction(LbPolicy::Maglev), 0.30);
}

TEST(LoadBalancerTest, PriorityFailoverWithOverprovisioning) {
  auto hosts = makeHosts(4, {}, {0, 0, 1, 1});
  auto lb = createLoadBalancer(cfgWith(LbPolicy::RoundRobin), hosts, 5);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(lb->chooseHost(std::nullopt, nullptr)->priority, 0u);
  // Half of P0 unhealthy: health = min(100, 1.4 * 50) = 70% stays on P0, 30% spills to P1.
  (*hosts)[0]->failed_active_hc = true;
  int p1 = 0;
  for (int i = 0; i < 2000; ++i) p1 += lb->chooseHost(std::nullopt, nullptr)->priority == 1;
  EXPECT_NEAR(p1, 600, 120);
}

TEST(LoadBalancerTest, PanicWhenMostHostsUnhealthy) {
  auto hosts = makeHosts(4);
  for (int i = 0; i < 4; ++i) (*hosts)[i]->failed_active_hc = true;
  auto lb = createLoadBalancer(cfgWith(LbPolicy::RoundRobin), hosts, 5);
  EXPECT_NE(lb->chooseHost(std::nullopt, nullptr), nullptr);
}

TEST(CircuitBreakerTest, AcquireRelease) {
  Thresholds t;
  t.max_requests = 2;
  ResourceManager rm(t);
  EXPECT_TRUE(rm.tryAcquireRequest());
  EXPECT_TRUE(rm.tryAcquireRequest());
  EXPECT_FALSE(rm.tryAcquireRequest());
  rm.releaseRequest();
  EXPECT_TRUE(rm.tryAcquireRequest());
}

TEST(OutlierDetectorTest, EjectsAfterConsecutive5xxAndReturnsLater) {
  OutlierConfig c;
  c.enabled = true;
  c.consecutive_5xx = 3;
  c.base_ejection_time = std::chrono::milliseconds(1000);
  c.max_ejection_percent = 50;
  auto hosts = makeHosts(4);
  OutlierDetector od(c, hosts);
  auto t0 = std::chrono::steady_clock::now();
  od.now = [&] { return t0; };
  Host& h = *(*hosts)[0];
  od.reportResult(h, 503, false, 0);
  od.reportResult(h, 200, false, 0);  // success resets the streak
  od.reportResult(h, 500, false, 0);
  od.reportResult(h, 500, false, 0);
  EXPECT_FALSE(h.outlier_ejected);
  EXPECT_TRUE(od.reportResult(h, 500, false, 0));
  EXPECT_TRUE(h.outlier_ejected);
  EXPECT_EQ(od.ejections_active, 1);
  EXPECT_FALSE(od.onInterval(t0 + std::chrono::milliseconds(500)));
  EXPECT_TRUE(od.onInterval(t0 + std::chrono::milliseconds(1001)));
  EXPECT_FALSE(h.outlier_ejected);
  // max_ejection_percent: with 2 of 4 ejected (50%) a third is not.
  for (int k = 0; k < 3; ++k) {
    for (int i = 0; i < 3; ++i) od.reportResult(*(*hosts)[k], 500, false, 0);
  }
  EXPECT_EQ(od.ejections_active, 2);
  EXPECT_GE(od.ejections_overflow, 1u);
}

TEST(ClusterConfigTest, ParsesEnvoyDemoCluster) {
  envoy::config::cluster::v3::Cluster p;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(R"({
    "name":"service_envoyproxy_io","type":"LOGICAL_DNS","dns_lookup_family":"V4_ONLY",
    "load_assignment":{"cluster_name":"service_envoyproxy_io","endpoints":[{"lb_endpoints":[
      {"endpoint":{"address":{"socket_address":{"address":"www.envoyproxy.io","port_value":443}}}}]}]},
    "transport_socket":{"name":"envoy.transport_sockets.tls","typed_config":{
      "@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
      "sni":"www.envoyproxy.io"}}})",
                                                          &p)
                  .ok());
  auto c = ClusterConfig::create(p);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ((*c)->type, DiscoveryType::LogicalDns);
  EXPECT_TRUE((*c)->dns_v4_only);
  ASSERT_TRUE((*c)->tls);
  EXPECT_EQ((*c)->tls->sni, "www.envoyproxy.io");
  EXPECT_EQ((*c)->endpoints.at(0).address, "www.envoyproxy.io");
  EXPECT_EQ((*c)->connect_timeout.count(), 5000);
}

TEST(ClusterConfigTest, ErrorsNameFieldPaths) {
  envoy::config::cluster::v3::Cluster p;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(R"({"name":"c","type":"STATIC",
    "load_assignment":{"endpoints":[{"lb_endpoints":[{"endpoint":{"address":{"socket_address":
    {"address":"not-an-ip","port_value":80}}}}]}]}})",
                                                          &p)
                  .ok());
  auto c = ClusterConfig::create(p);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("load_assignment.endpoints[0].lb_endpoints[0].endpoint.address"),
            std::string::npos)
      << c.error();
}

// HttpProtocolOptions' upstream_protocol_options, as Envoy reads and validates them.
TEST(ClusterConfigTest, UpstreamProtocolSelection) {
  auto parse = [](const std::string& options, bool tls) {
    std::string json = R"({"name":"c","type":"STATIC","typed_extension_protocol_options":{
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions":{
      "@type":"type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",)" +
                       options + "}}";
    if (tls) {
      json += R"(,"transport_socket":{"name":"envoy.transport_sockets.tls","typed_config":{
        "@type":"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"}})";
    }
    json += "}";
    envoy::config::cluster::v3::Cluster p;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &p).ok()) << json;
    return ClusterConfig::create(p);
  };
  auto c = parse(R"("explicit_http_config":{"http2_protocol_options":{}})", false);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ((*c)->protocol, UpstreamProtocol::Http2);
  c = parse(R"("explicit_http_config":{"http_protocol_options":{}})", false);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ((*c)->protocol, UpstreamProtocol::Http1);
  c = parse(R"("use_downstream_protocol_config":{})", false);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ((*c)->protocol, UpstreamProtocol::UseDownstream);
  c = parse(R"("auto_config":{})", true);
  ASSERT_TRUE(c.ok()) << c.error();
  EXPECT_EQ((*c)->protocol, UpstreamProtocol::Auto);
  // Envoy: "ALPN configured for cluster c which has a non-ALPN transport socket".
  c = parse(R"("auto_config":{})", false);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("HttpProtocolOptions].auto_config: ALPN configured for cluster c "
                           "which has a non-ALPN transport socket"),
            std::string::npos)
      << c.error();
  c = parse(R"("common_http_protocol_options":{"idle_timeout":"5s"})", false);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("one of explicit_http_config, use_downstream_protocol_config or "
                           "auto_config is required"),
            std::string::npos)
      << c.error();
  c = parse(R"("explicit_http_config":{"http3_protocol_options":{}})", false);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().find("explicit_http_config.http3_protocol_options"), std::string::npos)
      << c.error();
}

TEST(HealthCheckerTest, HttpChecksAgainstARealServer) {
  asio::io_context loop;
  asio::ip::tcp::acceptor acc(loop, {asio::ip::make_address("127.0.0.1"), 0});
  int status = 200;
  std::function<void()> accept = [&] {
    acc.async_accept([&](std::error_code ec, asio::ip::tcp::socket s) {
      if (ec) return;
      auto sock = std::make_shared<asio::ip::tcp::socket>(std::move(s));
      auto buf = std::make_shared<std::array<char, 1024>>();
      sock->async_read_some(asio::buffer(*buf), [sock, buf, &status](std::error_code, size_t) {
        auto resp = std::make_shared<std::string>("HTTP/1.1 " + std::to_string(status) +
                                                  " X\r\ncontent-length: 0\r\n\r\n");
        asio::async_write(*sock, asio::buffer(*resp), [sock, resp](std::error_code, size_t) {});
      });
      accept();
    });
  };
  accept();
  HealthCheckConfig cfg;
  cfg.interval = std::chrono::milliseconds(20);
  cfg.timeout = std::chrono::milliseconds(500);
  cfg.unhealthy_threshold = 2;
  cfg.healthy_threshold = 2;
  cfg.path = "/healthz";
  cfg.expected_statuses = {{200, 201}};
  int changes = 0;
  HealthChecker hc(loop, cfg, "c", [&] { ++changes; });
  HostList hosts{std::make_shared<Host>(acc.local_endpoint(), "", 1, 0)};
  hc.setHosts(hosts);
  EXPECT_TRUE(hosts[0]->failed_active_hc);
  auto runUntil = [&](auto pred) {
    for (int i = 0; i < 200 && !pred(); ++i) loop.run_for(std::chrono::milliseconds(10));
  };
  runUntil([&] { return !hosts[0]->failed_active_hc; });
  EXPECT_FALSE(hosts[0]->failed_active_hc);
  status = 503;
  runUntil([&] { return hosts[0]->failed_active_hc.load(); });
  EXPECT_TRUE(hosts[0]->failed_active_hc);
  EXPECT_EQ(changes, 2);
  hc.stop();
}

}  // namespace
}  // namespace mast::upstream
