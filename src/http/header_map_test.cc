#include "http/header_map.h"

#include <gtest/gtest.h>

namespace mast::http {
namespace {

TEST(HeaderMapTest, CaseInsensitiveLookupAndLowerCaseStorage) {
  HeaderMap h;
  h.add("Content-Type", "text/plain");
  EXPECT_EQ(h.getOr("content-type"), "text/plain");
  EXPECT_EQ(h.begin()->name, "content-type");
  EXPECT_EQ(h.get("x-missing"), nullptr);
}

TEST(HeaderMapTest, SetReplacesAllValuesRemoveCounts) {
  HeaderMap h{{"a", "1"}, {"b", "2"}, {"A", "3"}};
  EXPECT_EQ(h.getJoined("a"), "1,3");
  h.set("a", "9");
  EXPECT_EQ(h.getAll("a").size(), 1u);
  EXPECT_EQ(h.getOr("a"), "9");
  EXPECT_EQ(h.remove("b"), 1u);
  EXPECT_EQ(h.size(), 1u);
}

TEST(HeaderMapTest, StatusParsesOnlyDigits) {
  HeaderMap h{{":status", "204"}};
  EXPECT_EQ(h.status(), 204);
  h.set(":status", "20x");
  EXPECT_EQ(h.status(), 0);
}

}  // namespace
}  // namespace mast::http
