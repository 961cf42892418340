#include "control/server/analyze.h"

#include <gtest/gtest.h>

namespace mast::control::server {
namespace {

constexpr const char* kGatewayWorkload = R"(
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: istio-ingressgateway, namespace: istio-system}
spec:
  hosts: [istio-ingressgateway.istio-system.svc.cluster.local]
  ports:
  - {number: 80, name: http2, targetPort: 8080}
  - {number: 443, name: https}
  location: MESH_INTERNAL
  resolution: STATIC
  workloadSelector: {labels: {istio: ingressgateway}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ingressgateway-1, namespace: istio-system}
spec: {address: 10.0.0.2, labels: {istio: ingressgateway}}
)";

std::vector<AnalysisMessage> run(const std::string& yaml) {
  config::ConfigStore store;
  for (const auto& e : store.applyFile("mesh.yaml", yaml)) ADD_FAILURE() << e.toString();
  return analyze(*store.snapshot());
}

std::vector<std::string> lines(const std::vector<AnalysisMessage>& ms) {
  std::vector<std::string> out;
  for (const auto& m : ms) out.push_back(m.toString());
  return out;
}

TEST(AnalyzeTest, GatewayPortNotOnWorkload) {
  auto out = run(std::string(kGatewayWorkload) + R"(
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
  - {port: {number: 8080, name: http, protocol: HTTP}, hosts: ["*"]}
  - {port: {number: 443, name: https, protocol: HTTPS}, hosts: ["*"], tls: {mode: PASSTHROUGH}}
  - {port: {number: 80, name: http-80, protocol: HTTP}, hosts: ["*"]}
)");
  // 8080 is port 80's targetPort and 443 has none (the number is the port): both exposed.
  // 80 is only the service port, not where the workload listens.
  EXPECT_EQ(
      lines(out),
      std::vector<std::string>{
          "Error [IST0104] (Gateway default/bookinfo-gateway) The gateway refers to a port "
          "that is not exposed on the workload (pod selector istio=ingressgateway; port 80)"});
}

TEST(AnalyzeTest, WorkloadEntryPortMapAndInlineEndpointsCount) {
  auto out = run(R"(
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: gw, namespace: istio-system}
spec:
  hosts: [gw.istio-system.svc.cluster.local]
  ports: [{number: 80, name: http}]
  location: MESH_INTERNAL
  resolution: STATIC
  endpoints: [{address: 10.0.0.3, labels: {istio: egressgateway}, ports: {http: 9090}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: egress, namespace: default}
spec:
  selector: {istio: egressgateway}
  servers:
  - {port: {number: 9090, name: http, protocol: HTTP}, hosts: ["*"]}
  - {port: {number: 80, name: http-80, protocol: HTTP}, hosts: ["*"]}
)");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].code, "IST0104");
  EXPECT_NE(out[0].message.find("port 80)"), std::string::npos);
}

TEST(AnalyzeTest, GatewayWithoutKnownWorkloadIsNotChecked) {
  auto out = run(R"(
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 31400, name: tcp, protocol: TCP}, hosts: ["*"]}]
)");
  EXPECT_TRUE(out.empty()) << lines(out).at(0);
}

TEST(AnalyzeTest, ReferencedResourcesAndConflictingMeshHosts) {
  auto out = run(std::string(kGatewayWorkload) + R"(
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: default}
spec:
  hosts: [reviews]
  gateways: [missing]
  http: [{route: [{destination: {host: istio-ingressgateway.istio-system.svc.cluster.local, subset: v9}}]}]
)");
  auto l = lines(out);
  ASSERT_EQ(l.size(), 2u);
  EXPECT_EQ(l[0],
            "Error [IST0101] (VirtualService default/a) Referenced gateway not found: "
            "\"missing\"");
  EXPECT_EQ(
      l[1],
      "Error [IST0101] (VirtualService default/a) Referenced host+subset in "
      "destinationrule not found: \"istio-ingressgateway.istio-system.svc.cluster.local+v9\"");
}

TEST(AnalyzeTest, MissingDelegateVirtualService) {
  auto out = run(std::string(kGatewayWorkload) + R"(
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root, namespace: default}
spec:
  hosts: [istio-ingressgateway.istio-system.svc.cluster.local]
  http:
  - match: [{uri: {prefix: /a}}]
    delegate: {name: a-routes}
  - match: [{uri: {prefix: /b}}]
    delegate: {name: b-routes, namespace: team}
  - match: [{uri: {prefix: /c}}]
    delegate: {name: c-routes, namespace: team}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a-routes, namespace: default}
spec:
  http: [{route: [{destination: {host: istio-ingressgateway.istio-system.svc.cluster.local}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b-routes, namespace: default}
spec:
  http: [{route: [{destination: {host: istio-ingressgateway.istio-system.svc.cluster.local}}]}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: c-routes, namespace: team}
spec:
  http: [{route: [{destination: {host: istio-ingressgateway.istio-system.svc.cluster.local}}]}]
)");
  // b-routes exists, but in the root's namespace, not in the one the reference names.
  auto l = lines(out);
  ASSERT_EQ(l.size(), 1u) << ::testing::PrintToString(l);
  EXPECT_EQ(l[0],
            "Error [IST0101] (VirtualService default/root) Referenced delegate VirtualService "
            "not found: \"team/b-routes\"");
}

}  // namespace
}  // namespace mast::control::server
