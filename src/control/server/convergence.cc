#include "control/server/convergence.h"

#include <fmt/format.h>

#include <algorithm>

namespace mast::control::server {

namespace {

constexpr size_t kMaxPending = 8;  // each holds its snapshot alive
constexpr size_t kMaxAcceptHistory = 64;
constexpr size_t kMaxObserved = 4096;

double seconds(SystemTime from, SystemTime to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds.size() && v > bounds[i]) ++i;
  ++counts[i];
  sum += v;
  ++count;
}

std::string Histogram::format(const std::string& name, const std::string& help) const {
  std::string out = fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += counts[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds[i], cumulative);
  }
  cumulative += counts.back();
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, cumulative);
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, sum, name, count);
  return out;
}

// Istio's buckets for pilot_proxy_convergence_time, with two finer ones first (a loopback mesh
// converges in milliseconds).
ConvergenceTracker::ConvergenceTracker()
    : convergence_({0.01, 0.05, 0.1, 0.5, 1, 3, 5, 10, 20, 30}) {}

void ConvergenceTracker::observe(uint64_t version, const std::vector<config::ResourceKey>& changed,
                                 SystemTime now) {
  std::lock_guard lk(mu_);
  for (const auto& k : changed) revisions_[k] = version;
  observed_.emplace(version, now);
  while (observed_.size() > kMaxObserved) observed_.erase(observed_.begin());
}

void ConvergenceTracker::connected(const xds::ProxyInfo& proxy) {
  std::lock_guard lk(mu_);
  auto& t = tracks_[proxy.id];
  t.proxy = proxy;
  t.pending.clear();
  t.acked.clear();
  t.nacked.clear();
}

void ConvergenceTracker::disconnected(const std::string& node_id) {
  std::lock_guard lk(mu_);
  tracks_.erase(node_id);
}

bool ConvergenceTracker::satisfied(const Track& t, const Gen& g) {
  for (const auto& [type, version] : g.versions) {
    auto it = t.acked.find(type);
    if (it == t.acked.end() || it->second != version) return false;
  }
  return true;
}

void ConvergenceTracker::generated(const std::string& node_id, uint64_t config_version,
                                   std::shared_ptr<const xds::Snapshot> snapshot,
                                   std::shared_ptr<const DependencyResolver> deps, SystemTime now) {
  std::lock_guard lk(mu_);
  auto it = tracks_.find(node_id);
  if (it == tracks_.end()) return;  // not connected (any more)
  Track& t = it->second;
  Gen g;
  g.seq = t.next_seq++;
  g.config_version = config_version;
  g.deps = std::move(deps);
  if (snapshot) {
    for (const auto& [type, set] : snapshot->types()) {
      if (!set.empty()) g.versions[type] = set.effectiveVersion();
    }
  }
  g.snapshot = std::move(snapshot);
  if (satisfied(t, g)) {
    acceptLocked(t, g, now);
    return;
  }
  for (const auto& [type, version] : g.versions) {
    auto n = t.nacked.find(type);
    auto a = t.acked.find(type);
    bool acked = a != t.acked.end() && a->second == version;
    if (n != t.nacked.end() && n->second.first == version && !acked) {
      rejectLocked(t, g, type, version, n->second.second, now);
      return;
    }
  }
  t.pending.push_back(std::move(g));
  while (t.pending.size() > kMaxPending) t.pending.pop_front();
}

void ConvergenceTracker::ack(const std::string& node_id, const std::string& type_url,
                             const std::string& version, SystemTime now) {
  std::lock_guard lk(mu_);
  auto it = tracks_.find(node_id);
  if (it == tracks_.end()) return;
  Track& t = it->second;
  t.acked[type_url] = version;
  t.nacked.erase(type_url);
  for (auto g = t.pending.rbegin(); g != t.pending.rend(); ++g) {
    if (satisfied(t, *g)) {
      Gen accepted = *g;  // acceptLocked() trims `pending`
      acceptLocked(t, accepted, now);
      return;
    }
  }
}

void ConvergenceTracker::nack(const std::string& node_id, const std::string& type_url,
                              const std::string& version, const std::string& message,
                              SystemTime now) {
  std::lock_guard lk(mu_);
  auto it = tracks_.find(node_id);
  if (it == tracks_.end()) return;
  Track& t = it->second;
  t.nacked[type_url] = {version, message};
  for (auto g = t.pending.rbegin(); g != t.pending.rend(); ++g) {
    auto v = g->versions.find(type_url);
    if (v != g->versions.end() && v->second == version) {
      Gen rejected = *g;
      rejectLocked(t, rejected, type_url, version, message, now);
      return;
    }
  }
}

void ConvergenceTracker::acceptLocked(Track& t, const Gen& g, SystemTime now) {
  std::erase_if(t.pending, [&](const Gen& p) { return p.seq <= g.seq; });
  if (t.accepted && t.accepted->seq > g.seq) return;
  std::optional<uint64_t> previous;
  if (t.accepted) previous = t.accepted->config_version;
  t.accepted = g;
  if (t.rejected && t.rejected->gen.seq < g.seq) t.rejected.reset();
  if (t.accept_history.empty() || t.accept_history.back().first < g.config_version) {
    t.accept_history.emplace_back(g.config_version, now);
    while (t.accept_history.size() > kMaxAcceptHistory) t.accept_history.pop_front();
  }
  // Convergence: from the first config change this proxy had not accepted yet.
  if (previous && *previous < g.config_version) {
    auto first = observed_.upper_bound(*previous);
    if (first != observed_.end() && first->first <= g.config_version) {
      convergence_.observe(std::max(0.0, seconds(first->second, now)));
    }
  }
}

void ConvergenceTracker::rejectLocked(Track& t, const Gen& g, const std::string& type_url,
                                      const std::string& version, const std::string& message,
                                      SystemTime now) {
  std::erase_if(t.pending, [&](const Gen& p) { return p.seq <= g.seq; });
  if (t.accepted && t.accepted->seq > g.seq) return;
  t.rejected = Rejection{g, type_url, version, message, now};
}

std::map<config::ResourceKey, ResourceStatus> ConvergenceTracker::status(
    const std::vector<config::ResourceKey>& keys) const {
  // Copy what is needed under the lock; compute dependencies outside it.
  struct View {
    std::string id;
    xds::ProxyInfo proxy;
    std::optional<Gen> latest, accepted;
    std::optional<Rejection> rejected;
    std::deque<std::pair<uint64_t, SystemTime>> history;
  };
  std::vector<View> views;
  std::map<config::ResourceKey, ResourceStatus> out;
  {
    std::lock_guard lk(mu_);
    for (const auto& k : keys) {
      auto& st = out[k];
      if (auto r = revisions_.find(k); r != revisions_.end()) {
        st.revision = r->second;
        if (auto o = observed_.find(r->second); o != observed_.end()) st.observed_at = o->second;
      }
    }
    for (const auto& [id, t] : tracks_) {
      View v{id, t.proxy, {}, t.accepted, t.rejected, t.accept_history};
      if (!t.pending.empty()) {
        v.latest = t.pending.back();
      } else if (t.rejected && (!t.accepted || t.rejected->gen.seq > t.accepted->seq)) {
        v.latest = t.rejected->gen;
      } else {
        v.latest = t.accepted;
      }
      if (v.latest) views.push_back(std::move(v));
    }
  }
  auto depsOf = [](const xds::ProxyInfo& p, const Gen& g) {
    if (!g.deps || !g.snapshot) return Dependencies{};
    return g.deps->dependencies(p, *g.snapshot);
  };
  for (const auto& v : views) {
    auto latest = depsOf(v.proxy, *v.latest);
    Dependencies accepted, rejected;
    bool accepted_done = false, rejected_done = false;
    for (const auto& k : keys) {
      if (!latest.contains(k)) continue;
      auto& st = out[k];
      ++st.needed;
      ProxyResourceState ps;
      ps.proxy = v.id;
      ps.state = "PENDING";
      if (v.accepted && v.accepted->config_version >= st.revision) {
        if (!accepted_done) {
          accepted = v.latest->seq == v.accepted->seq ? latest : depsOf(v.proxy, *v.accepted);
          accepted_done = true;
        }
        if (accepted.contains(k)) {
          ps.state = "ACCEPTED";
          for (const auto& [cv, at] : v.history) {
            if (cv >= st.revision) {
              ps.acked_at = at;
              break;
            }
          }
          if (!ps.acked_at && !v.history.empty()) ps.acked_at = v.history.back().second;
        }
      }
      if (ps.state == "PENDING" && v.rejected && v.rejected->gen.config_version >= st.revision &&
          (!v.accepted || v.rejected->gen.seq > v.accepted->seq)) {
        if (!rejected_done) {
          rejected =
              v.latest->seq == v.rejected->gen.seq ? latest : depsOf(v.proxy, v.rejected->gen);
          rejected_done = true;
        }
        if (rejected.contains(k)) {
          ps.state = "REJECTED";
          ps.type_url = v.rejected->type_url;
          ps.version = v.rejected->version;
          ps.message = v.rejected->message;
        }
      }
      if (ps.state == "ACCEPTED") {
        ++st.accepted;
        if (ps.acked_at && (!st.last_ack || *ps.acked_at > *st.last_ack)) st.last_ack = ps.acked_at;
      } else if (ps.state == "REJECTED") {
        ++st.rejected;
      } else {
        ++st.pending;
      }
      st.proxies.push_back(std::move(ps));
    }
  }
  for (auto& [k, st] : out) {
    if (st.needed > 0 && st.accepted == st.needed && st.last_ack && st.observed_at) {
      st.convergence_seconds = std::max(0.0, seconds(*st.observed_at, *st.last_ack));
    }
  }
  return out;
}

Histogram ConvergenceTracker::convergenceHistogram() const {
  std::lock_guard lk(mu_);
  return convergence_;
}

}  // namespace mast::control::server
