#include "stats/store.h"

#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

namespace mast::stats {

namespace {
thread_local uint32_t t_slot = std::numeric_limits<uint32_t>::max();
}

// === Counter ===

Counter::Counter(std::string name, uint32_t slots)
    : name_(std::move(name)), slots_(new std::atomic<uint64_t>[slots]), n_(slots) {
  for (uint32_t i = 0; i < n_; ++i) slots_[i].store(0, std::memory_order_relaxed);
}

void Counter::add(uint64_t n) {
  uint32_t s = std::min(Store::currentSlot(), n_ - 1);
  slots_[s].fetch_add(n, std::memory_order_relaxed);
  if (!used_.load(std::memory_order_relaxed)) used_.store(true, std::memory_order_relaxed);
}

uint64_t Counter::value() const {
  uint64_t v = 0;
  for (uint32_t i = 0; i < n_; ++i) v += slots_[i].load(std::memory_order_relaxed);
  return v - reset_base_.load(std::memory_order_relaxed);
}

void Counter::reset() { reset_base_.fetch_add(value(), std::memory_order_relaxed); }

// === Histogram ===

const std::vector<double>& Histogram::bucketBounds() {
  static const std::vector<double> kBounds{0.5,   1,     5,     10,     25,     50,      100,
                                           250,   500,   1000,  2500,   5000,   10000,   30000,
                                           60000, 300000, 600000, 1800000, 3600000};
  return kBounds;
}

Histogram::Histogram(std::string name, uint32_t slots)
    : name_(std::move(name)), n_(slots), stride_(bucketBounds().size() + 2) {
  data_.reset(new std::atomic<uint64_t>[n_ * stride_]);
  for (size_t i = 0; i < n_ * stride_; ++i) data_[i].store(0, std::memory_order_relaxed);
}

void Histogram::record(uint64_t value) {
  uint32_t s = std::min(Store::currentSlot(), n_ - 1);
  const auto& b = bucketBounds();
  size_t idx = std::lower_bound(b.begin(), b.end(), static_cast<double>(value)) - b.begin();
  std::atomic<uint64_t>* d = &data_[s * stride_];
  d[idx].fetch_add(1, std::memory_order_relaxed);
  d[stride_ - 1].fetch_add(value, std::memory_order_relaxed);
  if (!used_.load(std::memory_order_relaxed)) used_.store(true, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snap;
  const auto& b = bucketBounds();
  std::vector<uint64_t> per(b.size() + 1, 0);
  for (uint32_t s = 0; s < n_; ++s) {
    const std::atomic<uint64_t>* d = &data_[s * stride_];
    for (size_t i = 0; i <= b.size(); ++i) per[i] += d[i].load(std::memory_order_relaxed);
    snap.sum += static_cast<double>(d[stride_ - 1].load(std::memory_order_relaxed));
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
      double frac = (target - static_cast<double>(prev)) / static_cast<double>(cumulative[i] - prev);
      return lower + (b[i] - lower) * std::clamp(frac, 0.0, 1.0);
    }
    prev = cumulative[i];
    lower = b[i];
  }
  return b.back();
}

// === Scope / Store ===

Counter& Scope::counter(std::string_view name) { return store_->counter(prefix_ + std::string(name)); }
Gauge& Scope::gauge(std::string_view name) { return store_->gauge(prefix_ + std::string(name)); }
Histogram& Scope::histogram(std::string_view name) {
  return store_->histogram(prefix_ + std::string(name));
}
Scope Scope::createScope(std::string_view prefix) const {
  return Scope(*store_, prefix_ + std::string(prefix));
}

Store::Store(uint32_t worker_threads) : slots_(worker_threads + 1), root_(*this, "") {}

void Store::registerThread(uint32_t index) { t_slot = index; }

uint32_t Store::currentSlot() { return t_slot; }

Counter& Store::counter(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& p = counters_[name];
  if (!p) p = std::make_unique<Counter>(name, slots_);
  return *p;
}

Gauge& Store::gauge(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& p = gauges_[name];
  if (!p) p = std::make_unique<Gauge>(name);
  return *p;
}

Histogram& Store::histogram(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& p = histograms_[name];
  if (!p) p = std::make_unique<Histogram>(name, slots_);
  return *p;
}

void Store::resetCounters() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [n, c] : counters_) c->reset();
}

void Store::registerTagPrefix(const std::string& prefix, const std::string& tag,
                              const std::string& value, const std::string& metric_prefix) {
  std::lock_guard<std::mutex> lock(mu_);
  tag_prefixes_[prefix] = TagPrefix{tag, value, metric_prefix};
}

std::vector<std::pair<std::string, Store::TagPrefix>> Store::tagPrefixes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {tag_prefixes_.begin(), tag_prefixes_.end()};
}

std::vector<const Counter*> Store::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const Counter*> out;
  for (auto& [n, c] : counters_) out.push_back(c.get());
  return out;
}
std::vector<const Gauge*> Store::gauges() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const Gauge*> out;
  for (auto& [n, g] : gauges_) out.push_back(g.get());
  return out;
}
std::vector<const Histogram*> Store::histograms() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const Histogram*> out;
  for (auto& [n, h] : histograms_) out.push_back(h.get());
  return out;
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
  static const char* kNames[] = {"P0", "P25", "P50", "P75", "P90", "P95", "P99", "P99.5", "P99.9", "P100"};
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
  // Registered prefixes (cluster, listener, http connection manager), longest first.
  size_t best = 0;
  Store::TagPrefix tp;
  for (const auto& [prefix, p] : store.tagPrefixes()) {
    if (prefix.size() > best && stat_name.substr(0, prefix.size()) == prefix) {
      best = prefix.size();
      tp = p;
    }
  }
  if (best) {
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
    } else if (rq && tail.size() == 3 && tail[0] >= '1' && tail[0] <= '5' && tail.substr(1) == "xx") {
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
  for (auto* c : s.counters()) {
    if ((!used_only || c->used()) && f.match(c->name())) {
      lines.emplace_back(c->name(), std::to_string(c->value()));
    }
  }
  for (auto* g : s.gauges()) {
    if ((!used_only || g->used()) && f.match(g->name())) {
      lines.emplace_back(g->name(), std::to_string(g->value()));
    }
  }
  for (auto* h : s.histograms()) {
    if ((!used_only || h->used()) && f.match(h->name())) {
      auto snap = h->snapshot();
      lines.emplace_back(h->name(), snap.count ? histogramSummary(snap) : "No recorded values");
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
  for (auto* c : s.counters()) {
    if ((!used_only || c->used()) && f.match(c->name())) {
      values.emplace_back(c->name(), static_cast<int64_t>(c->value()));
    }
  }
  for (auto* g : s.gauges()) {
    if ((!used_only || g->used()) && f.match(g->name())) values.emplace_back(g->name(), g->value());
  }
  std::sort(values.begin(), values.end());
  for (auto& [n, v] : values) stats.push_back({{"name", n}, {"value", v}});
  nlohmann::json computed = nlohmann::json::array();
  for (auto* h : s.histograms()) {
    if ((!used_only || h->used()) && f.match(h->name())) {
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
      computed.push_back({{"name", h->name()}, {"values", vals}});
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
  for (auto* c : s.counters()) {
    if ((used_only && !c->used()) || !f.match(c->name())) continue;
    auto t = extractTags(s, c->name());
    auto& fam = families[t.name];
    fam.type = "counter";
    fam.lines.push_back(t.name + labels(t) + " " + std::to_string(c->value()));
  }
  for (auto* g : s.gauges()) {
    if ((used_only && !g->used()) || !f.match(g->name())) continue;
    auto t = extractTags(s, g->name());
    auto& fam = families[t.name];
    fam.type = "gauge";
    fam.lines.push_back(t.name + labels(t) + " " + std::to_string(g->value()));
  }
  for (auto* h : s.histograms()) {
    if ((used_only && !h->used()) || !f.match(h->name())) continue;
    auto t = extractTags(s, h->name());
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
