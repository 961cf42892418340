#include "control/model/mesh_model.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "control/config/store.h"

namespace mast::control::model {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class MeshModelTest : public ::testing::Test {
 protected:
  void apply(const std::string& name, const std::string& yaml) {
    auto errors = store_.applyFile(name, yaml);
    for (const auto& e : errors) ADD_FAILURE() << e.toString();
  }
  void applyTestdata(const std::string& file) {
    apply(file, readFile(std::string(MAST_CONFIG_TESTDATA) + "/" + file));
  }
  std::shared_ptr<const MeshModel> model(std::vector<WorkloadInstance> instances = {}) {
    return MeshModel::build(store_.snapshot(), config::defaultMeshConfig(), std::move(instances));
  }
  config::ConfigStore store_;
};

constexpr const char* kReviews = R"(
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [10.96.0.30]
  ports:
  - {number: 9080, name: http, protocol: HTTP}
  - {number: 9443, name: grpc-api, targetPort: 8443}
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: default}
spec:
  address: 10.0.0.31
  labels: {app: reviews, version: v1}
  serviceAccount: bookinfo-reviews
  locality: us-east/zone-a
  weight: 4
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2, namespace: default}
spec:
  address: 10.0.0.32
  ports: {http: 19080}
  labels: {app: reviews, version: v2}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-other-ns, namespace: other}
spec:
  address: 10.0.9.9
  labels: {app: reviews, version: v1}
)";

TEST_F(MeshModelTest, ServiceEntrySelectsWorkloadEntriesInItsNamespace) {
  apply("reviews.yaml", kReviews);
  auto m = model();
  ASSERT_EQ(m->registry().services().size(), 1u);
  const Service& svc = *m->registry().services()[0];
  EXPECT_EQ(svc.hostname, "reviews.default.svc.cluster.local");
  EXPECT_EQ(svc.resolution, Resolution::kStatic);
  EXPECT_EQ(svc.location, Location::kMeshInternal);
  ASSERT_EQ(svc.ports.size(), 2u);
  EXPECT_EQ(svc.ports[1].protocol, Protocol::kGrpc);  // from the port name "grpc-api"
  auto eps = m->registry().endpoints(svc, 9080);
  ASSERT_EQ(eps.size(), 2u);  // the WorkloadEntry in namespace "other" is not selected
  EXPECT_EQ(eps[0].address, "10.0.0.31");
  EXPECT_EQ(eps[0].port, 9080u);
  EXPECT_EQ(eps[0].locality, "us-east/zone-a");
  EXPECT_EQ(eps[0].weight, 4u);
  EXPECT_TRUE(eps[0].tls_istio);  // a service account means the workload speaks Istio mTLS
  EXPECT_EQ(eps[1].address, "10.0.0.32");
  EXPECT_EQ(eps[1].port, 19080u);  // the entry's ports map beats the service port
  EXPECT_FALSE(eps[1].tls_istio);
  auto grpc = m->registry().endpoints(svc, 9443);
  ASSERT_EQ(grpc.size(), 2u);
  EXPECT_EQ(grpc[0].port, 8443u);  // targetPort
}

TEST_F(MeshModelTest, WorkloadGroupInstancesJoinTheirServices) {
  apply("reviews.yaml", kReviews);
  WorkloadInstance vm;
  vm.name = "reviews-vm-10.0.5.5";
  vm.ns = "default";
  vm.group = "reviews-vm";
  vm.entry.set_address("10.0.5.5");
  (*vm.entry.mutable_labels())["app"] = "reviews";
  (*vm.entry.mutable_labels())["version"] = "v3";
  auto m = model({vm});
  auto eps = m->registry().endpoints(*m->registry().services()[0], 9080);
  ASSERT_EQ(eps.size(), 3u);
  EXPECT_EQ(eps[2].address, "10.0.5.5");
  EXPECT_EQ(eps[2].labels.at("version"), "v3");
}

TEST_F(MeshModelTest, DnsServiceWithoutEndpointsResolvesItsHost) {
  applyTestdata("egress-rule-google-apis.yaml");
  auto m = model();
  const Service* svc = m->findService("www.googleapis.com", "default");
  ASSERT_NE(svc, nullptr);
  EXPECT_EQ(svc->resolution, Resolution::kDns);
  auto eps = m->registry().endpoints(*svc, 443);
  ASSERT_EQ(eps.size(), 1u);
  EXPECT_EQ(eps[0].address, "www.googleapis.com");
  EXPECT_EQ(eps[0].port, 443u);
}

TEST_F(MeshModelTest, VirtualServiceHostsAndGatewaysAreNormalised) {
  applyTestdata("bookinfo-gateway.yaml");
  applyTestdata("virtual-service-all-v1.yaml");
  auto m = model();
  auto mesh = m->virtualServices(kMeshGateway, "default");
  ASSERT_EQ(mesh.size(), 4u);
  std::set<std::string> hosts;
  for (const auto* vs : mesh) hosts.insert(vs->hosts.at(0));
  EXPECT_TRUE(hosts.count("reviews.default.svc.cluster.local"));
  EXPECT_TRUE(hosts.count("productpage.default.svc.cluster.local"));
  auto gw = m->virtualServices("default/bookinfo-gateway", "default");
  ASSERT_EQ(gw.size(), 1u);
  EXPECT_EQ(gw[0]->name, "bookinfo");
  EXPECT_EQ(gw[0]->hosts, std::vector<std::string>{"*"});
  EXPECT_TRUE(m->virtualServices("default/other-gateway", "default").empty());
}

TEST_F(MeshModelTest, VirtualServiceExportToLimitsVisibility) {
  apply("vs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: private, namespace: team-a}
spec:
  hosts: [svc]
  exportTo: ["."]
  http:
  - route:
    - destination: {host: svc}
)");
  auto m = model();
  EXPECT_EQ(m->virtualServices(kMeshGateway, "team-a").size(), 1u);
  EXPECT_TRUE(m->virtualServices(kMeshGateway, "team-b").empty());
}

// Istio's DestinationRule lookup: proxy namespace, then the service's, then the root namespace.
TEST_F(MeshModelTest, DestinationRuleLookupOrder) {
  apply("reviews.yaml", kReviews);
  apply("drs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: root, namespace: istio-system}
spec:
  host: "*.svc.cluster.local"
  subsets: [{name: root, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: service-ns, namespace: default}
spec:
  host: reviews
  subsets: [{name: from-service-ns, labels: {version: v1}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: client-ns, namespace: client}
spec:
  host: reviews.default.svc.cluster.local
  subsets: [{name: from-client-ns, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: private, namespace: default}
spec:
  host: reviews
  exportTo: ["."]
  subsets: [{name: private-subset, labels: {version: v2}}]
)");
  auto m = model();
  const Service& svc = *m->findService("reviews.default.svc.cluster.local", "default");
  // A proxy in "client" uses its own namespace's rule.
  auto a = m->destinationRule("client", {}, svc);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->sources, std::vector<std::string>{"client/client-ns"});
  // A proxy in "default" (the service's namespace, also its own) merges both default rules.
  auto b = m->destinationRule("default", {}, svc);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->rule.subsets_size(), 2);
  // A proxy in "elsewhere": the service namespace's exported rule, not the private one.
  auto c = m->destinationRule("elsewhere", {}, svc);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->sources, std::vector<std::string>{"default/service-ns"});
  ASSERT_EQ(c->rule.subsets_size(), 1);
  EXPECT_EQ(c->rule.subsets(0).name(), "from-service-ns");
}

TEST_F(MeshModelTest, DestinationRuleFallsBackToRootNamespace) {
  apply("reviews.yaml", kReviews);
  apply("drs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: root, namespace: istio-system}
spec:
  host: "*.svc.cluster.local"
  trafficPolicy: {loadBalancer: {simple: RANDOM}}
)");
  auto m = model();
  const Service& svc = *m->findService("reviews.default.svc.cluster.local", "default");
  auto r = m->destinationRule("client", {}, svc);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ns, "istio-system");
  EXPECT_EQ(r->host, "*.svc.cluster.local");
}

TEST_F(MeshModelTest, DestinationRuleWorkloadSelectorAppliesToMatchingProxiesOnly) {
  apply("reviews.yaml", kReviews);
  apply("drs.yaml", R"(
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: for-productpage, namespace: default}
spec:
  host: reviews
  workloadSelector: {matchLabels: {app: productpage}}
  subsets: [{name: selected, labels: {version: v1}}]
)");
  auto m = model();
  const Service& svc = *m->findService("reviews.default.svc.cluster.local", "default");
  EXPECT_TRUE(m->destinationRule("default", {{"app", "productpage"}}, svc));
  EXPECT_FALSE(m->destinationRule("default", {{"app", "details"}}, svc));
}

TEST_F(MeshModelTest, GatewaysAreSelectedByLabels) {
  applyTestdata("bookinfo-gateway.yaml");
  auto m = model();
  EXPECT_EQ(m->gatewaysFor({{"istio", "ingressgateway"}, {"app", "x"}}).size(), 1u);
  EXPECT_TRUE(m->gatewaysFor({{"istio", "egressgateway"}}).empty());
  ASSERT_NE(m->gateway("default/bookinfo-gateway"), nullptr);
}

TEST_F(MeshModelTest, SidecarPrecedence) {
  apply("sidecars.yaml", R"(
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: mesh-default, namespace: istio-system}
spec:
  egress: [{hosts: ["*/*"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ns-default, namespace: default}
spec:
  egress: [{hosts: ["./*"]}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: for-ratings, namespace: default}
spec:
  workloadSelector: {labels: {app: ratings}}
  egress: [{hosts: ["./*"]}]
)");
  auto m = model();
  EXPECT_EQ(m->sidecarFor("default", {{"app", "ratings"}})->name, "for-ratings");
  EXPECT_EQ(m->sidecarFor("default", {{"app", "reviews"}})->name, "ns-default");
  EXPECT_EQ(m->sidecarFor("other", {})->name, "mesh-default");
}

}  // namespace
}  // namespace mast::control::model
