#include "base/yaml_json.h"

#include <gtest/gtest.h>

#include "base/hash.h"

namespace mast {
namespace {

TEST(YamlJsonTest, TypesAndLines) {
  auto d = parseYaml(
      "a:\n  b: 1\n  c: \"1\"\n  d: true\n  e: 5s\n  f: 1.5\n  g: ~\n  l:\n  - x\n  - 2\n",
      "f.yaml");
  ASSERT_TRUE(d.ok()) << d.error();
  EXPECT_EQ(d->json["a"]["b"], 1);
  EXPECT_EQ(d->json["a"]["c"], "1");
  EXPECT_EQ(d->json["a"]["d"], true);
  EXPECT_EQ(d->json["a"]["e"], "5s");
  EXPECT_EQ(d->json["a"]["f"], 1.5);
  EXPECT_TRUE(d->json["a"]["g"].is_null());
  EXPECT_EQ(d->json["a"]["l"][1], 2);
  EXPECT_EQ(d->line("a.c"), 3);
  EXPECT_EQ(d->line("a.l[1]"), 10);
  EXPECT_EQ(d->line("a.l[1].missing"), 10);
}

TEST(YamlJsonTest, SyntaxErrorsNameFileAndLine) {
  auto d = parseYaml("a: [1, 2\nb: c\n", "bad.yaml");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().substr(0, 9), "bad.yaml:");
}

// yaml-cpp 0.7 loops forever (allocating gigabytes) on these; config_fuzz found the first.
TEST(YamlJsonTest, StrayCommaIsAnErrorNotAHang) {
  for (const char* text :
       {",: &a [x,x]\n", ",", " ,\n", "# c\n,\n", "---\n,\n", "[a]\n,\n", "k: a\n,: b\n"}) {
    auto d = parseYaml(text, "f.yaml");
    ASSERT_FALSE(d.ok()) << text;
    EXPECT_NE(d.error().find("',' cannot start a YAML node"), std::string::npos) << d.error();
  }
  // A ',' inside flow collections, quotes, comments, plain scalars and indented lines is fine.
  auto ok = parseYaml(
      "a: [x,\n  y]\nb: \"p, q\"\nc: x, y # , z\nd: |\n  , kept\ne:\n  - {k: v,\n     l: w}\n",
      "f.yaml");
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(ok->json["a"][1], "y");
  EXPECT_EQ(ok->json["c"], "x, y");
  EXPECT_EQ(ok->json["d"], ", kept\n");
  EXPECT_EQ(ok->json["e"][0]["l"], "w");
}

// And on a ',' after a document's root quoted scalar, flow collection, anchor or tag
// (config_fuzz: `"",-*`).
TEST(YamlJsonTest, CommaAfterRootNodeIsAnErrorNotAHang) {
  for (const char* text :
       {"\"\",-*", "\"a\",b", "'a',b", "[a],b", "{a: 1},b", "\"a\"\n  ,b", "[a]\n ,", "--- \"a\",",
        "k: v\n---\n\"b\",", "\"a\" # c\n ,", "[a, \"b]\"],", "\"multi\n line\",", "'it''s',x",
        "\"q\\\"\",x", "&x,", "!t \"x\",", "&a [x],", "&a,b"}) {
    auto d = parseYaml(text, "f.yaml");
    if (std::string(text).find("---\n") != std::string::npos) {
      auto docs = parseYamlDocuments(text, "f.yaml");
      ASSERT_FALSE(docs.ok()) << text;
      continue;
    }
    ASSERT_FALSE(d.ok()) << text;
    EXPECT_NE(d.error().find("no YAML node starts here"), std::string::npos)
        << text << ": " << d.error();
  }
  // Quoted and flow nodes followed by ':' (keys), quotes inside plain scalars, escaped quotes.
  for (const char* text : {"\"a\": [x, \"y,\"], b: 1", "{a: 1}: b", "k: a \"b\nj: c\", d\n",
                           "\"a\\\",b\"", "'a'',b'", "[a\"b, c]", "- \"a\"\n- b,c\n"}) {
    auto d = parseYaml(text, "f.yaml");
    EXPECT_TRUE(d.ok() || d.error().find("no YAML node starts here") == std::string::npos)
        << text << ": " << d.error();
  }
  auto q = parseYaml("\"a\\\",b\"", "f.yaml");
  ASSERT_TRUE(q.ok()) << q.error();
  EXPECT_EQ(q->json, "a\",b");
  auto p = parseYaml("k: a \"b\nj: c\", d\n", "f.yaml");
  ASSERT_TRUE(p.ok()) << p.error();
  EXPECT_EQ(p->json["j"], "c\", d");
}

// config_fuzz: an alias inside its own anchor's node made a cyclic node, and the conversion
// overflowed the stack (mast-proxy --mode validate crashed with SIGSEGV).
TEST(YamlJsonTest, AliasInsideItsOwnAnchorIsAnError) {
  for (const char* text : {"g: &g [*g]\n", "m: &m {k: *m}\n", "a: &a [x, [y, *a]]\n"}) {
    auto d = parseYaml(text, "f.yaml");
    ASSERT_FALSE(d.ok()) << text;
    EXPECT_NE(d.error().find("levels deep"), std::string::npos) << d.error();
  }
  std::string deep = "v: ";
  for (int i = 0; i < 100; ++i) deep += "[";
  for (int i = 0; i < 100; ++i) deep += "]";
  EXPECT_TRUE(parseYaml(deep, "f.yaml").ok());
}

TEST(YamlJsonTest, MultiDocumentAndMergeKeys) {
  auto docs = parseYamlDocuments("base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n---\nk: v\n", "m");
  ASSERT_TRUE(docs.ok()) << docs.error();
  ASSERT_EQ(docs->size(), 2u);
  EXPECT_EQ((*docs)[0].json["use"]["x"], 1);
  EXPECT_EQ((*docs)[0].json["use"]["y"], 3);
  EXPECT_EQ((*docs)[1].json["k"], "v");
}

TEST(HashTest, XxHash64ReferenceValues) {
  EXPECT_EQ(xxHash64(""), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(xxHash64("abc"), 0x44BC2CF5AD770999ULL);
}

}  // namespace
}  // namespace mast
