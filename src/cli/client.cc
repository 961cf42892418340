#include "cli/client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <cerrno>
#include <cstdlib>
#include <string_view>

namespace mast::cli {

std::string urlEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

namespace {

// A blocking connect bounded by `timeout` (an address nobody answers, e.g. a proxy's IP that is
// not routed from here, would otherwise wait for the kernel's SYN retries, minutes). The socket
// is blocking again afterwards, for the SO_RCVTIMEO/SO_SNDTIMEO reads and writes that follow.
std::error_code connectWithin(asio::ip::tcp::socket& socket, const asio::ip::tcp::endpoint& ep,
                              std::chrono::milliseconds timeout) {
  int fd = ::socket(ep.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return {errno, std::system_category()};
  auto fail = [fd](int e) {
    ::close(fd);
    return std::error_code(e, std::system_category());
  };
  if (::connect(fd, ep.data(), static_cast<socklen_t>(ep.size())) != 0) {
    if (errno != EINPROGRESS) return fail(errno);
    pollfd pfd{fd, POLLOUT, 0};
    int n;
    do {
      n = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
    } while (n < 0 && errno == EINTR);
    if (n < 0) return fail(errno);
    if (n == 0) return fail(ETIMEDOUT);
    int so_error = 0;
    socklen_t len = sizeof(so_error);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) return fail(so_error);
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  std::error_code ec;
  socket.assign(ep.protocol(), fd, ec);
  if (ec) ::close(fd);
  return ec;
}

// One request; `peer` names the other side in errors ("mastd", "proxy admin").
Result<ApiResponse> exchange(std::string_view peer, const std::string& address,
                             const std::string& method, const std::string& path_and_query,
                             const std::string& body, std::chrono::milliseconds timeout) {
  const std::string who(peer);
  size_t colon = address.rfind(':');
  if (colon == std::string::npos)
    return Error{who + " address '" + address + "': expected host:port"};
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  asio::ip::tcp::socket socket(io);
  std::error_code ec;
  // A literal address connects without the resolver: getaddrinfo's AI_ADDRCONFIG (asio's
  // default) finds no address family in a network namespace that has only loopback, which is
  // where a proxy's admin is reached (proxy-config PROXY).
  auto literal = asio::ip::make_address(host, ec);
  if (!ec) {
    auto p = std::strtoul(port.c_str(), nullptr, 10);
    if (port.empty() || p > 65535 || port.find_first_not_of("0123456789") != std::string::npos)
      return Error{"address '" + address + "': bad port"};
    ec = connectWithin(socket, asio::ip::tcp::endpoint(literal, static_cast<uint16_t>(p)), timeout);
  } else {
    auto eps = resolver.resolve(host, port, ec);
    if (ec) return Error{"cannot resolve " + address + ": " + ec.message()};
    asio::connect(socket, eps, ec);
  }
  if (ec) {
    return Error{"cannot reach " + who + " at " + address + ": " + ec.message() +
                 (peer == "mastd" ? " (is mastd running? set --mastd or MASTD_ADDR)" : "")};
  }
  // A bounded wait: SO_RCVTIMEO/SO_SNDTIMEO on the blocking socket.
  struct timeval tv {
    static_cast<time_t>(timeout.count() / 1000),
        static_cast<suseconds_t>((timeout.count() % 1000) * 1000)
  };
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::string req = method + " " + path_and_query + " HTTP/1.1\r\nhost: " + address +
                    "\r\nuser-agent: mastctl\r\nconnection: close\r\ncontent-length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  // EINTR is retried: with SO_RCVTIMEO the kernel does not restart an interrupted recv, and
  // with asio's io_uring backend (MAST_IO_URING) the teardown of an earlier io_context's ring
  // interrupts this thread's next blocking call.
  for (size_t sent = 0; sent < req.size();) {
    sent += socket.write_some(asio::buffer(req.data() + sent, req.size() - sent), ec);
    if (ec && ec != asio::error::interrupted)
      return Error{"sending to " + who + ": " + ec.message()};
  }
  std::string resp;
  char buf[16384];
  for (;;) {
    size_t n = socket.read_some(asio::buffer(buf), ec);
    resp.append(buf, n);
    if (ec == asio::error::eof) break;
    if (ec == asio::error::interrupted) continue;
    if (ec) return Error{"reading from " + who + ": " + ec.message()};
  }
  size_t head_end = resp.find("\r\n\r\n");
  if (resp.compare(0, 5, "HTTP/") != 0 || head_end == std::string::npos) {
    return Error{who + " sent a malformed response"};
  }
  ApiResponse out;
  out.status = std::atoi(resp.c_str() + resp.find(' ') + 1);
  std::string head = resp.substr(0, head_end);
  for (size_t pos = head.find("\r\n"); pos != std::string::npos;) {
    size_t next = head.find("\r\n", pos + 2);
    std::string line =
        head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    size_t c = line.find(':');
    if (c != std::string::npos) {
      std::string name = line.substr(0, c);
      for (auto& ch : name) ch = static_cast<char>(std::tolower(ch));
      if (name == "content-type")
        out.content_type = line.substr(line.find_first_not_of(' ', c + 1));
    }
    pos = next;
  }
  // The server closes after the response; the body is everything after the head.
  out.body = resp.substr(head_end + 4);
  return out;
}

}  // namespace

Result<ApiResponse> request(const std::string& address, const std::string& method,
                            const std::string& path_and_query, const std::string& body,
                            std::chrono::milliseconds timeout) {
  return exchange("mastd", address, method, path_and_query, body, timeout);
}

Result<ApiResponse> adminGet(const std::string& address, const std::string& path,
                             std::chrono::milliseconds timeout) {
  return exchange("proxy admin", address, "GET", path, "", timeout);
}

}  // namespace mast::cli
