#include "control/config/writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "control/config/parse.h"
#include "control/config/test_util.h"

namespace mast::control::config {
namespace {

using testing::readTestdata;
using testing::TempDir;

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Writer, FileNames) {
  EXPECT_EQ(resourceFileName({Kind::kVirtualService, "default", "reviews"}),
            "virtualservice.default.reviews.yaml");
  EXPECT_EQ(resourceFileName({Kind::kPeerAuthentication, "istio-system", "default"}),
            "peerauthentication.istio-system.default.yaml");
}

// Every Bookinfo / ServiceEntry sample survives write → read unchanged.
TEST(Writer, RoundTripsEverySample) {
  TempDir dir;
  for (const char* name : {"bookinfo-gateway.yaml", "destination-rule-all.yaml",
                           "virtual-service-ratings-test-delay.yaml",
                           "egress-rule-google-apis.yaml", "service-entry-examples.yaml"}) {
    auto parsed = parseFile(name, readTestdata(name));
    for (const auto& d : parsed.documents) {
      ASSERT_TRUE(d.resource.has_value()) << name;
      auto path = writeResourceFile(dir.path(), *d.resource);
      ASSERT_TRUE(path.ok()) << path.error();
      EXPECT_EQ(*path, dir.file(resourceFileName(d.resource->key())));
      auto back = parseFile(*path, readFile(*path));
      ASSERT_EQ(back.documents.size(), 1u) << *path;
      ASSERT_TRUE(back.documents[0].resource.has_value())
          << *path << ": " << (back.errors().empty() ? "" : back.errors()[0].toString());
      EXPECT_TRUE(sameContent(*d.resource, *back.documents[0].resource)) << *path;
    }
  }
  // No temp files left behind.
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_NE(e.path().filename().string()[0], '.') << e.path();
  }
}

TEST(Writer, YamlQuotesStringsThatLookLikeOtherTypes) {
  auto parsed = parseFile("in.yaml", R"(apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ports
  labels: {version: "2", enabled: "true"}
spec:
  rules:
  - to:
    - operation: {ports: ["8080"], paths: ["*"]}
)");
  ASSERT_TRUE(parsed.documents[0].resource.has_value());
  std::string yaml = resourceToYaml(*parsed.documents[0].resource);
  EXPECT_THAT(yaml, ::testing::HasSubstr("\"8080\""));
  EXPECT_THAT(yaml, ::testing::HasSubstr("version: \"2\""));
  EXPECT_THAT(yaml, ::testing::HasSubstr("enabled: \"true\""));
  auto back = parseFile("out.yaml", yaml);
  ASSERT_TRUE(back.documents[0].resource.has_value()) << yaml;
  EXPECT_TRUE(sameContent(*parsed.documents[0].resource, *back.documents[0].resource));
}

TEST(Writer, AtomicReplaceAndDelete) {
  TempDir dir;
  std::string path = dir.file("f.yaml");
  ASSERT_TRUE(writeFileAtomic(path, "one\n").ok());
  ASSERT_TRUE(writeFileAtomic(path, "two\n").ok());
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "two");
  ResourceKey key{Kind::kSidecar, "default", "default"};
  Status missing = deleteResourceFile(dir.path(), key);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error(), "Sidecar default/default not found (no " +
                                 dir.file("sidecar.default.default.yaml") + ")");
  EXPECT_FALSE(writeFileAtomic(dir.file("no/such/dir/f.yaml"), "x").ok());
}

// A hand-written multi-document file: one document is replaced or removed, every other byte
// (comments, flow style, other documents) stays as written.
constexpr const char* kMultiDoc = R"(# Bookinfo routing, kept by hand
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings }   # flow style on purpose
spec: { hosts: [ratings], http: [{ route: [{ destination: { host: ratings } }] }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews } }] }]
--- # details next
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: details }
spec: { host: details }
)";

TEST(Writer, RewritesOneDocumentOfAMultiDocumentFile) {
  auto parsed = parseFile("new.yaml", R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec: {hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v2}}]}]}
)");
  ASSERT_TRUE(parsed.documents.at(0).resource);
  std::string yaml = resourceToYaml(*parsed.documents[0].resource);
  auto out = rewriteDocument("routes.yaml", kMultiDoc,
                             {Kind::kVirtualService, "default", "reviews"}, yaml);
  ASSERT_TRUE(out.ok()) << out.error();
  std::string text = kMultiDoc;
  size_t from = text.find("apiVersion", text.find("---\n"));
  size_t to = text.find("--- # details");
  EXPECT_EQ(*out, text.substr(0, from) + yaml + text.substr(to));
  auto reread = parseFile("routes.yaml", *out);
  ASSERT_EQ(reread.documents.size(), 3u);
  for (const auto& d : reread.documents) ASSERT_TRUE(d.resource) << d.errors.at(0).toString();
  EXPECT_TRUE(sameContent(*reread.documents[1].resource, *parsed.documents[0].resource));

  // The first and the last document too.
  auto first = rewriteDocument("routes.yaml", kMultiDoc,
                               {Kind::kVirtualService, "default", "ratings"}, "x: 1\n");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, "x: 1\n" + text.substr(text.find("---\n")));
  auto last = rewriteDocument("routes.yaml", kMultiDoc,
                              {Kind::kDestinationRule, "default", "details"}, "y: 2\n");
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, text.substr(0, text.find("apiVersion", to)) + "y: 2\n");
}

TEST(Writer, RemovesOneDocumentWithItsSeparator) {
  std::string text = kMultiDoc;
  size_t second = text.find("---\n");
  size_t third = text.find("--- # details");
  auto middle = rewriteDocument("routes.yaml", kMultiDoc,
                                {Kind::kVirtualService, "default", "reviews"}, std::nullopt);
  ASSERT_TRUE(middle.ok());
  EXPECT_EQ(*middle, text.substr(0, second) + text.substr(third));
  auto first = rewriteDocument("routes.yaml", kMultiDoc,
                               {Kind::kVirtualService, "default", "ratings"}, std::nullopt);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, text.substr(second + 4));
  auto reread = parseFile("routes.yaml", *first);
  ASSERT_EQ(reread.documents.size(), 2u);
  EXPECT_EQ(reread.documents[0].resource->metadata.name, "reviews");
}

TEST(Writer, RefusesWhatCannotBeRewrittenAlone) {
  ResourceKey reviews{Kind::kVirtualService, "default", "reviews"};
  EXPECT_FALSE(rewriteDocument("routes.yaml", kMultiDoc, {Kind::kVirtualService, "default", "nope"},
                               "a: 1\n")
                   .ok());
  EXPECT_FALSE(rewriteDocument("routes.json", kMultiDoc, reviews, "a: 1\n").ok());
  // A Kubernetes List document holds several resources.
  auto list = rewriteDocument("list.yaml", R"(apiVersion: v1
kind: List
items:
- {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: reviews}, spec: {hosts: [reviews]}}
- {apiVersion: networking.istio.io/v1, kind: VirtualService, metadata: {name: ratings}, spec: {hosts: [ratings]}}
)",
                              reviews, "a: 1\n");
  ASSERT_FALSE(list.ok());
  EXPECT_THAT(list.error(), ::testing::HasSubstr("other resources"));
}

}  // namespace
}  // namespace mast::control::config
