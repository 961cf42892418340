// The inotify watcher against a real temporary directory.
#include "control/config/watcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "control/config/test_util.h"
#include "control/config/writer.h"
#include "istio/networking/v1alpha3/virtual_service.pb.h"

namespace mast::control::config {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;
using testing::writeFile;
namespace net = istio::networking::v1alpha3;

const ResourceKey kReviews{Kind::kVirtualService, "default", "reviews"};

std::string reviewsVs(const std::string& subset, int weight = 100) {
  return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n"
         "spec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, "
         "subset: " +
         subset + "}\n      weight: " + std::to_string(weight) + "\n";
}

std::string subsetOf(ConfigStore& store) {
  auto r = store.snapshot()->get(kReviews);
  if (!r) return "<none>";
  return r->specAs<net::VirtualService>()->http(0).route(0).destination().subset();
}

// Polls until `pred` holds (the watcher is asynchronous by design); fails after 5 s.
template <class Pred>
bool eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

TEST(DirectoryWatcher, FollowsEditsRenamesAndDeletes) {
  TempDir dir;
  writeFile(dir.file("vs.yaml"), reviewsVs("v1"));
  ConfigStore store;
  DirectoryWatcher watcher(store, dir.path(), 20ms);
  std::vector<ConfigError> initial;
  ASSERT_TRUE(watcher.start(&initial).ok());
  EXPECT_TRUE(initial.empty());
  EXPECT_EQ(subsetOf(store), "v1");
  EXPECT_EQ(store.version(), 1u);

  // In-place edit (open, truncate, write, close).
  writeFile(dir.file("vs.yaml"), reviewsVs("v2"));
  ASSERT_TRUE(eventually([&] { return subsetOf(store) == "v2"; }));

  // Editor style: write a temp file, rename it over the target.
  writeFile(dir.file(".vs.yaml.swp"), reviewsVs("v3"));
  std::filesystem::rename(dir.file(".vs.yaml.swp"), dir.file("vs.yaml"));
  ASSERT_TRUE(eventually([&] { return subsetOf(store) == "v3"; }));

  // A broken edit keeps the last good version and reports the error.
  std::mutex mu;
  std::vector<std::string> batch_errors;
  watcher.setBatchCallback([&](const std::vector<ConfigError>& errors) {
    std::lock_guard lock(mu);
    for (const auto& e : errors) batch_errors.push_back(e.toString());
  });
  // Waits for the error itself, not for watcher.batches() to move: the store shows v3 before
  // the v3 batch is counted, so a count read here could still be about to move for that batch.
  writeFile(dir.file("vs.yaml"), reviewsVs("v4", -1));
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return !batch_errors.empty();
  }));
  EXPECT_EQ(subsetOf(store), "v3");
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(batch_errors.size(), 1u);
    EXPECT_EQ(batch_errors[0], dir.file("vs.yaml") +
                                   ": document 1 (VirtualService default/reviews): line 10: "
                                   "spec.http[0].route[0].weight: weight -1 < 0");
  }

  // A new file in a new subdirectory.
  std::filesystem::create_directories(dir.file("team/b"));
  writeFile(dir.file("team/b/dr.yaml"),
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: "
            "reviews\nspec:\n  host: reviews\n");
  ASSERT_TRUE(eventually([&] {
    return store.snapshot()->get(Kind::kDestinationRule, "default", "reviews") != nullptr;
  }));
  // And a later file inside it (the new directory is watched too).
  writeFile(dir.file("team/b/dr2.yaml"),
            "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: "
            "ratings\nspec:\n  host: ratings\n");
  ASSERT_TRUE(eventually([&] {
    return store.snapshot()->get(Kind::kDestinationRule, "default", "ratings") != nullptr;
  }));

  // Delete.
  std::filesystem::remove(dir.file("vs.yaml"));
  ASSERT_TRUE(eventually([&] { return store.snapshot()->get(kReviews) == nullptr; }));
  // Moving a file out of the tree removes it too.
  std::filesystem::rename(dir.file("team/b/dr.yaml"), dir.file("team/b/dr.yaml.bak"));
  ASSERT_TRUE(eventually([&] {
    return store.snapshot()->get(Kind::kDestinationRule, "default", "reviews") == nullptr;
  }));
  watcher.stop();
}

TEST(DirectoryWatcher, DebounceCoalescesABurstIntoOneVersion) {
  TempDir dir;
  ConfigStore store;
  DirectoryWatcher watcher(store, dir.path(), 200ms);
  ASSERT_TRUE(watcher.start().ok());
  EXPECT_EQ(store.version(), 0u);
  // Several writes well within the debounce window: one batch, one version.
  for (int i = 1; i <= 5; ++i) {
    writeFile(dir.file("vs.yaml"), reviewsVs("v" + std::to_string(i)));
  }
  // The store shows a batch's result just before the batch is counted: wait for both.
  ASSERT_TRUE(eventually([&] { return subsetOf(store) == "v5" && watcher.batches() >= 1; }));
  EXPECT_EQ(store.version(), 1u);
  EXPECT_EQ(watcher.batches(), 1u);
}

TEST(DirectoryWatcher, WriterAppliesAreSeen) {
  TempDir dir;
  ConfigStore store;
  DirectoryWatcher watcher(store, dir.path(), 20ms);
  ASSERT_TRUE(watcher.start().ok());
  auto parsed = parseFile("in.yaml", reviewsVs("v2"));
  ASSERT_TRUE(parsed.documents[0].resource.has_value());
  auto path = writeResourceFile(dir.path(), *parsed.documents[0].resource);
  ASSERT_TRUE(path.ok()) << path.error();
  ASSERT_TRUE(eventually([&] { return subsetOf(store) == "v2"; }));
  ASSERT_TRUE(deleteResourceFile(dir.path(), kReviews).ok());
  ASSERT_TRUE(eventually([&] { return store.snapshot()->get(kReviews) == nullptr; }));
  // Temp files of the writer never reached the store.
  for (const auto& f : store.files()) EXPECT_EQ(f.find("/."), std::string::npos) << f;
}

// A Kubernetes ConfigMap volume: files are symlinks through "..data", which the kubelet swaps
// atomically on update.
TEST(DirectoryWatcher, FollowsConfigMapVolumeUpdates) {
  namespace fs = std::filesystem;
  TempDir dir;
  fs::create_directories(dir.file("..2024_01_01_00_00_00.1"));
  writeFile(dir.file("..2024_01_01_00_00_00.1/vs.yaml"), reviewsVs("v1"));
  fs::create_directory_symlink("..2024_01_01_00_00_00.1", dir.file("..data"));
  fs::create_symlink("..data/vs.yaml", dir.file("vs.yaml"));
  ConfigStore store;
  DirectoryWatcher watcher(store, dir.path(), 20ms);
  ASSERT_TRUE(watcher.start().ok());
  EXPECT_EQ(subsetOf(store), "v1");
  EXPECT_EQ(store.files().size(), 1u);

  fs::create_directories(dir.file("..2024_01_01_00_01_00.2"));
  writeFile(dir.file("..2024_01_01_00_01_00.2/vs.yaml"), reviewsVs("v2"));
  fs::create_directory_symlink("..2024_01_01_00_01_00.2", dir.file("..data_tmp"));
  fs::rename(dir.file("..data_tmp"), dir.file("..data"));
  fs::remove_all(dir.file("..2024_01_01_00_00_00.1"));
  ASSERT_TRUE(eventually([&] { return subsetOf(store) == "v2"; }));
  EXPECT_EQ(store.files().size(), 1u);
}

TEST(DirectoryWatcher, StartFailsForMissingDirectory) {
  ConfigStore store;
  DirectoryWatcher watcher(store, "/nonexistent/mast-config-dir");
  Status s = watcher.start();
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.error(), ::testing::HasSubstr("cannot watch /nonexistent/mast-config-dir"));
}

}  // namespace
}  // namespace mast::control::config
