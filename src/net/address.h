#pragma once
// Socket addresses as the proxy uses them: parsing Envoy-style (address, port) pairs, printing
// "ip:port" the way Envoy's access logs and admin do, and reading SO_ORIGINAL_DST.
#include <asio/ip/tcp.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace mast::net {

using Endpoint = asio::ip::tcp::endpoint;

// `host` must be an IP literal ("0.0.0.0", "::", "127.0.0.1").
Result<Endpoint> parseEndpoint(std::string_view host, uint32_t port);
// "10.0.0.1:80" / "[::1]:80".
std::string toString(const Endpoint& ep);
std::string ipString(const Endpoint& ep);

// The pre-NAT destination of a connection redirected by iptables REDIRECT/TPROXY (v4 and v6).
std::optional<Endpoint> originalDestination(int fd);

// CIDR range match for filter_chain_match prefix_ranges and friends.
struct CidrRange {
  asio::ip::address address;
  uint32_t prefix_len = 0;
  bool contains(const asio::ip::address& a) const;
};
Result<CidrRange> parseCidr(std::string_view address, uint32_t prefix_len);

}  // namespace mast::net
