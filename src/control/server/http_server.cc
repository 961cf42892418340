#include "control/server/http_server.h"

#include <asio/read.hpp>
#include <asio/write.hpp>

#include "base/logging.h"
#include "http/http1/codec.h"

namespace mast::control::server {

namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string urlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 &&
               hexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::map<std::string, std::string> parseQuery(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    size_t eq = part.find('=');
    if (!part.empty()) {
      out[urlDecode(part.substr(0, eq))] =
          eq == std::string_view::npos ? "" : urlDecode(part.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

class HttpServer::Connection : public std::enable_shared_from_this<Connection>,
                               public http1::ServerCallbacks {
 public:
  Connection(HttpServer& server, asio::ip::tcp::socket socket)
      : server_(server), socket_(std::move(socket)), codec_(*this, http1::ServerSettings{}) {}

  void start() {
    std::error_code ec;
    auto peer = socket_.remote_endpoint(ec);
    if (!ec) request_.peer = net::toString(peer);
    read();
  }

  void onHeaders(http::HeaderMap&& headers, bool end_stream) override {
    request_.method = std::string(headers.method());
    std::string_view path = headers.path();
    size_t q = path.find('?');
    request_.path = std::string(path.substr(0, q));
    if (q != std::string_view::npos) request_.query = parseQuery(path.substr(q + 1));
    for (const auto& e : headers.entries()) {
      if (!e.name.empty() && e.name[0] != ':') request_.headers[e.name] = e.value;
    }
    if (end_stream) complete_ = true;
  }
  void onData(std::string_view data, bool end_stream) override {
    if (request_.body.size() + data.size() > server_.max_body_bytes_) {
      too_large_ = true;
    } else {
      request_.body.append(data);
    }
    if (end_stream) complete_ = true;
  }
  void onTrailers(http::HeaderMap&&) override { complete_ = true; }
  void onError(int status, std::string_view details) override {
    error_status_ = status;
    error_details_ = std::string(details);
  }

 private:
  void read() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(buf_), [self](std::error_code ec, size_t n) {
      if (ec) return;
      self->codec_.dispatch(self->buf_.data(), n);
      if (self->error_status_) {
        self->respond({self->error_status_, "text/plain", self->error_details_ + "\n"});
      } else if (self->too_large_ && self->complete_) {
        self->respond({413, "text/plain", "request body too large\n"});
      } else if (self->complete_) {
        HttpResponse r;
        try {
          r = self->server_.handler_(self->request_);
        } catch (const std::exception& e) {
          r = {500, "text/plain", std::string("internal error: ") + e.what() + "\n"};
        }
        self->respond(r);
      } else {
        self->read();
      }
    });
  }

  void respond(const HttpResponse& r) {
    http::HeaderMap h;
    h.set(":status", std::to_string(r.status));
    h.set("content-type", r.content_type);
    h.set("content-length", std::to_string(r.body.size()));
    h.set("connection", "close");
    out_.clear();
    codec_.encodeHeaders(h, r.body.empty(), out_);
    if (!r.body.empty()) codec_.encodeData(r.body, true, out_);
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(out_), [self](std::error_code, size_t) {
      std::error_code ec;
      self->socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
      self->socket_.close(ec);
    });
  }

  HttpServer& server_;
  asio::ip::tcp::socket socket_;
  http1::ServerCodec codec_;
  std::array<char, 16384> buf_{};
  HttpRequest request_;
  bool complete_ = false;
  bool too_large_ = false;
  int error_status_ = 0;
  std::string error_details_;
  std::string out_;
};

HttpServer::HttpServer(Handler handler, size_t max_body_bytes)
    : handler_(std::move(handler)), max_body_bytes_(max_body_bytes) {}

HttpServer::~HttpServer() { stop(); }

Result<net::Endpoint> HttpServer::start(const net::Endpoint& ep) {
  std::error_code ec;
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(128, ec);
  if (ec) return Error{"cannot listen on " + net::toString(ep) + ": " + ec.message()};
  auto bound = acceptor_.local_endpoint(ec);
  accept();
  thread_ = std::thread([this] { loop_.run(); });
  return bound;
}

void HttpServer::stop() {
  if (!thread_.joinable()) return;
  asio::post(loop_, [this] {
    std::error_code ec;
    acceptor_.close(ec);
    loop_.stop();
  });
  thread_.join();
}

void HttpServer::accept() {
  acceptor_.async_accept([this](std::error_code ec, asio::ip::tcp::socket s) {
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
    } else {
      std::make_shared<Connection>(*this, std::move(s))->start();
    }
    accept();
  });
}

}  // namespace mast::control::server
