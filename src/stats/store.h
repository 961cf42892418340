#pragma once
// Envoy-style stats: counters, gauges and histograms, named with dotted Envoy names, created once
// from a Scope at config time and bumped on the hot path without locks.
//
// Each counter/histogram keeps one slot per thread (workers register their index at start;
// other threads share the last slot); increments are relaxed atomic adds on the caller's slot,
// reads (admin, main thread) sum the slots. Creation takes the store's mutex.
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mast::stats {

class Store;

class Counter {
 public:
  Counter(std::string name, uint32_t slots);
  void inc() { add(1); }
  void add(uint64_t n);
  uint64_t value() const;
  bool used() const { return used_.load(std::memory_order_relaxed); }
  void reset();
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::unique_ptr<std::atomic<uint64_t>[]> slots_;
  uint32_t n_;
  std::atomic<uint64_t> reset_base_{0};
  std::atomic<bool> used_{false};
};

class Gauge {
 public:
  explicit Gauge(std::string name) : name_(std::move(name)) {}
  void set(int64_t v) {
    value_.store(v, std::memory_order_relaxed);
    markUsed();
  }
  void add(int64_t v) {
    value_.fetch_add(v, std::memory_order_relaxed);
    markUsed();
  }
  void sub(int64_t v) { add(-v); }
  void inc() { add(1); }
  void dec() { add(-1); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }
  bool used() const { return used_.load(std::memory_order_relaxed); }
  const std::string& name() const { return name_; }

 private:
  void markUsed() {
    if (!used_.load(std::memory_order_relaxed)) used_.store(true, std::memory_order_relaxed);
  }
  std::string name_;
  std::atomic<int64_t> value_{0};
  std::atomic<bool> used_{false};
};

// Values in the histogram's unit (milliseconds for *_time / *_ms stats); Envoy's default buckets.
class Histogram {
 public:
  static const std::vector<double>& bucketBounds();
  Histogram(std::string name, uint32_t slots);
  void record(uint64_t value);
  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound, cumulative counts
    uint64_t count = 0;
    double sum = 0;
    double quantile(double q) const;  // estimated from buckets
  };
  Snapshot snapshot() const;
  bool used() const { return used_.load(std::memory_order_relaxed); }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  uint32_t n_;
  size_t stride_;
  // Per slot: one count per bucket, one overflow (+Inf) bucket, then the sum.
  std::unique_ptr<std::atomic<uint64_t>[]> data_;
  std::atomic<bool> used_{false};
};

class Scope {
 public:
  Scope(Store& store, std::string prefix) : store_(&store), prefix_(std::move(prefix)) {}
  Counter& counter(std::string_view name);
  Gauge& gauge(std::string_view name);
  Histogram& histogram(std::string_view name);
  Scope createScope(std::string_view prefix) const;
  const std::string& prefix() const { return prefix_; }

 private:
  Store* store_;
  std::string prefix_;
};

class Store {
 public:
  // `worker_threads`: workers register indexes 0..worker_threads-1.
  explicit Store(uint32_t worker_threads);
  // Called once on each worker thread.
  void registerThread(uint32_t index);
  static uint32_t currentSlot();

  Scope& rootScope() { return root_; }
  Counter& counter(const std::string& full_name);
  Gauge& gauge(const std::string& full_name);
  Histogram& histogram(const std::string& full_name);
  void resetCounters();
  // Names under `prefix` (e.g. "cluster.foo.") get the Prometheus label tag=value and the
  // metric name `metric_prefix` + rest (e.g. "cluster." → envoy_cluster_upstream_rq_total).
  void registerTagPrefix(const std::string& prefix, const std::string& tag,
                         const std::string& value, const std::string& metric_prefix);
  struct TagPrefix {
    std::string tag, value, metric_prefix;
  };
  std::vector<std::pair<std::string, TagPrefix>> tagPrefixes() const;

  // Sorted by name; pointers stay valid for the store's life.
  std::vector<const Counter*> counters() const;
  std::vector<const Gauge*> gauges() const;
  std::vector<const Histogram*> histograms() const;

 private:
  uint32_t slots_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters_;
  std::map<std::string, std::unique_ptr<Gauge>, std::less<>> gauges_;
  std::map<std::string, std::unique_ptr<Histogram>, std::less<>> histograms_;
  std::map<std::string, TagPrefix> tag_prefixes_;
  Scope root_;
};

// Admin renderers. `filter` is an RE2 pattern matched partially against names ("" = all).
std::string renderText(const Store& s, const std::string& filter, bool used_only);
std::string renderJson(const Store& s, const std::string& filter, bool used_only);
std::string renderPrometheus(const Store& s, const std::string& filter, bool used_only);

// Envoy's tag extraction for Prometheus names: "cluster.foo.upstream_rq_200" →
// name "envoy_cluster_upstream_rq", labels {envoy_cluster_name="foo", envoy_response_code="200"}.
struct TaggedName {
  std::string name;
  std::vector<std::pair<std::string, std::string>> tags;
};
TaggedName extractTags(const Store& s, std::string_view stat_name);

}  // namespace mast::stats
