#include "control/xds/ads_server.h"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/slice.h>

#include <algorithm>
#include <set>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>

#include "base/hash.h"
#include "base/logging.h"
#include "control/xds/type_urls.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"

namespace mast::control::xds {

namespace discovery = envoy::service::discovery::v3;

namespace {

// What a stream implementation hands back to the service (registry, status, shutdown), without
// the service knowing the protocol flavour.
class StreamBase {
 public:
  virtual ~StreamBase() = default;
  virtual ProxyStatus statusCopy(bool with_names) = 0;
  virtual std::string nodeId() = 0;
  virtual void finishByServer() = 0;
};

// ACK/NACK callbacks collected under the stream lock and dispatched after it is released.
struct Events {
  std::vector<AckEvent> acks;
  std::vector<AckEvent> nacks;
};

}  // namespace

// State of the world is served as raw bytes (grpc::ByteBuffer): its responses are assembled
// from each resource's pre-encoded bytes (Resource::wire) without copying or re-serializing
// them; requests are parsed here. Delta keeps the generated message types.
using AdsCallbackBase =
    discovery::AggregatedDiscoveryService::WithRawCallbackMethod_StreamAggregatedResources<
        discovery::AggregatedDiscoveryService::WithCallbackMethod_DeltaAggregatedResources<
            discovery::AggregatedDiscoveryService::Service>>;

struct AdsService::Impl : AdsCallbackBase {
  Impl(SnapshotCache& c, Callbacks cb) : cache(c), callbacks(std::move(cb)) {}

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StreamAggregatedResources(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerBidiReactor<discovery::DeltaDiscoveryRequest, discovery::DeltaDiscoveryResponse>*
  DeltaAggregatedResources(grpc::CallbackServerContext* ctx) override;

  void registerStream(uint64_t id, std::weak_ptr<StreamBase> s) {
    std::lock_guard lock(mu);
    streams[id] = std::move(s);
  }
  void unregisterStream(uint64_t id) {
    std::lock_guard lock(mu);
    streams.erase(id);
  }
  std::vector<std::shared_ptr<StreamBase>> liveStreams() const {
    std::vector<std::shared_ptr<StreamBase>> out;
    std::lock_guard lock(mu);
    for (const auto& [id, w] : streams) {
      if (auto s = w.lock()) out.push_back(std::move(s));
    }
    return out;
  }
  void countPush(const std::string& type) {
    pushes_total.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(metrics_mu);
    ++pushes_by_type[type];
  }
  void countNack(const std::string& type) {
    nacks_total.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(metrics_mu);
    ++nacks_by_type[type];
  }

  // A SotW subscription (sorted, unique names), shared by every stream that subscribes to the
  // same names: with the whole mesh visible each sidecar names the same ~1,340
  // ClusterLoadAssignments, ~190 KB as a set of strings per stream. Thread-safe; the pool holds
  // weak references, swept as it grows.
  using Names = std::vector<std::string>;
  std::shared_ptr<const Names> internNames(Names names) {
    uint64_t h = names.size();
    for (const auto& n : names) h = xxHash64(n, h);
    std::lock_guard lock(names_mu);
    auto [first, last] = names_pool.equal_range(h);
    for (auto it = first; it != last; ++it) {
      if (auto p = it->second.lock(); p && *p == names) return p;
    }
    auto p = std::make_shared<const Names>(std::move(names));
    names_pool.emplace(h, p);
    if (names_pool.size() >= names_sweep_at) {
      std::erase_if(names_pool, [](const auto& e) { return e.second.expired(); });
      names_sweep_at = std::max<size_t>(64, 2 * names_pool.size());
    }
    return p;
  }

  // What a SotW stream selects from a type's set, when only the set's shared base layer is
  // visible: the resources (name order) and their (name hash, entry hash) pairs, sorted. Many
  // streams subscribe the same interned names over the same base (every sidecar of a share key),
  // so the selection is computed once per (names, base) and shared, instead of ~1,340 string
  // lookups per stream and push. Entries hold weak references and are checked against them.
  using Sent = std::vector<std::pair<uint64_t, uint64_t>>;
  struct Selection {
    std::vector<const Resource*> chosen;  // point into the base layer
    std::shared_ptr<const Sent> versions;
  };
  template <class Compute>
  std::shared_ptr<const Selection> selection(const std::shared_ptr<const Names>& names,
                                             const std::shared_ptr<const ResourceSet>& base,
                                             Compute compute) {
    std::pair<const void*, const void*> key{names.get(), base.get()};
    {
      std::lock_guard lock(selections_mu);
      auto it = selections.find(key);
      if (it != selections.end() && it->second.names.lock() == names &&
          it->second.base.lock() == base) {
        return it->second.selection;
      }
    }
    auto sel = std::make_shared<const Selection>(compute());
    std::lock_guard lock(selections_mu);
    selections[key] = {names, base, sel};
    if (selections.size() >= selections_sweep_at) {
      std::erase_if(selections, [](const auto& e) { return e.second.base.expired(); });
      selections_sweep_at = std::max<size_t>(64, 2 * selections.size());
    }
    return sel;
  }

  SnapshotCache& cache;
  Callbacks callbacks;
  std::atomic<uint64_t> next_stream_id{1};
  std::atomic<bool> shut_down{false};

  mutable std::mutex mu;  // streams
  std::map<uint64_t, std::weak_ptr<StreamBase>> streams;

  std::atomic<uint64_t> connected{0};
  std::atomic<uint64_t> streams_total{0};
  std::atomic<uint64_t> streams_rejected{0};
  std::atomic<uint64_t> pushes_total{0};
  std::atomic<uint64_t> acks_total{0};
  std::atomic<uint64_t> nacks_total{0};
  mutable std::mutex metrics_mu;
  std::map<std::string, uint64_t> pushes_by_type;
  std::map<std::string, uint64_t> nacks_by_type;
  std::mutex names_mu;  // a leaf lock (taken under a stream's mu_)
  std::unordered_multimap<uint64_t, std::weak_ptr<const Names>> names_pool;
  size_t names_sweep_at = 64;
  struct SelectionEntry {
    std::weak_ptr<const Names> names;
    std::weak_ptr<const ResourceSet> base;
    std::shared_ptr<const Selection> selection;
  };
  std::mutex selections_mu;  // a leaf lock, like names_mu
  std::map<std::pair<const void*, const void*>, SelectionEntry> selections;
  size_t selections_sweep_at = 64;
};

namespace {

using Impl = AdsService::Impl;

// The reactor mechanics shared by both protocols: one read at a time, one write at a time,
// Finish exactly once and only when no write is in flight, self-ownership until OnDone.
// `Req` is the request message the protocol handles; `WireReq`/`WireResp` what gRPC reads and
// writes (the messages themselves, or grpc::ByteBuffer for a raw method, whose requests are
// parsed into `Req` here).
//
// Locking: `mu_` guards all stream state. gRPC operations (StartRead/StartWrite/Finish) and
// owner callbacks are always called with `mu_` released. Lock order: stream mu_ → cache lock →
// service metrics lock; nothing takes a stream lock while holding one of those.
template <class Req, class WireReq, class WireResp>
class AdsStream : public grpc::ServerBidiReactor<WireReq, WireResp>,
                  public StreamBase,
                  public std::enable_shared_from_this<AdsStream<Req, WireReq, WireResp>> {
 public:
  AdsStream(Impl* impl, grpc::CallbackServerContext* ctx, bool delta)
      : impl_(impl), id_(impl->next_stream_id.fetch_add(1)), delta_(delta), peer_(ctx->peer()) {}

  // Called once by the service right after construction: the stream owns itself until OnDone.
  void begin(std::shared_ptr<AdsStream> self) {
    self_ = std::move(self);
    if (impl_->shut_down.load()) {
      requestFinish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "xDS server is shutting down"));
      return;
    }
    this->StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client half-closed, or the call is cancelled
      requestFinish(grpc::Status::OK);
      return;
    }
    Req req;
    if constexpr (std::is_same_v<Req, WireReq>) {
      req = std::move(req_);
      req_.Clear();
    } else {
      // Deserialize consumes (clears) the buffer, successful or not.
      if (!grpc::SerializationTraits<Req>::Deserialize(&req_, &req).ok()) {
        requestFinish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed request"));
        return;
      }
    }
    if (!identified_ && !identify(req)) return;
    Events events;
    {
      std::lock_guard lock(mu_);
      if (finishing()) return;
      handleRequestLocked(req, events);
    }
    dispatch(events);
    pump();
    // Never StartRead after Finish: `read_starting_` holds Finish off (requestFinish and
    // OnWriteDone defer to here) while the read is being started.
    {
      std::lock_guard lock(mu_);
      if (finishing()) return;
      read_starting_ = true;
    }
    this->StartRead(&req_);
    bool finish_now = false;
    {
      std::lock_guard lock(mu_);
      read_starting_ = false;
      finish_now = finishReadyLocked();
    }
    if (finish_now) this->Finish(finish_status_);
  }

  void OnWriteDone(bool ok) override {
    bool finish_now = false;
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok && !finish_pending_) {
        finish_pending_ = true;
        finish_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
      }
      finish_now = finishReadyLocked();
    }
    if (finish_now) {
      this->Finish(finish_status_);
      return;
    }
    pump();
  }

  void OnCancel() override {
    requestFinish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }

  void OnDone() override {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    if (watch_id_ != 0) impl_->cache.cancelWatch(watch_id_);
    impl_->unregisterStream(id_);
    if (accepted_) {
      impl_->connected.fetch_sub(1);
      if (impl_->callbacks.on_proxy_disconnected) {
        impl_->callbacks.on_proxy_disconnected(proxy_.id, id_);
      }
    }
    auto keep = std::move(self_);  // may destroy *this when `keep` goes out of scope
  }

  ProxyStatus statusCopy(bool with_names) override {
    std::lock_guard lock(mu_);
    ProxyStatus s;
    s.proxy = proxy_;
    s.stream_id = id_;
    s.delta = delta_;
    s.peer = peer_;
    s.connected_at = connected_at_;
    fillTypesLocked(s.types, with_names);
    return s;
  }

  std::string nodeId() override {
    std::lock_guard lock(mu_);
    return proxy_.id;
  }

  void finishByServer() override {
    requestFinish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "xDS server is shutting down"));
  }

  // The node's snapshot changed (SnapshotCache watch; any thread).
  void onSnapshotChanged() {
    {
      std::lock_guard lock(mu_);
      if (finishing()) return;
      markAllDirtyLocked();
    }
    pump();
  }

 protected:
  // Protocol hooks, called with mu_ held.
  virtual void handleRequestLocked(const Req& req, Events& events) = 0;
  // Builds the next response into `resp`; false when there is nothing to send.
  virtual bool nextResponseLocked(const Snapshot* snapshot, WireResp& resp) = 0;
  virtual void markAllDirtyLocked() = 0;
  // `with_names`: also copy the subscribed resource names (debug views only; can be large).
  virtual void fillTypesLocked(std::map<std::string, TypeStatus>& out, bool with_names) = 0;

  std::string nextNonce() { return std::to_string(++nonce_counter_); }

  // Shared ACK/NACK bookkeeping for one type. `status` is the type's TypeStatus.
  void recordAckLocked(TypeStatus& status, const std::string& nonce,
                       const google::rpc::Status* error, Events& events) {
    AckEvent ev{proxy_.id,           id_,   status.type_url,
                status.sent_version, nonce, error ? error->message() : std::string()};
    if (error != nullptr) {
      status.state = SyncState::kError;
      status.nacked_version = status.sent_version;
      status.error_message = error->message();
      ++status.nacks;
      impl_->countNack(status.type_url);
      events.nacks.push_back(std::move(ev));
    } else {
      status.state = SyncState::kSynced;
      status.acked_version = status.sent_version;
      status.acked_nonce = nonce;
      status.nacked_version.clear();
      status.error_message.clear();
      impl_->acks_total.fetch_add(1, std::memory_order_relaxed);
      events.acks.push_back(std::move(ev));
    }
  }

  void recordSendLocked(TypeStatus& status, const std::string& version, const std::string& nonce,
                        size_t resources) {
    status.state = SyncState::kStale;
    status.sent_version = version;
    status.sent_nonce = nonce;
    status.resources_sent = resources;
    ++status.pushes;
    impl_->countPush(status.type_url);
  }

  Impl* impl_;
  const uint64_t id_;
  ProxyInfo proxy_;

 private:
  bool finishing() const { return finish_pending_ || closed_; }

  // Finish is called exactly once, when asked for and no write or read start is in progress;
  // true means "the caller must call Finish now".
  bool finishReadyLocked() {
    if (!finish_pending_ || finish_called_ || writing_ || read_starting_) return false;
    finish_called_ = true;
    return true;
  }

  // First request: parse the node, ask the owner, start watching the node's snapshot.
  bool identify(const Req& req) {
    auto reject = [&](grpc::StatusCode code, std::string msg) {
      impl_->streams_rejected.fetch_add(1);
      MAST_LOG(WARN, "xds: stream {} from {} refused: {}", id_, peer_, msg);
      requestFinish(grpc::Status(code, msg));
      return false;
    };
    if (!req.has_node()) {
      return reject(grpc::StatusCode::INVALID_ARGUMENT, "the first request must carry `node`");
    }
    auto info = parseProxyInfo(req.node());
    if (!info) return reject(grpc::StatusCode::INVALID_ARGUMENT, info.error());
    if (impl_->callbacks.on_proxy_connected) {
      if (auto s = impl_->callbacks.on_proxy_connected(*info); !s) {
        return reject(grpc::StatusCode::PERMISSION_DENIED, s.error());
      }
    }
    std::weak_ptr<AdsStream> weak = this->weak_from_this();
    watch_id_ = impl_->cache.watch(info->id, [weak] {
      if (auto s = weak.lock()) s->onSnapshotChanged();
    });
    {
      std::lock_guard lock(mu_);
      proxy_ = std::move(*info);
      connected_at_ = std::chrono::system_clock::now();
      identified_ = true;
    }
    accepted_ = true;
    impl_->connected.fetch_add(1);
    impl_->streams_total.fetch_add(1);
    // Register, then look at the flag: shutdown() sets the flag, then walks the registry, so
    // either it finds this stream or this stream sees the flag.
    impl_->registerStream(id_, this->weak_from_this());
    if (impl_->shut_down.load()) finishByServer();
    MAST_LOG(DEBUG, "xds: stream {} ({}) from {} is node {}", id_, delta_ ? "delta" : "sotw", peer_,
             proxy_.id);
    return true;
  }

  void dispatch(const Events& events) {
    if (impl_->callbacks.on_ack) {
      for (const auto& e : events.acks) impl_->callbacks.on_ack(e);
    }
    if (impl_->callbacks.on_nack) {
      for (const auto& e : events.nacks) impl_->callbacks.on_nack(e);
    }
  }

  // Starts the next write if none is in flight and there is something to send. The snapshot is
  // read at this moment, so bursts of setSnapshot calls merge into the latest one.
  void pump() {
    {
      std::lock_guard lock(mu_);
      if (writing_ || finishing() || !identified_) return;
      auto snapshot = impl_->cache.getSnapshot(proxy_.id);
      // Free the previous response rather than Clear() it: Clear keeps every Any's capacity,
      // so each idle stream would hold on to its largest response (about 1 MB per sidecar in
      // a 1,000-service mesh).
      write_buf_ = WireResp();
      if (!nextResponseLocked(snapshot.get(), write_buf_)) return;
      writing_ = true;
    }
    this->StartWrite(&write_buf_);
  }

  void requestFinish(grpc::Status status) {
    bool now = false;
    {
      std::lock_guard lock(mu_);
      if (finish_pending_) return;
      finish_pending_ = true;
      finish_status_ = std::move(status);
      now = finishReadyLocked();
    }
    if (now) this->Finish(finish_status_);
  }

  const bool delta_;
  const std::string peer_;
  std::shared_ptr<AdsStream> self_;
  WireReq req_;
  WireResp write_buf_;
  SnapshotCache::WatchId watch_id_ = 0;
  bool identified_ = false;  // written under mu_ by the read path, read by pump()
  bool accepted_ = false;
  uint64_t nonce_counter_ = 0;

  std::mutex mu_;
  std::chrono::system_clock::time_point connected_at_{};
  bool writing_ = false;
  bool read_starting_ = false;
  bool finish_pending_ = false;
  bool finish_called_ = false;
  bool closed_ = false;
  grpc::Status finish_status_;
};

// Dirty types are evaluated in push order (secrets, CDS, EDS, LDS, RDS, others by name).
std::vector<std::string> inPushOrder(const std::set<std::string>& types) {
  std::vector<std::string> out(types.begin(), types.end());
  std::stable_sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return pushRank(a) < pushRank(b);
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// State of the world. Per type: the subscription (wildcard and/or names) and what was last sent
// (version + name → resource version). A response is sent when what the subscription selects
// from the current snapshot differs from what was last sent; so an ACK or a NACK by itself never
// causes a resend, a NACKed config is not retried until the snapshot changes, and unsubscribed
// names are forgotten so that subscribing again re-sends them.
//
// Responses are written as raw bytes: a small header (version, type URL, nonce) and then each
// chosen resource's shared, pre-encoded bytes (Resource::wire). Large resources go out as
// slices that reference those bytes (no copy; the slice keeps them alive until gRPC has written
// them), runs of tiny ones are copied into one slice (a referencing slice costs two small
// allocations). So 2,000 proxies sent the same 2 MB do not each get a 2 MB copy to build,
// serialize and hold until their transport drains it.
class SotwStream final
    : public AdsStream<discovery::DiscoveryRequest, grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  using AdsStream::AdsStream;

 private:
  struct Type {
    bool seen = false;
    bool legacy_wildcard = false;  // first request had no names (LDS/CDS only)
    bool wildcard = false;
    std::shared_ptr<const Impl::Names> names;  // interned (Impl::internNames); null = none
    bool sent_any = false;
    // The subscription changed since the last evaluation: what it selects must be recomputed
    // even when the type's version did not move.
    bool resubscribed = true;
    uint64_t evaluated_fingerprint = 0;  // the set's fingerprint() at the last evaluation
    std::string sent_version;
    // What the client has: (Resource::name_hash, Resource::entry_hash), sorted. Hashes rather
    // than strings: with the whole mesh visible a stream was sent ~2,400 resources.
    std::shared_ptr<const Impl::Sent> sent;  // shared with Impl::selection's; null = nothing
    TypeStatus status;
  };

  // Envoy and gRPC send the full subscription with every ACK; most of the time it is the one
  // the stream has, in the same (sorted) order. Compared without building a set.
  static const Impl::Names& namesOf(const Type& t) {
    static const Impl::Names kNone;
    return t.names ? *t.names : kNone;
  }

  static bool sameNames(const google::protobuf::RepeatedPtrField<std::string>& requested,
                        const Impl::Names& names) {
    if (static_cast<size_t>(requested.size()) != names.size()) return false;
    auto it = names.begin();
    for (const auto& n : requested) {
      if (n != *it++) return false;
    }
    return true;
  }

  void handleRequestLocked(const discovery::DiscoveryRequest& req, Events& events) override {
    const std::string& type_url = req.type_url();
    if (type_url.empty()) return;  // ADS requests must name their type; nothing to do
    Type& t = types_[type_url];
    t.status.type_url = type_url;
    const std::string& nonce = req.response_nonce();
    if (!nonce.empty()) {
      // A stale nonce: a newer response is on its way; the client's answer to that one will
      // carry its full current subscription, so this request can be dropped entirely.
      if (nonce != t.status.sent_nonce) return;
      recordAckLocked(t.status, nonce, req.has_error_detail() ? &req.error_detail() : nullptr,
                      events);
    }
    if (t.seen && !t.wildcard && sameNames(req.resource_names(), namesOf(t))) {
      // Unchanged subscription (not "*", which names never holds): nothing to recompute.
      if (!namesOf(t).empty()) t.legacy_wildcard = false;
      dirty_.insert(type_url);
      return;
    }
    Impl::Names names(req.resource_names().begin(), req.resource_names().end());
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    bool star = false;
    if (auto it = std::lower_bound(names.begin(), names.end(), "*");
        it != names.end() && *it == "*") {
      names.erase(it);
      star = true;
    }
    const bool was_wildcard = t.wildcard;
    if (!t.seen) {
      t.seen = true;
      t.legacy_wildcard = names.empty() && !star && isWildcardType(type_url);
    } else if (!names.empty()) {
      t.legacy_wildcard = false;
    }
    t.wildcard = star || (t.legacy_wildcard && names.empty());
    if (!t.wildcard && t.sent && !t.sent->empty()) {
      std::unordered_set<uint64_t> subscribed;
      for (const auto& n : names) subscribed.insert(xxHash64(n));
      auto kept = std::make_shared<Impl::Sent>(*t.sent);
      std::erase_if(*kept, [&](const auto& e) { return !subscribed.count(e.first); });
      t.sent = std::move(kept);
    }
    t.resubscribed = t.resubscribed || names != namesOf(t) || t.wildcard != was_wildcard;
    t.names = impl_->internNames(std::move(names));
    dirty_.insert(type_url);
  }

  bool nextResponseLocked(const Snapshot* snapshot, grpc::ByteBuffer& resp) override {
    if (snapshot == nullptr) {
      dirty_.clear();
      return false;
    }
    for (const auto& type_url : inPushOrder(dirty_)) {
      dirty_.erase(type_url);
      if (build(type_url, *snapshot, resp)) return true;
    }
    return false;
  }

  bool build(const std::string& type_url, const Snapshot& snapshot, grpc::ByteBuffer& resp) {
    Type& t = types_[type_url];
    const ResourceSet* set = snapshot.find(type_url);
    if (!t.seen || set == nullptr) return false;
    const std::string version = set->effectiveVersion();
    // The common case of a push to many proxies: this type did not change for this one.
    const uint64_t fingerprint = set->fingerprint();
    if (t.sent_any && t.sent_version == version && t.evaluated_fingerprint == fingerprint &&
        !t.resubscribed) {
      return false;
    }
    t.resubscribed = false;
    t.evaluated_fingerprint = fingerprint;
    auto compute = [&] {
      Impl::Selection sel;
      if (t.wildcard) {
        sel.chosen.reserve(set->size());
        set->forEach([&sel](const Resource& r) { sel.chosen.push_back(&r); });
      } else {
        for (const auto& name : namesOf(t)) {
          if (const auto* r = set->find(name)) sel.chosen.push_back(r);
        }
      }
      Impl::Sent versions;
      versions.reserve(sel.chosen.size());
      for (const auto* r : sel.chosen) versions.emplace_back(r->name_hash, r->entry_hash);
      std::sort(versions.begin(), versions.end());
      sel.versions = std::make_shared<const Impl::Sent>(std::move(versions));
      return sel;
    };
    std::shared_ptr<const Impl::Selection> shared;
    Impl::Selection own;
    if (set->resources.empty() && set->base && (t.wildcard || t.names)) {
      shared = impl_->selection(t.wildcard ? nullptr : t.names, set->base, compute);
    } else {
      own = compute();
    }
    const Impl::Selection& sel = shared ? *shared : own;
    const auto& versions = sel.versions;
    // Only LDS/CDS (and explicit wildcards) have "the full set" semantics where an empty
    // response means something; for RDS/EDS/SDS an empty response says nothing.
    if (sel.chosen.empty() && !t.wildcard && !isWildcardType(type_url)) return false;
    if (t.sent_any && t.sent_version == version && t.sent &&
        (t.sent == versions || *t.sent == *versions)) {
      return false;
    }

    // EDS by name: only what the client does not have yet. The protocol allows it for types
    // that are not "all resources required" (Envoy and gRPC keep the ClusterLoadAssignments a
    // response leaves out; istiod sends EDS this way), and an endpoint change then costs each
    // proxy one ClusterLoadAssignment instead of all of them (~1.2 MB with the whole mesh).
    // A new version with nothing new for this proxy still goes out, empty, so that it is ACKed.
    std::vector<const Resource*> chosen;
    if (t.sent_any && !t.wildcard && type_url == kEndpointType && t.sent) {
      const Impl::Sent& sent = *t.sent;
      for (const auto* r : sel.chosen) {
        auto it = std::lower_bound(sent.begin(), sent.end(),
                                   std::pair<uint64_t, uint64_t>{r->name_hash, 0});
        if (it == sent.end() || it->first != r->name_hash || it->second != r->entry_hash) {
          chosen.push_back(r);
        }
      }
    } else {
      chosen = sel.chosen;
    }

    std::string nonce = nextNonce();
    resp = encodeResponse(version, type_url, nonce, chosen);
    t.sent_any = true;
    t.sent_version = version;
    t.sent = versions;
    recordSendLocked(t.status, version, nonce, chosen.size());
    return true;
  }

  // Resources at least this large are referenced, smaller ones copied (see the class comment).
  static constexpr size_t kReferenceAtLeast = 128;

  // A DiscoveryResponse's wire form: the scalar fields first (field order does not matter to a
  // parser), then the resources.
  static grpc::ByteBuffer encodeResponse(const std::string& version, const std::string& type_url,
                                         const std::string& nonce,
                                         const std::vector<const Resource*>& chosen) {
    std::string head;
    auto field = [&head](int number, const std::string& value) {
      if (value.empty()) return;
      head.push_back(static_cast<char>((number << 3) | 2));
      for (uint64_t v = value.size(); true; v >>= 7) {
        if (v < 0x80) {
          head.push_back(static_cast<char>(v));
          break;
        }
        head.push_back(static_cast<char>((v & 0x7f) | 0x80));
      }
      head.append(value);
    };
    field(1, version);   // version_info
    field(4, type_url);  // type_url
    field(5, nonce);     // nonce
    std::vector<grpc::Slice> slices;
    std::string copied = std::move(head);
    auto flush = [&] {
      if (copied.empty()) return;
      slices.emplace_back(copied);
      copied.clear();
    };
    for (const auto* r : chosen) {
      std::shared_ptr<const std::string> wire = r->wire;
      if (!wire) wire = encodeResponseEntry(*r->any);  // built outside Snapshot's mutators
      if (wire->size() < kReferenceAtLeast) {
        copied.append(*wire);
        continue;
      }
      flush();
      auto* keep = new std::shared_ptr<const std::string>(std::move(wire));
      slices.emplace_back(
          const_cast<char*>((*keep)->data()), (*keep)->size(),
          [](void* p) { delete static_cast<std::shared_ptr<const std::string>*>(p); }, keep);
    }
    flush();
    return grpc::ByteBuffer(slices.data(), slices.size());
  }

  void markAllDirtyLocked() override {
    for (const auto& [type_url, t] : types_) {
      if (t.seen) dirty_.insert(type_url);
    }
  }

  void fillTypesLocked(std::map<std::string, TypeStatus>& out, bool with_names) override {
    for (const auto& [type_url, t] : types_) {
      TypeStatus s = t.status;
      s.subscribed = namesOf(t).size();
      if (with_names) s.subscribed_names.assign(namesOf(t).begin(), namesOf(t).end());
      s.wildcard = t.wildcard;
      out.emplace(type_url, std::move(s));
    }
  }

  std::map<std::string, Type> types_;
  std::set<std::string> dirty_;
};

// ---------------------------------------------------------------------------------------------
// Incremental. Per type: the subscription and `known`, what the client has (name → resource
// version), seeded from initial_resource_versions and updated on every send. A response carries
// the resources whose version differs from `known` and, in removed_resources, known names gone
// from the snapshot plus explicitly subscribed names that do not exist (told once).
class DeltaStream final
    : public AdsStream<discovery::DeltaDiscoveryRequest, discovery::DeltaDiscoveryRequest,
                       discovery::DeltaDiscoveryResponse> {
 public:
  using AdsStream::AdsStream;

 private:
  struct Type {
    bool seen = false;
    bool wildcard = false;
    bool sent_any = false;
    std::set<std::string> names;
    std::map<std::string, std::string> known;
    std::set<std::string> absent_told;
    // The type's version at the last evaluation, and whether the subscription changed since:
    // when neither moved there is nothing to compare.
    std::string evaluated_version;
    uint64_t evaluated_fingerprint = 0;
    bool resubscribed = true;
    TypeStatus status;
  };

  void handleRequestLocked(const discovery::DeltaDiscoveryRequest& req, Events& events) override {
    const std::string& type_url = req.type_url();
    if (type_url.empty()) return;
    Type& t = types_[type_url];
    t.status.type_url = type_url;
    const std::string& nonce = req.response_nonce();
    // Unlike SotW, subscription changes in a request with a stale nonce are still applied:
    // they are incremental and would otherwise be lost. Only the ACK/NACK meaning is dropped.
    if (!nonce.empty() && nonce == t.status.sent_nonce) {
      recordAckLocked(t.status, nonce, req.has_error_detail() ? &req.error_detail() : nullptr,
                      events);
    }
    if (!t.seen || req.resource_names_subscribe_size() > 0 ||
        req.resource_names_unsubscribe_size() > 0) {
      t.resubscribed = true;
    }
    if (!t.seen) {
      t.seen = true;
      for (const auto& [name, version] : req.initial_resource_versions()) t.known[name] = version;
      t.wildcard = isWildcardType(type_url) && req.resource_names_subscribe().empty();
    }
    for (const auto& name : req.resource_names_subscribe()) {
      if (name == "*") {
        t.wildcard = true;
      } else {
        t.names.insert(name);
      }
    }
    bool wildcard_dropped = false;
    for (const auto& name : req.resource_names_unsubscribe()) {
      if (name == "*") {
        wildcard_dropped = t.wildcard;
        t.wildcard = false;
        continue;
      }
      t.names.erase(name);
      t.absent_told.erase(name);
      if (!t.wildcard) t.known.erase(name);
    }
    if (wildcard_dropped) {
      for (auto it = t.known.begin(); it != t.known.end();) {
        it = t.names.count(it->first) ? std::next(it) : t.known.erase(it);
      }
    }
    dirty_.insert(type_url);
  }

  bool nextResponseLocked(const Snapshot* snapshot,
                          discovery::DeltaDiscoveryResponse& resp) override {
    if (snapshot == nullptr) {
      dirty_.clear();
      return false;
    }
    for (const auto& type_url : inPushOrder(dirty_)) {
      dirty_.erase(type_url);
      if (build(type_url, *snapshot, resp)) return true;
    }
    return false;
  }

  bool build(const std::string& type_url, const Snapshot& snapshot,
             discovery::DeltaDiscoveryResponse& resp) {
    Type& t = types_[type_url];
    const ResourceSet* set = snapshot.find(type_url);
    if (!t.seen || set == nullptr) return false;
    std::string version = set->effectiveVersion();
    const uint64_t fingerprint = set->fingerprint();
    if (!t.resubscribed && version == t.evaluated_version &&
        fingerprint == t.evaluated_fingerprint) {
      return false;
    }
    t.resubscribed = false;
    t.evaluated_version = version;
    t.evaluated_fingerprint = fingerprint;
    std::vector<const Resource*> updates;
    auto consider = [&](const Resource& r) {
      auto it = t.known.find(r.name);
      if (it == t.known.end() || it->second != r.version) updates.push_back(&r);
    };
    if (t.wildcard) {
      set->forEach(consider);
    } else {
      for (const auto& name : t.names) {
        if (const auto* r = set->find(name)) consider(*r);
      }
    }
    std::vector<std::string> removed;
    for (const auto& [name, version] : t.known) {
      if (!set->contains(name)) removed.push_back(name);
    }
    std::vector<std::string> absent;
    for (const auto& name : t.names) {
      if (!set->contains(name) && !t.known.count(name) && !t.absent_told.count(name)) {
        absent.push_back(name);
      }
    }
    // The first answer to a wildcard subscription is sent even when empty: it tells the client
    // that there is nothing (Envoy's initialization waits for it).
    if (updates.empty() && removed.empty() && absent.empty() && (t.sent_any || !t.wildcard)) {
      return false;
    }

    std::string nonce = nextNonce();
    resp.set_system_version_info(version);
    resp.set_type_url(type_url);
    resp.set_nonce(nonce);
    for (const auto* r : updates) {
      auto* out = resp.add_resources();
      out->set_name(r->name);
      out->set_version(r->version);
      *out->mutable_resource() = *r->any;
      t.known[r->name] = r->version;
      t.absent_told.erase(r->name);
    }
    for (const auto& name : removed) {
      resp.add_removed_resources(name);
      t.known.erase(name);
      if (t.names.count(name)) t.absent_told.insert(name);
    }
    for (const auto& name : absent) {
      resp.add_removed_resources(name);
      t.absent_told.insert(name);
    }
    t.sent_any = true;
    recordSendLocked(t.status, version, nonce, updates.size());
    return true;
  }

  void markAllDirtyLocked() override {
    for (const auto& [type_url, t] : types_) {
      if (t.seen) dirty_.insert(type_url);
    }
  }

  void fillTypesLocked(std::map<std::string, TypeStatus>& out, bool with_names) override {
    for (const auto& [type_url, t] : types_) {
      TypeStatus s = t.status;
      s.subscribed = t.names.size();
      if (with_names) s.subscribed_names.assign(t.names.begin(), t.names.end());
      s.wildcard = t.wildcard;
      out.emplace(type_url, std::move(s));
    }
  }

  std::map<std::string, Type> types_;
  std::set<std::string> dirty_;
};

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
AdsService::Impl::StreamAggregatedResources(grpc::CallbackServerContext* ctx) {
  auto stream = std::make_shared<SotwStream>(this, ctx, false);
  auto* raw = stream.get();
  raw->begin(std::move(stream));
  return raw;
}

grpc::ServerBidiReactor<discovery::DeltaDiscoveryRequest, discovery::DeltaDiscoveryResponse>*
AdsService::Impl::DeltaAggregatedResources(grpc::CallbackServerContext* ctx) {
  auto stream = std::make_shared<DeltaStream>(this, ctx, true);
  auto* raw = stream.get();
  raw->begin(std::move(stream));
  return raw;
}

AdsService::AdsService(SnapshotCache& cache, Callbacks callbacks)
    : impl_(std::make_unique<Impl>(cache, std::move(callbacks))) {}

AdsService::~AdsService() { shutdown(); }

grpc::Service* AdsService::grpcService() { return impl_.get(); }

std::vector<ProxyStatus> AdsService::status(bool with_names) const {
  std::vector<ProxyStatus> out;
  for (const auto& s : impl_->liveStreams()) out.push_back(s->statusCopy(with_names));
  std::sort(out.begin(), out.end(), [](const ProxyStatus& a, const ProxyStatus& b) {
    return std::tie(a.proxy.id, a.stream_id) < std::tie(b.proxy.id, b.stream_id);
  });
  return out;
}

Metrics AdsService::metrics() const {
  Metrics m;
  std::set<std::string> ids;
  for (const auto& s : impl_->liveStreams()) ids.insert(s->nodeId());
  m.connected_proxies = ids.size();
  m.connected_streams = impl_->connected.load();
  m.streams_total = impl_->streams_total.load();
  m.streams_rejected = impl_->streams_rejected.load();
  m.pushes_total = impl_->pushes_total.load();
  m.acks_total = impl_->acks_total.load();
  m.nacks_total = impl_->nacks_total.load();
  std::lock_guard lock(impl_->metrics_mu);
  m.pushes_by_type = impl_->pushes_by_type;
  m.nacks_by_type = impl_->nacks_by_type;
  return m;
}

void AdsService::shutdown() {
  impl_->shut_down.store(true);
  for (const auto& s : impl_->liveStreams()) s->finishByServer();
}

XdsServer::XdsServer(SnapshotCache& cache, Callbacks callbacks, XdsServerOptions options)
    : options_(std::move(options)), service_(cache, std::move(callbacks)) {}

XdsServer::~XdsServer() { stop(); }

Result<int> XdsServer::start() {
  std::lock_guard lock(stop_mu_);
  if (server_) return Error{"xDS server already started"};
  std::string host = options_.address;
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  std::string addr = host + ":" + std::to_string(options_.port);
  grpc::ServerBuilder builder;
  int selected = 0;
  builder.AddListeningPort(addr, grpc::InsecureServerCredentials(), &selected);
  builder.RegisterService(service_.grpcService());
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(options_.keepalive_time.count()));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(options_.keepalive_timeout.count()));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  server_ = builder.BuildAndStart();
  if (!server_ || selected == 0) {
    server_.reset();
    return Error{"cannot listen on " + addr + " for xDS"};
  }
  port_ = selected;
  MAST_LOG(INFO, "xds: ADS server listening on {}:{}", host, port_);
  return port_;
}

void XdsServer::stop() {
  std::lock_guard lock(stop_mu_);
  service_.shutdown();
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + options_.shutdown_grace);
  server_->Wait();
  server_.reset();
}

}  // namespace mast::control::xds
