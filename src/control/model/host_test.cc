#include "control/model/host.h"

#include <gtest/gtest.h>

#include "control/model/registry.h"

namespace mast::control::model {
namespace {

TEST(HostTest, ShortNamesExpandRelativeToTheNamespace) {
  EXPECT_EQ(resolveShortName("reviews", "default"), "reviews.default.svc.cluster.local");
  EXPECT_EQ(resolveShortName("Reviews", "bookinfo"), "reviews.bookinfo.svc.cluster.local");
  // Anything with a dot is literal; wildcards and IPs are never expanded.
  EXPECT_EQ(resolveShortName("reviews.default", "foo"), "reviews.default");
  EXPECT_EQ(resolveShortName("*", "default"), "*");
  EXPECT_EQ(resolveShortName("10.0.0.1", "default"), "10.0.0.1");
  EXPECT_EQ(resolveShortName("reviews", "default", "corp.local"), "reviews.default.svc.corp.local");
}

TEST(HostTest, WildcardMatching) {
  EXPECT_TRUE(hostMatches("*", "anything.example.com"));
  EXPECT_TRUE(hostMatches("*.example.com", "a.example.com"));
  EXPECT_TRUE(hostMatches("*.example.com", "a.b.example.com"));
  EXPECT_FALSE(hostMatches("*.example.com", "example.com"));
  EXPECT_TRUE(hostMatches("*.example.com", "*.a.example.com"));
  EXPECT_FALSE(hostMatches("a.example.com", "*.example.com"));
  EXPECT_TRUE(hostsOverlap("a.example.com", "*.example.com"));
  EXPECT_FALSE(hostsOverlap("a.example.org", "*.example.com"));
  EXPECT_TRUE(
      hostMatches("Reviews.Default.svc.cluster.local", "reviews.default.svc.cluster.local"));
}

TEST(HostTest, ExportTo) {
  EXPECT_TRUE(isExportedTo({}, {}, "a", "b"));
  EXPECT_TRUE(isExportedTo({"*"}, {}, "a", "b"));
  EXPECT_TRUE(isExportedTo({"."}, {}, "a", "a"));
  EXPECT_FALSE(isExportedTo({"."}, {}, "a", "b"));
  EXPECT_FALSE(isExportedTo({"~"}, {}, "a", "a"));
  EXPECT_TRUE(isExportedTo({"b", "c"}, {}, "a", "c"));
  EXPECT_FALSE(isExportedTo({}, {"."}, "a", "b"));  // the mesh default applies when unset
}

TEST(HostTest, Protocols) {
  EXPECT_EQ(parseProtocol("HTTP"), Protocol::kHttp);
  EXPECT_EQ(parseProtocol("grpc-web"), Protocol::kGrpcWeb);
  EXPECT_EQ(parseProtocol("bogus"), Protocol::kAuto);
  EXPECT_EQ(protocolFromPortName("http-web"), Protocol::kHttp);
  EXPECT_EQ(protocolFromPortName("grpc-web-x"), Protocol::kGrpcWeb);
  EXPECT_EQ(protocolFromPortName("tcp-db"), Protocol::kTcp);
  EXPECT_EQ(protocolFromPortName("web"), Protocol::kAuto);
  EXPECT_TRUE(isHttp2Protocol(Protocol::kGrpc));
  EXPECT_FALSE(isHttpProtocol(Protocol::kTcp));
}

}  // namespace
}  // namespace mast::control::model
