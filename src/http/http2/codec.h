#pragma once
// Pure HTTP/2 codec on nghttp2 (mem_recv / mem_send): bytes in, callbacks out; no sockets, no
// timers. ServerSession serves downstream streams; ClientSession multiplexes upstream requests.
// Flow control: received DATA gives its window back (WINDOW_UPDATE, stream and connection) as it
// is delivered, except on a stream whose reading is disabled (readDisable): its bytes stay
// unacknowledged until reading is enabled again, so the peer stops after one window (Envoy's
// per-stream flow control). Outgoing bodies are buffered per stream (bufferedBytes) and handed to
// nghttp2 through deferred data providers as the peer's window allows.
// Not thread-safe: a session lives on one worker.
#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "http/header_map.h"

namespace mast::http2 {

class Callbacks {
 public:
  virtual ~Callbacks() = default;
  // Request (server) or final response (client) headers; a second HEADERS block is trailers.
  virtual void onStreamHeaders(int32_t stream_id, http::HeaderMap&& headers, bool end_stream) = 0;
  virtual void onStreamData(int32_t stream_id, std::string_view data, bool end_stream) = 0;
  virtual void onStreamTrailers(int32_t stream_id, http::HeaderMap&& trailers) = 0;
  // The peer reset the stream (or it was closed with an error) before completing.
  virtual void onStreamReset(int32_t stream_id, uint32_t error_code) = 0;
  // Fired exactly once per stream, after which its id is forgotten.
  virtual void onStreamClose(int32_t stream_id) = 0;
};

class ServerCallbacks : public Callbacks {
 public:
  virtual void onConnectionError(std::string_view details) = 0;
};

class ClientCallbacks : public Callbacks {
 public:
  virtual void onGoaway(int32_t last_stream_id, uint32_t error_code) = 0;
};

struct ServerSettings {
  uint32_t max_concurrent_streams = 2147483647;
  uint32_t initial_stream_window_size = 16 * 1024 * 1024;
  uint32_t initial_connection_window_size = 16 * 1024 * 1024;
  uint32_t max_header_list_size = 60 * 1024;
};
struct ClientSettings {
  uint32_t initial_stream_window_size = 16 * 1024 * 1024;
  uint32_t initial_connection_window_size = 16 * 1024 * 1024;
};

class Session {
 public:
  virtual ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // False on a fatal protocol error (a GOAWAY with the error code is queued; flush it, then
  // close the connection).
  bool dispatch(const char* data, size_t len);
  // Appends everything nghttp2 wants to send.
  void drainOutput(std::string& out);
  void submitData(int32_t stream_id, std::string_view data, bool end_stream);
  void submitTrailers(int32_t stream_id, const http::HeaderMap& trailers);
  void resetStream(int32_t stream_id, uint32_t error_code);
  size_t activeStreams() const { return streams_.size(); }
  // Body bytes of the stream waiting for the peer's window.
  size_t bufferedBytes(int32_t stream_id) const;
  // Stops (true) or resumes (false) giving the stream's received bytes back to the peer's
  // window; calls nest (a count). Resuming returns what was held: drainOutput afterwards.
  void readDisable(int32_t stream_id, bool disable);

 protected:
  explicit Session(Callbacks& cb);
  struct Stream {
    http::HeaderMap headers;  // block being received
    std::string out;          // body waiting for the data provider
    bool out_end = false;
    bool deferred = false;
    bool provider = false;
    std::optional<http::HeaderMap> trailers;
    bool got_headers = false;
    bool remote_ended = false;
    uint32_t read_disabled = 0;  // readDisable count
    size_t unconsumed = 0;       // received while disabled, not yet given back to the window
  };
  Stream* find(int32_t id);
  bool submitHeaders(int32_t stream_id, const http::HeaderMap& h, bool end_stream, bool response);
  static nghttp2_session_callbacks* callbacks();

  static int onBeginHeaders(nghttp2_session*, const nghttp2_frame* f, void* u);
  static int onHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t nlen,
                      const uint8_t* value, size_t vlen, uint8_t flags, void* u);
  static int onFrameRecv(nghttp2_session*, const nghttp2_frame* f, void* u);
  static int onDataChunk(nghttp2_session*, uint8_t flags, int32_t id, const uint8_t* data,
                         size_t len, void* u);
  static int onStreamCloseCb(nghttp2_session*, int32_t id, uint32_t error_code, void* u);
  static ssize_t readData(nghttp2_session*, int32_t id, uint8_t* buf, size_t len, uint32_t* flags,
                          nghttp2_data_source* src, void* u);

  Callbacks& cb_;
  nghttp2_session* session_ = nullptr;
  bool server_ = false;
  std::unordered_map<int32_t, Stream> streams_;
};

class ServerSession final : public Session {
 public:
  ServerSession(ServerCallbacks& cb, const ServerSettings& settings);
  void submitResponseHeaders(int32_t stream_id, const http::HeaderMap& headers, bool end_stream);
  // Graceful drain: GOAWAY with the last processed stream; open streams finish.
  void goAway(uint32_t error_code);
  // After a GOAWAY, once no stream is left (or the peer is gone).
  bool wantsClose() const;

 private:
  bool goaway_sent_ = false;
};

class ClientSession final : public Session {
 public:
  ClientSession(ClientCallbacks& cb, const ClientSettings& settings);
  // Returns the new stream id, or -1 when no stream can be opened.
  int32_t submitRequest(const http::HeaderMap& headers, bool end_stream);
  bool canSubmit() const;

 private:
  friend class Session;
  bool goaway_ = false;
};

}  // namespace mast::http2
