// mast-xds-load: simulates N sidecars against mastd over ADS and measures convergence.
//
//   mast-xds-load generate --dir DIR [shape]      writes the synthetic mesh (mesh.h)
//   mast-xds-load run --xds HOST:PORT --http HOST:PORT --mastd-pid PID [shape] [--proxies N]
//
// `run`: connects N proxies (streams spread over channels that do not share a connection),
// waits until all are synced, reads mastd's RSS before and after; then changes a
// VirtualService through mastd's apply API and measures, per proxy, the time from the request to
// the receipt (and ACK) of the new RDS; then moves one endpoint (a WorkloadEntry address) and
// measures the time to the EDS of every proxy subscribed to that cluster, checking that no
// CDS/LDS/RDS goes out for it. Prints a table and one `RESULT {json}` line.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "mesh.h"
#include "sim_proxy.h"

namespace mast::bench {
namespace {

using json = nlohmann::json;
namespace discovery = envoy::service::discovery::v3;

envoy::config::core::v3::Node makeNode(const MeshShape& shape, int j) {
  auto w = proxyWorkload(shape, j);
  std::string name = fmt::format("{}-{}", w.name, j);  // unique pod-like name
  envoy::config::core::v3::Node node;
  node.set_id("sidecar~" + w.address + "~" + name + "." + w.ns + "~" + w.ns + ".svc.cluster.local");
  node.set_cluster(name + "." + w.ns);
  node.set_user_agent_name("mast-xds-load");
  auto& f = *node.mutable_metadata()->mutable_fields();
  auto& labels = *f["LABELS"].mutable_struct_value()->mutable_fields();
  for (const auto& [k, v] : w.labels) labels[k].set_string_value(v);
  // What mast-agent writes (src/agent/bootstrap.cc).
  f["NAMESPACE"].set_string_value(w.ns);
  f["NAME"].set_string_value(name);
  f["WORKLOAD_NAME"].set_string_value(w.labels["app"]);
  f["SERVICE_ACCOUNT"].set_string_value(w.service_account);
  f["INSTANCE_IPS"].set_string_value(w.address);
  f["CLUSTER_ID"].set_string_value("Kubernetes");
  f["INTERCEPTION_MODE"].set_string_value("REDIRECT");
  return node;
}

struct Rss {
  long rss_kb = 0, hwm_kb = 0;
};

Rss readRss(int pid) {
  Rss r;
  if (pid <= 0) return r;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) r.rss_kb = std::stol(line.substr(6));
    if (line.rfind("VmHWM:", 0) == 0) r.hwm_kb = std::stol(line.substr(6));
  }
  return r;
}

// One HTTP/1.1 request to mastd's API (it serves one request per connection).
std::pair<int, std::string> httpPost(const std::string& hostport, const std::string& path,
                                     const std::string& body) {
  auto colon = hostport.rfind(':');
  std::string host = hostport.substr(0, colon);
  int port = std::stoi(hostport.substr(colon + 1));
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &sa.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return {0, "connect failed"};
  }
  std::string req = fmt::format(
      "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/yaml\r\n"
      "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
      path, hostport, body.size(), body);
  for (size_t off = 0; off < req.size();) {
    ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) resp.append(buf, n);
  ::close(fd);
  int status = 0;
  if (resp.rfind("HTTP/1.", 0) == 0 && resp.size() > 12) status = std::atoi(resp.c_str() + 9);
  auto hdr_end = resp.find("\r\n\r\n");
  return {status, hdr_end == std::string::npos ? resp : resp.substr(hdr_end + 4)};
}

struct Stats {
  size_t n = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
};

Stats stats(std::vector<double> v) {
  Stats s;
  s.n = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto q = [&](double p) {
    size_t i = static_cast<size_t>(std::ceil(p * v.size()));
    return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
  };
  s.p50 = q(0.50);
  s.p90 = q(0.90);
  s.p99 = q(0.99);
  s.max = v.back();
  return s;
}

json statsJson(const Stats& s) {
  return {{"n", s.n}, {"p50_ms", s.p50}, {"p90_ms", s.p90}, {"p99_ms", s.p99}, {"max_ms", s.max}};
}

std::string fmtStats(const Stats& s) {
  return fmt::format("p50 {:7.1f}  p90 {:7.1f}  p99 {:7.1f}  max {:7.1f} ms  (n={})", s.p50, s.p90,
                     s.p99, s.max, s.n);
}

struct RunOptions {
  MeshShape shape;
  std::string xds = "127.0.0.1:15010";
  std::string http = "127.0.0.1:15014";
  int pid = 0;
  int proxies = 2000;
  int per_channel = 100;
  int phase_timeout_s = 120;
  int rounds = 3;
  int settle_ms = 2000;
  int quiet_ms = 500;
  std::string json_out;
};

class Driver {
 public:
  explicit Driver(RunOptions o) : o_(std::move(o)) {}

  int run() {
    json result;
    result["proxies"] = o_.proxies;
    result["services"] = o_.shape.services;
    result["endpoints"] = o_.shape.services * o_.shape.endpoints_per_service;
    result["sidecar_scope"] = o_.shape.sidecar_scope;
    Rss before = readRss(o_.pid);
    result["rss_before_mb"] = before.rss_kb / 1024.0;

    // --- Connect ---------------------------------------------------------------------------
    int channels = (o_.proxies + o_.per_channel - 1) / o_.per_channel;
    for (int c = 0; c < channels; ++c) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
      args.SetInt("mast.xds_load.channel", c);             // ...and channels that differ
      args.SetMaxReceiveMessageSize(-1);
      auto ch = grpc::CreateCustomChannel(o_.xds, grpc::InsecureChannelCredentials(), args);
      stubs_.push_back(std::make_unique<AdsRawStub>(ch));
      channels_.push_back(std::move(ch));
    }
    int64_t t0 = nowNs();
    for (int j = 0; j < o_.proxies; ++j) {
      proxies_.push_back(std::make_unique<SimProxy>(makeNode(o_.shape, j), verifier_, counters_));
    }
    for (int j = 0; j < o_.proxies; ++j) proxies_[j]->start(stubs_[j / o_.per_channel].get());
    long peak_kb = 0;
    bool all = waitFor(
        [&] {
          peak_kb = std::max(peak_kb, readRss(o_.pid).rss_kb);
          for (auto& p : proxies_) {
            if (p->syncedNs() == 0) return false;
          }
          return true;
        },
        o_.phase_timeout_s * 1000);
    std::vector<double> sync_ms;
    int64_t last = t0;
    for (auto& p : proxies_) {
      if (int64_t s = p->syncedNs()) {
        sync_ms.push_back((s - t0) / 1e6);
        last = std::max(last, s);
      }
    }
    auto sync = stats(sync_ms);
    double all_synced_s = all ? (last - t0) / 1e9 : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(o_.settle_ms));
    Rss after = readRss(o_.pid);
    result["connect"] = statsJson(sync);
    result["all_synced_s"] = all_synced_s;
    result["synced"] = sync.n;
    result["rss_peak_during_connect_mb"] = peak_kb / 1024.0;
    result["rss_after_mb"] = after.rss_kb / 1024.0;
    result["hwm_mb"] = after.hwm_kb / 1024.0;
    result["mb_per_proxy"] = (after.rss_kb - before.rss_kb) / 1024.0 / o_.proxies;
    result["initial_bytes"] = typeCounts(counters_.bytes);
    result["initial_responses"] = typeCounts(counters_.responses);
    fmt::print("connect: {} / {} proxies synced in {:.2f} s; per proxy {}\n", sync.n, o_.proxies,
               all_synced_s, fmtStats(sync));
    fmt::print(
        "mastd RSS: {:.1f} MB before, {:.1f} MB after ({:.3f} MB per proxy), peak {:.1f} MB\n",
        before.rss_kb / 1024.0, after.rss_kb / 1024.0,
        (after.rss_kb - before.rss_kb) / 1024.0 / o_.proxies, peak_kb / 1024.0);
    if (!all) {
      fmt::print("FAIL: not every proxy synced within {} s\n", o_.phase_timeout_s);
      return finish(result, 2);
    }

    // --- VirtualService change ---------------------------------------------------------------
    // Needed by the proxies that import the service (all of them without Sidecar scoping).
    auto svc = serviceAt(o_.shape, kChangedService);
    std::string cluster_v = "outbound|8080||" + svc.host;
    auto imports = [&](SimProxy& p) { return p.subscribesEds(cluster_v); };
    std::vector<double> vs_ms;
    json vs_rounds = json::array();
    bool vs_ok = true;
    for (int r = 0; r < o_.rounds; ++r) {
      int weight = r % 2 == 0 ? 10 : 90;
      auto yaml = virtualServiceYaml(o_.shape, kChangedService, weight);
      auto round = change(kRds, imports, [&] { return apply(yaml); });
      vs_ok = vs_ok && round.ok;
      vs_ms.insert(vs_ms.end(), round.ms.begin(), round.ms.end());
      vs_rounds.push_back(round.toJson());
      fmt::print("VS change {}: {}/{} proxies got RDS; {}; other pushes {}\n", r + 1,
                 round.ms.size(), round.needed, fmtStats(stats(round.ms)), round.othersText());
    }
    result["vs_change"] = statsJson(stats(vs_ms));
    result["vs_rounds"] = vs_rounds;

    // --- Endpoint-only change ----------------------------------------------------------------
    std::vector<double> ep_ms;
    json ep_rounds = json::array();
    bool ep_ok = true;
    int k = changedEndpoint(o_.shape);
    for (int r = 0; r < o_.rounds; ++r) {
      std::string addr = r % 2 == 0 ? fmt::format("10.250.0.{}", r + 1) : std::string();
      auto yaml = workloadEntryYaml(o_.shape, kChangedService, k, addr);
      auto round = change(kEds, imports, [&] { return apply(yaml); });
      bool clean = round.others[kCds] == 0 && round.others[kLds] == 0 && round.others[kRds] == 0;
      ep_ok = ep_ok && round.ok && clean;
      ep_ms.insert(ep_ms.end(), round.ms.begin(), round.ms.end());
      ep_rounds.push_back(round.toJson());
      fmt::print("endpoint change {}: {}/{} proxies got EDS; {}; other pushes {}{}\n", r + 1,
                 round.ms.size(), round.needed, fmtStats(stats(round.ms)), round.othersText(),
                 clean ? "" : "  <-- not EDS-only");
    }
    result["endpoint_change"] = statsJson(stats(ep_ms));
    result["endpoint_rounds"] = ep_rounds;
    result["endpoint_change_eds_only"] = ep_ok;
    Rss end = readRss(o_.pid);
    result["rss_end_mb"] = end.rss_kb / 1024.0;
    result["distinct_resources_parsed"] = verifier_.parsed();
    result["invalid_resources"] = counters_.invalid.load();
    result["wrong_type_resources"] = counters_.wrong_type.load();
    result["streams_ended_early"] = counters_.streams_ended.load();
    int rc = 0;
    if (counters_.invalid || counters_.wrong_type) {
      fmt::print("FAIL: {} resources do not parse, {} have the wrong type; first: {}\n",
                 counters_.invalid.load(), counters_.wrong_type.load(), counters_.first_error);
      rc = 3;
    }
    if (counters_.streams_ended) {
      fmt::print("FAIL: {} streams ended early\n", counters_.streams_ended.load());
      rc = 3;
    }
    if (!vs_ok || !ep_ok) rc = rc ? rc : 4;
    return finish(result, rc);
  }

 private:
  struct Round {
    bool ok = false;
    size_t needed = 0;
    std::vector<double> ms;
    std::array<uint64_t, kTypes> others{};  // responses of the other types during the round
    int64_t apply_ms = 0;
    json toJson() const {
      json o = statsJson(stats(ms));
      o["needed"] = needed;
      o["ok"] = ok;
      o["apply_ms"] = apply_ms;
      for (int t = 0; t < kTypes; ++t) o[std::string("pushes_") + typeName(t)] = others[t];
      return o;
    }
    std::string othersText() const {
      return fmt::format("CDS {} EDS {} LDS {} RDS {}", others[kCds], others[kEds], others[kLds],
                         others[kRds]);
    }
  };

  // Marks every proxy, runs `act` at t0, then waits until each proxy that `needs` it got a
  // response of `type`; then waits the quiet period and counts every response of the window.
  template <class Act>
  Round change(int type, std::function<bool(SimProxy&)> needs, Act act) {
    Round round;
    std::vector<SimProxy*> needed;
    for (auto& p : proxies_) {
      if (!needs || needs(*p)) needed.push_back(p.get());
    }
    round.needed = needed.size();
    for (auto& p : proxies_) p->mark();
    std::array<uint64_t, kTypes> base{};
    for (int t = 0; t < kTypes; ++t) base[t] = counters_.responses[t].load();
    int64_t t0 = nowNs();
    if (!act()) return round;
    round.apply_ms = (nowNs() - t0) / 1000000;
    round.ok = waitFor(
        [&] {
          for (auto* p : needed) {
            if (p->view(type).first_after_mark_ns == 0) return false;
          }
          return true;
        },
        o_.phase_timeout_s * 1000);
    for (auto* p : needed) {
      if (int64_t t = p->view(type).first_after_mark_ns) round.ms.push_back((t - t0) / 1e6);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(o_.quiet_ms));
    for (int t = 0; t < kTypes; ++t) {
      uint64_t n = counters_.responses[t].load() - base[t];
      round.others[t] = n;
    }
    return round;
  }

  bool apply(const std::string& yaml) {
    auto [status, body] = httpPost(o_.http, "/api/v1/apply?source=mast-xds-load", yaml);
    if (status != 200) {
      fmt::print("apply failed: HTTP {}: {}\n", status, body);
      return false;
    }
    return true;
  }

  bool waitFor(const std::function<bool()>& cond, int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (cond()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return cond();
  }

  static json typeCounts(const std::array<std::atomic<uint64_t>, kTypes>& a) {
    json o;
    for (int t = 0; t < kTypes; ++t) o[typeName(t)] = a[t].load();
    return o;
  }

  int finish(json& result, int rc) {
    result["exit_code"] = rc;
    for (auto& p : proxies_) p->cancel();
    waitFor(
        [&] {
          for (auto& p : proxies_) {
            if (!p->done()) return false;
          }
          return true;
        },
        10000);
    std::string line = result.dump();
    fmt::print("RESULT {}\n", line);
    if (!o_.json_out.empty()) std::ofstream(o_.json_out) << line << "\n";
    std::fflush(stdout);
    // Proxies still referenced by gRPC threads are leaked deliberately on the way out.
    for (auto& p : proxies_) (void)p.release();
    return rc;
  }

  RunOptions o_;
  Verifier verifier_;
  Counters counters_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<AdsRawStub>> stubs_;
  std::vector<std::unique_ptr<SimProxy>> proxies_;
};

void addShape(CLI::App* app, MeshShape& s) {
  app->add_option("--services", s.services)->capture_default_str();
  app->add_option("--endpoints-per-service", s.endpoints_per_service)->capture_default_str();
  app->add_option("--namespaces", s.namespaces)->capture_default_str();
  app->add_option("--routed-every", s.routed_every, "Every Nth service gets a VS + DR")
      ->capture_default_str();
  app->add_flag("--sidecar-scope", s.sidecar_scope, "A Sidecar per namespace (./*)");
}

}  // namespace
}  // namespace mast::bench

int main(int argc, char** argv) {
  using namespace mast::bench;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines survive the deadline's _Exit
  CLI::App app{"mast-xds-load: simulated sidecars against mastd"};
  app.require_subcommand(1);
  MeshShape gen_shape;
  std::string dir;
  auto* gen = app.add_subcommand("generate", "Write the synthetic mesh into a directory");
  gen->add_option("--dir", dir)->required();
  addShape(gen, gen_shape);
  RunOptions ro;
  int deadline_s = 900;
  auto* run = app.add_subcommand("run", "Simulate proxies and measure");
  addShape(run, ro.shape);
  run->add_option("--xds", ro.xds, "mastd ADS address")->capture_default_str();
  run->add_option("--http", ro.http, "mastd HTTP API address")->capture_default_str();
  run->add_option("--mastd-pid", ro.pid, "mastd's pid, for RSS");
  run->add_option("--proxies", ro.proxies)->capture_default_str();
  run->add_option("--per-channel", ro.per_channel, "Streams per gRPC channel (connection)")
      ->capture_default_str();
  run->add_option("--phase-timeout", ro.phase_timeout_s, "Seconds per phase")
      ->capture_default_str();
  run->add_option("--rounds", ro.rounds, "Changes of each kind")->capture_default_str();
  run->add_option("--settle-ms", ro.settle_ms)->capture_default_str();
  run->add_option("--quiet-ms", ro.quiet_ms, "Wait after each change to count stray pushes")
      ->capture_default_str();
  run->add_option("--json", ro.json_out, "Also write the RESULT json here");
  run->add_option("--deadline", deadline_s, "Hard limit for the whole run (s)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (gen->parsed()) {
    auto err = writeMesh(gen_shape, dir);
    if (!err.empty()) {
      std::cerr << err << "\n";
      return 1;
    }
    return 0;
  }
  std::thread([deadline_s] {
    std::this_thread::sleep_for(std::chrono::seconds(deadline_s));
    std::fprintf(stderr, "mast-xds-load: deadline of %d s reached\n", deadline_s);
    std::_Exit(5);
  }).detach();
  Driver driver(ro);
  int rc = driver.run();
  std::fflush(stdout);
  std::_Exit(rc);  // gRPC threads may still hold the leaked proxies
}
