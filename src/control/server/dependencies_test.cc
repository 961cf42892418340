#include "control/server/dependencies.h"

#include <gtest/gtest.h>

#include "control/config/store.h"
#include "control/model/mesh_model.h"
#include "control/server/istio_generator.h"

namespace mast::control::server {
namespace {

using config::Kind;
using config::ResourceKey;

// Bookinfo as ServiceEntries + WorkloadEntries, its gateway, and per-service routing.
constexpr const char* kBookinfo = R"(
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: productpage}
spec:
  hosts: [productpage.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: {labels: {app: productpage}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: details}
spec:
  hosts: [details.default.svc.cluster.local]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 10.0.0.40}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: productpage-v1}
spec: {address: 10.0.0.10, labels: {app: productpage, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 10.0.0.31, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2}
spec: {address: 10.0.0.32, labels: {app: reviews, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v2}}]}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo}
spec:
  hosts: ["*"]
  gateways: [bookinfo-gateway]
  http:
  - match: [{uri: {prefix: /api}}]
    delegate: {name: bookinfo-api}
  - route: [{destination: {host: productpage, port: {number: 9080}}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bookinfo-api}
spec:
  http: [{route: [{destination: {host: details}}]}]
)";

class DependenciesTest : public ::testing::Test {
 protected:
  void SetUp() override { apply("bookinfo.yaml", kBookinfo); }
  void apply(const std::string& file, const std::string& yaml) {
    for (const auto& e : store_.applyFile(file, yaml)) ADD_FAILURE() << e.toString();
  }
  // Generates the proxy's config with mastd's generator and asks the resolver about it.
  Dependencies deps(const xds::ProxyInfo& p) {
    auto gen = makeIstioGenerator();
    gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
    auto snap = gen->generate(p);
    return makeMeshDependencyResolver(gen->model())->dependencies(p, snap);
  }
  static xds::ProxyInfo sidecar(const std::string& app, const std::string& ip) {
    xds::ProxyInfo p;
    p.id = "sidecar~" + ip + "~" + app + "-v1.default~default.svc.cluster.local";
    p.type = xds::ProxyType::kSidecar;
    p.ip = ip;
    p.ips = {ip};
    p.namespace_ = "default";
    p.labels = {{"app", app}};
    return p;
  }
  static xds::ProxyInfo gateway() {
    xds::ProxyInfo p;
    p.id = "router~10.0.0.2~ingress.default~default.svc.cluster.local";
    p.type = xds::ProxyType::kRouter;
    p.ip = "10.0.0.2";
    p.namespace_ = "default";
    p.labels = {{"istio", "ingressgateway"}};
    return p;
  }
  config::ConfigStore store_;
};

ResourceKey key(Kind k, const std::string& name) { return {k, "default", name}; }

TEST_F(DependenciesTest, SidecarNeedsMeshRoutesRulesServicesAndWorkloadsItReaches) {
  auto d = deps(sidecar("productpage", "10.0.0.10"));
  EXPECT_TRUE(d.contains(key(Kind::kVirtualService, "reviews")));
  EXPECT_TRUE(d.contains(key(Kind::kDestinationRule, "reviews")));
  EXPECT_TRUE(d.contains(key(Kind::kServiceEntry, "reviews")));
  EXPECT_TRUE(d.contains(key(Kind::kServiceEntry, "details")));
  EXPECT_TRUE(d.contains(key(Kind::kWorkloadEntry, "reviews-v2")));
  // Its own service and workload (inbound).
  EXPECT_TRUE(d.contains(key(Kind::kServiceEntry, "productpage")));
  EXPECT_TRUE(d.contains(key(Kind::kWorkloadEntry, "productpage-v1")));
  // Gateway-bound routing is not a sidecar's business.
  EXPECT_FALSE(d.contains(key(Kind::kGateway, "bookinfo-gateway")));
  EXPECT_FALSE(d.contains(key(Kind::kVirtualService, "bookinfo")));
  EXPECT_FALSE(d.contains(key(Kind::kVirtualService, "bookinfo-api")));
}

TEST_F(DependenciesTest, GatewayNeedsItsGatewayBoundRoutesAndTheirDelegates) {
  auto d = deps(gateway());
  EXPECT_TRUE(d.contains(key(Kind::kGateway, "bookinfo-gateway")));
  EXPECT_TRUE(d.contains(key(Kind::kVirtualService, "bookinfo")));
  EXPECT_TRUE(d.contains(key(Kind::kVirtualService, "bookinfo-api")));
  // Gateways have clusters for every service, so every service's rules.
  EXPECT_TRUE(d.contains(key(Kind::kDestinationRule, "reviews")));
  EXPECT_TRUE(d.contains(key(Kind::kServiceEntry, "productpage")));
  EXPECT_FALSE(d.contains(key(Kind::kVirtualService, "reviews")));  // bound to mesh only
}

TEST_F(DependenciesTest, GatewayNotSelectedNeedsNoGatewayResources) {
  auto p = gateway();
  p.labels = {{"istio", "egressgateway"}};
  auto d = deps(p);
  EXPECT_FALSE(d.contains(key(Kind::kGateway, "bookinfo-gateway")));
  EXPECT_FALSE(d.contains(key(Kind::kVirtualService, "bookinfo")));
}

TEST_F(DependenciesTest, SidecarEgressScopeDecidesWhatIsNeeded) {
  apply("sidecar.yaml", R"(
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
spec:
  egress: [{hosts: ["./details.default.svc.cluster.local"]}]
)");
  auto d = deps(sidecar("productpage", "10.0.0.10"));
  EXPECT_TRUE(d.contains(key(Kind::kSidecar, "default")));
  EXPECT_TRUE(d.contains(key(Kind::kServiceEntry, "details")));
  EXPECT_FALSE(d.contains(key(Kind::kVirtualService, "reviews")));
  EXPECT_FALSE(d.contains(key(Kind::kDestinationRule, "reviews")));
  EXPECT_FALSE(d.contains(key(Kind::kWorkloadEntry, "reviews-v2")));
}

TEST_F(DependenciesTest, WorkloadEntriesBehindTheProxyOwnServiceAreNeeded) {
  auto d = deps(sidecar("reviews", "10.0.0.31"));
  EXPECT_TRUE(d.contains(key(Kind::kWorkloadEntry, "reviews-v1")));
  EXPECT_TRUE(d.contains(key(Kind::kServiceEntry, "reviews")));
}

TEST(ParseResourceRefTest, RegistryOrigins) {
  EXPECT_EQ(parseResourceRef("ServiceEntry default/reviews"),
            (ResourceKey{Kind::kServiceEntry, "default", "reviews"}));
  EXPECT_EQ(parseResourceRef("WorkloadGroup instance vm/ratings-10.0.0.9"),
            (ResourceKey{Kind::kWorkloadGroup, "vm", "ratings-10.0.0.9"}));
  EXPECT_FALSE(parseResourceRef("inline"));
  EXPECT_FALSE(parseResourceRef("host"));
}

}  // namespace
}  // namespace mast::control::server
