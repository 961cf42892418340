#include "proxy/server/active_listener.h"

#include <sys/socket.h>

#include <asio/steady_timer.hpp>

#include "base/logging.h"
#include "net/transport.h"
#include "proxy/server/hcm_stats.h"
#include "proxy/server/http_connection.h"
#include "proxy/server/server.h"
#include "proxy/server/tcp_proxy.h"

namespace mast::proxy::server {
namespace {

// Runs the peeking listener filters, then TLS, then creates the network filter.
class PendingConnection : public std::enable_shared_from_this<PendingConnection> {
 public:
  PendingConnection(Worker& worker, ActiveListener& listener, asio::ip::tcp::socket&& s,
                    ConnectionProperties props)
      : worker_(worker),
        listener_(listener.shared_from_this()),
        cfg_(listener.configPtr()),
        transport_(std::move(s)),
        props_(std::move(props)),
        timer_(worker.loop()) {}

  void run() {
    const auto& cfg = *cfg_;
    if (cfg.tls_inspector || cfg.http_inspector) {
      deadline_ = std::chrono::steady_clock::now() + cfg.listener_filters_timeout;
      peek();
    } else {
      props_.transport_protocol = "raw_buffer";
      dispatch();
    }
  }

 private:
  void peek() {
    auto self = shared_from_this();
    transport_.socket().async_wait(asio::socket_base::wait_read, [self](std::error_code ec) {
      if (ec) return;
      self->onReadable();
    });
  }

  void onReadable() {
    const auto& cfg = *cfg_;
    char buf[16384];
    ssize_t n = ::recv(transport_.socket().native_handle(), buf, sizeof(buf), MSG_PEEK);
    if (n <= 0) {
      transport_.close();
      return;
    }
    std::string_view bytes(buf, static_cast<size_t>(n));
    bool need_more = false;
    props_.transport_protocol = "raw_buffer";
    if (cfg.tls_inspector) {
      auto hello = net::parseClientHello(bytes);
      if (hello.state == net::ClientHelloInfo::State::NeedMoreData) {
        need_more = true;
      } else if (hello.state == net::ClientHelloInfo::State::Tls) {
        props_.transport_protocol = "tls";
        props_.sni = hello.sni;
        props_.application_protocols = hello.alpn;
      }
    }
    if (cfg.http_inspector && props_.transport_protocol != "tls" && !need_more) {
      auto proto = net::inspectHttp(bytes);
      if (proto == "?") {
        need_more = true;
      } else if (proto == "h2c") {
        props_.application_protocols = {"h2c"};
      } else if (!proto.empty()) {
        props_.application_protocols = {std::string(proto)};
      }
    }
    if (need_more && std::chrono::steady_clock::now() < deadline_ &&
        static_cast<size_t>(n) < sizeof(buf)) {
      // The reactor would report the socket readable again at once; poll gently instead.
      auto self = shared_from_this();
      timer_.expires_after(std::chrono::milliseconds(2));
      timer_.async_wait([self](std::error_code ec) {
        if (!ec) self->onReadable();
      });
      return;
    }
    dispatch();
  }

  void dispatch() {
    const auto& cfg = *cfg_;
    const FilterChainConfig* chain = selectFilterChain(cfg, props_);
    if (!chain) {
      listener_->stats().no_filter_chain_match->inc();
      MAST_LOG(DEBUG, "listener {}: no filter chain matched {}", cfg.name,
               net::toString(props_.local));
      transport_.close();
      return;
    }
    info_.local = props_.local;
    info_.remote = props_.remote;
    info_.local_str = net::toString(props_.local);
    info_.remote_str = net::toString(props_.remote);
    info_.sni = props_.sni;
    info_.filter_chain_name = chain->name;
    chain_ = chain;
    if (chain->tls) {
      info_.tls = true;
      transport_.enableTls(chain->tls);
      auto self = shared_from_this();
      timer_.expires_after(cfg.listener_filters_timeout);
      timer_.async_wait([self](std::error_code ec) {
        if (!ec && !self->handshaken_) self->transport_.close();
      });
      transport_.asyncHandshake(true, [self](std::error_code ec) {
        self->handshaken_ = true;
        self->timer_.cancel();
        if (ec) {
          self->listener_->stats().ssl_handshake_error->inc();
          self->transport_.close();
          return;
        }
        self->info_.alpn = self->transport_.alpn();
        if (const char* sni =
                SSL_get_servername(self->transport_.ssl(), TLSEXT_NAMETYPE_host_name)) {
          self->info_.sni = sni;
        }
        self->createFilter();
      });
      return;
    }
    createFilter();
  }

  void createFilter() {
    const auto& cfg = *cfg_;
    listener_->stats().downstream_cx_total->inc();
    if (chain_->hcm) {
      auto c = std::make_shared<HttpConnection>(
          worker_, std::move(transport_), chain_->hcm, std::move(info_),
          cfg.per_connection_buffer_limit_bytes, ListenerConnectionStats(listener_->statsPtr()));
      c->start();
    } else if (chain_->tcp_proxy) {
      auto t = std::make_shared<TcpProxySession>(worker_, std::move(transport_), chain_->tcp_proxy,
                                                 std::move(info_),
                                                 ListenerConnectionStats(listener_->statsPtr()));
      t->start();
    }
  }

  Worker& worker_;
  std::shared_ptr<ActiveListener> listener_;
  // The listener config this connection was accepted under (an LDS update may replace the
  // listener's config meanwhile; chain_ points into this one).
  std::shared_ptr<const ListenerConfig> cfg_;
  net::Transport transport_;
  ConnectionProperties props_;
  ConnectionInfo info_;
  const FilterChainConfig* chain_ = nullptr;
  asio::steady_timer timer_;
  std::chrono::steady_clock::time_point deadline_;
  bool handshaken_ = false;
};

}  // namespace

ActiveListener::ActiveListener(Worker& worker, std::shared_ptr<const ListenerConfig> cfg,
                               std::shared_ptr<ListenerStats> stats,
                               asio::ip::tcp::acceptor&& acceptor)
    : worker_(worker),
      cfg_(std::move(cfg)),
      stats_(std::move(stats)),
      acceptor_(std::move(acceptor)) {
  std::error_code ec;
  bound_ = acceptor_.is_open() ? acceptor_.local_endpoint(ec) : cfg_->address;
  if (ec) bound_ = cfg_->address;
}

void ActiveListener::updateConfig(std::shared_ptr<const ListenerConfig> cfg) {
  auto old = std::move(cfg_);
  cfg_ = std::move(cfg);
  worker_.drainConnectionsOf(*old);
}

void ActiveListener::start() {
  if (acceptor_.is_open()) accept();
}

void ActiveListener::stop() {
  stopped_ = true;
  std::error_code ec;
  acceptor_.close(ec);
}

void ActiveListener::accept() {
  auto self = shared_from_this();
  acceptor_.async_accept(worker_.loop(), [self](std::error_code ec, asio::ip::tcp::socket socket) {
    if (self->stopped_) return;
    if (!ec) {
      self->onConnection(std::move(socket), std::nullopt);
    } else if (ec == asio::error::operation_aborted) {
      return;
    }
    self->accept();
  });
}

void ActiveListener::onConnection(asio::ip::tcp::socket&& socket,
                                  std::optional<net::Endpoint> original_dst) {
  ConnectionProperties props;
  std::error_code ec;
  props.local = socket.local_endpoint(ec);
  props.remote = socket.remote_endpoint(ec);
  if (ec) return;
  if (!original_dst && (cfg_->use_original_dst || cfg_->original_dst_filter)) {
    original_dst = net::originalDestination(socket.native_handle());
    if (original_dst && cfg_->use_original_dst) {
      // Hand the connection to the listener that owns the original destination, if any.
      if (auto target = worker_.server().findListener(worker_, *original_dst);
          target && target.get() != this) {
        target->onConnection(std::move(socket), original_dst);
        return;
      }
    }
  }
  if (original_dst) props.local = *original_dst;
  std::make_shared<PendingConnection>(worker_, *this, std::move(socket), std::move(props))->run();
}

}  // namespace mast::proxy::server
