// Fuzzes the HTTP/1.1 codec in both directions. The first input byte picks the direction and a
// split point so that the parser also sees requests cut across reads, the way sockets deliver them.
// Invariants: dispatch never consumes more than it was given, and an error is reported at most once.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/http1/codec.h"

namespace {

class Sink final : public mast::http1::Callbacks {
 public:
  void onHeaders(mast::http::HeaderMap&& headers, bool) override {
    // Touch every header so a dangling view would show up under ASan.
    for (const auto& h : headers) bytes_ += h.name.size() + h.value.size();
  }
  void onData(std::string_view data, bool) override { bytes_ += data.size(); }
  void onTrailers(mast::http::HeaderMap&& trailers) override { bytes_ += trailers.size(); }
  void onError(int, std::string_view) override {
    if (++errors_ > 1) std::abort();
  }
  size_t bytes_ = 0;
  int errors_ = 0;
};

template <class Codec>
void drive(Codec& codec, Sink& sink, std::string_view in, size_t split, bool server) {
  size_t step = split == 0 ? in.size() : split;
  size_t pos = 0;
  std::string pending;
  while (pos < in.size() && sink.errors_ == 0) {
    size_t n = std::min(step, in.size() - pos);
    pending.append(in.substr(pos, n));
    pos += n;
    size_t used = codec.dispatch(pending.data(), pending.size());
    if (used > pending.size()) std::abort();
    pending.erase(0, used);
    if constexpr (std::is_same_v<Codec, mast::http1::ServerCodec>) {
      // A paused codec waits for the response; answer and resume like the connection does.
      if (used == 0 && !pending.empty()) {
        std::string out;
        mast::http::HeaderMap resp{{":status", "200"}};
        codec.encodeHeaders(resp, true, out);
        if (codec.shouldClose()) return;
        codec.resumeAfterResponse();
      }
    }
  }
  if constexpr (std::is_same_v<Codec, mast::http1::ClientCodec>) codec.onConnectionClose();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool server = (data[0] & 1) == 0;
  const size_t split = data[0] >> 1;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  Sink sink;
  if (server) {
    mast::http1::ServerSettings settings;
    settings.max_request_headers_kb = 8;
    mast::http1::ServerCodec codec(sink, settings);
    drive(codec, sink, in, split, true);
  } else {
    mast::http1::ClientCodec codec(sink);
    std::string out;
    codec.encodeHeaders(mast::http::HeaderMap{{":method", "GET"}, {":path", "/"},
                                              {":authority", "x"}},
                        true, out);
    drive(codec, sink, in, split, false);
  }
  return 0;
}
