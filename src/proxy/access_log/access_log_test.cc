#include "proxy/access_log/access_log.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace mast::accesslog {
namespace {

http::StreamInfo sample(http::HeaderMap& req, http::HeaderMap& resp) {
  http::StreamInfo i;
  i.start_time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123));
  i.protocol = http::Protocol::Http11;
  i.response_code = 503;
  i.setFlag(http::ResponseFlag::UpstreamConnectionFailure);
  i.setFlag(http::ResponseFlag::NoHealthyUpstream);
  i.bytes_received = 12;
  i.bytes_sent = 91;
  i.request_complete = std::chrono::milliseconds(42);
  i.upstream_host = "10.0.0.1:80";
  i.upstream_cluster = "backend";
  i.downstream_remote_address = "127.0.0.1:5555";
  i.response_code_details = "upstream_reset_before_response_started{connection_failure}";
  req = http::HeaderMap{{":method", "GET"}, {":path", "/a"}, {":authority", "example.com"},
                        {"user-agent", "curl/7.88"}, {"x-request-id", "rid"}};
  resp = http::HeaderMap{{":status", "503"}};
  i.request_headers = &req;
  i.response_headers = &resp;
  return i;
}

std::string fmt(const std::string& f, const http::StreamInfo& i) {
  auto p = Formatter::parse(f);
  EXPECT_TRUE(p.ok()) << p.error();
  std::string out;
  (*p)->format(i, out);
  return out;
}

TEST(AccessLogTest, EnvoyDefaultFormat) {
  http::HeaderMap q, r;
  auto i = sample(q, r);
  EXPECT_EQ(fmt(kDefaultFormat, i),
            "[2023-11-14T22:13:20.123Z] \"GET /a HTTP/1.1\" 503 UH,UF 12 91 42 - \"-\" "
            "\"curl/7.88\" \"rid\" \"example.com\" \"10.0.0.1:80\"\n");
}

TEST(AccessLogTest, Operators) {
  http::HeaderMap q, r;
  auto i = sample(q, r);
  EXPECT_EQ(fmt("%REQ(X-MISSING?USER-AGENT):4%", i), "curl");
  EXPECT_EQ(fmt("%RESPONSE_CODE_DETAILS% %UPSTREAM_CLUSTER% 100%%", i),
            "upstream_reset_before_response_started{connection_failure} backend 100%");
  EXPECT_EQ(fmt("%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%", i), "127.0.0.1");
  EXPECT_EQ(fmt("%START_TIME(%Y/%m/%d %H:%M:%S.%3f)%", i), "2023/11/14 22:13:20.123");
  EXPECT_EQ(fmt("%ROUTE_NAME%|%UPSTREAM_TRANSPORT_FAILURE_REASON%", i), "-|-");
  EXPECT_FALSE(Formatter::parse("%NOT_AN_OPERATOR%").ok());
  EXPECT_FALSE(Formatter::parse("%REQ(x)").ok());
}

TEST(AccessLogTest, JsonFormatTypes) {
  http::HeaderMap q, r;
  auto i = sample(q, r);
  char path[] = "/tmp/mast-al-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  {
    auto file = std::make_shared<AccessLogFile>(path);
    ASSERT_TRUE(file->open().ok());
    std::vector<std::pair<std::string, std::unique_ptr<Formatter>>> json;
    json.emplace_back("code", std::move(*Formatter::parse("%RESPONSE_CODE%")));
    json.emplace_back("route", std::move(*Formatter::parse("%ROUTE_NAME%")));
    json.emplace_back("line", std::move(*Formatter::parse("%REQ(:METHOD)% %REQ(:PATH)%")));
    AccessLogger logger(file, nullptr, std::move(json));
    logger.log(i);
  }
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  unlink(path);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["code"], 503);
  EXPECT_TRUE(j["route"].is_null());
  EXPECT_EQ(j["line"], "GET /a");
}

TEST(AccessLogTest, FileSinkLosesNothingFromFourThreads) {
  char path[] = "/tmp/mast-al-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  {
    auto file = std::make_shared<AccessLogFile>(path);
    ASSERT_TRUE(file->open().ok());
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) {
      ts.emplace_back([&, t] {
        for (int k = 0; k < 5000; ++k) file->write("t" + std::to_string(t) + " line\n");
      });
    }
    for (auto& t : ts) t.join();
  }
  std::ifstream in(path);
  int lines = 0;
  std::string l;
  while (std::getline(in, l)) {
    EXPECT_EQ(l.size(), 7u);
    ++lines;
  }
  unlink(path);
  EXPECT_EQ(lines, 20000);
}

}  // namespace
}  // namespace mast::accesslog
