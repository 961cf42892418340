// Fuzzes the HTTP/2 server session: the input is what a client sends after the connection preface.
// Each request that arrives complete is answered, so nghttp2's send path and our data providers run
// too. Invariant: no crash, no leak, and after a fatal error the session accepts no more input.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/http2/codec.h"

namespace {

class Sink final : public mast::http2::ServerCallbacks {
 public:
  void onStreamHeaders(int32_t id, mast::http::HeaderMap&& headers, bool end_stream) override {
    for (const auto& h : headers) bytes_ += h.name.size() + h.value.size();
    if (end_stream) complete_.push_back(id);
  }
  void onStreamData(int32_t id, std::string_view data, bool end_stream) override {
    bytes_ += data.size();
    if (end_stream) complete_.push_back(id);
  }
  void onStreamTrailers(int32_t id, mast::http::HeaderMap&&) override { complete_.push_back(id); }
  void onStreamReset(int32_t, uint32_t) override {}
  void onStreamClose(int32_t) override {}
  void onConnectionError(std::string_view) override {}
  std::vector<int32_t> complete_;
  size_t bytes_ = 0;
};

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Sink sink;
  mast::http2::ServerSettings settings;
  settings.max_header_list_size = 16 * 1024;
  mast::http2::ServerSession session(sink, settings);
  std::string in(kPreface);
  in.append(reinterpret_cast<const char*>(data), size);
  std::string out;
  // Deliver in two halves so frames split across reads are exercised.
  size_t half = in.size() / 2;
  for (std::string_view part : {std::string_view(in).substr(0, half), std::string_view(in).substr(half)}) {
    if (!session.dispatch(part.data(), part.size())) break;
    for (int32_t id : sink.complete_) {
      session.submitResponseHeaders(id, mast::http::HeaderMap{{":status", "200"}}, false);
      session.submitData(id, "hello", false);
      session.submitTrailers(id, mast::http::HeaderMap{{"grpc-status", "0"}});
    }
    sink.complete_.clear();
    session.drainOutput(out);
    out.clear();
  }
  session.goAway(0);
  session.drainOutput(out);
  return 0;
}
