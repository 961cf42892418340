// State-of-the-world ADS over real gRPC on loopback: a C++ client with the generated stub.
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include <set>

#include "control/xds/ads_fixture.h"

namespace mast::control::xds::testing {
namespace {

using discovery::DiscoveryRequest;
using discovery::DiscoveryResponse;
using envoy::config::cluster::v3::Cluster;
using envoy::config::endpoint::v3::ClusterLoadAssignment;
using envoy::config::listener::v3::Listener;
using envoy::config::route::v3::RouteConfiguration;

const std::string kNode = "sidecar~10.0.0.1~reviews-v1.default~default.svc.cluster.local";

std::string nameOf(const google::protobuf::Any& any) {
  Cluster c;
  ClusterLoadAssignment cla;
  Listener l;
  RouteConfiguration r;
  if (any.UnpackTo(&c) && any.Is<Cluster>()) return c.name();
  if (any.Is<ClusterLoadAssignment>() && any.UnpackTo(&cla)) return cla.cluster_name();
  if (any.Is<Listener>() && any.UnpackTo(&l)) return l.name();
  if (any.Is<RouteConfiguration>() && any.UnpackTo(&r)) return r.name();
  return "?";
}

std::set<std::string> names(const DiscoveryResponse& resp) {
  std::set<std::string> out;
  for (const auto& any : resp.resources()) out.insert(nameOf(any));
  return out;
}

// Clusters c1, c2 (EDS), their endpoints, listener l1 → route r1 → c1; every type at `version`.
Snapshot makeSnapshot(const std::string& version, int c2_port = 8002) {
  Snapshot s;
  for (auto type : {kClusterType, kEndpointType, kListenerType, kRouteType}) {
    s.setVersion(type, version);
  }
  EXPECT_TRUE(s.add(makeEdsCluster("c1")));
  EXPECT_TRUE(s.add(makeEdsCluster("c2")));
  EXPECT_TRUE(s.add(makeCla("c1", "10.1.0.1", 8001)));
  EXPECT_TRUE(s.add(makeCla("c2", "10.1.0.2", c2_port)));
  EXPECT_TRUE(s.add(makeApiListener("l1", "r1")));
  EXPECT_TRUE(s.add(makeRoute("r1", "c1")));
  return s;
}

DiscoveryRequest request(std::string_view type, std::vector<std::string> resource_names = {},
                         const std::string& node_id = {}) {
  DiscoveryRequest r;
  r.set_type_url(std::string(type));
  for (auto& n : resource_names) r.add_resource_names(n);
  if (!node_id.empty()) *r.mutable_node() = makeNode(node_id);
  return r;
}

DiscoveryRequest ack(const DiscoveryResponse& resp, std::vector<std::string> resource_names = {}) {
  DiscoveryRequest r = request(resp.type_url(), std::move(resource_names));
  r.set_version_info(resp.version_info());
  r.set_response_nonce(resp.nonce());
  return r;
}

DiscoveryRequest nack(const DiscoveryResponse& resp, const std::string& accepted_version,
                      const std::string& message, std::vector<std::string> resource_names = {}) {
  DiscoveryRequest r = request(resp.type_url(), std::move(resource_names));
  r.set_version_info(accepted_version);
  r.set_response_nonce(resp.nonce());
  r.mutable_error_detail()->set_code(3);
  r.mutable_error_detail()->set_message(message);
  return r;
}

class AdsSotwTest : public AdsFixture {};

TEST_F(AdsSotwTest, WildcardCdsLdsAndNamedEdsRdsReachSynced) {
  cache_.setSnapshot(kNode, makeSnapshot("v1"));
  SotwClient client(port_, false);

  ASSERT_TRUE(client.send(request(kClusterType, {}, kNode)));
  auto cds = client.read();
  ASSERT_TRUE(cds);
  EXPECT_EQ(cds->type_url(), kClusterType);
  EXPECT_EQ(cds->version_info(), "v1");
  EXPECT_FALSE(cds->nonce().empty());
  EXPECT_EQ(names(*cds), (std::set<std::string>{"c1", "c2"}));
  auto st = typeStatus(kNode, kClusterType);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, SyncState::kStale);  // sent, not yet acknowledged
  EXPECT_TRUE(st->wildcard);

  ASSERT_TRUE(client.send(ack(*cds)));
  ASSERT_TRUE(client.send(request(kEndpointType, {"c1"})));
  auto eds = client.read();
  ASSERT_TRUE(eds);
  EXPECT_EQ(eds->type_url(), kEndpointType);
  EXPECT_EQ(names(*eds), (std::set<std::string>{"c1"}));  // only what was asked for
  ASSERT_TRUE(client.send(ack(*eds, {"c1"})));

  ASSERT_TRUE(client.send(request(kListenerType)));
  auto lds = client.read();
  ASSERT_TRUE(lds);
  EXPECT_EQ(names(*lds), (std::set<std::string>{"l1"}));
  ASSERT_TRUE(client.send(ack(*lds)));
  ASSERT_TRUE(client.send(request(kRouteType, {"r1"})));
  auto rds = client.read();
  ASSERT_TRUE(rds);
  EXPECT_EQ(names(*rds), (std::set<std::string>{"r1"}));
  ASSERT_TRUE(client.send(ack(*rds, {"r1"})));

  ASSERT_TRUE(waitFor([&] { return acks_.size() == 4; }));
  // ACKs cause no further responses.
  EXPECT_FALSE(client.read(300ms));
  for (auto type : {kClusterType, kEndpointType, kListenerType, kRouteType}) {
    auto s = typeStatus(kNode, type);
    ASSERT_TRUE(s) << type;
    EXPECT_EQ(s->state, SyncState::kSynced) << type;
    EXPECT_EQ(s->acked_version, "v1");
    EXPECT_EQ(s->sent_version, "v1");
    EXPECT_EQ(s->acked_nonce, s->sent_nonce);
    EXPECT_EQ(syncStateName(s->state), "SYNCED");
  }
  auto m = server_->metrics();
  EXPECT_EQ(m.connected_streams, 1u);
  EXPECT_EQ(m.pushes_total, 4u);
  EXPECT_EQ(m.acks_total, 4u);
  EXPECT_EQ(m.pushes_by_type[std::string(kClusterType)], 1u);

  ASSERT_EQ(connected_.size(), 1u);
  EXPECT_EQ(connected_[0].type, ProxyType::kSidecar);
  EXPECT_EQ(connected_[0].ip, "10.0.0.1");
  EXPECT_EQ(connected_[0].name, "reviews-v1");
  EXPECT_EQ(connected_[0].namespace_, "default");
}

TEST_F(AdsSotwTest, NackIsRecordedAndNotResentUntilTheSnapshotChanges) {
  cache_.setSnapshot(kNode, makeSnapshot("v1"));
  SotwClient client(port_, false);
  ASSERT_TRUE(client.send(request(kClusterType, {}, kNode)));
  auto v1 = client.read();
  ASSERT_TRUE(v1);
  ASSERT_TRUE(client.send(nack(*v1, "", "cluster c2: unsupported lb_policy")));

  ASSERT_TRUE(waitFor([&] { return nacks_.size() == 1; }));
  EXPECT_EQ(nacks_[0].node_id, kNode);
  EXPECT_EQ(nacks_[0].type_url, kClusterType);
  EXPECT_EQ(nacks_[0].version, "v1");
  EXPECT_EQ(nacks_[0].error_detail, "cluster c2: unsupported lb_policy");
  auto st = typeStatus(kNode, kClusterType);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, SyncState::kError);
  EXPECT_EQ(st->error_message, "cluster c2: unsupported lb_policy");
  EXPECT_EQ(st->nacked_version, "v1");
  EXPECT_EQ(st->acked_version, "");
  EXPECT_EQ(server_->metrics().nacks_by_type[std::string(kClusterType)], 1u);
  std::string table = formatStatusTable(server_->status());
  EXPECT_NE(table.find("PROXY"), std::string::npos) << table;
  EXPECT_NE(table.find(kNode + "   1 sotw   ERROR v1"), std::string::npos) << table;
  EXPECT_NE(table.find("CDS rejected v1: cluster c2: unsupported lb_policy"), std::string::npos)
      << table;

  // Not re-sent blindly: nothing arrives, and setting an identical snapshot changes nothing.
  EXPECT_FALSE(client.read(300ms));
  cache_.setSnapshot(kNode, makeSnapshot("v1"));
  EXPECT_FALSE(client.read(300ms));

  // A new snapshot is pushed with a new version and nonce; its ACK clears the error.
  cache_.setSnapshot(kNode, makeSnapshot("v2"));
  auto v2 = client.read();
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->version_info(), "v2");
  EXPECT_NE(v2->nonce(), v1->nonce());
  ASSERT_TRUE(client.send(ack(*v2)));
  ASSERT_TRUE(waitFor([&] { return acks_.size() == 1; }));
  st = typeStatus(kNode, kClusterType);
  EXPECT_EQ(st->state, SyncState::kSynced);
  EXPECT_EQ(st->acked_version, "v2");
  EXPECT_EQ(st->error_message, "");
}

TEST_F(AdsSotwTest, OnlyChangedTypesArePushedInCdsEdsLdsRdsOrder) {
  cache_.setSnapshot(kNode, makeSnapshot("v1"));
  SotwClient client(port_, false);
  // Subscribe in the "wrong" order; each initial response follows its request.
  ASSERT_TRUE(client.send(request(kRouteType, {"r1"}, kNode)));
  ASSERT_TRUE(client.send(request(kListenerType)));
  ASSERT_TRUE(client.send(request(kEndpointType, {"c1", "c2"})));
  ASSERT_TRUE(client.send(request(kClusterType)));
  std::map<std::string, DiscoveryResponse> initial;
  for (int i = 0; i < 4; ++i) {
    auto r = client.read();
    ASSERT_TRUE(r);
    initial[r->type_url()] = *r;
  }
  ASSERT_EQ(initial.size(), 4u);
  for (auto& [type, r] : initial) {
    ASSERT_TRUE(client.send(ack(r, type == kRouteType      ? std::vector<std::string>{"r1"}
                                   : type == kEndpointType ? std::vector<std::string>{"c1", "c2"}
                                                           : std::vector<std::string>{})));
  }
  ASSERT_TRUE(waitFor([&] { return acks_.size() == 4; }));

  // Change everything at once: the pushes come in the safe order.
  cache_.setSnapshot(kNode, makeSnapshot("v2", 9002));
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) {
    auto r = client.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->version_info(), "v2");
    order.push_back(r->type_url());
  }
  EXPECT_EQ(order, (std::vector<std::string>{std::string(kClusterType), std::string(kEndpointType),
                                             std::string(kListenerType), std::string(kRouteType)}));

  // Only EDS changes (same versions elsewhere): only EDS is pushed.
  Snapshot s = makeSnapshot("v2", 9002);
  s.setVersion(kEndpointType, "v3");
  ASSERT_TRUE(s.add(makeCla("c2", "10.1.0.2", 9003)));
  cache_.setSnapshot(kNode, std::move(s));
  auto eds = client.read();
  ASSERT_TRUE(eds);
  EXPECT_EQ(eds->type_url(), kEndpointType);
  EXPECT_EQ(eds->version_info(), "v3");
  EXPECT_EQ(names(*eds), (std::set<std::string>{"c2"}));  // EDS: only what changed
  EXPECT_FALSE(client.read(300ms));
}

TEST_F(AdsSotwTest, EdsResponsesCarryOnlyWhatTheClientDoesNotHave) {
  auto snapshot = [](const std::string& version, int c1_port, int c2_port) {
    Snapshot s;
    s.setVersion(kEndpointType, version);
    EXPECT_TRUE(s.add(makeCla("c1", "10.1.0.1", c1_port)));
    EXPECT_TRUE(s.add(makeCla("c2", "10.1.0.2", c2_port)));
    EXPECT_TRUE(s.add(makeCla("c3", "10.1.0.3", 8003)));
    return s;
  };
  cache_.setSnapshot(kNode, snapshot("v1", 8001, 8002));
  SotwClient client(port_, false);
  ASSERT_TRUE(client.send(request(kEndpointType, {"c1", "c2"}, kNode)));
  auto first = client.read();
  ASSERT_TRUE(first);
  EXPECT_EQ(names(*first), (std::set<std::string>{"c1", "c2"}));  // the first one is whole
  ASSERT_TRUE(client.send(ack(*first, {"c1", "c2"})));

  // One CLA changed: only it is sent.
  cache_.setSnapshot(kNode, snapshot("v2", 8001, 9002));
  auto second = client.read();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->version_info(), "v2");
  EXPECT_EQ(names(*second), (std::set<std::string>{"c2"}));
  ASSERT_TRUE(client.send(ack(*second, {"c1", "c2"})));

  // A new version with nothing new for this client: an empty response, so it can be ACKed.
  cache_.setSnapshot(kNode, snapshot("v3", 8001, 9002));
  auto third = client.read();
  ASSERT_TRUE(third);
  EXPECT_EQ(third->version_info(), "v3");
  EXPECT_EQ(third->resources_size(), 0);
  ASSERT_TRUE(client.send(ack(*third, {"c1", "c2"})));
  ASSERT_TRUE(waitFor([&] {
    auto st = typeStatus(kNode, kEndpointType);
    return st && st->state == SyncState::kSynced && st->acked_version == "v3";
  }));

  // A wider subscription gets the new name alone; a dropped name is sent again when it comes
  // back.
  ASSERT_TRUE(client.send(request(kEndpointType, {"c1", "c2", "c3"})));
  auto wider = client.read();
  ASSERT_TRUE(wider);
  EXPECT_EQ(names(*wider), (std::set<std::string>{"c3"}));
  ASSERT_TRUE(client.send(ack(*wider, {"c2", "c3"})));
  EXPECT_FALSE(client.read(300ms));  // c1 dropped: nothing to send
  ASSERT_TRUE(client.send(request(kEndpointType, {"c1", "c2", "c3"})));
  auto back = client.read();
  ASSERT_TRUE(back);
  EXPECT_EQ(names(*back), (std::set<std::string>{"c1"}));
}

TEST_F(AdsSotwTest, SharedBaseLayerIsSentWholeAndContentChangesUnderAFixedVersionArePushed) {
  // mastd's shape: most clusters in a base layer shared by many snapshots, a few of the
  // proxy's own on top. The owner here keeps one version string whatever the content.
  Snapshot shared;
  ASSERT_TRUE(shared.add(makeEdsCluster("b1")));
  ASSERT_TRUE(shared.add(makeEdsCluster("b2")));
  auto base = std::make_shared<ResourceSet>(shared.release(kClusterType));
  auto snapshot = [&](const std::string& own) {
    Snapshot s;
    s.setVersion(kClusterType, "fixed");
    s.setBase(kClusterType, base);
    EXPECT_TRUE(s.add(makeEdsCluster(own)));
    return s;
  };
  cache_.setSnapshot(kNode, snapshot("a1"));
  SotwClient client(port_, false);
  ASSERT_TRUE(client.send(request(kClusterType, {}, kNode)));
  auto first = client.read();
  ASSERT_TRUE(first);
  EXPECT_EQ(names(*first), (std::set<std::string>{"a1", "b1", "b2"}));
  ASSERT_TRUE(client.send(ack(*first)));
  ASSERT_TRUE(waitFor([&] { return acks_.size() == 1; }));

  // Equal content in a new snapshot object: nothing is sent.
  cache_.setSnapshot(kNode, snapshot("a1"));
  EXPECT_FALSE(client.read(300ms));
  // Other content, same version string: pushed, since the content is not what was sent.
  cache_.setSnapshot(kNode, snapshot("a2"));
  auto second = client.read();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->version_info(), "fixed");
  EXPECT_EQ(names(*second), (std::set<std::string>{"a2", "b1", "b2"}));
}

TEST_F(AdsSotwTest, StreamsOverOneBaseLayerEachGetTheirOwnSubscription) {
  // mastd's EDS without Sidecar scoping: every snapshot is only a shared base layer, and most
  // streams name the same resources (their selection is computed once and shared). Streams with
  // the same names and with other names must each get exactly their own.
  auto base = [](int c2_port, int c3_port) {
    Snapshot shared;
    EXPECT_TRUE(shared.add(makeCla("c1", "10.1.0.1", 8001)));
    EXPECT_TRUE(shared.add(makeCla("c2", "10.1.0.2", c2_port)));
    EXPECT_TRUE(shared.add(makeCla("c3", "10.1.0.3", c3_port)));
    return std::make_shared<ResourceSet>(shared.release(kEndpointType));
  };
  const std::vector<std::string> nodes = {"node-a", "node-b", "node-c"};
  auto publish = [&](const std::string& version, std::shared_ptr<ResourceSet> layer) {
    for (const auto& n : nodes) {
      Snapshot s;
      s.setVersion(kEndpointType, version);
      s.setBase(kEndpointType, layer);
      cache_.setSnapshot(n, std::move(s));
    }
  };
  publish("v1", base(8002, 8003));
  std::vector<std::vector<std::string>> subs = {{"c1", "c2"}, {"c1", "c2"}, {"c2", "c3"}};
  std::vector<std::unique_ptr<SotwClient>> clients;
  for (size_t i = 0; i < nodes.size(); ++i) {
    clients.push_back(std::make_unique<SotwClient>(port_, false));
    ASSERT_TRUE(clients[i]->send(request(kEndpointType, subs[i], nodes[i])));
    auto r = clients[i]->read();
    ASSERT_TRUE(r);
    EXPECT_EQ(names(*r), std::set<std::string>(subs[i].begin(), subs[i].end())) << nodes[i];
    ASSERT_TRUE(clients[i]->send(ack(*r, subs[i])));
  }
  // c3 changes: only the third stream has it; the others get an empty response to ACK.
  publish("v2", base(8002, 9003));
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto r = clients[i]->read();
    ASSERT_TRUE(r) << nodes[i];
    EXPECT_EQ(r->version_info(), "v2");
    EXPECT_EQ(names(*r), i == 2 ? std::set<std::string>{"c3"} : std::set<std::string>{})
        << nodes[i];
    ASSERT_TRUE(clients[i]->send(ack(*r, subs[i])));
  }
  // c2 changes: every stream gets c2 alone.
  publish("v3", base(9002, 9003));
  for (size_t i = 0; i < nodes.size(); ++i) {
    auto r = clients[i]->read();
    ASSERT_TRUE(r) << nodes[i];
    EXPECT_EQ(names(*r), std::set<std::string>{"c2"}) << nodes[i];
    ASSERT_TRUE(clients[i]->send(ack(*r, subs[i])));
  }
  // The second stream widens its subscription: it alone gets c3.
  ASSERT_TRUE(clients[1]->send(request(kEndpointType, {"c1", "c2", "c3"})));
  auto wider = clients[1]->read();
  ASSERT_TRUE(wider);
  EXPECT_EQ(names(*wider), std::set<std::string>{"c3"});
  EXPECT_FALSE(clients[0]->read(300ms));
}

TEST_F(AdsSotwTest, ResponsesCarryEachResourceByteForByteWhateverItsSize) {
  // Responses are assembled from pre-encoded resources: tiny ones copied together, larger ones
  // referenced. Mixed sizes over a shared base layer must arrive whole, in name order.
  auto bigCla = [](const std::string& name, int endpoints) {
    ClusterLoadAssignment cla;
    cla.set_cluster_name(name);
    auto* locality = cla.add_endpoints();
    for (int i = 0; i < endpoints; ++i) {
      auto* a = locality->add_lb_endpoints()->mutable_endpoint()->mutable_address();
      a->mutable_socket_address()->set_address("10.2." + std::to_string(i / 200) + "." +
                                               std::to_string(i % 200));
      a->mutable_socket_address()->set_port_value(9080);
    }
    return cla;
  };
  Snapshot shared;
  std::vector<std::string> wanted;
  for (int i = 0; i < 200; ++i) {
    std::string name = "b" + std::to_string(1000 + i);
    ClusterLoadAssignment tiny;
    tiny.set_cluster_name(name);
    ASSERT_TRUE(shared.add(i % 3 == 0 ? bigCla(name, i * 20) : tiny));
    wanted.push_back(name);
  }
  auto base = std::make_shared<ResourceSet>(shared.release(kEndpointType));
  Snapshot s;
  s.setVersion(kEndpointType, "v1");
  s.setBase(kEndpointType, base);
  ASSERT_TRUE(s.add(bigCla("a-own", 3000)));
  ASSERT_TRUE(s.add(bigCla("b1003", 7)));  // hides the base's b1003
  wanted.push_back("a-own");
  cache_.setSnapshot(kNode, s);

  SotwClient client(port_, false);
  ASSERT_TRUE(client.send(request(kEndpointType, wanted, kNode)));
  auto eds = client.read();
  ASSERT_TRUE(eds);
  EXPECT_EQ(eds->version_info(), "v1");
  EXPECT_EQ(eds->type_url(), kEndpointType);
  std::vector<std::string> expected;
  s.find(kEndpointType)->forEach([&](const Resource& r) { expected.push_back(r.any->value()); });
  ASSERT_EQ(eds->resources_size(), static_cast<int>(expected.size()));
  for (int i = 0; i < eds->resources_size(); ++i) {
    EXPECT_EQ(eds->resources(i).type_url(), kEndpointType) << i;
    EXPECT_EQ(eds->resources(i).value(), expected[i]) << i;
  }
  EXPECT_EQ(nameOf(eds->resources(1)), "b1000");
  ClusterLoadAssignment hidden;
  ASSERT_TRUE(eds->resources(4).UnpackTo(&hidden));
  EXPECT_EQ(hidden.cluster_name(), "b1003");
  EXPECT_EQ(hidden.endpoints(0).lb_endpoints_size(), 7);
}

TEST_F(AdsSotwTest, StaleNoncesAreIgnored) {
  cache_.setSnapshot(kNode, makeSnapshot("v1"));
  SotwClient client(port_, false);
  ASSERT_TRUE(client.send(request(kClusterType, {}, kNode)));
  auto v1 = client.read();
  ASSERT_TRUE(v1);
  cache_.setSnapshot(kNode, makeSnapshot("v2"));
  auto v2 = client.read();
  ASSERT_TRUE(v2);
  // A NACK of the older response arrives late: ignored (no error recorded, nothing sent).
  ASSERT_TRUE(client.send(nack(*v1, "", "late complaint")));
  ASSERT_TRUE(client.send(ack(*v2)));
  ASSERT_TRUE(waitFor([&] { return acks_.size() == 1; }));
  EXPECT_TRUE(nacks_.empty());
  auto st = typeStatus(kNode, kClusterType);
  EXPECT_EQ(st->state, SyncState::kSynced);
  EXPECT_EQ(st->acked_version, "v2");
  EXPECT_FALSE(client.read(300ms));
}

TEST_F(AdsSotwTest, EmptyEdsNamesUnsubscribeAndResubscribingResends) {
  cache_.setSnapshot(kNode, makeSnapshot("v1"));
  SotwClient client(port_, false);
  ASSERT_TRUE(client.send(request(kEndpointType, {"c1", "c2"}, kNode)));
  auto r = client.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(names(*r), (std::set<std::string>{"c1", "c2"}));
  // Unsubscribe from everything (gRPC's way): not a wildcard, nothing is sent back.
  ASSERT_TRUE(client.send(ack(*r, {})));
  ASSERT_TRUE(waitForStatus(kNode, kEndpointType, [](const TypeStatus& t) {
    return t.state == SyncState::kSynced && t.subscribed == 0;
  }));
  EXPECT_FALSE(client.read(300ms));
  cache_.setSnapshot(kNode, makeSnapshot("v2", 9002));
  EXPECT_FALSE(client.read(300ms));
  auto st = typeStatus(kNode, kEndpointType);
  EXPECT_EQ(st->subscribed, 0u);
  EXPECT_FALSE(st->wildcard);
  // Subscribe again: the resource is sent again even though it did not change since.
  ASSERT_TRUE(client.send(ack(*r, {"c2"})));
  auto again = client.read();
  ASSERT_TRUE(again);
  EXPECT_EQ(names(*again), (std::set<std::string>{"c2"}));
  EXPECT_EQ(again->version_info(), "v2");
  ClusterLoadAssignment cla;
  ASSERT_TRUE(again->resources(0).UnpackTo(&cla));
  EXPECT_EQ(cla.endpoints(0).lb_endpoints(0).endpoint().address().socket_address().port_value(),
            9002u);
}

TEST_F(AdsSotwTest, NamedLdsSubscriptionGetsOnlyThoseAndEmptyWhenMissing) {
  cache_.setSnapshot(kNode, makeSnapshot("v1"));
  SotwClient client(port_, false);
  // gRPC subscribes LDS/CDS by name; the answer lists exactly what exists of those.
  ASSERT_TRUE(client.send(request(kListenerType, {"nope"}, kNode)));
  auto r = client.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->resources_size(), 0);  // SotW LDS: absent from the response = does not exist
  ASSERT_TRUE(client.send(ack(*r, {"nope", "l1"})));
  auto r2 = client.read();
  ASSERT_TRUE(r2);
  EXPECT_EQ(names(*r2), (std::set<std::string>{"l1"}));
}

TEST_F(AdsSotwTest, TwoProxiesGetTheirOwnSnapshotsAndDisconnectIsReported) {
  const std::string other =
      "router~10.0.0.9~ingress-abc.istio-system~istio-system.svc.cluster.local";
  cache_.setSnapshot(kNode, makeSnapshot("a1"));
  Snapshot s;
  s.setVersion(kClusterType, "b1");
  ASSERT_TRUE(s.add(makeEdsCluster("ingress-only")));
  cache_.setSnapshot(other, std::move(s));

  SotwClient a(port_, false);
  SotwClient b(port_, false);
  ASSERT_TRUE(a.send(request(kClusterType, {}, kNode)));
  ASSERT_TRUE(b.send(request(kClusterType, {}, other)));
  auto ra = a.read();
  auto rb = b.read();
  ASSERT_TRUE(ra && rb);
  EXPECT_EQ(ra->version_info(), "a1");
  EXPECT_EQ(names(*ra), (std::set<std::string>{"c1", "c2"}));
  EXPECT_EQ(rb->version_info(), "b1");
  EXPECT_EQ(names(*rb), (std::set<std::string>{"ingress-only"}));

  // A change for one node reaches only that node.
  cache_.setSnapshot(kNode, makeSnapshot("a2"));
  auto ra2 = a.read();
  ASSERT_TRUE(ra2);
  EXPECT_EQ(ra2->version_info(), "a2");
  EXPECT_FALSE(b.read(300ms));

  ASSERT_TRUE(waitFor([&] { return connected_.size() == 2; }));
  EXPECT_EQ(server_->metrics().connected_streams, 2u);
  EXPECT_EQ(server_->metrics().connected_proxies, 2u);
  EXPECT_EQ(server_->status().size(), 2u);
  b.close();
  ASSERT_TRUE(waitFor([&] { return disconnected_.size() == 1; }));
  EXPECT_EQ(disconnected_[0], other);
  EXPECT_EQ(server_->metrics().connected_streams, 1u);
  EXPECT_EQ(server_->metrics().connected_proxies, 1u);
  auto status = server_->status();
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].proxy.id, kNode);
  auto router = std::find_if(connected_.begin(), connected_.end(),
                             [&](const ProxyInfo& p) { return p.id == other; });
  ASSERT_NE(router, connected_.end());
  EXPECT_EQ(router->type, ProxyType::kRouter);
  EXPECT_EQ(router->namespace_, "istio-system");
}

TEST_F(AdsSotwTest, RequestsWaitForASnapshotAndOneSetInOnConnectedIsSentFirst) {
  // No snapshot yet: the request waits; the owner computes one when the proxy connects.
  connect_hook_ = [this](const ProxyInfo& p) -> Status {
    cache_.setSnapshot(p.id, makeSnapshot("computed"));
    return {};
  };
  SotwClient client(port_, false);
  ASSERT_TRUE(client.send(request(kClusterType, {}, kNode)));
  auto r = client.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->version_info(), "computed");

  // A node without a snapshot waits (nothing sent), then gets it when it is set.
  connect_hook_ = nullptr;
  const std::string late = "sidecar~10.0.0.2~late.default~default.svc.cluster.local";
  SotwClient waiting(port_, false);
  ASSERT_TRUE(waiting.send(request(kClusterType, {}, late)));
  ASSERT_TRUE(waitForStatus(late, kClusterType, [](const TypeStatus& t) { return t.wildcard; }));
  EXPECT_FALSE(waiting.read(300ms));
  EXPECT_EQ(typeStatus(late, kClusterType)->state, SyncState::kNotSent);
  cache_.setSnapshot(late, makeSnapshot("late1"));
  auto lr = waiting.read();
  ASSERT_TRUE(lr);
  EXPECT_EQ(lr->version_info(), "late1");
}

TEST_F(AdsSotwTest, StreamsWithoutNodeOrRefusedByTheOwnerAreFinished) {
  SotwClient no_node(port_, false);
  ASSERT_TRUE(no_node.send(request(kClusterType)));
  auto st = no_node.waitEnd();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  connect_hook_ = [](const ProxyInfo& p) -> Status {
    if (!p.istio_id) return Error{"unknown proxy id " + p.id};
    return {};
  };
  SotwClient refused(port_, false);
  ASSERT_TRUE(refused.send(request(kClusterType, {}, "just-a-name")));
  st = refused.waitEnd();
  ASSERT_TRUE(st);
  EXPECT_EQ(st->error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(st->error_message(), "unknown proxy id just-a-name");
  EXPECT_EQ(server_->metrics().streams_rejected, 2u);
  EXPECT_EQ(server_->metrics().connected_streams, 0u);
  EXPECT_TRUE(disconnected_.empty());  // never accepted, so never "disconnected"
}

TEST_F(AdsSotwTest, StopClosesOpenStreamsPromptly) {
  cache_.setSnapshot(kNode, makeSnapshot("v1"));
  SotwClient a(port_, false);
  SotwClient b(port_, false);
  ASSERT_TRUE(a.send(request(kClusterType, {}, kNode)));
  ASSERT_TRUE(b.send(request(kListenerType, {}, kNode)));
  ASSERT_TRUE(a.read());
  ASSERT_TRUE(b.read());
  auto t0 = std::chrono::steady_clock::now();
  server_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  auto sa = a.waitEnd();
  auto sb = b.waitEnd();
  ASSERT_TRUE(sa && sb);
  EXPECT_EQ(sa->error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(sb->error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(disconnected_.size(), 2u);  // reported before stop() returned
  // Snapshot changes after stop are harmless.
  cache_.setSnapshot(kNode, makeSnapshot("v2"));
}

TEST_F(AdsSotwTest, BurstsOfSnapshotsMergeAndTheLastOneWins) {
  cache_.setSnapshot(kNode, makeSnapshot("v0"));
  SotwClient client(port_, false);
  ASSERT_TRUE(client.send(request(kClusterType, {}, kNode)));
  auto first = client.read();
  ASSERT_TRUE(first);
  // 300 snapshots as fast as possible from another thread, while the client is ACKing.
  const int kLast = 300;
  std::thread setter([&] {
    for (int i = 1; i <= kLast; ++i) {
      Snapshot s;
      s.setVersion(kClusterType, std::to_string(i));
      EXPECT_TRUE(s.add(makeEdsCluster("c" + std::to_string(i % 7))));
      cache_.setSnapshot(kNode, std::move(s));
    }
  });
  int last_seen = 0, responses = 0;
  while (last_seen != kLast) {
    auto r = client.read(5000ms);
    if (!r) break;
    ++responses;
    int v = std::stoi(r->version_info());
    EXPECT_GT(v, last_seen) << "an older snapshot was pushed after a newer one";
    last_seen = v;
    EXPECT_EQ(r->resources_size(), 1);
    client.send(ack(*r));
  }
  setter.join();
  EXPECT_EQ(last_seen, kLast);
  EXPECT_LE(responses, kLast);
  std::printf("%d snapshots → %d responses\n", kLast, responses);
  EXPECT_TRUE(waitForStatus(kNode, kClusterType, [&](const TypeStatus& t) {
    return t.state == SyncState::kSynced && t.acked_version == std::to_string(kLast);
  }));
}

// AdsService on the owner's own grpc::Server (sharing a port with other services).
TEST(AdsServiceTest, RegistersOnAnExternalServerBuilder) {
  SnapshotCache cache;
  Snapshot snap;
  snap.setVersion(kClusterType, "ext1");
  ASSERT_TRUE(snap.add(makeEdsCluster("c1")));
  cache.setSnapshot(kNode, std::move(snap));
  AdsService service(cache, {});
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(service.grpcService());
  auto server = builder.BuildAndStart();
  ASSERT_TRUE(server);
  ASSERT_GT(port, 0);
  {
    SotwClient client(port, false);
    ASSERT_TRUE(client.send(request(kClusterType, {}, kNode)));
    auto r = client.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->version_info(), "ext1");
    EXPECT_EQ(service.metrics().connected_proxies, 1u);
    // The owner's shutdown sequence: streams first, then the server.
    service.shutdown();
    auto st = client.waitEnd();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  server->Shutdown(std::chrono::system_clock::now() + 1s);
  server->Wait();
  EXPECT_EQ(service.metrics().connected_streams, 0u);
}

}  // namespace
}  // namespace mast::control::xds::testing
