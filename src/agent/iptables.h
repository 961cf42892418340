#pragma once
// Traffic capture like Istio's istio-iptables (REDIRECT mode, IPv4, nat table): inbound TCP to
// the proxy's 15006, outbound TCP to 15001, the proxy's own traffic (uid/gid) and loopback
// exempt. Rule generation is pure (golden-tested); applying is one `iptables-restore --noflush`
// transaction so a failure leaves nothing half-applied, and re-applying replaces the chains and
// the jumps into them instead of adding duplicates.
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace mast::agent {

// The chains this tool owns in the nat table.
inline constexpr const char* kCaptureChains[] = {"ISTIO_INBOUND", "ISTIO_REDIRECT",
                                                 "ISTIO_IN_REDIRECT", "ISTIO_OUTPUT"};

struct CaptureConfig {
  uint32_t proxy_uid = 1337;
  uint32_t proxy_gid = 1337;
  uint16_t outbound_capture_port = 15001;  // -p
  uint16_t inbound_capture_port = 15006;   // -z
  uint16_t hbone_port = 15008;             // never captured inbound
  // Inbound: all ports ("*"), none (empty), or only these.
  bool inbound_all = true;
  std::vector<uint16_t> inbound_ports;
  std::vector<uint16_t> exclude_inbound_ports = {15090, 15021, 15020};
  // Outbound: all destinations ("*"), none (empty), or only these CIDRs.
  bool outbound_all = true;
  std::vector<std::string> include_outbound_cidrs;
  std::vector<std::string> exclude_outbound_cidrs;
  std::vector<uint16_t> exclude_outbound_ports;
};

// "*" -> all; "" -> none; "80,8080" -> those. Ports must be 1..65535.
Status parsePortSpec(std::string_view s, bool& all, std::vector<uint16_t>& ports);
Result<std::vector<uint16_t>> parsePorts(std::string_view s);
// "*" -> all; "" -> none; "10.0.0.0/8,1.2.3.4" -> canonical IPv4 CIDRs ("1.2.3.4/32").
Status parseCidrSpec(std::string_view s, bool& all, std::vector<std::string>& cidrs);

// The rules, in iptables-save syntax ("-A CHAIN ..."), in Istio's order.
std::vector<std::string> captureRules(const CaptureConfig& c);

// The `iptables-restore --noflush` input that installs the rules. `existing_nat` is the current
// `iptables-save -t nat` output: jumps into our chains found there are deleted first, so a second
// run replaces rather than duplicates (declaring a chain in --noflush mode flushes it).
std::string renderInstall(const CaptureConfig& c, std::string_view existing_nat);
// The input that removes our chains and every jump into them (a no-op when none exist).
std::string renderCleanup(std::string_view existing_nat);

// Runs the transaction (needs root or CAP_NET_ADMIN and iptables-restore/iptables-save).
Status installCapture(const CaptureConfig& c);
Status cleanupCapture();

}  // namespace mast::agent
