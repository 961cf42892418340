#include "net/deadline_queue.h"

#include <gtest/gtest.h>

#include <asio/io_context.hpp>
#include <chrono>
#include <string>
#include <vector>

namespace mast::net {
namespace {

using namespace std::chrono_literals;

// Runs the loop until `done` or a bound of wall time passes (so a broken queue fails, not hangs).
void runUntil(asio::io_context& loop, const bool& done) {
  auto stop_at = std::chrono::steady_clock::now() + 2s;
  while (!done && std::chrono::steady_clock::now() < stop_at) {
    loop.run_for(5ms);
    loop.restart();
  }
}

TEST(DeadlineQueueTest, FiresInExpiryOrderAcrossDurations) {
  asio::io_context loop;
  DeadlineQueue q(loop);
  std::vector<std::string> fired;
  Deadline slow, fast, fast2;
  slow.arm(q, 60ms, [&] { fired.push_back("slow"); });
  fast.arm(q, 10ms, [&] { fired.push_back("fast"); });
  fast2.arm(q, 10ms, [&] { fired.push_back("fast2"); });
  EXPECT_EQ(q.armedCount(), 3u);
  bool done = false;
  Deadline stopper;
  stopper.arm(q, 100ms, [&] { done = true; });
  runUntil(loop, done);
  EXPECT_EQ(fired, (std::vector<std::string>{"fast", "fast2", "slow"}));
  EXPECT_FALSE(slow.armed());
  EXPECT_EQ(q.armedCount(), 0u);
}

TEST(DeadlineQueueTest, CancelledAndDestroyedDeadlinesNeverFire) {
  asio::io_context loop;
  DeadlineQueue q(loop);
  int fired = 0;
  Deadline a;
  a.arm(q, 10ms, [&] { ++fired; });
  {
    Deadline b;
    b.arm(q, 10ms, [&] { ++fired; });
  }  // destroyed while armed: unlinks itself
  a.cancel();
  EXPECT_EQ(q.armedCount(), 0u);
  bool done = false;
  Deadline stopper;
  stopper.arm(q, 40ms, [&] { done = true; });
  runUntil(loop, done);
  EXPECT_EQ(fired, 0);
}

TEST(DeadlineQueueTest, RearmMovesTheDeadline) {
  asio::io_context loop;
  DeadlineQueue q(loop);
  auto start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::duration fired_after{};
  bool done = false;
  Deadline d;
  d.arm(q, 10ms, [&] { done = true; });
  d.arm(q, 50ms, [&] {
    fired_after = std::chrono::steady_clock::now() - start;
    done = true;
  });
  EXPECT_EQ(q.armedCount(), 1u);
  runUntil(loop, done);
  ASSERT_TRUE(done);
  EXPECT_GE(fired_after, 50ms);  // the 10 ms arm was replaced, not kept
}

TEST(DeadlineQueueTest, SteadyArmCancelNeedsNoTimerResets) {
  // The point of the queue: arming then cancelling the same duration over and over (one per
  // request) does not touch the kernel timer after the first arm.
  asio::io_context loop;
  DeadlineQueue q(loop);
  Deadline d;
  for (int i = 0; i < 1000; ++i) {
    d.arm(q, 15s, [] {});
    d.cancel();
  }
  EXPECT_EQ(q.timerResets(), 1u);
}

TEST(DeadlineQueueTest, CallbackMayArmAndCancelOthers) {
  asio::io_context loop;
  DeadlineQueue q(loop);
  Deadline first, victim, chained;
  bool victim_fired = false, done = false;
  first.arm(q, 5ms, [&] {
    victim.cancel();
    chained.arm(q, 5ms, [&] { done = true; });
  });
  victim.arm(q, 6ms, [&] { victim_fired = true; });
  runUntil(loop, done);
  EXPECT_TRUE(done);
  EXPECT_FALSE(victim_fired);
}

TEST(DeadlineQueueTest, ManyOneOffDurationsStillFireInOrder) {
  // Lazy idle timeouts re-arm for "what is left", a new duration each time; empty one-off lanes
  // are dropped, and expiry order holds across them.
  asio::io_context loop;
  DeadlineQueue q(loop);
  std::vector<int> fired;
  std::vector<std::unique_ptr<Deadline>> ds;
  for (int i = 0; i < 20; ++i) {
    ds.push_back(std::make_unique<Deadline>());
    ds.back()->arm(q, std::chrono::milliseconds(40 - i), [&fired, i] { fired.push_back(i); });
  }
  bool done = false;
  Deadline stopper;
  stopper.arm(q, 80ms, [&] { done = true; });
  runUntil(loop, done);
  ASSERT_EQ(fired.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(fired[i], 19 - i);
  EXPECT_EQ(q.armedCount(), 0u);
}

}  // namespace
}  // namespace mast::net
