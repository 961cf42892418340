// A REAL independent xDS client against the ADS server: gRPC C++'s own xds resolver
// (`xds:///NAME`, bootstrap from GRPC_XDS_BOOTSTRAP) in this process, talking over loopback.
// It walks LDS (api_listener) → RDS → CDS → EDS, ACKs what it accepts, NACKs what it cannot
// use, and its calls go to tiny local gRPC backends served by a generic callback service.
// Own binary: the bootstrap is process-global and read once when the first xds channel is made.
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <future>

#include "control/xds/ads_fixture.h"

namespace mast::control::xds::testing {
namespace {

const std::string kTarget = "echo.mast.test";
const std::string kNodeId = "sidecar~127.0.0.1~echo-client-1.default~default.svc.cluster.local";

// Answers every unary call with "<name>:<request bytes>".
class EchoBackend : public grpc::CallbackGenericService {
 public:
  explicit EchoBackend(std::string name) : name_(std::move(name)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterCallbackGenericService(this);
    server_ = builder.BuildAndStart();
  }
  ~EchoBackend() override {
    server_->Shutdown(std::chrono::system_clock::now() + 1s);
    server_->Wait();
  }
  int port() const { return port_; }
  int calls() const { return calls_.load(); }

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    class Reactor : public grpc::ServerGenericBidiReactor {
     public:
      explicit Reactor(EchoBackend* backend) : backend_(backend) { StartRead(&req_); }
      void OnReadDone(bool ok) override {
        if (!ok) {
          Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request"));
          return;
        }
        std::vector<grpc::Slice> slices;
        (void)req_.Dump(&slices);
        std::string out = backend_->name_ + ":";
        for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
        grpc::Slice slice(out);
        resp_ = grpc::ByteBuffer(&slice, 1);
        backend_->calls_.fetch_add(1);
        StartWriteAndFinish(&resp_, grpc::WriteOptions(), grpc::Status::OK);
      }
      void OnDone() override { delete this; }

     private:
      EchoBackend* backend_;
      grpc::ByteBuffer req_, resp_;
    };
    return new Reactor(this);
  }

 private:
  std::string name_;
  int port_ = 0;
  std::atomic<int> calls_{0};
  std::unique_ptr<grpc::Server> server_;
};

// One unary call through the xds channel; "ERR <code>: <message>" on failure.
std::string callEcho(grpc::GenericStub& stub, const std::string& payload,
                     std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  ctx.set_wait_for_ready(true);
  grpc::Slice slice(payload);
  grpc::ByteBuffer req(&slice, 1), resp;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/mast.test.Echo/Say", grpc::StubOptions(), &req, &resp,
                 [&](grpc::Status s) { done.set_value(std::move(s)); });
  grpc::Status st = done.get_future().get();  // the deadline bounds this
  if (!st.ok()) return "ERR " + std::to_string(st.error_code()) + ": " + st.error_message();
  std::vector<grpc::Slice> slices;
  (void)resp.Dump(&slices);
  std::string out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// LDS api_listener → RDS → EDS cluster → endpoints at `backend_port`.
Snapshot echoSnapshot(const std::string& version, int backend_port, bool break_cluster = false) {
  Snapshot s;
  for (auto type : {kClusterType, kEndpointType, kListenerType, kRouteType}) {
    s.setVersion(type, version);
  }
  EXPECT_TRUE(s.add(makeApiListener(kTarget, "echo-route")));
  EXPECT_TRUE(s.add(makeRoute("echo-route", "echo-cluster")));
  auto cluster = makeEdsCluster("echo-cluster");
  // gRPC 1.51 supports only ROUND_ROBIN and RING_HASH: MAGLEV makes it reject the response.
  if (break_cluster) cluster.set_lb_policy(envoy::config::cluster::v3::Cluster::MAGLEV);
  EXPECT_TRUE(s.add(cluster));
  EXPECT_TRUE(s.add(makeCla("echo-cluster", "127.0.0.1", backend_port)));
  return s;
}

class GrpcXdsClientTest : public AdsFixture {};

TEST_F(GrpcXdsClientTest, GrpcResolverWalksLdsRdsCdsEdsCallsGoThroughAndNacksAreRecorded) {
  EchoBackend b1("b1"), b2("b2");
  ASSERT_GT(b1.port(), 0);
  ASSERT_GT(b2.port(), 0);

  std::string bootstrap =
      ::testing::TempDir() + "/mast_xds_bootstrap_" + std::to_string(::getpid()) + ".json";
  {
    std::ofstream f(bootstrap);
    f << R"({"xds_servers":[{"server_uri":"127.0.0.1:)" << port_
      << R"(","channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],)"
      << R"("node":{"id":")" << kNodeId << R"(","cluster":"echo-client",)"
      << R"("locality":{"region":"local"},"metadata":{"GENERATOR":"grpc","NAMESPACE":"default"}}})";
  }
  ::setenv("GRPC_XDS_BOOTSTRAP", bootstrap.c_str(), 1);

  cache_.setSnapshot(kNodeId, echoSnapshot("v1", b1.port()));
  auto channel = grpc::CreateChannel("xds:///" + kTarget, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);

  EXPECT_EQ(callEcho(stub, "hello", 20s), "b1:hello");
  EXPECT_EQ(b1.calls(), 1);

  // The client walked the chain: first ACK per type in LDS, RDS, CDS, EDS order.
  ASSERT_TRUE(waitFor([&] { return acks_.size() >= 4; }));
  std::vector<std::string> first_acks;
  {
    std::lock_guard lock(mu_);
    for (const auto& a : acks_) {
      if (std::find(first_acks.begin(), first_acks.end(), a.type_url) == first_acks.end()) {
        first_acks.push_back(a.type_url);
      }
      EXPECT_EQ(a.node_id, kNodeId);
      EXPECT_EQ(a.version, "v1");
    }
    ASSERT_EQ(connected_.size(), 1u);
    EXPECT_TRUE(connected_[0].proxyless);
    EXPECT_EQ(connected_[0].namespace_, "default");
    EXPECT_NE(connected_[0].user_agent.find("gRPC"), std::string::npos) << connected_[0].user_agent;
  }
  EXPECT_EQ(first_acks,
            (std::vector<std::string>{std::string(kListenerType), std::string(kRouteType),
                                      std::string(kClusterType), std::string(kEndpointType)}));
  for (auto type : {kListenerType, kRouteType, kClusterType, kEndpointType}) {
    auto st = typeStatus(kNodeId, type);
    ASSERT_TRUE(st) << type;
    EXPECT_EQ(st->state, SyncState::kSynced) << type;
    EXPECT_EQ(st->acked_version, "v1") << type;
  }
  auto lds = typeStatus(kNodeId, kListenerType);
  EXPECT_EQ(lds->subscribed, 1u);  // gRPC subscribes LDS by name, not wildcard
  EXPECT_FALSE(lds->wildcard);

  // An invalid cluster: gRPC NACKs it with a precise reason; recorded, calls keep working on
  // the last good config, and the bad version is not re-sent.
  cache_.setSnapshot(kNodeId, echoSnapshot("v2", b1.port(), /*break_cluster=*/true));
  ASSERT_TRUE(waitFor([&] { return !nacks_.empty(); }, 10s));
  {
    std::lock_guard lock(mu_);
    EXPECT_EQ(nacks_[0].type_url, kClusterType);
    EXPECT_EQ(nacks_[0].version, "v2");
    EXPECT_FALSE(nacks_[0].error_detail.empty());
    std::printf("gRPC's NACK: %s\n", nacks_[0].error_detail.c_str());
  }
  auto cds = typeStatus(kNodeId, kClusterType);
  EXPECT_EQ(cds->state, SyncState::kError);
  EXPECT_EQ(cds->nacked_version, "v2");
  EXPECT_EQ(cds->acked_version, "v1");
  EXPECT_FALSE(cds->error_message.empty());
  uint64_t cds_pushes = cds->pushes;
  EXPECT_EQ(callEcho(stub, "still", 10s), "b1:still");

  // A fixed snapshot moving the endpoints to b2: the client follows the push.
  cache_.setSnapshot(kNodeId, echoSnapshot("v3", b2.port()));
  std::string got;
  for (int i = 0; i < 100; ++i) {
    got = callEcho(stub, "moved", 5s);
    if (got == "b2:moved") break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(got, "b2:moved");
  ASSERT_TRUE(waitFor([&] {
    for (const auto& a : acks_) {
      if (a.type_url == kClusterType && a.version == "v3") return true;
    }
    return false;
  }));
  cds = typeStatus(kNodeId, kClusterType);
  EXPECT_EQ(cds->state, SyncState::kSynced);
  EXPECT_EQ(cds->acked_version, "v3");
  EXPECT_EQ(cds->error_message, "");
  EXPECT_EQ(cds->pushes, cds_pushes + 1);  // v2 was not retried in between

  channel.reset();
  ::unlink(bootstrap.c_str());
}

}  // namespace
}  // namespace mast::control::xds::testing
