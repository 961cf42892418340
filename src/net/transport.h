#pragma once
// A TCP connection that is either plain or TLS, with one async interface for both. Owned by one
// worker; every operation must run on that worker's io_context. Handlers are templates so no
// type erasure is paid per read/write.
//
// Plaintext reads and writes go through the thread's io_uring ring when its worker runs one
// (net/uring.h), else through asio. Contract either way: a handler runs exactly once, on the
// owner's thread, and must keep this Transport (and the buffer) alive until then, which the
// callers do by capturing the connection that owns it; after close() pending operations complete
// with asio::error::operation_aborted.
#include <asio/ip/tcp.hpp>
#include <asio/ssl.hpp>
#include <asio/write.hpp>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "net/tls.h"
#include "net/uring.h"

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
    } else if (Uring* ring = Uring::onThisThread(); ring && b.size() > 0) {
      adoptInto(*ring);
      ring->recv(plain_.native_handle(), b.data(), b.size(),
                 Uring::makeOp([this, h = std::forward<Handler>(h)](int res) mutable {
                   h(ringError(res, true), res > 0 ? size_t(res) : 0);
                 }));
    } else {
      plain_.async_read_some(b, std::forward<Handler>(h));
    }
  }

  template <class Buffers, class Handler>
  void asyncWrite(const Buffers& b, Handler&& h) {
    if (tls_) {
      asio::async_write(*tls_, b, std::forward<Handler>(h));
      return;
    }
    if constexpr (std::is_convertible_v<Buffers, asio::const_buffer>) {
      asio::const_buffer one(b);
      if (Uring* ring = Uring::onThisThread(); ring && one.size() > 0) {
        adoptInto(*ring);
        ringWrite(*ring, static_cast<const char*>(one.data()), one.size(), 0,
                  std::forward<Handler>(h));
        return;
      }
    }
    asio::async_write(plain_, b, std::forward<Handler>(h));
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
  void adoptInto(Uring& ring) {
    if (ring_adopted_) return;
    ring.adopt(plain_.native_handle());
    ring_adopted_ = true;
  }
  // Sends [done, len) of `data`, resubmitting after short sends, then calls h(ec, bytes sent).
  template <class Handler>
  void ringWrite(Uring& ring, const char* data, size_t len, size_t done, Handler&& h) {
    ring.send(plain_.native_handle(), data + done, len - done,
              Uring::makeOp(
                  [this, &ring, data, len, done, h = std::forward<Handler>(h)](int res) mutable {
                    size_t sent = done + (res > 0 ? size_t(res) : 0);
                    if (res > 0 && sent < len && plain_.is_open()) {
                      ringWrite(ring, data, len, sent, std::move(h));
                      return;
                    }
                    h(ringError(res, false), sent);
                  }));
  }
  // asio's error for a ring completion: what async_read_some / async_write would have said.
  std::error_code ringError(int res, bool read) const {
    if (!plain_.is_open() || res == -ECANCELED) return asio::error::operation_aborted;
    if (res > 0) return {};
    if (res == 0) return read ? std::error_code(asio::error::eof) : std::error_code();
    return std::error_code(-res, asio::error::get_system_category());
  }

  Socket plain_;
  std::unique_ptr<asio::ssl::stream<Socket>> tls_;
  std::shared_ptr<const TlsContext> tls_ctx_;
  bool ring_adopted_ = false;
};

}  // namespace mast::net
