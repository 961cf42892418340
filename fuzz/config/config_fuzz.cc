// Fuzzes configuration loading the way mast-proxy does it at startup: bootstrap YAML/JSON → JSON
// with line numbers → Envoy's Bootstrap proto (strict walk) → semantic validation, then the typed
// builders that consume the protos (clusters, inline route tables).
// Invariants: no crash or hang on any input; an error is exactly one line that starts with the
// file name (what --mode validate prints).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "proxy/config/bootstrap.h"
#include "proxy/router/route_table.h"
#include "proxy/upstream/upstream.h"

namespace {

constexpr const char* kFile = "fuzz.yaml";

void checkError(const std::string& e) {
  if (e.find('\n') != std::string::npos) std::abort();
  if (e.compare(0, std::char_traits<char>::length(kFile), kFile) != 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;  // configs are small; keep iterations fast
  std::string text(reinterpret_cast<const char*>(data), size);
  auto b = mast::proxy::config::loadBootstrapFromString(text, kFile);
  if (!b) {
    checkError(b.error());
    return 0;
  }
  const auto& sr = (*b)->static_resources();
  for (const auto& c : sr.clusters()) {
    auto cfg = mast::upstream::ClusterConfig::create(c);
    (void)cfg;
  }
  namespace hcmv3 = envoy::extensions::filters::network::http_connection_manager::v3;
  for (const auto& l : sr.listeners()) {
    for (const auto& fc : l.filter_chains()) {
      for (const auto& f : fc.filters()) {
        hcmv3::HttpConnectionManager h;
        if (!f.typed_config().UnpackTo(&h) || !h.has_route_config()) continue;
        auto table = mast::router::RouteTable::create(h.route_config(), nullptr);
        if (!table) continue;
        // Route a few requests through what was built.
        mast::http::HeaderMap req;
        req.add(":method", "GET");
        req.add(":path", "/a/b?c=d");
        req.add(":authority", "example.com");
        for (uint64_t r = 0; r < 4; ++r) {
          if (const auto* e = (*table)->route(req, r * 7919)) {
            auto choice = e->selectCluster(req, r);
            (void)choice;
            mast::http::HeaderMap up = req;
            e->applyRewrites(up);
          }
        }
      }
    }
  }
  return 0;
}
