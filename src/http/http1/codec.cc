#include "http/http1/codec.h"

#include <cstring>

#include <charconv>

namespace mast::http1 {

namespace {

bool isHopByHop(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade";
}

void appendHeaders(const http::HeaderMap& h, std::string& out, bool upgrade) {
  for (const auto& e : h) {
    if (e.name.empty() || e.name[0] == ':') continue;
    if (e.name == "transfer-encoding" || e.name == "keep-alive" || e.name == "proxy-connection") {
      continue;
    }
    if (!upgrade && e.name == "upgrade") continue;
    if (e.name == "connection" && !upgrade && e.value != "close") continue;
    out += e.name;
    out += ": ";
    out += e.value;
    out += "\r\n";
  }
}

void appendChunk(std::string_view data, bool end_stream, std::string& out) {
  if (!data.empty()) {
    char buf[20];
    auto [p, ec] = std::to_chars(buf, buf + sizeof(buf), data.size(), 16);
    out.append(buf, p);
    out += "\r\n";
    out.append(data);
    out += "\r\n";
  }
  if (end_stream) out += "0\r\n\r\n";
}

}  // namespace

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 418:
      return "I'm a teapot";
    case 426:
      return "Upgrade Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

// === ParserBase ===

const http_parser_settings& ParserBase::settings() {
  static const http_parser_settings s = [] {
    http_parser_settings x{};
    x.on_message_begin = &ParserBase::onMessageBegin;
    x.on_url = &ParserBase::onUrl;
    x.on_status = &ParserBase::onStatus;
    x.on_header_field = &ParserBase::onHeaderField;
    x.on_header_value = &ParserBase::onHeaderValue;
    x.on_headers_complete = &ParserBase::onHeadersComplete;
    x.on_body = &ParserBase::onBody;
    x.on_message_complete = &ParserBase::onMessageComplete;
    return x;
  }();
  return s;
}

ParserBase::ParserBase(Callbacks& cb, http_parser_type type, uint32_t max_header_bytes,
                       uint32_t max_headers)
    : cb_(cb), max_header_bytes_(max_header_bytes), max_headers_(max_headers) {
  http_parser_init(&parser_, type);
  parser_.data = this;
}

void ParserBase::resetParser() {
  auto type = static_cast<http_parser_type>(parser_.type);
  http_parser_init(&parser_, type);
  parser_.data = this;
  prev_byte_ = '\n';
  line_pos_ = 0;
  first_line_ = true;
  seen_colon_ = false;
}

void ParserBase::fail(int status, std::string_view details) {
  if (failed_) return;
  failed_ = true;
  cb_.onError(status, details);
}

size_t ParserBase::execute(const char* data, size_t len) {
  if (failed_) return len;
  if (raw_) {
    if (len) cb_.onData(std::string_view(data, len), false);
    return len;
  }
  // http-parser accepts bare LF line endings; in the header block we require CRLF (request
  // smuggling defence), and a CR must always be followed by LF.
  if (!headers_done_ && !scanHeaderBlock(data, len)) {
    fail(400, "http1.codec_error");
    return len;
  }
  size_t n = http_parser_execute(&parser_, &settings(), data, len);
  if (failed_) return len;
  auto err = HTTP_PARSER_ERRNO(&parser_);
  if (err == HPE_PAUSED) return n;
  if (err != HPE_OK) {
    if (err == HPE_HEADER_OVERFLOW) {
      fail(parser_.type == HTTP_REQUEST ? 431 : 502, "http1.headers_too_large");
    } else {
      fail(parser_.type == HTTP_REQUEST ? 400 : 502, "http1.codec_error");
    }
    return len;
  }
  if (parser_.upgrade) {
    // Upgrade/CONNECT without a body handled in headersComplete; the rest is raw.
    raw_ = true;
    if (n < len) cb_.onData(std::string_view(data + n, len - n), false);
    return len;
  }
  return n;
}

bool ParserBase::scanHeaderBlock(const char* data, size_t len) {
  // Byte-exact rules, but only field names are walked byte by byte: the request line and the
  // values are skipped with memchr (most of a header block), checking only that a CR is
  // followed by LF. State carries across calls, since a block may arrive in pieces.
  size_t i = 0;
  while (i < len) {
    char c = data[i];
    if (prev_byte_ == '\r' && c != '\n') return false;  // bare CR
    if (c == '\n') {
      if (prev_byte_ != '\r') return false;  // bare LF
      if (line_pos_ == 1) {                  // the empty line (just CR) ends the header block
        line_pos_ = 0;
        first_line_ = true;
        seen_colon_ = false;
        prev_byte_ = '\n';
        return true;
      }
      line_pos_ = 0;
      first_line_ = false;
      seen_colon_ = false;
      prev_byte_ = c;
      ++i;
      continue;
    }
    if (!first_line_ && !seen_colon_ && c != '\r') {
      // obs-fold (a continuation line) and whitespace inside/after a field name are rejected.
      if (c == ' ' || c == '\t') return false;
      if (c == ':') seen_colon_ = true;
      prev_byte_ = c;
      ++line_pos_;
      ++i;
      continue;
    }
    // Request line or value: jump to the end of the line (or of the input).
    const char* from = data + i;
    size_t rest = len - i;
    const char* nl = static_cast<const char*>(std::memchr(from, '\n', rest));
    size_t span = nl ? static_cast<size_t>(nl - from) : rest;  // bytes before the LF
    const char* cr = static_cast<const char*>(std::memchr(from, '\r', span));
    // A CR not right before the LF. (Input ending on CR: prev_byte_ makes the next call check
    // that its first byte is LF.)
    if (cr && cr + 1 != from + span) return false;
    if (span == 0) {  // c is '\r' right before an LF
      prev_byte_ = c;
      ++line_pos_;
      ++i;
      continue;
    }
    line_pos_ += static_cast<uint32_t>(span);
    prev_byte_ = from[span - 1];
    i += span;
  }
  return true;
}

int ParserBase::onMessageBegin(http_parser* p) {
  auto* self = static_cast<ParserBase*>(p->data);
  self->headers_.clear();
  self->headers_.entries().reserve(16);  // moved out per message: one allocation, not a series
  self->url_.clear();
  self->field_.clear();
  self->value_.clear();
  self->in_value_ = false;
  self->in_headers_ = true;
  self->headers_done_ = false;
  self->trailers_ = false;
  self->header_bytes_ = 0;
  self->message_done_ = false;
  self->content_length_count_ = 0;
  self->first_content_length_.clear();
  self->body_delivered_end_ = false;
  return 0;
}

int ParserBase::onUrl(http_parser* p, const char* at, size_t n) {
  auto* self = static_cast<ParserBase*>(p->data);
  self->url_.append(at, n);
  self->header_bytes_ += n;
  if (self->header_bytes_ > self->max_header_bytes_) {
    self->fail(431, "http1.headers_too_large");
    return 1;
  }
  return 0;
}

int ParserBase::onStatus(http_parser*, const char*, size_t) { return 0; }

bool ParserBase::addPendingHeader() {
  if (field_.empty()) return true;
  http::toLowerInPlace(field_);
  // Trim optional whitespace around the value.
  size_t b = value_.find_first_not_of(" \t");
  size_t e = value_.find_last_not_of(" \t");
  std::string v = b == std::string::npos ? std::string() : value_.substr(b, e - b + 1);
  if (field_ == "content-length") {
    // Duplicates must agree (RFC 9110 8.6); otherwise it is a smuggling attempt.
    if (content_length_count_++ > 0 && v != first_content_length_) {
      fail(400, "http1.content_length_not_allowed");
      return false;
    }
    first_content_length_ = v;
  }
  if (headers_.size() >= max_headers_) {
    fail(431, "http1.too_many_headers");
    return false;
  }
  headers_.entries().push_back({std::move(field_), std::move(v)});
  field_.clear();
  value_.clear();
  in_value_ = false;
  return true;
}

int ParserBase::onHeaderField(http_parser* p, const char* at, size_t n) {
  auto* self = static_cast<ParserBase*>(p->data);
  if (self->in_value_ && !self->addPendingHeader()) return 1;
  self->field_.append(at, n);
  self->header_bytes_ += n;
  if (self->header_bytes_ > self->max_header_bytes_) {
    self->fail(p->type == HTTP_REQUEST ? 431 : 502, "http1.headers_too_large");
    return 1;
  }
  return 0;
}

int ParserBase::onHeaderValue(http_parser* p, const char* at, size_t n) {
  auto* self = static_cast<ParserBase*>(p->data);
  self->in_value_ = true;
  self->value_.append(at, n);
  self->header_bytes_ += n;
  if (self->header_bytes_ > self->max_header_bytes_) {
    self->fail(p->type == HTTP_REQUEST ? 431 : 502, "http1.headers_too_large");
    return 1;
  }
  return 0;
}

int ParserBase::onHeadersComplete(http_parser* p) {
  auto* self = static_cast<ParserBase*>(p->data);
  if (!self->addPendingHeader()) return 2;  // error already reported; stop
  self->headers_done_ = true;
  self->in_headers_ = false;
  return self->headersComplete();
}

int ParserBase::onBody(http_parser* p, const char* at, size_t n) {
  auto* self = static_cast<ParserBase*>(p->data);
  if (n) self->cb_.onData(std::string_view(at, n), false);
  return 0;
}

int ParserBase::onMessageComplete(http_parser* p) {
  auto* self = static_cast<ParserBase*>(p->data);
  self->messageComplete();
  return 0;
}

// === ServerCodec ===

ServerCodec::ServerCodec(Callbacks& cb, const ServerSettings& s)
    : ParserBase(cb, HTTP_REQUEST, s.max_request_headers_kb * 1024, s.max_headers_count),
      accept_http_10_(s.accept_http_10) {}

size_t ServerCodec::dispatch(const char* data, size_t len) {
  if (paused_) return 0;
  return execute(data, len);
}

void ServerCodec::resumeAfterResponse() {
  paused_ = false;
  headers_done_ = false;
  prev_byte_ = '\n';
  line_pos_ = 0;
  first_line_ = true;
  seen_colon_ = false;
  http_parser_pause(&parser_, 0);
}

int ServerCodec::headersComplete() {
  protocol_ = (parser_.http_major == 1 && parser_.http_minor == 0) ? http::Protocol::Http10
                                                                   : http::Protocol::Http11;
  if (parser_.http_major != 1) {
    fail(400, "http1.codec_error");
    return 2;
  }
  if (protocol_ == http::Protocol::Http10 && !accept_http_10_) {
    fail(426, "low_version");
    return 2;
  }
  keep_alive_ = http_should_keep_alive(&parser_) != 0;
  http::HeaderMap h;
  h.entries().reserve(headers_.size() + 3);
  h.entries().push_back({":method", http_method_str(static_cast<http_method>(parser_.method))});
  h.entries().push_back({":path", std::move(url_)});
  request_upgrade_ = parser_.upgrade;
  for (auto& e : headers_.entries()) {
    if (e.name == "host") {
      h.entries().push_back({":authority", e.value});
      continue;
    }
    if (!request_upgrade_ && isHopByHop(e.name)) {
      if (e.name == "transfer-encoding") continue;
      continue;
    }
    if (request_upgrade_ && e.name == "transfer-encoding") continue;
    h.entries().push_back(std::move(e));
  }
  // Put :authority right after the pseudo headers for tidiness.
  is_head_ = parser_.method == HTTP_HEAD;
  bool chunked = parser_.flags & F_CHUNKED;
  bool has_length = parser_.flags & F_CONTENTLENGTH;
  bool body = chunked || (has_length && parser_.content_length > 0);
  has_body_ = body;
  headers_.clear();
  if (request_upgrade_) {
    raw_ = !body;
    cb_.onHeaders(std::move(h), false);
    return 0;
  }
  cb_.onHeaders(std::move(h), !body);
  return 0;
}

void ServerCodec::messageComplete() {
  message_done_ = true;
  if (request_upgrade_) {
    raw_ = true;
    return;
  }
  if (has_body_) {
    addPendingHeader();
    if (!headers_.empty()) {
      cb_.onTrailers(std::move(headers_));
      headers_.clear();
    } else {
      cb_.onData({}, true);
    }
  }
  has_body_ = false;
  paused_ = true;
  http_parser_pause(&parser_, 1);
}

void ServerCodec::encodeHeaders(const http::HeaderMap& response, bool end_stream,
                                std::string& out) {
  int status = response.status();
  if (status == 0) status = 500;
  out += protocol_ == http::Protocol::Http10 && accept_http_10_ ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reasonPhrase(status);
  out += "\r\n";
  bool upgrade = status == 101 || (request_upgrade_ && status >= 200 && status < 300 &&
                                   !response.has("content-length"));
  appendHeaders(response, out, upgrade);
  chunked_response_ = false;
  close_delimited_ = false;
  bool no_body_status = status == 204 || status == 304 || (status >= 100 && status < 200);
  if (!upgrade && !no_body_status && !response.has("content-length")) {
    if (end_stream) {
      if (!is_head_) out += "content-length: 0\r\n";
    } else if (protocol_ == http::Protocol::Http11) {
      out += "transfer-encoding: chunked\r\n";
      chunked_response_ = !is_head_;
    } else {
      close_delimited_ = true;
      keep_alive_ = false;
    }
  }
  if (protocol_ == http::Protocol::Http10 && keep_alive_ && !response.has("connection")) {
    out += "connection: keep-alive\r\n";
  }
  if (const std::string* c = response.get("connection"); c && *c == "close") keep_alive_ = false;
  out += "\r\n";
  if (upgrade && status == 101) raw_ = true;
}

void ServerCodec::encodeData(std::string_view data, bool end_stream, std::string& out) {
  if (chunked_response_) {
    appendChunk(data, end_stream, out);
  } else {
    out.append(data);
  }
}

void ServerCodec::encodeTrailers(const http::HeaderMap& trailers, std::string& out) {
  if (!chunked_response_) return;
  out += "0\r\n";
  appendHeaders(trailers, out, false);
  out += "\r\n";
}

// === ClientCodec ===

ClientCodec::ClientCodec(Callbacks& cb) : ParserBase(cb, HTTP_RESPONSE, 80 * 1024, 200) {}

size_t ClientCodec::dispatch(const char* data, size_t len) {
  in_dispatch_ = true;
  size_t n = execute(data, len);
  in_dispatch_ = false;
  if (reset_pending_) {
    reset_pending_ = false;
    doReset();
  }
  return n;
}

void ClientCodec::onConnectionClose() {
  if (failed_ || raw_) {
    if (raw_) cb_.onData({}, true);
    return;
  }
  if (headers_done_ && !message_done_) {
    // Close-delimited bodies end here; anything else is a truncated response.
    http_parser_execute(&parser_, &settings(), nullptr, 0);
    if (!message_done_) fail(502, "upstream_reset");
  }
  keep_alive_ = false;
}

void ClientCodec::reset() {
  // Request-side state belongs to the exchange that just ended; the next encodeHeaders() may
  // follow immediately (even before a deferred parser reset runs).
  head_request_ = false;
  chunked_request_ = false;
  if (in_dispatch_) {
    reset_pending_ = true;
    return;
  }
  doReset();
}

void ClientCodec::doReset() {
  resetParser();
  got_final_response_ = false;
  headers_done_ = false;
  message_done_ = false;
  keep_alive_ = true;
}

int ClientCodec::headersComplete() {
  int status = parser_.status_code;
  if (status >= 100 && status < 200 && status != 101) {
    // Interim responses (100 Continue) are not forwarded; the final one follows.
    return 0;
  }
  got_final_response_ = true;
  keep_alive_ = http_should_keep_alive(&parser_) != 0;
  http::HeaderMap h;
  h.entries().reserve(headers_.size() + 1);
  h.entries().push_back({":status", std::to_string(status)});
  bool upgrade = status == 101;
  for (auto& e : headers_.entries()) {
    if (!upgrade && isHopByHop(e.name)) continue;
    if (upgrade && e.name == "transfer-encoding") continue;
    h.entries().push_back(std::move(e));
  }
  if (upgrade) {
    raw_ = true;
    keep_alive_ = false;
    cb_.onHeaders(std::move(h), false);
    return 2;  // no body; everything after is the tunnel
  }
  bool no_body = head_request_ || status == 204 || status == 304;
  bool chunked = parser_.flags & F_CHUNKED;
  bool has_length = parser_.flags & F_CONTENTLENGTH;
  bool body = !no_body && (chunked || !has_length || parser_.content_length > 0);
  has_body_ = body;
  headers_.clear();
  cb_.onHeaders(std::move(h), !body);
  return no_body ? 1 : 0;
}

void ClientCodec::messageComplete() {
  if (!got_final_response_) {
    // End of an interim response: prepare for the final one.
    headers_done_ = false;
    return;
  }
  message_done_ = true;
  // 101: no pause, so that execute() hands the bytes behind the head (already tunnel data
  // when they arrive in the same read) to onData.
  if (raw_) return;
  if (has_body_) {
    addPendingHeader();
    if (!headers_.empty()) {
      cb_.onTrailers(std::move(headers_));
      headers_.clear();
    } else {
      cb_.onData({}, true);
    }
  }
  has_body_ = false;
  http_parser_pause(&parser_, 1);
}

void ClientCodec::encodeHeaders(const http::HeaderMap& request, bool end_stream, std::string& out) {
  std::string_view method = request.method();
  head_request_ = method == "HEAD";
  out += method;
  out += ' ';
  out += request.path().empty() ? std::string_view("/") : request.path();
  out += " HTTP/1.1\r\n";
  std::string_view authority = request.authority();
  if (!authority.empty()) {
    out += "host: ";
    out += authority;
    out += "\r\n";
  }
  bool upgrade = request.has("upgrade") || method == "CONNECT";
  appendHeaders(request, out, upgrade);
  chunked_request_ = false;
  if (!request.has("content-length") && !upgrade) {
    if (!end_stream) {
      out += "transfer-encoding: chunked\r\n";
      chunked_request_ = true;
    } else if (method == "POST" || method == "PUT" || method == "PATCH") {
      out += "content-length: 0\r\n";
    }
  }
  out += "\r\n";
}

void ClientCodec::encodeData(std::string_view data, bool end_stream, std::string& out) {
  if (chunked_request_) {
    appendChunk(data, end_stream, out);
  } else {
    out.append(data);
  }
}

void ClientCodec::encodeTrailers(const http::HeaderMap& trailers, std::string& out) {
  if (!chunked_request_) return;
  out += "0\r\n";
  appendHeaders(trailers, out, false);
  out += "\r\n";
}

}  // namespace mast::http1
