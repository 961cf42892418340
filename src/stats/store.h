#pragma once
// Envoy-style stats: counters, gauges and histograms, named with dotted Envoy names, created once
// from a Scope at config time and bumped on the hot path without locks.
//
// Counters and gauges are one relaxed atomic each. Histograms keep one row of buckets per thread
// (workers register their index at start; other threads share the last row), allocated on the
// first record. Reads (admin, main thread) sum the rows. Creation takes the store's mutex.
//
// Names live in the store, not in the stats: a stat created by name is a map entry, and a fixed
// set of stats declared for many prefixes (a StatBlock, e.g. the ~30 stats of each cluster) keeps
// its prefix once and takes its suffixes from a shared StatBlockSpec. Either way a name maps to
// one stat, and /stats shows both kinds the same way.
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mast::stats {

class Store;

class Counter {
 public:
  void inc() { add(1); }
  void add(uint64_t n) {
    value_.fetch_add(n, std::memory_order_relaxed);
    if (!used_.load(std::memory_order_relaxed)) used_.store(true, std::memory_order_relaxed);
  }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }
  bool used() const { return used_.load(std::memory_order_relaxed); }
  // Subtracts what it read, so increments racing with the reset are kept.
  void reset() { value_.fetch_sub(value(), std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
  std::atomic<bool> used_{false};
};

class Gauge {
 public:
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

 private:
  void markUsed() {
    if (!used_.load(std::memory_order_relaxed)) used_.store(true, std::memory_order_relaxed);
  }
  std::atomic<int64_t> value_{0};
  std::atomic<bool> used_{false};
};

// Values in the histogram's unit (milliseconds for *_time / *_ms stats); Envoy's default buckets.
class Histogram {
 public:
  static const std::vector<double>& bucketBounds();
  explicit Histogram(uint32_t slots = 1) : n_(slots) {}
  ~Histogram();
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;
  void record(uint64_t value);
  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound, cumulative counts
    uint64_t count = 0;
    double sum = 0;
    double quantile(double q) const;  // estimated from buckets
  };
  Snapshot snapshot() const;
  bool used() const { return used_.load(std::memory_order_relaxed); }

 private:
  friend class StatBlock;
  static size_t stride() { return bucketBounds().size() + 2; }
  // Per slot: one count per bucket, one overflow (+Inf) bucket, then the sum. Null until the
  // first record; installed with a compare-exchange, freed with the histogram.
  std::atomic<std::atomic<uint64_t>*> data_{nullptr};
  uint32_t n_;
  std::atomic<bool> used_{false};
};

// The names of a fixed set of stats under one prefix. Static: blocks point to it.
struct StatBlockSpec {
  std::vector<std::string_view> counters, gauges, histograms;  // suffixes after the prefix
  // Prometheus: stats of a block get the label `tag`, whose value is the prefix without
  // `metric_prefix` in front and the dot at the end ("cluster.foo." → foo), and are named
  // `metric_prefix` + suffix (envoy_cluster_upstream_rq_total). Empty tag: no label.
  std::string_view tag, metric_prefix;
};

// The stats of one prefix (one allocation per kind). Created by Store::block; lives as long as
// the store, like every stat.
class StatBlock {
 public:
  StatBlock(const StatBlockSpec& spec, uint32_t slots);
  Counter& counter(size_t i) { return counters_[i]; }
  Gauge& gauge(size_t i) { return gauges_[i]; }
  Histogram& histogram(size_t i) { return histograms_[i]; }
  const StatBlockSpec& spec() const { return spec_; }
  // "cluster.foo." (the store's key for the block).
  const std::string& prefix() const { return *prefix_; }

 private:
  friend class Store;
  const StatBlockSpec& spec_;
  const std::string* prefix_ = nullptr;
  std::unique_ptr<Counter[]> counters_;
  std::unique_ptr<Gauge[]> gauges_;
  std::unique_ptr<Histogram[]> histograms_;
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

template <typename T>
using Named = std::pair<std::string, const T*>;

class Store {
 public:
  // `worker_threads`: workers register indexes 0..worker_threads-1.
  explicit Store(uint32_t worker_threads);
  // Called once on each worker thread.
  void registerThread(uint32_t index);
  static uint32_t currentSlot();

  Scope& rootScope() { return root_; }
  // A name inside a block (prefix + one of its spec's suffixes) returns the block's stat.
  Counter& counter(const std::string& full_name);
  Gauge& gauge(const std::string& full_name);
  Histogram& histogram(const std::string& full_name);
  // The block of `prefix` (ending in '.'), created on first call. Every call for one prefix
  // must pass the same spec, and names of the block must not be created one by one before it.
  StatBlock& block(const std::string& prefix, const StatBlockSpec& spec);
  void resetCounters();
  // Names under `prefix` (e.g. "http.foo.") get the Prometheus label tag=value and the
  // metric name `metric_prefix` + rest (e.g. "http." → envoy_http_downstream_rq_total).
  void registerTagPrefix(const std::string& prefix, const std::string& tag,
                         const std::string& value, const std::string& metric_prefix);
  struct TagPrefix {
    std::string tag, value, metric_prefix;
  };
  // The longest registered prefix (or block with a tag) that `name` starts with; false if none.
  // The returned prefix length is how much of `name` the tag covers.
  bool findTagPrefix(std::string_view name, TagPrefix& out, size_t& prefix_len) const;

  // Sorted by name; pointers stay valid for the store's life.
  std::vector<Named<Counter>> counters() const;
  std::vector<Named<Gauge>> gauges() const;
  std::vector<Named<Histogram>> histograms() const;

 private:
  // The block stat called `name`, or null (under mu_).
  template <typename T>
  T* findInBlock(std::string_view name) const;

  uint32_t slots_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters_;
  std::map<std::string, std::unique_ptr<Gauge>, std::less<>> gauges_;
  std::map<std::string, std::unique_ptr<Histogram>, std::less<>> histograms_;
  std::map<std::string, std::unique_ptr<StatBlock>, std::less<>> blocks_;  // by prefix
  std::map<std::string, TagPrefix, std::less<>> tag_prefixes_;
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
