#include "agent/http.h"

#include <fcntl.h>
#include <unistd.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <charconv>
#include <condition_variable>
#include <mutex>

#include "base/logging.h"
#include "http/header_map.h"
#include "http/http1/codec.h"

namespace mast::agent {
namespace {

using asio::ip::tcp;

const char* reasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

// Collects one parsed message from either codec.
struct Collector : http1::Callbacks {
  http::HeaderMap headers;
  std::string body;
  bool done = false;
  std::string error;
  void onHeaders(http::HeaderMap&& h, bool end) override {
    headers = std::move(h);
    done = end;
  }
  void onData(std::string_view d, bool end) override {
    body.append(d);
    done = done || end;
  }
  void onTrailers(http::HeaderMap&&) override { done = true; }
  void onError(int status, std::string_view details) override {
    error = std::string(details) + " (" + std::to_string(status) + ")";
  }
};

}  // namespace

Result<Url> parseUrl(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return Error{"'" + std::string(url) + "': only http:// URLs are supported"};
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  Url out;
  if (slash != std::string_view::npos) out.target = std::string(rest.substr(slash));
  size_t colon = hostport.rfind(':');
  if (!hostport.empty() && hostport.front() == '[') {  // [v6]:port
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return Error{"'" + std::string(url) + "': bad host"};
    out.host = std::string(hostport.substr(1, close - 1));
    colon = hostport.size() > close + 1 && hostport[close + 1] == ':' ? close + 1
                                                                      : std::string_view::npos;
  } else {
    out.host = std::string(hostport.substr(0, colon));
  }
  if (colon != std::string_view::npos) {
    std::string_view p = hostport.substr(colon + 1);
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc() || ptr != p.data() + p.size() || v == 0 || v > 65535) {
      return Error{"'" + std::string(url) + "': bad port"};
    }
    out.port = static_cast<uint16_t>(v);
  }
  if (out.host.empty()) return Error{"'" + std::string(url) + "': no host"};
  return out;
}

Result<HttpResponse> httpRequest(const std::string& host, uint16_t port, std::string_view method,
                                 std::string_view target, std::string_view body,
                                 std::chrono::milliseconds timeout) {
  asio::io_context io;
  tcp::socket sock(io);
  Collector col;
  http1::ClientCodec codec(col);
  std::string failure;
  bool finished = false;
  std::string req = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nhost: " + host +
                    ":" + std::to_string(port) +
                    "\r\nuser-agent: mast-agent\r\naccept: */*\r\nconnection: close\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    req += "content-length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n";
  req.append(body);

  auto run = [&]() -> asio::awaitable<void> {
    try {
      tcp::resolver resolver(io);
      auto endpoints =
          co_await resolver.async_resolve(host, std::to_string(port), asio::use_awaitable);
      co_await asio::async_connect(sock, endpoints, asio::use_awaitable);
      fcntl(sock.native_handle(), F_SETFD, FD_CLOEXEC);
      co_await asio::async_write(sock, asio::buffer(req), asio::use_awaitable);
      char buf[16384];
      while (!col.done && col.error.empty()) {
        auto [ec, n] = co_await sock.async_read_some(
            asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
        if (ec == asio::error::eof) {
          codec.onConnectionClose();
          break;
        }
        if (ec) throw std::system_error(ec);
        codec.dispatch(buf, n);
      }
      if (!col.error.empty()) {
        failure = "bad response: " + col.error;
      } else if (!col.done) {
        failure = "connection closed before the response ended";
      }
    } catch (const std::exception& e) {
      failure = e.what();
    }
    finished = true;
  };
  asio::co_spawn(io, run(), asio::detached);
  io.run_for(timeout);
  std::string where = host + ":" + std::to_string(port) + std::string(target);
  if (!finished) return Error{std::string(method) + " " + where + ": timed out"};
  if (!failure.empty()) return Error{std::string(method) + " " + where + ": " + failure};
  HttpResponse out;
  out.status = col.headers.status();
  out.content_type = std::string(col.headers.getOr("content-type"));
  out.body = std::move(col.body);
  return out;
}

struct HttpServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  tcp protocol = tcp::v4();
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  int active = 0;
};

HttpServer::HttpServer(std::string name, HttpHandler handler)
    : name_(std::move(name)), handler_(std::move(handler)), impl_(std::make_unique<Impl>()) {}

HttpServer::~HttpServer() { stop(); }

Status HttpServer::listen(const std::string& address, uint16_t port) {
  std::error_code ec;
  auto addr = asio::ip::make_address(address, ec);
  if (ec) return Error{name_ + ": bad address '" + address + "'"};
  tcp::endpoint ep(addr, port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error{name_ + ": cannot listen on " + address + ":" + std::to_string(port) + ": " +
                 ec.message()};
  }
  // Not inherited by the proxy the agent forks (asio does not open sockets with CLOEXEC).
  fcntl(a.native_handle(), F_SETFD, FD_CLOEXEC);
  port_ = a.local_endpoint().port();
  impl_->protocol = ep.protocol();
  return {};
}

namespace {

// Serves one connection on its own io_context: read one request (10 s at most), answer, close.
void serveConnection(int fd, tcp protocol, const HttpHandler& handler, const std::string& name) {
  asio::io_context io;
  std::error_code ec;
  tcp::socket sock(io);
  sock.assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return;
  }
  Collector col;
  http1::ServerCodec codec(col, {});
  bool got = false;
  auto read = [&]() -> asio::awaitable<void> {
    char buf[8192];
    while (!col.done && col.error.empty()) {
      auto [rec, n] = co_await sock.async_read_some(
          asio::buffer(buf), asio::experimental::as_tuple(asio::use_awaitable));
      if (rec) co_return;
      codec.dispatch(buf, n);
    }
    got = col.done;
  };
  asio::co_spawn(io, read(), asio::detached);
  io.run_for(std::chrono::seconds(10));
  HttpResponse resp;
  if (got) {
    HttpRequest req;
    req.method = std::string(col.headers.method());
    std::string target(col.headers.path());
    size_t q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = target.substr(q + 1);
    req.body = std::move(col.body);
    try {
      resp = handler(req);
    } catch (const std::exception& e) {
      MAST_LOG(ERROR, "{}: {} {}: {}", name, req.method, req.path, e.what());
      resp = {500, "text/plain; charset=utf-8", "internal error\n"};
    }
  } else if (!col.error.empty()) {
    resp = {400, "text/plain; charset=utf-8", "bad request\n"};
  } else {
    return;  // timed out or closed: nothing to answer
  }
  std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " + reasonPhrase(resp.status) +
                    "\r\ncontent-type: " + resp.content_type +
                    "\r\ncontent-length: " + std::to_string(resp.body.size()) +
                    "\r\nconnection: close\r\n\r\n";
  if (col.headers.method() != "HEAD") out += resp.body;
  asio::write(sock, asio::buffer(out), ec);
  sock.shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace

void HttpServer::start() {
  auto* impl = impl_.get();
  // Parameters, not captures: a coroutine lambda's captures die with the closure object.
  auto accept = [](HttpServer* self, Impl* impl) -> asio::awaitable<void> {
    for (;;) {
      auto [ec, sock] =
          co_await impl->acceptor.async_accept(asio::experimental::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted || !impl->acceptor.is_open()) co_return;
      if (ec) continue;
      {
        std::lock_guard lk(impl->mu);
        if (impl->active >= kMaxConnections) continue;  // `sock` closes unanswered
        ++impl->active;
      }
      int fd = sock.release();
      fcntl(fd, F_SETFD, FD_CLOEXEC);
      std::thread([self, impl, fd] {
        serveConnection(fd, impl->protocol, self->handler_, self->name_);
        std::lock_guard lk(impl->mu);
        --impl->active;
        impl->cv.notify_all();
      }).detach();
    }
  };
  asio::co_spawn(impl->io, accept(this, impl), asio::detached);
  impl->thread = std::thread([impl] { impl->io.run(); });
}

void HttpServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  asio::post(impl_->io, [impl = impl_.get()] {
    std::error_code ec;
    impl->acceptor.close(ec);
  });
  impl_->thread.join();
  std::unique_lock lk(impl_->mu);
  impl_->cv.wait_for(lk, std::chrono::seconds(3), [&] { return impl_->active == 0; });
}

}  // namespace mast::agent
