#include "control/config/parse.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/config/json_proto.h"
#include "control/config/test_util.h"
#include "istio/networking/v1alpha3/destination_rule.pb.h"
#include "istio/networking/v1alpha3/gateway.pb.h"
#include "istio/networking/v1alpha3/service_entry.pb.h"
#include "istio/networking/v1alpha3/virtual_service.pb.h"
#include "istio/security/v1beta1/peer_authentication.pb.h"

namespace mast::control::config {
namespace {

using ::testing::ElementsAre;
using testing::errorsOf;
using testing::readTestdata;
namespace net = istio::networking::v1alpha3;

ParsedFile parseTestdata(const std::string& name) { return parseFile(name, readTestdata(name)); }

std::vector<const Resource*> resources(const ParsedFile& f) {
  std::vector<const Resource*> out;
  for (const auto& d : f.documents) {
    if (d.resource) out.push_back(&*d.resource);
  }
  return out;
}

TEST(ParseBookinfo, EverySampleIsValid) {
  struct Sample {
    const char* file;
    size_t resources;
  } samples[] = {{"bookinfo-gateway.yaml", 2},
                 {"destination-rule-all.yaml", 4},
                 {"virtual-service-all-v1.yaml", 4},
                 {"virtual-service-reviews-test-v2.yaml", 1},
                 {"virtual-service-reviews-50-v3.yaml", 1},
                 {"virtual-service-ratings-test-delay.yaml", 1},
                 {"virtual-service-ratings-test-abort.yaml", 1},
                 {"egress-rule-google-apis.yaml", 3},
                 {"service-entry-examples.yaml", 15},
                 {"destination-rule-all-mtls.yaml", 4},
                 {"destination-rule-reviews.yaml", 1},
                 {"fault-injection-details-v1.yaml", 2},
                 {"certmanager-gateway.yaml", 2}};
  for (const auto& s : samples) {
    ParsedFile f = parseTestdata(s.file);
    std::vector<std::string> errors;
    for (const auto& e : f.errors()) errors.push_back(e.toString());
    EXPECT_THAT(errors, ::testing::IsEmpty()) << s.file;
    EXPECT_EQ(resources(f).size(), s.resources) << s.file;
  }
}

TEST(ParseBookinfo, GatewayAndVirtualServiceFields) {
  ParsedFile f = parseTestdata("bookinfo-gateway.yaml");
  auto rs = resources(f);
  ASSERT_EQ(rs.size(), 2u);
  const Resource& gw = *rs[0];
  EXPECT_EQ(gw.kind, Kind::kGateway);
  EXPECT_EQ(gw.api_version, "networking.istio.io/v1");
  EXPECT_EQ(gw.metadata.name, "bookinfo-gateway");
  EXPECT_EQ(gw.metadata.ns, "default");
  EXPECT_EQ(gw.source_file, "bookinfo-gateway.yaml");
  EXPECT_EQ(gw.source_document, 1);
  const auto* g = gw.specAs<net::Gateway>();
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->selector().at("istio"), "ingressgateway");
  ASSERT_EQ(g->servers_size(), 1);
  EXPECT_EQ(g->servers(0).port().number(), 8080u);
  EXPECT_EQ(g->servers(0).port().name(), "http");
  EXPECT_EQ(g->servers(0).port().protocol(), "HTTP");
  EXPECT_THAT(g->servers(0).hosts(), ElementsAre("*"));

  const Resource& vsr = *rs[1];
  EXPECT_EQ(vsr.key().toString(), "VirtualService default/bookinfo");
  EXPECT_EQ(vsr.source_document, 2);
  const auto* vs = vsr.specAs<net::VirtualService>();
  ASSERT_NE(vs, nullptr);
  EXPECT_EQ(vsr.specAs<net::Gateway>(), nullptr);
  EXPECT_THAT(vs->gateways(), ElementsAre("bookinfo-gateway"));
  ASSERT_EQ(vs->http_size(), 1);
  ASSERT_EQ(vs->http(0).match_size(), 5);
  EXPECT_EQ(vs->http(0).match(0).uri().exact(), "/productpage");
  EXPECT_EQ(vs->http(0).match(1).uri().prefix(), "/static");
  EXPECT_EQ(vs->http(0).match(4).uri().prefix(), "/api/v1/products");
  EXPECT_EQ(vs->http(0).route(0).destination().host(), "productpage");
  EXPECT_EQ(vs->http(0).route(0).destination().port().number(), 9080u);
}

TEST(ParseBookinfo, WeightsFaultsAndHeaderMatches) {
  auto split = parseTestdata("virtual-service-reviews-50-v3.yaml");
  const auto* vs = resources(split)[0]->specAs<net::VirtualService>();
  ASSERT_EQ(vs->http(0).route_size(), 2);
  EXPECT_EQ(vs->http(0).route(0).destination().subset(), "v1");
  EXPECT_EQ(vs->http(0).route(0).weight(), 50);
  EXPECT_EQ(vs->http(0).route(1).destination().subset(), "v3");
  EXPECT_EQ(vs->http(0).route(1).weight(), 50);

  auto delay = parseTestdata("virtual-service-ratings-test-delay.yaml");
  vs = resources(delay)[0]->specAs<net::VirtualService>();
  EXPECT_EQ(vs->http(0).match(0).headers().at("end-user").exact(), "jason");
  EXPECT_EQ(vs->http(0).fault().delay().fixed_delay().seconds(), 7);
  EXPECT_DOUBLE_EQ(vs->http(0).fault().delay().percentage().value(), 100.0);
  EXPECT_EQ(vs->http(1).match_size(), 0);

  auto abort = parseTestdata("virtual-service-ratings-test-abort.yaml");
  vs = resources(abort)[0]->specAs<net::VirtualService>();
  EXPECT_EQ(vs->http(0).fault().abort().http_status(), 500);

  auto test_v2 = parseTestdata("virtual-service-reviews-test-v2.yaml");
  vs = resources(test_v2)[0]->specAs<net::VirtualService>();
  EXPECT_EQ(vs->http(0).route(0).destination().subset(), "v2");
  EXPECT_EQ(vs->http(1).route(0).destination().subset(), "v1");
}

TEST(ParseBookinfo, DestinationRulesAndServiceEntries) {
  auto drs = parseTestdata("destination-rule-all.yaml");
  auto rs = resources(drs);
  ASSERT_EQ(rs.size(), 4u);
  const auto* ratings = rs[2]->specAs<net::DestinationRule>();
  EXPECT_EQ(ratings->host(), "ratings");
  ASSERT_EQ(ratings->subsets_size(), 4);
  EXPECT_EQ(ratings->subsets(3).name(), "v2-mysql-vm");
  EXPECT_EQ(ratings->subsets(3).labels().at("version"), "v2-mysql-vm");

  auto egress = parseTestdata("egress-rule-google-apis.yaml");
  rs = resources(egress);
  const auto* se = rs[0]->specAs<net::ServiceEntry>();
  EXPECT_EQ(se->resolution(), net::ServiceEntry::DNS);
  EXPECT_EQ(se->location(), net::ServiceEntry::MESH_EXTERNAL);
  EXPECT_EQ(se->ports(1).protocol(), "HTTPS");
  const auto* dr = rs[2]->specAs<net::DestinationRule>();
  EXPECT_EQ(dr->traffic_policy().load_balancer().simple(), net::LoadBalancerSettings::ROUND_ROBIN);
  EXPECT_EQ(dr->traffic_policy().port_level_settings(0).port().number(), 443u);
  EXPECT_EQ(dr->traffic_policy().port_level_settings(0).tls().mode(),
            net::ClientTLSSettings::SIMPLE);

  auto examples = parseTestdata("service-entry-examples.yaml");
  rs = resources(examples);
  ASSERT_EQ(rs.size(), 15u);
  const auto* mongo = rs[1]->specAs<net::ServiceEntry>();
  EXPECT_EQ(mongo->location(), net::ServiceEntry::MESH_INTERNAL);
  EXPECT_EQ(mongo->resolution(), net::ServiceEntry::STATIC);
  EXPECT_THAT(mongo->addresses(), ElementsAre("192.192.192.192/24"));
  EXPECT_EQ(mongo->endpoints(1).address(), "3.3.3.3");
  EXPECT_EQ(rs[2]->specAs<net::DestinationRule>()->traffic_policy().tls().mode(),
            net::ClientTLSSettings::MUTUAL);
  EXPECT_EQ(rs[5]->metadata.ns, "egress");
  EXPECT_EQ(rs[6]->metadata.ns, "istio-system");
  const auto* dns = rs[10]->specAs<net::ServiceEntry>();
  EXPECT_EQ(dns->endpoints(0).ports().at("http"), 8080u);
  EXPECT_EQ(rs[12]->kind, Kind::kWorkloadEntry);
  EXPECT_EQ(rs[14]->specAs<net::ServiceEntry>()->workload_selector().labels().at("app"), "details");
}

TEST(Parse, MetadataDefaultsAndExplicitValues) {
  auto f = parseFile("pa.yaml", R"(apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: istio-system
  labels:
    team: mesh
  annotations:
    note: "strict everywhere"
  resourceVersion: "42"
  generation: 3
  creationTimestamp: "2024-01-02T03:04:05Z"
  uid: 0b9e6c4e-3c1d-4d56-9f1e-0d6f2f5e3a10
spec:
  mtls:
    mode: STRICT
)");
  ASSERT_THAT(f.errors(), ::testing::IsEmpty());
  const Resource& r = *f.documents[0].resource;
  EXPECT_EQ(r.metadata.ns, "istio-system");
  EXPECT_EQ(r.metadata.labels.at("team"), "mesh");
  EXPECT_EQ(r.metadata.annotations.at("note"), "strict everywhere");
  EXPECT_EQ(r.metadata.resource_version, "42");
  EXPECT_EQ(r.metadata.generation, 3);
  EXPECT_EQ(r.metadata.creation_timestamp, "2024-01-02T03:04:05Z");
  EXPECT_EQ(r.specAs<istio::security::v1beta1::PeerAuthentication>()->mtls().mode(),
            istio::security::v1beta1::PeerAuthentication::MutualTLS::STRICT);
}

TEST(Parse, GoDurationsAndSnakeCaseKeys) {
  auto f = parseFile("dr.yaml", R"(apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews.prod.svc.cluster.local
  traffic_policy:
    outlierDetection:
      interval: 1m30s
      baseEjectionTime: 100ms
      consecutive5xxErrors: 7
    connectionPool:
      tcp:
        connectTimeout: 1.5s
        maxConnections: "100"
)");
  ASSERT_THAT(f.errors(), ::testing::IsEmpty());
  const auto* dr = f.documents[0].resource->specAs<net::DestinationRule>();
  EXPECT_EQ(dr->traffic_policy().outlier_detection().interval().seconds(), 90);
  EXPECT_EQ(dr->traffic_policy().outlier_detection().base_ejection_time().nanos(), 100000000);
  EXPECT_EQ(dr->traffic_policy().outlier_detection().consecutive_5xx_errors().value(), 7u);
  EXPECT_EQ(dr->traffic_policy().connection_pool().tcp().connect_timeout().seconds(), 1);
  EXPECT_EQ(dr->traffic_policy().connection_pool().tcp().connect_timeout().nanos(), 500000000);
  EXPECT_EQ(dr->traffic_policy().connection_pool().tcp().max_connections(), 100);
}

TEST(Parse, UnknownFieldNamesPathAndLine) {
  EXPECT_THAT(errorsOf(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        hots: reviews
)"),
              ElementsAre("t.yaml: document 1 (VirtualService default/reviews): line 11: "
                          "spec.http[0].route[0].destination.hots: unknown field \"hots\""));
}

TEST(Parse, TypeErrorsNamePathAndLine) {
  EXPECT_THAT(
      errorsOf(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: prod
spec:
  host: reviews
  subsets: v1
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBBIN
    connectionPool:
      tcp:
        maxConnections: lots
        connectTimeout: 10
)"),
      ElementsAre(
          "t.yaml: document 1 (DestinationRule prod/reviews): line 8: spec.subsets: expected a "
          "list, got a string",
          "t.yaml: document 1 (DestinationRule prod/reviews): line 11: "
          "spec.trafficPolicy.loadBalancer.simple: invalid value \"ROUND_ROBBIN\" (expected one "
          "of UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST)",
          "t.yaml: document 1 (DestinationRule prod/reviews): line 14: "
          "spec.trafficPolicy.connectionPool.tcp.maxConnections: expected an integer, got a "
          "string",
          "t.yaml: document 1 (DestinationRule prod/reviews): line 15: "
          "spec.trafficPolicy.connectionPool.tcp.connectTimeout: expected a duration string such "
          "as \"5s\" or \"100ms\", got an integer"));
}

TEST(Parse, OneofSetTwice) {
  EXPECT_THAT(errorsOf(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: r
spec:
  hosts: [r]
  http:
  - match:
    - uri:
        exact: /a
        prefix: /b
    route:
    - destination: {host: r}
)"),
              ElementsAre("t.yaml: document 1 (VirtualService default/r): line 11: "
                          "spec.http[0].match[0].uri.prefix: only one of \"exact\" and \"prefix\" "
                          "may be set"));
}

TEST(Parse, DirectResponseBytesMustBeBase64) {
  auto f = parseFile("t.yaml", R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: r
spec:
  hosts: [r]
  http:
  - directResponse:
      status: 503
      body:
        bytes: "bm90IHRvZGF5"
)");
  ASSERT_THAT(f.errors(), ::testing::IsEmpty());
  EXPECT_EQ(f.documents[0]
                .resource->specAs<net::VirtualService>()
                ->http(0)
                .direct_response()
                .body()
                .bytes(),
            "not today");
  EXPECT_THAT(errorsOf(R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: r
spec:
  hosts: [r]
  http:
  - directResponse:
      status: 503
      body: {bytes: "not base64!"}
)"),
              ElementsAre("t.yaml: document 1 (VirtualService default/r): line 10: "
                          "spec.http[0].directResponse.body.bytes: expected base64-encoded bytes"));
}

TEST(Parse, EnvelopeErrors) {
  EXPECT_THAT(errorsOf(R"(apiVersion: networking.istio.io/v1
kind: VirtualServce
metadata:
  name: r
spec: {}
)"),
              ElementsAre("t.yaml: document 1: line 2: kind: unknown kind \"VirtualServce\" "
                          "(supported: Gateway, VirtualService, DestinationRule, ServiceEntry, "
                          "WorkloadEntry, WorkloadGroup, Sidecar, PeerAuthentication, "
                          "AuthorizationPolicy, RequestAuthentication, Telemetry)"));
  EXPECT_THAT(errorsOf(R"(apiVersion: security.istio.io/v1
kind: VirtualService
metadata:
  name: r
spec:
  hosts: [r]
  http:
  - route:
    - destination: {host: r}
)"),
              ElementsAre("t.yaml: document 1 (VirtualService default/r): line 1: apiVersion: "
                          "\"security.istio.io/v1\" does not serve kind VirtualService (use "
                          "networking.istio.io/ with one of v1alpha3, v1beta1, v1)"));
  EXPECT_THAT(errorsOf(R"(apiVersion: telemetry.istio.io/v1beta1
kind: Telemetry
metadata:
  name: mesh-default
spec: {}
)"),
              ElementsAre("t.yaml: document 1 (Telemetry default/mesh-default): line 1: "
                          "apiVersion: \"telemetry.istio.io/v1beta1\" does not serve kind "
                          "Telemetry (use telemetry.istio.io/ with one of v1alpha1, v1)"));
  EXPECT_THAT(errorsOf(R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  namespace: foo
  labels:
    version: 2
spec: {}
extra: 1
)"),
              ElementsAre("t.yaml: document 1: line 4: metadata: metadata.name is required",
                          "t.yaml: document 1: line 6: metadata.labels.version: expected a "
                          "string value (quote numbers and booleans)",
                          "t.yaml: document 1: line 8: extra: unknown field \"extra\""));
  EXPECT_THAT(errorsOf("- just\n- a list\n"),
              ElementsAre("t.yaml: document 1: line 1: expected a map with apiVersion, kind, "
                          "metadata and spec"));
}

TEST(Parse, InvalidDocumentIsRejectedAlone) {
  auto f = parseFile("multi.yaml", R"(# leading comment
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: a
spec:
  hosts: [a]
  http:
  - route:
    - destination: {host: a}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: b
spec:
  hosts: [b
  http: [
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: c
spec:
  hosts: [c]
  http:
  - route:
    - destination: {host: c}
---
)");
  ASSERT_EQ(f.documents.size(), 3u);
  EXPECT_TRUE(f.documents[0].resource.has_value());
  EXPECT_EQ(f.documents[0].resource->metadata.name, "a");
  EXPECT_FALSE(f.documents[1].resource.has_value());
  EXPECT_FALSE(f.documents[1].key.has_value());
  EXPECT_TRUE(f.documents[2].resource.has_value());
  EXPECT_EQ(f.documents[2].resource->metadata.name, "c");
  EXPECT_EQ(f.documents[2].index, 3);
  auto errors = f.errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].document, 2);
  EXPECT_EQ(errors[0].line, 19);
  EXPECT_THAT(errors[0].toString(),
              ::testing::StartsWith("multi.yaml: document 2: line 19: invalid YAML: "));
}

TEST(Parse, SemanticErrorKeepsKey) {
  auto f = parseFile("vs.yaml", R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: -1
    - destination: {host: reviews, subset: v2}
      weight: 1
)");
  ASSERT_EQ(f.documents.size(), 1u);
  EXPECT_FALSE(f.documents[0].resource.has_value());
  ASSERT_TRUE(f.documents[0].key.has_value());
  EXPECT_EQ(f.documents[0].key->toString(), "VirtualService default/reviews");
}

TEST(Parse, KubernetesListOutput) {
  auto f = parseFile("list.yaml", R"(apiVersion: v1
items:
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata:
    name: reviews
    namespace: default
    uid: 6d0b0c0e-0000-4000-8000-000000000001
  spec:
    host: reviews
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata:
    name: ratings
    namespace: default
  spec:
    host: ratings
    subsets:
    - name: ""
kind: List
metadata:
  resourceVersion: ""
)");
  ASSERT_EQ(f.documents.size(), 2u);
  ASSERT_TRUE(f.documents[0].resource.has_value());
  EXPECT_EQ(f.documents[0].resource->key().toString(), "DestinationRule default/reviews");
  EXPECT_FALSE(f.documents[1].resource.has_value());
  EXPECT_THAT(errorsOf(R"(apiVersion: v1
kind: List
items:
- apiVersion: networking.istio.io/v1
  kind: DestinationRule
  metadata: {name: ratings}
  spec:
    host: ratings
    subsets:
    - name: ""
)"),
              ElementsAre("t.yaml: document 1 (DestinationRule default/ratings): line 10: "
                          "spec.subsets[0].name: subset name cannot be empty"));
}

TEST(Parse, JsonFile) {
  auto f = parseFile("se.json", R"({
  "apiVersion": "networking.istio.io/v1alpha3",
  "kind": "ServiceEntry",
  "metadata": {"name": "httpbin-ext", "namespace": "egress"},
  "spec": {
    "hosts": ["httpbin.org"],
    "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
    "resolution": "DNS",
    "location": "MESH_EXTERNAL"
  }
})");
  ASSERT_THAT(f.errors(), ::testing::IsEmpty());
  EXPECT_EQ(f.documents[0].resource->key().toString(), "ServiceEntry egress/httpbin-ext");
}

TEST(Parse, GoDuration) {
  EXPECT_EQ(parseGoDuration("7s"), 7000000000);
  EXPECT_EQ(parseGoDuration("1.5s"), 1500000000);
  EXPECT_EQ(parseGoDuration("100ms"), 100000000);
  EXPECT_EQ(parseGoDuration("1h30m"), 5400000000000);
  EXPECT_EQ(parseGoDuration("-2us"), -2000);
  EXPECT_EQ(parseGoDuration("0"), 0);
  EXPECT_EQ(parseGoDuration("250ns"), 250);
  EXPECT_EQ(parseGoDuration("5"), std::nullopt);
  EXPECT_EQ(parseGoDuration("5 s"), std::nullopt);
  EXPECT_EQ(parseGoDuration("s"), std::nullopt);
  EXPECT_EQ(parseGoDuration("1d"), std::nullopt);
  EXPECT_EQ(parseGoDuration(""), std::nullopt);
}

}  // namespace
}  // namespace mast::control::config
