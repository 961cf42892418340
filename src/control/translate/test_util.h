#pragma once
// Shared by this module's tests (not a library): Bookinfo as ServiceEntries + WorkloadEntries
// (testdata/) in a config store, Istio-shaped proxy identities, and a fixture that translates
// one proxy from the store's current snapshot. The test targets define MAST_TRANSLATE_TESTDATA
// and MAST_CONFIG_TESTDATA.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "control/config/mesh_config.h"
#include "control/config/store.h"
#include "control/model/mesh_model.h"
#include "control/translate/generate.h"

namespace mast::control::translate::testing {

inline std::string readFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Indented JSON of a message, for failure messages.
inline std::string json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

inline xds::ProxyInfo sidecar(const std::string& app, const std::string& ip,
                              const std::string& ns = "default") {
  xds::ProxyInfo p;
  p.id = "sidecar~" + ip + "~" + app + "-v1-abc." + ns + "~" + ns + ".svc.cluster.local";
  p.istio_id = true;
  p.type = xds::ProxyType::kSidecar;
  p.ip = ip;
  p.ips = {ip};
  p.name = app + "-v1-abc";
  p.namespace_ = ns;
  p.dns_domain = ns + ".svc.cluster.local";
  p.labels = {{"app", app}, {"version", "v1"}};
  return p;
}

inline xds::ProxyInfo ingressGateway() {
  xds::ProxyInfo p;
  p.id = "router~10.0.0.100~istio-ingressgateway-abc.istio-system~istio-system.svc.cluster.local";
  p.istio_id = true;
  p.type = xds::ProxyType::kRouter;
  p.ip = "10.0.0.100";
  p.ips = {p.ip};
  p.name = "istio-ingressgateway-abc";
  p.namespace_ = "istio-system";
  p.dns_domain = "istio-system.svc.cluster.local";
  p.labels = {{"istio", "ingressgateway"}, {"app", "istio-ingressgateway"}};
  return p;
}

inline xds::ProxyInfo proxyless(const std::string& ns = "default") {
  auto p = sidecar("grpc-client", "10.0.0.77", ns);
  p.proxyless = true;
  p.generator = "grpc";
  return p;
}

// Bookinfo's services and workloads loaded; apply more YAML, then gen() a proxy's resources.
class BookinfoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    applyPath(std::string(MAST_TRANSLATE_TESTDATA) + "/bookinfo-services.yaml");
    applyPath(std::string(MAST_TRANSLATE_TESTDATA) + "/bookinfo-workloads.yaml");
  }
  void applyPath(const std::string& path) { apply(path, readFile(path)); }
  // One of Istio's own sample files (src/control/config/testdata).
  void applyBookinfo(const std::string& file) {
    applyPath(std::string(MAST_CONFIG_TESTDATA) + "/" + file);
  }
  void apply(const std::string& name, const std::string& yaml) {
    for (const auto& e : store_.applyFile(name, yaml)) ADD_FAILURE() << e.toString();
  }
  ProxyResources gen(const xds::ProxyInfo& proxy, std::vector<model::WorkloadInstance> vms = {}) {
    model_ = model::MeshModel::build(store_.snapshot(), mesh_, std::move(vms));
    return generate(*model_, proxy);
  }

  config::ConfigStore store_;
  config::MeshConfig mesh_ = config::defaultMeshConfig();
  std::shared_ptr<const model::MeshModel> model_;
};

}  // namespace mast::control::translate::testing
