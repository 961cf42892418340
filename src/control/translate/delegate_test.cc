// VirtualService delegation (spec §5.8): generate() over a root VirtualService whose http routes
// delegate to hostless VirtualServices, checked against Istio's merge rules (match narrowing,
// conflicts dropped, root fields inherited, one level, exportTo, names resolved in the
// delegate's namespace). Services: Bookinfo as ServiceEntries (testdata/).
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "control/config/store.h"
#include "control/translate/delegate.h"
#include "control/translate/generate.h"
#include "control/translate/test_util.h"
#include "envoy/extensions/filters/http/fault/v3/fault.pb.h"

namespace mast::control::translate {
namespace {

namespace rv3 = envoy::config::route::v3;
namespace net = istio::networking::v1alpha3;

constexpr const char* kProductpage = "productpage.default.svc.cluster.local";
constexpr const char* kReviewsCluster = "outbound|9080||reviews.default.svc.cluster.local";
constexpr const char* kRatingsCluster = "outbound|9080||ratings.default.svc.cluster.local";
constexpr const char* kDetailsCluster = "outbound|9080||details.default.svc.cluster.local";
constexpr const char* kProductpageCluster = "outbound|9080||productpage.default.svc.cluster.local";

using testing::ingressGateway;
using testing::json;
using testing::sidecar;

class DelegateTest : public testing::BookinfoTest {
 protected:
  // The routes of productpage's vhost on a sidecar (route configuration "9080").
  std::vector<rv3::Route> productpageRoutes() {
    auto r = gen(sidecar("reviews", "10.0.0.31"));
    for (const auto& rc : r.routes) {
      if (rc.name() != "9080") continue;
      for (const auto& vh : rc.virtual_hosts()) {
        if (vh.name() == std::string(kProductpage) + ":9080") {
          last_vhost_ = json(vh);
          return {vh.routes().begin(), vh.routes().end()};
        }
      }
    }
    ADD_FAILURE() << "no productpage vhost";
    return {};
  }

  std::string last_vhost_;  // for failure messages
};

// Header matcher `name` of a route, or nullptr.
const rv3::HeaderMatcher* header(const rv3::Route& r, const std::string& name) {
  for (const auto& h : r.match().headers()) {
    if (h.name() == name) return &h;
  }
  return nullptr;
}

TEST_F(DelegateTest, PrefixUnderThePrefixMergesAndConflictingRoutesAreDropped) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  http:
  - name: pp
    match:
    - uri: {prefix: /productpage}
    delegate: {name: pp-routes}
  - route: [{destination: {host: productpage}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp-routes, namespace: default}
spec:
  http:
  - name: api
    match:
    - uri: {prefix: /productpage/api}
    route: [{destination: {host: reviews}}]
  - name: outside
    match:
    - uri: {prefix: /static}
    route: [{destination: {host: details}}]
  - name: exact-under
    match:
    - uri: {exact: /productpage/health}
    route: [{destination: {host: details}}]
  - name: rest
    route: [{destination: {host: ratings}}]
)");
  auto routes = productpageRoutes();
  // api, exact-under, rest (root's match), then the root's own catch-all; "outside" is not
  // under /productpage and is dropped.
  ASSERT_EQ(routes.size(), 4u) << last_vhost_;
  EXPECT_EQ(routes[0].name(), "pp-api");
  EXPECT_EQ(routes[0].match().prefix(), "/productpage/api");
  EXPECT_EQ(routes[0].route().cluster(), kReviewsCluster);
  EXPECT_EQ(routes[1].name(), "pp-exact-under");
  EXPECT_EQ(routes[1].match().path(), "/productpage/health");
  EXPECT_EQ(routes[1].route().cluster(), kDetailsCluster);
  EXPECT_EQ(routes[2].name(), "pp-rest");
  EXPECT_EQ(routes[2].match().prefix(), "/productpage");
  EXPECT_EQ(routes[2].route().cluster(), kRatingsCluster);
  EXPECT_EQ(routes[3].match().prefix(), "/");
  EXPECT_EQ(routes[3].route().cluster(), kProductpageCluster);
}

TEST_F(DelegateTest, ExactRootAcceptsOnlyTheSameExactPath) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  http:
  - match:
    - uri: {exact: /login}
    delegate: {name: login}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: login, namespace: default}
spec:
  http:
  - match: [{uri: {prefix: /login}}]
    route: [{destination: {host: reviews}}]
  - match: [{uri: {exact: /logout}}]
    route: [{destination: {host: reviews}}]
  - match: [{uri: {exact: /login}, method: {exact: POST}}]
    route: [{destination: {host: details}}]
)");
  auto routes = productpageRoutes();
  // A prefix under an exact root and a different exact conflict; only the POST route stays.
  ASSERT_EQ(routes.size(), 1u) << last_vhost_;
  EXPECT_EQ(routes[0].match().path(), "/login");
  ASSERT_NE(header(routes[0], ":method"), nullptr);
  EXPECT_EQ(header(routes[0], ":method")->string_match().exact(), "POST");
  EXPECT_EQ(routes[0].route().cluster(), kDetailsCluster);
}

TEST_F(DelegateTest, HeadersAndQueryParamsMergeWithTheRootMatch) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  http:
  - match:
    - uri: {prefix: /api}
      headers: {end-user: {exact: jason}}
      queryParams: {debug: {exact: "1"}}
    - uri: {prefix: /v2}
    delegate: {name: api}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: default}
spec:
  http:
  - match:
    - uri: {prefix: /api/reviews}
      headers: {x-canary: {exact: "yes"}}
    route: [{destination: {host: reviews}}]
  - match:
    - headers: {end-user: {exact: bob}}
    route: [{destination: {host: details}}]
  - match:
    - headers: {end-user: {exact: jason}}
    route: [{destination: {host: ratings}}]
)");
  auto routes = productpageRoutes();
  // Route 1 narrows only the /api block (/api/reviews is not under /v2). Route 2: end-user bob
  // conflicts with the /api block's jason but the /v2 block has no end-user, so it merges with
  // /v2 only. Route 3: merges with both blocks.
  ASSERT_EQ(routes.size(), 4u) << last_vhost_;
  EXPECT_EQ(routes[0].match().prefix(), "/api/reviews");
  ASSERT_NE(header(routes[0], "end-user"), nullptr);
  EXPECT_EQ(header(routes[0], "end-user")->string_match().exact(), "jason");
  ASSERT_NE(header(routes[0], "x-canary"), nullptr);
  EXPECT_EQ(header(routes[0], "x-canary")->string_match().exact(), "yes");
  ASSERT_EQ(routes[0].match().query_parameters_size(), 1);
  EXPECT_EQ(routes[0].match().query_parameters(0).name(), "debug");
  EXPECT_EQ(routes[0].route().cluster(), kReviewsCluster);

  EXPECT_EQ(routes[1].match().prefix(), "/v2");
  EXPECT_EQ(header(routes[1], "end-user")->string_match().exact(), "bob");
  EXPECT_EQ(routes[1].match().query_parameters_size(), 0);
  EXPECT_EQ(routes[1].route().cluster(), kDetailsCluster);

  EXPECT_EQ(routes[2].match().prefix(), "/api");
  EXPECT_EQ(header(routes[2], "end-user")->string_match().exact(), "jason");
  EXPECT_EQ(routes[2].match().query_parameters_size(), 1);
  EXPECT_EQ(routes[3].match().prefix(), "/v2");
  EXPECT_EQ(header(routes[3], "end-user")->string_match().exact(), "jason");
  EXPECT_EQ(routes[2].route().cluster(), kRatingsCluster);
  EXPECT_EQ(routes[3].route().cluster(), kRatingsCluster);
}

TEST_F(DelegateTest, RootWithoutMatchKeepsTheDelegateMatchesAndLendsItsSettings) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  http:
  - delegate: {name: pp-routes}
    timeout: 5s
    retries: {attempts: 7, retryOn: "5xx"}
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    headers: {request: {set: {x-root: "1"}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: pp-routes, namespace: default}
spec:
  http:
  - match: [{uri: {exact: /fast}, name: fast}]
    timeout: 1s
    headers: {request: {set: {x-delegate: "1"}}}
    route: [{destination: {host: reviews}}]
  - match: [{uri: {prefix: /}}]
    route: [{destination: {host: ratings}}]
)");
  auto routes = productpageRoutes();
  ASSERT_EQ(routes.size(), 2u) << last_vhost_;
  // The delegate's own settings win; what it leaves unset comes from the root route.
  EXPECT_EQ(routes[0].name(), "fast");
  EXPECT_EQ(routes[0].match().path(), "/fast");
  EXPECT_EQ(routes[0].route().timeout().seconds(), 1);
  EXPECT_EQ(routes[0].route().retry_policy().num_retries().value(), 7u);
  ASSERT_EQ(routes[0].request_headers_to_add_size(), 1);
  EXPECT_EQ(routes[0].request_headers_to_add(0).header().key(), "x-delegate");
  EXPECT_TRUE(routes[0].typed_per_filter_config().contains("envoy.filters.http.fault"));

  EXPECT_EQ(routes[1].match().prefix(), "/");
  EXPECT_EQ(routes[1].route().cluster(), kRatingsCluster);
  EXPECT_EQ(routes[1].route().timeout().seconds(), 5);
  EXPECT_EQ(routes[1].route().retry_policy().retry_on(), "5xx");
  ASSERT_EQ(routes[1].request_headers_to_add_size(), 1);
  EXPECT_EQ(routes[1].request_headers_to_add(0).header().key(), "x-root");
  envoy::extensions::filters::http::fault::v3::HTTPFault fault;
  ASSERT_TRUE(routes[1].typed_per_filter_config().at("envoy.filters.http.fault").UnpackTo(&fault));
  EXPECT_EQ(fault.abort().http_status(), 418u);
}

TEST_F(DelegateTest, MissingOrHostedDelegateDropsOnlyThatRoute) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  http:
  - match: [{uri: {prefix: /a}}]
    delegate: {name: nowhere}
  - match: [{uri: {prefix: /b}}]
    delegate: {name: details}
  - match: [{uri: {prefix: /c}}]
    route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: details, namespace: default}
spec:
  hosts: [details]
  http:
  - route: [{destination: {host: ratings}}]
)");
  auto routes = productpageRoutes();
  // "details" has hosts: it is no delegate, so /b is dropped like the missing /a.
  ASSERT_EQ(routes.size(), 1u) << last_vhost_;
  EXPECT_EQ(routes[0].match().prefix(), "/c");
  EXPECT_EQ(routes[0].route().cluster(), kReviewsCluster);
}

TEST_F(DelegateTest, DelegateAloneGeneratesNothing) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: orphan, namespace: default}
spec:
  http:
  - match: [{uri: {prefix: /x}}]
    route: [{destination: {host: reviews}}]
)");
  auto routes = productpageRoutes();
  ASSERT_EQ(routes.size(), 1u) << last_vhost_;
  EXPECT_EQ(routes[0].name(), "default");
  auto r = gen(sidecar("reviews", "10.0.0.31"));
  for (const auto& rc : r.routes) {
    for (const auto& vh : rc.virtual_hosts()) {
      for (const auto& route : vh.routes()) {
        EXPECT_NE(route.match().prefix(), "/x") << vh.name();
      }
    }
  }
}

TEST_F(DelegateTest, OnlyOneLevelIsFollowed) {
  // A delegate route that delegates again is not followed (validation rejects it as well).
  model::VirtualServiceInfo root_vs;
  root_vs.name = "root";
  root_vs.ns = "default";
  model::VirtualServiceInfo delegate_vs;
  delegate_vs.name = "mid";
  delegate_vs.ns = "default";
  net::HTTPRoute root;
  root.mutable_delegate()->set_name("mid");
  root.add_match()->mutable_uri()->set_prefix("/a");
  net::HTTPRoute nested;
  nested.mutable_delegate()->set_name("leaf");
  nested.add_match()->mutable_uri()->set_prefix("/a/b");
  EXPECT_FALSE(detail::mergeDelegateRoute(root_vs, root, delegate_vs, nested).has_value());
  net::HTTPRoute plain = nested;
  plain.clear_delegate();
  plain.add_route()->mutable_destination()->set_host("reviews");
  auto merged = detail::mergeDelegateRoute(root_vs, root, delegate_vs, plain);
  ASSERT_TRUE(merged.has_value());
  EXPECT_FALSE(merged->has_delegate());
  EXPECT_EQ(merged->route(0).destination().host(), "reviews.default.svc.cluster.local");

  // Through the store: the nested delegate is refused at apply time, and a root that
  // delegates to another root (it has hosts) gets nothing from it.
  EXPECT_FALSE(store_
                   .applyFile("nested.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: mid, namespace: default}
spec:
  http:
  - delegate: {name: leaf}
)")
                   .empty());
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  http:
  - match: [{uri: {prefix: /r}}]
    delegate: {name: reviews}
  - route: [{destination: {host: productpage}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /r}}]
    delegate: {name: leaf}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: leaf, namespace: default}
spec:
  http:
  - route: [{destination: {host: ratings}}]
)");
  auto routes = productpageRoutes();
  ASSERT_EQ(routes.size(), 1u) << last_vhost_;
  EXPECT_EQ(routes[0].route().cluster(), kProductpageCluster);
}

TEST_F(DelegateTest, CrossNamespaceDelegateNeedsExportAndResolvesInItsNamespace) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  http:
  - match: [{uri: {prefix: /private}}]
    delegate: {name: private, namespace: team}
  - match: [{uri: {prefix: /shared}}]
    delegate: {name: shared, namespace: team}
  - match: [{uri: {prefix: /public}}]
    delegate: {name: public, namespace: team}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: private, namespace: team}
spec:
  exportTo: ["."]
  http:
  - route: [{destination: {host: reviews.default.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shared, namespace: team}
spec:
  exportTo: [default]
  http:
  - route: [{destination: {host: reviews.default.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: public, namespace: team}
spec:
  http:
  - route: [{destination: {host: backend, port: {number: 8000}}}]
)");
  auto routes = productpageRoutes();
  ASSERT_EQ(routes.size(), 2u) << last_vhost_;
  EXPECT_EQ(routes[0].match().prefix(), "/shared");
  EXPECT_EQ(routes[0].route().cluster(), kReviewsCluster);
  // A short name in the delegate means its own namespace, not the root's.
  EXPECT_EQ(routes[1].match().prefix(), "/public");
  EXPECT_EQ(routes[1].route().cluster(), "outbound|8000||backend.team.svc.cluster.local");

  // The mesh default exportTo applies to a delegate without exportTo.
  mesh_.clear_default_virtual_service_export_to();
  mesh_.add_default_virtual_service_export_to(".");
  routes = productpageRoutes();
  ASSERT_EQ(routes.size(), 1u) << last_vhost_;
  EXPECT_EQ(routes[0].match().prefix(), "/shared");
}

TEST_F(DelegateTest, GatewayRootDelegatesAndSidecarsImportDelegateDestinations) {
  apply("gw.yaml", R"(
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo, namespace: default}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match: [{uri: {prefix: /reviews}, gateways: [bookinfo-gateway]}]
    delegate: {name: reviews-routes}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-routes, namespace: default}
spec:
  http:
  - match: [{uri: {prefix: /reviews/v2}}]
    route: [{destination: {host: reviews}}]
  - match: [{uri: {prefix: /reviews}, gateways: [other-gateway]}]
    route: [{destination: {host: details}}]
  - route: [{destination: {host: ratings}}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: default}
spec:
  egress:
  - hosts: ["./productpage.default.svc.cluster.local"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productpage, namespace: default}
spec:
  hosts: [productpage]
  http:
  - delegate: {name: reviews-routes}
)");
  auto r = gen(ingressGateway());
  const rv3::RouteConfiguration* rc = nullptr;
  for (const auto& c : r.routes) {
    if (c.name() == "http.8080") rc = &c;
  }
  ASSERT_NE(rc, nullptr);
  ASSERT_EQ(rc->virtual_hosts_size(), 1);
  const auto& vh = rc->virtual_hosts(0);
  // other-gateway is not among the root block's gateways: that route conflicts and is dropped.
  ASSERT_EQ(vh.routes_size(), 2) << json(vh);
  EXPECT_EQ(vh.routes(0).match().prefix(), "/reviews/v2");
  EXPECT_EQ(vh.routes(0).route().cluster(), kReviewsCluster);
  EXPECT_EQ(vh.routes(1).match().prefix(), "/reviews");
  EXPECT_EQ(vh.routes(1).route().cluster(), kRatingsCluster);

  // The sidecar imports only productpage, plus what productpage's merged routes reach.
  auto s = gen(sidecar("details", "10.0.0.21"));
  std::set<std::string> clusters;
  for (const auto& c : s.clusters) clusters.insert(c.name());
  EXPECT_TRUE(clusters.count(kReviewsCluster));
  EXPECT_TRUE(clusters.count(kRatingsCluster));
  EXPECT_TRUE(clusters.count(kDetailsCluster));  // the gateway-only route still names it
  EXPECT_TRUE(clusters.count(kProductpageCluster));
}

}  // namespace
}  // namespace mast::control::translate
