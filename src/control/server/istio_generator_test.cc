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
  EXPECT_FALSE(gen->sameAsBefore(proxies_[0]));  // imports web, whose endpoints moved
  EXPECT_FALSE(gen->sameAsBefore(proxies_[1]));
  EXPECT_TRUE(gen->sameAsBefore(proxies_[2]));
  for (const auto& p : proxies_) (void)gen->generate(p);
  EXPECT_EQ(gen->reusedSharedParts(), 1u);  // ns-b's; ns-a imports web (patched: EDS only)
  EXPECT_EQ(gen->patchedSharedParts(), 1u);

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
  // A VirtualService every namespace sees, with Sidecar egress scoping (which imports the
  // destinations of imported VirtualServices): translated whole.
  apply("route.yaml", kRoute);
  gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
  for (const auto& p : proxies_) EXPECT_FALSE(gen->sameAsBefore(p)) << p.id;
  auto scratch = fresh();
  for (const auto& p : proxies_) {
    EXPECT_EQ(contents(gen->generate(p)), contents(scratch->generate(p))) << p.id;
  }
  EXPECT_EQ(gen->reusedSharedParts(), 0u);
  EXPECT_EQ(gen->patchedSharedParts(), 0u);
  // No change at all is endpoint-only with nothing concerned: everything is kept.
  gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
  for (const auto& p : proxies_) EXPECT_TRUE(gen->sameAsBefore(p)) << p.id;
  for (const auto& p : proxies_) (void)gen->generate(p);
  EXPECT_EQ(gen->reusedSharedParts(), 2u);
  // A DestinationRule change is neither kind: translated whole.
  apply("dr.yaml", R"(
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: api, namespace: ns-b}
spec: {host: api, trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}}
)");
  gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
  scratch = fresh();
  for (const auto& p : proxies_) {
    EXPECT_FALSE(gen->sameAsBefore(p)) << p.id;
    EXPECT_EQ(contents(gen->generate(p)), contents(scratch->generate(p))) << p.id;
  }
  EXPECT_EQ(gen->reusedSharedParts() + gen->patchedSharedParts(), 0u);
}

// The whole mesh visible to every proxy (no Sidecar), as in Istio by default: every share key
// imports every service, so changes are patched into the shared parts instead of translated.
std::string unscoped(std::string yaml) {
  yaml = yaml.substr(0, yaml.find("---\napiVersion: networking.istio.io/v1\nkind: Sidecar"));
  return yaml + R"(---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: db, namespace: ns-b}
spec:
  hosts: [db.ns-b.svc.cluster.local]
  addresses: [10.96.0.3]
  ports: [{number: 6379, name: tcp-redis, protocol: TCP}]
  location: MESH_INTERNAL
  resolution: NONE
  workloadSelector: {labels: {app: db}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: db-1, namespace: ns-b}
spec: {address: 10.0.3.1, labels: {app: db}}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: rating, namespace: ns-b}
spec:
  hosts: [rating.ns-b.svc.cluster.local]
  addresses: [10.96.0.4]
  ports: [{number: 9080, name: http, protocol: HTTP}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 10.0.4.1}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: ns-a}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}]
)";
}

xds::ProxyInfo gateway() {
  xds::ProxyInfo p;
  p.id = "router~10.0.0.100~gw.ns-a~ns-a.svc.cluster.local";
  p.type = xds::ProxyType::kRouter;
  p.ip = "10.0.0.100";
  p.ips = {p.ip};
  p.namespace_ = "ns-a";
  p.labels = {{"istio", "ingressgateway"}};
  return p;
}

xds::ProxyInfo grpcClient() {
  auto p = sidecar("client", "ns-a", "10.0.9.9");
  p.proxyless = true;
  return p;
}

class UnscopedGeneratorTest : public IstioGeneratorTest {
 protected:
  void SetUp() override {
    proxies_.push_back(gateway());
    proxies_.push_back(grpcClient());
    apply("mesh.yaml", unscoped(kMesh));
    gen_ = makeIstioGenerator();
    push();
  }
  // A debounced push as mastd makes it: update, then every proxy's snapshot from its current.
  void push() {
    gen_->update(store_.snapshot(), config::defaultMeshConfig(), {});
    for (const auto& p : proxies_) {
      auto it = held_.find(p.id);
      auto current = it == held_.end() ? nullptr : it->second;
      before_[p.id] = current;
      held_[p.id] = gen_->generateFrom(p, current);
    }
  }
  // What every proxy holds is what a generator built from scratch gives.
  void expectSameAsScratch(const std::string& step) {
    auto scratch = fresh();
    for (const auto& p : proxies_) {
      EXPECT_EQ(contents(*held_.at(p.id)), contents(scratch->generate(p))) << step << ": " << p.id;
    }
  }
  // The shared layer of `type` in the proxy's snapshot is the very one it had before the push.
  bool sameLayer(const xds::ProxyInfo& p, std::string_view type) {
    return held_.at(p.id)->find(type)->base == before_.at(p.id)->find(type)->base;
  }
  const xds::Resource* resource(const xds::ProxyInfo& p, std::string_view type,
                                const std::string& name) {
    return held_.at(p.id)->find(type)->find(name);
  }

  std::unique_ptr<Generator> gen_;
  std::map<std::string, std::shared_ptr<const xds::Snapshot>> held_, before_;
};

TEST_F(UnscopedGeneratorTest, EndpointChangeRebuildsOnlyTheChangedEndpoints) {
  const auto& api1 = proxies_[2];
  std::string other = "outbound|80||api.ns-b.svc.cluster.local";
  std::string web = "outbound|80||web.ns-a.svc.cluster.local";
  const auto* other_before = resource(api1, xds::kEndpointType, other);
  const auto* web_before = resource(api1, xds::kEndpointType, web);
  ASSERT_TRUE(other_before && web_before);
  auto other_wire = other_before->wire;
  auto web_version = web_before->version;
  apply("mesh.yaml", unscoped(web2Moved()));
  push();
  expectSameAsScratch("web-2 moved");
  // Every share key imports web: none kept, each patched (not translated).
  EXPECT_EQ(gen_->reusedSharedParts(), 0u);
  EXPECT_EQ(gen_->patchedSharedParts(), 4u);  // ns-a, ns-b sidecars, the gateway, gRPC client
  for (const auto& p : proxies_) {
    EXPECT_TRUE(sameLayer(p, xds::kClusterType)) << p.id;
    EXPECT_TRUE(sameLayer(p, xds::kListenerType)) << p.id;
    EXPECT_TRUE(sameLayer(p, xds::kRouteType)) << p.id;
    EXPECT_FALSE(sameLayer(p, xds::kEndpointType)) << p.id;
  }
  // The other CLAs are the same objects (same encoded bytes); web's is new.
  EXPECT_EQ(resource(api1, xds::kEndpointType, other)->wire, other_wire);
  EXPECT_NE(resource(api1, xds::kEndpointType, web)->version, web_version);
  // The proxy at the old address got its inbound part translated again (it lost it).
  EXPECT_NE(held_.at(proxies_[1].id)->find(xds::kClusterType)->fingerprint(),
            before_.at(proxies_[1].id)->find(xds::kClusterType)->fingerprint());
}

TEST_F(UnscopedGeneratorTest, EndpointChangeThatChangesAClusterTranslatesTheKeyAgain) {
  // db (resolution NONE) loses its only endpoint: its cluster turns from EDS to ORIGINAL_DST
  // (and the gRPC client loses it): the patch would be wrong, so everything is translated.
  std::string yaml = unscoped(kMesh);
  yaml.replace(yaml.find("{app: db}}\n---"), 9, "{app: dbx}");
  apply("mesh.yaml", yaml);
  push();
  expectSameAsScratch("db-1 relabelled");
  EXPECT_EQ(gen_->patchedSharedParts(), 0u);
  std::string db = "outbound|6379||db.ns-b.svc.cluster.local";
  const auto* now = resource(proxies_[0], xds::kClusterType, db);
  const auto* was = before_.at(proxies_[0].id)->find(xds::kClusterType)->find(db);
  ASSERT_TRUE(now && was);
  EXPECT_NE(now->version, was->version);
  EXPECT_EQ(resource(proxies_[0], xds::kEndpointType, db), nullptr);
}

TEST_F(UnscopedGeneratorTest, VirtualServiceChangeRebuildsOnlyRoutes) {
  const auto* rating_routes = resource(proxies_[0], xds::kRouteType, "9080");
  ASSERT_TRUE(rating_routes);
  auto rating_wire = rating_routes->wire;
  apply("route.yaml", kRoute);
  push();
  expectSameAsScratch("VirtualService added");
  EXPECT_EQ(gen_->patchedSharedParts(), 4u);
  // api is on port 80 only: route configuration 9080 was not translated again.
  EXPECT_EQ(resource(proxies_[0], xds::kRouteType, "9080")->wire, rating_wire);
  apply("rating.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: rating, namespace: ns-a}
spec:
  hosts: [rating.ns-b.svc.cluster.local]
  http: [{timeout: 7s, route: [{destination: {host: rating.ns-b.svc.cluster.local}}]}]
)");
  push();
  expectSameAsScratch("VirtualService for a 9080 service");
  EXPECT_NE(resource(proxies_[0], xds::kRouteType, "9080")->wire, rating_wire);
  for (const auto& p : proxies_) {
    EXPECT_TRUE(sameLayer(p, xds::kClusterType)) << p.id;
    EXPECT_TRUE(sameLayer(p, xds::kEndpointType)) << p.id;
    if (p.type == xds::ProxyType::kSidecar && !p.proxyless) {
      EXPECT_TRUE(sameLayer(p, xds::kListenerType)) << p.id;  // no tcp/tls routes
      EXPECT_FALSE(sameLayer(p, xds::kRouteType)) << p.id;
      // The inbound part is the very object it was.
      EXPECT_EQ(held_.at(p.id)->find(xds::kClusterType)->resources.begin()->second.wire,
                before_.at(p.id)->find(xds::kClusterType)->resources.begin()->second.wire);
    }
  }
  // Only exported to its own namespace now: ns-a's proxies lose it (patched), then a change
  // of it cannot reach them: their shared part is kept and their snapshots stay.
  std::string local = kRoute;
  local.replace(local.find("hosts: [api]"), 12, "hosts: [api]\n  exportTo: [.]");
  apply("route.yaml", local);
  push();
  expectSameAsScratch("exportTo .");
  local.replace(local.find("timeout: 3s"), 11, "timeout: 4s");
  apply("route.yaml", local);
  push();
  expectSameAsScratch("timeout changed");
  EXPECT_EQ(gen_->reusedSharedParts(), 2u);  // ns-a's sidecars and gRPC client
  EXPECT_TRUE(gen_->sameAsBefore(proxies_[0]));
  EXPECT_EQ(held_.at(proxies_[0].id), before_.at(proxies_[0].id));
  EXPECT_NE(held_.at(proxies_[2].id), before_.at(proxies_[2].id));  // ns-b's sidecar
}

TEST_F(UnscopedGeneratorTest, TcpRoutesDelegatesAndGatewaysArePatchedToo) {
  apply("tcp.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: db, namespace: ns-b}
spec:
  hosts: [db.ns-b.svc.cluster.local]
  tcp: [{route: [{destination: {host: api.ns-b.svc.cluster.local, port: {number: 80}}}]}]
)");
  push();
  expectSameAsScratch("tcp route");
  EXPECT_FALSE(sameLayer(proxies_[0], xds::kListenerType));
  EXPECT_TRUE(sameLayer(proxies_[0], xds::kClusterType));
  // The root VirtualService (mesh + gateway) delegating /v to a leaf routing `prefix` to `host`.
  auto applyRootAndLeaf = [&](const std::string& prefix, const std::string& host) {
    apply("root.yaml", R"(
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root, namespace: ns-a}
spec:
  hosts: [web.ns-a.svc.cluster.local, shop.example.com]
  gateways: [mesh, gw]
  http: [{match: [{uri: {prefix: /v}}], delegate: {name: leaf, namespace: ns-a}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: leaf, namespace: ns-a}
spec:
  http: [{match: [{uri: {prefix: )" +
                           prefix + "}}], route: [{destination: {host: " + host + "}}]}]\n");
  };
  applyRootAndLeaf("/v1", "web");
  push();
  expectSameAsScratch("root and delegate added");
  applyRootAndLeaf("/v2", "api.ns-b.svc.cluster.local");
  push();
  expectSameAsScratch("delegate changed");
  EXPECT_EQ(gen_->patchedSharedParts(), 4u);
  EXPECT_FALSE(sameLayer(gateway(), xds::kRouteType));
}

TEST_F(IstioGeneratorTest, AKeyTranslatedToTheSameContentKeepsItsLayersForTheNextPatch) {
  apply("mesh.yaml", kMesh);
  auto gen = makeIstioGenerator();
  gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
  const auto& web1 = proxies_[0];
  auto held = gen->generateFrom(web1, nullptr);
  // ns-a sees the VirtualService but imports nothing of it (Sidecar ./*): its key is
  // translated whole (egress scoping) to the same content; web-1 keeps its snapshot.
  apply("route.yaml", kRoute);
  gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
  auto after_vs = gen->generateFrom(web1, held);
  EXPECT_EQ(after_vs, held);
  // Then web-2 moves: ns-a's key is patched, and web-1 (not at a changed address) keeps its
  // inbound part: the very resources it had, not translated again.
  apply("mesh.yaml", web2Moved());
  gen->update(store_.snapshot(), config::defaultMeshConfig(), {});
  auto after_move = gen->generateFrom(web1, after_vs);
  ASSERT_NE(after_move, after_vs);
  EXPECT_EQ(gen->patchedSharedParts(), 1u);
  const auto& own = after_move->find(xds::kClusterType)->resources;
  ASSERT_FALSE(own.empty());
  EXPECT_EQ(own.begin()->second.wire,
            after_vs->find(xds::kClusterType)->resources.begin()->second.wire);
  EXPECT_EQ(contents(*after_move), contents(fresh()->generate(web1)));
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
