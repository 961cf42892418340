#pragma once
// `mast-agent proxy`: writes the bootstrap, optionally installs traffic capture, serves the
// status (15020) and health (15021) ports, and supervises mast-proxy: started as a child (as the
// proxy uid when root), restarted with back-off when it dies, signalled on SIGTERM/SIGINT; the
// agent exits with the proxy's exit code.
//
// Threads: the main thread runs an asio loop (signals, SIGCHLD, restart timers, shutdown); each
// status/health request runs on its own thread (see HttpServer) and reaches the main loop only by
// posting to it.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/bootstrap.h"
#include "agent/iptables.h"

namespace mast::agent {

struct AgentOptions {
  BootstrapOptions bootstrap;
  std::string proxy_bin;              // default: mast-proxy next to the agent, else PATH
  std::optional<uint32_t> proxy_uid;  // default: 1337 when root, else the current uid
  std::optional<uint32_t> proxy_gid;  // default: the user's group
  uint16_t status_port = 15020;
  uint16_t health_port = 15021;
  std::string status_address = "0.0.0.0";
  uint32_t concurrency = 2;
  uint32_t drain_time_s = 5;
  std::string proxy_log_level = "warning";
  std::string work_dir;  // default: /etc/istio/proxy when root, else /tmp/mast-agent-UID
  std::string app_metrics_url;
  bool capture = false;
  CaptureConfig capture_config;         // ports and uid filled in from the options above
  std::vector<std::string> proxy_args;  // extra arguments for mast-proxy
  // Restart back-off: base doubles per failure up to max; a run longer than `stable` resets it.
  std::chrono::milliseconds restart_base{200};
  std::chrono::milliseconds restart_max{15000};
  std::chrono::milliseconds stable_run{10000};
  int max_restarts = 10;  // consecutive quick failures before the agent gives up (0: never)
};

// Fills defaults that depend on the environment (IP, uid, work dir, proxy binary).
Status resolveDefaults(AgentOptions& o, const std::string& argv0);

class Agent {
 public:
  explicit Agent(AgentOptions options);
  ~Agent();
  // Blocks until the proxy has exited for good; returns the agent's exit code.
  int run();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// `mast-agent wait`: polls http://HOST:PORT/healthz/ready every `period` until 200 (returns 0)
// or `timeout` passes (returns 1).
int waitReady(const std::string& host, uint16_t port, std::chrono::milliseconds timeout,
              std::chrono::milliseconds period);

// "60s", "500ms", "2m", "1h", or a bare number of seconds.
Result<std::chrono::milliseconds> parseDuration(std::string_view s);

// The first non-loopback IPv4 address of an interface that is up, else 127.0.0.1.
std::string detectInstanceIp();

}  // namespace mast::agent
