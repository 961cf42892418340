// Incremental (delta) ADS over real gRPC on loopback.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "control/xds/ads_fixture.h"

namespace mast::control::xds::testing {
namespace {

using discovery::DeltaDiscoveryRequest;
using discovery::DeltaDiscoveryResponse;
using envoy::config::cluster::v3::Cluster;

const std::string kNode = "sidecar~10.0.0.5~ratings-v1.shop~shop.svc.cluster.local";

Snapshot clusters(const std::string& version, const std::map<std::string, int>& timeouts_ms) {
  Snapshot s;
  s.setVersion(kClusterType, version);
  for (const auto& [name, ms] : timeouts_ms) {
    Cluster c = makeEdsCluster(name);
    c.mutable_connect_timeout()->set_nanos(ms * 1'000'000);
    EXPECT_TRUE(s.add(c));
  }
  return s;
}

DeltaDiscoveryRequest request(std::string_view type, std::vector<std::string> subscribe = {},
                              std::vector<std::string> unsubscribe = {},
                              const std::string& node_id = {}) {
  DeltaDiscoveryRequest r;
  r.set_type_url(std::string(type));
  for (auto& n : subscribe) r.add_resource_names_subscribe(n);
  for (auto& n : unsubscribe) r.add_resource_names_unsubscribe(n);
  if (!node_id.empty()) *r.mutable_node() = makeNode(node_id);
  return r;
}

DeltaDiscoveryRequest ack(const DeltaDiscoveryResponse& resp) {
  DeltaDiscoveryRequest r = request(resp.type_url());
  r.set_response_nonce(resp.nonce());
  return r;
}

// name → version of the resources in a response.
std::map<std::string, std::string> versions(const DeltaDiscoveryResponse& resp) {
  std::map<std::string, std::string> out;
  for (const auto& r : resp.resources()) {
    Cluster c;
    if (r.resource().UnpackTo(&c)) {
      EXPECT_EQ(c.name(), r.name());
    }
    out[r.name()] = r.version();
  }
  return out;
}

std::set<std::string> removed(const DeltaDiscoveryResponse& resp) {
  return {resp.removed_resources().begin(), resp.removed_resources().end()};
}

class AdsDeltaTest : public AdsFixture {};

TEST_F(AdsDeltaTest, WildcardThenOnlyChangesWithPerResourceVersions) {
  cache_.setSnapshot(kNode, clusters("v1", {{"a", 100}, {"b", 200}, {"c", 300}}));
  DeltaClient client(port_, true);
  ASSERT_TRUE(client.send(request(kClusterType, {}, {}, kNode)));
  auto first = client.read();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->type_url(), kClusterType);
  EXPECT_EQ(first->system_version_info(), "v1");
  auto v1 = versions(*first);
  ASSERT_EQ(v1.size(), 3u);
  EXPECT_NE(v1["a"], v1["b"]);  // content hashes
  EXPECT_TRUE(first->removed_resources().empty());
  ASSERT_TRUE(client.send(ack(*first)));
  ASSERT_TRUE(waitFor([&] { return acks_.size() == 1; }));
  EXPECT_EQ(typeStatus(kNode, kClusterType)->state, SyncState::kSynced);

  // Change a, keep b, drop c, add d: only a and d are sent, c is removed.
  cache_.setSnapshot(kNode, clusters("v2", {{"a", 150}, {"b", 200}, {"d", 400}}));
  auto second = client.read();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->system_version_info(), "v2");
  auto v2 = versions(*second);
  EXPECT_EQ(v2.size(), 2u);
  EXPECT_TRUE(v2.count("a") && v2.count("d"));
  EXPECT_NE(v2["a"], v1["a"]);
  EXPECT_EQ(removed(*second), (std::set<std::string>{"c"}));
  EXPECT_NE(second->nonce(), first->nonce());
  ASSERT_TRUE(client.send(ack(*second)));

  // Same content under a new version string: nothing to send in delta.
  cache_.setSnapshot(kNode, clusters("v3", {{"a", 150}, {"b", 200}, {"d", 400}}));
  EXPECT_FALSE(client.read(300ms));
  ASSERT_TRUE(waitFor([&] { return acks_.size() == 2; }));
  auto st = typeStatus(kNode, kClusterType);
  EXPECT_EQ(st->acked_version, "v2");
  EXPECT_EQ(st->pushes, 2u);
}

TEST_F(AdsDeltaTest, NamedSubscriptionsMissingNamesAndUnsubscribe) {
  Snapshot s;
  s.setVersion(kEndpointType, "e1");
  ASSERT_TRUE(s.add(makeCla("x", "10.2.0.1", 80)));
  ASSERT_TRUE(s.add(makeCla("y", "10.2.0.2", 80)));
  cache_.setSnapshot(kNode, s);
  DeltaClient client(port_, true);
  // An empty subscribe list on EDS is not a wildcard: nothing comes back.
  ASSERT_TRUE(client.send(request(kEndpointType, {}, {}, kNode)));
  EXPECT_FALSE(client.read(300ms));

  ASSERT_TRUE(client.send(request(kEndpointType, {"x", "missing"})));
  auto r = client.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(versions(*r).size(), 1u);
  EXPECT_TRUE(versions(*r).count("x"));
  EXPECT_EQ(removed(*r), (std::set<std::string>{"missing"}));  // told it does not exist
  ASSERT_TRUE(client.send(ack(*r)));

  // Unsubscribe x; a change to x is then not pushed.
  ASSERT_TRUE(client.send(request(kEndpointType, {}, {"x"})));
  ASSERT_TRUE(
      waitForStatus(kNode, kEndpointType, [](const TypeStatus& t) { return t.subscribed == 1; }));
  Snapshot s2;
  s2.setVersion(kEndpointType, "e2");
  ASSERT_TRUE(s2.add(makeCla("x", "10.2.0.1", 81)));
  ASSERT_TRUE(s2.add(makeCla("y", "10.2.0.2", 80)));
  cache_.setSnapshot(kNode, s2);
  EXPECT_FALSE(client.read(300ms));

  // "missing" appears: it is sent; subscribing x again sends x.
  ASSERT_TRUE(s2.add(makeCla("missing", "10.2.0.3", 80)));
  cache_.setSnapshot(kNode, s2);
  auto appeared = client.read();
  ASSERT_TRUE(appeared);
  EXPECT_EQ(versions(*appeared).size(), 1u);
  EXPECT_TRUE(versions(*appeared).count("missing"));
  ASSERT_TRUE(client.send(request(kEndpointType, {"x"})));
  auto x = client.read();
  ASSERT_TRUE(x);
  EXPECT_TRUE(versions(*x).count("x"));
  EXPECT_EQ(typeStatus(kNode, kEndpointType)->subscribed, 2u);
}

TEST_F(AdsDeltaTest, InitialResourceVersionsAvoidResending) {
  Snapshot s = clusters("v1", {{"a", 100}, {"b", 200}});
  std::string a_version = s.find(kClusterType)->resources.at("a").version;
  cache_.setSnapshot(kNode, s);
  DeltaClient client(port_, true);
  auto req = request(kClusterType, {}, {}, kNode);
  (*req.mutable_initial_resource_versions())["a"] = a_version;  // reconnecting, has a already
  (*req.mutable_initial_resource_versions())["gone"] = "old";   // and something since deleted
  ASSERT_TRUE(client.send(req));
  auto r = client.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(versions(*r).size(), 1u);
  EXPECT_TRUE(versions(*r).count("b"));
  EXPECT_EQ(removed(*r), (std::set<std::string>{"gone"}));
}

TEST_F(AdsDeltaTest, NackIsRecordedAndNotResent) {
  cache_.setSnapshot(kNode, clusters("v1", {{"a", 100}}));
  DeltaClient client(port_, true);
  ASSERT_TRUE(client.send(request(kClusterType, {}, {}, kNode)));
  auto r = client.read();
  ASSERT_TRUE(r);
  auto nack = ack(*r);
  nack.mutable_error_detail()->set_code(3);
  nack.mutable_error_detail()->set_message("a: bad timeout");
  ASSERT_TRUE(client.send(nack));
  ASSERT_TRUE(waitFor([&] { return nacks_.size() == 1; }));
  EXPECT_EQ(nacks_[0].error_detail, "a: bad timeout");
  EXPECT_EQ(nacks_[0].version, "v1");
  auto st = typeStatus(kNode, kClusterType);
  EXPECT_EQ(st->state, SyncState::kError);
  EXPECT_EQ(st->error_message, "a: bad timeout");
  EXPECT_FALSE(client.read(300ms));

  cache_.setSnapshot(kNode, clusters("v2", {{"a", 120}}));
  auto fixed = client.read();
  ASSERT_TRUE(fixed);
  EXPECT_EQ(fixed->system_version_info(), "v2");
  ASSERT_TRUE(client.send(ack(*fixed)));
  ASSERT_TRUE(waitFor([&] { return acks_.size() == 1; }));
  EXPECT_EQ(typeStatus(kNode, kClusterType)->state, SyncState::kSynced);
  auto status = server_->status();
  ASSERT_EQ(status.size(), 1u);
  EXPECT_TRUE(status[0].delta);
}

TEST_F(AdsDeltaTest, WildcardOnAnEmptyTypeAnswersOnceAndStaleNonceStillSubscribes) {
  Snapshot s;
  s.setVersion(kListenerType, "l0");  // declared, no listeners
  s.setVersion(kRouteType, "r0");
  ASSERT_TRUE(s.add(makeRoute("r1", "c1")));
  cache_.setSnapshot(kNode, s);
  DeltaClient client(port_, true);
  ASSERT_TRUE(client.send(request(kListenerType, {}, {}, kNode)));
  auto r = client.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->resources_size(), 0);
  EXPECT_EQ(r->system_version_info(), "l0");
  // A request carrying an unknown nonce still changes the subscription (delta is incremental).
  auto sub = request(kRouteType, {"r1"});
  sub.set_response_nonce("12345");
  ASSERT_TRUE(client.send(sub));
  auto routes = client.read();
  ASSERT_TRUE(routes);
  EXPECT_EQ(routes->type_url(), kRouteType);
  EXPECT_TRUE(versions(*routes).count("r1"));
  EXPECT_TRUE(nacks_.empty() && acks_.empty());
}

TEST_F(AdsDeltaTest, ExplicitWildcardOnEdsAndDroppingIt) {
  Snapshot s;
  s.setVersion(kEndpointType, "e1");
  ASSERT_TRUE(s.add(makeCla("x", "10.2.0.1", 80)));
  ASSERT_TRUE(s.add(makeCla("y", "10.2.0.2", 80)));
  cache_.setSnapshot(kNode, s);
  DeltaClient client(port_, true);
  ASSERT_TRUE(client.send(request(kEndpointType, {"*", "x"}, {}, kNode)));
  auto r = client.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(versions(*r).size(), 2u);  // "*" works for any type
  ASSERT_TRUE(client.send(ack(*r)));
  // Drop the wildcard, keep x: y is forgotten, and a change to y is no longer pushed.
  ASSERT_TRUE(client.send(request(kEndpointType, {}, {"*"})));
  ASSERT_TRUE(waitForStatus(kNode, kEndpointType, [](const TypeStatus& t) { return !t.wildcard; }));
  ASSERT_TRUE(s.add(makeCla("y", "10.2.0.2", 81)));
  cache_.setSnapshot(kNode, s);
  EXPECT_FALSE(client.read(300ms));
  ASSERT_TRUE(s.add(makeCla("x", "10.2.0.1", 81)));
  cache_.setSnapshot(kNode, s);
  auto x = client.read();
  ASSERT_TRUE(x);
  EXPECT_EQ(versions(*x).size(), 1u);
  EXPECT_TRUE(versions(*x).count("x"));
}

}  // namespace
}  // namespace mast::control::xds::testing
