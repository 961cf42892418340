#pragma once
// Pure HTTP/1.1 codec on Debian's http-parser (see docs/decisions/0001-http1-parser.md):
// bytes in, callbacks out; no sockets, no timers. ServerCodec parses requests and encodes
// responses (downstream); ClientCodec encodes requests and parses responses (upstream).
//
// Decoded headers are lower-case with pseudo-headers (":method", ":path", ":authority",
// ":status"); hop-by-hop headers (connection, keep-alive, proxy-connection, transfer-encoding)
// are consumed by the codec and not delivered, except for upgrades. Framing on encode is the
// codec's job (content-length, chunked, or close-delimited).
#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/header_map.h"

namespace mast::http1 {

class Callbacks {
 public:
  virtual ~Callbacks() = default;
  // end_stream: no body follows.
  virtual void onHeaders(http::HeaderMap&& headers, bool end_stream) = 0;
  // Body bytes; the last call has end_stream (possibly with empty data).
  virtual void onData(std::string_view data, bool end_stream) = 0;
  // Chunked trailers; ends the message.
  virtual void onTrailers(http::HeaderMap&& trailers) = 0;
  // The input is unusable: `status` 400 or 431 (server side; 502 for the client side),
  // `details` Envoy-style ("http1.codec_error", "http1.headers_too_large", ...). Fired once;
  // the codec accepts no more input afterwards.
  virtual void onError(int status, std::string_view details) = 0;
};
using ServerCallbacks = Callbacks;
using ClientCallbacks = Callbacks;

struct ServerSettings {
  uint32_t max_request_headers_kb = 60;
  uint32_t max_headers_count = 100;
  // false: HTTP/1.0 requests fail with 426 "low_version" and the reply is HTTP/1.1 (Envoy's
  // http_protocol_options.accept_http_10, which the connection manager defaults to false).
  bool accept_http_10 = true;
};

// Shared parsing machinery.
class ParserBase {
 public:
  ParserBase(Callbacks& cb, http_parser_type type, uint32_t max_header_bytes, uint32_t max_headers);
  ParserBase(const ParserBase&) = delete;
  ParserBase& operator=(const ParserBase&) = delete;
  virtual ~ParserBase() = default;
  bool failed() const { return failed_; }
  bool upgraded() const { return raw_; }

 protected:
  size_t execute(const char* data, size_t len);
  void fail(int status, std::string_view details);
  void resetParser();

  // http_parser hooks.
  static int onMessageBegin(http_parser* p);
  static int onUrl(http_parser* p, const char* at, size_t n);
  static int onStatus(http_parser* p, const char* at, size_t n);
  static int onHeaderField(http_parser* p, const char* at, size_t n);
  static int onHeaderValue(http_parser* p, const char* at, size_t n);
  static int onHeadersComplete(http_parser* p);
  static int onBody(http_parser* p, const char* at, size_t n);
  static int onMessageComplete(http_parser* p);
  static const http_parser_settings& settings();

  virtual int headersComplete() = 0;  // returns http-parser's 0/1/2 (1 = skip body)
  virtual void messageComplete() = 0;
  bool addPendingHeader();
  // CRLF discipline, obs-fold and field-name whitespace checks on the raw header block.
  bool scanHeaderBlock(const char* data, size_t len);

  Callbacks& cb_;
  http_parser parser_{};
  uint32_t max_header_bytes_;
  uint32_t max_headers_;
  http::HeaderMap headers_;
  std::string url_;
  std::string field_;
  std::string value_;
  bool in_value_ = false;
  bool in_headers_ = false;
  bool headers_done_ = false;
  bool trailers_ = false;
  uint32_t header_bytes_ = 0;
  bool failed_ = false;
  bool raw_ = false;  // upgraded: bytes pass through unparsed
  bool message_done_ = false;
  bool keep_alive_ = true;
  bool has_body_ = false;
  char prev_byte_ = '\n';
  uint32_t line_pos_ = 0;
  bool first_line_ = true;
  bool seen_colon_ = false;
  uint32_t content_length_count_ = 0;
  std::string first_content_length_;
  bool body_delivered_end_ = false;
};

class ServerCodec final : public ParserBase {
 public:
  ServerCodec(Callbacks& cb, const ServerSettings& settings);
  // Returns bytes consumed. After a complete request the codec stops consuming (pipelined
  // requests stay with the caller) until resumeAfterResponse().
  size_t dispatch(const char* data, size_t len);
  void resumeAfterResponse();
  http::Protocol protocol() const { return protocol_; }
  // After the current response: must the connection close (HTTP/1.0 without keep-alive,
  // "connection: close", or an error)?
  bool shouldClose() const { return !keep_alive_ || failed_; }

  void encodeHeaders(const http::HeaderMap& response, bool end_stream, std::string& out);
  void encodeData(std::string_view data, bool end_stream, std::string& out);
  void encodeTrailers(const http::HeaderMap& trailers, std::string& out);

 private:
  int headersComplete() override;
  void messageComplete() override;

  http::Protocol protocol_ = http::Protocol::Http11;
  bool accept_http_10_;
  bool paused_ = false;
  bool is_head_ = false;
  bool chunked_response_ = false;
  bool close_delimited_ = false;
  bool request_upgrade_ = false;
};

class ClientCodec final : public ParserBase {
 public:
  explicit ClientCodec(Callbacks& cb);
  size_t dispatch(const char* data, size_t len);
  // The connection closed: finishes a close-delimited body, or reports an error mid-message.
  void onConnectionClose();
  // After a complete response: may the connection carry another request?
  bool keepAlive() const { return keep_alive_ && !failed_ && !raw_; }
  // Prepares for the next request on a reused connection. Called from a callback during
  // dispatch(), the reset is deferred until the parser has returned (re-initialising
  // http-parser under its own feet corrupts its state).
  void reset();

  void encodeHeaders(const http::HeaderMap& request, bool end_stream, std::string& out);
  void encodeData(std::string_view data, bool end_stream, std::string& out);
  void encodeTrailers(const http::HeaderMap& trailers, std::string& out);

 private:
  int headersComplete() override;
  void messageComplete() override;

  void doReset();

  bool head_request_ = false;
  bool chunked_request_ = false;
  bool got_final_response_ = false;
  bool in_dispatch_ = false;
  bool reset_pending_ = false;
};

std::string_view reasonPhrase(int status);

}  // namespace mast::http1
