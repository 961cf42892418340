#pragma once
// Per-resource convergence: "is my change live?" for each Istio resource, answered from what
// the proxies acknowledged, and the pilot_proxy_convergence_time histogram.
//
// Model (see README.md):
//  - A resource *revision* is the config-store version at which mastd observed that resource's
//    latest change (observe()).
//  - Each snapshot computed for a proxy is a *generation*: the config version it was generated
//    from, its per-type versions (types with at least one resource) and the DependencyResolver
//    of its model. Dependencies are worked out only when status is asked for, so pushes pay
//    nothing for this.
//  - A generation is *accepted* when the proxy has ACKed, for every type, the version that
//    generation has (a later generation with the same version for a type counts: same content).
//    It is *rejected* when the proxy NACKs a version of one of its types (the message is kept);
//    a generation whose type version was already NACKed is rejected at once (the ADS server
//    does not resend rejected content).
//  - Resource K at revision R counts for a proxy when the proxy's latest generation depends on
//    K ("needs" it). It is accepted by that proxy when its latest accepted generation was
//    generated from config ≥ R and depends on K; rejected when a rejected generation newer than
//    that does; pending otherwise. Its ACK time is when the proxy first accepted config ≥ R.
//
// Thread contract: every method may be called from any thread (one internal mutex); status()
// computes dependencies outside that mutex.
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "control/config/resource.h"
#include "control/server/dependencies.h"
#include "control/xds/proxy_info.h"
#include "control/xds/snapshot.h"

namespace mast::control::server {

using SystemTime = std::chrono::system_clock::time_point;

// A Prometheus histogram (cumulative buckets in seconds, sum, count).
struct Histogram {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;  // per bound (not cumulative), plus one for +Inf
  double sum = 0;
  uint64_t count = 0;

  explicit Histogram(std::vector<double> b = {})
      : bounds(std::move(b)), counts(bounds.size() + 1, 0) {}
  void observe(double v);
  // "# HELP/# TYPE" and the _bucket/_sum/_count lines.
  std::string format(const std::string& name, const std::string& help) const;
};

struct ProxyResourceState {
  std::string proxy;     // node id
  std::string state;     // "ACCEPTED" | "REJECTED" | "PENDING"
  std::string type_url;  // rejected: the type NACKed
  std::string version;   // rejected: the version NACKed
  std::string message;   // rejected: the proxy's error_detail
  std::optional<SystemTime> acked_at;
};

struct ResourceStatus {
  uint64_t revision = 0;  // config version of the resource's latest change (0 = unknown)
  std::optional<SystemTime> observed_at;
  int needed = 0;  // connected proxies whose latest config depends on the resource
  int accepted = 0;
  int rejected = 0;
  int pending = 0;
  std::vector<ProxyResourceState> proxies;  // the needing proxies, by id
  std::optional<SystemTime> last_ack;       // latest ACK time among accepting proxies
  // last_ack - observed_at, when every needing proxy accepted (and there is at least one).
  std::optional<double> convergence_seconds;
};

class ConvergenceTracker {
 public:
  ConvergenceTracker();

  // The config store reported `changed` at version `version`.
  void observe(uint64_t version, const std::vector<config::ResourceKey>& changed, SystemTime now);
  // A (new) stream for `proxy`: per-type ACK state starts over; accepted config is kept.
  void connected(const xds::ProxyInfo& proxy);
  // The proxy's last stream closed: it no longer counts.
  void disconnected(const std::string& node_id);
  // A snapshot computed for a proxy (before it is handed to the ADS server).
  void generated(const std::string& node_id, uint64_t config_version,
                 std::shared_ptr<const xds::Snapshot> snapshot,
                 std::shared_ptr<const DependencyResolver> deps, SystemTime now);
  void ack(const std::string& node_id, const std::string& type_url, const std::string& version,
           SystemTime now);
  void nack(const std::string& node_id, const std::string& type_url, const std::string& version,
            const std::string& message, SystemTime now);

  // Status of each key (dependencies computed once per proxy for all of them).
  std::map<config::ResourceKey, ResourceStatus> status(
      const std::vector<config::ResourceKey>& keys) const;

  // pilot_proxy_convergence_time: per proxy, from the first config change a newly accepted
  // generation carries to the proxy's ACK of it.
  Histogram convergenceHistogram() const;

 private:
  struct Gen {
    uint64_t seq = 0;
    uint64_t config_version = 0;
    std::shared_ptr<const xds::Snapshot> snapshot;
    std::shared_ptr<const DependencyResolver> deps;
    std::map<std::string, std::string> versions;  // type URL → version
  };
  struct Rejection {
    Gen gen;
    std::string type_url, version, message;
    SystemTime at;
  };
  struct Track {
    xds::ProxyInfo proxy;
    uint64_t next_seq = 1;
    std::deque<Gen> pending;  // oldest first
    std::optional<Gen> accepted;
    std::optional<Rejection> rejected;         // only when newer than `accepted`
    std::map<std::string, std::string> acked;  // type → version
    std::map<std::string, std::pair<std::string, std::string>> nacked;  // type → (version, msg)
    // (config version, time first accepted), config versions increasing; bounded.
    std::deque<std::pair<uint64_t, SystemTime>> accept_history;
  };
  void acceptLocked(Track& t, const Gen& g, SystemTime now);
  void rejectLocked(Track& t, const Gen& g, const std::string& type_url, const std::string& version,
                    const std::string& message, SystemTime now);
  static bool satisfied(const Track& t, const Gen& g);

  mutable std::mutex mu_;
  std::map<config::ResourceKey, uint64_t> revisions_;  // key → version of its latest change
  std::map<uint64_t, SystemTime> observed_;            // config version → when observed
  std::map<std::string, Track> tracks_;                // by node id
  Histogram convergence_;
};

}  // namespace mast::control::server
