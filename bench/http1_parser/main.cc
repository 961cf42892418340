// The HTTP/1.1 parser choice, measured (docs/decisions/0001-http1-parser.md).
//
//   mast-bench-http1-parser --smuggling      verdict table: which inputs each parser rejects
//   mast-bench-http1-parser [benchmark flags] parse cost per message, same inputs for all three
//
// Candidates: Debian's http-parser 2.9 used raw (callbacks only record spans), Boost.Beast's
// basic_parser (Boost 1.74, header-only, same "record spans" work), and Mast's ServerCodec
// (http-parser plus the strictness layer and HeaderMap building the proxy really runs).
#include <benchmark/benchmark.h>
#include <http_parser.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "http/http1/codec.h"

namespace {

// What curl and browsers send: request line, a dozen headers.
const std::string kGet =
    "GET /productpage?u=normal HTTP/1.1\r\n"
    "Host: bookinfo.example.com:8080\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate\r\n"
    "Cookie: user=jason; session=0123456789abcdef\r\n"
    "X-Request-Id: 8f2b9c1e-4d7a-4b8e-9f3c-2a1d5e6f7a8b\r\n"
    "Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
    "X-Forwarded-For: 10.44.0.1\r\n"
    "X-Forwarded-Proto: http\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

// A small chunked upload.
const std::string kChunkedPost =
    "POST /ratings/0 HTTP/1.1\r\n"
    "Host: ratings:9080\r\n"
    "Content-Type: application/json\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "1a\r\n{\"Reviewer1\":5,\"Reviewer2\"\r\n"
    "4\r\n:4}\n\r\n"
    "0\r\n\r\n";

// ---------------------------------------------------------------- raw http-parser

struct RawCounts {
  size_t spans = 0;
  bool complete = false;
};

int rawSpan(http_parser* p, const char*, size_t) {
  static_cast<RawCounts*>(p->data)->spans++;
  return 0;
}
int rawDone(http_parser* p) {
  static_cast<RawCounts*>(p->data)->complete = true;
  return 0;
}

const http_parser_settings& rawSettings() {
  static const http_parser_settings s = [] {
    http_parser_settings x;
    http_parser_settings_init(&x);
    x.on_url = rawSpan;
    x.on_header_field = rawSpan;
    x.on_header_value = rawSpan;
    x.on_body = rawSpan;
    x.on_message_complete = rawDone;
    return x;
  }();
  return s;
}

// Returns true when the whole input parsed as one complete request without error.
bool rawParse(std::string_view in, RawCounts& c) {
  http_parser p;
  http_parser_init(&p, HTTP_REQUEST);
  p.data = &c;
  size_t used = http_parser_execute(&p, &rawSettings(), in.data(), in.size());
  return HTTP_PARSER_ERRNO(&p) == HPE_OK && used == in.size() && c.complete;
}

// ---------------------------------------------------------------- Boost.Beast basic_parser

class BeastRequest final : public boost::beast::http::basic_parser<true> {
 public:
  size_t spans = 0;

 private:
  using error_code = boost::beast::error_code;
  using string_view = boost::beast::string_view;
  void on_request_impl(boost::beast::http::verb, string_view, string_view, int,
                       error_code&) override {
    spans++;
  }
  void on_response_impl(int, string_view, int, error_code&) override {}
  void on_field_impl(boost::beast::http::field, string_view, string_view, error_code&) override {
    spans += 2;
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(string_view body, error_code&) override {
    spans++;
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body, error_code&) override {
    spans++;
    return body.size();
  }
  void on_finish_impl(error_code&) override {}
};

bool beastParse(std::string_view in, size_t& spans) {
  BeastRequest p;
  p.eager(true);
  boost::beast::error_code ec;
  size_t off = 0;
  while (off < in.size() && !p.is_done()) {
    size_t n = p.put(boost::asio::const_buffer(in.data() + off, in.size() - off), ec);
    if (ec) return false;
    if (n == 0) break;
    off += n;
  }
  spans = p.spans;
  return p.is_done() && off == in.size();
}

// ---------------------------------------------------------------- Mast ServerCodec

class SinkCallbacks final : public mast::http1::ServerCallbacks {
 public:
  size_t headers = 0;
  bool done = false;
  bool error = false;
  void onHeaders(mast::http::HeaderMap&& h, bool end_stream) override {
    headers += h.size();
    if (end_stream) done = true;
  }
  void onData(std::string_view, bool end_stream) override {
    if (end_stream) done = true;
  }
  void onTrailers(mast::http::HeaderMap&&) override { done = true; }
  void onError(int, std::string_view) override { error = true; }
};

bool mastParse(std::string_view in, SinkCallbacks& cb) {
  mast::http1::ServerSettings settings;
  mast::http1::ServerCodec codec(cb, settings);
  size_t used = codec.dispatch(in.data(), in.size());
  return !cb.error && cb.done && used == in.size();
}

// ---------------------------------------------------------------- benchmarks

void BM_HttpParserRaw(benchmark::State& state, const std::string* in) {
  for (auto _ : state) {
    RawCounts c;
    bool ok = rawParse(*in, c);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(c.spans);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * in->size()));
}

void BM_BeastBasicParser(benchmark::State& state, const std::string* in) {
  for (auto _ : state) {
    size_t spans = 0;
    bool ok = beastParse(*in, spans);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(spans);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * in->size()));
}

void BM_MastServerCodec(benchmark::State& state, const std::string* in) {
  for (auto _ : state) {
    SinkCallbacks cb;
    bool ok = mastParse(*in, cb);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(cb.headers);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * in->size()));
}

BENCHMARK_CAPTURE(BM_HttpParserRaw, get, &kGet);
BENCHMARK_CAPTURE(BM_BeastBasicParser, get, &kGet);
BENCHMARK_CAPTURE(BM_MastServerCodec, get, &kGet);
BENCHMARK_CAPTURE(BM_HttpParserRaw, chunked_post, &kChunkedPost);
BENCHMARK_CAPTURE(BM_BeastBasicParser, chunked_post, &kChunkedPost);
BENCHMARK_CAPTURE(BM_MastServerCodec, chunked_post, &kChunkedPost);

// ---------------------------------------------------------------- smuggling table

struct Case {
  const char* name;
  std::string bytes;
};

std::vector<Case> smugglingCases() {
  const std::string line = "POST / HTTP/1.1\r\nHost: a\r\n";
  return {
      {"baseline: Content-Length body", line + "Content-Length: 5\r\n\r\nhello"},
      {"Content-Length + Transfer-Encoding", line + "Content-Length: 5\r\nTransfer-Encoding: "
                                                    "chunked\r\n\r\n0\r\n\r\n"},
      {"two different Content-Length",
       line + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello"},
      {"two equal Content-Length", line + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"},
      {"Content-Length: -1", line + "Content-Length: -1\r\n\r\n"},
      {"Content-Length: 1 2 (inner space)", line + "Content-Length: 1 2\r\n\r\nx"},
      {"invalid chunk size (zz)",
       line + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"},
      {"chunk size overflow (18 F)",
       line + "Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\nx\r\n0\r\n\r\n"},
      {"Transfer-Encoding: chunked, identity",
       line + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"},
      {"Transfer-Encoding: xchunked", line + "Transfer-Encoding: xchunked\r\n\r\n"},
      {"bare LF line endings", "GET / HTTP/1.1\nHost: a\n\n"},
      {"bare CR inside a header value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"},
      {"obs-fold (continuation line)", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"},
      {"space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"},
      {"NUL in a header value", std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 38)},
      {"chunk extension with bare LF",
       line + "Transfer-Encoding: chunked\r\n\r\n5;x\nhello\r\n0\r\n\r\n"},
  };
}

const char* verdict(bool accepted) { return accepted ? "accept" : "REJECT"; }

int printSmugglingTable() {
  std::printf("%-40s %-12s %-12s %-12s\n", "input", "http-parser", "beast", "mast codec");
  for (const auto& c : smugglingCases()) {
    RawCounts rc;
    size_t spans = 0;
    SinkCallbacks cb;
    std::printf("%-40s %-12s %-12s %-12s\n", c.name, verdict(rawParse(c.bytes, rc)),
                verdict(beastParse(c.bytes, spans)), verdict(mastParse(c.bytes, cb)));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smuggling") == 0) return printSmugglingTable();
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
