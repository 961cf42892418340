// The proxyless output of generate() against a REAL gRPC xDS client: gRPC C++'s own xds
// resolver (`xds:///HOST:PORT`) walks the API listener → RDS → CDS → EDS that translate
// generated for a proxyless node and must ACK all four and route calls as the Bookinfo-style
// VirtualService says (header match → subset v2, else weighted to v1), with the fault filter
// aborting the calls the VirtualService faults.
// Own binary: the gRPC xDS bootstrap is process-global and read once.
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>

#include "control/config/store.h"
#include "control/translate/generate.h"
#include "control/xds/ads_fixture.h"

namespace mast::control::translate {
namespace {

using namespace std::chrono_literals;

const std::string kNodeId = "sidecar~127.0.0.1~grpc-client-1.default~default.svc.cluster.local";
const std::string kHost = "echo.default.svc.cluster.local";

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
  std::unique_ptr<grpc::Server> server_;
};

std::string call(grpc::GenericStub& stub, const std::string& payload,
                 const std::map<std::string, std::string>& metadata = {}) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  ctx.set_wait_for_ready(true);
  for (const auto& [k, v] : metadata) ctx.AddMetadata(k, v);
  grpc::Slice slice(payload);
  grpc::ByteBuffer req(&slice, 1), resp;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/mast.test.Echo/Say", grpc::StubOptions(), &req, &resp,
                 [&](grpc::Status s) { done.set_value(std::move(s)); });
  grpc::Status st = done.get_future().get();
  if (!st.ok()) return "ERR " + std::to_string(st.error_code());
  std::vector<grpc::Slice> slices;
  (void)resp.Dump(&slices);
  std::string out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

class GrpcProxylessTest : public xds::testing::AdsFixture {};

TEST_F(GrpcProxylessTest, GrpcClientAcksAndRoutesByTheGeneratedConfig) {
  EchoBackend v1("v1"), v2("v2");
  ASSERT_GT(v1.port(), 0);
  ASSERT_GT(v2.port(), 0);

  // The service and its two versions, a DestinationRule with subsets and a VirtualService:
  // `x-user: jason` → v2, `x-fault: abort` → aborted with UNAVAILABLE, everyone else → v1.
  config::ConfigStore store;
  std::string yaml = R"(
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo.default.svc.cluster.local]
  ports: [{number: 7070, name: grpc, protocol: GRPC}]
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: {labels: {app: echo}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-v1, namespace: default}
spec:
  address: 127.0.0.1
  ports: {grpc: V1PORT}
  labels: {app: echo, version: v1}
  locality: local/zone-a
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-v2, namespace: default}
spec:
  address: 127.0.0.1
  ports: {grpc: V2PORT}
  labels: {app: echo, version: v2}
  locality: local/zone-b
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: default}
spec:
  host: echo
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: default}
spec:
  hosts: [echo]
  http:
  - match: [{headers: {x-user: {exact: jason}}}]
    route: [{destination: {host: echo, subset: v2}}]
  - match: [{headers: {x-fault: {exact: abort}}}]
    fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}
    route: [{destination: {host: echo, subset: v1}}]
  - route: [{destination: {host: echo, subset: v1}}]
)";
  auto replace = [&](const std::string& from, const std::string& to) {
    yaml.replace(yaml.find(from), from.size(), to);
  };
  replace("V1PORT", std::to_string(v1.port()));
  replace("V2PORT", std::to_string(v2.port()));
  for (const auto& e : store.applyFile("echo.yaml", yaml)) ADD_FAILURE() << e.toString();
  auto model = model::MeshModel::build(store.snapshot(), config::defaultMeshConfig());

  xds::ProxyInfo proxy;
  proxy.id = kNodeId;
  proxy.istio_id = true;
  proxy.type = xds::ProxyType::kSidecar;
  proxy.ip = "127.0.0.1";
  proxy.namespace_ = "default";
  proxy.dns_domain = "default.svc.cluster.local";
  proxy.proxyless = true;
  proxy.generator = "grpc";
  auto res = generate(*model, proxy);
  xds::Snapshot snap;
  for (auto type : {xds::kClusterType, xds::kEndpointType, xds::kListenerType, xds::kRouteType}) {
    snap.setVersion(type, "v1");
  }
  for (const auto& m : res.listeners) ASSERT_TRUE(snap.add(m).ok());
  for (const auto& m : res.routes) ASSERT_TRUE(snap.add(m).ok());
  for (const auto& m : res.clusters) ASSERT_TRUE(snap.add(m).ok());
  for (const auto& m : res.endpoints) ASSERT_TRUE(snap.add(m).ok());
  cache_.setSnapshot(kNodeId, std::move(snap));

  std::string bootstrap =
      ::testing::TempDir() + "/mast_translate_grpc_" + std::to_string(::getpid()) + ".json";
  {
    std::ofstream f(bootstrap);
    f << R"({"xds_servers":[{"server_uri":"127.0.0.1:)" << port_
      << R"(","channel_creds":[{"type":"insecure"}],"server_features":["xds_v3"]}],)"
      << R"("node":{"id":")" << kNodeId << R"(","cluster":"grpc-client",)"
      << R"("locality":{"region":"local"},"metadata":{"GENERATOR":"grpc","NAMESPACE":"default"}}})";
  }
  ::setenv("GRPC_XDS_BOOTSTRAP", bootstrap.c_str(), 1);
  auto channel =
      grpc::CreateChannel("xds:///" + kHost + ":7070", grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);

  EXPECT_EQ(call(stub, "hello"), "v1:hello");
  EXPECT_EQ(call(stub, "hi", {{"x-user", "jason"}}), "v2:hi");
  EXPECT_EQ(call(stub, "x", {{"x-fault", "abort"}}), "ERR 14");  // UNAVAILABLE from the fault
  EXPECT_EQ(call(stub, "again"), "v1:again");

  // Every type was accepted and none rejected.
  for (auto type : {xds::kListenerType, xds::kRouteType, xds::kClusterType, xds::kEndpointType}) {
    auto st = typeStatus(kNodeId, type);
    ASSERT_TRUE(st) << type;
    EXPECT_EQ(st->acked_version, "v1") << type;
  }
  std::lock_guard lock(mu_);
  for (const auto& n : nacks_) ADD_FAILURE() << n.type_url << ": " << n.error_detail;
}

}  // namespace
}  // namespace mast::control::translate
