#include "net/address.h"

#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace mast::net {

Result<Endpoint> parseEndpoint(std::string_view host, uint32_t port) {
  if (port > 65535) return Error{"port " + std::to_string(port) + " out of range"};
  std::error_code ec;
  auto addr = asio::ip::make_address(std::string(host), ec);
  if (ec) return Error{"'" + std::string(host) + "' is not a valid IP address"};
  return Endpoint(addr, static_cast<uint16_t>(port));
}

std::string ipString(const Endpoint& ep) {
  auto a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string();
  }
  return a.to_string();
}

std::string toString(const Endpoint& ep) {
  std::string ip = ipString(ep);
  if (ip.find(':') != std::string::npos) return "[" + ip + "]:" + std::to_string(ep.port());
  return ip + ":" + std::to_string(ep.port());
}

std::optional<Endpoint> originalDestination(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  sockaddr_storage local{};
  socklen_t local_len = sizeof(local);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) return std::nullopt;
  int rc = -1;
  if (local.ss_family == AF_INET) {
    rc = ::getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &ss, &len);
  } else if (local.ss_family == AF_INET6) {
    rc = ::getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &ss, &len);
  }
  if (rc != 0) return std::nullopt;
  Endpoint ep;
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    asio::ip::address_v4::bytes_type b;
    std::memcpy(b.data(), &sin->sin_addr, 4);
    ep = Endpoint(asio::ip::address_v4(b), ntohs(sin->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    asio::ip::address_v6::bytes_type b;
    std::memcpy(b.data(), &sin6->sin6_addr, 16);
    ep = Endpoint(asio::ip::address_v6(b), ntohs(sin6->sin6_port));
  } else {
    return std::nullopt;
  }
  return ep;
}

static bool prefixEqual(const unsigned char* a, const unsigned char* b, uint32_t bits) {
  uint32_t bytes = bits / 8;
  if (std::memcmp(a, b, bytes) != 0) return false;
  uint32_t rem = bits % 8;
  if (rem == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xff << (8 - rem));
  return (a[bytes] & mask) == (b[bytes] & mask);
}

bool CidrRange::contains(const asio::ip::address& a) const {
  asio::ip::address x = a;
  if (x.is_v6() && x.to_v6().is_v4_mapped() && address.is_v4()) {
    x = asio::ip::make_address_v4(asio::ip::v4_mapped, x.to_v6());
  }
  if (x.is_v4() != address.is_v4()) return false;
  if (x.is_v4()) {
    auto p = address.to_v4().to_bytes();
    auto q = x.to_v4().to_bytes();
    return prefixEqual(p.data(), q.data(), prefix_len);
  }
  auto p = address.to_v6().to_bytes();
  auto q = x.to_v6().to_bytes();
  return prefixEqual(p.data(), q.data(), prefix_len);
}

Result<CidrRange> parseCidr(std::string_view address, uint32_t prefix_len) {
  std::error_code ec;
  auto addr = asio::ip::make_address(std::string(address), ec);
  if (ec) return Error{"'" + std::string(address) + "' is not a valid IP address"};
  uint32_t max = addr.is_v4() ? 32 : 128;
  if (prefix_len > max) return Error{"prefix_len " + std::to_string(prefix_len) + " too large"};
  return CidrRange{addr, prefix_len};
}

}  // namespace mast::net
