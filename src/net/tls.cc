#include "net/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <re2/re2.h>

#include <fstream>
#include <sstream>

namespace mast::net {

bool SanMatcher::matches(std::string_view san) const {
  switch (kind) {
    case Kind::Exact:
      return san == value;
    case Kind::Prefix:
      return san.substr(0, value.size()) == value;
    case Kind::Suffix:
      return san.size() >= value.size() && san.substr(san.size() - value.size()) == value;
    case Kind::Contains:
      return san.find(value) != std::string_view::npos;
    case Kind::Regex:
      return RE2::FullMatch(re2::StringPiece(san.data(), san.size()), RE2(value));
  }
  return false;
}

Result<std::string> readDataSource(const std::string& filename, const std::string& inline_value) {
  if (!inline_value.empty()) return inline_value;
  if (filename.empty()) return std::string();
  std::ifstream in(filename, std::ios::binary);
  if (!in) return Error{"cannot read '" + filename + "'"};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

static std::string opensslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

static std::string alpnWire(const std::vector<std::string>& protos) {
  std::string w;
  for (const auto& p : protos) {
    w.push_back(static_cast<char>(p.size()));
    w += p;
  }
  return w;
}

static Status loadCommon(asio::ssl::context& ctx, const TlsContextConfig& cfg) {
  SSL_CTX* native = ctx.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  if (!cfg.cert_chain_pem.empty()) {
    std::error_code ec;
    ctx.use_certificate_chain(asio::buffer(cfg.cert_chain_pem), ec);
    if (ec) return Error{"invalid certificate chain: " + ec.message()};
    ctx.use_private_key(asio::buffer(cfg.private_key_pem), asio::ssl::context::pem, ec);
    if (ec) return Error{"invalid private key: " + ec.message()};
    if (SSL_CTX_check_private_key(native) != 1) {
      return Error{"private key does not match certificate: " + opensslError()};
    }
  }
  if (!cfg.trusted_ca_pem.empty()) {
    std::error_code ec;
    ctx.add_certificate_authority(asio::buffer(cfg.trusted_ca_pem), ec);
    if (ec) return Error{"invalid trusted CA: " + ec.message()};
  }
  return {};
}

static int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen,
                      const unsigned char* in, unsigned int inlen, void* arg) {
  const auto* server = static_cast<const std::string*>(arg);
  // Server preference order: first of ours that the client offers.
  for (size_t i = 0; i < server->size();) {
    unsigned char len = static_cast<unsigned char>((*server)[i]);
    std::string_view ours(server->data() + i + 1, len);
    for (unsigned int j = 0; j < inlen;) {
      unsigned char l = in[j];
      if (j + 1 + l > inlen) break;
      if (std::string_view(reinterpret_cast<const char*>(in + j + 1), l) == ours) {
        *out = in + j + 1;
        *outlen = l;
        return SSL_TLSEXT_ERR_OK;
      }
      j += 1 + l;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

Result<std::shared_ptr<const TlsContext>> TlsContext::createServer(const TlsContextConfig& cfg) {
  if (cfg.cert_chain_pem.empty()) return Error{"a server TLS context needs a certificate"};
  std::shared_ptr<TlsContext> t(new TlsContext(asio::ssl::context::tls_server));
  t->cfg_ = cfg;
  if (auto s = loadCommon(t->ctx_, cfg); !s) return Error{s.error()};
  if (cfg.require_client_certificate || !cfg.trusted_ca_pem.empty()) {
    int mode = SSL_VERIFY_PEER;
    if (cfg.require_client_certificate) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(t->ctx_.native_handle(), mode, nullptr);
  }
  t->alpn_wire_ = alpnWire(cfg.alpn);
  if (!t->alpn_wire_.empty()) {
    SSL_CTX_set_alpn_select_cb(t->ctx_.native_handle(), selectAlpn, &t->alpn_wire_);
  }
  SSL_CTX_set_session_id_context(t->ctx_.native_handle(),
                                 reinterpret_cast<const unsigned char*>("mast"), 4);
  return std::shared_ptr<const TlsContext>(std::move(t));
}

Result<std::shared_ptr<const TlsContext>> TlsContext::createClient(const TlsContextConfig& cfg) {
  std::shared_ptr<TlsContext> t(new TlsContext(asio::ssl::context::tls_client));
  t->cfg_ = cfg;
  if (auto s = loadCommon(t->ctx_, cfg); !s) return Error{s.error()};
  if (!cfg.trusted_ca_pem.empty()) {
    SSL_CTX_set_verify(t->ctx_.native_handle(), SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(t->ctx_.native_handle(), SSL_VERIFY_NONE, nullptr);
  }
  t->alpn_wire_ = alpnWire(cfg.alpn);
  if (!t->alpn_wire_.empty()) {
    SSL_CTX_set_alpn_protos(t->ctx_.native_handle(),
                            reinterpret_cast<const unsigned char*>(t->alpn_wire_.data()),
                            static_cast<unsigned>(t->alpn_wire_.size()));
  }
  return std::shared_ptr<const TlsContext>(std::move(t));
}

// Envoy's (BoringSSL's) wording, which access logs and local replies show.
static constexpr std::string_view kVerifyFailed =
    "TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end";

std::string verifyPeerSans(SSL* ssl, const std::vector<SanMatcher>& matchers) {
  if (matchers.empty()) return {};
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return "peer presented no certificate";
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  bool ok = false;
  if (names) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names) && !ok; ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
      SanMatcher::Type type;
      std::string value;
      if (n->type == GEN_DNS) {
        type = SanMatcher::Type::Dns;
      } else if (n->type == GEN_URI) {
        type = SanMatcher::Type::Uri;
      } else if (n->type == GEN_EMAIL) {
        type = SanMatcher::Type::Email;
      } else if (n->type == GEN_IPADD) {
        type = SanMatcher::Type::IpAddress;
      } else {
        continue;
      }
      const ASN1_STRING* s = n->type == GEN_IPADD ? n->d.iPAddress : n->d.ia5;
      const auto* bytes = ASN1_STRING_get0_data(s);
      int len = ASN1_STRING_length(s);
      if (type == SanMatcher::Type::IpAddress) {
        // 4 or 16 raw bytes; matched in text form ("10.0.0.1", "::1").
        char text[INET6_ADDRSTRLEN] = {};
        if ((len != 4 && len != 16) ||
            !inet_ntop(len == 4 ? AF_INET : AF_INET6, bytes, text, sizeof(text))) {
          continue;
        }
        value = text;
      } else {
        value.assign(reinterpret_cast<const char*>(bytes), static_cast<size_t>(len));
      }
      for (const auto& m : matchers) {
        if ((m.type == SanMatcher::Type::Any || m.type == type) && m.matches(value)) ok = true;
      }
    }
    GENERAL_NAMES_free(names);
  }
  X509_free(cert);
  return ok ? std::string() : std::string(kVerifyFailed);
}

std::string clientHandshakeFailure(SSL* ssl, const std::error_code& ec,
                                   const TlsContextConfig& cfg) {
  if (ec) {
    if (ssl && SSL_get_verify_result(ssl) != X509_V_OK) return std::string(kVerifyFailed);
    return "TLS_error:|" + ec.message() + ":TLS_error_end";
  }
  return verifyPeerSans(ssl, cfg.san_matchers);
}

static uint32_t be(const unsigned char* p, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

ClientHelloInfo parseClientHello(std::string_view bytes) {
  ClientHelloInfo info;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size();
  if (n < 1) return info;
  if (p[0] != 0x16) {
    info.state = ClientHelloInfo::State::NotTls;
    return info;
  }
  if (n < 5) return info;
  if (p[1] != 0x03) {
    info.state = ClientHelloInfo::State::NotTls;
    return info;
  }
  size_t rec_len = be(p + 3, 2);
  if (n < 5 + rec_len) return info;
  const unsigned char* h = p + 5;
  size_t hn = rec_len;
  auto notTls = [&] {
    info.state = ClientHelloInfo::State::NotTls;
    return info;
  };
  if (hn < 4 || h[0] != 0x01) return notTls();
  size_t body_len = be(h + 1, 3);
  if (body_len + 4 > hn) {
    // ClientHello spans several records: treat what we have as TLS without SNI/ALPN.
    info.state = ClientHelloInfo::State::Tls;
    return info;
  }
  size_t i = 4 + 2 + 32;  // version + random
  if (i + 1 > hn) return notTls();
  i += 1 + h[i];  // session id
  if (i + 2 > hn) return notTls();
  i += 2 + be(h + i, 2);  // cipher suites
  if (i + 1 > hn) return notTls();
  i += 1 + h[i];  // compression methods
  info.state = ClientHelloInfo::State::Tls;
  if (i + 2 > hn) return info;
  size_t ext_end = i + 2 + be(h + i, 2);
  i += 2;
  if (ext_end > hn) ext_end = hn;
  while (i + 4 <= ext_end) {
    uint32_t type = be(h + i, 2);
    size_t len = be(h + i + 2, 2);
    const unsigned char* e = h + i + 4;
    if (i + 4 + len > ext_end) break;
    if (type == 0 && len >= 5) {  // server_name
      size_t name_len = be(e + 3, 2);
      if (e[2] == 0 && 5 + name_len <= len) {
        info.sni.assign(reinterpret_cast<const char*>(e + 5), name_len);
        for (auto& c : info.sni) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
    } else if (type == 16 && len >= 2) {  // ALPN
      size_t list_len = be(e, 2);
      for (size_t j = 2; j < 2 + list_len && j < len;) {
        size_t l = e[j];
        if (j + 1 + l > len) break;
        info.alpn.emplace_back(reinterpret_cast<const char*>(e + j + 1), l);
        j += 1 + l;
      }
    }
    i += 4 + len;
  }
  return info;
}

std::string_view inspectHttp(std::string_view bytes) {
  static constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  if (bytes.substr(0, std::min(bytes.size(), kPreface.size())) ==
      kPreface.substr(0, std::min(bytes.size(), kPreface.size()))) {
    return bytes.size() >= kPreface.size() ? "h2c" : "?";
  }
  size_t eol = bytes.find("\r\n");
  if (eol == std::string_view::npos) {
    if (bytes.size() > 8192) return "";
    // A method token so far?
    for (char c : bytes) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == ' ' || c == '/' || c == '.' ||
            c == ':' || c == '-' || c == '_' || c == '?' || c == '=' || c == '&' || c == '%')) {
        return "";
      }
    }
    return "?";
  }
  std::string_view line = bytes.substr(0, eol);
  if (line.size() > 9 && line.substr(line.size() - 9) == " HTTP/1.1") return "http/1.1";
  if (line.size() > 9 && line.substr(line.size() - 9) == " HTTP/1.0") return "http/1.0";
  return "";
}

}  // namespace mast::net
