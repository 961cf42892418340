#pragma once
// Envoy's write-buffer watermarks for one connection: above `limit` bytes buffered the buffer is
// high, and it is low again only below half of it, so a buffer near the limit does not flap.
// A limit of 0 means no limit. Owned by the connection; no thread of its own.
#include <cstddef>
#include <optional>

namespace mast::net {

class Watermark {
 public:
  // Returns true when the buffer just went high, false when it just went low, nothing otherwise.
  std::optional<bool> update(size_t buffered, size_t limit) {
    if (limit == 0) return std::nullopt;
    if (!high_ && buffered > limit) {
      high_ = true;
      return true;
    }
    if (high_ && buffered < limit / 2) {
      high_ = false;
      return false;
    }
    return std::nullopt;
  }
  bool high() const { return high_; }

 private:
  bool high_ = false;
};

}  // namespace mast::net
