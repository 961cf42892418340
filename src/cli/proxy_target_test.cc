// matchProxy: which connected proxy `mastctl proxy-config TYPE PROXY` means, from an adsz answer
// shaped like mastd's /debug/adsz (node metadata values are strings; PROXY_CONFIG is JSON text).
#include "cli/proxy_target.h"

#include <gtest/gtest.h>

namespace mast::cli {
namespace {

using json = nlohmann::json;

json client(const std::string& name, const std::string& ns, const std::string& ip,
            json metadata = json::object(), bool proxyless = false) {
  std::string id = "sidecar~" + ip + "~" + name + "." + ns + "~" + ns + ".svc.cluster.local";
  return {{"node",
           {{"id", id},
            {"ip", ip},
            {"name", name},
            {"namespace", ns},
            {"metadata", metadata},
            {"proxyless", proxyless}}}};
}

json adsz(std::vector<json> clients) { return {{"clients", clients}}; }

TEST(MatchProxy, ByNameNodeIdAndUniquePrefix) {
  auto a = adsz({client("reviews-v1", "default", "10.0.0.1"),
                 client("reviews-v2", "default", "10.0.0.2"),
                 client("productpage-v1", "default", "10.0.0.3")});
  auto r = matchProxy(a, "productpage-v1.default");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->id, "sidecar~10.0.0.3~productpage-v1.default~default.svc.cluster.local");
  EXPECT_EQ(r->name, "productpage-v1.default");
  EXPECT_EQ(r->ip, "10.0.0.3");
  EXPECT_EQ(r->admin_port, 15000);
  r = matchProxy(a, "sidecar~10.0.0.2~reviews-v2.default~default.svc.cluster.local");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->name, "reviews-v2.default");
  r = matchProxy(a, "sidecar~10.0.0.1");  // a prefix of the node id
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->name, "reviews-v1.default");
  r = matchProxy(a, "prod");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->ip, "10.0.0.3");
}

TEST(MatchProxy, AnExactNameWinsOverLongerNamesItPrefixes) {
  auto a =
      adsz({client("web", "default", "10.0.0.1"), client("web", "default-canary", "10.0.0.2")});
  auto r = matchProxy(a, "web.default");
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->ip, "10.0.0.1");
}

TEST(MatchProxy, UnknownAndAmbiguousListTheCandidates) {
  auto a = adsz(
      {client("reviews-v1", "default", "10.0.0.1"), client("reviews-v2", "default", "10.0.0.2")});
  auto r = matchProxy(a, "reviews");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("\"reviews\" matches 2 proxies"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("reviews-v1.default"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("reviews-v2.default"), std::string::npos) << r.error();
  r = matchProxy(a, "ratings");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("no proxy named \"ratings\""), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("reviews-v1.default"), std::string::npos) << r.error();
  r = matchProxy(adsz({}), "ratings");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("no connected proxies"), std::string::npos) << r.error();
  EXPECT_FALSE(matchProxy(a, ""));
}

TEST(MatchProxy, OneEntryPerNodeAndNoProxylessClients) {
  // Two streams of one proxy are one candidate; a proxyless gRPC client has no admin.
  auto a = adsz({client("reviews-v1", "default", "10.0.0.1"),
                 client("reviews-v1", "default", "10.0.0.1"),
                 client("grpc-client", "default", "10.0.0.9", json::object(), true)});
  auto r = matchProxy(a, "reviews-v1");
  ASSERT_TRUE(r) << r.error();
  EXPECT_FALSE(matchProxy(a, "grpc-client.default"));
  EXPECT_NE(matchProxy(adsz({client("g", "default", "10.0.0.9", json::object(), true)}), "g")
                .error()
                .find("only proxyless gRPC clients"),
            std::string::npos);
}

TEST(MatchProxy, AdminPortFromProxyConfigMetadata) {
  auto port = [](json metadata) {
    auto r = matchProxy(adsz({client("w", "default", "10.0.0.1", metadata)}), "w.default");
    EXPECT_TRUE(r) << r.error();
    return r ? r->admin_port : 0;
  };
  EXPECT_EQ(port({{"PROXY_CONFIG", R"({"proxyAdminPort":15123,"discoveryAddress":"x:15010"})"}}),
            15123);
  EXPECT_EQ(port({{"PROXY_CONFIG", R"({"proxyAdminPort":"16000"})"}}), 16000);
  // Absent, unparsable or out of range: Istio's default.
  EXPECT_EQ(port(json::object()), 15000);
  EXPECT_EQ(port({{"PROXY_CONFIG", "not json"}}), 15000);
  EXPECT_EQ(port({{"PROXY_CONFIG", R"({"proxyAdminPort":70000})"}}), 15000);
}

TEST(NamespacesHolding, NoSuchDirectoryIsEmpty) {
  std::vector<std::string> errors;
  EXPECT_TRUE(namespacesHolding("10.0.0.1", "/nonexistent/netns", &errors).empty());
  EXPECT_TRUE(errors.empty());
}

}  // namespace
}  // namespace mast::cli
