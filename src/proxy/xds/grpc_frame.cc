#include "proxy/xds/grpc_frame.h"

#include <algorithm>
#include <cstring>

namespace mast::proxy::xds {

namespace {

// A message buffer larger than this is freed once its message is delivered, so that one big
// response (a CDS push can be megabytes) does not stay resident while the stream idles.
constexpr size_t kKeepBufferBytes = 64 * 1024;

}  // namespace

void appendGrpcFrame(std::string& out, std::string_view message) {
  auto n = static_cast<uint32_t>(message.size());
  const char prefix[kGrpcPrefixBytes] = {0, static_cast<char>(n >> 24), static_cast<char>(n >> 16),
                                         static_cast<char>(n >> 8), static_cast<char>(n)};
  out.append(prefix, kGrpcPrefixBytes);
  out.append(message);
}

Status GrpcDeframer::fail(std::string message) {
  error_ = std::move(message);
  return Error{error_};
}

Status GrpcDeframer::feed(std::string_view data, const OnMessage& on_message) {
  if (!error_.empty()) return Error{error_};
  while (!data.empty()) {
    if (have_ < kGrpcPrefixBytes) {
      size_t n = std::min(kGrpcPrefixBytes - have_, data.size());
      std::memcpy(prefix_ + have_, data.data(), n);
      have_ += n;
      data.remove_prefix(n);
      if (have_ < kGrpcPrefixBytes) break;
      auto flag = static_cast<uint8_t>(prefix_[0]);
      if (flag == 1) {
        return fail("gRPC message with the compressed flag set, but no compression was offered");
      }
      if (flag != 0) return fail("gRPC message with an invalid flag byte " + std::to_string(flag));
      const auto* p = reinterpret_cast<const uint8_t*>(prefix_ + 1);
      length_ = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
      if (length_ > max_) {
        return fail("gRPC message of " + std::to_string(length_) + " bytes exceeds the limit of " +
                    std::to_string(max_) + " bytes");
      }
    }
    size_t need = length_ - body_.size();
    std::string_view message;
    if (body_.empty() && data.size() >= need) {
      // The whole message is in this buffer: hand it out without a copy.
      message = data.substr(0, need);
      data.remove_prefix(need);
    } else {
      if (body_.empty()) body_.reserve(length_);
      size_t n = std::min(need, data.size());
      body_.append(data.data(), n);
      data.remove_prefix(n);
      if (body_.size() < length_) break;
      message = body_;
    }
    have_ = 0;
    length_ = 0;
    Status s = on_message(message);
    if (body_.capacity() > kKeepBufferBytes) {
      std::string().swap(body_);
    } else {
      body_.clear();
    }
    if (!s) return fail(s.error());
  }
  return {};
}

}  // namespace mast::proxy::xds
