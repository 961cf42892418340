#include "http_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "http/http1/codec.h"
#include "text.h"

namespace mast::bookinfo {
namespace {

std::string envOrEmpty(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  return value ? value : "";
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One connected socket, optionally wrapped in TLS; closed on destruction.
class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }

  Status open(const std::string& host, int port, bool tls, std::chrono::milliseconds timeout) {
    if (Status s = connectTcp(host, port, timeout); !s) return s;
    if (!tls) return {};
    return startTls(host);
  }

  Status sendAll(std::string_view data) {
    while (!data.empty()) {
      ssize_t n;
      if (ssl_) {
        n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
        if (n <= 0) return Error{tlsError("write", static_cast<int>(n))};
      } else {
        n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EINTR) continue;
          return Error{errno == EAGAIN ? "timed out" : std::strerror(errno)};
        }
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return {};
  }

  // Bytes received (0 at end of stream), or an error (a timeout is "timed out").
  Result<size_t> receive(char* buf, size_t size) {
    while (true) {
      if (ssl_) {
        int n = SSL_read(ssl_, buf, static_cast<int>(size));
        if (n > 0) return static_cast<size_t>(n);
        int err = SSL_get_error(ssl_, n);
        if (err == SSL_ERROR_ZERO_RETURN) return size_t{0};
        return Error{tlsError("read", n)};
      }
      ssize_t n = ::recv(fd_, buf, size, 0);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno == EINTR) continue;
      return Error{errno == EAGAIN ? "timed out" : std::strerror(errno)};
    }
  }

 private:
  Status connectTcp(const std::string& host, int port, std::chrono::milliseconds timeout) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
      return Error{"cannot resolve " + host + ": " + ::gai_strerror(rc)};
    }
    std::string last_error = "no address";
    // Each address gets the whole timeout, one after the other, as socket.create_connection.
    for (addrinfo* ai = found; ai; ai = ai->ai_next) {
      int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        last_error = std::strerror(errno);
        continue;
      }
      std::string failure = connectOne(fd, ai, timeout);
      if (failure.empty()) {
        fd_ = fd;
        break;
      }
      ::close(fd);
      last_error = failure;
    }
    ::freeaddrinfo(found);
    if (fd_ < 0) return Error{"connect to " + host + ":" + service + ": " + last_error};
    int flags = ::fcntl(fd_, F_GETFL);
    ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
    timeval tv{};
    tv.tv_sec = timeout.count() / 1000;
    tv.tv_usec = (timeout.count() % 1000) * 1000;
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return {};
  }

  // Empty on success, else the reason.
  static std::string connectOne(int fd, const addrinfo* ai, std::chrono::milliseconds timeout) {
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return "";
    if (errno != EINPROGRESS) return std::strerror(errno);
    pollfd pfd{fd, POLLOUT, 0};
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "timed out";
      int rc = ::poll(&pfd, 1, static_cast<int>(left.count()));
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) return std::strerror(errno);
      if (rc == 0) return "timed out";
      break;
    }
    int error = 0;
    socklen_t len = sizeof error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    return error == 0 ? "" : std::strerror(error);
  }

  // The client context verifies the server against the system's CA store, like Python's
  // ssl.create_default_context(); created once, shared by every thread (OpenSSL allows that).
  static SSL_CTX* clientContext() {
    static SSL_CTX* context = [] {
      SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
      SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
      SSL_CTX_set_default_verify_paths(ctx);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
      return ctx;
    }();
    return context;
  }

  Status startTls(const std::string& host) {
    ssl_ = SSL_new(clientContext());
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, host.c_str());
    SSL_set1_host(ssl_, host.c_str());
    int rc = SSL_connect(ssl_);
    if (rc != 1) {
      long verify = SSL_get_verify_result(ssl_);
      if (verify != X509_V_OK) {
        return Error{std::string("certificate verify failed: ") +
                     X509_verify_cert_error_string(verify)};
      }
      return Error{tlsError("handshake", rc)};
    }
    return {};
  }

  std::string tlsError(const char* operation, int rc) {
    int err = SSL_get_error(ssl_, rc);
    unsigned long queued = ERR_get_error();
    if (queued != 0) {
      char text[256];
      ERR_error_string_n(queued, text, sizeof text);
      return std::string("TLS ") + operation + ": " + text;
    }
    if (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) return "timed out";
    if (err == SSL_ERROR_SYSCALL && errno != 0) {
      return std::string("TLS ") + operation + ": " + std::strerror(errno);
    }
    return std::string("TLS ") + operation + ": connection closed";
  }

  int fd_ = -1;
  SSL* ssl_ = nullptr;
};

// Collects one response from the client codec.
class ResponseCollector : public http1::ClientCallbacks {
 public:
  void onHeaders(http::HeaderMap&& headers, bool end_stream) override {
    response_.status = headers.status();
    headers.remove(":status");
    response_.headers = std::move(headers);
    complete_ = end_stream;
  }
  void onData(std::string_view data, bool end_stream) override {
    response_.body.append(data);
    complete_ = complete_ || end_stream;
  }
  void onTrailers(http::HeaderMap&&) override { complete_ = true; }
  void onError(int, std::string_view details) override { error_ = std::string(details); }

  bool complete() const { return complete_; }
  const std::string& error() const { return error_; }
  UpstreamResponse take() { return std::move(response_); }

 private:
  UpstreamResponse response_;
  bool complete_ = false;
  std::string error_;
};

}  // namespace

Result<UrlParts> splitUrl(std::string_view url) {
  UrlParts out;
  size_t colon = url.find(':');
  if (colon != std::string_view::npos && colon > 0 &&
      std::isalpha(static_cast<unsigned char>(url[0]))) {
    bool valid = true;
    for (char c : url.substr(0, colon)) {
      valid = valid &&
              (std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.');
    }
    if (valid) {
      out.scheme = lower(url.substr(0, colon));
      url.remove_prefix(colon + 1);
    }
  }
  std::string_view netloc;
  if (url.substr(0, 2) == "//") {
    url.remove_prefix(2);
    size_t end = url.find_first_of("/?#");
    netloc = url.substr(0, end);
    url = end == std::string_view::npos ? std::string_view() : url.substr(end);
  }
  out.path = std::string(url.substr(0, url.find_first_of("?#")));
  size_t at = netloc.rfind('@');
  std::string_view host_port = at == std::string_view::npos ? netloc : netloc.substr(at + 1);
  std::string_view port_text;
  if (size_t open = host_port.find('['); open != std::string_view::npos) {
    std::string_view bracketed = host_port.substr(open + 1);
    size_t close = bracketed.find(']');
    out.hostname = lower(bracketed.substr(0, close));
    if (close != std::string_view::npos) {
      std::string_view rest = bracketed.substr(close + 1);
      if (size_t c = rest.find(':'); c != std::string_view::npos) port_text = rest.substr(c + 1);
    }
  } else {
    size_t c = host_port.find(':');
    out.hostname = lower(host_port.substr(0, c));
    if (c != std::string_view::npos) port_text = host_port.substr(c + 1);
  }
  if (!port_text.empty()) {
    int port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9') {
        return Error{"port could not be cast to integer value as '" + std::string(port_text) + "'"};
      }
      // Stops growing once out of range: only the range check below needs the value then.
      if (port <= 65535) port = port * 10 + (c - '0');
    }
    if (port > 65535) return Error{"port out of range 0-65535"};
    out.port = port;
  }
  return out;
}

HeaderList forwardHeaders(const http::HeaderMap& incoming, bool include_end_user) {
  HeaderList out;
  for (std::string_view name : kPropagatedHeaders) {
    if (name == "end-user" && !include_end_user) continue;
    if (const std::string* value = incoming.get(name)) out.emplace_back(name, *value);
  }
  return out;
}

Result<Upstream> upstreamFromEnv(std::string_view name) {
  std::string prefix = upper(name);
  Upstream upstream;
  upstream.name = std::string(name);
  std::string host = envOrEmpty(prefix + "_HOSTNAME");
  if (host.empty()) host = upstream.name;
  if (std::string domain = envOrEmpty("SERVICES_DOMAIN"); !domain.empty()) host += "." + domain;
  std::string port = envOrEmpty(prefix + "_SERVICE_PORT");
  if (port.empty()) port = "9080";
  upstream.authority = host + ":" + port;
  std::string override_url = envOrEmpty(prefix + "_URL");
  if (!override_url.empty()) {
    Result<UrlParts> url = splitUrl(override_url);
    if (!url) return Error{prefix + "_URL: " + url.error()};
    if ((url->scheme != "http" && !url->scheme.empty()) || url->hostname.empty()) {
      return Error{prefix + "_URL must look like http://host:port, got '" + override_url + "'"};
    }
    upstream.connect_host = url->hostname;
    // An explicit port 0 falls back to 80 as well.
    upstream.connect_port = url->port.value_or(0) == 0 ? 80 : *url->port;
    upstream.path_prefix = url->path;
    while (!upstream.path_prefix.empty() && upstream.path_prefix.back() == '/') {
      upstream.path_prefix.pop_back();
    }
    return upstream;
  }
  std::optional<int64_t> port_number = parseInteger(port);
  if (!port_number) {
    return Error{prefix + "_SERVICE_PORT must be an integer, got '" + port + "'"};
  }
  upstream.connect_host = host;
  upstream.connect_port = static_cast<int>(*port_number);
  return upstream;
}

Result<UpstreamResponse> sendGet(const OutgoingRequest& request) {
  Connection connection;
  if (Status s =
          connection.open(request.connect_host, request.connect_port, request.tls, request.timeout);
      !s) {
    return Error{s.error()};
  }
  ResponseCollector collector;
  http1::ClientCodec codec(collector);
  http::HeaderMap head;
  head.add(":method", "GET");
  head.add(":path", request.target);
  head.add(":authority", request.host_header);
  head.add("accept-encoding", "identity");
  for (const auto& [name, value] : request.headers) head.add(name, value);
  std::string wire;
  codec.encodeHeaders(head, /*end_stream=*/true, wire);
  if (Status s = connection.sendAll(wire); !s) return Error{"send: " + s.error()};

  char buf[16384];
  while (!collector.complete() && collector.error().empty()) {
    Result<size_t> n = connection.receive(buf, sizeof buf);
    if (!n) return Error{"receive: " + n.error()};
    if (*n == 0) {
      codec.onConnectionClose();
      if (!collector.complete() && collector.error().empty()) {
        return Error{"remote end closed connection without response"};
      }
      break;
    }
    codec.dispatch(buf, *n);
  }
  if (!collector.error().empty()) return Error{"malformed response: " + collector.error()};
  return collector.take();
}

Result<UpstreamResponse> httpGet(const Upstream& upstream, std::string_view path,
                                 const HeaderList& headers, std::chrono::milliseconds timeout) {
  OutgoingRequest request;
  request.connect_host = upstream.connect_host;
  request.connect_port = upstream.connect_port;
  request.target = upstream.path_prefix + std::string(path);
  request.host_header = upstream.authority;
  bool has_accept = false;
  for (const auto& [name, value] : headers) {
    if (http::iequals(name, "host")) continue;
    has_accept = has_accept || http::iequals(name, "accept");
    request.headers.emplace_back(name, value);
  }
  if (!has_accept) request.headers.emplace_back("accept", "application/json");
  request.timeout = timeout;
  return sendGet(request);
}

}  // namespace mast::bookinfo
