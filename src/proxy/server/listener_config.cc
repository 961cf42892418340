#include "proxy/server/listener_config.h"

#include <algorithm>

namespace mast::proxy::server {
namespace {

using Candidates = std::vector<const FilterChainConfig*>;

// Keeps the candidates with the best score; -1 means "does not match". A chain that does not
// constrain a field scores 0 and is the fallback for that field.
template <class Score>
void narrow(Candidates& c, Score score) {
  int best = -1;
  std::vector<int> scores;
  scores.reserve(c.size());
  for (auto* fc : c) {
    int s = score(*fc);
    scores.push_back(s);
    best = std::max(best, s);
  }
  Candidates out;
  if (best >= 0) {
    for (size_t i = 0; i < c.size(); ++i) {
      if (scores[i] == best) out.push_back(c[i]);
    }
  }
  c.swap(out);
}

int cidrScore(const std::vector<net::CidrRange>& ranges, const asio::ip::address& a) {
  if (ranges.empty()) return 0;
  int best = -1;
  for (const auto& r : ranges) {
    if (r.contains(a)) best = std::max(best, static_cast<int>(r.prefix_len) + 1);
  }
  return best;
}

int serverNameScore(const std::vector<std::string>& names, const std::string& sni) {
  if (names.empty()) return 0;
  if (sni.empty()) return -1;
  int best = -1;
  for (const auto& n : names) {
    if (n == sni) return 100000;
    if (n.size() > 1 && n[0] == '*' && n[1] == '.') {
      std::string_view suffix(n.data() + 1, n.size() - 1);  // ".example.com"
      if (sni.size() > suffix.size() &&
          std::string_view(sni).substr(sni.size() - suffix.size()) == suffix) {
        best = std::max(best, static_cast<int>(suffix.size()));
      }
    }
  }
  return best;
}

}  // namespace

const FilterChainConfig* selectFilterChain(const ListenerConfig& l, const ConnectionProperties& c) {
  Candidates cands;
  for (const auto& fc : l.filter_chains) cands.push_back(&fc);
  narrow(cands, [&](const FilterChainConfig& fc) {
    if (!fc.match.destination_port) return 0;
    return *fc.match.destination_port == c.local.port() ? 1 : -1;
  });
  narrow(cands, [&](const FilterChainConfig& fc) {
    return cidrScore(fc.match.prefix_ranges, c.local.address());
  });
  narrow(cands, [&](const FilterChainConfig& fc) {
    return serverNameScore(fc.match.server_names, c.sni);
  });
  narrow(cands, [&](const FilterChainConfig& fc) {
    if (fc.match.transport_protocol.empty()) return 0;
    return fc.match.transport_protocol == c.transport_protocol ? 1 : -1;
  });
  narrow(cands, [&](const FilterChainConfig& fc) {
    if (fc.match.application_protocols.empty()) return 0;
    for (const auto& p : fc.match.application_protocols) {
      if (std::find(c.application_protocols.begin(), c.application_protocols.end(), p) !=
          c.application_protocols.end()) {
        return 1;
      }
    }
    return -1;
  });
  narrow(cands, [&](const FilterChainConfig& fc) {
    return cidrScore(fc.match.source_prefix_ranges, c.remote.address());
  });
  narrow(cands, [&](const FilterChainConfig& fc) {
    if (fc.match.source_ports.empty()) return 0;
    for (uint32_t p : fc.match.source_ports) {
      if (p == c.remote.port()) return 1;
    }
    return -1;
  });
  if (!cands.empty()) return cands.front();
  return l.default_filter_chain ? &*l.default_filter_chain : nullptr;
}

}  // namespace mast::proxy::server
