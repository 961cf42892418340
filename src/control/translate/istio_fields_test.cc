// Smaller Istio fields and their Envoy form (spec §5.5, DestinationRule tables, ServiceEntry
// resolution): VirtualService match sourceNamespace and scheme, `mirrors` (list form), explicit
// `gateways: [mesh]`; DestinationRule consistentHash useSourceIp, tls DISABLE, outlier
// consecutiveGatewayErrors; ServiceEntry DNS_ROUND_ROBIN.
#include <gtest/gtest.h>

#include "control/translate/generate.h"
#include "control/translate/test_util.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb.h"

namespace mast::control::translate {
namespace {

namespace cv3 = envoy::config::cluster::v3;
namespace rv3 = envoy::config::route::v3;

using testing::ingressGateway;
using testing::json;
using testing::sidecar;

constexpr const char* kReviews = "reviews.default.svc.cluster.local";

class IstioFieldsTest : public testing::BookinfoTest {
 protected:
  const cv3::Cluster* cluster(const ProxyResources& r, const std::string& name) {
    for (const auto& c : r.clusters) {
      if (c.name() == name) return &c;
    }
    return nullptr;
  }
  // The routes of `host`'s vhost in route configuration `rc_name`, or empty.
  std::vector<rv3::Route> routes(const ProxyResources& r, const std::string& rc_name,
                                 const std::string& vhost) {
    for (const auto& rc : r.routes) {
      if (rc.name() != rc_name) continue;
      for (const auto& vh : rc.virtual_hosts()) {
        if (vh.name() == vhost) return {vh.routes().begin(), vh.routes().end()};
      }
    }
    return {};
  }
  std::vector<rv3::Route> reviewsRoutes(const ProxyResources& r) {
    return routes(r, "9080", std::string(kReviews) + ":9080");
  }
};

const rv3::HeaderMatcher* header(const rv3::Route& r, const std::string& name) {
  for (const auto& h : r.match().headers()) {
    if (h.name() == name) return &h;
  }
  return nullptr;
}

TEST_F(IstioFieldsTest, SourceNamespaceMatchIsDecidedPerProxyNamespace) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{sourceNamespace: other, uri: {prefix: /from-other}}]
    route: [{destination: {host: reviews, subset: v2}}]
  - route: [{destination: {host: reviews, subset: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
)");
  auto in_default = reviewsRoutes(gen(sidecar("productpage", "10.0.0.10")));
  ASSERT_EQ(in_default.size(), 1u);
  EXPECT_EQ(in_default[0].route().cluster(), "outbound|9080|v1|reviews.default.svc.cluster.local");
  auto in_other = reviewsRoutes(gen(sidecar("sleep", "10.0.9.9", "other")));
  ASSERT_EQ(in_other.size(), 2u);
  EXPECT_EQ(in_other[0].match().prefix(), "/from-other");
  EXPECT_EQ(in_other[0].route().cluster(), "outbound|9080|v2|reviews.default.svc.cluster.local");
  // A static predicate: nothing about the namespace is left for the proxy to match.
  EXPECT_TRUE(in_other[0].match().headers().empty()) << json(in_other[0]);
}

TEST_F(IstioFieldsTest, SchemeMatchIsAPseudoHeaderMatcherAfterUserHeaders) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{scheme: {exact: https}, headers: {x-user: {prefix: a}}}]
    route: [{destination: {host: ratings}}]
  - route: [{destination: {host: reviews}}]
)");
  auto rs = reviewsRoutes(gen(sidecar("productpage", "10.0.0.10")));
  ASSERT_EQ(rs.size(), 2u);
  ASSERT_EQ(rs[0].match().headers_size(), 2) << json(rs[0]);
  EXPECT_EQ(rs[0].match().headers(0).name(), "x-user");
  EXPECT_EQ(rs[0].match().headers(1).name(), ":scheme");
  const auto* h = header(rs[0], ":scheme");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->string_match().exact(), "https") << json(*h);
  EXPECT_EQ(rs[0].route().cluster(), "outbound|9080||ratings.default.svc.cluster.local");
  // The scheme match makes the route no catch-all: the default route stays after it.
  EXPECT_EQ(rs[1].match().prefix(), "/");
}

TEST_F(IstioFieldsTest, MirrorsListFormGivesOnePolicyEach) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    mirrors:
    - {destination: {host: ratings}, percentage: {value: 25.5}}
    - destination: {host: details}
    - {destination: {host: productpage}, percentage: {value: 0}}
)");
  auto rs = reviewsRoutes(gen(sidecar("productpage", "10.0.0.10")));
  ASSERT_EQ(rs.size(), 1u);
  const auto& a = rs[0].route();
  ASSERT_EQ(a.request_mirror_policies_size(), 2) << json(a);  // explicit 0%: none
  const auto& ratings = a.request_mirror_policies(0);
  EXPECT_EQ(ratings.cluster(), "outbound|9080||ratings.default.svc.cluster.local");
  EXPECT_EQ(ratings.runtime_fraction().default_value().numerator(), 255000u);
  EXPECT_EQ(ratings.runtime_fraction().default_value().denominator(),
            envoy::type::v3::FractionalPercent::MILLION);
  EXPECT_FALSE(ratings.trace_sampled().value());
  EXPECT_TRUE(ratings.disable_shadow_host_suffix_append());
  const auto& details = a.request_mirror_policies(1);
  EXPECT_EQ(details.cluster(), "outbound|9080||details.default.svc.cluster.local");
  EXPECT_EQ(details.runtime_fraction().default_value().numerator(), 1000000u);  // 100%
}

TEST_F(IstioFieldsTest, ExplicitMeshGatewayBindsSidecarsOnly) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-mesh, namespace: default}
spec:
  hosts: [reviews]
  gateways: [mesh]
  http: [{route: [{destination: {host: ratings}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details-both, namespace: default}
spec:
  hosts: [details]
  gateways: [istio-system/gw, mesh]
  http: [{route: [{destination: {host: ratings}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage-gw, namespace: default}
spec:
  hosts: [productpage]
  gateways: [istio-system/gw]
  http: [{route: [{destination: {host: ratings}}]}]
)");
  auto sc = gen(sidecar("reviews", "10.0.0.31"));
  const std::string ratings = "outbound|9080||ratings.default.svc.cluster.local";
  auto rv = reviewsRoutes(sc);
  ASSERT_EQ(rv.size(), 1u);
  EXPECT_EQ(rv[0].route().cluster(), ratings);  // gateways: [mesh] applies to sidecars
  auto dt = routes(sc, "9080", "details.default.svc.cluster.local:9080");
  ASSERT_EQ(dt.size(), 1u);
  EXPECT_EQ(dt[0].route().cluster(), ratings);
  auto pp = routes(sc, "9080", "productpage.default.svc.cluster.local:9080");
  ASSERT_EQ(pp.size(), 1u);  // gateway-only: the sidecar keeps the default route
  EXPECT_EQ(pp[0].name(), "default");
  EXPECT_EQ(pp[0].route().cluster(), "outbound|9080||productpage.default.svc.cluster.local");

  auto gw = gen(ingressGateway());
  // mesh-only: not on the gateway
  EXPECT_TRUE(routes(gw, "http.80", "reviews.default.svc.cluster.local:80").empty());
  auto gdt = routes(gw, "http.80", "details.default.svc.cluster.local:80");
  ASSERT_EQ(gdt.size(), 1u) << json(gw.routes.at(0));
  EXPECT_EQ(gdt[0].route().cluster(), ratings);
  ASSERT_EQ(routes(gw, "http.80", "productpage.default.svc.cluster.local:80").size(), 1u);
}

TEST_F(IstioFieldsTest, ConsistentHashUseSourceIp) {
  apply("dr.yaml", R"(
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true}}}
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* c = cluster(r, "outbound|9080||reviews.default.svc.cluster.local");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->lb_policy(), cv3::Cluster::RING_HASH);
  EXPECT_EQ(c->ring_hash_lb_config().minimum_ring_size().value(), 1024u) << json(*c);
  auto rs = reviewsRoutes(r);
  ASSERT_EQ(rs.size(), 1u);
  ASSERT_EQ(rs[0].route().hash_policy_size(), 1) << json(rs[0]);
  EXPECT_TRUE(rs[0].route().hash_policy(0).connection_properties().source_ip());
}

TEST_F(IstioFieldsTest, TlsDisableMeansPlaintext) {
  apply("dr.yaml", R"(
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy: {tls: {mode: SIMPLE, sni: ratings.internal}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy: {tls: {mode: DISABLE}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details, namespace: default}
spec:
  host: details
  trafficPolicy:
    tls: {mode: SIMPLE}
    portLevelSettings: [{port: {number: 9080}, tls: {mode: DISABLE}}]
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* base = cluster(r, "outbound|9080||ratings.default.svc.cluster.local");
  ASSERT_NE(base, nullptr);
  envoy::extensions::transport_sockets::tls::v3::UpstreamTlsContext tls;
  ASSERT_TRUE(base->transport_socket().typed_config().UnpackTo(&tls)) << json(*base);
  EXPECT_EQ(tls.sni(), "ratings.internal");
  const auto* v2 = cluster(r, "outbound|9080|v2|ratings.default.svc.cluster.local");
  ASSERT_NE(v2, nullptr);
  EXPECT_TRUE(v2->has_transport_socket());  // inherits SIMPLE
  const auto* v1 = cluster(r, "outbound|9080|v1|ratings.default.svc.cluster.local");
  ASSERT_NE(v1, nullptr);
  EXPECT_FALSE(v1->has_transport_socket()) << json(*v1);  // subset DISABLE: plaintext
  EXPECT_TRUE(v1->transport_socket_matches().empty());
  const auto* details = cluster(r, "outbound|9080||details.default.svc.cluster.local");
  ASSERT_NE(details, nullptr);
  EXPECT_FALSE(details->has_transport_socket()) << json(*details);  // port-level DISABLE
}

TEST_F(IstioFieldsTest, OutlierConsecutiveGatewayErrors) {
  apply("dr.yaml", R"(
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: default}
spec:
  host: ratings
  trafficPolicy: {outlierDetection: {consecutiveGatewayErrors: 7, interval: 5s}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: details, namespace: default}
spec:
  host: details
  trafficPolicy: {outlierDetection: {consecutiveGatewayErrors: 0, consecutive5xxErrors: 3}}
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* ratings = cluster(r, "outbound|9080||ratings.default.svc.cluster.local");
  ASSERT_NE(ratings, nullptr);
  const auto& o = ratings->outlier_detection();
  EXPECT_EQ(o.consecutive_gateway_failure().value(), 7u) << json(o);
  EXPECT_EQ(o.enforcing_consecutive_gateway_failure().value(), 100u);
  EXPECT_FALSE(o.has_consecutive_5xx());  // unset: Envoy's default applies
  EXPECT_EQ(o.interval().seconds(), 5);
  EXPECT_EQ(o.enforcing_success_rate().value(), 0u);
  const auto* details = cluster(r, "outbound|9080||details.default.svc.cluster.local");
  ASSERT_NE(details, nullptr);
  const auto& d = details->outlier_detection();
  EXPECT_EQ(d.consecutive_gateway_failure().value(), 0u);
  EXPECT_TRUE(d.has_enforcing_consecutive_gateway_failure());
  EXPECT_EQ(d.enforcing_consecutive_gateway_failure().value(), 0u);  // 0: not enforced
  EXPECT_EQ(d.consecutive_5xx().value(), 3u);
  EXPECT_EQ(d.enforcing_consecutive_5xx().value(), 100u);
}

TEST_F(IstioFieldsTest, DnsRoundRobinIsLogicalDns) {
  apply("se.yaml", R"(
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: default}
spec:
  hosts: [api.example.com]
  ports: [{number: 443, name: https, protocol: HTTPS}]
  location: MESH_EXTERNAL
  resolution: DNS_ROUND_ROBIN
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: mirrors, namespace: default}
spec:
  hosts: [mirror.example.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_EXTERNAL
  resolution: DNS_ROUND_ROBIN
  endpoints: [{address: a.mirror.example.com, ports: {http: 8080}}]
)");
  auto r = gen(sidecar("productpage", "10.0.0.10"));
  const auto* api = cluster(r, "outbound|443||api.example.com");
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->type(), cv3::Cluster::LOGICAL_DNS);
  EXPECT_EQ(api->dns_lookup_family(), cv3::Cluster::V4_ONLY);
  // No endpoints: the host itself is the single endpoint.
  ASSERT_EQ(api->load_assignment().endpoints_size(), 1) << json(*api);
  ASSERT_EQ(api->load_assignment().endpoints(0).lb_endpoints_size(), 1);
  const auto& sa =
      api->load_assignment().endpoints(0).lb_endpoints(0).endpoint().address().socket_address();
  EXPECT_EQ(sa.address(), "api.example.com");
  EXPECT_EQ(sa.port_value(), 443u);
  // An endpoint (at most one for DNS_ROUND_ROBIN, Istio's validation) replaces the host.
  const auto* m = cluster(r, "outbound|80||mirror.example.com");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->type(), cv3::Cluster::LOGICAL_DNS);
  int hosts = 0;
  for (const auto& loc : m->load_assignment().endpoints()) hosts += loc.lb_endpoints_size();
  ASSERT_EQ(hosts, 1) << json(*m);
  const auto& ep =
      m->load_assignment().endpoints(0).lb_endpoints(0).endpoint().address().socket_address();
  EXPECT_EQ(ep.address(), "a.mirror.example.com");
  EXPECT_EQ(ep.port_value(), 8080u);
}

}  // namespace
}  // namespace mast::control::translate
