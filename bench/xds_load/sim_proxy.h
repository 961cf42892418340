#pragma once
// One simulated sidecar: an ADS (state of the world) stream on gRPC's callback API, as Envoy
// drives it. Responses are read raw (grpc::ByteBuffer) and scanned in place: with the whole
// mesh visible each proxy receives ~2 MB, and parsing every response into Any messages made the
// client use more CPU than mastd. It subscribes CDS and LDS as wildcards, then EDS for the EDS
// clusters it received and RDS for the route configurations its listeners name; it ACKs every
// response by nonce (after checking that every resource parses, see verify.h) and records when each
// type was answered, so the driver can measure convergence.
//
// Thread contract: gRPC's callback threads run the reactor; the driver thread reads state through
// the const accessors and mark(); all state is guarded by mu_.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "verify.h"

namespace mast::bench {

enum TypeIndex { kCds = 0, kEds = 1, kLds = 2, kRds = 3, kTypes = 4 };
const char* typeName(int t);

int64_t nowNs();  // steady clock, ns

// Process-wide counters, read by the driver.
struct Counters {
  std::array<std::atomic<uint64_t>, kTypes> responses{};
  std::array<std::atomic<uint64_t>, kTypes> resources{};
  std::array<std::atomic<uint64_t>, kTypes> bytes{};
  std::atomic<uint64_t> invalid{0};        // resources that do not parse
  std::atomic<uint64_t> wrong_type{0};     // resource type URL != response type URL
  std::atomic<uint64_t> streams_ended{0};  // streams closed before the driver asked
  std::mutex error_mu;
  std::string first_error;
};

// A DiscoveryResponse still in wire form: views into the received bytes.
struct WireResponse {
  std::string_view version, type_url, nonce;
  std::vector<std::pair<std::string_view, std::string_view>> resources;  // Any: type URL, value
};
// False when `bytes` is not a well-formed DiscoveryResponse.
bool scanResponse(std::string_view bytes, WireResponse& out);

using AdsRawStub =
    grpc::TemplatedGenericStub<envoy::service::discovery::v3::DiscoveryRequest, grpc::ByteBuffer>;

class SimProxy : public grpc::ClientBidiReactor<envoy::service::discovery::v3::DiscoveryRequest,
                                                grpc::ByteBuffer> {
 public:
  using Request = envoy::service::discovery::v3::DiscoveryRequest;

  SimProxy(envoy::config::core::v3::Node node, Verifier& verifier, Counters& counters);

  void start(AdsRawStub* stub);
  void cancel() { ctx_.TryCancel(); }
  bool done() const { return done_.load(); }

  // Snapshot of per-type progress for the driver.
  struct TypeView {
    uint64_t responses = 0;
    int64_t first_after_mark_ns = 0;  // first response after mark(), 0 = none yet
    std::string version;
  };
  // Starts a measurement window: remembers the response counts, clears first-after-mark.
  void mark();
  TypeView view(int type);
  int64_t startedNs() const { return started_ns_; }
  int64_t syncedNs();  // first time every type was answered after its last subscription, or 0
  bool subscribesEds(const std::string& name);
  const std::string& id() const { return node_.id(); }

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& s) override;

 private:
  struct Type {
    std::string version, nonce;
    std::vector<std::string> names;  // EDS/RDS subscription (sorted)
    bool answered = false;           // a response since the subscription last changed
    uint64_t responses = 0;
    uint64_t mark = 0;
    int64_t first_after_mark_ns = 0;
  };
  static const std::string& typeUrl(int t);
  void handleLocked(const WireResponse& resp, int t, std::vector<Request>& out);
  void send(std::vector<Request> reqs);
  Request request(int t, bool with_node) const;

  envoy::config::core::v3::Node node_;
  Verifier& verifier_;
  Counters& counters_;
  grpc::ClientContext ctx_;
  grpc::ByteBuffer resp_;
  std::string resp_bytes_;  // resp_ made contiguous, reused

  std::mutex mu_;
  std::array<Type, kTypes> types_;
  int64_t started_ns_ = 0;
  int64_t synced_ns_ = 0;
  bool node_sent_ = false;
  std::deque<Request> pending_;
  Request in_flight_;
  bool writing_ = false;
  std::atomic<bool> done_{false};
};

}  // namespace mast::bench
