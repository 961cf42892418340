// Golden-style assertions on generate() for Istio's Bookinfo configuration (the real sample
// YAML under src/control/config/testdata) plus Bookinfo's services as ServiceEntries and
// WorkloadEntries (testdata/).
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "control/config/store.h"
#include "control/translate/generate.h"
#include "envoy/extensions/filters/http/cors/v3/cors.pb.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"

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

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

xds::ProxyInfo sidecar(const std::string& app, const std::string& ip,
                       const std::string& ns = "default") {
  xds::ProxyInfo p;
  p.id = "sidecar~" + ip + "~" + app + "-v1-abc." + ns + "~" + ns + ".svc.cluster.local";
  p.istio_id = true;
  p.type = xds::ProxyType::kSidecar;
  p.ip = ip;
  p.ips = {ip};
  p.name = app + "-v1-abc";
  p.namespace_ = ns;
  p.dns_domain = ns + ".svc.cluster.local";
  p.labels = {{"app", app}, {"version", "v1"}};
  return p;
}

xds::ProxyInfo ingressGateway() {
  xds::ProxyInfo p;
  p.id = "router~10.0.0.100~istio-ingressgateway-abc.istio-system~istio-system.svc.cluster.local";
  p.istio_id = true;
  p.type = xds::ProxyType::kRouter;
  p.ip = "10.0.0.100";
  p.ips = {p.ip};
  p.name = "istio-ingressgateway-abc";
  p.namespace_ = "istio-system";
  p.dns_domain = "istio-system.svc.cluster.local";
  p.labels = {{"istio", "ingressgateway"}, {"app", "istio-ingressgateway"}};
  return p;
}

xds::ProxyInfo proxyless(const std::string& ns = "default") {
  auto p = sidecar("grpc-client", "10.0.0.77", ns);
  p.proxyless = true;
  p.generator = "grpc";
  return p;
}

class TranslateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    applyPath(std::string(MAST_TRANSLATE_TESTDATA) + "/bookinfo-services.yaml");
    applyPath(std::string(MAST_TRANSLATE_TESTDATA) + "/bookinfo-workloads.yaml");
  }
  void applyPath(const std::string& path) { apply(path, readFile(path)); }
  void applyBookinfo(const std::string& file) {
    applyPath(std::string(MAST_CONFIG_TESTDATA) + "/" + file);
  }
  void apply(const std::string& name, const std::string& yaml) {
    for (const auto& e : store_.applyFile(name, yaml)) ADD_FAILURE() << e.toString();
  }
  ProxyResources gen(const xds::ProxyInfo& proxy) {
    model_ = model::MeshModel::build(store_.snapshot(), mesh_);
    return generate(*model_, proxy);
  }

  config::ConfigStore store_;
  config::MeshConfig mesh_ = config::defaultMeshConfig();
  std::shared_ptr<const model::MeshModel> model_;
};

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

}  // namespace
}  // namespace mast::control::translate
