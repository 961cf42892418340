#include "proxy/admin/admin_server.h"

#include <gtest/gtest.h>

#include <thread>

namespace mast::proxy::admin {
namespace {

// A fake context: the admin module's seam to the server (nothing else to talk to here).
struct FakeContext : AdminContext {
  bool hc_failed = false;
  int resets = 0;
  int quits = 0;
  std::string level = "info";
  std::string last_filter;
  std::string statsText(const std::string& f, bool) override {
    last_filter = f;
    return "a.b: 1\n";
  }
  std::string statsJson(const std::string&, bool) override { return "{\"stats\":[]}"; }
  std::string statsPrometheus(const std::string&, bool) override { return "# TYPE x counter\nx 1\n"; }
  void resetCounters() override { ++resets; }
  std::string clustersText() override { return "c::default_priority::max_connections::1024\n"; }
  nlohmann::json clustersJson() override { return {{"cluster_statuses", nlohmann::json::array()}}; }
  nlohmann::json configDump(const ConfigDumpQuery& q) override { return {{"resource", q.resource}}; }
  std::string listenersText() override { return "l::127.0.0.1:1\n"; }
  nlohmann::json listenersJson() override { return {{"listener_statuses", nlohmann::json::array()}}; }
  nlohmann::json serverInfo() override { return {{"state", "LIVE"}}; }
  std::string serverState() override { return "LIVE"; }
  void setHealthCheckFailed(bool f) override { hc_failed = f; }
  bool healthCheckFailed() override { return hc_failed; }
  void drainListeners() override {}
  void quit() override { ++quits; }
  bool setLogLevel(const std::string& l) override {
    if (l != "debug" && l != "info") return false;
    level = l;
    return true;
  }
  std::string logLevel() override { return level; }
  nlohmann::json memory() override { return {{"allocated", "1"}}; }
};

TEST(AdminDispatchTest, RoutesMethodsAndQueries) {
  FakeContext c;
  EXPECT_EQ(handleAdminRequest(c, "GET", "/ready").body, "LIVE\n");
  EXPECT_EQ(handleAdminRequest(c, "GET", "/stats?filter=%5Ecluster%5C.").status, 200);
  EXPECT_EQ(c.last_filter, "^cluster\\.");
  EXPECT_EQ(handleAdminRequest(c, "GET", "/stats?format=prometheus").content_type,
            "text/plain; version=0.0.4; charset=UTF-8");
  EXPECT_EQ(handleAdminRequest(c, "GET", "/quitquitquit").status, 405);
  EXPECT_EQ(c.quits, 0);
  EXPECT_EQ(handleAdminRequest(c, "POST", "/quitquitquit").status, 200);
  EXPECT_EQ(c.quits, 1);
  EXPECT_EQ(handleAdminRequest(c, "POST", "/healthcheck/fail").status, 200);
  EXPECT_TRUE(c.hc_failed);
  EXPECT_EQ(handleAdminRequest(c, "POST", "/logging?level=debug").status, 200);
  EXPECT_EQ(c.level, "debug");
  EXPECT_EQ(handleAdminRequest(c, "POST", "/logging?level=bogus").status, 400);
  EXPECT_EQ(handleAdminRequest(c, "GET", "/config_dump?resource=dynamic_listeners").body,
            "{\n  \"resource\": \"dynamic_listeners\"\n}\n");
  EXPECT_EQ(handleAdminRequest(c, "GET", "/nope").status, 404);
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(AdminServerTest, RealCurlKeepAliveAndMalformedInput) {
  FakeContext c;
  asio::io_context loop;
  AdminServer server(loop, c);
  auto bound = server.listen(*net::parseEndpoint("127.0.0.1", 0));
  ASSERT_TRUE(bound.ok());
  std::thread t([&] { loop.run_for(std::chrono::seconds(10)); });
  std::string base = "http://" + net::toString(*bound);
  std::string out = run("curl -s -v " + base + "/ready " + base + "/stats 2>&1");
  EXPECT_NE(out.find("LIVE"), std::string::npos) << out;
  EXPECT_NE(out.find("a.b: 1"), std::string::npos);
  EXPECT_NE(out.find("Re-using existing connection"), std::string::npos) << out;
  std::string post = run("curl -s -X POST -o /dev/null -w '%{http_code}' " + base + "/reset_counters");
  EXPECT_EQ(post, "200");
  EXPECT_EQ(c.resets, 1);
  std::string bad = run("printf 'BAD\\r\\n\\r\\n' | curl -s --max-time 3 telnet://" +
                        net::toString(*bound) + " 2>/dev/null");
  EXPECT_EQ(bad.substr(0, 12), "HTTP/1.1 400") << bad;
  loop.stop();
  t.join();
}

}  // namespace
}  // namespace mast::proxy::admin
