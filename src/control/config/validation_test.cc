// Validation rules, each checked with the exact error text (file, document, line, path).
#include "control/config/validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "control/config/test_util.h"

namespace mast::control::config {
namespace {

using ::testing::ElementsAre;
using testing::errorsOf;
using ::testing::IsEmpty;

// A VirtualService "reviews" whose spec body starts at line 6.
std::string vs(const std::string& spec_body) {
  return "apiVersion: networking.istio.io/v1\n"
         "kind: VirtualService\n"
         "metadata:\n"
         "  name: reviews\n"
         "spec:\n" +
         spec_body;
}

std::string doc(const std::string& api, const std::string& kind, const std::string& spec_body,
                const std::string& name = "x") {
  return "apiVersion: " + api + "\nkind: " + kind + "\nmetadata:\n  name: " + name + "\nspec:\n" +
         spec_body;
}

const char* kVsPrefix = "t.yaml: document 1 (VirtualService default/reviews): ";

std::string vsErr(const std::string& rest) { return kVsPrefix + rest; }

TEST(ValidateVirtualService, NegativeWeightAndZeroTotal) {
  EXPECT_THAT(errorsOf(vs(R"(  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: -5
    - destination: {host: reviews, subset: v3}
      weight: 10
)")),
              ElementsAre(vsErr("line 10: spec.http[0].route[0].weight: weight -5 < 0")));
  EXPECT_THAT(errorsOf(vs(R"(  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 0
    - destination: {host: reviews, subset: v3}
)")),
              ElementsAre(vsErr("line 9: spec.http[0].route: total destination weight = 0")));
  // Weights are relative since Istio 1.15: 30/30 is fine, as is a single unweighted route.
  EXPECT_THAT(errorsOf(vs(R"(  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 30
    - destination: {host: reviews, subset: v3}
      weight: 30
)")),
              IsEmpty());
}

TEST(ValidateVirtualService, Hosts) {
  EXPECT_THAT(errorsOf(vs(R"(  hosts:
  - reviews_v1
  - "*.example.com"
  - "foo.*.com"
  - 10.0.0.1
  - reviews.1
  http:
  - route:
    - destination: {host: reviews}
)")),
              ElementsAre(vsErr("line 7: spec.hosts[0]: domain name \"reviews_v1\" invalid (label "
                                "\"reviews_v1\" invalid)"),
                          vsErr("line 9: spec.hosts[2]: domain name \"foo.*.com\" invalid (label "
                                "\"*\" invalid)"),
                          vsErr("line 11: spec.hosts[4]: domain name \"reviews.1\" invalid (top "
                                "level domain \"1\" cannot be all-numeric)")));
  EXPECT_THAT(errorsOf(vs(R"(  hosts: ["*"]
  http:
  - route:
    - destination: {host: reviews}
)")),
              ElementsAre(vsErr("line 6: spec.hosts[0]: wildcard host * is not allowed for "
                                "virtual services bound to the mesh gateway")));
  EXPECT_THAT(errorsOf(vs(R"(  hosts: ["*.com", "a.b.com"]
  http:
  - route:
    - destination: {host: reviews}
)")),
              ElementsAre(vsErr("line 6: spec.hosts[1]: duplicate hosts in virtual service: "
                                "*.com & a.b.com")));
  // "*" is fine on a gateway.
  EXPECT_THAT(errorsOf(vs(R"(  hosts: ["*"]
  gateways: [istio-system/ingress]
  http:
  - route:
    - destination: {host: reviews}
)")),
              IsEmpty());
}

TEST(ValidateVirtualService, DelegateShape) {
  // No hosts = a delegate VirtualService: valid with HTTP routes only.
  EXPECT_THAT(errorsOf(vs(R"(  http:
  - route:
    - destination: {host: reviews}
)")),
              IsEmpty());
  EXPECT_THAT(
      errorsOf(vs(R"(  gateways: [mesh]
  tcp:
  - route:
    - destination: {host: reviews}
)")),
      ElementsAre(
          vsErr("line 6: spec.gateways: delegate virtual service must have no gateways specified"),
          vsErr("line 8: spec.tcp: delegate virtual service must have no tcp route specified")));
  EXPECT_THAT(errorsOf(vs(R"(  hosts: [reviews]
  http:
  - match:
    - uri: {regex: "/v[0-9]+"}
    delegate: {name: reviews-v2, namespace: team}
    route:
    - destination: {host: reviews}
)")),
              ElementsAre(vsErr("line 8: spec.http[0]: root HTTP route  must not specify route"),
                          vsErr("line 9: spec.http[0].match[0].uri: uri match does not support "
                                "regex match for delegating")));
  EXPECT_THAT(errorsOf(vs("  hosts: [reviews]\n")),
              ElementsAre(vsErr("line 6: spec: http, tcp or tls must be provided in virtual "
                                "service")));
}

TEST(ValidateVirtualService, RouteActionConflicts) {
  EXPECT_THAT(errorsOf(vs(R"(  hosts: [reviews]
  http:
  - redirect: {uri: /v2}
    route:
    - destination: {host: reviews}
  - name: empty
  - directResponse: {status: 700}
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
)")),
              ElementsAre(vsErr("line 8: spec.http[0]: HTTP route cannot contain both route and "
                                "redirect"),
                          vsErr("line 11: spec.http[1]: HTTP route, redirect or directResponse is "
                                "required"),
                          vsErr("line 12: spec.http[2]: HTTP route cannot contain both fault and "
                                "directResponse"),
                          vsErr("line 12: spec.http[2].directResponse.status: HTTP status 700 is "
                                "not in range 200-599")));
}

TEST(ValidateVirtualService, RegexesMustBeRe2) {
  EXPECT_THAT(
      errorsOf(vs(R"Y(  hosts: [reviews]
  http:
  - match:
    - uri:
        regex: "/api/(v1"
      headers:
        x-version:
          regex: "(?<name>a)"
        "bad header":
          exact: a
        "@request.auth.claims.group":
          exact: admin
    rewrite:
      uriRegexRewrite: {match: "[z-a]", rewrite: "/x"}
    route:
    - destination: {host: reviews}
)Y")),
      ElementsAre(
          vsErr("line 10: spec.http[0].match[0].uri.regex: invalid regex "
                "\"/api/(v1\": missing ): /api/(v1; Istio uses RE2 style "
                "regex-based match (https://github.com/google/re2/wiki/Syntax)"),
          vsErr("line 13: spec.http[0].match[0].headers.x-version.regex: invalid "
                "regex \"(?<name>a)\": invalid perl operator: (?<; Istio uses RE2 "
                "style regex-based match (https://github.com/google/re2/wiki/Syntax)"),
          vsErr("line 15: spec.http[0].match[0].headers.bad header: header name bad "
                "header is not a valid header name"),
          vsErr("line 17: spec.http[0].match[0].headers.@request.auth.claims.group: "
                "JWT claim based routing (key: @request.auth.claims.group) is only "
                "supported for gateway, found no gateways"),
          vsErr("line 19: spec.http[0].rewrite.uriRegexRewrite.match: invalid "
                "regex \"[z-a]\": invalid character class range: z-a; Istio uses "
                "RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)")));
}

TEST(ValidateVirtualService, Durations) {
  EXPECT_THAT(errorsOf(vs(R"(  hosts: [reviews]
  http:
  - timeout: 500us
    retries:
      attempts: 3
      perTryTimeout: 1500us
      retryOn: 5xx,gateway-error,503,bogus
    fault:
      delay:
        fixedDelay: 7q
    route:
    - destination: {host: reviews}
)")),
              ElementsAre(vsErr("line 15: spec.http[0].fault.delay.fixedDelay: invalid duration "
                                "\"7q\" (expected e.g. \"5s\", \"100ms\", \"1m30s\")")));
  EXPECT_THAT(errorsOf(vs(R"(  hosts: [reviews]
  http:
  - timeout: 500us
    retries:
      attempts: 3
      perTryTimeout: 1500us
      retryOn: 5xx,gateway-error,503,bogus
    route:
    - destination: {host: reviews}
)")),
              ElementsAre(vsErr("line 8: spec.http[0].timeout: duration must be greater than 1ms"),
                          vsErr("line 11: spec.http[0].retries.perTryTimeout: only durations to "
                                "ms precision are supported"),
                          vsErr("line 12: spec.http[0].retries.retryOn: \"bogus\" is not a valid "
                                "retryOn policy")));
}

TEST(ValidateVirtualService, DestinationsPortsAndMatches) {
  EXPECT_THAT(errorsOf(vs(R"(  hosts: [reviews]
  http:
  - match:
    - port: 70000
      sourceNamespace: Bad_NS
      gateways: [bad/gate/way]
    route:
    - destination:
        host: "*"
        subset: V_1
        port: {number: 0}
    mirror: {host: reviews}
    mirrors:
    - destination: {host: reviews}
)")),
              ElementsAre(vsErr("line 8: spec.http[0]: HTTP route cannot contain both mirror and "
                                "mirrors"),
                          vsErr("line 9: spec.http[0].match[0].port: port number 70000 must be in "
                                "the range 1..65535"),
                          vsErr("line 10: spec.http[0].match[0].sourceNamespace: sourceNamespace "
                                "match Bad_NS is invalid"),
                          vsErr("line 11: spec.http[0].match[0].gateways[0]: invalid value for "
                                "gateway name: \"gate/way\""),
                          vsErr("line 14: spec.http[0].route[0].destination.host: invalid "
                                "destination host *"),
                          vsErr("line 15: spec.http[0].route[0].destination.subset: subset name is "
                                "invalid: V_1"),
                          vsErr("line 16: spec.http[0].route[0].destination.port.number: port "
                                "number 0 must be in the range 1..65535")));
}

TEST(ValidateVirtualService, FaultRedirectCorsHeaders) {
  EXPECT_THAT(
      errorsOf(vs(R"(  hosts: [reviews]
  http:
  - fault:
      abort:
        httpStatus: 99
        percentage: {value: 101}
    corsPolicy:
      allowMethods: [GET, FETCH]
      maxAge: 1500ms
    headers:
      request:
        set: {":path": /x, host: a.com}
      response:
        remove: [host]
    rewrite: {authority: b.com}
    route:
    - destination: {host: reviews}
  - redirect: {uri: /a, prefixRewrite: /b}
  - redirect: {redirectCode: 200, scheme: ftp, authority: x}
  - fault: {}
    route:
    - destination: {host: reviews}
)")),
      ElementsAre(
          vsErr("line 10: spec.http[0].fault.abort.httpStatus: HTTP status 99 is not in range "
                "200-599"),
          vsErr("line 11: spec.http[0].fault.abort.percentage: percentage 101 is neither 0.0, nor "
                "in range [0.0001, 100.0]"),
          vsErr("line 13: spec.http[0].corsPolicy.allowMethods[1]: \"FETCH\" is not a supported "
                "HTTP method"),
          vsErr("line 14: spec.http[0].corsPolicy.maxAge: max_age duration is accurate only to "
                "seconds precision"),
          vsErr("line 17: spec.http[0].headers.request.set.:path: invalid header \":path\": "
                "header cannot have \":\" prefix"),
          vsErr("line 17: spec.http[0].headers.request.set.host: authority header cannot be set "
                "multiple times: have \"b.com\", attempting to set \"a.com\""),
          vsErr("line 19: spec.http[0].headers.response.remove[0]: invalid header \"host\": "
                "cannot set Host header"),
          vsErr("line 23: spec.http[1].redirect: redirect may only specify one of uri or "
                "prefixRewrite"),
          vsErr("line 24: spec.http[2].redirect.redirectCode: 200 is not a valid redirect code, "
                "must be 3xx"),
          vsErr("line 24: spec.http[2].redirect.scheme: invalid redirect scheme, must be \"http\" "
                "or \"https\""),
          vsErr("line 25: spec.http[3].fault: HTTP fault injection must have an abort and/or a "
                "delay")));
}

TEST(ValidateVirtualService, TlsAndTcpRoutes) {
  EXPECT_THAT(errorsOf(vs(R"(  hosts: ["*.wikipedia.org"]
  tls:
  - match:
    - sniHosts: [en.wikipedia.org, example.com]
      destinationSubnets: [10.0.0.0/33]
    route:
    - destination: {host: egress.istio-system.svc.cluster.local}
  - match: []
  tcp:
  - match:
    - port: 0
      destinationSubnets: [300.1.1.1]
)")),
              ElementsAre(vsErr("line 9: spec.tls[0].match[0].sniHosts[1]: SNI host "
                                "\"example.com\" is not a compatible subset of any of the virtual "
                                "service hosts: [*.wikipedia.org]"),
                          vsErr("line 10: spec.tls[0].match[0].destinationSubnets[0]: "
                                "10.0.0.0/33 is not a valid CIDR block"),
                          vsErr("line 13: spec.tls[1]: TLS route must have at least one match "
                                "condition"),
                          vsErr("line 13: spec.tls[1]: TLS route is required"),
                          vsErr("line 15: spec.tcp[0]: TCP route is required"),
                          vsErr("line 17: spec.tcp[0].match[0].destinationSubnets[0]: 300.1.1.1 "
                                "is not a valid IP")));
}

TEST(ValidateVirtualService, ExportTo) {
  EXPECT_THAT(errorsOf(vs(R"(  hosts: [reviews]
  exportTo: [".", default, "*"]
  http:
  - route:
    - destination: {host: reviews}
)")),
              ElementsAre(vsErr("line 7: spec.exportTo[1]: duplicate entries in exportTo for "
                                "entry default"),
                          vsErr("line 7: spec.exportTo: cannot have both public (*) and "
                                "non-public exportTo values for a resource")));
}

TEST(ValidateGateway, ServersNeedPortAndHosts) {
  const std::string gw = doc("networking.istio.io/v1beta1", "Gateway", R"(  selector:
    istio: ingressgateway
  servers:
  - hosts: ["*"]
  - port: {number: 80, name: http, protocol: HTTP}
  - port: {number: 443, name: http, protocol: HTTPS}
    hosts: [uk.bookinfo.com, "ns/short", "foo/*.bar.com"]
  - port: {number: 9999, name: weird, protocol: QUIC}
    hosts: ["*/*.example.com"]
    tls: {mode: SIMPLE}
)",
                             "public.gw");
  EXPECT_THAT(
      errorsOf(gw),
      ElementsAre(
          "t.yaml: document 1 (Gateway default/public.gw): line 4: metadata.name: invalid gateway "
          "name: \"public.gw\" (must be a DNS label, no dots)",
          "t.yaml: document 1 (Gateway default/public.gw): line 9: spec.servers[0].port: port is "
          "required",
          "t.yaml: document 1 (Gateway default/public.gw): line 10: spec.servers[1].hosts: server "
          "config must contain at least one host",
          "t.yaml: document 1 (Gateway default/public.gw): line 11: spec.servers[2].port.name: "
          "port names in servers must be unique: duplicate name http",
          "t.yaml: document 1 (Gateway default/public.gw): line 11: spec.servers[2]: server must "
          "have TLS settings for HTTPS/TLS protocols",
          "t.yaml: document 1 (Gateway default/public.gw): line 12: spec.servers[2].hosts[1]: "
          "short names (non FQDN) are not allowed",
          "t.yaml: document 1 (Gateway default/public.gw): line 13: spec.servers[3].port.protocol: "
          "invalid protocol \"QUIC\", supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, HTTPS, "
          "TLS, MONGO, REDIS, MYSQL, TCP",
          "t.yaml: document 1 (Gateway default/public.gw): line 15: spec.servers[3].tls: SIMPLE "
          "TLS requires a server certificate",
          "t.yaml: document 1 (Gateway default/public.gw): line 15: spec.servers[3].tls: SIMPLE "
          "TLS requires a private key"));
  EXPECT_THAT(errorsOf(doc("networking.istio.io/v1", "Gateway", "  selector: {istio: x}\n")),
              ElementsAre("t.yaml: document 1 (Gateway default/x): line 6: spec.servers: gateway "
                          "must have at least one server"));
}

TEST(ValidateGateway, TlsModes) {
  EXPECT_THAT(errorsOf(doc("networking.istio.io/v1", "Gateway", R"(  servers:
  - port: {number: 443, name: https, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: ISTIO_MUTUAL, credentialName: cert}
  - port: {number: 8443, name: https2, protocol: HTTPS}
    hosts: ["*"]
    tls: {mode: MUTUAL, serverCertificate: /c.pem, privateKey: /k.pem}
  - port: {number: 80, name: http, protocol: HTTP}
    hosts: ["*"]
    tls: {httpsRedirect: true}
  - port: {number: 8080, name: http2, protocol: HTTP}
    hosts: ["*"]
    tls: {mode: SIMPLE, credentialName: x}
)")),
              ElementsAre("t.yaml: document 1 (Gateway default/x): line 9: spec.servers[0].tls: "
                          "ISTIO_MUTUAL TLS cannot have associated credentialName",
                          "t.yaml: document 1 (Gateway default/x): line 12: spec.servers[1].tls: "
                          "MUTUAL TLS requires a client CA bundle",
                          "t.yaml: document 1 (Gateway default/x): line 18: spec.servers[3].tls: "
                          "server cannot have TLS settings for plain text HTTP ports"));
}

TEST(ValidateDestinationRule, Subsets) {
  EXPECT_THAT(errorsOf(doc("networking.istio.io/v1", "DestinationRule", R"(  host: reviews
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v1
    labels: {version: v1b}
  - labels: {version: v2}
  - name: v3
    labels: {"bad key!": v3}
    trafficPolicy: {}
)")),
              ElementsAre("t.yaml: document 1 (DestinationRule default/x): line 10: "
                          "spec.subsets[1].name: duplicate subset names: v1",
                          "t.yaml: document 1 (DestinationRule default/x): line 12: "
                          "spec.subsets[2].name: subset name cannot be empty",
                          "t.yaml: document 1 (DestinationRule default/x): line 14: "
                          "spec.subsets[3].labels.bad key!: invalid label key: \"bad key!\"",
                          "t.yaml: document 1 (DestinationRule default/x): line 15: "
                          "spec.subsets[3].trafficPolicy: traffic policy must have at least one "
                          "field"));
}

TEST(ValidateDestinationRule, TrafficPolicy) {
  EXPECT_THAT(
      errorsOf(doc("networking.istio.io/v1", "DestinationRule", R"(  host: "*.Example.com"
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie: {ttl: 0s}
        maglev: {tableSize: 1000}
    connectionPool:
      http: {http1MaxPendingRequests: -1, h2UpgradePolicy: UPGRADE, useClientProtocol: true}
    outlierDetection:
      maxEjectionPercent: 150
      consecutiveLocalOriginFailures: 3
    tls: {mode: MUTUAL}
    portLevelSettings:
    - port: {number: 80}
  exportTo: [".", "~"]
  workloadSelector:
    matchLabels: {app: "rev*"}
)")),
      ElementsAre(
          "t.yaml: document 1 (DestinationRule default/x): line 10: "
          "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name: name required for "
          "HttpCookie",
          "t.yaml: document 1 (DestinationRule default/x): line 11: "
          "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize: tableSize must be a "
          "prime number for maglev",
          "t.yaml: document 1 (DestinationRule default/x): line 13: "
          "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests: http1 max pending "
          "requests must be non-negative",
          "t.yaml: document 1 (DestinationRule default/x): line 13: "
          "spec.trafficPolicy.connectionPool.http.useClientProtocol: use client protocol must not "
          "be true when H2UpgradePolicy is UPGRADE",
          "t.yaml: document 1 (DestinationRule default/x): line 15: "
          "spec.trafficPolicy.outlierDetection.maxEjectionPercent: percentage 150 is not in range "
          "0..100",
          "t.yaml: document 1 (DestinationRule default/x): line 16: "
          "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures: outlier detection "
          "consecutive local origin failures is specified, but split external local origin errors "
          "is set to false",
          "t.yaml: document 1 (DestinationRule default/x): line 17: "
          "spec.trafficPolicy.tls.clientCertificate: client certificate required for mutual tls",
          "t.yaml: document 1 (DestinationRule default/x): line 17: "
          "spec.trafficPolicy.tls.privateKey: private key required for mutual tls",
          "t.yaml: document 1 (DestinationRule default/x): line 19: "
          "spec.trafficPolicy.portLevelSettings[0]: port traffic policy must have at least one "
          "field",
          "t.yaml: document 1 (DestinationRule default/x): line 20: spec.exportTo: destination "
          "rule with workload selector cannot have multiple entries in exportTo",
          "t.yaml: document 1 (DestinationRule default/x): line 20: spec.exportTo: cannot export "
          "to no one (~) and someone",
          "t.yaml: document 1 (DestinationRule default/x): line 22: "
          "spec.workloadSelector.matchLabels.app: wildcard is not supported in selector: "
          "\"app=rev*\""));
}

TEST(ValidateServiceEntry, ResolutionRules) {
  const std::string prefix = "t.yaml: document 1 (ServiceEntry default/x): ";
  EXPECT_THAT(errorsOf(doc("networking.istio.io/v1", "ServiceEntry", R"(  hosts: ["*.foo.com"]
  ports: [{number: 443, name: https, protocol: TLS}]
  resolution: DNS
)")),
              ElementsAre(prefix + "line 6: spec.hosts[0]: hosts must be FQDN or contain only "
                                   "prefix wildcards if no endpoints are provided for resolution "
                                   "mode DNS, domain name \"*.foo.com\" invalid (label \"*\" "
                                   "invalid)"));
  EXPECT_THAT(errorsOf(doc("networking.istio.io/v1", "ServiceEntry", R"(  hosts: [a.com]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: NONE
  endpoints: [{address: 1.1.1.1}]
)")),
              ElementsAre(prefix + "line 9: spec.endpoints: no endpoints should be provided for "
                                   "resolution type NONE"));
  EXPECT_THAT(errorsOf(doc("networking.istio.io/v1", "ServiceEntry", R"(  hosts: [a.com, b.com]
  addresses: [10.1.0.0/16]
  ports:
  - {number: 3306, name: mysql, protocol: TCP}
  - {number: 3306, name: mysql, protocol: tcp}
  resolution: DNS_ROUND_ROBIN
  endpoints:
  - address: db1.a.com
    ports: {mysql: 3306, admin: 9000}
  - address: "db_2"
)")),
              ElementsAre(prefix + "line 7: spec.addresses: CIDR addresses are allowed only for "
                                   "NONE/STATIC resolution types",
                          prefix + "line 9: spec.ports[0]: multiple hosts provided with non-HTTP, "
                                   "non-TLS ports",
                          prefix + "line 10: spec.ports[1].name: service entry port name "
                                   "\"mysql\" already defined",
                          prefix + "line 10: spec.ports[1].number: service entry port 3306 "
                                   "already defined",
                          prefix + "line 13: spec.endpoints: there must only be 0 or 1 endpoint "
                                   "for resolution mode DNS_ROUND_ROBIN",
                          prefix + "line 14: spec.endpoints[0].ports.admin: endpoint port 9000 "
                                   "is not defined by the service entry",
                          prefix + "line 15: spec.endpoints[1].address: endpoint address "
                                   "\"db_2\" is not a valid FQDN or an IP address"));
  EXPECT_THAT(errorsOf(doc("networking.istio.io/v1", "ServiceEntry", R"(  hosts: ["*"]
  ports: [{number: 80, name: http, protocol: HTTP}]
  resolution: STATIC
  workloadSelector: {labels: {app: x}}
  endpoints: [{address: example.com}]
)")),
              ElementsAre(prefix + "line 6: spec: only one of workloadSelector or endpoints is "
                                   "allowed in Service Entry",
                          prefix + "line 6: spec.hosts[0]: invalid host *",
                          prefix + "line 10: spec.endpoints[0].address: endpoint address "
                                   "\"example.com\" is not a valid IP address"));
}

TEST(ValidatePeerAuthentication, Modes) {
  const std::string prefix = "t.yaml: document 1 (PeerAuthentication default/x): ";
  EXPECT_THAT(errorsOf(doc("security.istio.io/v1", "PeerAuthentication", R"(  mtls: {mode: STRICTLY}
)")),
              ElementsAre(prefix + "line 6: spec.mtls.mode: invalid value \"STRICTLY\" (expected "
                                   "one of UNSET, DISABLE, PERMISSIVE, STRICT)"));
  EXPECT_THAT(
      errorsOf(doc("security.istio.io/v1beta1", "PeerAuthentication", R"(  mtls: {mode: STRICT}
  portLevelMtls:
    8080: {mode: DISABLE}
)")),
      ElementsAre(prefix + "line 8: spec.portLevelMtls: mesh/namespace peer "
                           "authentication cannot have port level mTLS"));
  EXPECT_THAT(errorsOf(doc("security.istio.io/v1", "PeerAuthentication", R"(  selector:
    matchLabels: {app: reviews}
  portLevelMtls:
    0: {mode: DISABLE}
    http: {mode: STRICT}
)")),
              ElementsAre(prefix + "line 10: spec.portLevelMtls.http: expected an integer, got a "
                                   "string"));
  EXPECT_THAT(errorsOf(doc("security.istio.io/v1", "PeerAuthentication", R"(  selector:
    matchLabels: {app: reviews}
  portLevelMtls:
    0: {mode: DISABLE}
)")),
              ElementsAre(prefix + "line 9: spec.portLevelMtls.0: port must be in range 1..65535"));
}

TEST(ValidateAuthorizationPolicy, ActionAndRuleShape) {
  const std::string prefix = "t.yaml: document 1 (AuthorizationPolicy default/x): ";
  // Istio's special shapes are valid: allow-nothing, allow-all, deny-all.
  EXPECT_THAT(errorsOf(doc("security.istio.io/v1", "AuthorizationPolicy", "  {}\n")), IsEmpty());
  EXPECT_THAT(errorsOf(doc("security.istio.io/v1", "AuthorizationPolicy", "  rules: [{}]\n")),
              IsEmpty());
  EXPECT_THAT(errorsOf(doc("security.istio.io/v1", "AuthorizationPolicy",
                           "  action: DENY\n  rules: [{}]\n")),
              IsEmpty());
  EXPECT_THAT(errorsOf(doc("security.istio.io/v1", "AuthorizationPolicy", "  action: DENY\n")),
              ElementsAre(prefix + "line 6: spec.rules: DENY action without `rules` is meaningless "
                                   "as it will never be triggered, add an empty rule `{}` if you "
                                   "want it be triggered for every request"));
  EXPECT_THAT(errorsOf(doc("security.istio.io/v1", "AuthorizationPolicy", R"(  action: CUSTOM
  rules:
  - to: [{operation: {paths: ["/admin/{**}/x"]}}]
)")),
              ElementsAre(prefix + "line 6: spec.provider.name: `provider.name` must not be empty",
                          prefix + "line 8: spec.rules[0].to[0].operation.paths[0]: invalid or "
                                   "unsupported path template \"/admin/{**}/x\" ({*} matches one "
                                   "segment, {**} only as the last segment)"));
  EXPECT_THAT(errorsOf(doc("security.istio.io/v1", "AuthorizationPolicy", R"(  selector:
    matchLabels: {app: httpbin}
  targetRef: {kind: Gateway, group: gateway.networking.k8s.io, name: gw}
  action: ALLOW
  provider: {name: ext}
  rules:
  - from:
    - source: {}
    - source:
        principals: [cluster.local/ns/default/sa/sleep]
        serviceAccounts: [default/sleep]
        ipBlocks: [10.0.0.0/8, 1.2.3.999]
    to:
    - operation: {ports: ["8080", http], methods: [GET, ""]}
    when:
    - key: request.headers[x-token]
    - key: source.ipp
      values: [1.2.3.4]
    - key: destination.port
      notValues: ["99999"]
)")),
              ElementsAre(prefix + "line 6: spec: only one of targetRefs or workloadSelector can "
                                   "be set",
                          prefix + "line 10: spec.provider: `provider` must not be with non CUSTOM "
                                   "action, found ALLOW",
                          prefix + "line 13: spec.rules[0].from[0].source: `from.source` must not "
                                   "be empty",
                          prefix + "line 15: spec.rules[0].from[1].source: cannot set "
                                   "serviceAccounts with namespaces or principals",
                          prefix + "line 17: spec.rules[0].from[1].source.ipBlocks[1]: invalid IP "
                                   "address or CIDR block: \"1.2.3.999\"",
                          prefix + "line 19: spec.rules[0].to[0].operation.ports[1]: invalid port: "
                                   "\"http\"",
                          prefix + "line 19: spec.rules[0].to[0].operation.methods[1]: empty value "
                                   "not allowed in methods",
                          prefix + "line 21: spec.rules[0].when[0]: at least one of `values` or "
                                   "`notValues` must be set for key request.headers[x-token]",
                          prefix + "line 22: spec.rules[0].when[1].key: unknown attribute "
                                   "\"source.ipp\"",
                          prefix + "line 25: spec.rules[0].when[2].notValues[0]: invalid port: "
                                   "\"99999\""));
}

TEST(ValidateRequestAuthentication, JwtRules) {
  const std::string prefix = "t.yaml: document 1 (RequestAuthentication foo/jwt): ";
  EXPECT_THAT(errorsOf(R"(apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: jwt
  namespace: foo
spec:
  selector:
    matchLabels: {app: httpbin}
  jwtRules:
  - issuer: "testing@secure.istio.io"
    jwksUri: "https://raw.githubusercontent.com/istio/istio/release-1.22/security/tools/jwt/samples/jwks.json"
  - audiences: [""]
    jwks_uri: "ftp://keys"
    fromHeaders: [{prefix: "Bearer "}]
    outputClaimToHeaders: [{header: "x bad", claim: sub}]
    timeout: 0s
)"),
              ElementsAre(prefix + "line 12: spec.jwtRules[1].audiences[0]: audience must be "
                                   "non-empty string",
                          prefix + "line 13: spec.jwtRules[1].jwksUri: jwks URI \"ftp://keys\" "
                                   "must be an http:// or https:// URL with a host",
                          prefix + "line 14: spec.jwtRules[1].fromHeaders[0].name: location "
                                   "header name must be non-empty string",
                          prefix + "line 15: spec.jwtRules[1].outputClaimToHeaders[0].header: "
                                   "invalid header name \"x bad\"",
                          prefix + "line 16: spec.jwtRules[1].timeout: duration must be greater "
                                   "than 1ms"));
}

TEST(ValidateSidecar, Shape) {
  const std::string prefix = "t.yaml: document 1 (Sidecar default/x): ";
  EXPECT_THAT(errorsOf(doc("networking.istio.io/v1", "Sidecar",
                           "  workloadSelector: {labels: {app: a}}\n")),
              ElementsAre(prefix + "line 6: spec: sidecar: empty configuration provided"));
  EXPECT_THAT(
      errorsOf(doc("networking.istio.io/v1", "Sidecar", R"(  egress:
  - hosts: ["./*", "istio-system/*"]
  - port: {number: 9080, protocol: HTTP, name: http}
    hosts: [reviews.default.svc.cluster.local]
  ingress:
  - port: {number: 9080, protocol: HTTP, name: http}
    defaultEndpoint: 10.0.0.1:8080
)")),
      ElementsAre(prefix + "line 7: spec.egress[0]: sidecar: the egress listener with "
                           "empty port should be the last listener in the list",
                  prefix + "line 9: spec.egress[1].hosts[0]: host must be of form "
                           "namespace/dnsName",
                  prefix + "line 12: spec.ingress[0].defaultEndpoint: sidecar: "
                           "defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,"
                           "[::1]:port,[::]:port,unix://filepath or unset"));
}

TEST(ValidateWorkloads, EntryAndGroup) {
  EXPECT_THAT(errorsOf(doc("networking.istio.io/v1", "WorkloadEntry", R"(  address: "not an address"
  ports: {http: 0}
)")),
              ElementsAre("t.yaml: document 1 (WorkloadEntry default/x): line 6: spec.address: "
                          "endpoint address \"not an address\" is not a valid FQDN or an IP "
                          "address",
                          "t.yaml: document 1 (WorkloadEntry default/x): line 7: spec.ports.http: "
                          "port number 0 must be in the range 1..65535"));
  EXPECT_THAT(
      errorsOf(doc("networking.istio.io/v1", "WorkloadGroup", "  metadata: {labels: {app: a}}\n")),
      ElementsAre("t.yaml: document 1 (WorkloadGroup default/x): line 6: spec.template: "
                  "template is required"));
}

TEST(ValidateTelemetry, Sampling) {
  EXPECT_THAT(errorsOf(doc("telemetry.istio.io/v1", "Telemetry", R"(  tracing:
  - providers: [{name: zipkin}]
    randomSamplingPercentage: 101
  metrics:
  - overrides:
    - match: {metric: REQUEST_COUNT, mode: CLIENT}
      tagOverrides:
        request_host: {operation: UPSERT}
)")),
              ElementsAre("t.yaml: document 1 (Telemetry default/x): line 8: "
                          "spec.tracing[0].randomSamplingPercentage: randomSamplingPercentage must "
                          "be in range [0.0, 100.0]",
                          "t.yaml: document 1 (Telemetry default/x): line 13: "
                          "spec.metrics[0].overrides[0].tagOverrides.request_host: must set value "
                          "when operation is UPSERT"));
}

TEST(ValidateMetadata, NamesAndNamespaces) {
  EXPECT_THAT(errorsOf(R"(apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: Reviews
  namespace: my_ns
spec:
  host: reviews
)"),
              ElementsAre("t.yaml: document 1 (DestinationRule my_ns/Reviews): line 4: "
                          "metadata.name: invalid name \"Reviews\": must be lowercase letters, "
                          "digits, '-' and '.' (DNS-1123 subdomain)",
                          "t.yaml: document 1 (DestinationRule my_ns/Reviews): line 5: "
                          "metadata.namespace: invalid namespace \"my_ns\": must be a DNS-1123 "
                          "label"));
}

TEST(ValidateHelpers, DomainsPortsAddresses) {
  EXPECT_EQ(checkWildcardDomain("*.bookinfo.com"), "");
  EXPECT_EQ(checkWildcardDomain("*"), "");
  EXPECT_EQ(checkWildcardDomain("reviews"), "");
  EXPECT_EQ(checkWildcardDomain("istio.io."), "");
  EXPECT_EQ(checkWildcardDomain(""), "empty domain name not allowed");
  EXPECT_EQ(checkWildcardDomain(std::string(256, 'a')),
            "domain name \"" + std::string(256, 'a') + "\" too long (max 255)");
  EXPECT_EQ(checkFqdn("*.bookinfo.com"),
            "domain name \"*.bookinfo.com\" invalid (label \"*\" invalid)");
  EXPECT_EQ(checkPort(65535), "");
  EXPECT_EQ(checkPort(65536), "port number 65536 must be in the range 1..65535");
  EXPECT_EQ(checkIpSubnet("2001:db8::/32"), "");
  EXPECT_EQ(checkIpSubnet("10.0.0.1"), "");
  EXPECT_EQ(checkIpSubnet("10.0.0.1/"), "10.0.0.1/ is not a valid CIDR block");
  EXPECT_EQ(checkRegex(std::string(1025, 'a')), "regex is too large, max length allowed is 1024");
}

}  // namespace
}  // namespace mast::control::config
