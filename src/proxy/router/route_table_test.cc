#include "proxy/router/route_table.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "envoy/config/route/v3/route.pb.h"

namespace mast::router {
namespace {

std::shared_ptr<const RouteTable> build(const std::string& json) {
  envoy::config::route::v3::RouteConfiguration rc;
  auto st = google::protobuf::util::JsonStringToMessage(json, &rc);
  EXPECT_TRUE(st.ok()) << st.ToString();
  auto t = RouteTable::create(rc, nullptr);
  EXPECT_TRUE(t.ok()) << t.error();
  return t.ok() ? *t : nullptr;
}

std::string buildError(const std::string& json) {
  envoy::config::route::v3::RouteConfiguration rc;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &rc).ok());
  auto t = RouteTable::create(rc, nullptr);
  return t.ok() ? "" : t.error();
}

http::HeaderMap req(const std::string& authority, const std::string& path,
                    std::initializer_list<http::HeaderEntry> extra = {}) {
  http::HeaderMap h{{":method", "GET"}, {":authority", authority}, {":path", path}};
  for (const auto& e : extra) h.add(e.name, e.value);
  return h;
}

const std::string* clusterOf(const RouteTable& t, const http::HeaderMap& h, uint64_t r = 0) {
  const RouteEntry* e = t.route(h, r);
  return e ? e->selectCluster(h, r).name : nullptr;
}

TEST(RouteTableTest, DomainPrecedenceExactSuffixPrefixDefault) {
  auto t = build(R"({"virtual_hosts":[
    {"name":"exact","domains":["www.example.com","api.example.com:8080"],"routes":[{"match":{"prefix":"/"},"route":{"cluster":"exact"}}]},
    {"name":"suffix","domains":["*.example.com"],"routes":[{"match":{"prefix":"/"},"route":{"cluster":"suffix"}}]},
    {"name":"longsuffix","domains":["*.a.example.com"],"routes":[{"match":{"prefix":"/"},"route":{"cluster":"longsuffix"}}]},
    {"name":"prefix","domains":["foo.*"],"routes":[{"match":{"prefix":"/"},"route":{"cluster":"prefix"}}]},
    {"name":"any","domains":["*"],"routes":[{"match":{"prefix":"/"},"route":{"cluster":"any"}}]}]})");
  ASSERT_TRUE(t);
  EXPECT_EQ(*clusterOf(*t, req("www.example.com", "/")), "exact");
  EXPECT_EQ(*clusterOf(*t, req("WWW.Example.COM", "/")), "exact");
  EXPECT_EQ(*clusterOf(*t, req("api.example.com:8080", "/")), "exact");
  EXPECT_EQ(*clusterOf(*t, req("x.example.com", "/")), "suffix");
  EXPECT_EQ(*clusterOf(*t, req("b.a.example.com", "/")), "longsuffix");
  EXPECT_EQ(*clusterOf(*t, req("foo.bar", "/")), "prefix");
  EXPECT_EQ(*clusterOf(*t, req("other", "/")), "any");
  // "*.example.com" needs something before the suffix.
  EXPECT_EQ(*clusterOf(*t, req("example.com", "/")), "any");
}

TEST(RouteTableTest, PathMatchingInOrder) {
  auto t = build(R"({"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
    {"match":{"path":"/exact"},"route":{"cluster":"exact"}},
    {"match":{"safe_regex":{"regex":"/re/[0-9]+"}},"route":{"cluster":"regex"}},
    {"match":{"path_separated_prefix":"/sep"},"route":{"cluster":"sep"}},
    {"match":{"prefix":"/CI","case_sensitive":false},"route":{"cluster":"ci"}},
    {"match":{"prefix":"/"},"route":{"cluster":"default"}}]}]})");
  EXPECT_EQ(*clusterOf(*t, req("h", "/exact?q=1")), "exact");
  EXPECT_EQ(*clusterOf(*t, req("h", "/exact/more")), "default");
  EXPECT_EQ(*clusterOf(*t, req("h", "/re/123")), "regex");
  EXPECT_EQ(*clusterOf(*t, req("h", "/re/12a")), "default");
  EXPECT_EQ(*clusterOf(*t, req("h", "/sep")), "sep");
  EXPECT_EQ(*clusterOf(*t, req("h", "/sep/x")), "sep");
  EXPECT_EQ(*clusterOf(*t, req("h", "/separate")), "default");
  EXPECT_EQ(*clusterOf(*t, req("h", "/ci/x")), "ci");
}

TEST(RouteTableTest, HeaderAndQueryMatchers) {
  auto t = build(R"({"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
    {"match":{"prefix":"/","headers":[{"name":"end-user","string_match":{"exact":"jason"}}]},"route":{"cluster":"jason"}},
    {"match":{"prefix":"/","headers":[{"name":"x-v","present_match":true},{"name":"x-n","range_match":{"start":1,"end":10}}]},"route":{"cluster":"range"}},
    {"match":{"prefix":"/","headers":[{"name":"x-bad","prefix_match":"no","invert_match":true},{"name":"x-bad","present_match":true}]},"route":{"cluster":"inverted"}},
    {"match":{"prefix":"/","query_parameters":[{"name":"debug","string_match":{"exact":"1"}}]},"route":{"cluster":"query"}},
    {"match":{"prefix":"/"},"route":{"cluster":"default"}}]}]})");
  EXPECT_EQ(*clusterOf(*t, req("h", "/", {{"end-user", "jason"}})), "jason");
  EXPECT_EQ(*clusterOf(*t, req("h", "/", {{"end-user", "Jason"}})), "default");
  EXPECT_EQ(*clusterOf(*t, req("h", "/", {{"x-v", ""}, {"x-n", "5"}})), "range");
  EXPECT_EQ(*clusterOf(*t, req("h", "/", {{"x-v", ""}, {"x-n", "10"}})), "default");
  EXPECT_EQ(*clusterOf(*t, req("h", "/", {{"x-bad", "yes"}})), "inverted");
  EXPECT_EQ(*clusterOf(*t, req("h", "/", {{"x-bad", "nope"}})), "default");
  EXPECT_EQ(*clusterOf(*t, req("h", "/p?a=2&debug=1")), "query");
  EXPECT_EQ(*clusterOf(*t, req("h", "/p?debug=2")), "default");
}

TEST(RouteTableTest, WeightedClustersFollowWeightsOfAnyTotal) {
  auto t = build(R"({"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
    {"match":{"prefix":"/"},"route":{"weighted_clusters":{"clusters":[{"name":"a","weight":1},{"name":"b","weight":3}]}}}]}]})");
  std::map<std::string, int> seen;
  auto h = req("h", "/");
  for (uint64_t r = 0; r < 400; ++r) seen[*clusterOf(*t, h, r)]++;
  EXPECT_EQ(seen["a"], 100);
  EXPECT_EQ(seen["b"], 300);
}

TEST(RouteTableTest, RedirectsAndRewrites) {
  auto t = build(R"({"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
    {"match":{"prefix":"/old"},"redirect":{"prefix_rewrite":"/new","response_code":"PERMANENT_REDIRECT"}},
    {"match":{"prefix":"/secure"},"redirect":{"https_redirect":true,"strip_query":true}},
    {"match":{"prefix":"/api/"},"route":{"cluster":"c","prefix_rewrite":"/v2/","host_rewrite_literal":"backend"}},
    {"match":{"prefix":"/re"},"route":{"cluster":"c","regex_rewrite":{"pattern":{"regex":"^/re/(.*)$"},"substitution":"/x/\\1"}}}]}]})");
  auto h = req("example.com:80", "/old/page?a=1");
  const RouteEntry* e = t->route(h, 0);
  ASSERT_TRUE(e && e->isRedirect());
  EXPECT_EQ(e->redirectLocation(h, false), "http://example.com/new/page?a=1");
  EXPECT_EQ(e->redirectResponseCode(), 308);
  auto h2 = req("example.com", "/secure?x=1");
  EXPECT_EQ(t->route(h2, 0)->redirectLocation(h2, false), "https://example.com/secure");
  auto h3 = req("front", "/api/items?q=1");
  t->route(h3, 0)->applyRewrites(h3);
  EXPECT_EQ(h3.path(), "/v2/items?q=1");
  EXPECT_EQ(h3.authority(), "backend");
  EXPECT_EQ(h3.getOr("x-envoy-original-path"), "/api/items?q=1");
  auto h4 = req("front", "/re/abc");
  t->route(h4, 0)->applyRewrites(h4);
  EXPECT_EQ(h4.path(), "/x/abc");
}

TEST(RouteTableTest, HeaderMutationLevelsAndRetryDefaults) {
  auto t = build(R"({"request_headers_to_add":[{"header":{"key":"x-level","value":"config"},"append":false}],
    "virtual_hosts":[{"name":"v","domains":["*"],
    "request_headers_to_add":[{"header":{"key":"x-level","value":"vhost"},"append":false},{"header":{"key":"x-vh","value":"1"}}],
    "routes":[{"match":{"prefix":"/"},"route":{"cluster":"c","timeout":"0s","retry_policy":{"retry_on":"5xx,connect-failure"}},
      "request_headers_to_add":[{"header":{"key":"x-level","value":"route"},"append":false},{"header":{"key":"x-from","value":"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"}}],
      "request_headers_to_remove":["x-secret"],
      "response_headers_to_add":[{"header":{"key":"x-resp","value":"r"}}]}]}]})");
  auto h = req("h", "/", {{"x-secret", "s"}});
  const RouteEntry* e = t->route(h, 0);
  http::StreamInfo info;
  info.downstream_remote_address = "10.1.2.3:5555";
  e->applyRequestHeaders(h, nullptr, info);
  EXPECT_EQ(h.getOr("x-level"), "config");  // route-configuration level has the final say
  EXPECT_EQ(h.getOr("x-vh"), "1");
  EXPECT_EQ(h.getOr("x-from"), "10.1.2.3");
  EXPECT_FALSE(h.has("x-secret"));
  EXPECT_EQ(e->timeout().count(), 0);
  ASSERT_TRUE(e->retryPolicy());
  EXPECT_EQ(e->retryPolicy()->num_retries, 1u);
  EXPECT_EQ(e->retryPolicy()->back_off_base.count(), 25);
  EXPECT_TRUE(e->retryPolicy()->retriableStatus(503, h));
  EXPECT_FALSE(e->retryPolicy()->retriableStatus(404, h));
  http::HeaderMap resp{{":status", "200"}};
  e->applyResponseHeaders(resp, nullptr);
  EXPECT_EQ(resp.getOr("x-resp"), "r");
}

TEST(RouteTableTest, HashPoliciesAreDeterministic) {
  auto t = build(R"({"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
    {"match":{"prefix":"/"},"route":{"cluster":"c","hash_policy":[{"header":{"header_name":"x-user"}},{"cookie":{"name":"sid"}}]}}]}]})");
  auto a = req("h", "/", {{"x-user", "alice"}});
  auto b = req("h", "/", {{"x-user", "bob"}});
  const RouteEntry* e = t->route(a, 0);
  EXPECT_EQ(e->computeHash(a, ""), e->computeHash(a, ""));
  EXPECT_NE(e->computeHash(a, ""), e->computeHash(b, ""));
  EXPECT_FALSE(e->computeHash(req("h", "/"), "").has_value());
  EXPECT_TRUE(e->computeHash(req("h", "/", {{"cookie", "a=1; sid=xyz"}}), "").has_value());
  EXPECT_EQ(xxHash64(""), 0xEF46DB3751D8E999ULL);  // xxHash64 reference value for ""
}

TEST(RouteTableTest, ConfigErrorsNameThePath) {
  EXPECT_EQ(buildError(R"({"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
    {"match":{"safe_regex":{"regex":"(("}},"route":{"cluster":"c"}}]}]})").substr(0, 56),
            "virtual_hosts[0].routes[0].match.safe_regex: invalid reg");
  EXPECT_NE(buildError(R"({"virtual_hosts":[{"name":"a","domains":["x"]},{"name":"b","domains":["x"]}]})")
                .find("virtual_hosts[1].domains[0]: domain 'x' is already used"),
            std::string::npos);
  EXPECT_NE(buildError(R"({"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
    {"match":{"prefix":"/"},"route":{"cluster":"c","retry_policy":{"retry_on":"bogus"}}}]}]})")
                .find("routes[0].route.retry_policy.retry_on: unknown retry condition 'bogus'"),
            std::string::npos);
}

}  // namespace
}  // namespace mast::router
