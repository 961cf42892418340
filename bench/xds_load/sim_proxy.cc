#include "sim_proxy.h"

#include <algorithm>

namespace mast::bench {

namespace {
const std::string kTypeUrls[kTypes] = {
    "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    "type.googleapis.com/envoy.config.listener.v3.Listener",
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
};
}  // namespace

namespace {
bool readVarint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

// Calls f(field number, bytes) for each length-delimited field; skips the others.
template <class F>
bool forEachField(std::string_view in, F&& f) {
  while (!in.empty()) {
    uint64_t key = 0, n = 0;
    if (!readVarint(in, key)) return false;
    switch (key & 7) {
      case 0:
        if (!readVarint(in, n)) return false;
        break;
      case 1:
      case 5: {
        size_t skip = (key & 7) == 1 ? 8 : 4;
        if (in.size() < skip) return false;
        in.remove_prefix(skip);
        break;
      }
      case 2:
        if (!readVarint(in, n) || n > in.size()) return false;
        f(static_cast<int>(key >> 3), in.substr(0, n));
        in.remove_prefix(n);
        break;
      default:
        return false;
    }
  }
  return true;
}
}  // namespace

bool scanResponse(std::string_view bytes, WireResponse& out) {
  out = WireResponse{};
  bool ok = true;
  bool fields = forEachField(bytes, [&](int field, std::string_view v) {
    switch (field) {
      case 1:
        out.version = v;
        break;
      case 4:
        out.type_url = v;
        break;
      case 5:
        out.nonce = v;
        break;
      case 2: {
        std::string_view type_url, value;
        ok = ok && forEachField(v, [&](int f, std::string_view x) {
               if (f == 1) type_url = x;
               if (f == 2) value = x;
             });
        out.resources.emplace_back(type_url, value);
        break;
      }
      default:
        break;
    }
  });
  return ok && fields;
}

const char* typeName(int t) {
  static const char* names[kTypes] = {"CDS", "EDS", "LDS", "RDS"};
  return names[t];
}

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const std::string& SimProxy::typeUrl(int t) { return kTypeUrls[t]; }

SimProxy::SimProxy(envoy::config::core::v3::Node node, Verifier& verifier, Counters& counters)
    : node_(std::move(node)), verifier_(verifier), counters_(counters) {}

SimProxy::Request SimProxy::request(int t, bool with_node) const {
  Request r;
  if (with_node) *r.mutable_node() = node_;
  r.set_type_url(typeUrl(t));
  r.set_version_info(types_[t].version);
  r.set_response_nonce(types_[t].nonce);
  for (const auto& n : types_[t].names) r.add_resource_names(n);
  return r;
}

void SimProxy::start(AdsRawStub* stub) {
  std::vector<Request> first;
  {
    std::lock_guard lock(mu_);
    started_ns_ = nowNs();
    // Envoy's order: CDS (with the node), then LDS; both wildcards (no names).
    first.push_back(request(kCds, true));
    first.push_back(request(kLds, false));
    node_sent_ = true;
  }
  stub->PrepareBidiStreamingCall(
      &ctx_, "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
      grpc::StubOptions(), this);
  StartRead(&resp_);
  send(std::move(first));
  StartCall();
}

void SimProxy::send(std::vector<Request> reqs) {
  bool start = false;
  {
    std::lock_guard lock(mu_);
    for (auto& r : reqs) pending_.push_back(std::move(r));
    if (!writing_ && !pending_.empty()) {
      in_flight_ = std::move(pending_.front());
      pending_.pop_front();
      writing_ = true;
      start = true;
    }
  }
  if (start) StartWrite(&in_flight_);
}

void SimProxy::OnWriteDone(bool ok) {
  bool start = false;
  {
    std::lock_guard lock(mu_);
    writing_ = false;
    if (ok && !pending_.empty()) {
      in_flight_ = std::move(pending_.front());
      pending_.pop_front();
      writing_ = true;
      start = true;
    }
  }
  if (start) StartWrite(&in_flight_);
}

void SimProxy::OnReadDone(bool ok) {
  if (!ok) return;  // the stream is over; OnDone follows
  resp_bytes_.clear();
  std::vector<grpc::Slice> slices;
  if (resp_.Dump(&slices).ok()) {
    for (const auto& s : slices)
      resp_bytes_.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  resp_.Clear();
  WireResponse resp;
  if (!scanResponse(resp_bytes_, resp)) {
    counters_.invalid.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(counters_.error_mu);
    if (counters_.first_error.empty()) counters_.first_error = "a response does not parse";
  }
  int t = -1;
  for (int i = 0; i < kTypes; ++i) {
    if (resp.type_url == kTypeUrls[i]) t = i;
  }
  std::vector<Request> out;
  if (t >= 0) {
    std::lock_guard lock(mu_);
    handleLocked(resp, t, out);
  }
  StartRead(&resp_);
  send(std::move(out));
}

void SimProxy::handleLocked(const WireResponse& resp, int t, std::vector<Request>& out) {
  int64_t now = nowNs();
  uint64_t bytes = 0;
  std::vector<std::string> refs;
  for (const auto& [type_url, value] : resp.resources) {
    bytes += value.size();
    if (type_url != resp.type_url) {
      counters_.wrong_type.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    auto v = verifier_.verify(type_url, value);
    if (!v->ok) {
      counters_.invalid.fetch_add(1, std::memory_order_relaxed);
      std::lock_guard lock(counters_.error_mu);
      if (counters_.first_error.empty()) {
        counters_.first_error = std::string(typeName(t)) + " " + v->name + ": " + v->error;
      }
    }
    refs.insert(refs.end(), v->refs.begin(), v->refs.end());
  }
  counters_.responses[t].fetch_add(1, std::memory_order_relaxed);
  counters_.resources[t].fetch_add(resp.resources.size(), std::memory_order_relaxed);
  counters_.bytes[t].fetch_add(bytes, std::memory_order_relaxed);

  Type& ty = types_[t];
  ty.version = std::string(resp.version);
  ty.nonce = std::string(resp.nonce);
  ty.answered = true;
  ++ty.responses;
  if (ty.responses > ty.mark && ty.first_after_mark_ns == 0) ty.first_after_mark_ns = now;
  out.push_back(request(t, false));  // the ACK

  // Follow the references: EDS for EDS clusters, RDS for the listeners' route configs.
  int dep = t == kCds ? kEds : t == kLds ? kRds : -1;
  if (dep >= 0) {
    std::sort(refs.begin(), refs.end());
    refs.erase(std::unique(refs.begin(), refs.end()), refs.end());
    if (refs != types_[dep].names) {
      types_[dep].names = std::move(refs);
      types_[dep].answered = types_[dep].names.empty();
      out.push_back(request(dep, false));
    }
  }
  if (synced_ns_ == 0) {
    bool synced = types_[kCds].answered && types_[kLds].answered &&
                  (types_[kEds].answered || types_[kEds].names.empty()) &&
                  (types_[kRds].answered || types_[kRds].names.empty()) &&
                  types_[kCds].responses > 0 && types_[kLds].responses > 0;
    if (synced) synced_ns_ = now;
  }
}

void SimProxy::OnDone(const grpc::Status&) {
  counters_.streams_ended.fetch_add(1);
  done_ = true;
}

void SimProxy::mark() {
  std::lock_guard lock(mu_);
  for (auto& ty : types_) {
    ty.mark = ty.responses;
    ty.first_after_mark_ns = 0;
  }
}

SimProxy::TypeView SimProxy::view(int t) {
  std::lock_guard lock(mu_);
  return {types_[t].responses, types_[t].first_after_mark_ns, types_[t].version};
}

int64_t SimProxy::syncedNs() {
  std::lock_guard lock(mu_);
  return synced_ns_;
}

bool SimProxy::subscribesEds(const std::string& name) {
  std::lock_guard lock(mu_);
  const auto& n = types_[kEds].names;
  return std::binary_search(n.begin(), n.end(), name);
}

}  // namespace mast::bench
