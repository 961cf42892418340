#pragma once
// A TCP connection that is either plain or TLS, with one async interface for both. Owned by one
// worker; every operation must run on that worker's io_context. Handlers are templates so no
// type erasure is paid per read/write.
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>
#include <asio/write.hpp>
#include <memory>
#include <string>

#include "net/tls.h"

namespace mast::net {

class Transport {
 public:
  using Socket = asio::ip::tcp::socket;

  explicit Transport(Socket socket) : plain_(std::move(socket)) {}

  // Switches to TLS; call before any read/write. Keeps `ctx` alive for the connection's life.
  void enableTls(std::shared_ptr<const TlsContext> ctx) {
    tls_ctx_ = std::move(ctx);
    tls_ = std::make_unique<asio::ssl::stream<Socket>>(std::move(plain_), tls_ctx_->native());
  }
  bool isTls() const { return tls_ != nullptr; }
  SSL* ssl() { return tls_ ? tls_->native_handle() : nullptr; }

  Socket& socket() { return tls_ ? tls_->next_layer() : plain_; }

  template <class Handler>
  void asyncHandshake(bool server, Handler&& h) {
    tls_->async_handshake(server ? asio::ssl::stream_base::server : asio::ssl::stream_base::client,
                          std::forward<Handler>(h));
  }

  template <class Buffer, class Handler>
  void asyncReadSome(const Buffer& b, Handler&& h) {
    if (tls_) {
      tls_->async_read_some(b, std::forward<Handler>(h));
    } else {
      plain_.async_read_some(b, std::forward<Handler>(h));
    }
  }

  template <class Buffers, class Handler>
  void asyncWrite(const Buffers& b, Handler&& h) {
    if (tls_) {
      asio::async_write(*tls_, b, std::forward<Handler>(h));
    } else {
      asio::async_write(plain_, b, std::forward<Handler>(h));
    }
  }

  std::string alpn() const {
    if (!tls_) return {};
    const unsigned char* p = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(tls_->native_handle(), &p, &len);
    return std::string(reinterpret_cast<const char*>(p), len);
  }

  void close() {
    std::error_code ec;
    socket().shutdown(Socket::shutdown_both, ec);
    socket().close(ec);
  }
  bool isOpen() { return socket().is_open(); }

 private:
  Socket plain_;
  std::unique_ptr<asio::ssl::stream<Socket>> tls_;
  std::shared_ptr<const TlsContext> tls_ctx_;
};

}  // namespace mast::net
