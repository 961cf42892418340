#pragma once
// Envoy access logging: format strings compiled once at config time, JSON formats, and buffered
// file sinks flushed by a background thread so workers never block on disk.
//
// Thread model: a Formatter is immutable and shared by workers. AccessLogFile::write() may be
// called from any worker: it appends to a buffer under a mutex whose critical section is a string
// append; the flusher thread swaps the buffer out and does the write(2).
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "http/stream_info.h"

namespace envoy::config::accesslog::v3 {
class AccessLog;
}

namespace mast::accesslog {

extern const char* const kDefaultFormat;

class Formatter {
 public:
  static Result<std::unique_ptr<Formatter>> parse(std::string_view format);
  void format(const http::StreamInfo& info, std::string& out) const;
  // For JSON: when the format is a single operator, its typed value (number, string or null).
  bool singleOperator() const { return pieces_.size() == 1 && pieces_[0].kind != Kind::Literal; }
  enum class ValueType { Null, Number, String };
  ValueType formatValue(const http::StreamInfo& info, std::string& out) const;

 private:
  enum class Kind {
    Literal, StartTime, Req, Resp, Trailer, Protocol, ResponseCode, ResponseFlags,
    ResponseCodeDetails, BytesReceived, BytesSent, Duration, RequestDuration, ResponseDuration,
    ResponseTxDuration, UpstreamHost, UpstreamCluster, UpstreamLocalAddress,
    UpstreamTransportFailureReason, DownstreamRemoteAddress, DownstreamRemoteAddressNoPort,
    DownstreamLocalAddress, DownstreamLocalAddressNoPort, DownstreamDirectRemoteAddress,
    DownstreamDirectRemoteAddressNoPort, RequestedServerName, RouteName,
    ConnectionTerminationDetails, UpstreamRequestAttemptCount, Hostname, FilterChainName
  };
  struct Piece {
    Kind kind = Kind::Literal;
    std::string text;  // literal, or header name / strftime format
    std::string alt;   // REQ(X?Y) alternative header
    size_t max_len = 0;
  };
  // Appends the piece's value; returns false when the value is absent ("-" was appended).
  ValueType appendPiece(const Piece& p, const http::StreamInfo& info, std::string& out) const;
  std::vector<Piece> pieces_;
};

class AccessLogFile {
 public:
  explicit AccessLogFile(std::string path);
  ~AccessLogFile();
  Status open();
  void write(std::string_view line);
  void flush();
  void reopen();
  const std::string& path() const { return path_; }

 private:
  void flusherLoop();
  std::string path_;
  int fd_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string buffer_;
  bool stop_ = false;
  bool reopen_ = false;
  std::mutex write_mu_;
  std::thread flusher_;
};

class AccessLogManager {
 public:
  Result<std::shared_ptr<AccessLogFile>> file(const std::string& path);
  void flushAll();
  void reopenAll();

 private:
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<AccessLogFile>> files_;
};

// One configured access log: a formatter (text or JSON) writing to a file.
class AccessLogger {
 public:
  AccessLogger(std::shared_ptr<AccessLogFile> file, std::unique_ptr<Formatter> text,
               std::vector<std::pair<std::string, std::unique_ptr<Formatter>>> json);
  void log(const http::StreamInfo& info) const;

 private:
  std::shared_ptr<AccessLogFile> file_;
  std::unique_ptr<Formatter> text_;
  std::vector<std::pair<std::string, std::unique_ptr<Formatter>>> json_;
};

// From envoy.config.accesslog.v3.AccessLog (file, stdout, stderr loggers).
Result<std::shared_ptr<const AccessLogger>> createAccessLogger(
    const envoy::config::accesslog::v3::AccessLog& proto, AccessLogManager& files);

}  // namespace mast::accesslog
