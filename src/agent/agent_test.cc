#include <gtest/gtest.h>

#include <thread>

#include "agent/agent.h"
#include "agent/bootstrap.h"
#include "agent/http.h"
#include "agent/iptables.h"
#include "agent/metrics.h"
#include "agent/readiness.h"

namespace mast::agent {
namespace {

std::string joinLines(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& l : v) out += l + "\n";
  return out;
}

// Istio's default injection (REDIRECT, all inbound except 15090/15021/15020, all outbound),
// as in the spec digest and istio-iptables' golden files (multiport for several ports).
TEST(CaptureRules, IstioDefaultGolden) {
  CaptureConfig c;
  EXPECT_EQ(joinLines(captureRules(c)),
            "-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN\n"
            "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n"
            "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006\n"
            "-A PREROUTING -p tcp -j ISTIO_INBOUND\n"
            "-A ISTIO_INBOUND -p tcp -m multiport --dports 15090,15021,15020 -j RETURN\n"
            "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT\n"
            "-A OUTPUT -j ISTIO_OUTPUT\n"
            "-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN\n"
            "-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner "
            "1337 -j ISTIO_IN_REDIRECT\n"
            "-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN\n"
            "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN\n"
            "-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner "
            "1337 -j ISTIO_IN_REDIRECT\n"
            "-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN\n"
            "-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN\n"
            "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN\n"
            "-A ISTIO_OUTPUT -j ISTIO_REDIRECT\n");
}

// Include lists, excluded outbound ports and ranges (istio-iptables' inbound-ports-include,
// outbound-ports-exclude-single and ip-range shapes).
TEST(CaptureRules, IncludeListsAndExcludesGolden) {
  CaptureConfig c;
  c.proxy_uid = 3;
  c.proxy_gid = 4;
  ASSERT_TRUE(parsePortSpec("32000,31000", c.inbound_all, c.inbound_ports).ok());
  ASSERT_TRUE(parseCidrSpec("9.9.0.0/16", c.outbound_all, c.include_outbound_cidrs).ok());
  bool all = false;
  ASSERT_TRUE(parseCidrSpec("1.1.2.3/16,10.0.0.5", all, c.exclude_outbound_cidrs).ok());
  c.exclude_outbound_ports = {22};
  EXPECT_EQ(joinLines(captureRules(c)),
            "-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN\n"
            "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001\n"
            "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006\n"
            "-A PREROUTING -p tcp -j ISTIO_INBOUND\n"
            "-A ISTIO_INBOUND -p tcp --dport 32000 -j ISTIO_IN_REDIRECT\n"
            "-A ISTIO_INBOUND -p tcp --dport 31000 -j ISTIO_IN_REDIRECT\n"
            "-A OUTPUT -j ISTIO_OUTPUT\n"
            "-A ISTIO_OUTPUT -p tcp --dport 22 -j RETURN\n"
            "-A ISTIO_OUTPUT -p udp --dport 22 -j RETURN\n"
            "-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN\n"
            "-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner "
            "3 -j ISTIO_IN_REDIRECT\n"
            "-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 3 -j RETURN\n"
            "-A ISTIO_OUTPUT -m owner --uid-owner 3 -j RETURN\n"
            "-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner "
            "4 -j ISTIO_IN_REDIRECT\n"
            "-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 4 -j RETURN\n"
            "-A ISTIO_OUTPUT -m owner --gid-owner 4 -j RETURN\n"
            "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN\n"
            "-A ISTIO_OUTPUT -d 1.1.0.0/16 -j RETURN\n"
            "-A ISTIO_OUTPUT -d 10.0.0.5/32 -j RETURN\n"
            "-A ISTIO_OUTPUT -d 9.9.0.0/16 -j ISTIO_REDIRECT\n"
            "-A ISTIO_OUTPUT -j RETURN\n");
}

TEST(CaptureRules, NoInboundNoOutboundRedirect) {
  CaptureConfig c;
  ASSERT_TRUE(parsePortSpec("", c.inbound_all, c.inbound_ports).ok());
  ASSERT_TRUE(parseCidrSpec("", c.outbound_all, c.include_outbound_cidrs).ok());
  std::string rules = joinLines(captureRules(c));
  EXPECT_EQ(rules.find("PREROUTING"), std::string::npos);
  EXPECT_EQ(rules.find("-j ISTIO_REDIRECT"), std::string::npos);
  EXPECT_NE(rules.find("-A OUTPUT -j ISTIO_OUTPUT"), std::string::npos);
}

TEST(CaptureRules, ManyExcludedPortsSplitIntoMultiportGroupsOf15) {
  CaptureConfig c;
  c.exclude_inbound_ports.clear();
  for (uint16_t p = 1; p <= 16; ++p) c.exclude_inbound_ports.push_back(p);
  std::string rules = joinLines(captureRules(c));
  EXPECT_NE(rules.find("--dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15 -j RETURN"),
            std::string::npos);
  EXPECT_NE(rules.find("-m multiport --dports 16 -j RETURN"), std::string::npos);
}

TEST(CaptureRules, ParseErrors) {
  bool all = false;
  std::vector<uint16_t> ports;
  EXPECT_FALSE(parsePortSpec("80,http", all, ports).ok());
  EXPECT_FALSE(parsePortSpec("70000", all, ports).ok());
  EXPECT_TRUE(parsePortSpec("*", all, ports).ok());
  EXPECT_TRUE(all);
  std::vector<std::string> cidrs;
  EXPECT_FALSE(parseCidrSpec("10.0.0.0/33", all, cidrs).ok());
  EXPECT_FALSE(parseCidrSpec("fd00::/8", all, cidrs).ok());
}

TEST(CaptureRules, InstallReplacesExistingJumpsAndCleanupRemovesThem) {
  const char* save =
      "# Generated by iptables-save\n*nat\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      ":ISTIO_INBOUND - [0:0]\n:ISTIO_OUTPUT - [0:0]\n:ISTIO_OUTPUT_DNS - [0:0]\n"
      "-A PREROUTING -p tcp -j ISTIO_INBOUND\n-A OUTPUT -j ISTIO_OUTPUT\n"
      "-A OUTPUT -j ISTIO_OUTPUT_DNS\n-A OUTPUT -p tcp -j ISTIO_OUTPUT\n"
      "-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN\nCOMMIT\n";
  CaptureConfig c;
  std::string in = renderInstall(c, save);
  EXPECT_EQ(in.rfind("*nat\n:ISTIO_INBOUND - [0:0]\n:ISTIO_REDIRECT - [0:0]\n"
                     ":ISTIO_IN_REDIRECT - [0:0]\n:ISTIO_OUTPUT - [0:0]\n"
                     "-D PREROUTING -p tcp -j ISTIO_INBOUND\n-D OUTPUT -j ISTIO_OUTPUT\n"
                     "-D OUTPUT -p tcp -j ISTIO_OUTPUT\n-A ISTIO_INBOUND",
                     0),
            0u)
      << in;
  EXPECT_EQ(in.find("ISTIO_OUTPUT_DNS"), std::string::npos);  // not ours
  EXPECT_TRUE(in.ends_with("-A ISTIO_OUTPUT -j ISTIO_REDIRECT\nCOMMIT\n"));
  std::string out = renderCleanup(save);
  EXPECT_EQ(out,
            "*nat\n-D PREROUTING -p tcp -j ISTIO_INBOUND\n-D OUTPUT -j ISTIO_OUTPUT\n"
            "-D OUTPUT -p tcp -j ISTIO_OUTPUT\n:ISTIO_INBOUND - [0:0]\n:ISTIO_REDIRECT - [0:0]\n"
            ":ISTIO_IN_REDIRECT - [0:0]\n:ISTIO_OUTPUT - [0:0]\n-X ISTIO_INBOUND\n"
            "-X ISTIO_REDIRECT\n-X ISTIO_IN_REDIRECT\n-X ISTIO_OUTPUT\nCOMMIT\n");
}

BootstrapOptions sample() {
  BootstrapOptions o;
  o.ip = "10.1.2.3";
  o.name = "reviews-v1";
  o.ns = "bookinfo";
  o.labels = {{"app", "reviews"}, {"version", "v1"}};
  o.service_account = "bookinfo-reviews";
  o.auto_register_group = "reviews";
  o.discovery_host = "127.0.0.1";
  o.discovery_port = 15010;
  return o;
}

TEST(Bootstrap, NodeIdAndMetadata) {
  auto o = sample();
  EXPECT_EQ(nodeId(o), "sidecar~10.1.2.3~reviews-v1.bookinfo~bookinfo.svc.cluster.local");
  o.type = "router";
  o.dns_domain = "example.org";
  EXPECT_EQ(nodeId(o), "router~10.1.2.3~reviews-v1.bookinfo~example.org");
  auto b = makeBootstrap(sample());
  const auto& meta = b["node"]["metadata"];
  EXPECT_EQ(meta["LABELS"], (nlohmann::json{{"app", "reviews"}, {"version", "v1"}}));
  EXPECT_EQ(meta["NAMESPACE"], "bookinfo");
  EXPECT_EQ(meta["SERVICE_ACCOUNT"], "bookinfo-reviews");
  EXPECT_EQ(meta["WORKLOAD_NAME"], "reviews-v1");
  EXPECT_EQ(meta["AUTO_REGISTER_GROUP"], "reviews");
  EXPECT_EQ(meta["INSTANCE_IPS"], "10.1.2.3");
  EXPECT_FALSE(meta.contains("INTERCEPTION_MODE"));
  auto no_group = sample();
  no_group.auto_register_group.clear();
  EXPECT_FALSE(makeBootstrap(no_group)["node"]["metadata"].contains("AUTO_REGISTER_GROUP"));
}

TEST(Bootstrap, AdsAdminAndPrometheusListener) {
  auto o = sample();
  o.admin_port = 16000;
  o.stats_port = 16090;
  auto b = makeBootstrap(o);
  EXPECT_EQ(b["admin"]["address"]["socket_address"]["address"], "127.0.0.1");
  EXPECT_EQ(b["admin"]["address"]["socket_address"]["port_value"], 16000);
  // Announced in the node metadata as Istio's ProxyConfig (mastctl proxy-config PROXY reads it).
  EXPECT_EQ(b["node"]["metadata"]["PROXY_CONFIG"]["proxyAdminPort"], 16000);
  EXPECT_EQ(makeBootstrap(sample())["node"]["metadata"]["PROXY_CONFIG"]["proxyAdminPort"], 15000);
  EXPECT_EQ(b["dynamic_resources"]["lds_config"]["ads"], nlohmann::json::object());
  EXPECT_EQ(b["dynamic_resources"]["cds_config"]["ads"], nlohmann::json::object());
  EXPECT_EQ(b["dynamic_resources"]["ads_config"]["grpc_services"][0]["envoy_grpc"]["cluster_name"],
            "xds-grpc");
  const auto& clusters = b["static_resources"]["clusters"];
  ASSERT_EQ(clusters.size(), 2u);
  EXPECT_EQ(clusters[0]["name"], "xds-grpc");
  EXPECT_EQ(clusters[0]["type"], "STATIC");
  EXPECT_TRUE(
      clusters[0]["typed_extension_protocol_options"]
              ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicit_http_config"]
                  .contains("http2_protocol_options"));
  EXPECT_EQ(clusters[1]["name"], "prometheus_stats");
  EXPECT_EQ(clusters[1]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
                    ["socket_address"]["port_value"],
            16000);
  const auto& l = b["static_resources"]["listeners"][0];
  EXPECT_EQ(l["address"]["socket_address"]["port_value"], 16090);
  auto route = l["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"]
                [0]["routes"][0];
  EXPECT_EQ(route["match"]["prefix"], "/stats/prometheus");
  EXPECT_EQ(route["route"]["cluster"], "prometheus_stats");
  o.discovery_host = "mastd.istio-system.svc";
  EXPECT_EQ(makeBootstrap(o)["static_resources"]["clusters"][0]["type"], "STRICT_DNS");
}

TEST(Bootstrap, Parsers) {
  auto hp = parseHostPort("10.0.0.1:15010");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->first, "10.0.0.1");
  EXPECT_EQ(hp->second, 15010);
  EXPECT_EQ(parseHostPort("[::1]:15010")->first, "::1");
  EXPECT_FALSE(parseHostPort("mastd").ok());
  EXPECT_FALSE(parseHostPort("mastd:0").ok());
  auto w = parseWorkload("reviews-v1.bookinfo");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->first, "reviews-v1");
  EXPECT_EQ(w->second, "bookinfo");
  EXPECT_FALSE(parseWorkload("reviews").ok());
  EXPECT_FALSE(parseWorkload("a.b.c").ok());
  auto kv = parseKeyValues("app=reviews,version=v1");
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->at("version"), "v1");
  EXPECT_FALSE(parseKeyValues("app").ok());
  EXPECT_EQ(parseDuration("60s")->count(), 60000);
  EXPECT_EQ(parseDuration("250ms")->count(), 250);
  EXPECT_EQ(parseDuration("2m")->count(), 120000);
  EXPECT_EQ(parseDuration("3")->count(), 3000);
  EXPECT_FALSE(parseDuration("soon").ok());
  EXPECT_FALSE(parseDuration("5d").ok());
  auto u = parseUrl("http://127.0.0.1:9100/metrics?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, 9100);
  EXPECT_EQ(u->target, "/metrics?x=1");
  EXPECT_EQ(parseUrl("http://app")->target, "/");
  EXPECT_FALSE(parseUrl("https://app/").ok());
}

TEST(Metrics, MergeGroupsFamiliesAndDeduplicatesTypeLines) {
  std::string proxy =
      "# TYPE envoy_cluster_upstream_rq counter\n"
      "envoy_cluster_upstream_rq{cluster=\"a\"} 3\n"
      "# TYPE shared_total counter\n"
      "shared_total{src=\"proxy\"} 1\n"
      "# TYPE envoy_rq_time histogram\n"
      "envoy_rq_time_bucket{le=\"1\"} 1\n"
      "envoy_rq_time_sum 0.5\n"
      "envoy_rq_time_count 1\n";
  std::string app =
      "# HELP shared_total Shared.\n"
      "# TYPE shared_total counter\n"
      "shared_total{src=\"app\"} 2\n"
      "# HELP app_up App.\n"
      "# TYPE app_up gauge\n"
      "app_up 1\n"
      "# EOF\n";
  std::string merged = mergePrometheus({proxy, app});
  EXPECT_EQ(merged,
            "# TYPE envoy_cluster_upstream_rq counter\n"
            "envoy_cluster_upstream_rq{cluster=\"a\"} 3\n"
            "# HELP shared_total Shared.\n"
            "# TYPE shared_total counter\n"
            "shared_total{src=\"proxy\"} 1\n"
            "shared_total{src=\"app\"} 2\n"
            "# TYPE envoy_rq_time histogram\n"
            "envoy_rq_time_bucket{le=\"1\"} 1\n"
            "envoy_rq_time_sum 0.5\n"
            "envoy_rq_time_count 1\n"
            "# HELP app_up App.\n"
            "# TYPE app_up gauge\n"
            "app_up 1\n");
  EXPECT_EQ(mergePrometheus({proxy, ""}), proxy);
}

nlohmann::json dump(const std::string& cds_version, const std::string& lds_version, int listeners) {
  nlohmann::json l = {{"@type", "type.googleapis.com/envoy.admin.v3.ListenersConfigDump"},
                      {"dynamic_listeners", nlohmann::json::array()}};
  if (!lds_version.empty()) l["version_info"] = lds_version;
  for (int i = 0; i < listeners; ++i) l["dynamic_listeners"].push_back({{"name", "l"}});
  nlohmann::json c = {{"@type", "type.googleapis.com/envoy.admin.v3.ClustersConfigDump"}};
  if (!cds_version.empty()) c["version_info"] = cds_version;
  return {{"configs", nlohmann::json::array({c, l})}};
}

TEST(Readiness, NeedsLiveAndAcceptedListenersAndClusters) {
  EXPECT_FALSE(evaluateReadiness(503, "INITIALIZING\n", dump("c1", "l1", 1)).ready);
  EXPECT_EQ(evaluateReadiness(503, "INITIALIZING\n", {}).reason, "proxy state INITIALIZING");
  // LIVE after the initial-fetch timeout, but nothing accepted: not ready.
  EXPECT_EQ(evaluateReadiness(200, "LIVE\n", dump("", "", 0)).reason,
            "no clusters (CDS) accepted yet");
  EXPECT_EQ(evaluateReadiness(200, "LIVE\n", dump("c1", "", 0)).reason,
            "no listeners (LDS) accepted yet");
  EXPECT_EQ(evaluateReadiness(200, "LIVE\n", dump("c1", "l1", 0)).reason, "no dynamic listeners");
  EXPECT_TRUE(evaluateReadiness(200, "LIVE\n", dump("c1", "l1", 2)).ready);
}

TEST(Http, ServerAndClientRoundTrip) {
  HttpServer server("test", [](const HttpRequest& r) {
    return HttpResponse{r.path == "/echo" ? 200 : 404, "text/plain",
                        r.method + " " + r.path + " " + r.query + " " + r.body};
  });
  ASSERT_TRUE(server.listen("127.0.0.1", 0).ok());
  server.start();
  auto r = httpRequest("127.0.0.1", server.port(), "POST", "/echo?a=1", "hello");
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "POST /echo a=1 hello");
  EXPECT_EQ(httpRequest("127.0.0.1", server.port(), "GET", "/nope")->status, 404);
  server.stop();
  auto gone = httpRequest("127.0.0.1", server.port(), "GET", "/echo");
  EXPECT_FALSE(gone.ok());
  EXPECT_NE(gone.error().find("127.0.0.1"), std::string::npos);
}

TEST(Wait, TimesOutWithoutAServerAndSucceedsWithOne) {
  HttpServer server("health", [](const HttpRequest& r) {
    return HttpResponse{r.path == "/healthz/ready" ? 200 : 404, "text/plain", ""};
  });
  ASSERT_TRUE(server.listen("127.0.0.1", 0).ok());
  uint16_t port = server.port();
  // Bound but not accepting: connections queue, requests time out -> not ready.
  EXPECT_EQ(
      waitReady("127.0.0.1", port, std::chrono::milliseconds(300), std::chrono::milliseconds(50)),
      1);
  server.start();
  EXPECT_EQ(waitReady("127.0.0.1", port, std::chrono::seconds(5), std::chrono::milliseconds(50)),
            0);
}

}  // namespace
}  // namespace mast::agent
