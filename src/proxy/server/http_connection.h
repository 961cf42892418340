#pragma once
// The HTTP connection manager: one downstream connection (HTTP/1.1 or HTTP/2, plain or TLS),
// its streams, their filter chains ending in the router, local replies and access logs.
// Lives on one worker; shared_from_this keeps it alive across pending I/O.
#include <array>
#include <asio/steady_timer.hpp>
#include <memory>
#include <string>
#include <unordered_map>

#include "http/header_map.h"
#include "net/transport.h"
#include "net/watermark.h"
#include "proxy/server/hcm_config.h"
#include "proxy/server/hcm_stats.h"
#include "proxy/server/worker.h"

namespace mast::proxy::server {

class ActiveStream;
class Http1Downstream;
class Http2Downstream;

class HttpConnection : public std::enable_shared_from_this<HttpConnection>, public Drainable {
 public:
  HttpConnection(Worker& worker, net::Transport&& transport, std::shared_ptr<const HcmConfig> cfg,
                 ConnectionInfo info, uint32_t buffer_limit,
                 ListenerConnectionStats listener_stats = {});
  ~HttpConnection() override;

  // `http2`: chosen by ALPN "h2" or configured codec; AUTO with plaintext sniffs the preface.
  void start();

  // Drainable
  void startDrain() override;
  void closeNow() override;
  const void* configTag() const override { return config_.get(); }

  // Used by streams.
  Worker& worker() { return worker_; }
  const HcmConfig& config() const { return *config_; }
  const ConnectionInfo& info() const { return info_; }
  void write(std::string_view data);
  void flushCodec();
  void onStreamDone(ActiveStream& s);
  bool isHttp2() const { return http2_ != nullptr; }
  void closeAfterWrite(std::string_view details);
  void touch();  // activity: re-arms the idle timer lazily

  // Flow control (per_connection_buffer_limit_bytes). readDisable counts: reading stops while
  // any stream holds it (an upstream that cannot take the request body as fast as it arrives);
  // HTTP/1 only, since pausing an HTTP/2 connection would stall all of its streams.
  void readDisable(bool disable);
  // HTTP/2: the stream's received bytes stop returning to the client's windows (counted), so the
  // client stops sending on that stream after one stream window; the other streams continue as
  // long as the held bytes leave room in the connection window (Envoy holds both the same way).
  void readDisableStream(int32_t stream_id, bool disable);
  // The response bytes waiting to be written went above the limit and have not yet drained
  // below half of it: streams stop reading their upstream responses meanwhile.
  bool aboveWriteHighWatermark() const { return watermark_.high(); }
  uint32_t bufferLimit() const { return buffer_limit_; }

 private:
  friend class ActiveStream;
  friend class Http1Downstream;
  friend class Http2Downstream;
  void chooseCodec(std::string_view first_bytes);
  void startRead();
  void onBytes(const char* data, size_t n);
  void doWrite();
  void close(std::string_view details);
  void armIdleTimer();
  void checkWatermarks();
  void notifyWatermark(bool above);

  Worker& worker_;
  net::Transport transport_;
  std::shared_ptr<const HcmConfig> config_;
  ConnectionInfo info_;
  uint32_t buffer_limit_;
  std::unique_ptr<Http1Downstream> http1_;
  std::unique_ptr<Http2Downstream> http2_;
  bool codec_chosen_ = false;
  std::string sniff_;
  std::array<char, 16384> read_buf_{};
  std::string out_inflight_;
  std::string out_pending_;
  bool writing_ = false;
  bool flush_scheduled_ = false;  // a post() will start the write of out_pending_
  bool close_after_write_ = false;
  bool closed_ = false;
  bool draining_ = false;
  bool reading_paused_ = false;  // no read outstanding while read_disable_count_ > 0
  uint32_t read_disable_count_ = 0;
  std::shared_ptr<HttpConnection> paused_self_;  // set while reading_paused_
  net::Watermark watermark_;
  asio::steady_timer idle_timer_;
  std::chrono::steady_clock::time_point last_activity_;
  uint32_t requests_ = 0;
  ListenerConnectionStats listener_stats_;
};

}  // namespace mast::proxy::server
