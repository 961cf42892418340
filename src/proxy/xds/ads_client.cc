#include "proxy/xds/ads_client.h"

#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <array>
#include <charconv>
#include <utility>

#include "base/logging.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "http/http2/codec.h"
#include "proxy/xds/grpc_frame.h"

namespace mast::proxy::xds {

namespace dv3 = envoy::service::discovery::v3;

namespace {

// The ADS session's HTTP/2 receive windows. nghttp2 returns credit (WINDOW_UPDATE) as the bytes
// are consumed, and they are consumed as they are deframed and parsed, so a multi-megabyte CDS
// response streams through in window-sized steps rather than being pushed at us all at once.
constexpr uint32_t kWindowBytes = 1024 * 1024;

bool startsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// grpc-message is percent-encoded (gRPC over HTTP/2 spec).
std::string percentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

}  // namespace

Result<AdsTarget> parseAdsTarget(std::string_view target) {
  auto bad = [&](std::string_view why) {
    return Error{"ADS target '" + std::string(target) + "': " + std::string(why)};
  };
  std::string_view rest = target;
  if (startsWith(rest, "dns:///")) {
    rest.remove_prefix(7);
  } else if (startsWith(rest, "dns://")) {
    return bad("a DNS authority (dns://AUTHORITY/) is not supported; use dns:///host:port");
  } else if (startsWith(rest, "dns:")) {
    rest.remove_prefix(4);
  } else if (startsWith(rest, "ipv4:") || startsWith(rest, "ipv6:")) {
    rest.remove_prefix(5);
  } else if (startsWith(rest, "unix:") || startsWith(rest, "unix-abstract:")) {
    return bad("unix sockets are not supported; use host:port");
  }
  AdsTarget t;
  std::string_view port;
  if (startsWith(rest, "[")) {
    size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    t.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!startsWith(rest, ":")) return bad("expected host:port");
    port = rest.substr(1);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad("expected host:port");
    t.host = std::string(rest.substr(0, colon));
    if (t.host.find(':') != std::string::npos) return bad("an IPv6 address needs brackets");
    port = rest.substr(colon + 1);
  }
  if (t.host.empty()) return bad("empty host");
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535) {
    return bad("invalid port '" + std::string(port) + "'");
  }
  t.port = static_cast<uint16_t>(p);
  return t;
}

// One attempt: TCP connect, the HTTP/2 session and its single gRPC stream. Owned by the client
// while live and by its pending asio completions; abandon() detaches it (owner_ = nullptr), after
// which completions only release it. Everything runs on the main loop.
class AdsClient::Stream final : public http2::ClientCallbacks,
                                public std::enable_shared_from_this<AdsClient::Stream> {
 public:
  Stream(AdsClient& owner, asio::io_context& loop)
      : owner_(&owner),
        loop_(loop),
        socket_(loop),
        connect_timer_(loop),
        deframer_(owner.options_.max_message_bytes) {}

  void start() {
    const AdsTarget& t = owner_->target_;
    auto self = shared_from_this();
    connect_timer_.expires_after(owner_->options_.connect_timeout);
    connect_timer_.async_wait([self](std::error_code ec) {
      if (ec || !self->owner_ || self->session_) return;
      self->markDown("connect timeout");
      self->finish();
    });
    std::error_code ec;
    auto address = asio::ip::make_address(t.host, ec);
    if (!ec) {
      // An address literal: no resolver (asio's resolver runs getaddrinfo on a thread of its own).
      socket_.async_connect({address, t.port}, [self](std::error_code ec) { self->onConnect(ec); });
      return;
    }
    resolver_ = std::make_unique<asio::ip::tcp::resolver>(loop_);
    resolver_->async_resolve(
        t.host, std::to_string(t.port),
        [self](std::error_code ec, asio::ip::tcp::resolver::results_type results) {
          if (!self->owner_) return;
          if (ec) {
            self->markDown("resolving " + self->owner_->target_.host + ": " + ec.message());
            self->finish();
            return;
          }
          asio::async_connect(
              self->socket_, results,
              [self](std::error_code ec, const asio::ip::tcp::endpoint&) { self->onConnect(ec); });
        });
  }

  // Detaches from the client and closes the connection; pending completions see owner_ null.
  void abandon() {
    owner_ = nullptr;
    connect_timer_.cancel();
    if (resolver_) resolver_->cancel();
    std::error_code ec;
    socket_.close(ec);
  }

  // Whether the initial requests went out (until then subscriptions wait for them).
  bool up() const { return up_; }
  bool takeFirst() { return std::exchange(first_request_, false); }

  void sendMessage(const google::protobuf::Message& m) {
    if (down_ || !session_) return;
    std::string framed;
    framed.reserve(kGrpcPrefixBytes + m.ByteSizeLong());
    appendGrpcFrame(framed, m.SerializeAsString());
    session_->submitData(stream_id_, framed, false);
    flush();
  }

  // http2::ClientCallbacks: run inside ClientSession::dispatch. They only record; responses are
  // applied and the stream torn down after dispatch returns (the session must outlive its calls).
  void onStreamHeaders(int32_t id, http::HeaderMap&& headers, bool end_stream) override {
    if (id != stream_id_ || down_) return;
    int status = headers.status();
    if (status != 200) {
      markDown("HTTP status " + std::to_string(status) + " from the ADS server");
      return;
    }
    if (!startsWith(headers.getOr("content-type"), "application/grpc")) {
      markDown("content-type '" + std::string(headers.getOr("content-type")) +
               "' is not application/grpc");
      return;
    }
    // Trailers-only: the call ends in its first HEADERS frame.
    if (end_stream) onGrpcStatus(headers);
  }
  void onStreamData(int32_t id, std::string_view data, bool end_stream) override {
    if (id != stream_id_ || down_) return;
    Status s = deframer_.feed(data, [this](std::string_view message) -> Status {
      dv3::DiscoveryResponse r;
      if (!r.ParseFromArray(message.data(), static_cast<int>(message.size()))) {
        return Error{"malformed DiscoveryResponse (" + std::to_string(message.size()) + " bytes)"};
      }
      inbox_.push_back(std::move(r));
      return {};
    });
    if (!s) {
      markDown(s.error());  // the connection is closed after this read: no RST_STREAM needed
      return;
    }
    if (end_stream) markDown("the server ended the stream without grpc-status");
  }
  void onStreamTrailers(int32_t id, http::HeaderMap&& trailers) override {
    if (id != stream_id_ || down_) return;
    onGrpcStatus(trailers);
  }
  void onStreamReset(int32_t id, uint32_t error_code) override {
    if (id != stream_id_) return;
    markDown("stream reset (HTTP/2 error code " + std::to_string(error_code) + ")");
  }
  void onStreamClose(int32_t id) override {
    if (id == stream_id_) markDown("stream closed");
  }
  void onGoaway(int32_t last_stream_id, uint32_t error_code) override {
    // A graceful GOAWAY that still covers our stream lets it run to its trailers; nghttp2
    // closes a stream it does not cover (REFUSED_STREAM), which onStreamClose reports.
    if (error_code != 0) markDown("GOAWAY (HTTP/2 error code " + std::to_string(error_code) + ")");
  }

 private:
  void onConnect(std::error_code ec) {
    if (!owner_) return;
    connect_timer_.cancel();
    if (ec) {
      markDown("connect: " + ec.message());
      finish();
      return;
    }
    socket_.set_option(asio::ip::tcp::no_delay(true), ec);
    http2::ClientSettings settings;
    settings.initial_stream_window_size = kWindowBytes;
    settings.initial_connection_window_size = kWindowBytes;
    session_ = std::make_unique<http2::ClientSession>(*this, settings);
    const AdsTarget& t = owner_->target_;
    std::string authority = t.host.find(':') == std::string::npos ? t.host : "[" + t.host + "]";
    authority += ":" + std::to_string(t.port);
    http::HeaderMap h{{":method", "POST"},
                      {":scheme", "http"},
                      {":path", kAdsPath},
                      {":authority", authority},
                      {"content-type", "application/grpc"},
                      {"te", "trailers"},
                      {"user-agent", "mast-proxy"}};
    stream_id_ = session_->submitRequest(h, false);
    if (stream_id_ < 0) {
      markDown("cannot open an HTTP/2 stream");
      finish();
      return;
    }
    up_ = true;
    owner_->onStreamUp(*this);
    if (!owner_) return;
    flush();
    read();
  }

  void read() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(rbuf_), [self](std::error_code ec, size_t n) {
      if (!self->owner_) return;
      self->onRead(ec, n);
    });
  }

  void onRead(std::error_code ec, size_t n) {
    if (ec) {
      markDown(ec == asio::error::eof ? "connection closed by the server"
                                      : "read: " + ec.message());
      finish();
      return;
    }
    bool ok = session_->dispatch(rbuf_.data(), n);
    flush();  // SETTINGS and PING acks, WINDOW_UPDATEs for what was just consumed
    // Apply what arrived, in order, even if the stream ended in the same read.
    auto inbox = std::move(inbox_);
    inbox_.clear();
    for (auto& r : inbox) {
      std::vector<google::protobuf::Any> resources;
      resources.reserve(r.resources_size());
      for (auto& a : *r.mutable_resources()) resources.push_back(std::move(a));
      owner_->onResponse(*this, r.type_url(), std::move(resources), r.version_info(), r.nonce());
      if (!owner_) return;  // stopped from the handler
    }
    if (!ok) markDown("HTTP/2 protocol error from the ADS server");
    if (down_) {
      finish();
      return;
    }
    read();
  }

  void onGrpcStatus(const http::HeaderMap& h) {
    const std::string* code = h.get("grpc-status");
    std::string what = code ? "grpc-status " + *code
                            : std::string("the server ended the stream without grpc-status");
    if (const std::string* msg = h.get("grpc-message"); msg && !msg->empty()) {
      what += ": " + percentDecode(*msg);
    }
    if (deframer_.midMessage()) what += " (in the middle of a message)";
    markDown(what);
  }

  // The first reason wins; the stream is torn down once the current completion is done.
  void markDown(std::string reason) {
    if (down_) return;
    down_ = true;
    down_reason_ = std::move(reason);
  }
  void finish() {
    auto self = shared_from_this();
    if (owner_) owner_->onStreamDown(*this, down_reason_);
  }

  void flush() {
    if (!session_ || !owner_) return;
    session_->drainOutput(out_);
    if (writing_ || out_.empty()) return;
    writing_ = true;
    wbuf_.swap(out_);
    out_.clear();
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(wbuf_), [self](std::error_code ec, size_t) {
      self->writing_ = false;
      self->wbuf_.clear();
      if (!self->owner_) return;
      if (ec) {
        self->markDown("write: " + ec.message());
        self->finish();
        return;
      }
      self->flush();
    });
  }

  AdsClient* owner_;
  asio::io_context& loop_;
  asio::ip::tcp::socket socket_;
  std::unique_ptr<asio::ip::tcp::resolver> resolver_;
  asio::steady_timer connect_timer_;
  std::unique_ptr<http2::ClientSession> session_;
  int32_t stream_id_ = -1;
  GrpcDeframer deframer_;
  std::vector<dv3::DiscoveryResponse> inbox_;  // parsed during dispatch, applied after it
  bool up_ = false;
  bool first_request_ = true;  // the node goes on the stream's first request only
  bool down_ = false;
  std::string down_reason_;
  std::array<char, 16 * 1024> rbuf_;
  std::string out_;   // produced while a write is in flight
  std::string wbuf_;  // being written
  bool writing_ = false;
};

AdsClient::AdsClient(asio::io_context& main_loop, AdsOptions options, Handler handler)
    : main_loop_(main_loop),
      options_(std::move(options)),
      handler_(std::move(handler)),
      backoff_(options_.initial_backoff),
      rng_(std::random_device{}()),
      retry_timer_(main_loop) {
  subscriptions_[kClusterType] = {};
  subscriptions_[kListenerType] = {};
}

AdsClient::~AdsClient() { stop(); }

Status AdsClient::start() {
  auto t = parseAdsTarget(options_.target);
  if (!t) return Error{t.error()};
  target_ = std::move(*t);
  connect();
  return {};
}

void AdsClient::stop() {
  stopping_ = true;
  retry_timer_.cancel();
  connected_ = false;
  if (stream_) {
    stream_->abandon();
    stream_.reset();
  }
}

void AdsClient::connect() {
  if (stopping_) return;
  stream_ = std::make_shared<Stream>(*this, main_loop_);
  stream_->start();
}

void AdsClient::onStreamUp(Stream& s) {
  // Nonces belong to a stream: a new stream starts with none (the version carries over, so the
  // server can tell what this proxy already runs).
  for (auto& [type, st] : state_) st.last_nonce.clear();
  for (const char* t : {kClusterType, kEndpointType, kListenerType, kRouteType}) {
    auto it = subscriptions_.find(t);
    if (it == subscriptions_.end()) continue;
    // Named types (EDS, RDS): an empty name list is an unsubscribe, not a wildcard.
    bool wildcard = std::string(t) == kClusterType || std::string(t) == kListenerType;
    if (!wildcard && it->second.empty()) continue;
    sendRequest(s, t, "");
  }
}

void AdsClient::sendRequest(Stream& s, const std::string& type_url,
                            const std::string& error_detail) {
  dv3::DiscoveryRequest req;
  req.set_type_url(type_url);
  if (s.takeFirst()) *req.mutable_node() = options_.node;
  auto& st = state_[type_url];
  req.set_version_info(st.accepted_version);
  req.set_response_nonce(st.last_nonce);
  for (const auto& n : subscriptions_[type_url]) req.add_resource_names(n);
  if (!error_detail.empty()) {
    req.mutable_error_detail()->set_code(3);  // INVALID_ARGUMENT, as Envoy reports rejections
    req.mutable_error_detail()->set_message(error_detail);
  }
  s.sendMessage(req);
}

void AdsClient::subscribe(const std::string& type_url, std::set<std::string> names) {
  auto& cur = subscriptions_[type_url];
  if (cur == names) return;
  cur = std::move(names);
  // Not connected yet: the subscription goes out with the stream's initial requests.
  if (stream_ && stream_->up()) sendRequest(*stream_, type_url, "");
}

void AdsClient::onResponse(Stream& s, const std::string& type_url,
                           std::vector<google::protobuf::Any> resources, const std::string& version,
                           const std::string& nonce) {
  if (!connected_) {
    connected_ = true;
    ++connects_;
    backoff_ = options_.initial_backoff;
    MAST_LOG(INFO, "xds: connected to {}", options_.target);
  }
  auto& st = state_[type_url];
  st.last_nonce = nonce;
  Status result = handler_(type_url, resources, version);
  if (stopping_) return;
  if (result) {
    st.accepted_version = version;
    st.error.clear();
    st.last_updated = std::chrono::system_clock::now();
    ++st.updates_accepted;
  } else {
    st.rejected_version = version;
    st.error = result.error();
    ++st.updates_rejected;
    MAST_LOG(WARN, "xds: rejected {} version {}: {}", type_url, version, result.error());
  }
  sendRequest(s, type_url, result ? std::string() : result.error());
}

void AdsClient::onStreamDown(Stream& s, const std::string& reason) {
  if (&s != stream_.get()) return;
  connected_ = false;
  s.abandon();
  stream_.reset();
  if (stopping_) return;
  // Full jitter around the current back-off, then double it up to the maximum.
  std::uniform_int_distribution<int64_t> jitter(backoff_.count() / 2, backoff_.count());
  auto delay = std::chrono::milliseconds(jitter(rng_));
  MAST_LOG(WARN, "xds: stream to {} closed ({}); retrying in {} ms", options_.target, reason,
           delay.count());
  backoff_ = std::min(options_.max_backoff, backoff_ * 2);
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([this, alive = std::weak_ptr<bool>(alive_)](std::error_code ec) {
    if (ec || alive.expired()) return;
    connect();
  });
}

}  // namespace mast::proxy::xds
