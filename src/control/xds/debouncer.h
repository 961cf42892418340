#pragma once
// Debouncing of snapshot pushes. Config changes come in bursts (a deployment rollout touches
// many endpoints); pushing each one to every proxy wastes the proxies' and our CPU. Events are
// merged until the stream of events has been quiet for `quiet`, but never delayed more than
// `max_delay` after the first event of a burst (so a constant trickle still gets pushed).
//
// DebounceState is the pure rule (time points in, decisions out), testable with any clock.
// Debouncer runs it on its own thread and calls `fire` with the merged keys of a burst.
// SnapshotPushQueue puts it in front of a SnapshotCache: per node the last snapshot wins.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "control/xds/snapshot.h"

namespace mast::control::xds {

struct DebounceOptions {
  std::chrono::milliseconds quiet{100};
  std::chrono::milliseconds max_delay{1000};
};

class DebounceState {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;

  explicit DebounceState(DebounceOptions options) : options_(options) {}

  void onEvent(TimePoint now);
  bool pending() const { return events_ > 0; }
  size_t events() const { return events_; }
  // When the pending burst should fire: min(last event + quiet, first event + max_delay).
  // Meaningless when !pending().
  TimePoint deadline() const;
  // If pending and now >= deadline(): resets to idle and returns the number of merged events;
  // otherwise 0.
  size_t take(TimePoint now);
  // Resets to idle unconditionally; returns the number of merged events.
  size_t takeNow();

 private:
  DebounceOptions options_;
  size_t events_ = 0;
  TimePoint first_{};
  TimePoint last_{};
};

// Thread contract: trigger()/flush()/stop() from any thread. `fire` runs on the debouncer's own
// thread, one call at a time, never under the debouncer's lock (it may call trigger()); it must
// not call stop() or destroy the debouncer. Events triggered while `fire` runs start a new burst.
// stop() (and the destructor) drops a pending burst without firing; call flush() first to keep it.
class Debouncer {
 public:
  using Fire = std::function<void(std::set<std::string> keys, size_t events)>;

  Debouncer(DebounceOptions options, Fire fire);
  ~Debouncer();
  Debouncer(const Debouncer&) = delete;
  Debouncer& operator=(const Debouncer&) = delete;

  // One event; `key` is merged into the burst's key set (e.g. a node id, or "" for "all").
  void trigger(std::string key);
  // Fires a pending burst now, on the debouncer thread, and waits for that fire to finish.
  void flush();
  void stop();

  uint64_t fires() const;

 private:
  void run();

  DebounceOptions options_;
  Fire fire_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable fired_cv_;
  DebounceState state_;
  std::set<std::string> keys_;
  bool stopping_ = false;
  bool flush_requested_ = false;
  uint64_t fires_ = 0;
  uint64_t flush_seq_ = 0;     // flush requests made
  uint64_t flushes_done_ = 0;  // flush requests served
  std::thread thread_;
};

// Per-node pending snapshots in front of a SnapshotCache: push() replaces the node's pending
// snapshot (last wins) and triggers the debouncer; when a burst fires, every pending snapshot is
// moved into the cache (whose watches then push to the node's streams). Thread-safe.
class SnapshotPushQueue {
 public:
  SnapshotPushQueue(SnapshotCache& cache, DebounceOptions options);
  ~SnapshotPushQueue();

  void push(const std::string& node_id, Snapshot snapshot);
  // Moves every pending snapshot into the cache now (synchronously).
  void flush();
  size_t pending() const;
  uint64_t snapshotsApplied() const;

 private:
  void apply();

  SnapshotCache& cache_;
  // Held for a whole apply (take the pending map + set it into the cache) so that two applies
  // (the debouncer's fire and a flush) cannot set an older snapshot after a newer one.
  std::mutex apply_mu_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const Snapshot>> pending_;
  uint64_t applied_ = 0;
  Debouncer debouncer_;
};

}  // namespace mast::control::xds
