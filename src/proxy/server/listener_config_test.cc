#include "proxy/server/listener_config.h"

#include <gtest/gtest.h>

namespace mast::proxy::server {
namespace {

FilterChainConfig chain(const std::string& name) {
  FilterChainConfig c;
  c.name = name;
  return c;
}

ConnectionProperties conn(const std::string& local, uint16_t port, const std::string& sni = "",
                          const std::string& transport = "raw_buffer") {
  ConnectionProperties p;
  p.local = *net::parseEndpoint(local, port);
  p.remote = *net::parseEndpoint("10.9.9.9", 40000);
  p.sni = sni;
  p.transport_protocol = transport;
  return p;
}

TEST(FilterChainMatchTest, MostSpecificWinsPerField) {
  ListenerConfig l;
  auto any = chain("any");
  auto port = chain("port9080");
  port.match.destination_port = 9080;
  auto cidr = chain("port9080-cidr");
  cidr.match.destination_port = 9080;
  cidr.match.prefix_ranges.push_back(*net::parseCidr("10.1.0.0", 16));
  auto sni = chain("sni");
  sni.match.server_names = {"*.example.com"};
  sni.match.transport_protocol = "tls";
  auto exact_sni = chain("exact-sni");
  exact_sni.match.server_names = {"api.example.com"};
  exact_sni.match.transport_protocol = "tls";
  l.filter_chains = {any, port, cidr, sni, exact_sni};
  EXPECT_EQ(selectFilterChain(l, conn("10.2.0.1", 80))->name, "any");
  EXPECT_EQ(selectFilterChain(l, conn("10.2.0.1", 9080))->name, "port9080");
  EXPECT_EQ(selectFilterChain(l, conn("10.1.3.4", 9080))->name, "port9080-cidr");
  EXPECT_EQ(selectFilterChain(l, conn("10.2.0.1", 443, "www.example.com", "tls"))->name, "sni");
  EXPECT_EQ(selectFilterChain(l, conn("10.2.0.1", 443, "api.example.com", "tls"))->name,
            "exact-sni");
}

TEST(FilterChainMatchTest, DefaultChainWhenNothingMatches) {
  ListenerConfig l;
  auto tls_only = chain("tls");
  tls_only.match.transport_protocol = "tls";
  l.filter_chains = {tls_only};
  EXPECT_EQ(selectFilterChain(l, conn("127.0.0.1", 80)), nullptr);
  l.default_filter_chain = chain("default");
  EXPECT_EQ(selectFilterChain(l, conn("127.0.0.1", 80))->name, "default");
}

}  // namespace
}  // namespace mast::proxy::server
