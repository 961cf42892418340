#include "control/xds/snapshot.h"

#include <gtest/gtest.h>

#include "control/xds/proxy_info.h"
#include "control/xds/type_urls.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"

namespace mast::control::xds {
namespace {

using envoy::config::cluster::v3::Cluster;
using envoy::config::endpoint::v3::ClusterLoadAssignment;

TEST(SnapshotTest, NamesTypesAndContentVersions) {
  Cluster c;
  c.set_name("c1");
  (*c.mutable_metadata()->mutable_filter_metadata())["x"].mutable_fields()->insert(
      {"k", google::protobuf::Value()});
  ClusterLoadAssignment cla;
  cla.set_cluster_name("c1");
  EXPECT_EQ(resourceName(c), "c1");
  EXPECT_EQ(resourceName(cla), "c1");
  EXPECT_EQ(typeUrlOf(cla), kEndpointType);

  Snapshot a, b;
  ASSERT_TRUE(a.add(c));
  ASSERT_TRUE(b.add(c));
  const auto* set = a.find(kClusterType);
  ASSERT_NE(set, nullptr);
  EXPECT_EQ(set->resources.size(), 1u);
  EXPECT_EQ(set->resources.at("c1").any->type_url(), kClusterType);
  EXPECT_EQ(set->resources.at("c1").version, b.find(kClusterType)->resources.at("c1").version);
  c.set_type(Cluster::STRICT_DNS);
  ASSERT_TRUE(b.add(c));  // replaces
  EXPECT_NE(set->resources.at("c1").version, b.find(kClusterType)->resources.at("c1").version);
  ASSERT_TRUE(b.add(c, "explicit-7"));
  EXPECT_EQ(b.find(kClusterType)->resources.at("c1").version, "explicit-7");
  EXPECT_EQ(a.find(kListenerType), nullptr);  // never declared

  // No version given: one derived from the content, changing with it.
  EXPECT_EQ(a.find(kClusterType)->version, "");
  std::string derived = a.find(kClusterType)->effectiveVersion();
  EXPECT_EQ(derived.size(), 16u);
  EXPECT_NE(derived, b.find(kClusterType)->effectiveVersion());
  a.setVersion(kClusterType, "given");
  EXPECT_EQ(a.find(kClusterType)->effectiveVersion(), "given");
}

TEST(SnapshotTest, RejectsNamelessAndMismatchedResources) {
  Snapshot s;
  Cluster nameless;
  auto st = s.add(nameless);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().find("no name"), std::string::npos);

  ClusterLoadAssignment cla;
  cla.set_cluster_name("x");
  google::protobuf::Any any;
  any.PackFrom(cla);
  st = s.set(kClusterType, "v1", std::map<std::string, google::protobuf::Any>{{"x", any}});
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().find("expected"), std::string::npos);

  std::map<std::string, std::shared_ptr<const google::protobuf::Message>> items;
  auto c = std::make_shared<Cluster>();
  c->set_name("ignored-field-name");
  items["by-key"] = c;
  ASSERT_TRUE(s.set(kClusterType, "v2", items));
  EXPECT_EQ(s.find(kClusterType)->version, "v2");
  EXPECT_EQ(s.find(kClusterType)->resources.count("by-key"), 1u);
}

Cluster named(const std::string& name, int connect_timeout_s = 1) {
  Cluster c;
  c.set_name(name);
  c.mutable_connect_timeout()->set_seconds(connect_timeout_s);
  return c;
}

TEST(SnapshotTest, SharedBaseLayerUnderOwnResources) {
  Snapshot shared;
  ASSERT_TRUE(shared.add(named("b")));
  ASSERT_TRUE(shared.add(named("d")));
  ASSERT_TRUE(shared.add(named("same", 1)));
  auto base = std::make_shared<ResourceSet>(shared.release(kClusterType));
  EXPECT_TRUE(shared.find(kClusterType)->empty());  // released, still declared

  Snapshot s;
  s.setBase(kClusterType, base);
  ASSERT_TRUE(s.add(named("a")));
  ASSERT_TRUE(s.add(named("c")));
  ASSERT_TRUE(s.add(named("same", 2)));  // hides the base's "same"
  const ResourceSet* set = s.find(kClusterType);
  ASSERT_NE(set, nullptr);
  std::vector<std::string> order;
  set->forEach([&](const Resource& r) { order.push_back(r.name); });
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c", "d", "same"}));
  EXPECT_EQ(set->size(), 5u);
  EXPECT_FALSE(set->empty());
  ASSERT_NE(set->find("d"), nullptr);
  EXPECT_EQ(set->find("d")->version, base->resources.at("d").version);
  EXPECT_EQ(set->find("same")->version, set->resources.at("same").version);
  EXPECT_NE(set->find("same")->version, base->resources.at("same").version);
  EXPECT_EQ(set->find("zz"), nullptr);

  // A base alone counts as content; an empty layer over an empty base does not.
  Snapshot only_base;
  only_base.setBase(kClusterType, base);
  EXPECT_FALSE(only_base.find(kClusterType)->empty());
  Snapshot nothing;
  nothing.setBase(kClusterType, std::make_shared<ResourceSet>());
  EXPECT_TRUE(nothing.find(kClusterType)->empty());
}

TEST(SnapshotTest, FingerprintFollowsContentWhateverTheVersionSays) {
  auto build = [](int timeout, bool extra) {
    Snapshot s;
    s.setVersion(kClusterType, "v1");  // an owner-chosen version that never moves
    EXPECT_TRUE(s.add(named("a", timeout)));
    if (extra) EXPECT_TRUE(s.add(named("b")));
    return s;
  };
  Snapshot a = build(1, false), same = build(1, false), changed = build(2, false),
           more = build(1, true);
  EXPECT_TRUE(Snapshot::sameContent(a, same));
  EXPECT_FALSE(Snapshot::sameContent(a, changed));  // same version string, other content
  EXPECT_FALSE(Snapshot::sameContent(a, more));
  EXPECT_EQ(a.find(kClusterType)->fingerprint(), same.find(kClusterType)->fingerprint());

  // Replacing a resource with itself leaves the fingerprint; replacing it with other content
  // and back restores it.
  uint64_t fp = a.find(kClusterType)->fingerprint();
  ASSERT_TRUE(a.add(named("a", 1)));
  EXPECT_EQ(a.find(kClusterType)->fingerprint(), fp);
  ASSERT_TRUE(a.add(named("a", 5)));
  EXPECT_NE(a.find(kClusterType)->fingerprint(), fp);
  ASSERT_TRUE(a.add(named("a", 1)));
  EXPECT_EQ(a.find(kClusterType)->fingerprint(), fp);

  // A changed base changes the fingerprint of every snapshot over it.
  Snapshot b1, b2;
  ASSERT_TRUE(b1.add(named("x", 1)));
  ASSERT_TRUE(b2.add(named("x", 2)));
  Snapshot over1, over2;
  over1.setBase(kClusterType, std::make_shared<ResourceSet>(b1.release(kClusterType)));
  over2.setBase(kClusterType, std::make_shared<ResourceSet>(b2.release(kClusterType)));
  EXPECT_FALSE(Snapshot::sameContent(over1, over2));
  // Different declared types are different content.
  Snapshot eds = build(1, false);
  eds.setVersion(kEndpointType, "");
  EXPECT_FALSE(Snapshot::sameContent(build(1, false), eds));
}

TEST(SnapshotTest, ResponseEntriesParseBackToTheirAny) {
  // A DiscoveryResponse made of nothing but entries is a response with those resources, in
  // order: empty value, small, and large enough for multi-byte length prefixes.
  ClusterLoadAssignment big;
  big.set_cluster_name("big");
  for (int i = 0; i < 5000; ++i) {
    auto* a = big.add_endpoints()->add_lb_endpoints()->mutable_endpoint()->mutable_address();
    a->mutable_socket_address()->set_address("10.0." + std::to_string(i / 250) + "." +
                                             std::to_string(i % 250));
  }
  std::vector<google::protobuf::Any> anys(3);
  anys[0].set_type_url(std::string(kEndpointType));
  anys[1] = *packDeterministic(named("a", 3));
  anys[2] = *packDeterministic(big);
  ASSERT_GT(anys[2].value().size(), 16384u);  // a 3-byte length
  std::string bytes;
  for (const auto& any : anys) bytes += *encodeResponseEntry(any);
  envoy::service::discovery::v3::DiscoveryResponse resp;
  ASSERT_TRUE(resp.ParseFromString(bytes));
  ASSERT_EQ(resp.resources_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(resp.resources(i).type_url(), anys[i].type_url()) << i;
    EXPECT_EQ(resp.resources(i).value(), anys[i].value()) << i;
  }
  // The mutators set every resource's entry.
  Snapshot s;
  ASSERT_TRUE(s.add(big));
  ASSERT_TRUE(s.addAny("x", anys[1]));
  ASSERT_TRUE(s.addShared("y", packDeterministic(named("y"))));
  for (auto [type, name] :
       {std::pair{kEndpointType, "big"}, {kClusterType, "x"}, {kClusterType, "y"}}) {
    const Resource* r = s.find(type)->find(name);
    ASSERT_TRUE(r && r->wire) << name;
    EXPECT_EQ(*r->wire, *encodeResponseEntry(*r->any)) << name;
  }
}

TEST(SnapshotCacheTest, WatchesSeeTheLatestSnapshotAndCanBeCancelled) {
  SnapshotCache cache;
  std::vector<std::string> seen;
  auto id = cache.watch("n", [&] {
    auto s = cache.getSnapshot("n");  // allowed: no cache lock held during the call
    seen.push_back(s ? s->find(kClusterType)->version : "cleared");
  });
  cache.watch("other", [&] { seen.push_back("wrong node"); });
  Snapshot s;
  s.setVersion(kClusterType, "v1");
  cache.setSnapshot("n", s);
  cache.clearSnapshot("n");
  cache.clearSnapshot("n");  // nothing to clear: no notification
  cache.cancelWatch(id);
  cache.setSnapshot("n", s);
  EXPECT_EQ(seen, (std::vector<std::string>{"v1", "cleared"}));
  EXPECT_EQ(cache.nodeIds(), std::vector<std::string>{"n"});
}

TEST(ProxyInfoTest, ParsesIstioIdsAndMetadata) {
  envoy::config::core::v3::Node node;
  node.set_id("sidecar~10.0.0.1~reviews-v1-abc.default~default.svc.cluster.local");
  node.set_cluster("reviews.default");
  node.set_user_agent_name("envoy");
  node.mutable_user_agent_build_version()->mutable_version()->set_major_number(1);
  node.mutable_user_agent_build_version()->mutable_version()->set_minor_number(28);
  auto& f = *node.mutable_metadata()->mutable_fields();
  f["NAMESPACE"].set_string_value("default");
  f["SERVICE_ACCOUNT"].set_string_value("bookinfo-reviews");
  f["WORKLOAD_NAME"].set_string_value("reviews-v1");
  f["CLUSTER_ID"].set_string_value("Kubernetes");
  f["INSTANCE_IPS"].set_string_value("10.0.0.1,fd00::1");
  f["ISTIO_VERSION"].set_string_value("1.20.0");
  f["MESH_ID"].set_number_value(7);
  auto& labels = *f["LABELS"].mutable_struct_value()->mutable_fields();
  labels["app"].set_string_value("reviews");
  labels["version"].set_string_value("v1");

  auto info = parseProxyInfo(node);
  ASSERT_TRUE(info) << info.error();
  EXPECT_TRUE(info->istio_id);
  EXPECT_EQ(info->type, ProxyType::kSidecar);
  EXPECT_EQ(proxyTypeName(info->type), "sidecar");
  EXPECT_EQ(info->ip, "10.0.0.1");
  EXPECT_EQ(info->ips, (std::vector<std::string>{"10.0.0.1", "fd00::1"}));
  EXPECT_EQ(info->name, "reviews-v1-abc");
  EXPECT_EQ(info->namespace_, "default");
  EXPECT_EQ(info->dns_domain, "default.svc.cluster.local");
  EXPECT_EQ(info->cluster, "reviews.default");
  EXPECT_EQ(info->labels.at("app"), "reviews");
  EXPECT_EQ(info->labels.at("version"), "v1");
  EXPECT_EQ(info->service_account, "bookinfo-reviews");
  EXPECT_EQ(info->workload_name, "reviews-v1");
  EXPECT_EQ(info->cluster_id, "Kubernetes");
  EXPECT_EQ(info->istio_version, "1.20.0");
  EXPECT_EQ(info->metadata.at("MESH_ID"), "7");
  EXPECT_EQ(info->user_agent, "envoy 1.28.0");
  EXPECT_FALSE(info->proxyless);
}

TEST(ProxyInfoTest, RouterProxylessAndOpaqueIds) {
  envoy::config::core::v3::Node node;
  node.set_id("router~10.0.0.9~ingressgateway-5d.istio-system~istio-system.svc.cluster.local");
  auto info = parseProxyInfo(node);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->type, ProxyType::kRouter);
  EXPECT_EQ(info->namespace_, "istio-system");  // from the id when NAMESPACE is absent
  EXPECT_EQ(info->ips, std::vector<std::string>{"10.0.0.9"});

  node.set_id("sidecar~10.0.0.3~app.ns~ns.svc.cluster.local");
  (*node.mutable_metadata()->mutable_fields())["GENERATOR"].set_string_value("grpc");
  info = parseProxyInfo(node);
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->proxyless);

  node.set_id("plain-envoy-1");
  info = parseProxyInfo(node);
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->istio_id);
  EXPECT_EQ(info->type, ProxyType::kUnknown);
  node.set_id("waypoint~1~2~3");  // not a type we know: opaque
  info = parseProxyInfo(node);
  ASSERT_TRUE(info);
  EXPECT_FALSE(info->istio_id);

  node.set_id("");
  EXPECT_FALSE(parseProxyInfo(node));
}

}  // namespace
}  // namespace mast::control::xds
