// VirtualService `tls` and `tcp` routes on sidecars (spec: TLS/HTTPS chain, TCP chain): one
// filter chain per applicable match (server_names = sniHosts, prefix_ranges = destinationSubnets),
// tcp_proxy to the (weighted) destinations; static predicates (port, sourceLabels,
// sourceNamespace, gateways) decided at generation time.
#include <gtest/gtest.h>

#include <map>

#include "control/translate/generate.h"
#include "control/translate/test_util.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb.h"

namespace mast::control::translate {
namespace {

namespace lv3 = envoy::config::listener::v3;
namespace tcpv3 = envoy::extensions::filters::network::tcp_proxy::v3;

using testing::json;
using testing::sidecar;

// Two TLS backends of one service without VIP (SNI-routed on 0.0.0.0_443) and a TCP service
// with a VIP, each with subsets v1/v2.
constexpr const char* kServices = R"(
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure.example.com]
  ports: [{number: 443, name: tls, protocol: TLS}]
  location: MESH_EXTERNAL
  resolution: STATIC
  endpoints:
  - {address: 10.0.5.1, labels: {version: v1}}
  - {address: 10.0.5.2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.default.svc.cluster.local]
  addresses: [10.96.0.99]
  ports: [{number: 5432, name: tcp-pg, protocol: TCP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints:
  - {address: 10.0.3.1, labels: {version: v1}}
  - {address: 10.0.3.2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: secure, namespace: default}
spec:
  host: secure.example.com
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db, namespace: default}
spec:
  host: db
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
)";

class L4RoutesTest : public testing::BookinfoTest {
 protected:
  void SetUp() override {
    BookinfoTest::SetUp();
    apply("services.yaml", kServices);
  }
  const lv3::Listener* listener(const ProxyResources& r, const std::string& name) {
    for (const auto& l : r.listeners) {
      if (l.name() == name) return &l;
    }
    ADD_FAILURE() << "no listener " << name;
    return nullptr;
  }
};

tcpv3::TcpProxy tcpProxyOf(const lv3::FilterChain& fc) {
  tcpv3::TcpProxy tp;
  EXPECT_EQ(fc.filters_size(), 1) << json(fc);
  if (fc.filters_size() > 0) {
    EXPECT_TRUE(fc.filters(0).typed_config().UnpackTo(&tp));
  }
  return tp;
}

// The chain whose server_names are exactly `names`, or nullptr.
const lv3::FilterChain* chainForSni(const lv3::Listener& l, std::vector<std::string> names) {
  for (const auto& fc : l.filter_chains()) {
    std::vector<std::string> got(fc.filter_chain_match().server_names().begin(),
                                 fc.filter_chain_match().server_names().end());
    if (got == names) return &fc;
  }
  return nullptr;
}

bool hasListenerFilter(const lv3::Listener& l, const std::string& name) {
  for (const auto& f : l.listener_filters()) {
    if (f.name() == name) return true;
  }
  return false;
}

TEST_F(L4RoutesTest, WithoutVirtualServiceTlsGoesToTheServiceBySni) {
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* l = listener(r, "0.0.0.0_443");
  ASSERT_NE(l, nullptr);
  const auto* fc = chainForSni(*l, {"secure.example.com"});
  ASSERT_NE(fc, nullptr) << json(*l);
  EXPECT_EQ(tcpProxyOf(*fc).cluster(), "outbound|443||secure.example.com");
  EXPECT_TRUE(hasListenerFilter(*l, "envoy.filters.listener.tls_inspector"));
}

TEST_F(L4RoutesTest, TlsRoutesBySniWithWeightsAndSubsets) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure.example.com, "*.secure.example.com", other-port.example.com]
  tls:
  - match: [{port: 443, sniHosts: [secure.example.com]}]
    route:
    - {destination: {host: secure.example.com, subset: v1}, weight: 25}
    - {destination: {host: secure.example.com, subset: v2}, weight: 75}
  - match: [{port: 443, sniHosts: [v2.secure.example.com]}]
    route:
    - destination: {host: secure.example.com, subset: v2}
  - match: [{port: 8443, sniHosts: [other-port.example.com]}]
    route:
    - destination: {host: secure.example.com, subset: v1}
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* l = listener(r, "0.0.0.0_443");
  ASSERT_NE(l, nullptr);
  EXPECT_TRUE(hasListenerFilter(*l, "envoy.filters.listener.tls_inspector"));
  const auto* weighted = chainForSni(*l, {"secure.example.com"});
  ASSERT_NE(weighted, nullptr) << json(*l);
  auto tp = tcpProxyOf(*weighted);
  EXPECT_EQ(tp.stat_prefix(), "secure.default");
  ASSERT_EQ(tp.weighted_clusters().clusters_size(), 2) << json(tp);
  EXPECT_EQ(tp.weighted_clusters().clusters(0).name(), "outbound|443|v1|secure.example.com");
  EXPECT_EQ(tp.weighted_clusters().clusters(0).weight(), 25u);
  EXPECT_EQ(tp.weighted_clusters().clusters(1).name(), "outbound|443|v2|secure.example.com");
  EXPECT_EQ(tp.weighted_clusters().clusters(1).weight(), 75u);
  const auto* v2 = chainForSni(*l, {"v2.secure.example.com"});
  ASSERT_NE(v2, nullptr) << json(*l);
  EXPECT_EQ(tcpProxyOf(*v2).cluster(), "outbound|443|v2|secure.example.com");
  // The match for another port does not apply; with tls routes there is no chain to the
  // service's own cluster: other SNIs take the wildcard listener's passthrough default.
  EXPECT_EQ(chainForSni(*l, {"other-port.example.com"}), nullptr);
  EXPECT_EQ(l->filter_chains_size(), 2) << json(*l);
  EXPECT_EQ(l->default_filter_chain().name(), "PassthroughFilterChain") << json(*l);
  // The subset clusters exist for the chains to use.
  bool v1_cluster = false;
  for (const auto& c : r.clusters)
    v1_cluster = v1_cluster || c.name() == "outbound|443|v1|secure.example.com";
  EXPECT_TRUE(v1_cluster);
}

TEST_F(L4RoutesTest, TlsMatchStaticPredicatesAndDestinationSubnets) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure.example.com]
  tls:
  - match: [{sniHosts: [secure.example.com], sourceLabels: {app: reviews}}]
    route: [{destination: {host: secure.example.com, subset: v2}}]
  - match: [{sniHosts: [secure.example.com], sourceNamespace: other}]
    route: [{destination: {host: secure.example.com, subset: v2}}]
  - match: [{sniHosts: [secure.example.com], gateways: [istio-system/ingress]}]
    route: [{destination: {host: secure.example.com, subset: v2}}]
  - match: [{sniHosts: [secure.example.com], destinationSubnets: [10.0.5.0/24, 10.0.6.1]}]
    route: [{destination: {host: secure.example.com, subset: v1}}]
  - match: [{sniHosts: [secure.example.com], gateways: [mesh]}]
    route: [{destination: {host: secure.example.com, subset: v2}}]
  - match: [{sniHosts: [secure.example.com]}]
    route: [{destination: {host: secure.example.com, subset: v1}}]
)");
  // productpage: neither reviews nor namespace "other"; the ingress-only match is skipped.
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* l = listener(r, "0.0.0.0_443");
  ASSERT_NE(l, nullptr);
  ASSERT_EQ(l->filter_chains_size(), 2) << json(*l);
  const auto& subnets = l->filter_chains(0);
  ASSERT_EQ(subnets.filter_chain_match().prefix_ranges_size(), 2) << json(subnets);
  EXPECT_EQ(subnets.filter_chain_match().prefix_ranges(0).address_prefix(), "10.0.5.0");
  EXPECT_EQ(subnets.filter_chain_match().prefix_ranges(0).prefix_len().value(), 24u);
  EXPECT_EQ(subnets.filter_chain_match().prefix_ranges(1).address_prefix(), "10.0.6.1");
  EXPECT_EQ(subnets.filter_chain_match().prefix_ranges(1).prefix_len().value(), 32u);
  EXPECT_EQ(subnets.filter_chain_match().server_names(0), "secure.example.com");
  EXPECT_EQ(tcpProxyOf(subnets).cluster(), "outbound|443|v1|secure.example.com");
  // `gateways: [mesh]` applies on sidecars; the later identical match is collapsed (first wins).
  const auto& mesh = l->filter_chains(1);
  EXPECT_EQ(mesh.filter_chain_match().prefix_ranges_size(), 0);
  EXPECT_EQ(tcpProxyOf(mesh).cluster(), "outbound|443|v2|secure.example.com");

  // reviews matches the sourceLabels route first.
  auto rv = gen(sidecar("reviews", "10.0.0.31"));
  const auto* rl = listener(rv, "0.0.0.0_443");
  ASSERT_NE(rl, nullptr);
  EXPECT_EQ(tcpProxyOf(*chainForSni(*rl, {"secure.example.com"})).cluster(),
            "outbound|443|v2|secure.example.com");
}

TEST_F(L4RoutesTest, TcpDestinationSubnetsBecomeCidrChains) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: default}
spec:
  hosts: [db]
  tcp:
  - match: [{destinationSubnets: [10.96.0.99/32], sourceLabels: {app: nobody}}]
    route: [{destination: {host: db, subset: v2}}]
  - match: [{destinationSubnets: [10.96.0.0/16]}]
    route: [{destination: {host: db, subset: v1}}]
  - route:
    - {destination: {host: db, subset: v1}, weight: 50}
    - {destination: {host: db, subset: v2}, weight: 50}
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* l = listener(r, "10.96.0.99_5432");
  ASSERT_NE(l, nullptr);
  // The subnet match (sourceLabels unmet for the first) then the terminal match-less route.
  ASSERT_EQ(l->filter_chains_size(), 1) << json(*l);
  const auto& cidr = l->filter_chains(0);
  ASSERT_EQ(cidr.filter_chain_match().prefix_ranges_size(), 1) << json(cidr);
  EXPECT_EQ(cidr.filter_chain_match().prefix_ranges(0).address_prefix(), "10.96.0.0");
  EXPECT_EQ(cidr.filter_chain_match().prefix_ranges(0).prefix_len().value(), 16u);
  EXPECT_EQ(tcpProxyOf(cidr).cluster(), "outbound|5432|v1|db.default.svc.cluster.local");
  ASSERT_TRUE(l->has_default_filter_chain()) << json(*l);
  auto tp = tcpProxyOf(l->default_filter_chain());
  ASSERT_EQ(tp.weighted_clusters().clusters_size(), 2) << json(tp);
  EXPECT_EQ(tp.stat_prefix(), "db.default");
}

TEST_F(L4RoutesTest, TcpSubnetOnlyRoutesKeepTheServiceDefault) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: default}
spec:
  hosts: [db]
  tcp:
  - match: [{destinationSubnets: [10.96.0.0/16]}, {port: 5432, destinationSubnets: [10.97.0.0/16]}]
    route: [{destination: {host: db, subset: v2}}]
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* l = listener(r, "10.96.0.99_5432");
  ASSERT_NE(l, nullptr);
  ASSERT_EQ(l->filter_chains_size(), 1) << json(*l);
  EXPECT_EQ(l->filter_chains(0).filter_chain_match().prefix_ranges_size(), 2);
  EXPECT_EQ(tcpProxyOf(l->filter_chains(0)).cluster(),
            "outbound|5432|v2|db.default.svc.cluster.local");
  ASSERT_TRUE(l->has_default_filter_chain()) << json(*l);
  EXPECT_EQ(tcpProxyOf(l->default_filter_chain()).cluster(),
            "outbound|5432||db.default.svc.cluster.local");
}

// Every tcp_proxy of a listener (its chains and default chain) by cluster.
std::map<std::string, tcpv3::TcpProxy> tcpProxiesByCluster(const lv3::Listener& l) {
  std::map<std::string, tcpv3::TcpProxy> out;
  auto add = [&](const lv3::FilterChain& fc) {
    auto tp = tcpProxyOf(fc);
    out[tp.cluster()] = tp;
  };
  for (const auto& fc : l.filter_chains()) add(fc);
  if (l.has_default_filter_chain()) add(l.default_filter_chain());
  return out;
}

bool hashesSourceIp(const tcpv3::TcpProxy& tp) {
  return tp.hash_policy_size() == 1 && tp.hash_policy(0).has_source_ip();
}

// DestinationRule consistentHash.useSourceIp on a TCP port: the tcp_proxy hashes the client's
// address (hash_policy source_ip) and the cluster is RING_HASH, as Istio's
// buildOutboundNetworkFiltersWithSingleDestination; a subset whose own policy has no consistent
// hash, and an HTTP-only hash key (header), give no tcp hash policy.
TEST_F(L4RoutesTest, ConsistentHashUseSourceIpOnTcpPort) {
  std::string services = kServices;
  std::string old_db =
      "  host: db\n  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: "
      "v2}}]\n";
  ASSERT_NE(services.find(old_db), std::string::npos);
  services.replace(services.find(old_db), old_db.size(), R"(  host: db
  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true}}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - name: v2
    labels: {version: v2}
    trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
)");
  apply("services.yaml", services);
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* l = listener(r, "10.96.0.99_5432");
  ASSERT_NE(l, nullptr);
  auto tps = tcpProxiesByCluster(*l);
  ASSERT_TRUE(tps.count("outbound|5432||db.default.svc.cluster.local")) << json(*l);
  EXPECT_TRUE(hashesSourceIp(tps["outbound|5432||db.default.svc.cluster.local"])) << json(*l);
  bool ring_hash = false;
  for (const auto& c : r.clusters) {
    if (c.name() == "outbound|5432||db.default.svc.cluster.local") {
      ring_hash = c.lb_policy() == envoy::config::cluster::v3::Cluster::RING_HASH;
    }
  }
  EXPECT_TRUE(ring_hash);

  // tcp routes: to v1 (the top-level policy) hashed, to v2 (its own ROUND_ROBIN) not.
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: default}
spec:
  hosts: [db]
  tcp:
  - match: [{destinationSubnets: [10.96.0.0/16]}]
    route: [{destination: {host: db, subset: v2}}]
  - route: [{destination: {host: db, subset: v1}}]
)");
  r = gen(sidecar("productpage", "10.0.0.10"));
  l = listener(r, "10.96.0.99_5432");
  ASSERT_NE(l, nullptr);
  tps = tcpProxiesByCluster(*l);
  ASSERT_TRUE(tps.count("outbound|5432|v1|db.default.svc.cluster.local")) << json(*l);
  ASSERT_TRUE(tps.count("outbound|5432|v2|db.default.svc.cluster.local")) << json(*l);
  EXPECT_TRUE(hashesSourceIp(tps["outbound|5432|v1|db.default.svc.cluster.local"]));
  EXPECT_EQ(tps["outbound|5432|v2|db.default.svc.cluster.local"].hash_policy_size(), 0);

  // A header hash means nothing on TCP.
  services.replace(services.find("{useSourceIp: true}"), 19, "{httpHeaderName: x-user}");
  apply("services.yaml", services);
  r = gen(sidecar("productpage", "10.0.0.10"));
  l = listener(r, "10.96.0.99_5432");
  ASSERT_NE(l, nullptr);
  for (const auto& [cluster, tp] : tcpProxiesByCluster(*l)) {
    EXPECT_EQ(tp.hash_policy_size(), 0) << cluster;
  }
}

TEST_F(L4RoutesTest, BoundEgressListenerCarriesTlsRoutes) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: pp, namespace: default}
spec:
  workloadSelector: {labels: {app: productpage}}
  egress:
  - port: {number: 443, protocol: TLS, name: tls}
    bind: 127.0.0.30
    captureMode: NONE
    hosts: ["./*", "default/secure.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure.example.com, a.example.com, b.example.com]
  tls:
  - match: [{sniHosts: [a.example.com]}]
    route: [{destination: {host: secure.example.com, subset: v1}}]
  - match: [{sniHosts: [b.example.com]}]
    route: [{destination: {host: secure.example.com, subset: v2}}]
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* l = listener(r, "127.0.0.30_443");
  ASSERT_NE(l, nullptr);
  EXPECT_TRUE(hasListenerFilter(*l, "envoy.filters.listener.tls_inspector"));
  ASSERT_EQ(l->filter_chains_size(), 2) << json(*l);
  EXPECT_EQ(tcpProxyOf(*chainForSni(*l, {"a.example.com"})).cluster(),
            "outbound|443|v1|secure.example.com");
  EXPECT_EQ(tcpProxyOf(*chainForSni(*l, {"b.example.com"})).cluster(),
            "outbound|443|v2|secure.example.com");
}

TEST_F(L4RoutesTest, GatewayPassthroughTlsRoutesHonourMatchPredicates) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 443, name: tls, protocol: TLS}
    hosts: ["*"]
    tls: {mode: PASSTHROUGH}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: secure, namespace: default}
spec:
  hosts: [secure.example.com, a.example.com, b.example.com]
  gateways: [istio-system/gw, istio-system/other]
  tls:
  - match: [{sniHosts: [a.example.com], gateways: [istio-system/other]}]
    route: [{destination: {host: secure.example.com, subset: v2}}]
  - match: [{sniHosts: [a.example.com], destinationSubnets: [10.1.0.0/16]}]
    route:
    - {destination: {host: secure.example.com, subset: v1}, weight: 100}
    - {destination: {host: secure.example.com, subset: v2}, weight: 0}
  - match: [{sniHosts: [b.example.com], sourceLabels: {istio: egressgateway}}]
    route: [{destination: {host: secure.example.com, subset: v2}}]
)");
  auto r = gen(testing::ingressGateway());
  const auto* l = listener(r, "0.0.0.0_443");
  ASSERT_NE(l, nullptr);
  // Only the second match is for this gateway proxy (other gateway, other labels skipped).
  ASSERT_EQ(l->filter_chains_size(), 1) << json(*l);
  const auto& fc = l->filter_chains(0);
  ASSERT_EQ(fc.filter_chain_match().server_names_size(), 1);
  EXPECT_EQ(fc.filter_chain_match().server_names(0), "a.example.com");
  ASSERT_EQ(fc.filter_chain_match().prefix_ranges_size(), 1) << json(fc);
  EXPECT_EQ(fc.filter_chain_match().prefix_ranges(0).address_prefix(), "10.1.0.0");
  EXPECT_EQ(fc.filter_chain_match().prefix_ranges(0).prefix_len().value(), 16u);
  // The 0-weight destination is dropped: one cluster left.
  EXPECT_EQ(tcpProxyOf(fc).cluster(), "outbound|443|v1|secure.example.com") << json(fc);
}

}  // namespace
}  // namespace mast::control::translate
