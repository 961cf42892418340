#pragma once
// tcp_proxy: an L4 session piping bytes between a downstream connection and one upstream
// host of a (weighted) cluster, with connect timeout, idle timeout and an access log entry.
#include <array>
#include <asio/steady_timer.hpp>
#include <memory>
#include <string>

#include "http/stream_info.h"
#include "net/transport.h"
#include "proxy/server/hcm_stats.h"
#include "proxy/server/listener_config.h"
#include "proxy/server/worker.h"

namespace mast::upstream {
struct Host;
}

namespace mast::proxy::server {

class TcpProxySession : public std::enable_shared_from_this<TcpProxySession>, public Drainable {
 public:
  TcpProxySession(Worker& worker, net::Transport&& downstream,
                  std::shared_ptr<const TcpProxyConfig> cfg, ConnectionInfo info,
                  ListenerConnectionStats listener_stats = {});
  ~TcpProxySession() override;
  void start();
  void startDrain() override {}  // L4 sessions run until either side closes
  void closeNow() override { close("drain_timeout"); }
  const void* configTag() const override { return cfg_.get(); }

 private:
  void connectUpstream();
  void onUpstreamReady();
  void pump(bool from_downstream);
  void close(std::string_view details);
  void armIdle();

  Worker& worker_;
  net::Transport down_;
  std::unique_ptr<net::Transport> up_;
  std::shared_ptr<const TcpProxyConfig> cfg_;
  ConnectionInfo info_;
  http::StreamInfo stream_info_;
  asio::steady_timer timer_;
  std::array<char, 16384> down_buf_{};
  std::array<char, 16384> up_buf_{};
  std::chrono::steady_clock::time_point last_activity_;
  std::string cluster_;
  bool connected_ = false;
  bool closed_ = false;
  bool down_eof_ = false;
  bool up_eof_ = false;
  uint32_t attempts_ = 0;
  std::shared_ptr<const upstream::Host> host_;
  ListenerConnectionStats listener_stats_;
};

}  // namespace mast::proxy::server
