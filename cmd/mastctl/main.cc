// mastctl: the command line for a Mast mesh (like istioctl/kubectl for Istio resources).
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"mastctl: manage a Mast service mesh"};
  app.require_subcommand(1);
  mast::cli::GlobalOptions g;
  if (const char* env = std::getenv("MASTD_ADDR"); env && *env) g.mastd = env;
  app.add_option("--mastd", g.mastd, "mastd HTTP API address (env MASTD_ADDR)")
      ->capture_default_str();
  int rc = 0;

  auto* apply = app.add_subcommand("apply", "Validate and apply Istio resources");
  std::vector<std::string> apply_files;
  bool dry_run = false;
  apply->add_option("-f,--filename", apply_files, "File, directory, or - for stdin")->required();
  apply->add_flag("--dry-run", dry_run, "Validate only; change nothing");
  apply->callback(
      [&] { rc = mast::cli::apply(g, apply_files, dry_run, std::cin, std::cout, std::cerr); });

  auto* get = app.add_subcommand(
      "get",
      "Show resources, each with its convergence status: how many of the connected proxies that "
      "need it have accepted it, which rejected it and why, and the time from write to last ACK");
  std::string kind, name, ns, output;
  bool all_ns = false;
  get->add_option("kind", kind, "Resource kind (virtualservice, vs, destinationrule, dr, ...)")
      ->required();
  get->add_option("name", name, "Resource name");
  get->add_option("-n,--namespace", ns, "Namespace (default: default)");
  get->add_flag("-A,--all-namespaces", all_ns, "All namespaces");
  get->add_option("-o,--output", output, "Output format: yaml or json")
      ->check(CLI::IsMember({"", "yaml", "json", "wide"}));
  get->callback(
      [&] { rc = mast::cli::get(g, kind, name, ns, all_ns, output, std::cout, std::cerr); });

  auto* del = app.add_subcommand("delete", "Delete resources (by file or by kind and name)");
  std::vector<std::string> del_files;
  std::string del_kind, del_name, del_ns;
  del->add_option("-f,--filename", del_files, "File, directory, or - for stdin");
  del->add_option("kind", del_kind, "Resource kind");
  del->add_option("name", del_name, "Resource name");
  del->add_option("-n,--namespace", del_ns, "Namespace (default: default)");
  del->callback([&] {
    if (!del_files.empty()) {
      rc = mast::cli::removeFiles(g, del_files, std::cin, std::cout, std::cerr);
    } else if (!del_kind.empty() && !del_name.empty()) {
      rc = mast::cli::removeResource(g, del_kind, del_name, del_ns, std::cout, std::cerr);
    } else {
      std::cerr << "error: delete needs -f FILE or KIND NAME\n";
      rc = 2;
    }
  });

  auto* ps = app.add_subcommand("proxy-status", "xDS sync state of every connected proxy");
  std::string proxy;
  ps->add_option("proxy", proxy, "Only proxies whose id contains this");
  ps->callback([&] { rc = mast::cli::proxyStatus(g, proxy, std::cout, std::cerr); });

  auto* demo =
      app.add_subcommand("demo", "The Bookinfo mesh on this machine (root): up | check | down");
  std::string demo_action = "up";
  demo->add_option("action", demo_action, "up (until Ctrl-C) | check | down")
      ->check(CLI::IsMember({"up", "check", "down"}));
  demo->callback([&] {
    // The mesh orchestration lives in scripts/bookinfo_mesh.py next to the build tree.
    std::filesystem::path bin = std::filesystem::canonical("/proc/self/exe").parent_path();
    std::filesystem::path script = bin.parent_path().parent_path() / "scripts" / "bookinfo_mesh.py";
    if (!std::filesystem::exists(script)) {
      std::cerr << "error: " << script << " not found (mastctl demo runs from a source tree)\n";
      rc = 1;
      return;
    }
    ::setenv("MAST_BIN", bin.c_str(), 0);
    std::string py = "/usr/bin/python3";
    std::string s = script.string();
    char* args[] = {py.data(), s.data(), demo_action.data(), nullptr};
    ::execv(py.c_str(), args);
    std::cerr << "error: cannot run " << py << ": " << std::strerror(errno) << "\n";
    rc = 1;
  });

  auto* an = app.add_subcommand("analyze", "Cross-resource checks (Istio's IST codes)");
  std::vector<std::string> an_files;
  an->add_option("-f,--filename", an_files, "Also analyze these files, as if applied");
  an->callback([&] { rc = mast::cli::analyze(g, an_files, std::cin, std::cout, std::cerr); });

  auto* pc =
      app.add_subcommand("proxy-config", "A proxy's own config (from its admin /config_dump)");
  std::string pc_type, pc_proxy, pc_admin, pc_output;
  pc->add_option("type", pc_type, "cluster | listener | route | endpoint | bootstrap")
      ->required()
      ->check(CLI::IsMember({"cluster", "listener", "route", "endpoint", "bootstrap", "clusters",
                             "listeners", "routes", "endpoints"}));
  pc->add_option("proxy", pc_proxy,
                 "The proxy as mastd knows it: NAME.NAMESPACE (productpage-v1.default), its node "
                 "id, or a unique prefix of either");
  pc->add_option("--admin", pc_admin,
                 "The proxy's admin address HOST:PORT; wins over PROXY (default without PROXY: "
                 "127.0.0.1:15000)");
  pc->add_option("-o,--output", pc_output, "json for the raw resources");
  pc->callback([&] {
    if (pc_type.back() == 's') pc_type.pop_back();
    rc = mast::cli::proxyConfig(g, pc_proxy, pc_admin, pc_type, pc_output, std::cout, std::cerr);
  });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return rc;
}
