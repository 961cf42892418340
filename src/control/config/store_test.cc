#include "control/config/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "control/config/test_util.h"
#include "istio/networking/v1alpha3/destination_rule.pb.h"
#include "istio/networking/v1alpha3/virtual_service.pb.h"

namespace mast::control::config {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::TempDir;
using ::testing::UnorderedElementsAre;
using testing::writeFile;
namespace net = istio::networking::v1alpha3;

std::string reviewsVs(const std::string& subset, int weight_v1 = 100) {
  return R"(apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: )" +
         subset + "}\n      weight: " + std::to_string(weight_v1) + "\n";
}

std::string dr(const std::string& name) {
  return "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: " + name +
         "\nspec:\n  host: " + name + "\n  subsets:\n  - name: v1\n    labels: {version: v1}\n";
}

const ResourceKey kReviewsVs{Kind::kVirtualService, "default", "reviews"};

std::string subsetOf(const ConfigSnapshot& snap) {
  auto r = snap.get(kReviewsVs);
  if (!r) return "<none>";
  return r->specAs<net::VirtualService>()->http(0).route(0).destination().subset();
}

std::vector<std::string> strings(const std::vector<ConfigError>& errors) {
  std::vector<std::string> out;
  for (const auto& e : errors) out.push_back(e.toString());
  return out;
}

TEST(ConfigStore, LoadsBookinfoTestdataDirectory) {
  ConfigStore store;
  auto errors = store.loadDirectory(MAST_CONFIG_TESTDATA);
  // Every sample document is valid; the only reports are the samples that redefine the
  // reviews/ratings VirtualServices in other files (alternatives meant to be applied in turn).
  EXPECT_EQ(errors.size(), 11u);
  for (const auto& e : errors) {
    EXPECT_THAT(e.toString(), ::testing::HasSubstr("already defined in")) << e.toString();
  }
  auto snap = store.snapshot();
  EXPECT_EQ(snap->version(), 1u);
  // The samples redefine reviews/ratings VirtualServices across files: the first file by path
  // wins and the others are reported as duplicates through errors().
  EXPECT_NE(snap->get(Kind::kGateway, "default", "bookinfo-gateway"), nullptr);
  EXPECT_EQ(snap->list(Kind::kDestinationRule, "default").size(), 6u);
  EXPECT_EQ(snap->list(Kind::kServiceEntry).size(), 10u);
  EXPECT_EQ(snap->list(Kind::kWorkloadEntry).size(), 2u);
  EXPECT_EQ(snap->list(Kind::kGateway).size(), 3u);
  EXPECT_NE(snap->get(Kind::kVirtualService, "istio-system", "cert-manager"), nullptr);
  // "destination-rule-all-mtls.yaml" sorts before "destination-rule-all.yaml".
  auto reviews_dr = snap->get(Kind::kDestinationRule, "default", "reviews");
  ASSERT_NE(reviews_dr, nullptr);
  EXPECT_THAT(reviews_dr->source_file, ::testing::EndsWith("destination-rule-all-mtls.yaml"));
  EXPECT_EQ(reviews_dr->specAs<net::DestinationRule>()->traffic_policy().tls().mode(),
            net::ClientTLSSettings::ISTIO_MUTUAL);
  auto reviews = snap->get(kReviewsVs);
  ASSERT_NE(reviews, nullptr);
  // "virtual-service-all-v1.yaml" sorts before "virtual-service-reviews-*.yaml".
  EXPECT_THAT(reviews->source_file, ::testing::EndsWith("virtual-service-all-v1.yaml"));
  bool duplicate_reported = false;
  for (const auto& e : store.errors()) {
    if (e.resource == "VirtualService default/reviews" &&
        e.file.ends_with("virtual-service-reviews-50-v3.yaml")) {
      duplicate_reported = true;
      EXPECT_THAT(e.toString(), ::testing::HasSubstr("already defined in"));
    }
  }
  EXPECT_TRUE(duplicate_reported);
}

TEST(ConfigStore, InvalidDocumentIsRejectedAlone) {
  ConfigStore store;
  auto errors = store.applyFile(
      "mixed.yaml", dr("ratings") + "---\n" + reviewsVs("v1", -3) + "---\n" + dr("details"));
  EXPECT_THAT(strings(errors),
              ElementsAre("mixed.yaml: document 2 (VirtualService default/reviews): line 20: "
                          "spec.http[0].route[0].weight: weight -3 < 0"));
  auto snap = store.snapshot();
  EXPECT_EQ(snap->size(), 2u);
  EXPECT_NE(snap->get(Kind::kDestinationRule, "default", "ratings"), nullptr);
  EXPECT_NE(snap->get(Kind::kDestinationRule, "default", "details"), nullptr);
  EXPECT_EQ(snap->get(kReviewsVs), nullptr);
  EXPECT_THAT(strings(store.errors()), ElementsAre(strings(errors)[0]));
}

TEST(ConfigStore, LastGoodVersionStaysWhenAnEditBreaksIt) {
  ConfigStore store;
  std::vector<std::vector<ResourceKey>> notifications;
  store.subscribe(
      [&](const std::shared_ptr<const ConfigSnapshot>& snap,
          const std::vector<ResourceKey>& changed) { notifications.push_back(changed); });
  EXPECT_THAT(store.applyFile("vs.yaml", reviewsVs("v1")), IsEmpty());
  auto v1 = store.snapshot();
  EXPECT_EQ(v1->version(), 1u);
  EXPECT_EQ(subsetOf(*v1), "v1");

  // A semantic error: the v1 route stays in force, the error is reported, nothing is pushed.
  auto errors = store.applyFile("vs.yaml", reviewsVs("v2", -1));
  EXPECT_THAT(strings(errors),
              ElementsAre("vs.yaml: document 1 (VirtualService default/reviews): line 10: "
                          "spec.http[0].route[0].weight: weight -1 < 0"));
  EXPECT_EQ(store.snapshot(), v1);
  EXPECT_EQ(subsetOf(*store.snapshot()), "v1");
  EXPECT_EQ(store.errors().size(), 1u);

  // A YAML syntax error (the resource cannot even be identified): still kept.
  errors = store.applyFile("vs.yaml", "apiVersion: networking.istio.io/v1\nkind: [\n");
  EXPECT_EQ(errors.size(), 1u);
  EXPECT_EQ(subsetOf(*store.snapshot()), "v1");

  // The fix replaces it: new version, one notification naming the resource.
  EXPECT_THAT(store.applyFile("vs.yaml", reviewsVs("v3")), IsEmpty());
  auto v2 = store.snapshot();
  EXPECT_EQ(v2->version(), 2u);
  EXPECT_EQ(subsetOf(*v2), "v3");
  EXPECT_THAT(store.errors(), IsEmpty());
  // Older snapshots are immutable.
  EXPECT_EQ(subsetOf(*v1), "v1");
  ASSERT_EQ(notifications.size(), 2u);
  EXPECT_THAT(notifications[0], ElementsAre(kReviewsVs));
  EXPECT_THAT(notifications[1], ElementsAre(kReviewsVs));
}

TEST(ConfigStore, UnchangedContentDoesNotBumpTheVersion) {
  ConfigStore store;
  int calls = 0;
  store.subscribe([&](const auto&, const auto&) { ++calls; });
  (void)store.applyFile("a.yaml", dr("ratings") + "---\n" + dr("details"));
  auto first = store.snapshot();
  // Same content again (reformatted): no new version, no notification, same objects shared.
  (void)store.applyFile("a.yaml", "# comment\n" + dr("ratings") + "---\n" + dr("details"));
  EXPECT_EQ(store.snapshot(), first);
  EXPECT_EQ(calls, 1);
  // Changing one resource keeps the other's object identical across snapshots.
  (void)store.applyFile("a.yaml", dr("ratings") + "---\n" + dr("details") +
                                      "  - name: v2\n    labels: {version: v2}\n");
  auto second = store.snapshot();
  EXPECT_EQ(second->version(), 2u);
  EXPECT_EQ(second->get(Kind::kDestinationRule, "default", "ratings"),
            first->get(Kind::kDestinationRule, "default", "ratings"));
  EXPECT_NE(second->get(Kind::kDestinationRule, "default", "details"),
            first->get(Kind::kDestinationRule, "default", "details"));
}

TEST(ConfigStore, RemovingDocumentsAndFiles) {
  ConfigStore store;
  std::vector<ResourceKey> last_changed;
  store.subscribe(
      [&](const auto&, const std::vector<ResourceKey>& changed) { last_changed = changed; });
  (void)store.applyFile("a.yaml", dr("ratings") + "---\n" + dr("details"));
  (void)store.applyFile("b.yaml", reviewsVs("v1"));
  EXPECT_EQ(store.snapshot()->size(), 3u);
  // A document deleted from a file (the rest valid) goes away.
  (void)store.applyFile("a.yaml", dr("ratings"));
  EXPECT_EQ(store.snapshot()->size(), 2u);
  EXPECT_THAT(last_changed, ElementsAre(ResourceKey{Kind::kDestinationRule, "default", "details"}));
  store.removeFile("b.yaml");
  EXPECT_EQ(store.snapshot()->size(), 1u);
  EXPECT_EQ(store.snapshot()->get(kReviewsVs), nullptr);
  EXPECT_THAT(last_changed, ElementsAre(kReviewsVs));
  EXPECT_EQ(store.snapshot()->version(), 4u);
  EXPECT_THAT(store.files(), ElementsAre("a.yaml"));
}

TEST(ConfigStore, DuplicateAcrossFilesFirstPathWins) {
  ConfigStore store;
  (void)store.applyFile("b.yaml", reviewsVs("v2"));
  auto errors = store.applyFile("a.yaml", reviewsVs("v1"));
  EXPECT_THAT(errors, IsEmpty());
  EXPECT_EQ(subsetOf(*store.snapshot()), "v1");
  EXPECT_THAT(strings(store.errors()),
              ElementsAre("b.yaml: document 1 (VirtualService default/reviews): already defined "
                          "in a.yaml; this definition is ignored"));
  store.removeFile("a.yaml");
  EXPECT_EQ(subsetOf(*store.snapshot()), "v2");
  EXPECT_THAT(store.errors(), IsEmpty());
}

TEST(ConfigStore, LoadDirectoryIsRecursiveSkipsHiddenAndTracksDeletions) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("team-a/nested"));
  std::filesystem::create_directories(dir.file(".git"));
  writeFile(dir.file("team-a/nested/vs.yml"), reviewsVs("v1"));
  writeFile(dir.file("team-a/dr.json"),
            R"({"apiVersion":"networking.istio.io/v1","kind":"DestinationRule",
                "metadata":{"name":"ratings"},"spec":{"host":"ratings"}})");
  writeFile(dir.file("README.md"), "not config");
  writeFile(dir.file(".hidden.yaml"), dr("hidden"));
  writeFile(dir.file(".git/x.yaml"), dr("git"));
  writeFile(dir.file("broken.yaml"), "kind: VirtualService\n  bad: [\n");
  ConfigStore store;
  auto errors = store.loadDirectory(dir.path());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0].toString(),
              ::testing::StartsWith(dir.file("broken.yaml") + ": document 1: line "));
  auto snap = store.snapshot();
  EXPECT_EQ(snap->size(), 2u);
  EXPECT_NE(snap->get(kReviewsVs), nullptr);
  EXPECT_NE(snap->get(Kind::kDestinationRule, "default", "ratings"), nullptr);

  std::filesystem::remove(dir.file("team-a/dr.json"));
  std::filesystem::remove(dir.file("broken.yaml"));
  errors = store.loadDirectory(dir.path() + "/");
  EXPECT_THAT(errors, IsEmpty());
  EXPECT_EQ(store.snapshot()->size(), 1u);
  EXPECT_EQ(store.snapshot()->version(), 2u);

  auto missing = store.loadDirectory(dir.file("nope"));
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_THAT(missing[0].toString(), ::testing::HasSubstr("cannot read directory"));
}

TEST(ConfigStore, ListenersCanReadTheStoreAndUnsubscribe) {
  ConfigStore store;
  uint64_t seen = 0;
  int id = store.subscribe([&](const std::shared_ptr<const ConfigSnapshot>& snap, const auto&) {
    seen = store.snapshot()->version();
    EXPECT_EQ(snap->version(), seen);
  });
  (void)store.applyFile("a.yaml", dr("ratings"));
  EXPECT_EQ(seen, 1u);
  store.unsubscribe(id);
  (void)store.applyFile("a.yaml", dr("details"));
  EXPECT_EQ(seen, 1u);
  EXPECT_EQ(store.version(), 2u);
}

}  // namespace
}  // namespace mast::control::config
