#include "agent/agent.h"

#include <grp.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <asio.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/http.h"
#include "agent/metrics.h"
#include "agent/process.h"
#include "agent/readiness.h"
#include "base/logging.h"

namespace mast::agent {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

Result<std::chrono::milliseconds> parseDuration(std::string_view s) {
  size_t digits = 0;
  while (digits < s.size() && (std::isdigit(static_cast<unsigned char>(s[digits])) != 0)) ++digits;
  if (digits == 0) return Error{"'" + std::string(s) + "': expected a duration like 60s or 500ms"};
  uint64_t v = 0;
  std::from_chars(s.data(), s.data() + digits, v);
  std::string_view unit = s.substr(digits);
  uint64_t ms;
  if (unit.empty() || unit == "s") {
    ms = v * 1000;
  } else if (unit == "ms") {
    ms = v;
  } else if (unit == "m") {
    ms = v * 60000;
  } else if (unit == "h") {
    ms = v * 3600000;
  } else {
    return Error{"'" + std::string(s) + "': unknown unit (use ms, s, m or h)"};
  }
  return std::chrono::milliseconds(ms);
}

std::string detectInstanceIp() {
  ifaddrs* list = nullptr;
  std::string found = "127.0.0.1";
  if (getifaddrs(&list) != 0) return found;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET) continue;
    if ((a->ifa_flags & IFF_UP) == 0 || (a->ifa_flags & IFF_LOOPBACK) != 0) continue;
    char buf[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
    if (inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf)) {
      found = buf;
      break;
    }
  }
  freeifaddrs(list);
  return found;
}

Status resolveDefaults(AgentOptions& o, const std::string& argv0) {
  auto& b = o.bootstrap;
  if (b.ip.empty()) {
    const char* env = getenv("INSTANCE_IP");
    b.ip = env && *env ? env : detectInstanceIp();
  }
  bool root = geteuid() == 0;
  if (!o.proxy_uid) o.proxy_uid = root ? 1337u : static_cast<uint32_t>(getuid());
  if (!root && *o.proxy_uid != getuid()) {
    return Error{"--proxy-uid " + std::to_string(*o.proxy_uid) +
                 ": running the proxy as another user needs root"};
  }
  if (o.work_dir.empty()) {
    o.work_dir = root ? "/etc/istio/proxy" : "/tmp/mast-agent-" + std::to_string(getuid());
  }
  if (o.proxy_bin.empty()) {
    std::error_code ec;
    auto self = fs::read_symlink("/proc/self/exe", ec);
    if (ec) self = fs::absolute(argv0, ec);
    auto sibling = self.parent_path() / "mast-proxy";
    if (!ec && access(sibling.c_str(), X_OK) == 0) {
      o.proxy_bin = sibling.string();
    } else {
      o.proxy_bin = findExecutable("mast-proxy");
    }
    if (o.proxy_bin.empty()) {
      return Error{"mast-proxy not found next to mast-agent or in PATH (use --proxy-bin)"};
    }
  } else if (access(o.proxy_bin.c_str(), X_OK) != 0) {
    return Error{"--proxy-bin " + o.proxy_bin + ": not an executable file"};
  }
  auto& c = o.capture_config;
  c.proxy_uid = *o.proxy_uid;
  c.proxy_gid = o.proxy_gid.value_or(*o.proxy_uid);
  for (uint16_t p : {b.stats_port, o.health_port, o.status_port}) {
    if (std::find(c.exclude_inbound_ports.begin(), c.exclude_inbound_ports.end(), p) ==
        c.exclude_inbound_ports.end()) {
      c.exclude_inbound_ports.push_back(p);
    }
  }
  b.capture = o.capture;
  return {};
}

class Agent::Impl {
 public:
  explicit Impl(AgentOptions o)
      : o_(std::move(o)),
        signals_(io_, SIGTERM, SIGINT),
        sigchld_(io_, SIGCHLD),
        restart_timer_(io_),
        kill_timer_(io_),
        status_("status", [this](const HttpRequest& r) { return onStatus(r); }),
        health_("health", [this](const HttpRequest& r) { return onHealth(r); }) {}

  int run();

 private:
  Status prepareUser();
  Status writeBootstrap();
  void startProxy();
  void onChildExit();
  void onSignal(int sig);
  void beginShutdown(int sig);
  void finish(int code);
  HttpResponse readiness();
  HttpResponse onHealth(const HttpRequest& r);
  HttpResponse onStatus(const HttpRequest& r);
  HttpResponse metrics();
  HttpResponse quit();
  HttpResponse drain();
  void armSignals();

  AgentOptions o_;
  asio::io_context io_;
  asio::signal_set signals_;
  asio::signal_set sigchld_;
  asio::steady_timer restart_timer_;
  asio::steady_timer kill_timer_;
  HttpServer status_;
  HttpServer health_;
  std::string bootstrap_path_;
  bool drop_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  bool capture_installed_ = false;
  std::atomic<pid_t> child_{-1};
  std::atomic<bool> shutting_down_{false};
  std::atomic<bool> draining_{false};
  std::atomic<uint64_t> restarts_{0};
  Clock::time_point started_;
  int failures_ = 0;
  int exit_code_ = 0;
};

Status Agent::Impl::prepareUser() {
  uid_ = *o_.proxy_uid;
  drop_ = geteuid() == 0 && uid_ != 0;
  gid_ = o_.proxy_gid.value_or(getegid());
  if (!drop_) return {};
  auto user = ensureUser(uid_, uid_ == 1337 ? "istio-proxy" : "");
  if (!user) return Error{user.error()};
  gid_ = o_.proxy_gid.value_or(user->gid);
  o_.capture_config.proxy_gid = gid_;
  MAST_LOG(INFO, "proxy runs as uid {} gid {}{}", uid_, gid_,
           user->name.empty() ? "" : " (" + user->name + ")");
  return {};
}

Status Agent::Impl::writeBootstrap() {
  std::error_code ec;
  fs::create_directories(o_.work_dir, ec);
  if (ec) return Error{"--work-dir " + o_.work_dir + ": " + ec.message()};
  bootstrap_path_ = (fs::path(o_.work_dir) / "envoy-rev.json").string();
  std::string tmp = bootstrap_path_ + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << makeBootstrap(o_.bootstrap).dump(2) << "\n";
    if (!f) return Error{"cannot write " + tmp};
  }
  chmod(tmp.c_str(), 0644);
  if (rename(tmp.c_str(), bootstrap_path_.c_str()) != 0) {
    return Error{"cannot write " + bootstrap_path_ + ": " + strerror(errno)};
  }
  // The proxy runs with the work dir as its current directory.
  if (drop_ && chown(o_.work_dir.c_str(), uid_, gid_) != 0) {
    return Error{"chown " + o_.work_dir + ": " + strerror(errno)};
  }
  MAST_LOG(INFO, "bootstrap {} (node {})", bootstrap_path_, nodeId(o_.bootstrap));
  return {};
}

void Agent::Impl::startProxy() {
  std::vector<std::string> args = {o_.proxy_bin,
                                   "-c",
                                   bootstrap_path_,
                                   "--concurrency",
                                   std::to_string(o_.concurrency),
                                   "--drain-time-s",
                                   std::to_string(o_.drain_time_s),
                                   "--log-level",
                                   o_.proxy_log_level};
  args.insert(args.end(), o_.proxy_args.begin(), o_.proxy_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const char* dir = o_.work_dir.c_str();
  pid_t parent = getpid();
  bool drop = drop_;
  uid_t uid = uid_;
  gid_t gid = gid_;
  pid_t pid = fork();
  if (pid < 0) {
    MAST_LOG(ERROR, "fork: {}", strerror(errno));
    finish(1);
    return;
  }
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    setpgid(0, 0);  // the agent alone decides which signals reach the proxy
    if (drop && (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) {
      const char msg[] = "mast-agent: cannot switch to the proxy user\n";
      (void)!write(2, msg, sizeof msg - 1);
      _exit(126);
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM);  // after setuid, which would clear it
    if (getppid() != parent) _exit(1);
    if (chdir(dir) != 0) _exit(126);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  child_ = pid;
  started_ = Clock::now();
  MAST_LOG(INFO, "started mast-proxy pid {}: {}", pid, fmt::join(args, " "));
}

void Agent::Impl::finish(int code) {
  exit_code_ = code;
  io_.stop();
}

void Agent::Impl::onChildExit() {
  pid_t pid = child_;
  if (pid <= 0) return;
  int st = 0;
  pid_t r = waitpid(pid, &st, WNOHANG);
  if (r != pid) return;
  int code = exitCodeOf(st);
  child_ = -1;
  kill_timer_.cancel();
  if (shutting_down_) {
    MAST_LOG(INFO, "mast-proxy exited with code {}", code);
    finish(code);
    return;
  }
  if (code == 0) {
    MAST_LOG(INFO, "mast-proxy exited with code 0 on its own; the agent exits too");
    finish(0);
    return;
  }
  if (Clock::now() - started_ >= o_.stable_run) failures_ = 0;
  ++failures_;
  if (o_.max_restarts > 0 && failures_ > o_.max_restarts) {
    MAST_LOG(ERROR, "mast-proxy failed {} times in a row (last exit code {}); giving up", failures_,
             code);
    finish(code);
    return;
  }
  auto delay = std::min<std::chrono::milliseconds>(
      o_.restart_max, o_.restart_base * (1LL << std::min(failures_ - 1, 20)));
  MAST_LOG(WARN, "mast-proxy pid {} exited with code {}; restarting in {} ms", pid, code,
           delay.count());
  restart_timer_.expires_after(delay);
  restart_timer_.async_wait([this](std::error_code ec) {
    if (ec || shutting_down_) return;
    ++restarts_;
    startProxy();
  });
}

void Agent::Impl::beginShutdown(int sig) {
  shutting_down_ = true;
  restart_timer_.cancel();
  pid_t pid = child_;
  if (pid <= 0) {
    finish(exit_code_);
    return;
  }
  if (sig) kill(pid, sig);
  // The proxy drains for --drain-time-s; past that and a grace period it is killed.
  kill_timer_.expires_after(std::chrono::seconds(o_.drain_time_s + 10));
  kill_timer_.async_wait([this](std::error_code ec) {
    if (ec) return;
    if (pid_t p = child_; p > 0) {
      MAST_LOG(WARN, "mast-proxy pid {} did not exit in time; killing it", p);
      kill(p, SIGKILL);
    }
  });
}

void Agent::Impl::onSignal(int sig) {
  MAST_LOG(INFO, "caught signal {}; forwarding it to mast-proxy", sig);
  beginShutdown(sig);
}

void Agent::Impl::armSignals() {
  signals_.async_wait([this](std::error_code ec, int sig) {
    if (ec) return;
    onSignal(sig);
    armSignals();
  });
}

int Agent::Impl::run() {
  if (auto s = prepareUser(); !s) {
    MAST_LOG(ERROR, "{}", s.error());
    return 1;
  }
  if (auto s = writeBootstrap(); !s) {
    MAST_LOG(ERROR, "{}", s.error());
    return 1;
  }
  if (o_.capture) {
    if (auto s = installCapture(o_.capture_config); !s) {
      MAST_LOG(ERROR, "capture: {}", s.error());
      return 1;
    }
    capture_installed_ = true;
    MAST_LOG(INFO, "capture: iptables rules installed");
  }
  auto cleanup = [this] {
    if (!capture_installed_) return;
    if (auto s = cleanupCapture(); !s) {
      MAST_LOG(ERROR, "capture cleanup: {}", s.error());
    } else {
      MAST_LOG(INFO, "capture: iptables rules removed");
    }
  };
  for (auto [server, port] : {std::pair{&status_, o_.status_port}, {&health_, o_.health_port}}) {
    if (auto s = server->listen(o_.status_address, port); !s) {
      MAST_LOG(ERROR, "{}", s.error());
      cleanup();
      return 1;
    }
  }
  armSignals();
  std::function<void()> arm_chld = [this, &arm_chld] {
    sigchld_.async_wait([this, &arm_chld](std::error_code ec, int) {
      if (ec) return;
      onChildExit();
      arm_chld();
    });
  };
  arm_chld();
  startProxy();
  status_.start();
  health_.start();
  MAST_LOG(INFO, "status on {}:{}, health on {}:{}", o_.status_address, status_.port(),
           o_.status_address, health_.port());
  io_.run();
  status_.stop();
  health_.stop();
  if (pid_t p = child_; p > 0) {  // only when the loop ended on an error path
    kill(p, SIGKILL);
    waitpid(p, nullptr, 0);
  }
  cleanup();
  return exit_code_;
}

HttpResponse Agent::Impl::readiness() {
  if (shutting_down_ || draining_) return {503, "text/plain; charset=utf-8", "draining\n"};
  if (child_ <= 0) return {503, "text/plain; charset=utf-8", "proxy not running\n"};
  Readiness r = probeProxy(o_.bootstrap.admin_port);
  if (!r.ready) return {503, "text/plain; charset=utf-8", r.reason + "\n"};
  return {200, "text/plain; charset=utf-8", ""};
}

HttpResponse Agent::Impl::onHealth(const HttpRequest& r) {
  if (r.path == "/healthz/ready") return readiness();
  return {404, "text/plain; charset=utf-8", "not found\n"};
}

HttpResponse Agent::Impl::metrics() {
  auto proxy = httpRequest("127.0.0.1", o_.bootstrap.admin_port, "GET", "/stats/prometheus", {},
                           std::chrono::seconds(5));
  if (!proxy || proxy->status != 200) {
    std::string why = proxy ? "status " + std::to_string(proxy->status) : proxy.error();
    return {503, "text/plain; charset=utf-8", "proxy metrics unavailable: " + why + "\n"};
  }
  std::string app;
  if (!o_.app_metrics_url.empty()) {
    auto url = parseUrl(o_.app_metrics_url);
    auto resp =
        url ? httpRequest(url->host, url->port, "GET", url->target, {}, std::chrono::seconds(5))
            : Result<HttpResponse>(Error{url.error()});
    if (resp && resp->status == 200) {
      app = std::move(resp->body);
    } else {
      MAST_LOG(WARN, "app metrics {}: {}", o_.app_metrics_url,
               resp ? "status " + std::to_string(resp->status) : resp.error());
    }
  }
  std::string own =
      "# HELP mast_agent_proxy_restarts_total Times the agent restarted mast-proxy.\n"
      "# TYPE mast_agent_proxy_restarts_total counter\n"
      "mast_agent_proxy_restarts_total " +
      std::to_string(restarts_.load()) + "\n";
  return {200, "text/plain; version=0.0.4; charset=utf-8",
          mergePrometheus({proxy->body, app, own})};
}

HttpResponse Agent::Impl::quit() {
  shutting_down_ = true;
  auto r = httpRequest("127.0.0.1", o_.bootstrap.admin_port, "POST", "/quitquitquit");
  bool asked = r && r->status == 200;
  if (!asked) MAST_LOG(WARN, "proxy /quitquitquit failed; sending SIGTERM");
  asio::post(io_, [this, asked] { beginShutdown(asked ? 0 : SIGTERM); });
  return {200, "text/plain; charset=utf-8", "OK\n"};
}

HttpResponse Agent::Impl::drain() {
  draining_ = true;
  auto d = httpRequest("127.0.0.1", o_.bootstrap.admin_port, "POST", "/drain_listeners?graceful");
  auto h = httpRequest("127.0.0.1", o_.bootstrap.admin_port, "POST", "/healthcheck/fail");
  if (!d || d->status != 200 || !h || h->status != 200) {
    return {503, "text/plain; charset=utf-8", "proxy did not accept the drain\n"};
  }
  return {200, "text/plain; charset=utf-8", "OK\n"};
}

HttpResponse Agent::Impl::onStatus(const HttpRequest& r) {
  if (r.path == "/healthz/ready") return readiness();
  if (r.path == "/stats/prometheus" || r.path == "/metrics") return metrics();
  if (r.path == "/quitquitquit" || r.path == "/drain") {
    if (r.method != "POST") {
      return {405, "text/plain; charset=utf-8", "This endpoint requires POST.\n"};
    }
    return r.path == "/drain" ? drain() : quit();
  }
  return {404, "text/plain; charset=utf-8", "not found\n"};
}

Agent::Agent(AgentOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Agent::~Agent() = default;
int Agent::run() { return impl_->run(); }

int waitReady(const std::string& host, uint16_t port, std::chrono::milliseconds timeout,
              std::chrono::milliseconds period) {
  auto deadline = Clock::now() + timeout;
  std::string last = "no answer yet";
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    auto r = httpRequest(
        host, port, "GET", "/healthz/ready", {},
        std::clamp(left, std::chrono::milliseconds(50), std::chrono::milliseconds(1000)));
    if (r && r->status == 200) {
      std::printf("proxy is ready\n");
      return 0;
    }
    if (r) {
      std::string body = r->body;
      while (!body.empty() && body.back() == '\n') body.pop_back();
      last = std::to_string(r->status) + (body.empty() ? "" : " " + body);
    } else {
      last = r.error();
    }
    if (Clock::now() + period >= deadline) break;
    std::this_thread::sleep_for(period);
  }
  std::fprintf(stderr, "mast-agent wait: proxy not ready after %lld ms (last: %s)\n",
               static_cast<long long>(timeout.count()), last.c_str());
  return 1;
}

}  // namespace mast::agent
