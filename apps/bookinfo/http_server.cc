#include "http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "base/result.h"
#include "http/http1/codec.h"

namespace mast::bookinfo {
namespace {

using Clock = std::chrono::steady_clock;
using Routes = std::vector<Route>;

std::string formatUtc(const char* format) {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char buf[64];
  size_t n = std::strftime(buf, sizeof buf, format, &utc);
  return std::string(buf, n);
}

// Numeric host of a peer address; IPv4 peers of a dual-stack listener show as ::ffff:a.b.c.d.
std::string numericAddress(const sockaddr_storage& address) {
  char text[INET6_ADDRSTRLEN] = "";
  if (address.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(address).sin_addr, text,
                sizeof text);
  } else if (address.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(address).sin6_addr, text,
                sizeof text);
  }
  return text;
}

std::vector<std::string> pathSegments(std::string_view path) {
  std::vector<std::string> segments;
  while (!path.empty()) {
    size_t slash = path.find('/');
    std::string_view segment = path.substr(0, slash);
    if (!segment.empty()) segments.emplace_back(segment);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

// What the pattern captures from `segments`, or nullopt when it does not match.
std::optional<std::vector<std::string>> matchPattern(std::string_view pattern,
                                                     const std::vector<std::string>& segments) {
  std::vector<std::string> parts = pathSegments(pattern);
  std::vector<std::string> captured;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "**") {
      std::string rest;
      for (size_t j = i; j < segments.size(); ++j) {
        if (j > i) rest += '/';
        rest += segments[j];
      }
      captured.push_back(std::move(rest));
      return captured;
    }
    if (i >= segments.size()) return std::nullopt;
    if (parts[i] == "*") {
      captured.push_back(percentDecode(segments[i]));
    } else if (parts[i] != segments[i]) {
      return std::nullopt;
    }
  }
  if (parts.size() != segments.size()) return std::nullopt;
  return captured;
}

// Splits a request-target into path and query as urllib.parse.urlsplit does: an absolute-form
// target ("http://host/path") loses its scheme and authority, the fragment is dropped.
void splitTarget(std::string_view target, std::string& path, std::string& query) {
  size_t colon = target.find(':');
  if (colon != std::string_view::npos && colon > 0 &&
      std::isalpha(static_cast<unsigned char>(target[0]))) {
    bool scheme = true;
    for (char c : target.substr(0, colon)) {
      scheme = scheme &&
               (std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.');
    }
    if (scheme) target.remove_prefix(colon + 1);
  }
  if (target.substr(0, 2) == "//") {
    size_t end = target.find_first_of("/?#", 2);
    target = end == std::string_view::npos ? std::string_view() : target.substr(end);
  }
  target = target.substr(0, target.find('#'));
  size_t question = target.find('?');
  path = std::string(target.substr(0, question));
  query = question == std::string_view::npos ? "" : std::string(target.substr(question + 1));
}

bool isDispatchedMethod(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "POST" || method == "PUT" ||
         method == "DELETE";
}

// html.escape(text, quote=False): the error page escapes markup but leaves quotes alone.
std::string escapeMarkup(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// The HTML error page of Python's http.server (send_error), which Bookinfo's clients have
// always received for requests it could not parse or methods it does not serve.
Response errorPage(int status, std::string_view message, std::string_view explanation) {
  Response r;
  r.status = status;
  r.content_type = "text/html;charset=utf-8";
  std::string code = std::to_string(status);
  r.body =
      "<!DOCTYPE HTML>\n<html lang=\"en\">\n    <head>\n        <meta charset=\"utf-8\">\n"
      "        <title>Error response</title>\n    </head>\n    <body>\n"
      "        <h1>Error response</h1>\n        <p>Error code: " +
      code + "</p>\n        <p>Message: " + escapeMarkup(message) +
      ".</p>\n        <p>Error code explanation: " + code + " - " + escapeMarkup(explanation) +
      ".</p>\n    </body>\n</html>\n";
  r.extra_headers.emplace_back("connection", "close");
  return r;
}

// One client connection, served on its own thread until the client closes it, a response
// requires closing, or the process exits.
class ConnectionHandler : public http1::ServerCallbacks {
 public:
  ConnectionHandler(int fd, std::string client_address, std::string service,
                    std::shared_ptr<const Routes> routes)
      : fd_(fd),
        client_address_(std::move(client_address)),
        service_(std::move(service)),
        routes_(std::move(routes)),
        codec_(*this, http1::ServerSettings{}) {}
  ConnectionHandler(const ConnectionHandler&) = delete;
  ConnectionHandler& operator=(const ConnectionHandler&) = delete;
  ~ConnectionHandler() override { ::close(fd_); }

  void run() {
    std::string buffer;
    size_t consumed = 0;
    char chunk[16384];
    while (true) {
      while (consumed < buffer.size() && !request_complete_ && codec_error_ == 0) {
        size_t n = codec_.dispatch(buffer.data() + consumed, buffer.size() - consumed);
        consumed += n;
        if (n == 0) break;
      }
      if (codec_error_ != 0) {
        respondToCodecError();
        return;
      }
      if (request_complete_) {
        if (!respond()) return;
        codec_.resumeAfterResponse();
        continue;  // a pipelined request may already be buffered
      }
      buffer.erase(0, consumed);
      consumed = 0;
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        logLine("connection error from " + client_address_ + ": " + std::strerror(errno));
        return;
      }
      if (n == 0) return;
      buffer.append(chunk, static_cast<size_t>(n));
    }
  }

  // http1::ServerCallbacks
  void onHeaders(http::HeaderMap&& headers, bool end_stream) override {
    started_ = Clock::now();
    request_ = Request{};
    request_.client_address = client_address_;
    request_.protocol = std::string(http::protocolString(codec_.protocol()));
    for (auto& entry : headers.entries()) {
      if (entry.name == ":method") {
        request_.method = std::move(entry.value);
      } else if (entry.name == ":path") {
        request_.target = std::move(entry.value);
      } else if (entry.name == ":authority") {
        request_.headers.add("host", entry.value);
      } else {
        request_.headers.add(entry.name, entry.value);
      }
    }
    splitTarget(request_.target, request_.path, request_.query);
    headers_seen_ = true;
    // No service here speaks an upgraded protocol: answer the request as plain HTTP and close,
    // rather than wait for a body the codec will never deliver.
    if (request_.headers.has("upgrade")) {
      close_after_response_ = true;
      end_stream = true;
    }
    if (!end_stream && codec_.protocol() == http::Protocol::Http11) {
      if (const std::string* expect = request_.header("expect");
          expect && http::iequals(*expect, "100-continue")) {
        writeAll("HTTP/1.1 100 Continue\r\n\r\n");
      }
    }
    request_complete_ = end_stream;
  }
  void onData(std::string_view data, bool end_stream) override {
    request_.body.append(data);
    request_complete_ = request_complete_ || end_stream;
  }
  void onTrailers(http::HeaderMap&&) override { request_complete_ = true; }
  void onError(int status, std::string_view) override { codec_error_ = status; }

 private:
  std::string requestLine() const {
    return request_.method + " " + request_.target + " " + request_.protocol;
  }

  // Routes the complete request and writes the response. False when the connection must close.
  bool respond() {
    request_complete_ = false;
    headers_seen_ = false;
    bool close = codec_.shouldClose() || close_after_response_;
    Response response;
    if (!isDispatchedMethod(request_.method)) {
      response = errorPage(501, "Unsupported method ('" + request_.method + "')",
                           "Server does not support this operation");
      close = true;
    } else {
      response = route(close);
    }
    return write(response) && !close;
  }

  Response route(bool& close) {
    std::vector<std::string> segments = pathSegments(request_.path);
    bool path_matched = false;
    for (const Route& r : *routes_) {
      std::optional<std::vector<std::string>> captured = matchPattern(r.pattern, segments);
      if (!captured) continue;
      path_matched = true;
      if (r.method != request_.method && !(r.method == "GET" && request_.method == "HEAD")) {
        continue;
      }
      try {
        return r.handler(request_, *captured);
      } catch (const std::exception& e) {
        // A bug must not kill the connection silently.
        logLine(service_ + ": error handling '" + requestLine() + "': " + e.what());
        close = true;
        return jsonResponse(500, Json{{"error", "internal error"}});
      }
    }
    if (path_matched) return jsonResponse(405, Json{{"error", "method not allowed"}});
    return jsonResponse(404, Json{{"error", "not found"}});
  }

  void respondToCodecError() {
    if (!headers_seen_) {
      // No request line was parsed, so there is nothing to route and nothing to log but the
      // status.
      request_ = Request{};
      started_ = Clock::now();
      if (codec_error_ == 431) {
        write(errorPage(431, "Request Header Fields Too Large",
                        "The server refused this request because the request header fields "
                        "are too large"));
      } else {
        write(errorPage(400, "Bad request syntax", "Bad request syntax or unsupported method"));
      }
      return;
    }
    Response response = jsonResponse(400, Json{{"error", "malformed request body"}});
    response.extra_headers.emplace_back("connection", "close");
    write(response);
  }

  // Writes one response and its access-log line. False when the client is gone.
  bool write(const Response& response) {
    http::HeaderMap head;
    head.add(":status", std::to_string(response.status));
    head.add("server", "bookinfo");
    head.add("date", formatUtc("%a, %d %b %Y %H:%M:%S GMT"));
    head.add("content-type", response.content_type);
    head.add("content-length", std::to_string(response.body.size()));
    for (const auto& [name, value] : response.extra_headers) head.add(name, value);
    std::string wire;
    codec_.encodeHeaders(head, response.body.empty(), wire);
    // A server states its own version, whatever the request's (RFC 9110 §2.5); the codec
    // echoes HTTP/1.0 to 1.0 clients, the services always answered as HTTP/1.1.
    if (wire.compare(0, 9, "HTTP/1.0 ") == 0) wire.replace(0, 8, "HTTP/1.1");
    if (request_.method != "HEAD") codec_.encodeData(response.body, true, wire);
    logRequest(response.status);
    return writeAll(wire);
  }

  bool writeAll(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Timed until the response headers are ready, like the services always measured it.
  void logRequest(int status) {
    double elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
    char elapsed[32];
    std::snprintf(elapsed, sizeof elapsed, "%.1f", elapsed_ms);
    const std::string* rid = request_.header("x-request-id");
    const std::string* user = request_.header("end-user");
    logLine(formatUtc("%Y-%m-%dT%H:%M:%SZ") + " " + service_ + " " + client_address_ + " \"" +
            (request_.method.empty() ? std::string() : requestLine()) + "\" " +
            std::to_string(status) + " " + elapsed + "ms x-request-id=" + (rid ? *rid : "-") +
            " end-user=" + (user ? *user : "-"));
  }

  int fd_;
  std::string client_address_;
  std::string service_;
  std::shared_ptr<const Routes> routes_;
  http1::ServerCodec codec_;
  Request request_;
  Clock::time_point started_ = Clock::now();
  bool headers_seen_ = false;
  bool request_complete_ = false;
  bool close_after_response_ = false;
  int codec_error_ = 0;
};

// The listening socket for `bind`:`port`, or why not. An address containing ":" is IPv6 and
// listens dual-stack, so "::" also accepts IPv4 clients.
Result<int> openListener(const std::string& bind, int port) {
  addrinfo hints{};
  hints.ai_family = bind.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  std::string service = std::to_string(port);
  int rc = ::getaddrinfo(bind.empty() ? nullptr : bind.c_str(), service.c_str(), &hints, &found);
  if (rc != 0) return Error{"cannot resolve " + bind + ": " + ::gai_strerror(rc)};
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, &::freeaddrinfo);
  int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{std::string("socket: ") + std::strerror(errno)};
  int one = 1, zero = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (found->ai_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
    std::string why = std::strerror(errno);
    ::close(fd);
    return Error{"cannot listen on " + bind + ":" + service + ": " + why};
  }
  return fd;
}

int boundPort(int fd) {
  sockaddr_storage address{};
  socklen_t len = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &len);
  if (address.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6&>(address).sin6_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in&>(address).sin_port);
}

sigset_t stopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

}  // namespace

Response jsonResponse(int status, const Json& doc) {
  return Response{status, "application/json", dumpJson(doc), {}};
}

Response textResponse(int status, std::string text, std::string content_type) {
  return Response{status, std::move(content_type), std::move(text), {}};
}

Response redirectResponse(std::string location,
                          std::vector<std::pair<std::string, std::string>> extra_headers) {
  Response r{302, "text/plain", "", {}};
  r.extra_headers.emplace_back("location", std::move(location));
  for (auto& header : extra_headers) r.extra_headers.push_back(std::move(header));
  return r;
}

void logLine(std::string_view line) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void blockStopSignals() {
  sigset_t set = stopSignals();
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int serve(const ServeOptions& options, std::vector<Route> routes) {
  Result<int> listener = openListener(options.bind, options.port);
  if (!listener) {
    std::fprintf(stderr, "%s: %s\n", options.service.c_str(), listener.error().c_str());
    return 1;
  }
  int listen_fd = *listener;
  sigset_t signals = stopSignals();
  int signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC);
  auto shared_routes = std::make_shared<const Routes>(std::move(routes));
  logLine(options.service + " listening on " + options.bind + ":" +
          std::to_string(boundPort(listen_fd)) +
          (options.banner.empty() ? "" : " (" + options.banner + ")"));

  pollfd watched[2] = {{listen_fd, POLLIN, 0}, {signal_fd, POLLIN, 0}};
  while (true) {
    if (::poll(watched, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (watched[1].revents & POLLIN) {
      signalfd_siginfo info{};
      if (::read(signal_fd, &info, sizeof info) == sizeof info) {
        logLine(options.service + " received signal " + std::to_string(info.ssi_signo) +
                ", shutting down");
      }
      break;
    }
    if (!(watched[0].revents & POLLIN)) continue;
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: back off instead of spinning on a listener that stays readable.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      continue;
    }
    int one = 1;
    // Without TCP_NODELAY a keep-alive client can sit out a delayed ACK per response.
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto handler = std::make_unique<ConnectionHandler>(fd, numericAddress(peer), options.service,
                                                       shared_routes);
    std::thread([handler = std::move(handler)] { handler->run(); }).detach();
  }
  ::close(listen_fd);
  ::close(signal_fd);
  logLine(options.service + " stopped");
  return 0;
}

}  // namespace mast::bookinfo
