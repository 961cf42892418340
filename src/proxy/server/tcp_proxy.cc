#include "proxy/server/tcp_proxy.h"

#include <asio/connect.hpp>

#include "base/hash.h"
#include "base/logging.h"
#include "net/address.h"
#include "proxy/access_log/access_log.h"
#include "proxy/server/cluster_manager.h"
#include "proxy/server/hcm_stats.h"

namespace mast::proxy::server {

TcpProxySession::TcpProxySession(Worker& worker, net::Transport&& downstream,
                                 std::shared_ptr<const TcpProxyConfig> cfg, ConnectionInfo info,
                                 ListenerConnectionStats listener_stats)
    : worker_(worker),
      down_(std::move(downstream)),
      cfg_(std::move(cfg)),
      info_(std::move(info)),
      timer_(worker.loop()),
      listener_stats_(std::move(listener_stats)) {
  stream_info_.start_time = std::chrono::system_clock::now();
  stream_info_.start_mono = std::chrono::steady_clock::now();
  stream_info_.downstream_remote_address = info_.remote_str;
  stream_info_.downstream_direct_remote_address = info_.remote_str;
  stream_info_.downstream_local_address = info_.local_str;
  stream_info_.requested_server_name = info_.sni;
  stream_info_.filter_chain_name = info_.filter_chain_name;
  stream_info_.downstream_tls = info_.tls;
  cfg_->stats->downstream_cx_total->inc();
  cfg_->stats->downstream_cx_active->inc();
  worker_.track(this);
  worker_.onConnectionCountChanged();
}

TcpProxySession::~TcpProxySession() {
  cfg_->stats->downstream_cx_active->dec();
  worker_.untrack(this);
  worker_.onConnectionCountChanged();
}

void TcpProxySession::start() {
  // Weighted cluster choice.
  if (cfg_->clusters.size() == 1 || cfg_->total_weight == 0) {
    cluster_ = cfg_->clusters.front().first;
  } else {
    uint64_t r = worker_.random() % cfg_->total_weight;
    for (const auto& [name, w] : cfg_->clusters) {
      if (r < w) {
        cluster_ = name;
        break;
      }
      r -= w;
    }
  }
  stream_info_.upstream_cluster = cluster_;
  connectUpstream();
}

void TcpProxySession::connectUpstream() {
  WorkerCluster* cluster = worker_.clusters().get(cluster_);
  if (!cluster) {
    stream_info_.setFlag(http::ResponseFlag::NoClusterFound);
    cfg_->stats->downstream_cx_no_route->inc();
    close("no_cluster");
    return;
  }
  std::optional<net::Endpoint> orig;
  if (cluster->runtime().isOriginalDst()) orig = info_.local;
  std::optional<uint64_t> hash;
  if (cfg_->hash_source_ip) hash = xxHash64(net::ipString(info_.remote));
  auto choice = cluster->chooseHost(hash, orig, nullptr);
  if (!choice) {
    stream_info_.setFlag(http::ResponseFlag::NoHealthyUpstream);
    close("no_healthy_upstream");
    return;
  }
  auto& rt = cluster->runtime();
  if (!rt.tryAcquireConnection()) {
    stream_info_.setFlag(http::ResponseFlag::UpstreamOverflow);
    close("overflow");
    return;
  }
  rt.onConnectionCreated();
  ++attempts_;
  stream_info_.upstream_host = choice->label;
  stream_info_.attempt_count = attempts_;
  host_ = choice->host;
  up_ = std::make_unique<net::Transport>(asio::ip::tcp::socket(worker_.loop()));
  auto& sock = up_->socket();
  std::error_code ec;
  sock.open(choice->address.protocol(), ec);
  const auto& ps = rt.poolSettings();
  if (!ec && ps.source_address) {
    sock.bind(net::Endpoint(ps.source_address->address(), 0), ec);
  }
  auto self = shared_from_this();
  timer_.expires_after(ps.connect_timeout);
  timer_.async_wait([self, &rt](std::error_code e) {
    if (!e && !self->connected_ && !self->closed_) {
      rt.stats().upstream_cx_connect_fail->inc();
      self->stream_info_.setFlag(http::ResponseFlag::UpstreamConnectionFailure);
      self->stream_info_.upstream_transport_failure_reason = "connection timeout";
      self->close("connect_timeout");
    }
  });
  sock.async_connect(choice->address, [self, &rt](std::error_code e) {
    if (self->closed_) return;
    if (e) {
      if (self->host_) rt.reportResult(*self->host_, 0, true);
      rt.stats().upstream_cx_connect_fail->inc();
      self->stream_info_.setFlag(http::ResponseFlag::UpstreamConnectionFailure);
      self->stream_info_.upstream_transport_failure_reason = e.message();
      self->close("upstream_connect_failure");
      return;
    }
    std::error_code ig;
    self->stream_info_.upstream_local_address =
        net::toString(self->up_->socket().local_endpoint(ig));
    if (rt.poolSettings().tls) {
      self->up_->enableTls(rt.poolSettings().tls);
      if (!rt.poolSettings().sni.empty()) {
        SSL_set_tlsext_host_name(self->up_->ssl(), rt.poolSettings().sni.c_str());
      }
      self->up_->asyncHandshake(false, [self, &rt](std::error_code he) {
        if (self->closed_) return;
        std::string bad =
            net::clientHandshakeFailure(self->up_->ssl(), he, rt.poolSettings().tls->config());
        if (!bad.empty()) {
          if (self->host_) rt.reportResult(*self->host_, 0, true);
          self->stream_info_.setFlag(http::ResponseFlag::UpstreamConnectionFailure);
          self->stream_info_.upstream_transport_failure_reason = bad;
          self->close("upstream_tls_failure");
          return;
        }
        self->onUpstreamReady();
      });
      return;
    }
    self->onUpstreamReady();
  });
}

void TcpProxySession::onUpstreamReady() {
  connected_ = true;
  timer_.cancel();
  stream_info_.first_upstream_tx_byte = std::chrono::steady_clock::now() - stream_info_.start_mono;
  armIdle();
  pump(true);
  pump(false);
}

void TcpProxySession::armIdle() {
  if (cfg_->idle_timeout.count() == 0) return;
  last_activity_ = std::chrono::steady_clock::now();
  auto self = shared_from_this();
  timer_.expires_after(cfg_->idle_timeout);
  timer_.async_wait([self](std::error_code ec) {
    if (ec || self->closed_) return;
    auto idle = std::chrono::steady_clock::now() - self->last_activity_;
    if (idle < self->cfg_->idle_timeout) {
      self->armIdle();
      return;
    }
    self->cfg_->stats->idle_timeout->inc();
    self->close("idle_timeout");
  });
}

void TcpProxySession::pump(bool from_downstream) {
  auto self = shared_from_this();
  net::Transport& src = from_downstream ? down_ : *up_;
  auto& buf = from_downstream ? down_buf_ : up_buf_;
  src.asyncReadSome(asio::buffer(buf), [self, from_downstream](std::error_code ec, size_t n) {
    if (self->closed_) return;
    if (ec) {
      // A half-close is forwarded; the session ends when both directions ended.
      bool& eof = from_downstream ? self->down_eof_ : self->up_eof_;
      eof = true;
      net::Transport& dst = from_downstream ? *self->up_ : self->down_;
      std::error_code ig;
      if (ec == asio::error::eof && !dst.isTls()) {
        dst.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ig);
      }
      if (ec != asio::error::eof || dst.isTls() || (self->down_eof_ && self->up_eof_)) {
        if (!from_downstream && ec != asio::error::eof) {
          self->stream_info_.setFlag(http::ResponseFlag::UpstreamConnectionTermination);
        }
        self->close(from_downstream ? "downstream_close" : "upstream_close");
      }
      return;
    }
    self->last_activity_ = std::chrono::steady_clock::now();
    auto& b = from_downstream ? self->down_buf_ : self->up_buf_;
    if (from_downstream) {
      self->stream_info_.bytes_received += n;
      self->cfg_->stats->downstream_cx_rx_bytes_total->add(n);
    } else {
      self->stream_info_.bytes_sent += n;
      self->cfg_->stats->downstream_cx_tx_bytes_total->add(n);
    }
    net::Transport& dst = from_downstream ? *self->up_ : self->down_;
    // One read in flight per direction; the next read starts when this write completed, so a
    // slow reader back-pressures the fast writer.
    dst.asyncWrite(asio::buffer(b.data(), n), [self, from_downstream](std::error_code we, size_t) {
      if (self->closed_) return;
      if (we) {
        self->close("write_error");
        return;
      }
      self->pump(from_downstream);
    });
  });
}

void TcpProxySession::close(std::string_view details) {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  down_.close();
  if (up_) up_->close();
  if (attempts_) {
    if (auto* c = worker_.clusters().get(cluster_)) c->runtime().onConnectionClosed();
  }
  stream_info_.connection_termination_details = details;
  stream_info_.request_complete = std::chrono::steady_clock::now() - stream_info_.start_mono;
  for (const auto& log : cfg_->access_logs) log->log(stream_info_);
}

}  // namespace mast::proxy::server
