#pragma once
// TLS for both sides of the proxy: SSL contexts built once from plain config (the owner parses the
// Envoy protos), ALPN negotiation, peer SAN verification, and a ClientHello peeker for
// tls_inspector. Contexts are immutable after creation and shared by workers.
#include <asio/ssl.hpp>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace mast::net {

struct SanMatcher {
  enum class Type { Any, Dns, Uri, Email, IpAddress };
  enum class Kind { Exact, Prefix, Suffix, Contains, Regex };
  Type type = Type::Any;
  Kind kind = Kind::Exact;
  std::string value;
  bool matches(std::string_view san) const;
};

struct TlsContextConfig {
  std::string cert_chain_pem;  // empty: no certificate (client side)
  std::string private_key_pem;
  std::string trusted_ca_pem;               // empty: peer not verified
  bool require_client_certificate = false;  // server side
  std::vector<std::string> alpn;            // preference order
  std::string sni;                          // client side
  std::vector<SanMatcher> san_matchers;     // client side: peer must present one matching SAN
};

// Reads a DataSource-like pair: inline text wins, else the file's content.
Result<std::string> readDataSource(const std::string& filename, const std::string& inline_value);

class TlsContext {
 public:
  static Result<std::shared_ptr<const TlsContext>> createServer(const TlsContextConfig& cfg);
  static Result<std::shared_ptr<const TlsContext>> createClient(const TlsContextConfig& cfg);
  // asio needs a mutable context to create streams; the SSL_CTX is not modified after creation.
  asio::ssl::context& native() const { return ctx_; }
  const TlsContextConfig& config() const { return cfg_; }

 private:
  explicit TlsContext(asio::ssl::context::method m) : ctx_(m) {}
  mutable asio::ssl::context ctx_;
  TlsContextConfig cfg_;
  std::string alpn_wire_;
};

// Peer certificate checks after a client handshake; empty string = ok, else the failure reason.
std::string verifyPeerSans(SSL* ssl, const std::vector<SanMatcher>& matchers);

// The outcome of a client handshake (`ec` from it) including the SAN checks of `cfg`: empty when
// the upstream may be used, else Envoy's transport failure reason, e.g.
// "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end"
// for an untrusted certificate or a SAN mismatch.
std::string clientHandshakeFailure(SSL* ssl, const std::error_code& ec,
                                   const TlsContextConfig& cfg);

struct ClientHelloInfo {
  enum class State { NeedMoreData, Tls, NotTls };
  State state = State::NeedMoreData;
  std::string sni;
  std::vector<std::string> alpn;
};
// Pure: inspects the first bytes of a connection (peeked, not consumed).
ClientHelloInfo parseClientHello(std::string_view bytes);

// http_inspector: "h2c" for the HTTP/2 preface, "http/1.1"/"http/1.0" for an HTTP/1 request
// line, "" when not HTTP, nullopt-like "?" when more bytes are needed.
std::string_view inspectHttp(std::string_view bytes);

}  // namespace mast::net
