#include "control/xds/debouncer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "control/xds/type_urls.h"
#include "envoy/config/cluster/v3/cluster.pb.h"

namespace mast::control::xds {
namespace {

using namespace std::chrono_literals;
using TP = DebounceState::TimePoint;

// The rule, on a fake clock.
TEST(DebounceStateTest, FiresAfterQuietPeriod) {
  DebounceState d({.quiet = 100ms, .max_delay = 1000ms});
  TP t0{};
  EXPECT_FALSE(d.pending());
  EXPECT_EQ(d.take(t0), 0u);
  d.onEvent(t0);
  d.onEvent(t0 + 50ms);
  EXPECT_EQ(d.deadline(), t0 + 150ms);
  EXPECT_EQ(d.take(t0 + 149ms), 0u);
  EXPECT_TRUE(d.pending());
  EXPECT_EQ(d.take(t0 + 150ms), 2u);
  EXPECT_FALSE(d.pending());
  EXPECT_EQ(d.take(t0 + 500ms), 0u);
}

TEST(DebounceStateTest, MaxDelayBoundsAConstantTrickle) {
  DebounceState d({.quiet = 100ms, .max_delay = 300ms});
  TP t0{};
  size_t fired_events = 0;
  std::vector<TP> fires;
  // An event every 50 ms for 1 s: never quiet for 100 ms, so only max_delay fires.
  for (int i = 0; i <= 20; ++i) {
    TP now = t0 + i * 50ms;
    if (size_t n = d.take(now)) {
      fired_events += n;
      fires.push_back(now);
    }
    d.onEvent(now);
  }
  ASSERT_EQ(fires.size(), 3u);
  EXPECT_EQ(fires[0], t0 + 300ms);  // first event at 0 → fired at 0 + max_delay
  EXPECT_EQ(fires[1], t0 + 600ms);  // the event at 300 ms (after the fire) began the next burst
  EXPECT_EQ(fires[2], t0 + 900ms);
  EXPECT_EQ(fired_events, 6u + 6u + 6u);
  EXPECT_EQ(d.takeNow(), 3u);  // the events at 900, 950 and 1000 ms are still pending
}

TEST(DebounceStateTest, NewBurstAfterFireStartsItsOwnMaxDelay) {
  DebounceState d({.quiet = 100ms, .max_delay = 200ms});
  TP t0{};
  d.onEvent(t0);
  EXPECT_EQ(d.take(t0 + 100ms), 1u);
  d.onEvent(t0 + 1000ms);
  EXPECT_EQ(d.deadline(), t0 + 1100ms);
}

// The threaded debouncer on the real clock (bounds are loose: timing on a loaded machine).
TEST(DebouncerTest, MergesABurstIntoOneFireWithAllKeys) {
  std::mutex mu;
  std::vector<std::pair<std::set<std::string>, size_t>> fires;
  Debouncer d({.quiet = 50ms, .max_delay = 5000ms}, [&](std::set<std::string> keys, size_t n) {
    std::lock_guard lock(mu);
    fires.emplace_back(std::move(keys), n);
  });
  d.trigger("a");
  d.trigger("b");
  d.trigger("a");
  for (int i = 0; i < 200; ++i) {
    {
      std::lock_guard lock(mu);
      if (!fires.empty()) break;
    }
    std::this_thread::sleep_for(10ms);
  }
  std::this_thread::sleep_for(100ms);  // no second fire follows
  std::lock_guard lock(mu);
  ASSERT_EQ(fires.size(), 1u);
  EXPECT_EQ(fires[0].first, (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(fires[0].second, 3u);
}

TEST(DebouncerTest, MaxDelayFiresDuringAContinuousStream) {
  std::atomic<int> fires{0};
  Debouncer d({.quiet = 200ms, .max_delay = 100ms},
              [&](std::set<std::string>, size_t) { fires.fetch_add(1); });
  auto end = std::chrono::steady_clock::now() + 600ms;
  while (std::chrono::steady_clock::now() < end) {
    d.trigger("k");
    std::this_thread::sleep_for(20ms);
  }
  // Never quiet for 200 ms; without max_delay nothing would have fired.
  EXPECT_GE(fires.load(), 2);
  EXPECT_EQ(static_cast<uint64_t>(fires.load()), d.fires());
}

TEST(DebouncerTest, FlushFiresNowAndStopDropsPending) {
  std::atomic<int> fires{0};
  Debouncer d({.quiet = 10s, .max_delay = 10s},
              [&](std::set<std::string>, size_t) { fires.fetch_add(1); });
  d.flush();  // nothing pending: no fire
  EXPECT_EQ(fires.load(), 0);
  d.trigger("x");
  d.flush();
  EXPECT_EQ(fires.load(), 1);
  d.trigger("y");
  auto t0 = std::chrono::steady_clock::now();
  d.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(fires.load(), 1);
  d.trigger("z");  // after stop: ignored, no crash
}

TEST(SnapshotPushQueueTest, LastSnapshotPerNodeWins) {
  SnapshotCache cache;
  std::atomic<int> notified{0};
  cache.watch("n1", [&] { notified.fetch_add(1); });
  SnapshotPushQueue queue(cache, {.quiet = 10s, .max_delay = 10s});
  for (int i = 1; i <= 5; ++i) {
    Snapshot s;
    s.setVersion(kClusterType, "v" + std::to_string(i));
    queue.push("n1", std::move(s));
  }
  Snapshot other;
  other.setVersion(kClusterType, "o1");
  queue.push("n2", std::move(other));
  EXPECT_EQ(queue.pending(), 2u);
  EXPECT_EQ(cache.getSnapshot("n1"), nullptr);  // still debouncing
  queue.flush();
  EXPECT_EQ(queue.pending(), 0u);
  EXPECT_EQ(queue.snapshotsApplied(), 2u);
  EXPECT_EQ(cache.getSnapshot("n1")->find(kClusterType)->version, "v5");
  EXPECT_EQ(cache.getSnapshot("n2")->find(kClusterType)->version, "o1");
  EXPECT_EQ(notified.load(), 1);  // one push for five snapshots
}

TEST(SnapshotPushQueueTest, DebouncerAppliesOnItsOwn) {
  SnapshotCache cache;
  SnapshotPushQueue queue(cache, {.quiet = 20ms, .max_delay = 200ms});
  Snapshot s;
  s.setVersion(kClusterType, "auto");
  queue.push("n1", std::move(s));
  for (int i = 0; i < 300 && !cache.getSnapshot("n1"); ++i) std::this_thread::sleep_for(10ms);
  ASSERT_NE(cache.getSnapshot("n1"), nullptr);
  EXPECT_EQ(cache.getSnapshot("n1")->find(kClusterType)->version, "auto");
}

}  // namespace
}  // namespace mast::control::xds
