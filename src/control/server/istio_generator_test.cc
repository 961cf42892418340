#include "control/server/istio_generator.h"

#include <gtest/gtest.h>

#include "control/config/mesh_config.h"
#include "control/config/store.h"
#include "control/model/mesh_model.h"
#include "control/xds/type_urls.h"

namespace mast::control::server {
namespace {

// Two namespaces, each scoped to itself by a Sidecar, so that their proxies have different share
// keys: a change of ns-a's endpoints must leave ns-b's translation alone.
constexpr const char* kMesh = R"(
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: web, namespace: ns-a}
spec:
  hosts: [web.ns-a.svc.cluster.local]
  addresses: [10.96.0.1]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: {labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: ns-b}
spec:
  hosts: [api.ns-b.svc.cluster.local]
  addresses: [10.96.0.2]
  ports: [{number: 80, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: {labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-1, namespace: ns-a}
spec: {address: 10.0.1.1, labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-2, namespace: ns-a}
spec: {address: 10.0.1.2, labels: {app: web}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: api-1, namespace: ns-b}
spec: {address: 10.0.2.1, labels: {app: api}}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: ns-a}
spec: {egress: [{hosts: ["./*"]}]}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: ns-b}
spec: {egress: [{hosts: ["./*"]}]}
)";

// The mesh with web-2 moved from 10.0.1.2 to 10.0.1.3.
std::string web2Moved() {
  std::string yaml = kMesh;
  auto at = yaml.find("address: 10.0.1.2");
  yaml.replace(at, 17, "address: 10.0.1.3");
  return yaml;
}

constexpr const char* kRoute = R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: api, namespace: ns-b}
spec:
  hosts: [api]
  http: [{timeout: 3s, route: [{destination: {host: api}}]}]
)";

xds::ProxyInfo sidecar(const std::string& name, const std::string& ns, const std::string& ip) {
  xds::ProxyInfo p;
  p.id = "sidecar~" + ip + "~" + name + "." + ns + "~" + ns + ".svc.cluster.local";
  p.type = xds::ProxyType::kSidecar;
  p.ip = ip;
  p.ips = {ip};
  p.namespace_ = ns;
  return p;
}

// name → resource version, per type: what a proxy would be sent.
std::map<std::string, std::map<std::string, std::string>> contents(const xds::Snapshot& s) {
  std::map<std::string, std::map<std::string, std::string>> out;
  for (const auto& [type, set] : s.types()) {
    auto& m = out[type];
    set.forEach([&m](const xds::Resource& r) { m[r.name] = r.version; });
  }
  return out;
}

class IstioGeneratorTest : public ::testing::Test {
 protected:
  void apply(const std::string& file, const std::string& yaml) {
    for (const auto& e : store_.applyFile(file, yaml)) ADD_FAILURE() << e.toString();
  }
  // A generator that sees only the current snapshot (no incremental path).
  std::unique_ptr<Generator> fresh() {
    auto gen = makeIstioGenerator();
    gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
    return gen;
  }

  config::ConfigStore store_;
  std::vector<xds::ProxyInfo> proxies_ = {sidecar("web-1", "ns-a", "10.0.1.1"),
                                          sidecar("web-2", "ns-a", "10.0.1.2"),
                                          sidecar("api-1", "ns-b", "10.0.2.1")};
};

TEST_F(IstioGeneratorTest, EndpointOnlyChangeKeepsWhatItCannotAffect) {
  apply("mesh.yaml", kMesh);
  auto gen = makeIstioGenerator();
  gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
  std::map<std::string, xds::Snapshot> before;
  for (const auto& p : proxies_) before.emplace(p.id, gen->generate(p));

  apply("mesh.yaml", web2Moved());
  gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
  EXPECT_EQ(gen->reusedSharedParts(), 1u);       // ns-b's; ns-a imports web
  EXPECT_FALSE(gen->sameAsBefore(proxies_[0]));  // imports web, whose endpoints moved
  EXPECT_FALSE(gen->sameAsBefore(proxies_[1]));
  EXPECT_TRUE(gen->sameAsBefore(proxies_[2]));

  // Whatever was kept or rebuilt, the output is what a generator built from scratch gives.
  auto scratch = fresh();
  for (const auto& p : proxies_) {
    auto expected = scratch->generate(p);
    EXPECT_EQ(contents(gen->generate(p)), contents(expected)) << p.id;
    if (gen->sameAsBefore(p)) {
      EXPECT_TRUE(xds::Snapshot::sameContent(before.at(p.id), expected)) << p.id;
    }
  }
  // The moved endpoint is really in ns-a's EDS, and ns-a's endpoints did change.
  auto after = contents(gen->generate(proxies_[0]));
  EXPECT_NE(after.at(std::string(xds::kEndpointType)),
            contents(before.at(proxies_[0].id)).at(std::string(xds::kEndpointType)));
}

TEST_F(IstioGeneratorTest, ChangeAtTheProxysOwnAddressRebuildsItsInboundPart) {
  apply("mesh.yaml", kMesh);
  auto gen = makeIstioGenerator();
  gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
  // web-2 leaves 10.0.1.2: the proxy there loses its inbound service instance.
  apply("mesh.yaml", web2Moved());
  gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
  auto scratch = fresh();
  EXPECT_FALSE(gen->sameAsBefore(proxies_[1]));
  EXPECT_EQ(contents(gen->generate(proxies_[1])), contents(scratch->generate(proxies_[1])));
}

TEST_F(IstioGeneratorTest, OtherChangesRebuildEverything) {
  apply("mesh.yaml", kMesh);
  auto gen = makeIstioGenerator();
  gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
  apply("route.yaml", kRoute);
  gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
  EXPECT_EQ(gen->reusedSharedParts(), 0u);
  for (const auto& p : proxies_) EXPECT_FALSE(gen->sameAsBefore(p)) << p.id;
  auto scratch = fresh();
  for (const auto& p : proxies_) {
    EXPECT_EQ(contents(gen->generate(p)), contents(scratch->generate(p))) << p.id;
  }
  // No change at all is endpoint-only with nothing concerned: everything is kept.
  gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
  EXPECT_EQ(gen->reusedSharedParts(), 2u);
  for (const auto& p : proxies_) EXPECT_TRUE(gen->sameAsBefore(p)) << p.id;
}

// The registry a generator built incrementally has the services and endpoints of a full build.
void expectSameRegistry(const model::MeshModel& incremental, const model::MeshModel& full,
                        const std::string& step) {
  const auto& a = incremental.registry().services();
  const auto& b = full.registry().services();
  ASSERT_EQ(a.size(), b.size()) << step;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]->hostname, b[i]->hostname) << step;
    std::vector<std::string> ea, eb;
    for (const auto& e : incremental.registry().endpoints(*a[i], 80)) ea.push_back(e.address);
    for (const auto& e : full.registry().endpoints(*b[i], 80)) eb.push_back(e.address);
    EXPECT_EQ(ea, eb) << step << ": " << a[i]->hostname;
  }
}

TEST_F(IstioGeneratorTest, IncrementalRegistryMatchesAFullBuild) {
  apply("mesh.yaml", kMesh);
  auto gen = makeIstioGenerator();
  gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
  auto step = [&](const std::string& what) {
    gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
    expectSameRegistry(*gen->model(),
                       *model::MeshModel::build(store_.snapshot(), config::defaultMeshConfig()),
                       what);
  };
  apply("mesh.yaml", web2Moved());
  step("a WorkloadEntry moved");
  apply("route.yaml", kRoute);
  step("a VirtualService added (no ServiceEntry rebuilt)");
  std::string yaml = web2Moved();
  yaml.replace(yaml.find("{labels: {app: web}}"), 20, "{labels: {app: xyz}}");
  apply("mesh.yaml", yaml);
  step("a ServiceEntry's selector changed");
  EXPECT_TRUE(gen->model()
                  ->registry()
                  .endpoints(*gen->model()->registry().services()[1], 80)
                  .empty());  // web.ns-a now selects nothing
}

}  // namespace
}  // namespace mast::control::server
