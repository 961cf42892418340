#include <gtest/gtest.h>

#include "net/address.h"
#include "net/tls.h"

namespace mast::net {
namespace {

TEST(AddressTest, ParseAndPrint) {
  auto ep = parseEndpoint("127.0.0.1", 8080);
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(toString(*ep), "127.0.0.1:8080");
  auto v6 = parseEndpoint("::1", 80);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(toString(*v6), "[::1]:80");
  EXPECT_FALSE(parseEndpoint("example.com", 80).ok());
  EXPECT_FALSE(parseEndpoint("1.2.3.4", 70000).ok());
}

TEST(AddressTest, Cidr) {
  auto r = parseCidr("10.1.0.0", 16);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->contains(asio::ip::make_address("10.1.200.3")));
  EXPECT_FALSE(r->contains(asio::ip::make_address("10.2.0.1")));
  EXPECT_TRUE(r->contains(asio::ip::make_address("::ffff:10.1.2.3")));
  auto any = parseCidr("0.0.0.0", 0);
  EXPECT_TRUE(any->contains(asio::ip::make_address("192.0.2.1")));
  EXPECT_FALSE(parseCidr("10.0.0.0", 33).ok());
}

// A real ClientHello (TLS 1.2 record) with SNI "example.com" and ALPN h2,http/1.1, built by hand.
static std::string clientHello(const std::string& sni, std::vector<std::string> alpn) {
  std::string ext;
  auto u16 = [](std::string& s, size_t v) {
    s.push_back(char(v >> 8));
    s.push_back(char(v & 0xff));
  };
  std::string sn;
  u16(sn, sni.size() + 3);
  sn.push_back(0);
  u16(sn, sni.size());
  sn += sni;
  u16(ext, 0);
  u16(ext, sn.size());
  ext += sn;
  std::string al;
  std::string list;
  for (auto& a : alpn) {
    list.push_back(char(a.size()));
    list += a;
  }
  u16(al, list.size());
  al += list;
  u16(ext, 16);
  u16(ext, al.size());
  ext += al;
  std::string body;
  body += "\x03\x03";
  body += std::string(32, 'r');
  body.push_back(0);  // session id
  u16(body, 2);
  body += "\x13\x01";
  body += std::string("\x01\x00", 2);
  u16(body, ext.size());
  body += ext;
  std::string hs;
  hs.push_back(1);
  hs.push_back(0);
  u16(hs, body.size());
  hs += body;
  std::string rec = "\x16\x03\x01";
  u16(rec, hs.size());
  return rec + hs;
}

TEST(TlsInspectorTest, ParsesSniAndAlpn) {
  std::string hello = clientHello("Example.COM", {"h2", "http/1.1"});
  auto info = parseClientHello(hello);
  EXPECT_EQ(info.state, ClientHelloInfo::State::Tls);
  EXPECT_EQ(info.sni, "example.com");
  ASSERT_EQ(info.alpn.size(), 2u);
  EXPECT_EQ(info.alpn[0], "h2");
  // Truncated: needs more data.
  EXPECT_EQ(parseClientHello(hello.substr(0, 20)).state, ClientHelloInfo::State::NeedMoreData);
  EXPECT_EQ(parseClientHello("GET / HTTP/1.1\r\n").state, ClientHelloInfo::State::NotTls);
}

TEST(HttpInspectorTest, DetectsProtocols) {
  EXPECT_EQ(inspectHttp("GET / HTTP/1.1\r\nHost: x\r\n"), "http/1.1");
  EXPECT_EQ(inspectHttp("GET / HTTP/1.0\r\n"), "http/1.0");
  EXPECT_EQ(inspectHttp("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), "h2c");
  EXPECT_EQ(inspectHttp("GET /abc"), "?");
  EXPECT_EQ(inspectHttp(std::string("\x16\x03\x01", 3)), "");
}

TEST(SanMatcherTest, Kinds) {
  SanMatcher m{SanMatcher::Type::Uri, SanMatcher::Kind::Prefix, "spiffe://cluster.local/"};
  EXPECT_TRUE(m.matches("spiffe://cluster.local/ns/default/sa/x"));
  EXPECT_FALSE(m.matches("spiffe://other/ns"));
  SanMatcher r{SanMatcher::Type::Dns, SanMatcher::Kind::Regex, ".*\\.example\\.com"};
  EXPECT_TRUE(r.matches("a.example.com"));
}

}  // namespace
}  // namespace mast::net
