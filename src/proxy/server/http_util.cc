#include "proxy/server/http_util.h"

#include <chrono>
#include <ctime>
#include <vector>

#include "proxy/server/worker.h"

namespace mast::proxy::server {

std::optional<std::string> normalizePath(std::string_view path, bool normalize,
                                         bool merge_slashes) {
  size_t q = path.find_first_of("?#");
  std::string_view p = path.substr(0, q);
  std::string_view rest = q == std::string_view::npos ? std::string_view() : path.substr(q);
  if (p.empty() || p[0] != '/') return std::string(path);
  std::vector<std::string_view> segs;
  size_t i = 1;
  bool trailing_slash = p.size() > 1 && p.back() == '/';
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view seg = p.substr(i, j - i);
    if (normalize && seg == ".") {
      if (j == p.size()) trailing_slash = true;
    } else if (normalize && seg == "..") {
      if (!segs.empty()) segs.pop_back();
      if (j == p.size()) trailing_slash = true;
    } else if (seg.empty() && merge_slashes) {
      // Collapse "//".
    } else {
      segs.push_back(seg);
    }
    i = j + 1;
  }
  std::string out = "/";
  for (size_t k = 0; k < segs.size(); ++k) {
    if (k) out += '/';
    out += segs[k];
  }
  if (trailing_slash && out.size() > 1 && out.back() != '/') out += '/';
  out += rest;
  return out;
}

static std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::string> xffClientAddress(std::string_view xff, uint32_t trusted_hops) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= xff.size()) {
    size_t c = xff.find(',', start);
    if (c == std::string_view::npos) c = xff.size();
    parts.push_back(trim(xff.substr(start, c - start)));
    start = c + 1;
  }
  if (trusted_hops == 0 || parts.size() < trusted_hops) return std::nullopt;
  std::string_view ip = parts[parts.size() - trusted_hops];
  if (ip.empty()) return std::nullopt;
  return std::string(ip) + ":0";
}

std::string uuid4(Worker& w) {
  uint64_t a = w.random();
  uint64_t b = w.random();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  int pos = 0;
  auto put = [&](uint64_t v, int nibbles) {
    for (int k = nibbles - 1; k >= 0; --k) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
      out[pos++] = kHex[(v >> (k * 4)) & 0xf];
    }
  };
  put(a, 16);
  put(b, 16);
  return out;
}

const std::string& httpDate(Worker&) {
  thread_local std::string cached;
  thread_local time_t cached_sec = 0;
  time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  if (now != cached_sec) {
    cached_sec = now;
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    size_t n = std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached.assign(buf, n);
  }
  return cached;
}

int grpcStatusForHttp(int http_status) {
  switch (http_status) {
    case 400:
      return 13;  // INTERNAL
    case 401:
      return 16;  // UNAUTHENTICATED
    case 403:
      return 7;  // PERMISSION_DENIED
    case 404:
      return 12;  // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;  // UNAVAILABLE
    default:
      return 2;  // UNKNOWN
  }
}

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

}  // namespace mast::proxy::server
