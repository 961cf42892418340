#pragma once
// Per-request timeouts without a kernel timer per request.
//
// Every request arms a stream idle timeout and a route timeout, and almost every one is cancelled
// long before it fires. With one asio::steady_timer each, every arm that becomes the loop's
// earliest deadline costs a timerfd_settime syscall, and every cancel posts an aborted handler.
// A DeadlineQueue keeps one asio timer per event loop and, per distinct duration, a FIFO of
// deadlines: entries armed with the same duration expire in arming order, so each FIFO is sorted
// by construction and arming or cancelling is O(1) list work with no syscall. The asio timer is
// moved only when a new deadline is earlier than the one it is set for (rare: the first arm of
// a shorter duration); when it fires early it simply re-arms for the current earliest deadline.
//
// Thread: a queue and its Deadlines belong to one event loop; use them only on its thread.
// Ownership: a Deadline unlinks itself when cancelled, fired or destroyed, so it may be a member
// of the object its callback touches.
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace mast::net {

class DeadlineQueue;

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  Deadline() = default;
  ~Deadline() { cancel(); }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  // Calls `on_expiry` once, `after` from now, unless cancelled or re-armed first. Re-arming an
  // armed deadline moves it. `after` must be positive.
  void arm(DeadlineQueue& queue, Clock::duration after, std::function<void()> on_expiry);
  void cancel();
  bool armed() const { return lane_ != nullptr; }
  Clock::time_point expiry() const { return expiry_; }

 private:
  friend class DeadlineQueue;
  struct Lane* lane_ = nullptr;
  Deadline* prev_ = nullptr;
  Deadline* next_ = nullptr;
  Clock::time_point expiry_{};
  std::function<void()> on_expiry_;
};

class DeadlineQueue {
 public:
  using Clock = Deadline::Clock;

  explicit DeadlineQueue(asio::io_context& loop);
  ~DeadlineQueue();
  DeadlineQueue(const DeadlineQueue&) = delete;
  DeadlineQueue& operator=(const DeadlineQueue&) = delete;

  size_t armedCount() const { return armed_; }
  // Times the underlying asio timer was (re)set: the syscalls this queue exists to avoid.
  uint64_t timerResets() const { return timer_resets_; }

 private:
  friend class Deadline;
  void link(Deadline& d, Clock::duration after);
  void unlink(Deadline& d);
  void scheduleTimer(Clock::time_point at);
  void onTimer();
  Clock::time_point earliest() const;

  static constexpr size_t kKeptLanes = 8;

  asio::steady_timer timer_;
  bool timer_set_ = false;
  Clock::time_point timer_at_{};
  std::vector<std::unique_ptr<Lane>> lanes_;  // one per distinct duration, few
  size_t armed_ = 0;
  uint64_t timer_resets_ = 0;
  // Guards against use of the queue from a timer callback after destruction.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// A FIFO of deadlines armed with the same duration (so ordered by expiry).
struct Lane {
  Deadline::Clock::duration duration{};
  Deadline* head = nullptr;
  Deadline* tail = nullptr;
  DeadlineQueue* queue = nullptr;
};

}  // namespace mast::net
