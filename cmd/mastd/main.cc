// mastd: the Mast control plane (like istiod). Reads Istio resources from a directory, serves
// xDS over ADS, and the HTTP API that mastctl uses.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <mutex>

#include "base/logging.h"
#include "control/server/istio_generator.h"
#include "control/server/mastd.h"

namespace {
// Directory mode is the default config source: resources live in ./mast-config unless told.
constexpr const char* kDefaultConfigDir = "mast-config";
std::mutex g_mu;
std::condition_variable g_cv;
bool g_stop = false;
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mastd: the Mast control plane"};
  mast::control::server::MastdOptions o;
  std::string log_level = "info";
  int debounce_ms = 100, debounce_max_ms = 1000;
  double grace_s = 10;
  o.config_dir = kDefaultConfigDir;
  app.add_option("--config-dir", o.config_dir,
                 "Directory of Istio resources (watched); the default ./mast-config is created "
                 "when missing")
      ->capture_default_str();
  app.add_option("--mesh-config", o.mesh_config_file, "MeshConfig YAML file");
  app.add_option("--listen-address", o.listen_address, "Address for the xDS and HTTP ports")
      ->capture_default_str();
  app.add_option("--xds-port", o.xds_port, "ADS (gRPC, plaintext) port")->capture_default_str();
  app.add_option("--http-port", o.http_port, "HTTP API, debug and metrics port")
      ->capture_default_str();
  app.add_option("--debounce-after", debounce_ms, "Quiet period before a push (ms)")
      ->capture_default_str();
  app.add_option("--debounce-max", debounce_max_ms, "Longest delay of a push (ms)")
      ->capture_default_str();
  app.add_option("--auto-registration-grace", grace_s,
                 "Seconds a WorkloadGroup-registered workload outlives its proxy's disconnect")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("-l,--log-level", log_level, "trace|debug|info|warning|error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  mast::log::init(log_level);
  o.debounce.quiet = std::chrono::milliseconds(debounce_ms);
  o.debounce.max_delay = std::chrono::milliseconds(debounce_max_ms);
  o.auto_registration_grace = std::chrono::milliseconds(static_cast<int64_t>(grace_s * 1000));
  if (app.count("--config-dir") == 0) {
    std::error_code ec;
    std::filesystem::create_directories(o.config_dir, ec);
    if (ec) {
      std::cerr << "mastd: cannot create " << o.config_dir << ": " << ec.message() << std::endl;
      return 1;
    }
  }

  // Signals are waited for by this thread alone.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  mast::control::server::Mastd mastd(o, mast::control::server::makeIstioGenerator());
  if (auto s = mastd.start(); !s) {
    std::cerr << "mastd: " << s.error() << std::endl;
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  MAST_LOG(INFO, "mastd: signal {}; stopping", sig);
  mastd.stop();
  return 0;
}
