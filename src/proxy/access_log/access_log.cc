#include "proxy/access_log/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "envoy/config/accesslog/v3/accesslog.pb.h"
#include "envoy/extensions/access_loggers/file/v3/file.pb.h"
#include "envoy/extensions/access_loggers/stream/v3/stream.pb.h"

namespace mast::accesslog {

const char* const kDefaultFormat =
    "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
    "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

namespace {

std::string hostname() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}

std::string stripPort(const std::string& a) {
  if (a.empty()) return a;
  if (a.front() == '[') {
    size_t e = a.find(']');
    return e == std::string::npos ? a : a.substr(1, e - 1);
  }
  size_t c = a.rfind(':');
  return c == std::string::npos ? a : a.substr(0, c);
}

// %START_TIME(fmt)% with Envoy's %f / %3f / %6f / %9f / %s extensions.
std::string formatTime(std::chrono::system_clock::time_point t, const std::string& fmt) {
  auto since = t.time_since_epoch();
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(since - secs).count();
  time_t tt = secs.count();
  std::tm tm{};
  gmtime_r(&tt, &tm);
  if (fmt.empty()) {
    char buf[64];
    size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    char ms[8];
    std::snprintf(ms, sizeof(ms), ".%03dZ", static_cast<int>(nanos / 1000000));
    return std::string(buf, n) + ms;
  }
  std::string expanded;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] == '%' && i + 1 < fmt.size()) {
      char c = fmt[i + 1];
      int digits = 0;
      size_t skip = 0;
      if (c == 'f') {
        digits = 9;
        skip = 1;
      } else if (c >= '1' && c <= '9' && i + 2 < fmt.size() && fmt[i + 2] == 'f') {
        digits = c - '0';
        skip = 2;
      } else if (c == 's') {
        expanded += std::to_string(tt);
        ++i;
        continue;
      }
      if (digits) {
        char buf[16];
        std::snprintf(buf, sizeof(buf), "%09lld", static_cast<long long>(nanos));
        expanded.append(buf, digits);
        i += skip;
        continue;
      }
    }
    expanded += fmt[i];
  }
  char buf[256];
  size_t n = std::strftime(buf, sizeof(buf), expanded.c_str(), &tm);
  return std::string(buf, n);
}

uint64_t ms(const std::optional<std::chrono::nanoseconds>& d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(*d).count());
}

}  // namespace

Result<std::unique_ptr<Formatter>> Formatter::parse(std::string_view format) {
  auto f = std::unique_ptr<Formatter>(new Formatter());
  static const std::map<std::string, Kind, std::less<>> kSimple{
      {"PROTOCOL", Kind::Protocol},
      {"RESPONSE_CODE", Kind::ResponseCode},
      {"RESPONSE_FLAGS", Kind::ResponseFlags},
      {"RESPONSE_CODE_DETAILS", Kind::ResponseCodeDetails},
      {"BYTES_RECEIVED", Kind::BytesReceived},
      {"BYTES_SENT", Kind::BytesSent},
      {"DURATION", Kind::Duration},
      {"REQUEST_DURATION", Kind::RequestDuration},
      {"RESPONSE_DURATION", Kind::ResponseDuration},
      {"RESPONSE_TX_DURATION", Kind::ResponseTxDuration},
      {"UPSTREAM_HOST", Kind::UpstreamHost},
      {"UPSTREAM_CLUSTER", Kind::UpstreamCluster},
      {"UPSTREAM_LOCAL_ADDRESS", Kind::UpstreamLocalAddress},
      {"UPSTREAM_TRANSPORT_FAILURE_REASON", Kind::UpstreamTransportFailureReason},
      {"DOWNSTREAM_REMOTE_ADDRESS", Kind::DownstreamRemoteAddress},
      {"DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT", Kind::DownstreamRemoteAddressNoPort},
      {"DOWNSTREAM_LOCAL_ADDRESS", Kind::DownstreamLocalAddress},
      {"DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT", Kind::DownstreamLocalAddressNoPort},
      {"DOWNSTREAM_DIRECT_REMOTE_ADDRESS", Kind::DownstreamDirectRemoteAddress},
      {"DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT", Kind::DownstreamDirectRemoteAddressNoPort},
      {"REQUESTED_SERVER_NAME", Kind::RequestedServerName},
      {"ROUTE_NAME", Kind::RouteName},
      {"CONNECTION_TERMINATION_DETAILS", Kind::ConnectionTerminationDetails},
      {"UPSTREAM_REQUEST_ATTEMPT_COUNT", Kind::UpstreamRequestAttemptCount},
      {"HOSTNAME", Kind::Hostname},
      {"FILTER_CHAIN_NAME", Kind::FilterChainName},
      {"START_TIME", Kind::StartTime},
  };
  std::string literal;
  auto flushLiteral = [&] {
    if (!literal.empty()) {
      f->pieces_.push_back({Kind::Literal, literal, "", 0});
      literal.clear();
    }
  };
  size_t i = 0;
  while (i < format.size()) {
    char c = format[i];
    if (c != '%') {
      literal += c;
      ++i;
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '%') {
      literal += '%';
      i += 2;
      continue;
    }
    size_t end = format.find('%', i + 1);
    // START_TIME(...) may contain '%' inside the parentheses.
    size_t paren = format.find('(', i + 1);
    if (paren != std::string_view::npos && (end == std::string_view::npos || paren < end)) {
      size_t close = format.find(')', paren);
      if (close == std::string_view::npos) return Error{"unterminated '(' in access log format"};
      end = format.find('%', close);
    }
    if (end == std::string_view::npos) {
      return Error{"unterminated operator in access log format at offset " + std::to_string(i)};
    }
    std::string_view op = format.substr(i + 1, end - i - 1);
    i = end + 1;
    Piece p;
    std::string_view name = op;
    std::string_view arg;
    size_t max_len = 0;
    if (size_t lp = op.find('('); lp != std::string_view::npos) {
      size_t rp = op.rfind(')');
      name = op.substr(0, lp);
      arg = op.substr(lp + 1, rp - lp - 1);
      if (rp + 1 < op.size() && op[rp + 1] == ':') {
        max_len = std::stoul(std::string(op.substr(rp + 2)));
      }
    }
    p.max_len = max_len;
    if (name == "REQ" || name == "RESP" || name == "TRAILER") {
      p.kind = name == "REQ" ? Kind::Req : (name == "RESP" ? Kind::Resp : Kind::Trailer);
      std::string a(arg);
      size_t q = a.find('?');
      p.text = a.substr(0, q);
      if (q != std::string::npos) p.alt = a.substr(q + 1);
      http::toLowerInPlace(p.text);
      http::toLowerInPlace(p.alt);
      if (p.text.empty()) return Error{"%" + std::string(name) + "()% needs a header name"};
    } else if (auto it = kSimple.find(name); it != kSimple.end()) {
      p.kind = it->second;
      p.text = std::string(arg);
    } else {
      return Error{"unknown access log operator '%" + std::string(op) + "%'"};
    }
    flushLiteral();
    f->pieces_.push_back(std::move(p));
  }
  flushLiteral();
  return f;
}

Formatter::ValueType Formatter::appendPiece(const Piece& p, const http::StreamInfo& info,
                                            std::string& out) const {
  auto str = [&](const std::string& v) {
    if (v.empty()) {
      out += '-';
      return ValueType::Null;
    }
    out += p.max_len && v.size() > p.max_len ? v.substr(0, p.max_len) : v;
    return ValueType::String;
  };
  auto num = [&](uint64_t v) {
    out += std::to_string(v);
    return ValueType::Number;
  };
  auto dur = [&](const std::optional<std::chrono::nanoseconds>& d) {
    if (!d) {
      out += '-';
      return ValueType::Null;
    }
    return num(ms(d));
  };
  auto header = [&](const http::HeaderMap* h) {
    if (!h) return str("");
    const std::string* v = h->get(p.text);
    if (!v && !p.alt.empty()) v = h->get(p.alt);
    return str(v ? *v : "");
  };
  switch (p.kind) {
    case Kind::Literal:
      out += p.text;
      return ValueType::String;
    case Kind::StartTime:
      return str(formatTime(info.start_time, p.text));
    case Kind::Req:
      return header(info.request_headers);
    case Kind::Resp:
      return header(info.response_headers);
    case Kind::Trailer:
      return header(info.response_trailers);
    case Kind::Protocol:
      if (!info.request_headers) return str("");
      return str(std::string(http::protocolString(info.protocol)));
    case Kind::ResponseCode:
      return num(info.response_code.value_or(0));
    case Kind::ResponseFlags:
      out += http::responseFlagsString(info.response_flags);
      return ValueType::String;
    case Kind::ResponseCodeDetails:
      return str(info.response_code_details);
    case Kind::BytesReceived:
      return num(info.bytes_received);
    case Kind::BytesSent:
      return num(info.bytes_sent);
    case Kind::Duration:
      return dur(info.request_complete);
    case Kind::RequestDuration:
      return dur(info.last_downstream_rx_byte);
    case Kind::ResponseDuration:
      return dur(info.first_upstream_rx_byte);
    case Kind::ResponseTxDuration:
      if (!info.first_upstream_rx_byte || !info.last_downstream_tx_byte) return str("");
      return num(ms(std::optional<std::chrono::nanoseconds>(*info.last_downstream_tx_byte -
                                                            *info.first_upstream_rx_byte)));
    case Kind::UpstreamHost:
      return str(info.upstream_host);
    case Kind::UpstreamCluster:
      return str(info.upstream_cluster);
    case Kind::UpstreamLocalAddress:
      return str(info.upstream_local_address);
    case Kind::UpstreamTransportFailureReason:
      return str(info.upstream_transport_failure_reason);
    case Kind::DownstreamRemoteAddress:
      return str(info.downstream_remote_address);
    case Kind::DownstreamRemoteAddressNoPort:
      return str(stripPort(info.downstream_remote_address));
    case Kind::DownstreamLocalAddress:
      return str(info.downstream_local_address);
    case Kind::DownstreamLocalAddressNoPort:
      return str(stripPort(info.downstream_local_address));
    case Kind::DownstreamDirectRemoteAddress:
      return str(info.downstream_direct_remote_address);
    case Kind::DownstreamDirectRemoteAddressNoPort:
      return str(stripPort(info.downstream_direct_remote_address));
    case Kind::RequestedServerName:
      return str(info.requested_server_name);
    case Kind::RouteName:
      return str(info.route_name);
    case Kind::ConnectionTerminationDetails:
      return str(info.connection_termination_details);
    case Kind::UpstreamRequestAttemptCount:
      return num(info.attempt_count);
    case Kind::Hostname: {
      static const std::string kHost = hostname();
      return str(kHost);
    }
    case Kind::FilterChainName:
      return str(info.filter_chain_name);
  }
  return ValueType::Null;
}

void Formatter::format(const http::StreamInfo& info, std::string& out) const {
  for (const auto& p : pieces_) appendPiece(p, info, out);
}

Formatter::ValueType Formatter::formatValue(const http::StreamInfo& info, std::string& out) const {
  if (singleOperator()) return appendPiece(pieces_[0], info, out);
  format(info, out);
  return ValueType::String;
}

// === Files ===

AccessLogFile::AccessLogFile(std::string path) : path_(std::move(path)) {}

AccessLogFile::~AccessLogFile() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  flush();
  if (fd_ > 2) ::close(fd_);
}

Status AccessLogFile::open() {
  if (path_ == "/dev/stdout") {
    fd_ = 1;
  } else if (path_ == "/dev/stderr") {
    fd_ = 2;
  } else {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) return Error{"cannot open access log '" + path_ + "': " + std::strerror(errno)};
  }
  flusher_ = std::thread([this] { flusherLoop(); });
  return {};
}

void AccessLogFile::write(std::string_view line) {
  bool wake;
  {
    std::lock_guard<std::mutex> l(mu_);
    buffer_.append(line);
    wake = buffer_.size() > 64 * 1024;
  }
  if (wake) cv_.notify_one();
}

void AccessLogFile::flush() {
  std::string out;
  {
    std::lock_guard<std::mutex> l(mu_);
    out.swap(buffer_);
  }
  std::lock_guard<std::mutex> wl(write_mu_);
  size_t off = 0;
  while (off < out.size() && fd_ >= 0) {
    ssize_t n = ::write(fd_, out.data() + off, out.size() - off);
    if (n <= 0) {
      if (errno == EINTR) continue;
      break;
    }
    off += static_cast<size_t>(n);
  }
}

void AccessLogFile::reopen() {
  std::lock_guard<std::mutex> l(mu_);
  reopen_ = true;
  cv_.notify_one();
}

void AccessLogFile::flusherLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stop_) {
    cv_.wait_for(l, std::chrono::seconds(1),
                 [this] { return stop_ || reopen_ || buffer_.size() > 64 * 1024; });
    bool reopen = reopen_;
    reopen_ = false;
    l.unlock();
    flush();
    if (reopen && fd_ > 2) {
      std::lock_guard<std::mutex> wl(write_mu_);
      int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::close(fd_);
        fd_ = fd;
      }
    }
    l.lock();
  }
}

Result<std::shared_ptr<AccessLogFile>> AccessLogManager::file(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  auto& f = files_[path];
  if (!f) {
    auto nf = std::make_shared<AccessLogFile>(path);
    if (auto s = nf->open(); !s) {
      files_.erase(path);
      return Error{s.error()};
    }
    f = nf;
  }
  return f;
}

void AccessLogManager::flushAll() {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [p, f] : files_) f->flush();
}

void AccessLogManager::reopenAll() {
  std::lock_guard<std::mutex> l(mu_);
  for (auto& [p, f] : files_) f->reopen();
}

// === Loggers ===

AccessLogger::AccessLogger(std::shared_ptr<AccessLogFile> file, std::unique_ptr<Formatter> text,
                           std::vector<std::pair<std::string, std::unique_ptr<Formatter>>> json)
    : file_(std::move(file)), text_(std::move(text)), json_(std::move(json)) {}

void AccessLogger::log(const http::StreamInfo& info) const {
  std::string line;
  if (text_) {
    line.reserve(256);
    text_->format(info, line);
  } else {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    std::string v;
    for (const auto& [key, f] : json_) {
      v.clear();
      auto type = f->formatValue(info, v);
      if (type == Formatter::ValueType::Null) {
        j[key] = nullptr;
      } else if (type == Formatter::ValueType::Number) {
        j[key] = std::stoull(v);
      } else {
        j[key] = v;
      }
    }
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += '\n';
  }
  file_->write(line);
}

namespace {

Result<std::shared_ptr<const AccessLogger>> build(
    std::shared_ptr<AccessLogFile> file,
    const envoy::config::core::v3::SubstitutionFormatString* fmt, const std::string& legacy_format,
    const google::protobuf::Struct* legacy_json) {
  std::vector<std::pair<std::string, std::unique_ptr<Formatter>>> json;
  auto addJson = [&](const google::protobuf::Struct& s) -> Status {
    for (const auto& [k, v] : s.fields()) {
      std::string f = v.has_string_value() ? v.string_value() : v.DebugString();
      auto p = Formatter::parse(f);
      if (!p) return Error{"json_format." + k + ": " + p.error()};
      json.emplace_back(k, std::move(*p));
    }
    std::sort(json.begin(), json.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    return {};
  };
  if (fmt && fmt->has_json_format()) {
    if (auto s = addJson(fmt->json_format()); !s) return Error{s.error()};
    return std::make_shared<const AccessLogger>(file, nullptr, std::move(json));
  }
  if (legacy_json && legacy_json->fields_size() > 0) {
    if (auto s = addJson(*legacy_json); !s) return Error{s.error()};
    return std::make_shared<const AccessLogger>(file, nullptr, std::move(json));
  }
  std::string text = kDefaultFormat;
  if (fmt && fmt->has_text_format_source()) {
    text = fmt->text_format_source().inline_string();
  } else if (fmt && !fmt->text_format().empty()) {
    text = fmt->text_format();
  } else if (!legacy_format.empty()) {
    text = legacy_format;
  }
  auto f = Formatter::parse(text);
  if (!f) return Error{f.error()};
  return std::make_shared<const AccessLogger>(file, std::move(*f), std::move(json));
}

}  // namespace

Result<std::shared_ptr<const AccessLogger>> createAccessLogger(
    const envoy::config::accesslog::v3::AccessLog& proto, AccessLogManager& files) {
  const auto& any = proto.typed_config();
  if (any.Is<envoy::extensions::access_loggers::file::v3::FileAccessLog>()) {
    envoy::extensions::access_loggers::file::v3::FileAccessLog c;
    any.UnpackTo(&c);
    if (c.path().empty()) return Error{"typed_config.path: required"};
    auto file = files.file(c.path());
    if (!file) return Error{file.error()};
    return build(*file, c.has_log_format() ? &c.log_format() : nullptr, c.format(),
                 c.has_json_format() ? &c.json_format() : nullptr);
  }
  if (any.Is<envoy::extensions::access_loggers::stream::v3::StdoutAccessLog>() ||
      any.Is<envoy::extensions::access_loggers::stream::v3::StderrAccessLog>()) {
    bool out = any.Is<envoy::extensions::access_loggers::stream::v3::StdoutAccessLog>();
    envoy::extensions::access_loggers::stream::v3::StdoutAccessLog c;
    envoy::extensions::access_loggers::stream::v3::StderrAccessLog e;
    const envoy::config::core::v3::SubstitutionFormatString* fmt = nullptr;
    if (out) {
      any.UnpackTo(&c);
      if (c.has_log_format()) fmt = &c.log_format();
    } else {
      any.UnpackTo(&e);
      if (e.has_log_format()) fmt = &e.log_format();
    }
    auto file = files.file(out ? "/dev/stdout" : "/dev/stderr");
    if (!file) return Error{file.error()};
    return build(*file, fmt, "", nullptr);
  }
  return Error{"typed_config: unsupported access logger '" + any.type_url() + "'"};
}

}  // namespace mast::accesslog
