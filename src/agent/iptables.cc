#include "agent/iptables.h"

#include <asio/ip/address_v4.hpp>
#include <asio/ip/network_v4.hpp>
#include <charconv>
#include <sstream>

#include "agent/process.h"

namespace mast::agent {
namespace {

std::vector<std::string_view> splitComma(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    size_t c = s.find(',');
    std::string_view item = s.substr(0, c);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.push_back(item);
    if (c == std::string_view::npos) break;
    s = s.substr(c + 1);
  }
  return out;
}

std::string joinPorts(const std::vector<uint16_t>& ports, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to; ++i) {
    if (!out.empty()) out += ',';
    out += std::to_string(ports[i]);
  }
  return out;
}

// "-p PROTO --dport P" or "-p PROTO -m multiport --dports A,B,..." (multiport takes at most 15).
void addPortRules(std::vector<std::string>& out, const std::string& chain, const char* proto,
                  const std::vector<uint16_t>& ports, const std::string& target) {
  if (ports.size() == 1) {
    out.push_back("-A " + chain + " -p " + proto + " --dport " + std::to_string(ports[0]) + " -j " +
                  target);
    return;
  }
  for (size_t i = 0; i < ports.size(); i += 15) {
    out.push_back("-A " + chain + " -p " + proto + " -m multiport --dports " +
                  joinPorts(ports, i, std::min(ports.size(), i + 15)) + " -j " + target);
  }
}

bool isOurChain(std::string_view name) {
  for (const char* c : kCaptureChains) {
    if (name == c) return true;
  }
  return false;
}

// "-A CHAIN spec" lines of other chains whose target is one of ours, as "-D CHAIN spec".
std::vector<std::string> jumpDeletes(std::string_view save) {
  std::vector<std::string> out;
  bool in_nat = false;
  std::istringstream in{std::string(save)};
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("*", 0) == 0) in_nat = line == "*nat";
    if (!in_nat || line.rfind("-A ", 0) != 0) continue;
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string t; words >> t;) w.push_back(t);
    if (w.size() < 2 || isOurChain(w[1])) continue;
    for (size_t i = 2; i + 1 < w.size(); ++i) {
      if ((w[i] == "-j" || w[i] == "-g") && isOurChain(w[i + 1])) {
        out.push_back("-D" + line.substr(2));
        break;
      }
    }
  }
  return out;
}

}  // namespace

Result<std::vector<uint16_t>> parsePorts(std::string_view s) {
  std::vector<uint16_t> out;
  for (auto item : splitComma(s)) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc() || p != item.data() + item.size() || v == 0 || v > 65535) {
      return Error{"'" + std::string(item) + "' is not a port (1-65535)"};
    }
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(static_cast<uint16_t>(v));
  }
  return out;
}

Status parsePortSpec(std::string_view s, bool& all, std::vector<uint16_t>& ports) {
  all = s == "*";
  ports.clear();
  if (all) return {};
  auto p = parsePorts(s);
  if (!p) return Error{p.error()};
  ports = std::move(*p);
  return {};
}

Status parseCidrSpec(std::string_view s, bool& all, std::vector<std::string>& cidrs) {
  all = s == "*";
  cidrs.clear();
  if (all) return {};
  for (auto item : splitComma(s)) {
    std::string text(item);
    if (text.find('/') == std::string::npos) text += "/32";
    std::error_code ec;
    auto net = asio::ip::make_network_v4(text, ec);
    if (ec) {
      return Error{"'" + std::string(item) +
                   "' is not an IPv4 address or CIDR (IPv6 capture is "
                   "not supported)"};
    }
    // iptables-save prints the network address: 10.1.2.3/8 becomes 10.0.0.0/8.
    cidrs.push_back(net.canonical().to_string());
  }
  return {};
}

std::vector<std::string> captureRules(const CaptureConfig& c) {
  std::vector<std::string> r;
  std::string hbone = std::to_string(c.hbone_port);
  r.push_back("-A ISTIO_INBOUND -p tcp --dport " + hbone + " -j RETURN");
  r.push_back("-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports " +
              std::to_string(c.outbound_capture_port));
  r.push_back("-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports " +
              std::to_string(c.inbound_capture_port));
  // Inbound.
  if (c.inbound_all || !c.inbound_ports.empty()) {
    r.push_back("-A PREROUTING -p tcp -j ISTIO_INBOUND");
    if (c.inbound_all) {
      if (!c.exclude_inbound_ports.empty()) {
        addPortRules(r, "ISTIO_INBOUND", "tcp", c.exclude_inbound_ports, "RETURN");
      }
      r.push_back("-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT");
    } else {
      for (uint16_t p : c.inbound_ports) {
        r.push_back("-A ISTIO_INBOUND -p tcp --dport " + std::to_string(p) +
                    " -j ISTIO_IN_REDIRECT");
      }
    }
  }
  // Outbound.
  r.push_back("-A OUTPUT -j ISTIO_OUTPUT");
  if (!c.exclude_outbound_ports.empty()) {
    addPortRules(r, "ISTIO_OUTPUT", "tcp", c.exclude_outbound_ports, "RETURN");
    addPortRules(r, "ISTIO_OUTPUT", "udp", c.exclude_outbound_ports, "RETURN");
  }
  // Inbound passthrough: the proxy connects to the app from 127.0.0.6; never recapture that.
  r.push_back("-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN");
  for (auto [kind, id] : {std::pair{"--uid-owner", c.proxy_uid}, {"--gid-owner", c.proxy_gid}}) {
    std::string owner = std::string(kind) + " " + std::to_string(id);
    // The proxy calling the pod's own IP over loopback goes to the inbound listener (policy).
    r.push_back("-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport " + hbone + " -m owner " +
                owner + " -j ISTIO_IN_REDIRECT");
    r.push_back("-A ISTIO_OUTPUT -o lo -m owner ! " + owner + " -j RETURN");
    r.push_back("-A ISTIO_OUTPUT -m owner " + owner + " -j RETURN");
  }
  r.push_back("-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN");
  for (const auto& cidr : c.exclude_outbound_cidrs) {
    r.push_back("-A ISTIO_OUTPUT -d " + cidr + " -j RETURN");
  }
  if (c.outbound_all) {
    r.push_back("-A ISTIO_OUTPUT -j ISTIO_REDIRECT");
  } else if (!c.include_outbound_cidrs.empty()) {
    for (const auto& cidr : c.include_outbound_cidrs) {
      r.push_back("-A ISTIO_OUTPUT -d " + cidr + " -j ISTIO_REDIRECT");
    }
    r.push_back("-A ISTIO_OUTPUT -j RETURN");
  }
  return r;
}

std::string renderInstall(const CaptureConfig& c, std::string_view existing_nat) {
  std::string out = "*nat\n";
  // In --noflush mode a declared chain is created, or flushed when it exists.
  for (const char* chain : kCaptureChains) out += std::string(":") + chain + " - [0:0]\n";
  for (const auto& d : jumpDeletes(existing_nat)) out += d + "\n";
  for (const auto& rule : captureRules(c)) out += rule + "\n";
  out += "COMMIT\n";
  return out;
}

std::string renderCleanup(std::string_view existing_nat) {
  std::string out = "*nat\n";
  for (const auto& d : jumpDeletes(existing_nat)) out += d + "\n";
  // Declaring creates-or-flushes, so the deletes below succeed whether or not a chain existed.
  for (const char* chain : kCaptureChains) out += std::string(":") + chain + " - [0:0]\n";
  for (const char* chain : kCaptureChains) out += std::string("-X ") + chain + "\n";
  out += "COMMIT\n";
  return out;
}

namespace {

Result<std::string> saveNat() {
  if (!hasNetAdmin()) {
    return Error{"iptables: changing netfilter rules needs root (or CAP_NET_ADMIN)"};
  }
  for (const char* tool : {"iptables-save", "iptables-restore"}) {
    if (findExecutable(tool).empty()) {
      return Error{std::string("iptables: '") + tool +
                   "' not found in PATH (install the iptables package)"};
    }
  }
  auto r = runProcess({"iptables-save", "-t", "nat"});
  if (!r) return Error{"iptables-save: " + r.error()};
  if (r->exit_code != 0) return Error{"iptables-save -t nat failed: " + r->output};
  return std::move(r->output);
}

Status restore(const std::string& input) {
  auto r = runProcess({"iptables-restore", "--noflush"}, input);
  if (!r) return Error{"iptables-restore: " + r.error()};
  if (r->exit_code != 0) {
    return Error{"iptables-restore --noflush failed (nothing was changed): " + r->output +
                 "input was:\n" + input};
  }
  return {};
}

}  // namespace

Status installCapture(const CaptureConfig& c) {
  auto save = saveNat();
  if (!save) return Error{save.error()};
  return restore(renderInstall(c, *save));
}

Status cleanupCapture() {
  auto save = saveNat();
  if (!save) return Error{save.error()};
  return restore(renderCleanup(*save));
}

}  // namespace mast::agent
