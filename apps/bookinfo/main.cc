// bookinfo: Istio's Bookinfo sample application, one binary for its four services.
//   bookinfo productpage|details|reviews|ratings [PORT] [--port 9080] [--bind 0.0.0.0]
//            [--version v1|...]
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "http_server.h"
#include "services.h"

namespace {

struct ServiceSpec {
  const char* name;
  const char* description;
  std::vector<std::string> versions;
  mast::Result<mast::bookinfo::Service> (*make)(const std::string& version);
};

std::string envOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value ? value : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists, so that every thread inherits the mask and the stop signals reach
  // only the listener's signalfd.
  mast::bookinfo::blockStopSignals();

  const ServiceSpec specs[] = {
      {"productpage",
       "HTML page and JSON API; calls details and reviews",
       {"v1"},
       &mast::bookinfo::makeProductpage},
      {"details", "book details JSON", {"v1"}, &mast::bookinfo::makeDetails},
      {"reviews",
       "two reviews; v2/v3 add ratings (black/red stars)",
       {"v1", "v2", "v3"},
       &mast::bookinfo::makeReviews},
      {"ratings",
       "star ratings JSON, in memory",
       {"v1", "v-faulty", "v-delayed", "v-unavailable"},
       &mast::bookinfo::makeRatings},
  };

  CLI::App app{"bookinfo: Istio's Bookinfo sample services"};
  app.require_subcommand(1);
  int positional_port = 9080;
  int port = 9080;
  // Defaults from the environment are taken as they are; only command-line values are checked.
  std::string bind = envOr("BIND_ADDRESS", "0.0.0.0");
  std::string version = envOr("SERVICE_VERSION", "v1");
  std::vector<std::pair<CLI::App*, const ServiceSpec*>> commands;
  for (const ServiceSpec& spec : specs) {
    CLI::App* command = app.add_subcommand(spec.name, spec.description);
    command
        ->add_option("PORT", positional_port, "listen port (Istio's sample takes it positionally)")
        ->check(CLI::Range(0, 65535));
    command->add_option("--port", port, "listen port (default 9080; 0: chosen by the OS)")
        ->check(CLI::Range(0, 65535));
    command->add_option("--bind", bind,
                        "listen address (default 0.0.0.0, env BIND_ADDRESS); '::' for IPv6 "
                        "and IPv4");
    command->add_option("--version", version, "service version (env SERVICE_VERSION)")
        ->check(CLI::IsMember(spec.versions));
    commands.emplace_back(command, &spec);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  for (const auto& [command, spec] : commands) {
    if (!command->parsed()) continue;
    int listen_port = 9080;
    if (command->count("--port") > 0) {
      listen_port = port;
    } else if (command->count("PORT") > 0) {
      listen_port = positional_port;
    }
    mast::Result<mast::bookinfo::Service> service = spec->make(version);
    if (!service) {
      std::fprintf(stderr, "%s: %s\n", spec->name, service.error().c_str());
      return 1;
    }
    int rc = mast::bookinfo::serve({spec->name, bind, listen_port, service->banner},
                                   std::move(service->routes));
    std::fflush(stdout);
    // Connection threads are detached and may still be blocked in a read; ending the process
    // here, without running static destructors under them, is how a server with daemon
    // connection threads stops.
    std::_Exit(rc);
  }
  return 2;
}
