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

}  // namespace
}  // namespace mast::control::config
