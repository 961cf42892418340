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

// The shared matchers (also used by the fault and cors filters) on their own, Envoy's semantics.
HeaderMatcher headerMatcher(const std::string& json) {
  envoy::config::route::v3::HeaderMatcher m;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &m).ok()) << json;
  auto r = parseHeaderMatcher(m, "h");
  EXPECT_TRUE(r.ok()) << r.error();
  return r.ok() ? *r : HeaderMatcher{};
}

std::string headerMatcherError(const std::string& json) {
  envoy::config::route::v3::HeaderMatcher m;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &m).ok()) << json;
  auto r = parseHeaderMatcher(m, "h");
  return r.ok() ? "" : r.error();
}

TEST(MatcherTest, MissingHeadersAndInvert) {
  const http::HeaderMap none{{":path", "/"}};
  const http::HeaderMap some{{"x", "abc"}};
  // A missing header fails a value matcher even when inverted, unless treated as empty.
  auto inv = headerMatcher(R"({"name":"x","string_match":{"exact":"abc"},"invert_match":true})");
  EXPECT_FALSE(inv.match(none));
  EXPECT_FALSE(inv.match(some));
  EXPECT_TRUE(inv.match(http::HeaderMap{{"x", "abd"}}));
  auto inv_empty =
      headerMatcher(R"({"name":"x","string_match":{"exact":"abc"},"invert_match":true,)"
                    R"("treat_missing_header_as_empty":true})");
  EXPECT_TRUE(inv_empty.match(none));
  EXPECT_FALSE(inv_empty.match(some));
  auto range =
      headerMatcher(R"({"name":"x","range_match":{"start":0,"end":10},"invert_match":true})");
  EXPECT_FALSE(range.match(none));
  EXPECT_TRUE(range.match(http::HeaderMap{{"x", "10"}}));
  EXPECT_TRUE(range.match(http::HeaderMap{{"x", "1x"}}));
  // present_match false matches a missing header; inverted, it needs the header.
  auto absent = headerMatcher(R"({"name":"X","present_match":false})");
  EXPECT_TRUE(absent.match(none));
  EXPECT_FALSE(absent.match(some));
  auto absent_inv = headerMatcher(R"({"name":"x","present_match":false,"invert_match":true})");
  EXPECT_FALSE(absent_inv.match(none));
  EXPECT_TRUE(absent_inv.match(some));
  EXPECT_TRUE(headerMatcher(R"({"name":"x"})").match(some));  // no specifier: presence
  // Repeated headers are joined with ",".
  auto joined = headerMatcher(R"({"name":"x","exact_match":"a,b"})");
  EXPECT_TRUE(joined.match(http::HeaderMap{{"x", "a"}, {"x", "b"}}));
  EXPECT_FALSE(joined.match(http::HeaderMap{{"x", "a"}}));
}

TEST(MatcherTest, IgnoreCaseAppliesToLiteralsNotToRegex) {
  auto m = [](const std::string& sm) {
    return headerMatcher(R"({"name":"x","string_match":)" + sm + "}");
  };
  const http::HeaderMap h{{"x", "Hello-World"}};
  EXPECT_TRUE(m(R"({"exact":"HELLO-world","ignore_case":true})").match(h));
  EXPECT_FALSE(m(R"({"exact":"HELLO-world"})").match(h));
  EXPECT_TRUE(m(R"({"prefix":"hELLO","ignore_case":true})").match(h));
  EXPECT_TRUE(m(R"({"suffix":"WORLD","ignore_case":true})").match(h));
  EXPECT_TRUE(m(R"({"contains":"O-w","ignore_case":true})").match(h));
  EXPECT_FALSE(m(R"({"contains":"O-w"})").match(h));
  EXPECT_FALSE(m(R"({"safe_regex":{"regex":"hello-.*"},"ignore_case":true})").match(h));
  EXPECT_TRUE(m(R"({"safe_regex":{"regex":"Hello-.*"}})").match(h));
}

TEST(MatcherTest, ConfigErrorsNameTheField) {
  EXPECT_EQ(headerMatcherError(R"({"name":"x","string_match":{"prefix":""}})"),
            "h.string_match.prefix: must not be empty");
  EXPECT_EQ(headerMatcherError(R"({"name":"x","suffix_match":""})"),
            "h.suffix_match: must not be empty");
  EXPECT_EQ(headerMatcherError(R"({"name":"","present_match":true})"), "h.name: must not be empty");
  EXPECT_EQ(headerMatcherError(R"({"name":"x","range_match":{"start":5,"end":5}})"),
            "h.range_match: start must be less than end");
  EXPECT_EQ(headerMatcherError(R"({"name":"x","safe_regex_match":{"regex":"("}})").substr(0, 38),
            "h.safe_regex_match.regex: invalid rege");
  EXPECT_EQ(headerMatcherError(R"({"name":"x","string_match":{"safe_regex":{"regex":"("}}})")
                .substr(0, 45),
            "h.string_match.safe_regex.regex: invalid rege");
  EXPECT_NE(
      buildError(R"({"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
    {"match":{"prefix":"/","query_parameters":[{"name":"q","string_match":{"contains":""}}]},"route":{"cluster":"c"}}]}]})")
          .find("routes[0].match.query_parameters[0].string_match.contains: must not be empty"),
      std::string::npos);
}

TEST(MatcherTest, QueryParameters) {
  envoy::config::route::v3::QueryParameterMatcher p;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  R"({"name":"k","string_match":{"prefix":"v"}})", &p)
                  .ok());
  auto q = parseQueryParameterMatcher(p, "q");
  ASSERT_TRUE(q.ok()) << q.error();
  EXPECT_TRUE(q->match("a=1&k=v2"));
  EXPECT_FALSE(q->match("k=x&k=v"));  // the first parameter of that name decides
  EXPECT_FALSE(q->match("kk=v"));
  EXPECT_FALSE(q->match(""));
  p.clear_string_match();
  q = parseQueryParameterMatcher(p, "q");
  ASSERT_TRUE(q.ok());
  EXPECT_TRUE(q->match("x&k"));  // present, without a value
  EXPECT_FALSE(q->match("x=k"));
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
  auto t = build(
      R"({"request_headers_to_add":[{"header":{"key":"x-level","value":"config"},"append":false}],
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

TEST(RouteTableTest, CookieHashWithTtlGeneratesTheCookie) {
  auto t = build(R"({"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
    {"match":{"prefix":"/"},"route":{"cluster":"c","hash_policy":[
      {"cookie":{"name":"sticky","ttl":"60s","path":"/app"}}]}}]}]})");
  auto bare = req("h", "/");
  const RouteEntry* e = t->route(bare, 0);
  std::vector<GeneratedCookie> set;
  auto h1 = e->computeHash(bare, "", "10.0.0.1:5000127.0.0.1:80", &set);
  ASSERT_TRUE(h1.has_value());
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set[0].value.size(), 16u);
  EXPECT_EQ(set[0].setCookieValue(),
            "sticky=\"" + set[0].value + "\"; Max-Age=60; Path=/app; HttpOnly");
  // The same connection gets the same cookie; sending it back (quoted or not) hashes the same
  // and generates nothing.
  std::vector<GeneratedCookie> again;
  EXPECT_EQ(e->computeHash(bare, "", "10.0.0.1:5000127.0.0.1:80", &again), h1);
  for (const std::string& v : {"\"" + set[0].value + "\"", set[0].value}) {
    std::vector<GeneratedCookie> none;
    EXPECT_EQ(e->computeHash(req("h", "/", {{"cookie", "sticky=" + v}}), "", "other", &none), h1);
    EXPECT_TRUE(none.empty());
  }
  // Without a place to put the cookie (mirrors, tcp) nothing is generated.
  EXPECT_FALSE(e->computeHash(bare, "").has_value());
}

TEST(RouteTableTest, ConfigErrorsNameThePath) {
  EXPECT_EQ(buildError(R"({"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
    {"match":{"safe_regex":{"regex":"(("}},"route":{"cluster":"c"}}]}]})")
                .substr(0, 56),
            "virtual_hosts[0].routes[0].match.safe_regex: invalid reg");
  EXPECT_NE(
      buildError(R"({"virtual_hosts":[{"name":"a","domains":["x"]},{"name":"b","domains":["x"]}]})")
          .find("virtual_hosts[1].domains[0]: domain 'x' is already used"),
      std::string::npos);
  EXPECT_NE(buildError(R"({"virtual_hosts":[{"name":"v","domains":["*"],"routes":[
    {"match":{"prefix":"/"},"route":{"cluster":"c","retry_policy":{"retry_on":"bogus"}}}]}]})")
                .find("routes[0].route.retry_policy.retry_on: unknown retry condition 'bogus'"),
            std::string::npos);
}

}  // namespace
}  // namespace mast::router
