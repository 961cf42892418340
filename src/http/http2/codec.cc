#include "http/http2/codec.h"

#include <cstring>
#include <vector>

namespace mast::http2 {

namespace {

bool skipHeader(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade" || name == "host";
}

nghttp2_nv nv(const std::string& n, const std::string& v) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                    NGHTTP2_NV_FLAG_NONE};
}

// Pseudo-headers first (required by RFC 9113), then the rest minus connection-specific ones.
std::vector<nghttp2_nv> toNv(const http::HeaderMap& h, bool request, std::string& authority_tmp) {
  std::vector<nghttp2_nv> out;
  out.reserve(h.size() + 2);
  for (const auto& e : h) {
    if (!e.name.empty() && e.name[0] == ':') out.push_back(nv(e.name, e.value));
  }
  if (request && !h.has(":authority")) {
    if (const std::string* host = h.get("host")) {
      static const std::string kAuthority = ":authority";
      authority_tmp = *host;
      out.push_back(nv(kAuthority, authority_tmp));
    }
  }
  for (const auto& e : h) {
    if (e.name.empty() || e.name[0] == ':' || skipHeader(e.name)) continue;
    if (e.name == "te" && e.value != "trailers") continue;
    out.push_back(nv(e.name, e.value));
  }
  return out;
}

}  // namespace

nghttp2_session_callbacks* Session::callbacks() {
  static nghttp2_session_callbacks* cbs = [] {
    nghttp2_session_callbacks* c;
    nghttp2_session_callbacks_new(&c);
    nghttp2_session_callbacks_set_on_begin_headers_callback(c, &Session::onBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(c, &Session::onHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(c, &Session::onFrameRecv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c, &Session::onDataChunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(c, &Session::onStreamCloseCb);
    return c;
  }();
  return cbs;
}

Session::Session(Callbacks& cb) : cb_(cb) {}

Session::~Session() {
  if (session_) nghttp2_session_del(session_);
}

Session::Stream* Session::find(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

size_t Session::bufferedBytes(int32_t id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? 0 : it->second.out.size();
}

void Session::readDisable(int32_t id, bool disable) {
  Stream* s = find(id);
  if (!s) return;
  if (disable) {
    ++s->read_disabled;
    return;
  }
  if (s->read_disabled == 0 || --s->read_disabled > 0) return;
  if (s->unconsumed) {
    nghttp2_session_consume(session_, id, s->unconsumed);
    s->unconsumed = 0;
  }
}

bool Session::dispatch(const char* data, size_t len) {
  ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), len);
  if (rv < 0) {
    uint32_t code = rv == NGHTTP2_ERR_HEADER_COMP    ? NGHTTP2_COMPRESSION_ERROR
                    : rv == NGHTTP2_ERR_FLOW_CONTROL ? NGHTTP2_FLOW_CONTROL_ERROR
                                                     : NGHTTP2_PROTOCOL_ERROR;
    // nghttp2 usually queued a GOAWAY itself; make sure one goes out.
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(session_), code, nullptr, 0);
    return false;
  }
  // A connection error nghttp2 handled itself (GOAWAY queued, session terminating).
  if (!nghttp2_session_want_read(session_) && server_) return false;
  return true;
}

void Session::drainOutput(std::string& out) {
  for (;;) {
    const uint8_t* p = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &p);
    if (n <= 0) break;
    out.append(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }
}

bool Session::submitHeaders(int32_t id, const http::HeaderMap& h, bool end_stream, bool response) {
  std::string tmp;
  auto nva = toNv(h, !response, tmp);
  Stream& s = streams_[id];
  nghttp2_data_provider prd{};
  prd.read_callback = &Session::readData;
  int rv;
  if (response) {
    s.provider = !end_stream;
    rv = nghttp2_submit_response(session_, id, nva.data(), nva.size(), end_stream ? nullptr : &prd);
  } else {
    rv = 0;
  }
  return rv == 0;
}

void Session::submitData(int32_t id, std::string_view data, bool end_stream) {
  Stream* s = find(id);
  if (!s) return;
  s->out.append(data);
  if (end_stream) s->out_end = true;
  if (s->deferred) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
}

void Session::submitTrailers(int32_t id, const http::HeaderMap& trailers) {
  Stream* s = find(id);
  if (!s) return;
  s->trailers = trailers;
  s->out_end = true;
  if (s->deferred) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
}

void Session::resetStream(int32_t id, uint32_t error_code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, error_code);
}

ssize_t Session::readData(nghttp2_session* session, int32_t id, uint8_t* buf, size_t len,
                          uint32_t* flags, nghttp2_data_source*, void* u) {
  auto* self = static_cast<Session*>(u);
  Stream* s = self->find(id);
  if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  size_t n = std::min(len, s->out.size());
  if (n) {
    std::memcpy(buf, s->out.data(), n);
    s->out.erase(0, n);
  }
  if (s->out.empty()) {
    if (s->out_end) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (s->trailers) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::string tmp;
        auto nva = toNv(*s->trailers, false, tmp);
        nghttp2_submit_trailer(session, id, nva.data(), nva.size());
        s->trailers.reset();
      }
    } else if (n == 0) {
      s->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

int Session::onBeginHeaders(nghttp2_session*, const nghttp2_frame* f, void* u) {
  auto* self = static_cast<Session*>(u);
  if (f->hd.type != NGHTTP2_HEADERS) return 0;
  Stream& s = self->streams_[f->hd.stream_id];
  s.headers.clear();
  return 0;
}

int Session::onHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t nlen,
                      const uint8_t* value, size_t vlen, uint8_t, void* u) {
  auto* self = static_cast<Session*>(u);
  Stream* s = self->find(f->hd.stream_id);
  if (!s) return 0;
  s->headers.entries().push_back({std::string(reinterpret_cast<const char*>(name), nlen),
                                  std::string(reinterpret_cast<const char*>(value), vlen)});
  return 0;
}

int Session::onFrameRecv(nghttp2_session*, const nghttp2_frame* f, void* u) {
  auto* self = static_cast<Session*>(u);
  int32_t id = f->hd.stream_id;
  bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
  switch (f->hd.type) {
    case NGHTTP2_HEADERS: {
      Stream* s = self->find(id);
      if (!s) return 0;
      if (!self->server_ && f->headers.cat == NGHTTP2_HCAT_HEADERS && !s->got_headers) {
        // An informational (1xx) block before the final response: skip it.
        s->headers.clear();
        return 0;
      }
      if (!self->server_ && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        int status = s->headers.status();
        if (status >= 100 && status < 200) {
          s->headers.clear();
          return 0;
        }
      }
      if (end) s->remote_ended = true;
      if (!s->got_headers) {
        s->got_headers = true;
        self->cb_.onStreamHeaders(id, std::move(s->headers), end);
      } else {
        self->cb_.onStreamTrailers(id, std::move(s->headers));
      }
      if (Stream* again = self->find(id)) again->headers.clear();
      return 0;
    }
    case NGHTTP2_DATA:
      if (end) {
        if (Stream* s = self->find(id)) s->remote_ended = true;
        self->cb_.onStreamData(id, {}, true);
      }
      return 0;
    case NGHTTP2_GOAWAY:
      if (!self->server_) {
        static_cast<ClientSession*>(self)->goaway_ = true;
        static_cast<ClientCallbacks&>(self->cb_).onGoaway(f->goaway.last_stream_id,
                                                          f->goaway.error_code);
      }
      return 0;
    default:
      return 0;
  }
}

int Session::onDataChunk(nghttp2_session* session, uint8_t, int32_t id, const uint8_t* data,
                         size_t len, void* u) {
  auto* self = static_cast<Session*>(u);
  Stream* s = self->find(id);
  // Automatic window updates are off (see the constructors): every delivered byte is given back
  // here, or once its stream reads again. nghttp2 itself accounts for padding and for DATA it
  // discards.
  if (s && s->read_disabled) {
    s->unconsumed += len;
  } else {
    nghttp2_session_consume(session, id, len);
  }
  if (!s) return 0;
  self->cb_.onStreamData(id, std::string_view(reinterpret_cast<const char*>(data), len), false);
  return 0;
}

int Session::onStreamCloseCb(nghttp2_session*, int32_t id, uint32_t error_code, void* u) {
  auto* self = static_cast<Session*>(u);
  auto it = self->streams_.find(id);
  if (it == self->streams_.end()) return 0;
  // Bytes a paused stream held still count against the connection's window.
  if (it->second.unconsumed) {
    nghttp2_session_consume_connection(self->session_, it->second.unconsumed);
    it->second.unconsumed = 0;
  }
  if (error_code != NGHTTP2_NO_ERROR) self->cb_.onStreamReset(id, error_code);
  self->streams_.erase(id);
  self->cb_.onStreamClose(id);
  return 0;
}

// === Server ===

ServerSession::ServerSession(ServerCallbacks& cb, const ServerSettings& s) : Session(cb) {
  server_ = true;
  nghttp2_option* opt;
  nghttp2_option_new(&opt);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_server_new2(&session_, callbacks(), this, opt);
  nghttp2_option_del(opt);
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, s.initial_stream_window_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, s.max_header_list_size},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, 3);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(s.initial_connection_window_size));
}

void ServerSession::submitResponseHeaders(int32_t id, const http::HeaderMap& headers,
                                          bool end_stream) {
  if (!find(id)) return;
  submitHeaders(id, headers, end_stream, true);
}

void ServerSession::goAway(uint32_t error_code) {
  if (goaway_sent_) return;
  goaway_sent_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), error_code, nullptr, 0);
}

bool ServerSession::wantsClose() const {
  return (goaway_sent_ && streams_.empty()) ||
         (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_));
}

// === Client ===

ClientSession::ClientSession(ClientCallbacks& cb, const ClientSettings& s) : Session(cb) {
  server_ = false;
  nghttp2_option* opt;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session_client_new2(&session_, callbacks(), this, opt);
  nghttp2_option_del(opt);
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, s.initial_stream_window_size},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, 2);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(s.initial_connection_window_size));
}

bool ClientSession::canSubmit() const {
  if (goaway_) return false;
  uint32_t max =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return streams_.size() < max;
}

int32_t ClientSession::submitRequest(const http::HeaderMap& headers, bool end_stream) {
  if (!canSubmit()) return -1;
  std::string tmp;
  auto nva = toNv(headers, true, tmp);
  nghttp2_data_provider prd{};
  prd.read_callback = &Session::readData;
  int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                      end_stream ? nullptr : &prd, nullptr);
  if (id < 0) return -1;
  Stream& s = streams_[id];
  s.provider = !end_stream;
  return id;
}

}  // namespace mast::http2
