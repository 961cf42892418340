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
#include <cstdio>
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

class GrpcXdsClientTest : public AdsFixture {
 protected:
  // Writes a gRPC xDS bootstrap pointing at this test's ADS server; returns its path.
  std::string writeBootstrap(const std::string& node_id, const std::string& tag) {
    std::string path = ::testing::TempDir() + "/mast_xds_bootstrap_" + tag + "_" +
                       std::to_string(::getpid()) + ".json";
    std::ofstream f(path);
    f << R"({"xds_servers":[{"server_uri":"127.0.0.1:)" << port_
      << R"(","channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],)"
      << R"("node":{"id":")" << node_id << R"(","cluster":"echo-client",)"
      << R"("locality":{"region":"local"},"metadata":{"GENERATOR":"grpc","NAMESPACE":"default"}}})";
    return path;
  }

  // First ACKed type URLs of `node_id`, in order.
  std::vector<std::string> firstAcks(const std::string& node_id) {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& a : acks_) {
      if (a.node_id == node_id && std::find(out.begin(), out.end(), a.type_url) == out.end()) {
        out.push_back(a.type_url);
      }
    }
    return out;
  }
};

const std::vector<std::string> kWalkOrder = {std::string(kListenerType), std::string(kRouteType),
                                             std::string(kClusterType), std::string(kEndpointType)};

TEST_F(GrpcXdsClientTest, GrpcResolverWalksLdsRdsCdsEdsCallsGoThroughAndNacksAreRecorded) {
  EchoBackend b1("b1"), b2("b2");
  ASSERT_GT(b1.port(), 0);
  ASSERT_GT(b2.port(), 0);

  std::string bootstrap = writeBootstrap(kNodeId, "cpp");
  ::setenv("GRPC_XDS_BOOTSTRAP", bootstrap.c_str(), 1);

  cache_.setSnapshot(kNodeId, echoSnapshot("v1", b1.port()));
  auto channel = grpc::CreateChannel("xds:///" + kTarget, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);

  EXPECT_EQ(callEcho(stub, "hello", 20s), "b1:hello");
  EXPECT_EQ(b1.calls(), 1);

  // The client walked the chain: first ACK per type in LDS, RDS, CDS, EDS order.
  ASSERT_TRUE(waitFor([&] { return acks_.size() >= 4; }));
  {
    std::lock_guard lock(mu_);
    for (const auto& a : acks_) {
      EXPECT_EQ(a.node_id, kNodeId);
      EXPECT_EQ(a.version, "v1");
    }
    ASSERT_EQ(connected_.size(), 1u);
    EXPECT_TRUE(connected_[0].proxyless);
    EXPECT_EQ(connected_[0].namespace_, "default");
    EXPECT_NE(connected_[0].user_agent.find("gRPC"), std::string::npos) << connected_[0].user_agent;
  }
  EXPECT_EQ(firstAcks(kNodeId), kWalkOrder);
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

// The same walk from another process and another language binding: Debian's python3-grpcio
// (/usr/bin/python3). The script runs concurrently and keeps calling until it reaches backend
// b2, while this test pushes p1 (b1), an invalid p2 (NACKed), then p3 (b2).
TEST_F(GrpcXdsClientTest, PythonGrpcioClientFollowsPushesAndNacksInvalidClusters) {
  if (std::system("/usr/bin/python3 -c 'import grpc' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 has no grpc module (Debian package python3-grpcio)";
  }
  EchoBackend b1("b1"), b2("b2");
  const std::string py_node = "sidecar~127.0.0.2~py-client.default~default.svc.cluster.local";
  cache_.setSnapshot(py_node, echoSnapshot("p1", b1.port()));
  std::string bootstrap = writeBootstrap(py_node, "py");
  std::string cmd = "GRPC_XDS_BOOTSTRAP=" + bootstrap + " timeout 60 /usr/bin/python3 " +
                    MAST_XDS_PY_CLIENT + " " + kTarget + " b2: 45 2>&1";
  FILE* py = ::popen(cmd.c_str(), "r");
  ASSERT_NE(py, nullptr);
  // Reap the script on every exit path (its own timeout bounds it).
  std::string output;
  auto finish = [&] {
    if (py == nullptr) return -1;
    char buf[512];
    while (std::fgets(buf, sizeof buf, py) != nullptr) output += buf;
    int rc = ::pclose(py);
    py = nullptr;
    return rc;
  };
  struct Reaper {
    std::function<int()> fn;
    ~Reaper() { fn(); }
  } reaper{finish};

  auto acked = [&](const std::string& version) {
    int n = 0;
    for (const auto& a : acks_) n += a.node_id == py_node && a.version == version;
    return n;
  };
  // p1 reaches b1 through the walk.
  ASSERT_TRUE(waitFor([&] { return acked("p1") >= 4; }, 30s)) << "python never synced p1";
  ASSERT_TRUE(pollUntil([&] { return b1.calls() > 0; }, 30s)) << "python never reached b1";
  EXPECT_EQ(firstAcks(py_node), kWalkOrder);

  // p2 has a cluster gRPC cannot use: NACKed and recorded.
  cache_.setSnapshot(py_node, echoSnapshot("p2", b1.port(), /*break_cluster=*/true));
  ASSERT_TRUE(waitFor(
      [&] {
        return std::any_of(nacks_.begin(), nacks_.end(),
                           [&](const AckEvent& n) { return n.node_id == py_node; });
      },
      10s));
  auto cds = typeStatus(py_node, kClusterType);
  ASSERT_TRUE(cds);
  EXPECT_EQ(cds->state, SyncState::kError);
  EXPECT_EQ(cds->nacked_version, "p2");
  EXPECT_EQ(cds->acked_version, "p1");
  EXPECT_NE(cds->error_message.find("lb_policy"), std::string::npos) << cds->error_message;

  // p3 moves the endpoints to b2: the script gets there and exits 0.
  cache_.setSnapshot(py_node, echoSnapshot("p3", b2.port()));
  auto t0 = std::chrono::steady_clock::now();
  int rc = finish();
  std::printf("python client (exit %d, %lld ms after p3):\n%s", rc,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - t0)
                                         .count()),
              output.c_str());
  EXPECT_EQ(rc, 0) << output;
  EXPECT_NE(output.find("b1:py"), std::string::npos) << output;
  EXPECT_NE(output.find("b2:py"), std::string::npos) << output;
  EXPECT_GT(b2.calls(), 0);

  // The process is gone: its stream is reported disconnected.
  EXPECT_TRUE(waitFor(
      [&] {
        return std::find(disconnected_.begin(), disconnected_.end(), py_node) !=
               disconnected_.end();
      },
      10s));
  ::unlink(bootstrap.c_str());
}

}  // namespace
}  // namespace mast::control::xds::testing
