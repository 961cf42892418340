// Golden-style assertions on generate() for Istio's Bookinfo configuration (the real sample
// YAML under src/control/config/testdata) plus Bookinfo's services as ServiceEntries and
// WorkloadEntries (testdata/).
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "control/config/store.h"
#include "control/translate/generate.h"
#include "control/translate/test_util.h"
#include "envoy/extensions/access_loggers/file/v3/file.pb.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb.h"

namespace mast::control::translate {
namespace {

namespace cv3 = envoy::config::cluster::v3;
namespace ev3 = envoy::config::endpoint::v3;
namespace lv3 = envoy::config::listener::v3;
namespace rv3 = envoy::config::route::v3;
namespace hcmv3 = envoy::extensions::filters::network::http_connection_manager::v3;
namespace tcpv3 = envoy::extensions::filters::network::tcp_proxy::v3;

constexpr const char* kReviews = "reviews.default.svc.cluster.local";
constexpr const char* kRatings = "ratings.default.svc.cluster.local";

using testing::ingressGateway;
using testing::json;
using testing::proxyless;
using testing::readFile;
using testing::sidecar;

class TranslateTest : public testing::BookinfoTest {};

const cv3::Cluster* findCluster(const ProxyResources& r, const std::string& name) {
  for (const auto& c : r.clusters) {
    if (c.name() == name) return &c;
  }
  return nullptr;
}
const ev3::ClusterLoadAssignment* findCla(const ProxyResources& r, const std::string& name) {
  for (const auto& c : r.endpoints) {
    if (c.cluster_name() == name) return &c;
  }
  return nullptr;
}
const lv3::Listener* findListener(const ProxyResources& r, const std::string& name) {
  for (const auto& l : r.listeners) {
    if (l.name() == name) return &l;
  }
  return nullptr;
}
const rv3::RouteConfiguration* findRoute(const ProxyResources& r, const std::string& name) {
  for (const auto& rc : r.routes) {
    if (rc.name() == name) return &rc;
  }
  return nullptr;
}
const rv3::VirtualHost* findVhost(const rv3::RouteConfiguration& rc, const std::string& name) {
  for (const auto& vh : rc.virtual_hosts()) {
    if (vh.name() == name) return &vh;
  }
  return nullptr;
}
std::vector<std::string> clusterNames(const ProxyResources& r) {
  std::vector<std::string> out;
  for (const auto& c : r.clusters) out.push_back(c.name());
  return out;
}
// Addresses of a load assignment, sorted ("ip:port").
std::vector<std::string> addresses(const ev3::ClusterLoadAssignment& cla) {
  std::vector<std::string> out;
  for (const auto& loc : cla.endpoints()) {
    for (const auto& e : loc.lb_endpoints()) {
      const auto& sa = e.endpoint().address().socket_address();
      out.push_back(sa.address() + ":" + std::to_string(sa.port_value()));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}
hcmv3::HttpConnectionManager hcmOf(const lv3::FilterChain& fc) {
  hcmv3::HttpConnectionManager h;
  for (const auto& f : fc.filters()) {
    if (f.typed_config().UnpackTo(&h)) return h;
  }
  ADD_FAILURE() << "no HCM in chain " << fc.name();
  return h;
}

// ---------------------------------------------------------------------------------------------
// Sidecar, no VirtualService / DestinationRule (spec §10.6)

TEST_F(TranslateTest, SidecarClustersWithoutRules) {
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  auto names = clusterNames(r);
  std::vector<std::string> expected = {"outbound|9080||details.default.svc.cluster.local",
                                       "outbound|9080||productpage.default.svc.cluster.local",
                                       "outbound|9080||ratings.default.svc.cluster.local",
                                       "outbound|9080||reviews.default.svc.cluster.local",
                                       "BlackHoleCluster",
                                       "PassthroughCluster",
                                       "inbound|9080||",
                                       "InboundPassthroughCluster"};
  EXPECT_EQ(names, expected);
  const auto* c = findCluster(r, "outbound|9080||reviews.default.svc.cluster.local");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->type(), cv3::Cluster::EDS);
  EXPECT_TRUE(c->eds_cluster_config().eds_config().has_ads());
  EXPECT_EQ(c->eds_cluster_config().service_name(), c->name());
  EXPECT_EQ(c->lb_policy(), cv3::Cluster::LEAST_REQUEST);  // Istio's default since 1.14
  EXPECT_EQ(c->connect_timeout().seconds(), 10);
  EXPECT_EQ(c->circuit_breakers().thresholds(0).max_requests().value(), 4294967295u);

  const auto* pass = findCluster(r, "PassthroughCluster");
  EXPECT_EQ(pass->type(), cv3::Cluster::ORIGINAL_DST);
  EXPECT_EQ(pass->lb_policy(), cv3::Cluster::CLUSTER_PROVIDED);
  const auto* inpass = findCluster(r, "InboundPassthroughCluster");
  EXPECT_EQ(inpass->type(), cv3::Cluster::ORIGINAL_DST);
  EXPECT_EQ(inpass->upstream_bind_config().source_address().address(), "127.0.0.6");
  const auto* bh = findCluster(r, "BlackHoleCluster");
  EXPECT_EQ(bh->type(), cv3::Cluster::STATIC);
  EXPECT_EQ(bh->load_assignment().endpoints_size(), 0);

  // The proxy's own port: productpage-v1 is registered at 10.0.0.10:9080.
  const auto* in = findCluster(r, "inbound|9080||");
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(in->type(), cv3::Cluster::STATIC);
  EXPECT_EQ(addresses(in->load_assignment()), std::vector<std::string>{"10.0.0.10:9080"});
}

// A VM auto-registered from a WorkloadGroup: an endpoint of its service for everyone, and the
// inbound side for its own sidecar.
TEST_F(TranslateTest, AutoRegisteredWorkloadsJoinEndpoints) {
  model::WorkloadInstance vm;
  vm.name = "ratings-vm-10.0.9.1";
  vm.ns = "default";
  vm.group = "ratings-vm";
  vm.entry.set_address("10.0.9.1");
  vm.entry.set_locality("us-west/zone-c");
  (*vm.entry.mutable_labels())["app"] = "ratings";
  (*vm.entry.mutable_labels())["version"] = "v2";
  auto r = gen(sidecar("productpage", "10.0.0.10"), {vm});
  EXPECT_EQ(addresses(*findCla(r, std::string("outbound|9080||") + kRatings)),
            (std::vector<std::string>{"10.0.0.40:9080", "10.0.9.1:9080"}));
  auto self = gen(sidecar("ratings", "10.0.9.1"), {vm});
  const auto* in = findCluster(self, "inbound|9080||");
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(addresses(in->load_assignment()), std::vector<std::string>{"10.0.9.1:9080"});
}

// Two Gateways selecting the same proxy on one port share its listener and route config.
TEST_F(TranslateTest, GatewaysOnTheSamePortShareListenerAndRoutes) {
  apply("gw.yaml", R"(
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: a, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["a.example.com"]}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: b, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["b.example.com"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: default}
spec:
  hosts: [a.example.com]
  gateways: [istio-system/a]
  http: [{route: [{destination: {host: reviews, port: {number: 9080}}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: default}
spec:
  hosts: [b.example.com]
  gateways: [b]
  http: [{route: [{destination: {host: ratings, port: {number: 9080}}}]}]
)");
  auto r = gen(ingressGateway());
  ASSERT_EQ(r.listeners.size(), 1u);
  EXPECT_EQ(r.listeners[0].name(), "0.0.0.0_8080");
  ASSERT_EQ(r.routes.size(), 1u);
  const auto& rc = r.routes[0];
  EXPECT_EQ(rc.name(), "http.8080");
  ASSERT_EQ(rc.virtual_hosts_size(), 2);
  EXPECT_EQ(rc.virtual_hosts(0).name(), "a.example.com:8080");
  EXPECT_EQ(rc.virtual_hosts(0).routes(0).route().cluster(),
            std::string("outbound|9080||") + kReviews);
  EXPECT_EQ(rc.virtual_hosts(1).name(), "b.example.com:8080");
  EXPECT_EQ(rc.virtual_hosts(1).routes(0).route().cluster(),
            std::string("outbound|9080||") + kRatings);
}

TEST_F(TranslateTest, GrpcPortsUseHttp2BothWays) {
  apply("grpc.yaml", R"(
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: orders, namespace: default}
spec:
  hosts: [orders.default.svc.cluster.local]
  ports: [{number: 7070, name: grpc-orders}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 10.0.0.10, ports: {grpc-orders: 17070}}]
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  auto h2 = [](const cv3::Cluster& c) {
    envoy::extensions::upstreams::http::v3::HttpProtocolOptions o;
    auto it = c.typed_extension_protocol_options().find(
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
    return it != c.typed_extension_protocol_options().end() && it->second.UnpackTo(&o) &&
           o.explicit_http_config().has_http2_protocol_options();
  };
  const auto* out = findCluster(r, "outbound|7070||orders.default.svc.cluster.local");
  ASSERT_NE(out, nullptr);
  EXPECT_TRUE(h2(*out));
  const auto* in = findCluster(r, "inbound|17070||");  // the endpoint's port, not the service's
  ASSERT_NE(in, nullptr);
  EXPECT_TRUE(h2(*in));
  EXPECT_FALSE(h2(*findCluster(r, "inbound|9080||")));  // plain HTTP stays HTTP/1.1
}

// With outlier detection, endpoints get Istio's failover priorities relative to the proxy.
TEST_F(TranslateTest, LocalityFailoverPriorities) {
  apply("dr.yaml", R"(
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 3}
)");
  auto proxy = sidecar("productpage", "10.0.0.10");
  proxy.node.mutable_locality()->set_region("us-east");
  proxy.node.mutable_locality()->set_zone("zone-a");
  auto r = gen(proxy);
  std::map<std::string, uint32_t> priority;
  for (const auto& loc : findCla(r, std::string("outbound|9080||") + kReviews)->endpoints()) {
    priority[loc.locality().region() + "/" + loc.locality().zone()] = loc.priority();
  }
  EXPECT_EQ(priority["us-east/zone-a"], 0u);  // same zone
  EXPECT_EQ(priority["us-east/zone-b"], 1u);  // same region (raw 2, compacted)
  EXPECT_EQ(priority["us-west/zone-c"], 2u);  // elsewhere (raw 3, compacted)
  // Without outlier detection every locality stays at priority 0.
  store_.removeFile("dr.yaml");
  auto plain = gen(proxy);
  for (const auto& loc : findCla(plain, std::string("outbound|9080||") + kReviews)->endpoints()) {
    EXPECT_EQ(loc.priority(), 0u) << loc.locality().region() << "/" << loc.locality().zone();
  }
}

TEST_F(TranslateTest, EndpointsCarryLocalityAndWeights) {
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* cla = findCla(r, std::string("outbound|9080||") + kReviews);
  ASSERT_NE(cla, nullptr);
  EXPECT_EQ(addresses(*cla),
            (std::vector<std::string>{"10.0.0.31:9080", "10.0.0.32:9080", "10.0.0.33:9080"}));
  ASSERT_EQ(cla->endpoints_size(), 3);  // us-east/zone-a, us-east/zone-b, us-west/zone-c
  std::map<std::string, uint32_t> weight_by_zone;
  for (const auto& loc : cla->endpoints()) {
    // gRPC ignores localities without a weight.
    ASSERT_TRUE(loc.has_load_balancing_weight());
    weight_by_zone[loc.locality().region() + "/" + loc.locality().zone()] =
        loc.load_balancing_weight().value();
  }
  EXPECT_EQ(weight_by_zone["us-east/zone-a"], 1u);
  EXPECT_EQ(weight_by_zone["us-east/zone-b"], 3u);  // reviews-v2 has weight 3
  EXPECT_EQ(weight_by_zone["us-west/zone-c"], 1u);
}

TEST_F(TranslateTest, SidecarListeners) {
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* l = findListener(r, "0.0.0.0_9080");
  ASSERT_NE(l, nullptr);
  EXPECT_FALSE(l->bind_to_port().value());
  ASSERT_EQ(l->filter_chains_size(), 1);
  auto h = hcmOf(l->filter_chains(0));
  EXPECT_EQ(h.rds().route_config_name(), "9080");
  EXPECT_TRUE(h.rds().config_source().has_ads());
  ASSERT_EQ(h.http_filters_size(), 3);
  EXPECT_EQ(h.http_filters(0).name(), "envoy.filters.http.fault");
  EXPECT_EQ(h.http_filters(1).name(), "envoy.filters.http.cors");
  EXPECT_EQ(h.http_filters(2).name(), "envoy.filters.http.router");
  EXPECT_EQ(l->default_filter_chain().name(), "PassthroughFilterChain");

  const auto* vo = findListener(r, "virtualOutbound");
  ASSERT_NE(vo, nullptr);
  EXPECT_EQ(vo->address().socket_address().port_value(), 15001u);
  EXPECT_TRUE(vo->use_original_dst().value());
  ASSERT_EQ(vo->listener_filters_size(), 1);
  EXPECT_EQ(vo->listener_filters(0).name(), "envoy.filters.listener.original_dst");
  tcpv3::TcpProxy tp;
  ASSERT_EQ(vo->filter_chains_size(), 2);
  ASSERT_TRUE(vo->filter_chains(1).filters(0).typed_config().UnpackTo(&tp));
  EXPECT_EQ(tp.cluster(), "PassthroughCluster");  // ALLOW_ANY

  const auto* vi = findListener(r, "virtualInbound");
  ASSERT_NE(vi, nullptr);
  EXPECT_EQ(vi->address().socket_address().port_value(), 15006u);
  bool found = false;
  for (const auto& fc : vi->filter_chains()) {
    if (fc.filter_chain_match().destination_port().value() != 9080) continue;
    found = true;
    auto ih = hcmOf(fc);
    ASSERT_EQ(ih.route_config().virtual_hosts_size(), 1);
    EXPECT_EQ(ih.route_config().virtual_hosts(0).routes(0).route().cluster(), "inbound|9080||");
  }
  EXPECT_TRUE(found);
  tcpv3::TcpProxy last;
  ASSERT_TRUE(
      vi->filter_chains(vi->filter_chains_size() - 1).filters(0).typed_config().UnpackTo(&last));
  EXPECT_EQ(last.cluster(), "InboundPassthroughCluster");
}

TEST_F(TranslateTest, AccessLogFileFromMeshConfig) {
  // Off by default (Istio's default mesh config has no accessLogFile).
  auto quiet = gen(sidecar("productpage", "10.0.0.10"));
  EXPECT_EQ(hcmOf(findListener(quiet, "0.0.0.0_9080")->filter_chains(0)).access_log_size(), 0);
  mesh_.set_access_log_file("/dev/stdout");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  auto h = hcmOf(findListener(r, "0.0.0.0_9080")->filter_chains(0));
  ASSERT_EQ(h.access_log_size(), 1);
  envoy::extensions::access_loggers::file::v3::FileAccessLog file;
  ASSERT_TRUE(h.access_log(0).typed_config().UnpackTo(&file));
  EXPECT_EQ(file.path(), "/dev/stdout");
  const std::string& fmt = file.log_format().text_format_source().inline_string();
  EXPECT_NE(fmt.find("%UPSTREAM_CLUSTER%"), std::string::npos);
  EXPECT_NE(fmt.find("%RESPONSE_FLAGS%"), std::string::npos);
  // Inbound chains and gateways log too; a custom format replaces the default.
  mesh_.set_access_log_format("%RESPONSE_CODE%\n");
  applyBookinfo("bookinfo-gateway.yaml");
  auto g = gen(ingressGateway());
  bool gateway_logged = false;
  for (const auto& l : g.listeners) {
    for (const auto& fc : l.filter_chains()) {
      auto gh = hcmOf(fc);
      if (gh.access_log_size() != 1) continue;
      ASSERT_TRUE(gh.access_log(0).typed_config().UnpackTo(&file));
      EXPECT_EQ(file.log_format().text_format_source().inline_string(), "%RESPONSE_CODE%\n");
      gateway_logged = true;
    }
  }
  EXPECT_TRUE(gateway_logged);
}

TEST_F(TranslateTest, RegistryOnlySendsUnknownTrafficToBlackHole) {
  mesh_.mutable_outbound_traffic_policy()->set_mode(
      istio::mesh::v1alpha1::MeshConfig::OutboundTrafficPolicy::REGISTRY_ONLY);
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* vo = findListener(r, "virtualOutbound");
  tcpv3::TcpProxy tp;
  ASSERT_TRUE(vo->filter_chains(1).filters(0).typed_config().UnpackTo(&tp));
  EXPECT_EQ(tp.cluster(), "BlackHoleCluster");
  const auto* rc = findRoute(r, "9080");
  ASSERT_NE(rc, nullptr);
  const auto& last = rc->virtual_hosts(rc->virtual_hosts_size() - 1);
  EXPECT_EQ(last.name(), "block_all");
  EXPECT_EQ(last.routes(0).direct_response().status(), 502u);
}

TEST_F(TranslateTest, SidecarRouteDefaultsAndDomains) {
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* rc = findRoute(r, "9080");
  ASSERT_NE(rc, nullptr);
  std::vector<std::string> vhosts;
  for (const auto& vh : rc->virtual_hosts()) vhosts.push_back(vh.name());
  EXPECT_EQ(vhosts,
            (std::vector<std::string>{"details.default.svc.cluster.local:9080",
                                      "productpage.default.svc.cluster.local:9080",
                                      "ratings.default.svc.cluster.local:9080",
                                      "reviews.default.svc.cluster.local:9080", "allow_any"}));
  const auto* vh = findVhost(*rc, std::string(kReviews) + ":9080");
  std::vector<std::string> domains(vh->domains().begin(), vh->domains().end());
  EXPECT_EQ(domains,
            (std::vector<std::string>{
                "reviews.default.svc.cluster.local", "reviews.default.svc.cluster.local:9080",
                "reviews.default.svc.cluster.local.", "reviews.default.svc.cluster.local.:9080",
                "reviews", "reviews:9080", "reviews.default.svc", "reviews.default.svc:9080",
                "reviews.default", "reviews.default:9080", "10.96.0.30", "10.96.0.30:9080"}));
  ASSERT_EQ(vh->routes_size(), 1);
  const auto& route = vh->routes(0);
  EXPECT_EQ(route.name(), "default");
  EXPECT_EQ(route.match().prefix(), "/");
  EXPECT_EQ(route.route().cluster(), std::string("outbound|9080||") + kReviews);
  EXPECT_EQ(route.route().timeout().seconds(), 0);
  EXPECT_TRUE(route.route().has_timeout());
  EXPECT_EQ(route.route().retry_policy().num_retries().value(), 2u);
  EXPECT_EQ(route.route().retry_policy().retry_on(),
            "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes");
  ASSERT_EQ(route.route().retry_policy().retry_host_predicate_size(), 1);
  EXPECT_EQ(route.route().retry_policy().retry_host_predicate(0).name(),
            "envoy.retry_host_predicates.previous_hosts");
  EXPECT_EQ(route.decorator().operation(), std::string(kReviews) + ":9080/*");
  EXPECT_EQ(rc->virtual_hosts(rc->virtual_hosts_size() - 1).routes(0).route().cluster(),
            "PassthroughCluster");
}

TEST_F(TranslateTest, DomainsFromAnotherNamespaceHaveNoBareShortName) {
  auto r = gen(sidecar("sleep", "10.0.7.7", "foo"));
  const auto* rc = findRoute(r, "9080");
  ASSERT_NE(rc, nullptr);
  const auto* vh = findVhost(*rc, std::string(kReviews) + ":9080");
  ASSERT_NE(vh, nullptr);
  std::set<std::string> domains(vh->domains().begin(), vh->domains().end());
  EXPECT_FALSE(domains.count("reviews"));
  EXPECT_TRUE(domains.count("reviews.default"));
  EXPECT_TRUE(domains.count("reviews.default.svc"));
  EXPECT_TRUE(domains.count("reviews.default.svc.cluster.local"));
  // A proxy with no registered workload gets no inbound cluster.
  EXPECT_EQ(findCluster(r, "inbound|9080||"), nullptr);
}

// ---------------------------------------------------------------------------------------------
// DestinationRules and VirtualServices on sidecars

TEST_F(TranslateTest, DestinationRuleAllAddsSubsetClustersWithLabelFilteredEndpoints) {
  applyBookinfo("destination-rule-all.yaml");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  for (const char* s : {"v1", "v2", "v3"}) {
    std::string name = std::string("outbound|9080|") + s + "|" + kReviews;
    const auto* c = findCluster(r, name);
    ASSERT_NE(c, nullptr) << name;
    EXPECT_EQ(c->type(), cv3::Cluster::EDS);
    EXPECT_EQ(c->eds_cluster_config().service_name(), name);
  }
  // ratings subsets exist even when no endpoint carries their labels.
  EXPECT_NE(findCluster(r, std::string("outbound|9080|v2-mysql-vm|") + kRatings), nullptr);
  EXPECT_EQ(addresses(*findCla(r, std::string("outbound|9080|v1|") + kReviews)),
            std::vector<std::string>{"10.0.0.31:9080"});
  EXPECT_EQ(addresses(*findCla(r, std::string("outbound|9080|v2|") + kReviews)),
            std::vector<std::string>{"10.0.0.32:9080"});
  EXPECT_EQ(addresses(*findCla(r, std::string("outbound|9080|v3|") + kReviews)),
            std::vector<std::string>{"10.0.0.33:9080"});
  EXPECT_TRUE(addresses(*findCla(r, std::string("outbound|9080|v2|") + kRatings)).empty());
  // The default cluster keeps every endpoint.
  EXPECT_EQ(addresses(*findCla(r, std::string("outbound|9080||") + kReviews)).size(), 3u);
}

TEST_F(TranslateTest, VirtualServiceAllV1) {
  applyBookinfo("destination-rule-all.yaml");
  applyBookinfo("virtual-service-all-v1.yaml");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* rc = findRoute(r, "9080");
  ASSERT_NE(rc, nullptr);
  for (const char* svc : {"productpage", "reviews", "ratings", "details"}) {
    std::string host = std::string(svc) + ".default.svc.cluster.local";
    const auto* vh = findVhost(*rc, host + ":9080");
    ASSERT_NE(vh, nullptr) << host;
    ASSERT_EQ(vh->routes_size(), 1) << host;
    EXPECT_EQ(vh->routes(0).route().cluster(), "outbound|9080|v1|" + host);
    EXPECT_EQ(vh->routes(0).match().prefix(), "/");
    // Destinations with one service: the decorator names host:port and the path.
    EXPECT_EQ(vh->routes(0).decorator().operation(), host + ":9080/*");
  }
}

TEST_F(TranslateTest, ReviewsFiftyFiftyIsAWeightedCluster) {
  applyBookinfo("destination-rule-all.yaml");
  applyBookinfo("virtual-service-reviews-50-v3.yaml");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* vh = findVhost(*findRoute(r, "9080"), std::string(kReviews) + ":9080");
  ASSERT_NE(vh, nullptr);
  ASSERT_EQ(vh->routes_size(), 1);
  const auto& wc = vh->routes(0).route().weighted_clusters();
  ASSERT_EQ(wc.clusters_size(), 2);
  EXPECT_EQ(wc.clusters(0).name(), std::string("outbound|9080|v1|") + kReviews);
  EXPECT_EQ(wc.clusters(0).weight().value(), 50u);
  EXPECT_EQ(wc.clusters(1).name(), std::string("outbound|9080|v3|") + kReviews);
  EXPECT_EQ(wc.clusters(1).weight().value(), 50u);
  EXPECT_EQ(vh->routes(0).decorator().operation(), "reviews:9080/*");
}

TEST_F(TranslateTest, ReviewsTestV2MatchesTheEndUserHeader) {
  applyBookinfo("destination-rule-all.yaml");
  applyBookinfo("virtual-service-reviews-test-v2.yaml");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* vh = findVhost(*findRoute(r, "9080"), std::string(kReviews) + ":9080");
  ASSERT_NE(vh, nullptr);
  ASSERT_EQ(vh->routes_size(), 2);
  const auto& jason = vh->routes(0);
  EXPECT_EQ(jason.match().prefix(), "/");
  EXPECT_TRUE(jason.match().case_sensitive().value());
  ASSERT_EQ(jason.match().headers_size(), 1);
  EXPECT_EQ(jason.match().headers(0).name(), "end-user");
  EXPECT_EQ(jason.match().headers(0).string_match().exact(), "jason");
  EXPECT_FALSE(jason.match().headers(0).invert_match());
  EXPECT_EQ(jason.route().cluster(), std::string("outbound|9080|v2|") + kReviews);
  const auto& rest = vh->routes(1);
  EXPECT_EQ(rest.match().headers_size(), 0);
  EXPECT_EQ(rest.route().cluster(), std::string("outbound|9080|v1|") + kReviews);
}

TEST_F(TranslateTest, RatingsDelayFault) {
  applyBookinfo("destination-rule-all.yaml");
  applyBookinfo("virtual-service-ratings-test-delay.yaml");
  auto r = gen(sidecar("reviews", "10.0.0.32"));
  const auto* vh = findVhost(*findRoute(r, "9080"), std::string(kRatings) + ":9080");
  ASSERT_NE(vh, nullptr);
  ASSERT_EQ(vh->routes_size(), 2);
  const auto& cfg = vh->routes(0).typed_per_filter_config();
  ASSERT_TRUE(cfg.contains("envoy.filters.http.fault"));
  envoy::extensions::filters::http::fault::v3::HTTPFault fault;
  ASSERT_TRUE(cfg.at("envoy.filters.http.fault").UnpackTo(&fault));
  EXPECT_EQ(fault.delay().fixed_delay().seconds(), 7);
  EXPECT_EQ(fault.delay().percentage().numerator(), 1000000u);
  EXPECT_EQ(fault.delay().percentage().denominator(), envoy::type::v3::FractionalPercent::MILLION);
  EXPECT_FALSE(fault.has_abort());
  // Only the jason route is faulted.
  EXPECT_FALSE(vh->routes(1).typed_per_filter_config().contains("envoy.filters.http.fault"));
}

TEST_F(TranslateTest, RatingsAbortFault) {
  applyBookinfo("destination-rule-all.yaml");
  applyBookinfo("virtual-service-ratings-test-abort.yaml");
  auto r = gen(sidecar("reviews", "10.0.0.32"));
  const auto* vh = findVhost(*findRoute(r, "9080"), std::string(kRatings) + ":9080");
  ASSERT_NE(vh, nullptr);
  envoy::extensions::filters::http::fault::v3::HTTPFault fault;
  ASSERT_TRUE(
      vh->routes(0).typed_per_filter_config().at("envoy.filters.http.fault").UnpackTo(&fault));
  EXPECT_EQ(fault.abort().http_status(), 500u);
  EXPECT_EQ(fault.abort().percentage().numerator(), 1000000u);
  EXPECT_FALSE(fault.has_delay());
  EXPECT_EQ(vh->routes(0).match().headers(0).string_match().exact(), "jason");
}

TEST_F(TranslateTest, RouteFeatures) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - name: legacy
    match:
    - uri: {prefix: /old}
      ignoreUriCase: true
      method: {exact: GET}
      queryParams: {debug: {exact: "1"}}
      withoutHeaders: {x-canary: {}}
    redirect: {uri: /new, authority: newhost, redirectCode: 302}
  - match:
    - uri: {exact: /teapot}
    directResponse: {status: 418, body: {string: "short and stout"}}
  - match:
    - uri: {regex: "/api/v[0-9]+/.*"}
      authority: {prefix: reviews}
    rewrite: {uriRegexRewrite: {match: "^/api/v[0-9]+/", rewrite: "/"}, authority: backend}
    timeout: 3s
    retries: {attempts: 5, perTryTimeout: 1s, retryOn: "5xx,503,reset"}
    headers:
      request: {set: {x-b: "2", x-a: "1"}, add: {x-c: "3"}, remove: [x-d]}
      response: {set: {x-served-by: mast}}
    mirror: {host: ratings}
    mirrorPercentage: {value: 25.5}
    corsPolicy:
      allowOrigins: [{exact: "https://example.com"}, {prefix: "https://app."}]
      allowMethods: [GET, POST]
      allowHeaders: [x-a]
      maxAge: 24h
      allowCredentials: true
    route:
    - destination: {host: reviews, port: {number: 9080}}
  - route:
    - destination: {host: reviews}
    retries: {attempts: 0}
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* vh = findVhost(*findRoute(r, "9080"), std::string(kReviews) + ":9080");
  ASSERT_NE(vh, nullptr);
  ASSERT_EQ(vh->routes_size(), 4) << json(*vh);

  const auto& redirect = vh->routes(0);
  EXPECT_EQ(redirect.name(), "legacy");
  EXPECT_EQ(redirect.match().prefix(), "/old");
  EXPECT_FALSE(redirect.match().case_sensitive().value());
  ASSERT_EQ(redirect.match().headers_size(), 2);
  EXPECT_EQ(redirect.match().headers(0).name(), "x-canary");
  EXPECT_TRUE(redirect.match().headers(0).invert_match());
  EXPECT_TRUE(redirect.match().headers(0).present_match());
  EXPECT_EQ(redirect.match().headers(1).name(), ":method");
  EXPECT_EQ(redirect.match().headers(1).string_match().exact(), "GET");
  ASSERT_EQ(redirect.match().query_parameters_size(), 1);
  EXPECT_EQ(redirect.match().query_parameters(0).string_match().exact(), "1");
  EXPECT_EQ(redirect.redirect().path_redirect(), "/new");
  EXPECT_EQ(redirect.redirect().host_redirect(), "newhost");
  EXPECT_EQ(redirect.redirect().response_code(), rv3::RedirectAction::FOUND);

  const auto& direct = vh->routes(1);
  EXPECT_EQ(direct.match().path(), "/teapot");
  EXPECT_EQ(direct.direct_response().status(), 418u);
  EXPECT_EQ(direct.direct_response().body().inline_string(), "short and stout");

  const auto& api = vh->routes(2);
  EXPECT_EQ(api.match().safe_regex().regex(), "/api/v[0-9]+/.*");
  EXPECT_EQ(api.match().headers(0).name(), ":authority");
  EXPECT_EQ(api.match().headers(0).string_match().prefix(), "reviews");
  EXPECT_EQ(api.route().regex_rewrite().pattern().regex(), "^/api/v[0-9]+/");
  EXPECT_EQ(api.route().regex_rewrite().substitution(), "/");
  EXPECT_EQ(api.route().host_rewrite_literal(), "backend");
  EXPECT_EQ(api.route().timeout().seconds(), 3);
  EXPECT_EQ(api.route().retry_policy().num_retries().value(), 5u);
  EXPECT_EQ(api.route().retry_policy().per_try_timeout().seconds(), 1);
  EXPECT_EQ(api.route().retry_policy().retry_on(), "5xx,reset,retriable-status-codes");
  ASSERT_EQ(api.route().retry_policy().retriable_status_codes_size(), 1);
  EXPECT_EQ(api.route().retry_policy().retriable_status_codes(0), 503u);
  ASSERT_EQ(api.request_headers_to_add_size(), 3);
  EXPECT_EQ(api.request_headers_to_add(0).header().key(), "x-a");  // sorted by name
  EXPECT_EQ(api.request_headers_to_add(0).append_action(),
            envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
  EXPECT_EQ(api.request_headers_to_add(2).header().key(), "x-c");
  EXPECT_EQ(api.request_headers_to_add(2).append_action(),
            envoy::config::core::v3::HeaderValueOption::APPEND_IF_EXISTS_OR_ADD);
  ASSERT_EQ(api.request_headers_to_remove_size(), 1);
  EXPECT_EQ(api.response_headers_to_add(0).header().value(), "mast");
  ASSERT_EQ(api.route().request_mirror_policies_size(), 1);
  const auto& mirror = api.route().request_mirror_policies(0);
  EXPECT_EQ(mirror.cluster(), std::string("outbound|9080||") + kRatings);
  EXPECT_EQ(mirror.runtime_fraction().default_value().numerator(), 255000u);
  EXPECT_TRUE(mirror.disable_shadow_host_suffix_append());
  envoy::extensions::filters::http::cors::v3::CorsPolicy cors;
  ASSERT_TRUE(api.typed_per_filter_config().at("envoy.filters.http.cors").UnpackTo(&cors));
  ASSERT_EQ(cors.allow_origin_string_match_size(), 2);
  EXPECT_EQ(cors.allow_origin_string_match(1).prefix(), "https://app.");
  EXPECT_EQ(cors.allow_methods(), "GET,POST");
  EXPECT_EQ(cors.max_age(), "86400");
  EXPECT_TRUE(cors.allow_credentials().value());

  // attempts: 0 disables retries entirely.
  EXPECT_FALSE(vh->routes(3).route().has_retry_policy());
}

TEST_F(TranslateTest, NothingFollowsACatchAllRoute) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews, subset: v1}}]
  - match: [{uri: {prefix: /never}}]
    route: [{destination: {host: reviews, subset: v2}}]
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* vh = findVhost(*findRoute(r, "9080"), std::string(kReviews) + ":9080");
  ASSERT_EQ(vh->routes_size(), 1);
  EXPECT_EQ(vh->routes(0).route().cluster(), std::string("outbound|9080|v1|") + kReviews);
}

TEST_F(TranslateTest, SourceLabelsAndPortAreDecidedPerProxy) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - match: [{sourceLabels: {app: reviews, version: v2}}]
    route: [{destination: {host: ratings, subset: v2}}]
  - match: [{port: 8888}]
    route: [{destination: {host: ratings, subset: v3}}]
  - route: [{destination: {host: ratings, subset: v1}}]
)");
  auto from_reviews_v2 = gen([] {
    auto p = sidecar("reviews", "10.0.0.32");
    p.labels["version"] = "v2";
    return p;
  }());
  auto* vh = findVhost(*findRoute(from_reviews_v2, "9080"), std::string(kRatings) + ":9080");
  ASSERT_EQ(vh->routes_size(), 1);  // the sourceLabels route matches everything for this proxy
  EXPECT_EQ(vh->routes(0).route().cluster(), std::string("outbound|9080|v2|") + kRatings);
  auto from_productpage = gen(sidecar("productpage", "10.0.0.10"));
  vh = findVhost(*findRoute(from_productpage, "9080"), std::string(kRatings) + ":9080");
  ASSERT_EQ(vh->routes_size(), 1);  // port 8888 route is not for listener 9080
  EXPECT_EQ(vh->routes(0).route().cluster(), std::string("outbound|9080|v1|") + kRatings);
}

TEST_F(TranslateTest, OnlyTheOldestVirtualServicePerHostAppliesOnSidecars) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: newer, namespace: default, creationTimestamp: "2024-02-01T00:00:00Z"}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v3}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: older, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v2}}]}]
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* vh = findVhost(*findRoute(r, "9080"), std::string(kReviews) + ":9080");
  ASSERT_EQ(vh->routes_size(), 1);
  EXPECT_EQ(vh->routes(0).route().cluster(), std::string("outbound|9080|v2|") + kReviews);
}

// ---------------------------------------------------------------------------------------------
// DestinationRule traffic policy → cluster settings

TEST_F(TranslateTest, TrafficPolicyToClusterSettings) {
  apply("dr.yaml", R"(
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      tcp: {maxConnections: 100, connectTimeout: 30ms}
      http: {http1MaxPendingRequests: 10, http2MaxRequests: 1000, maxRequestsPerConnection: 1,
             maxRetries: 3, idleTimeout: 60s, h2UpgradePolicy: UPGRADE}
    outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 15m,
                       maxEjectionPercent: 50}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      loadBalancer: {simple: RANDOM}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      loadBalancer:
        consistentHash: {httpHeaderName: x-user}
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* c = findCluster(r, std::string("outbound|9080||") + kReviews);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->lb_policy(), cv3::Cluster::ROUND_ROBIN);
  EXPECT_EQ(c->connect_timeout().nanos(), 30000000);
  const auto& t = c->circuit_breakers().thresholds(0);
  EXPECT_EQ(t.max_connections().value(), 100u);
  EXPECT_EQ(t.max_pending_requests().value(), 10u);
  EXPECT_EQ(t.max_requests().value(), 1000u);
  EXPECT_EQ(t.max_retries().value(), 3u);
  envoy::extensions::upstreams::http::v3::HttpProtocolOptions http;
  ASSERT_TRUE(c->typed_extension_protocol_options()
                  .at("envoy.extensions.upstreams.http.v3.HttpProtocolOptions")
                  .UnpackTo(&http));
  EXPECT_EQ(http.common_http_protocol_options().max_requests_per_connection().value(), 1u);
  EXPECT_EQ(http.common_http_protocol_options().idle_timeout().seconds(), 60);
  EXPECT_TRUE(http.explicit_http_config().has_http2_protocol_options());  // h2UpgradePolicy
  EXPECT_EQ(c->outlier_detection().consecutive_5xx().value(), 7u);
  EXPECT_EQ(c->outlier_detection().enforcing_consecutive_5xx().value(), 100u);
  EXPECT_EQ(c->outlier_detection().interval().seconds(), 300);
  EXPECT_EQ(c->outlier_detection().base_ejection_time().seconds(), 900);
  EXPECT_EQ(c->outlier_detection().max_ejection_percent().value(), 50u);
  EXPECT_EQ(c->common_lb_config().healthy_panic_threshold().value(), 0.0);

  // Subset overrides replace the load balancer only; the pool stays.
  const auto* v1 = findCluster(r, std::string("outbound|9080|v1|") + kReviews);
  EXPECT_EQ(v1->lb_policy(), cv3::Cluster::RANDOM);
  EXPECT_EQ(v1->circuit_breakers().thresholds(0).max_connections().value(), 100u);
  const auto* v2 = findCluster(r, std::string("outbound|9080|v2|") + kReviews);
  EXPECT_EQ(v2->lb_policy(), cv3::Cluster::RING_HASH);
  EXPECT_EQ(v2->ring_hash_lb_config().minimum_ring_size().value(), 1024u);
}

TEST_F(TranslateTest, ConsistentHashAddsRouteHashPolicy) {
  apply("dr.yaml", R"(
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy:
    loadBalancer:
      consistentHash: {httpCookie: {name: session, ttl: 0s}, maglev: {tableSize: 65537}}
)");
  auto r = gen(sidecar("reviews", "10.0.0.31"));
  const auto* c = findCluster(r, std::string("outbound|9080||") + kRatings);
  EXPECT_EQ(c->lb_policy(), cv3::Cluster::MAGLEV);
  EXPECT_EQ(c->maglev_lb_config().table_size().value(), 65537u);
  const auto* vh = findVhost(*findRoute(r, "9080"), std::string(kRatings) + ":9080");
  ASSERT_EQ(vh->routes(0).route().hash_policy_size(), 1);
  EXPECT_EQ(vh->routes(0).route().hash_policy(0).cookie().name(), "session");
  // Retrying on another host would defeat the hashing: no previous_hosts predicate.
  EXPECT_EQ(vh->routes(0).route().retry_policy().retry_host_predicate_size(), 0);
}

TEST_F(TranslateTest, PortLevelTlsAndDnsClusters) {
  applyBookinfo("egress-rule-google-apis.yaml");
  auto r = gen(sidecar("details", "10.0.0.20"));
  const auto* c80 = findCluster(r, "outbound|80||www.googleapis.com");
  ASSERT_NE(c80, nullptr);
  EXPECT_EQ(c80->type(), cv3::Cluster::STRICT_DNS);
  EXPECT_EQ(c80->lb_policy(), cv3::Cluster::ROUND_ROBIN);
  EXPECT_FALSE(c80->has_transport_socket());
  EXPECT_EQ(addresses(c80->load_assignment()), std::vector<std::string>{"www.googleapis.com:80"});
  const auto* c443 = findCluster(r, "outbound|443||www.googleapis.com");
  ASSERT_NE(c443, nullptr);
  // portLevelSettings replace the whole policy for 443: TLS on, load balancer back to default.
  EXPECT_EQ(c443->lb_policy(), cv3::Cluster::LEAST_REQUEST);
  envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext tls;
  ASSERT_TRUE(c443->transport_socket().typed_config().UnpackTo(&tls));
  EXPECT_EQ(tls.sni(), "www.googleapis.com");
  EXPECT_FALSE(tls.common_tls_context().validation_context().trusted_ca().filename().empty());
  // The VirtualService sends port-80 HTTP to port 443.
  const auto* vh = findVhost(*findRoute(r, "80"), "www.googleapis.com:80");
  ASSERT_NE(vh, nullptr);
  EXPECT_EQ(vh->routes(0).route().cluster(), "outbound|443||www.googleapis.com");
  // HTTPS (TLS) port without VIP: a listener that picks the chain by SNI.
  const auto* l = findListener(r, "0.0.0.0_443");
  ASSERT_NE(l, nullptr);
  bool sni = false;
  for (const auto& fc : l->filter_chains()) {
    for (const auto& n : fc.filter_chain_match().server_names())
      sni = sni || n == "www.googleapis.com";
  }
  EXPECT_TRUE(sni);
}

TEST_F(TranslateTest, MutualTlsUsesClientCertificates) {
  applyBookinfo("service-entry-examples.yaml");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* c = findCluster(r, "outbound|27018||mymongodb.somedomain");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->type(), cv3::Cluster::EDS);
  envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext tls;
  ASSERT_TRUE(c->transport_socket().typed_config().UnpackTo(&tls));
  ASSERT_EQ(tls.common_tls_context().tls_certificates_size(), 1);
  EXPECT_EQ(tls.common_tls_context().tls_certificates(0).certificate_chain().filename(),
            "/etc/certs/myclientcert.pem");
  EXPECT_EQ(tls.common_tls_context().validation_context().trusted_ca().filename(),
            "/etc/certs/rootcacerts.pem");
  EXPECT_EQ(addresses(*findCla(r, "outbound|27018||mymongodb.somedomain")),
            (std::vector<std::string>{"2.2.2.2:27018", "3.3.3.3:27018"}));
  // NONE resolution without endpoints → original destination.
  const auto* wiki = findCluster(r, "outbound|443||wikipedia.org");
  ASSERT_NE(wiki, nullptr);
  EXPECT_EQ(wiki->type(), cv3::Cluster::ORIGINAL_DST);
  EXPECT_EQ(wiki->lb_policy(), cv3::Cluster::CLUSTER_PROVIDED);
  // A TCP service with a VIP CIDR and a TCP-class port gets a tcp_proxy listener.
  bool mongo_listener = false;
  for (const auto& l : r.listeners) {
    for (const auto& fc : l.filter_chains()) {
      tcpv3::TcpProxy tp;
      if (!fc.filters().empty() && fc.filters(0).typed_config().UnpackTo(&tp) &&
          tp.cluster() == "outbound|27018||mymongodb.somedomain") {
        mongo_listener = true;
      }
    }
  }
  EXPECT_TRUE(mongo_listener);
  // Its address is a CIDR: the chain matches the destination range on the wildcard listener.
  const auto* ml = findListener(r, "0.0.0.0_27018");
  ASSERT_NE(ml, nullptr);
  ASSERT_EQ(ml->filter_chains(0).filter_chain_match().prefix_ranges_size(), 1);
  EXPECT_EQ(ml->filter_chains(0).filter_chain_match().prefix_ranges(0).address_prefix(),
            "192.192.192.192");
  EXPECT_EQ(ml->filter_chains(0).filter_chain_match().prefix_ranges(0).prefix_len().value(), 24u);
  // example.com is defined twice: egress's (exportTo ".") is invisible here, so the cluster
  // is httpbin-ns's STATIC one; in "egress" the local DNS one wins. One cluster per name.
  auto names = clusterNames(r);
  EXPECT_EQ(std::count(names.begin(), names.end(), "outbound|80||example.com"), 1);
  EXPECT_EQ(findCluster(r, "outbound|80||example.com")->type(), cv3::Cluster::EDS);
  auto egress = gen(sidecar("sleep", "10.0.8.8", "egress"));
  names = clusterNames(egress);
  EXPECT_EQ(std::count(names.begin(), names.end(), "outbound|80||example.com"), 1);
  EXPECT_EQ(findCluster(egress, "outbound|80||example.com")->type(), cv3::Cluster::STRICT_DNS);
}

// ---------------------------------------------------------------------------------------------
// Gateways

TEST_F(TranslateTest, BookinfoGateway) {
  applyBookinfo("bookinfo-gateway.yaml");
  auto r = gen(ingressGateway());
  const auto* l = findListener(r, "0.0.0.0_8080");
  ASSERT_NE(l, nullptr);
  EXPECT_FALSE(l->has_bind_to_port());  // a real, bound listener
  ASSERT_EQ(l->filter_chains_size(), 1);
  auto h = hcmOf(l->filter_chains(0));
  EXPECT_EQ(h.rds().route_config_name(), "http.8080");
  EXPECT_TRUE(h.use_remote_address().value());
  const auto* rc = findRoute(r, "http.8080");
  ASSERT_NE(rc, nullptr);
  ASSERT_EQ(rc->virtual_hosts_size(), 1);
  const auto& vh = rc->virtual_hosts(0);
  EXPECT_EQ(vh.name(), "*:8080");
  EXPECT_EQ(std::vector<std::string>(vh.domains().begin(), vh.domains().end()),
            std::vector<std::string>{"*"});
  ASSERT_EQ(vh.routes_size(), 5);
  EXPECT_EQ(vh.routes(0).match().path(), "/productpage");
  EXPECT_EQ(vh.routes(1).match().prefix(), "/static");
  EXPECT_EQ(vh.routes(2).match().path(), "/login");
  EXPECT_EQ(vh.routes(3).match().path(), "/logout");
  EXPECT_EQ(vh.routes(4).match().prefix(), "/api/v1/products");
  for (const auto& route : vh.routes()) {
    EXPECT_EQ(route.route().cluster(), "outbound|9080||productpage.default.svc.cluster.local");
  }
  // Gateways get outbound clusters and the black hole, no passthrough.
  EXPECT_NE(findCluster(r, "outbound|9080||productpage.default.svc.cluster.local"), nullptr);
  EXPECT_NE(findCluster(r, "BlackHoleCluster"), nullptr);
  EXPECT_EQ(findCluster(r, "PassthroughCluster"), nullptr);
  EXPECT_EQ(findListener(r, "virtualOutbound"), nullptr);
}

TEST_F(TranslateTest, GatewayWithoutVirtualServiceAnswers404) {
  apply("gw.yaml", R"(
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: lonely, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
)");
  auto r = gen(ingressGateway());
  const auto* rc = findRoute(r, "http.8080");
  ASSERT_NE(rc, nullptr);
  ASSERT_EQ(rc->virtual_hosts_size(), 1);
  EXPECT_EQ(rc->virtual_hosts(0).name(), "blackhole:8080");
  EXPECT_EQ(rc->virtual_hosts(0).routes_size(), 0);  // nothing matches → 404 NR
  // A gateway not selected by the proxy's labels yields nothing.
  auto other = ingressGateway();
  other.labels = {{"istio", "egressgateway"}};
  auto r2 = gen(other);
  EXPECT_TRUE(r2.listeners.empty());
  EXPECT_TRUE(r2.routes.empty());
}

TEST_F(TranslateTest, GatewayMergesVirtualServicesPerHostWithCatchAllsLast) {
  apply("gw.yaml", R"(
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["bookinfo.example.com", "other.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  hosts: [bookinfo.example.com]
  gateways: [istio-system/gw]
  http:
  - route: [{destination: {host: productpage, port: {number: 9080}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: default, creationTimestamp: "2024-02-01T00:00:00Z"}
spec:
  hosts: [bookinfo.example.com]
  gateways: [istio-system/gw]
  http:
  - match: [{uri: {prefix: /reviews}}]
    route: [{destination: {host: reviews, port: {number: 9080}}}]
)");
  auto r = gen(ingressGateway());
  const auto* rc = findRoute(r, "http.80");
  ASSERT_NE(rc, nullptr);
  ASSERT_EQ(rc->virtual_hosts_size(), 1) << json(*rc);
  const auto& vh = rc->virtual_hosts(0);
  EXPECT_EQ(vh.name(), "bookinfo.example.com:80");
  EXPECT_EQ(std::vector<std::string>(vh.domains().begin(), vh.domains().end()),
            (std::vector<std::string>{"bookinfo.example.com", "bookinfo.example.com:*"}));
  ASSERT_EQ(vh.routes_size(), 2);
  EXPECT_EQ(vh.routes(0).match().prefix(), "/reviews");
  EXPECT_EQ(vh.routes(1).route().cluster(), "outbound|9080||productpage.default.svc.cluster.local");
}

TEST_F(TranslateTest, GatewayHttpsTerminationAndRedirect) {
  apply("gw.yaml", R"(
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: secure, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8443, name: https, protocol: HTTPS}
    hosts: ["default/bookinfo.example.com"]
    tls: {mode: SIMPLE, serverCertificate: /etc/certs/tls.crt, privateKey: /etc/certs/tls.key}
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["bookinfo.example.com"]
    tls: {httpsRedirect: true}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: default}
spec:
  hosts: [bookinfo.example.com]
  gateways: [istio-system/secure]
  http:
  - route: [{destination: {host: productpage, port: {number: 9080}}}]
)");
  auto r = gen(ingressGateway());
  const auto* l = findListener(r, "0.0.0.0_8443");
  ASSERT_NE(l, nullptr);
  ASSERT_EQ(l->filter_chains_size(), 1);
  const auto& fc = l->filter_chains(0);
  EXPECT_EQ(std::vector<std::string>(fc.filter_chain_match().server_names().begin(),
                                     fc.filter_chain_match().server_names().end()),
            std::vector<std::string>{"bookinfo.example.com"});
  envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext tls;
  ASSERT_TRUE(fc.transport_socket().typed_config().UnpackTo(&tls));
  EXPECT_EQ(tls.common_tls_context().tls_certificates(0).certificate_chain().filename(),
            "/etc/certs/tls.crt");
  ASSERT_EQ(l->listener_filters_size(), 1);
  EXPECT_EQ(l->listener_filters(0).name(), "envoy.filters.listener.tls_inspector");
  std::string rds = "https.8443.https.secure.istio-system";
  EXPECT_EQ(hcmOf(fc).rds().route_config_name(), rds);
  const auto* rc = findRoute(r, rds);
  ASSERT_NE(rc, nullptr);
  ASSERT_EQ(rc->virtual_hosts_size(), 1);
  EXPECT_EQ(rc->virtual_hosts(0).routes(0).route().cluster(),
            "outbound|9080||productpage.default.svc.cluster.local");
  // Plain HTTP with httpsRedirect: the vhost demands TLS.
  const auto* http = findRoute(r, "http.8080");
  ASSERT_NE(http, nullptr);
  ASSERT_EQ(http->virtual_hosts_size(), 1);
  EXPECT_EQ(http->virtual_hosts(0).require_tls(), rv3::VirtualHost::ALL);
}

TEST_F(TranslateTest, TcpVirtualServiceRoutesOnSidecars) {
  apply("tcp.yaml", R"(
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
  - {address: 10.0.3.1, labels: {role: primary}}
  - {address: 10.0.3.2, labels: {role: replica}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: db, namespace: default}
spec:
  host: db
  subsets: [{name: primary, labels: {role: primary}}, {name: replica, labels: {role: replica}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: default}
spec:
  hosts: [db]
  tcp:
  - match: [{port: 5432}]
    route:
    - {destination: {host: db, subset: primary}, weight: 80}
    - {destination: {host: db, subset: replica}, weight: 20}
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* l = findListener(r, "10.96.0.99_5432");  // TCP with a VIP: its own listener
  ASSERT_NE(l, nullptr);
  ASSERT_EQ(l->filter_chains_size(), 1);
  tcpv3::TcpProxy tp;
  ASSERT_TRUE(l->filter_chains(0).filters(0).typed_config().UnpackTo(&tp));
  ASSERT_EQ(tp.weighted_clusters().clusters_size(), 2);
  EXPECT_EQ(tp.weighted_clusters().clusters(0).name(),
            "outbound|5432|primary|db.default.svc.cluster.local");
  EXPECT_EQ(tp.weighted_clusters().clusters(0).weight(), 80u);
  EXPECT_EQ(addresses(*findCla(r, "outbound|5432|replica|db.default.svc.cluster.local")),
            std::vector<std::string>{"10.0.3.2:5432"});
  EXPECT_EQ(findRoute(r, "5432"), nullptr);  // TCP ports have no RDS
}

// ---------------------------------------------------------------------------------------------
// Proxyless gRPC

TEST_F(TranslateTest, ProxylessSkipsServicesWithoutUsableCluster) {
  applyBookinfo("service-entry-examples.yaml");
  auto r = gen(proxyless());
  // wikipedia.org: resolution NONE, no endpoints → nothing gRPC could connect to.
  EXPECT_EQ(findListener(r, "wikipedia.org:443"), nullptr);
  EXPECT_EQ(findRoute(r, "wikipedia.org:443"), nullptr);
  EXPECT_EQ(findCluster(r, "outbound|443||wikipedia.org"), nullptr);
  // Static endpoints are fine; DNS becomes LOGICAL_DNS (gRPC has no STRICT_DNS).
  EXPECT_NE(findListener(r, "mymongodb.somedomain:27018"), nullptr);
  const auto* dns = findCluster(r, "outbound|443||www.googleapis.com");
  ASSERT_NE(dns, nullptr);
  EXPECT_EQ(dns->type(), cv3::Cluster::LOGICAL_DNS);
  EXPECT_FALSE(dns->has_transport_socket());
}

TEST_F(TranslateTest, ProxylessGrpcApiListeners) {
  applyBookinfo("destination-rule-all.yaml");
  applyBookinfo("virtual-service-reviews-test-v2.yaml");
  auto r = gen(proxyless());
  std::vector<std::string> names;
  for (const auto& l : r.listeners) names.push_back(l.name());
  EXPECT_EQ(names, (std::vector<std::string>{"details.default.svc.cluster.local:9080",
                                             "productpage.default.svc.cluster.local:9080",
                                             "ratings.default.svc.cluster.local:9080",
                                             "reviews.default.svc.cluster.local:9080"}));
  const auto* l = findListener(r, std::string(kReviews) + ":9080");
  hcmv3::HttpConnectionManager h;
  ASSERT_TRUE(l->api_listener().api_listener().UnpackTo(&h));
  EXPECT_EQ(h.rds().route_config_name(), std::string(kReviews) + ":9080");
  EXPECT_TRUE(h.rds().config_source().has_ads());
  ASSERT_EQ(h.http_filters_size(), 2);  // gRPC knows fault and router only
  EXPECT_EQ(h.http_filters(1).name(), "envoy.filters.http.router");
  const auto* rc = findRoute(r, std::string(kReviews) + ":9080");
  ASSERT_NE(rc, nullptr);
  ASSERT_EQ(rc->virtual_hosts_size(), 1);
  std::set<std::string> domains(rc->virtual_hosts(0).domains().begin(),
                                rc->virtual_hosts(0).domains().end());
  EXPECT_TRUE(domains.count(std::string(kReviews) + ":9080"));
  EXPECT_TRUE(domains.count("reviews:9080"));
  EXPECT_EQ(rc->virtual_hosts(0).routes(0).route().cluster(),
            std::string("outbound|9080|v2|") + kReviews);
  // gRPC 1.51 rejects HeaderMatcher.string_match: the legacy exact_match form is used.
  ASSERT_EQ(rc->virtual_hosts(0).routes(0).match().headers_size(), 1);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  EXPECT_EQ(rc->virtual_hosts(0).routes(0).match().headers(0).exact_match(), "jason");
#pragma GCC diagnostic pop
  // gRPC clients: EDS clusters with ROUND_ROBIN, no passthrough/inbound machinery.
  const auto* c = findCluster(r, std::string("outbound|9080|v1|") + kReviews);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->type(), cv3::Cluster::EDS);
  EXPECT_EQ(c->lb_policy(), cv3::Cluster::ROUND_ROBIN);
  EXPECT_EQ(findCluster(r, "PassthroughCluster"), nullptr);
  EXPECT_EQ(findCluster(r, "BlackHoleCluster"), nullptr);
  const auto* cla = findCla(r, std::string("outbound|9080||") + kReviews);
  ASSERT_NE(cla, nullptr);
  for (const auto& loc : cla->endpoints()) EXPECT_GT(loc.load_balancing_weight().value(), 0u);
}

// ---------------------------------------------------------------------------------------------
// Sidecar resource scoping

TEST_F(TranslateTest, SidecarEgressHostsLimitWhatTheProxyReceives) {
  apply("extra.yaml", R"(
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: payments, namespace: shop}
spec:
  hosts: [payments.shop.svc.cluster.local]
  ports: [{number: 8080, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 10.1.0.1}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
  - hosts: ["./*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: only-ratings, namespace: default}
spec:
  workloadSelector: {labels: {app: reviews}}
  egress:
  - hosts: ["./ratings.default.svc.cluster.local"]
)");
  auto pp = gen(sidecar("productpage", "10.0.0.10"));
  EXPECT_NE(findCluster(pp, std::string("outbound|9080||") + kReviews), nullptr);
  EXPECT_EQ(findCluster(pp, "outbound|8080||payments.shop.svc.cluster.local"), nullptr);
  EXPECT_EQ(findRoute(pp, "8080"), nullptr);

  auto rv = gen(sidecar("reviews", "10.0.0.31"));
  std::vector<std::string> outbound;
  for (const auto& c : rv.clusters) {
    if (c.name().rfind("outbound|", 0) == 0) outbound.push_back(c.name());
  }
  EXPECT_EQ(outbound, std::vector<std::string>{std::string("outbound|9080||") + kRatings});
  const auto* rc = findRoute(rv, "9080");
  ASSERT_NE(rc, nullptr);
  ASSERT_EQ(rc->virtual_hosts_size(), 2);  // ratings + allow_any
  EXPECT_EQ(rc->virtual_hosts(0).name(), std::string(kRatings) + ":9080");
  // Its own inbound port is still served.
  EXPECT_NE(findCluster(rv, "inbound|9080||"), nullptr);

  // Another namespace without a Sidecar sees everything, including "shop".
  auto other = gen(sidecar("sleep", "10.0.7.7", "foo"));
  EXPECT_NE(findCluster(other, "outbound|8080||payments.shop.svc.cluster.local"), nullptr);
}

TEST_F(TranslateTest, SidecarEgressCaptureModeNoneBindsARealListener) {
  // Without iptables, an app reaches the mesh through explicit egress listeners (spec §2.4).
  apply("none.yaml", R"(
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.default.svc.cluster.local]
  addresses: [10.96.9.9]
  ports: [{number: 5432, name: tcp, protocol: TCP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 10.1.9.9}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: no-capture, namespace: default}
spec:
  workloadSelector: {labels: {app: productpage}}
  egress:
  - port: {number: 9080, protocol: HTTP, name: http}
    captureMode: NONE
    hosts: ["./*"]
  - port: {number: 5432, protocol: TCP, name: tcp}
    bind: 127.0.0.2
    captureMode: NONE
    hosts: ["./db.default.svc.cluster.local"]
  - port: {number: 7777, protocol: HTTP, name: http-nothing}
    captureMode: NONE
    hosts: ["./*"]
  - hosts: ["istio-system/*"]
)");
  auto pp = gen(sidecar("productpage", "10.0.0.10"));
  const auto* http = findListener(pp, "127.0.0.1_9080");
  ASSERT_NE(http, nullptr);
  EXPECT_FALSE(http->has_bind_to_port());  // Envoy's default: really bound
  EXPECT_EQ(http->address().socket_address().address(), "127.0.0.1");
  ASSERT_EQ(http->filter_chains_size(), 1);
  EXPECT_EQ(hcmOf(http->filter_chains(0)).rds().route_config_name(), "9080");
  ASSERT_NE(findRoute(pp, "9080"), nullptr);
  const auto* tcp = findListener(pp, "127.0.0.2_5432");
  ASSERT_NE(tcp, nullptr);
  EXPECT_EQ(tcp->filter_chains(0).name(), "outbound|5432||db.default.svc.cluster.local");
  // Nothing in scope on 7777: no listener that would route nowhere.
  EXPECT_EQ(findListener(pp, "127.0.0.1_7777"), nullptr);
  // The captured path is still there for DEFAULT entries (and the virtual 0.0.0.0_9080).
  EXPECT_NE(findListener(pp, "virtualOutbound"), nullptr);
  EXPECT_NE(findListener(pp, "0.0.0.0_9080"), nullptr);
  // Other workloads (not selected) get no bound listeners.
  EXPECT_EQ(findListener(gen(sidecar("reviews", "10.0.0.31")), "127.0.0.1_9080"), nullptr);
}

TEST_F(TranslateTest, SidecarIngressReplacesDerivedInboundPorts) {
  apply("ingress.yaml", R"(
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: productpage-ingress, namespace: default}
spec:
  workloadSelector: {labels: {app: productpage}}
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    defaultEndpoint: 127.0.0.1:8080
  - port: {number: 9443, protocol: TCP, name: tcp-admin}
    captureMode: NONE
    defaultEndpoint: 127.0.0.1:9444
)");
  auto pp = gen(sidecar("productpage", "10.0.0.10"));
  auto endpointOf = [](const cv3::Cluster* c) {
    const auto& sa =
        c->load_assignment().endpoints(0).lb_endpoints(0).endpoint().address().socket_address();
    return sa.address() + ":" + std::to_string(sa.port_value());
  };
  const auto* http = findCluster(pp, "inbound|9080||");
  ASSERT_NE(http, nullptr);
  EXPECT_EQ(endpointOf(http), "127.0.0.1:8080");
  const auto* tcp = findCluster(pp, "inbound|9443||");
  ASSERT_NE(tcp, nullptr);
  EXPECT_EQ(endpointOf(tcp), "127.0.0.1:9444");
  // 9080 is captured: a chain in virtualInbound, with the declaring service in the decorator.
  const auto* vi = findListener(pp, "virtualInbound");
  ASSERT_NE(vi, nullptr);
  bool chain_9080 = false, chain_9443 = false;
  for (const auto& fc : vi->filter_chains()) {
    chain_9080 = chain_9080 || fc.name() == "0.0.0.0_9080";
    chain_9443 = chain_9443 || fc.name() == "0.0.0.0_9443";
  }
  EXPECT_TRUE(chain_9080);
  EXPECT_FALSE(chain_9443);  // captureMode NONE: not through iptables
  // 9443 is a really bound inbound listener.
  const auto* bound = findListener(pp, "0.0.0.0_9443");
  ASSERT_NE(bound, nullptr);
  EXPECT_EQ(bound->traffic_direction(), envoy::config::core::v3::INBOUND);
  EXPECT_FALSE(bound->has_bind_to_port());
  ASSERT_EQ(bound->filter_chains_size(), 1);
  EXPECT_EQ(bound->filter_chains(0).name(), "0.0.0.0_9443");
  // Workloads the Sidecar does not select keep their service-derived inbound ports.
  auto rv = gen(sidecar("reviews", "10.0.0.31"));
  EXPECT_EQ(endpointOf(findCluster(rv, "inbound|9080||")), "10.0.0.31:9080");
  EXPECT_EQ(findCluster(rv, "inbound|9443||"), nullptr);
}

TEST_F(TranslateTest, SidecarImportsTheDestinationsOfImportedVirtualServices) {
  apply("sc.yaml", R"(
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: only-ratings, namespace: default}
spec:
  egress:
  - hosts: ["./ratings.default.svc.cluster.local"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - route: [{destination: {host: details}}]
)");
  auto r = gen(sidecar("reviews", "10.0.0.31"));
  EXPECT_NE(findCluster(r, "outbound|9080||details.default.svc.cluster.local"), nullptr);
  EXPECT_EQ(findCluster(r, "outbound|9080||productpage.default.svc.cluster.local"), nullptr);
  const auto* vh = findVhost(*findRoute(r, "9080"), std::string(kRatings) + ":9080");
  ASSERT_NE(vh, nullptr);
  EXPECT_EQ(vh->routes(0).route().cluster(), "outbound|9080||details.default.svc.cluster.local");
}

TEST_F(TranslateTest, SidecarOutboundTrafficPolicyOverridesMesh) {
  apply("sc.yaml", R"(
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* rc = findRoute(r, "9080");
  EXPECT_EQ(rc->virtual_hosts(rc->virtual_hosts_size() - 1).name(), "block_all");
}

TEST_F(TranslateTest, GenerateIsDeterministic) {
  applyBookinfo("destination-rule-all.yaml");
  applyBookinfo("virtual-service-reviews-test-v2.yaml");
  applyBookinfo("bookinfo-gateway.yaml");
  for (const auto& proxy : {sidecar("productpage", "10.0.0.10"), ingressGateway(), proxyless()}) {
    auto a = gen(proxy);
    auto b = gen(proxy);
    ASSERT_EQ(a.clusters.size(), b.clusters.size());
    for (size_t i = 0; i < a.clusters.size(); ++i) {
      EXPECT_EQ(a.clusters[i].SerializeAsString(), b.clusters[i].SerializeAsString());
    }
    ASSERT_EQ(a.routes.size(), b.routes.size());
    for (size_t i = 0; i < a.routes.size(); ++i) {
      EXPECT_EQ(json(a.routes[i]), json(b.routes[i]));
    }
  }
}

// The deprecated allowOrigin list: "*" allows any origin with a matcher a proxy accepts (a
// regex, not an empty prefix, which Envoy and mast-proxy reject); others are exact.
TEST_F(TranslateTest, DeprecatedAllowOriginStarIsAnyOrigin) {
  applyBookinfo("destination-rule-all.yaml");
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - corsPolicy: {allowOrigin: ["*", "https://a.example"]}
    route: [{destination: {host: reviews, subset: v1}}]
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* vh = findVhost(*findRoute(r, "9080"), std::string(kReviews) + ":9080");
  ASSERT_NE(vh, nullptr);
  envoy::extensions::filters::http::cors::v3::CorsPolicy cors;
  ASSERT_TRUE(
      vh->routes(0).typed_per_filter_config().at("envoy.filters.http.cors").UnpackTo(&cors));
  ASSERT_EQ(cors.allow_origin_string_match_size(), 2);
  EXPECT_EQ(cors.allow_origin_string_match(0).safe_regex().regex(), ".*");
  EXPECT_EQ(cors.allow_origin_string_match(1).exact(), "https://a.example");
}

// mast-proxy's config dump prints resources as JSON: every Any must be of a known type.
TEST_F(TranslateTest, EveryResourcePrintsAsJson) {
  applyBookinfo("destination-rule-all.yaml");
  applyBookinfo("virtual-service-ratings-test-abort.yaml");
  applyBookinfo("bookinfo-gateway.yaml");
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - corsPolicy: {allowOrigins: [{exact: "https://example.com"}]}
    mirror: {host: ratings}
    route: [{destination: {host: reviews, subset: v1}}]
)");
  for (const auto& proxy : {sidecar("productpage", "10.0.0.10"), ingressGateway(), proxyless()}) {
    auto r = gen(proxy);
    auto check = [](const google::protobuf::Message& m) {
      std::string out;
      auto st = google::protobuf::util::MessageToJsonString(m, &out);
      EXPECT_TRUE(st.ok()) << st.ToString();
    };
    for (const auto& m : r.listeners) check(m);
    for (const auto& m : r.routes) check(m);
    for (const auto& m : r.clusters) check(m);
    for (const auto& m : r.endpoints) check(m);
  }
}

// The egress example: match-level gateways split one VirtualService between sidecars and a
// gateway; short gateway names resolve in the VirtualService's namespace.
TEST_F(TranslateTest, MatchLevelGatewaysSelectRoutesForSidecars) {
  applyBookinfo("service-entry-examples.yaml");
  auto r = gen(sidecar("sleep", "10.0.8.8", "egress"));
  const auto* vh = findVhost(*findRoute(r, "80"), "example.com:80");
  ASSERT_NE(vh, nullptr);
  ASSERT_EQ(vh->routes_size(), 1);
  EXPECT_EQ(vh->routes(0).route().cluster(),
            "outbound|80||istio-egressgateway.istio-system.svc.cluster.local");
  // "istio-egressgateway" written in namespace egress means egress/istio-egressgateway, not
  // the Gateway of istio-system: that gateway has nothing bound and answers 404.
  auto gw = ingressGateway();
  gw.labels = {{"istio", "egressgateway"}};
  auto g = gen(gw);
  const auto* rc = findRoute(g, "http.80");
  ASSERT_NE(rc, nullptr);
  EXPECT_EQ(rc->virtual_hosts(0).name(), "blackhole:80");
}

TEST_F(TranslateTest, UnknownProxyTypeGetsNothing) {
  xds::ProxyInfo p;
  p.id = "something-else";
  auto r = gen(p);
  EXPECT_TRUE(r.listeners.empty());
  EXPECT_TRUE(r.clusters.empty());
}

// ---------------------------------------------------------------------------------------------
// generateShared + generateInbound == generate, and MeshIndex (mastd computes the shared part
// once per share key)

std::map<std::string, std::string> byName(const ProxyResources& r) {
  std::map<std::string, std::string> out;
  auto put = [&](const std::string& prefix, const std::string& name,
                 const google::protobuf::Message& m) {
    std::string bytes;
    google::protobuf::io::StringOutputStream sos(&bytes);
    google::protobuf::io::CodedOutputStream cos(&sos);
    cos.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&cos);
    cos.Trim();
    EXPECT_TRUE(out.emplace(prefix + name, bytes).second) << "duplicate " << prefix << name;
  };
  for (const auto& c : r.clusters) put("cds/", c.name(), c);
  for (const auto& e : r.endpoints) put("eds/", e.cluster_name(), e);
  for (const auto& l : r.listeners) put("lds/", l.name(), l);
  for (const auto& rc : r.routes) put("rds/", rc.name(), rc);
  return out;
}

TEST_F(TranslateTest, SharedPlusInboundIsGenerate) {
  applyBookinfo("destination-rule-all.yaml");
  applyBookinfo("virtual-service-reviews-test-v2.yaml");
  applyBookinfo("bookinfo-gateway.yaml");
  mesh_.set_access_log_file("/dev/stdout");
  auto multi = sidecar("reviews", "10.0.0.31");
  multi.ips = {"10.0.0.40", "10.0.0.31", "10.0.0.40"};  // two workloads on port 9080
  for (const auto& proxy : {sidecar("productpage", "10.0.0.10"), sidecar("reviews", "10.0.0.31"),
                            multi, sidecar("nobody", "10.9.9.9"), ingressGateway(), proxyless()}) {
    auto all = gen(proxy);
    auto shared = byName(generateShared(*model_, proxy));
    auto inbound = byName(generateInbound(*model_, proxy));
    MeshIndex index(*model_);
    EXPECT_EQ(byName(generateInbound(*model_, proxy, &index)), inbound) << proxy.id;
    std::map<std::string, std::string> merged = shared;
    for (const auto& [name, bytes] : inbound) {
      EXPECT_TRUE(merged.emplace(name, bytes).second) << proxy.id << ": both parts have " << name;
    }
    EXPECT_EQ(merged, byName(all)) << proxy.id;
    if (proxy.type == xds::ProxyType::kSidecar && !proxy.proxyless) {
      EXPECT_TRUE(inbound.count("lds/virtualInbound")) << proxy.id;
      EXPECT_FALSE(shared.count("lds/virtualInbound")) << proxy.id;
    } else {
      EXPECT_TRUE(inbound.empty()) << proxy.id;
    }
  }
  EXPECT_TRUE(byName(generateInbound(*model_, sidecar("reviews", "10.0.0.31")))
                  .count("cds/inbound|9080||"));
}

TEST_F(TranslateTest, ShareKeysSeparateOnlyWhatTranslationTellsApart) {
  applyBookinfo("destination-rule-all.yaml");
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ratings, namespace: default}
spec:
  hosts: [ratings]
  http:
  - match: [{sourceLabels: {app: reviews, version: v2}}]
    route: [{destination: {host: ratings, subset: v2}}]
  - route: [{destination: {host: ratings, subset: v1}}]
)");
  (void)gen(sidecar("reviews", "10.0.0.31"));
  MeshIndex index(*model_);
  auto key = [&](const xds::ProxyInfo& p) { return index.shareKey(p); };
  auto v1a = sidecar("reviews", "10.0.0.30");
  auto v1b = sidecar("reviews", "10.0.0.31");
  auto v2 = sidecar("reviews", "10.0.0.32");
  v2.labels["version"] = "v2";
  auto other_ns = sidecar("reviews", "10.0.0.33", "shop");
  auto zoned = sidecar("reviews", "10.0.0.34");
  zoned.node.mutable_locality()->set_region("eu");
  auto details = sidecar("details", "10.0.0.20");  // other labels, same selector matches
  EXPECT_EQ(key(v1a), key(v1b));
  EXPECT_EQ(key(v1a), key(details));
  EXPECT_NE(key(v1a), key(v2));
  EXPECT_NE(key(v1a), key(other_ns));
  EXPECT_NE(key(v1a), key(zoned));
  EXPECT_NE(key(v1a), key(ingressGateway()));
  EXPECT_NE(key(v1a), key(proxyless()));
  // Equal keys, equal shared output (the VirtualService's sourceLabels route decides).
  EXPECT_EQ(byName(generateShared(*model_, v1a)), byName(generateShared(*model_, details)));
  EXPECT_NE(byName(generateShared(*model_, v1a)), byName(generateShared(*model_, v2)));
}

}  // namespace
}  // namespace mast::control::translate
