#include "stats/store.h"

#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <type_traits>

namespace mast::stats {

namespace {
thread_local uint32_t t_slot = std::numeric_limits<uint32_t>::max();
}

// === Histogram ===

const std::vector<double>& Histogram::bucketBounds() {
  static const std::vector<double> kBounds{0.5,   1,      5,      10,      25,     50,    100,
                                           250,   500,    1000,   2500,    5000,   10000, 30000,
                                           60000, 300000, 600000, 1800000, 3600000};
  return kBounds;
}

Histogram::~Histogram() { delete[] data_.load(std::memory_order_relaxed); }

void Histogram::record(uint64_t value) {
  std::atomic<uint64_t>* data = data_.load(std::memory_order_acquire);
  if (!data) {
    // First record: install zeroed rows; a racing thread's rows are dropped.
    size_t n = n_ * stride();
    auto* fresh = new std::atomic<uint64_t>[n];
    for (size_t i = 0; i < n; ++i) fresh[i].store(0, std::memory_order_relaxed);
    if (data_.compare_exchange_strong(data, fresh, std::memory_order_acq_rel)) {
      data = fresh;
    } else {
      delete[] fresh;
    }
  }
  uint32_t s = std::min(Store::currentSlot(), n_ - 1);
  const auto& b = bucketBounds();
  size_t idx = std::lower_bound(b.begin(), b.end(), static_cast<double>(value)) - b.begin();
  std::atomic<uint64_t>* d = &data[s * stride()];
  d[idx].fetch_add(1, std::memory_order_relaxed);
  d[stride() - 1].fetch_add(value, std::memory_order_relaxed);
  if (!used_.load(std::memory_order_relaxed)) used_.store(true, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snap;
  const auto& b = bucketBounds();
  std::vector<uint64_t> per(b.size() + 1, 0);
  const std::atomic<uint64_t>* data = data_.load(std::memory_order_acquire);
  for (uint32_t s = 0; data && s < n_; ++s) {
    const std::atomic<uint64_t>* d = &data[s * stride()];
    for (size_t i = 0; i <= b.size(); ++i) per[i] += d[i].load(std::memory_order_relaxed);
    snap.sum += static_cast<double>(d[stride() - 1].load(std::memory_order_relaxed));
  }
  uint64_t acc = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    acc += per[i];
    snap.cumulative.push_back(acc);
  }
  snap.count = acc + per[b.size()];
  return snap;
}

double Histogram::Snapshot::quantile(double q) const {
  if (count == 0) return std::nan("");
  const auto& b = bucketBounds();
  double target = q * static_cast<double>(count);
  uint64_t prev = 0;
  double lower = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    if (static_cast<double>(cumulative[i]) >= target && cumulative[i] > prev) {
      double frac =
          (target - static_cast<double>(prev)) / static_cast<double>(cumulative[i] - prev);
      return lower + (b[i] - lower) * std::clamp(frac, 0.0, 1.0);
    }
    prev = cumulative[i];
    lower = b[i];
  }
  return b.back();
}

// === Scope / Store ===

Counter& Scope::counter(std::string_view name) {
  return store_->counter(prefix_ + std::string(name));
}
Gauge& Scope::gauge(std::string_view name) { return store_->gauge(prefix_ + std::string(name)); }
Histogram& Scope::histogram(std::string_view name) {
  return store_->histogram(prefix_ + std::string(name));
}
Scope Scope::createScope(std::string_view prefix) const {
  return Scope(*store_, prefix_ + std::string(prefix));
}

StatBlock::StatBlock(const StatBlockSpec& spec, uint32_t slots)
    : spec_(spec),
      counters_(spec.counters.empty() ? nullptr : new Counter[spec.counters.size()]),
      gauges_(spec.gauges.empty() ? nullptr : new Gauge[spec.gauges.size()]),
      histograms_(spec.histograms.empty() ? nullptr : new Histogram[spec.histograms.size()]) {
  for (size_t i = 0; i < spec.histograms.size(); ++i) histograms_[i].n_ = slots;
}

Store::Store(uint32_t worker_threads) : slots_(worker_threads + 1), root_(*this, "") {}

void Store::registerThread(uint32_t index) { t_slot = index; }

uint32_t Store::currentSlot() { return t_slot; }

template <typename T>
T* Store::findInBlock(std::string_view name) const {
  if (blocks_.empty()) return nullptr;
  // A block's prefix ends in '.', and so is one of the name's dot-terminated prefixes.
  for (size_t dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.', dot + 1)) {
    auto it = blocks_.find(name.substr(0, dot + 1));
    if (it == blocks_.end()) continue;
    StatBlock& b = *it->second;
    std::string_view suffix = name.substr(dot + 1);
    const std::vector<std::string_view>* names;
    if constexpr (std::is_same_v<T, Counter>) {
      names = &b.spec_.counters;
    } else if constexpr (std::is_same_v<T, Gauge>) {
      names = &b.spec_.gauges;
    } else {
      names = &b.spec_.histograms;
    }
    for (size_t i = 0; i < names->size(); ++i) {
      if ((*names)[i] != suffix) continue;
      if constexpr (std::is_same_v<T, Counter>) {
        return &b.counters_[i];
      } else if constexpr (std::is_same_v<T, Gauge>) {
        return &b.gauges_[i];
      } else {
        return &b.histograms_[i];
      }
    }
  }
  return nullptr;
}

Counter& Store::counter(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto* c = findInBlock<Counter>(name)) return *c;
  auto& p = counters_[name];
  if (!p) p = std::make_unique<Counter>();
  return *p;
}

Gauge& Store::gauge(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto* g = findInBlock<Gauge>(name)) return *g;
  auto& p = gauges_[name];
  if (!p) p = std::make_unique<Gauge>();
  return *p;
}

Histogram& Store::histogram(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto* h = findInBlock<Histogram>(name)) return *h;
  auto& p = histograms_[name];
  if (!p) p = std::make_unique<Histogram>(slots_);
  return *p;
}

StatBlock& Store::block(const std::string& prefix, const StatBlockSpec& spec) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = blocks_.try_emplace(prefix).first;
  if (!it->second) {
    it->second = std::make_unique<StatBlock>(spec, slots_);
    it->second->prefix_ = &it->first;
  }
  return *it->second;
}

void Store::resetCounters() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [n, c] : counters_) c->reset();
  for (auto& [prefix, b] : blocks_) {
    for (size_t i = 0; i < b->spec_.counters.size(); ++i) b->counters_[i].reset();
  }
}

void Store::registerTagPrefix(const std::string& prefix, const std::string& tag,
                              const std::string& value, const std::string& metric_prefix) {
  std::lock_guard<std::mutex> lock(mu_);
  tag_prefixes_[prefix] = TagPrefix{tag, value, metric_prefix};
}

bool Store::findTagPrefix(std::string_view name, TagPrefix& out, size_t& prefix_len) const {
  std::lock_guard<std::mutex> lock(mu_);
  bool found = false;
  // Registered prefixes end in '.': try the name's dot-terminated prefixes, longest wins.
  for (size_t dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.', dot + 1)) {
    std::string_view prefix = name.substr(0, dot + 1);
    if (auto it = tag_prefixes_.find(prefix); it != tag_prefixes_.end()) {
      out = it->second;
      prefix_len = prefix.size();
      found = true;
      continue;
    }
    auto b = blocks_.find(prefix);
    if (b == blocks_.end() || b->second->spec_.tag.empty()) continue;
    const StatBlockSpec& spec = b->second->spec_;
    if (prefix.size() <= spec.metric_prefix.size() + 1 ||
        prefix.substr(0, spec.metric_prefix.size()) != spec.metric_prefix) {
      continue;
    }
    out.tag = spec.tag;
    out.value =
        prefix.substr(spec.metric_prefix.size(), prefix.size() - spec.metric_prefix.size() - 1);
    out.metric_prefix = spec.metric_prefix;
    prefix_len = prefix.size();
    found = true;
  }
  return found;
}

namespace {
// Map stats and block stats of one kind, sorted by name.
template <typename T, typename Map, typename Get>
std::vector<Named<T>> collect(
    const Map& map, const std::map<std::string, std::unique_ptr<StatBlock>, std::less<>>& blocks,
    const std::vector<std::string_view>& (*names)(const StatBlockSpec&), Get get) {
  std::vector<Named<T>> out;
  out.reserve(map.size());
  for (const auto& [n, s] : map) out.emplace_back(n, s.get());
  for (const auto& [prefix, b] : blocks) {
    const auto& suffixes = names(b->spec());
    for (size_t i = 0; i < suffixes.size(); ++i) {
      std::string name;
      name.reserve(prefix.size() + suffixes[i].size());
      name.append(prefix).append(suffixes[i]);
      out.emplace_back(std::move(name), get(*b, i));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Named<T>& a, const Named<T>& b) { return a.first < b.first; });
  return out;
}
}  // namespace

std::vector<Named<Counter>> Store::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return collect<Counter>(
      counters_, blocks_, [](const StatBlockSpec& s) -> const auto& { return s.counters; },
      [](StatBlock& b, size_t i) -> const Counter* { return &b.counter(i); });
}
std::vector<Named<Gauge>> Store::gauges() const {
  std::lock_guard<std::mutex> lock(mu_);
  return collect<Gauge>(
      gauges_, blocks_, [](const StatBlockSpec& s) -> const auto& { return s.gauges; },
      [](StatBlock& b, size_t i) -> const Gauge* { return &b.gauge(i); });
}
std::vector<Named<Histogram>> Store::histograms() const {
  std::lock_guard<std::mutex> lock(mu_);
  return collect<Histogram>(
      histograms_, blocks_, [](const StatBlockSpec& s) -> const auto& { return s.histograms; },
      [](StatBlock& b, size_t i) -> const Histogram* { return &b.histogram(i); });
}

// === Rendering ===

namespace {

struct Filter {
  explicit Filter(const std::string& pattern) {
    if (!pattern.empty()) re = std::make_unique<RE2>(pattern, RE2::Quiet);
  }
  bool ok() const { return !re || re->ok(); }
  bool match(const std::string& name) const { return !re || RE2::PartialMatch(name, *re); }
  std::unique_ptr<RE2> re;
};

std::string fmtDouble(double v) {
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.15g", v);
  return buf;
}

std::string histogramSummary(const Histogram::Snapshot& s) {
  static const double kQ[] = {0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1};
  static const char* kNames[] = {"P0",  "P25", "P50",   "P75",   "P90",
                                 "P95", "P99", "P99.5", "P99.9", "P100"};
  std::string out;
  for (size_t i = 0; i < 10; ++i) {
    if (i) out += ' ';
    std::string v = fmtDouble(s.quantile(kQ[i]));
    out += std::string(kNames[i]) + "(" + v + "," + v + ")";
  }
  return out;
}

bool isDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string sanitize(std::string_view s) {
  std::string out;
  for (char c : s) {
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  }
  return out;
}

std::string escapeLabel(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

TaggedName extractTags(const Store& store, std::string_view stat_name) {
  TaggedName t;
  std::string_view rest = stat_name;
  std::string metric_prefix;
  // Registered prefixes (listener, http connection manager) and tagged blocks (cluster).
  Store::TagPrefix tp;
  size_t best = 0;
  if (store.findTagPrefix(stat_name, tp, best)) {
    t.tags.emplace_back(tp.tag, tp.value);
    metric_prefix = tp.metric_prefix;
    rest = stat_name.substr(best);
  }
  // Response codes and classes at the end of the name.
  size_t us = rest.rfind('_');
  if (us != std::string_view::npos) {
    std::string_view tail = rest.substr(us + 1);
    std::string_view head = rest.substr(0, us);
    bool rq = head.size() >= 2 && (head.substr(head.size() - 2) == "rq");
    if (rq && isDigits(tail) && tail.size() == 3) {
      t.tags.emplace_back("envoy_response_code", std::string(tail));
      rest = head;
    } else if (rq && tail.size() == 3 && tail[0] >= '1' && tail[0] <= '5' &&
               tail.substr(1) == "xx") {
      t.tags.emplace_back("envoy_response_code_class", std::string(1, tail[0]));
      metric_prefix += std::string(head) + "_xx";
      t.name = "envoy_" + sanitize(metric_prefix);
      return t;
    }
  }
  t.name = "envoy_" + sanitize(metric_prefix + std::string(rest));
  return t;
}

std::string renderText(const Store& s, const std::string& filter, bool used_only) {
  Filter f(filter);
  std::vector<std::pair<std::string, std::string>> lines;
  for (auto& [name, c] : s.counters()) {
    if ((!used_only || c->used()) && f.match(name)) {
      lines.emplace_back(name, std::to_string(c->value()));
    }
  }
  for (auto& [name, g] : s.gauges()) {
    if ((!used_only || g->used()) && f.match(name)) {
      lines.emplace_back(name, std::to_string(g->value()));
    }
  }
  for (auto& [name, h] : s.histograms()) {
    if ((!used_only || h->used()) && f.match(name)) {
      auto snap = h->snapshot();
      lines.emplace_back(name, snap.count ? histogramSummary(snap) : "No recorded values");
    }
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (auto& [n, v] : lines) out += n + ": " + v + "\n";
  return out;
}

std::string renderJson(const Store& s, const std::string& filter, bool used_only) {
  Filter f(filter);
  nlohmann::json stats = nlohmann::json::array();
  std::vector<std::pair<std::string, int64_t>> values;
  for (auto& [name, c] : s.counters()) {
    if ((!used_only || c->used()) && f.match(name)) {
      values.emplace_back(name, static_cast<int64_t>(c->value()));
    }
  }
  for (auto& [name, g] : s.gauges()) {
    if ((!used_only || g->used()) && f.match(name)) values.emplace_back(name, g->value());
  }
  std::sort(values.begin(), values.end());
  for (auto& [n, v] : values) stats.push_back({{"name", n}, {"value", v}});
  nlohmann::json computed = nlohmann::json::array();
  for (auto& [name, h] : s.histograms()) {
    if ((!used_only || h->used()) && f.match(name)) {
      auto snap = h->snapshot();
      nlohmann::json vals = nlohmann::json::array();
      for (double q : {0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1.0}) {
        double v = snap.quantile(q);
        if (std::isnan(v)) {
          vals.push_back({{"interval", nullptr}, {"cumulative", nullptr}});
        } else {
          vals.push_back({{"interval", v}, {"cumulative", v}});
        }
      }
      computed.push_back({{"name", name}, {"values", vals}});
    }
  }
  stats.push_back({{"histograms",
                    {{"supported_quantiles", {0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100}},
                     {"computed_quantiles", computed}}}});
  return nlohmann::json{{"stats", stats}}.dump(1);
}

std::string renderPrometheus(const Store& s, const std::string& filter, bool used_only) {
  Filter f(filter);
  struct Family {
    std::string type;
    std::vector<std::string> lines;
  };
  std::map<std::string, Family> families;
  auto labels = [](const TaggedName& t, const std::string& extra = "") {
    std::string out;
    for (const auto& [k, v] : t.tags) {
      if (!out.empty()) out += ',';
      out += k + "=\"" + escapeLabel(v) + "\"";
    }
    if (!extra.empty()) {
      if (!out.empty()) out += ',';
      out += extra;
    }
    return out.empty() ? std::string() : "{" + out + "}";
  };
  for (auto& [name, c] : s.counters()) {
    if ((used_only && !c->used()) || !f.match(name)) continue;
    auto t = extractTags(s, name);
    auto& fam = families[t.name];
    fam.type = "counter";
    fam.lines.push_back(t.name + labels(t) + " " + std::to_string(c->value()));
  }
  for (auto& [name, g] : s.gauges()) {
    if ((used_only && !g->used()) || !f.match(name)) continue;
    auto t = extractTags(s, name);
    auto& fam = families[t.name];
    fam.type = "gauge";
    fam.lines.push_back(t.name + labels(t) + " " + std::to_string(g->value()));
  }
  for (auto& [name, h] : s.histograms()) {
    if ((used_only && !h->used()) || !f.match(name)) continue;
    auto t = extractTags(s, name);
    auto& fam = families[t.name];
    fam.type = "histogram";
    auto snap = h->snapshot();
    const auto& b = Histogram::bucketBounds();
    for (size_t i = 0; i < b.size(); ++i) {
      fam.lines.push_back(t.name + "_bucket" + labels(t, "le=\"" + fmtDouble(b[i]) + "\"") + " " +
                          std::to_string(snap.cumulative[i]));
    }
    fam.lines.push_back(t.name + "_bucket" + labels(t, "le=\"+Inf\"") + " " +
                        std::to_string(snap.count));
    fam.lines.push_back(t.name + "_sum" + labels(t) + " " + fmtDouble(snap.sum));
    fam.lines.push_back(t.name + "_count" + labels(t) + " " + std::to_string(snap.count));
  }
  std::string out;
  for (auto& [name, fam] : families) {
    out += "# TYPE " + name + " " + fam.type + "\n";
    for (auto& l : fam.lines) out += l + "\n";
  }
  return out;
}

}  // namespace mast::stats
