#pragma once
// gRPC's length-prefixed message framing (the body of an application/grpc HTTP/2 stream): every
// message is a 1-byte compressed flag, a 4-byte big-endian length, then the message bytes. A pure
// codec: bytes in, callbacks out; no sockets, no protobuf.
//
// This client never offers a grpc-accept-encoding, so a peer may not compress: a message with the
// compressed flag set is an error, as is one longer than the configured maximum (checked from its
// prefix, before any of its bytes are buffered). Not thread-safe; one deframer per stream.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace mast::proxy::xds {

inline constexpr size_t kGrpcPrefixBytes = 5;

// Appends `message` with its 5-byte prefix (uncompressed) to `out`.
void appendGrpcFrame(std::string& out, std::string_view message);

class GrpcDeframer {
 public:
  // Called once per complete message; the view is valid only during the call.
  using OnMessage = std::function<Status(std::string_view message)>;

  explicit GrpcDeframer(uint32_t max_message_bytes) : max_(max_message_bytes) {}

  // Consumes `data` (any split: a message may span calls, one call may hold several messages).
  // Stops at the first error: a malformed prefix, or an error returned by `on_message`; every
  // later call returns that error again.
  Status feed(std::string_view data, const OnMessage& on_message);
  // True while part of a message (or of its prefix) is buffered: at the end of the stream, the
  // peer cut a message short.
  bool midMessage() const { return have_ > 0; }
  // Bytes held for the message being assembled.
  size_t bufferedBytes() const { return body_.size(); }

 private:
  Status fail(std::string message);

  uint32_t max_;
  char prefix_[kGrpcPrefixBytes] = {};
  size_t have_ = 0;      // bytes of the current frame (prefix + body) seen so far
  uint32_t length_ = 0;  // body length, once the prefix is complete
  std::string body_;     // body bytes, when the message spans calls
  std::string error_;
};

}  // namespace mast::proxy::xds
