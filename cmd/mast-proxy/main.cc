// mast-proxy: an Envoy-compatible L7/L4 proxy. Command line follows Envoy's.
#include <CLI/CLI.hpp>

#include <iostream>
#include <thread>

#include "base/logging.h"
#include "proxy/server/server.h"

int main(int argc, char** argv) {
  mast::proxy::server::ServerOptions opts;
  CLI::App app{"mast-proxy: an Envoy-compatible L7/L4 proxy"};
  app.add_option("-c,--config-path", opts.config_path, "Bootstrap config (YAML or JSON)");
  app.add_option("--config-yaml", opts.config_yaml, "YAML merged over the bootstrap file");
  app.add_option("--concurrency", opts.concurrency, "Worker threads (default: cores)");
  app.add_option("-l,--log-level", opts.log_level, "trace|debug|info|warning|error|critical|off")
      ->check(
          CLI::IsMember({"trace", "debug", "info", "warn", "warning", "error", "critical", "off"}));
  int drain_s = 5;
  app.add_option("--drain-time-s", drain_s, "Seconds to drain connections on shutdown");
  app.add_option("--mode", opts.mode, "serve | validate")
      ->check(CLI::IsMember({"serve", "validate"}));
  app.add_option("--service-node", opts.service_node, "Node id (overrides node.id)");
  app.add_option("--service-cluster", opts.service_cluster,
                 "Node cluster (overrides node.cluster)");
  app.add_option("--service-zone", opts.service_zone, "Node zone");
  app.add_option("--admin-address-path", opts.admin_address_path,
                 "Write the bound admin address here");
  std::string ignored;
  app.add_option("--base-id", ignored, "Accepted for Envoy compatibility; unused");
  bool disable_hot_restart = false;
  app.add_flag("--disable-hot-restart", disable_hot_restart, "Accepted for Envoy compatibility");
  CLI11_PARSE(app, argc, argv);
  if (opts.config_path.empty() && opts.config_yaml.empty()) {
    std::cerr << "mast-proxy: one of --config-path or --config-yaml is required\n";
    return 1;
  }
  opts.drain_time = std::chrono::seconds(drain_s);
  if (opts.concurrency == 0) opts.concurrency = std::max(1u, std::thread::hardware_concurrency());
  for (int i = 0; i < argc; ++i) {
    if (i) opts.command_line += ' ';
    opts.command_line += argv[i];
  }
  mast::log::init(opts.log_level);
  mast::proxy::server::Server server(std::move(opts));
  return server.run();
}
