#include "proxy/server/http_util.h"

#include <gtest/gtest.h>

namespace mast::proxy::server {
namespace {

TEST(HttpUtilTest, NormalizePath) {
  EXPECT_EQ(*normalizePath("/a/./b/../c?x=/../", true, false), "/a/c?x=/../");
  EXPECT_EQ(*normalizePath("/../../a", true, false), "/a");
  EXPECT_EQ(*normalizePath("//a///b", false, true), "/a/b");
  EXPECT_EQ(*normalizePath("/a/b/", true, true), "/a/b/");
}

TEST(HttpUtilTest, XffTrustedHops) {
  EXPECT_EQ(*xffClientAddress("1.1.1.1, 2.2.2.2, 3.3.3.3", 1), "3.3.3.3:0");
  EXPECT_EQ(*xffClientAddress("1.1.1.1, 2.2.2.2, 3.3.3.3", 3), "1.1.1.1:0");
  EXPECT_FALSE(xffClientAddress("1.1.1.1", 2).has_value());
  EXPECT_FALSE(xffClientAddress("1.1.1.1", 0).has_value());
}

TEST(HttpUtilTest, GrpcStatusMapping) {
  EXPECT_EQ(grpcStatusForHttp(503), 14);
  EXPECT_EQ(grpcStatusForHttp(404), 12);
  EXPECT_EQ(grpcStatusForHttp(418), 2);
}

}  // namespace
}  // namespace mast::proxy::server
