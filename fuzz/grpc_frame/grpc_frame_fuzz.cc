// Fuzzes GrpcDeframer: the first input byte picks chunk sizes, the rest is the stream body.
// Invariants: no crash; however the body is split, the same messages come out and the same error
// (or none) ends it; no message is longer than the limit; re-framing the messages gives back the
// consumed bytes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/xds/grpc_frame.h"

namespace {

constexpr uint32_t kMax = 4096;

struct Run {
  std::vector<std::string> messages;
  std::string error;
  bool mid = false;
};

Run deframe(std::string_view body, size_t chunk) {
  Run r;
  mast::proxy::xds::GrpcDeframer d(kMax);
  auto cb = [&](std::string_view m) -> mast::Status {
    if (m.size() > kMax) std::abort();
    r.messages.emplace_back(m);
    return {};
  };
  while (!body.empty()) {
    size_t n = std::min(chunk, body.size());
    mast::Status s = d.feed(body.substr(0, n), cb);
    body.remove_prefix(n);
    if (!s) {
      r.error = s.error();
      break;
    }
  }
  r.mid = d.midMessage();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t chunk = data[0] % 16 + 1;
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  Run whole = deframe(body, body.size() + 1);
  Run split = deframe(body, chunk);
  if (whole.messages != split.messages || whole.error != split.error) std::abort();
  if (whole.error.empty()) {
    std::string again;
    for (const auto& m : whole.messages) mast::proxy::xds::appendGrpcFrame(again, m);
    if (body.substr(0, again.size()) != again) std::abort();
    if (whole.mid != (again.size() < body.size())) std::abort();
  }
  return 0;
}
