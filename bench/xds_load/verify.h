#pragma once
// Checks that what mastd sends is real Envoy config: every resource parses into its Envoy
// message, and so does every google.protobuf.Any nested in it (filters, typed_per_filter_config,
// extension options...), resolved by type URL in the generated descriptor pool. The references a
// proxy follows are extracted on the way: the EDS name of each EDS cluster, the RDS names of each
// listener's HTTP connection managers.
//
// Results are cached by a hash of (type URL, bytes): 2,000 proxies receive the same cluster, and
// equal bytes parse equally, so each distinct resource is parsed once. Thread-safe.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <google/protobuf/any.pb.h>

namespace mast::bench {

struct Verified {
  bool ok = false;
  std::string error;              // why it does not parse
  std::string name;               // the resource's name (cluster_name for a CLA)
  std::vector<std::string> refs;  // CDS: EDS service name; LDS: RDS route config names
};

class Verifier {
 public:
  std::shared_ptr<const Verified> verify(const google::protobuf::Any& any);
  // The same for an Any still in wire form: hashed in place, built only when not seen yet.
  std::shared_ptr<const Verified> verify(std::string_view type_url, std::string_view value);
  uint64_t parsed() const { return parsed_; }

 private:
  static constexpr int kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_map<uint64_t, std::shared_ptr<const Verified>> done;
  };
  Shard shards_[kShards];
  std::atomic<uint64_t> parsed_{0};
};

}  // namespace mast::bench
