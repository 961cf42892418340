// mast-agent: the sidecar/gateway agent next to mast-proxy, like Istio's pilot-agent.
//   mast-agent proxy sidecar|router ...   bootstrap, capture, supervise the proxy, status ports
//   mast-agent wait ...                   block until the proxy is ready (app start ordering)
//   mast-agent request POST drain         call the agent's status port (preStop hooks)
//   mast-agent iptables ...               install / remove / print the capture rules
#include <signal.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <iostream>

#include "agent/agent.h"
#include "agent/http.h"
#include "agent/iptables.h"
#include "base/logging.h"

namespace {

using namespace mast::agent;

int fail(const std::string& msg) {
  std::cerr << "mast-agent: " << msg << "\n";
  return 1;
}

struct CaptureFlags {
  std::string inbound_ports = "*";
  std::string exclude_inbound_ports;
  std::string include_outbound = "*";
  std::string exclude_outbound;
  std::string exclude_outbound_ports;
  uint16_t outbound_port = 15001;
  uint16_t inbound_port = 15006;

  void add(CLI::App* cmd) {
    cmd->add_option("--inbound-ports", inbound_ports,
                    "Inbound ports to capture: '*' (all), '' (none) or a list")
        ->capture_default_str();
    cmd->add_option("--exclude-inbound-ports", exclude_inbound_ports,
                    "Inbound ports never captured (with '*')");
    cmd->add_option("--include-outbound-ip-ranges", include_outbound,
                    "Outbound CIDRs to capture: '*', '' or a list")
        ->capture_default_str();
    cmd->add_option("--exclude-outbound-ip-ranges", exclude_outbound,
                    "Outbound CIDRs never captured");
    cmd->add_option("--exclude-outbound-ports", exclude_outbound_ports,
                    "Outbound ports never captured");
    cmd->add_option("--outbound-capture-port", outbound_port, "Proxy's outbound listener")
        ->capture_default_str();
    cmd->add_option("--inbound-capture-port", inbound_port, "Proxy's inbound listener")
        ->capture_default_str();
  }

  // `default_excludes` applies when --exclude-inbound-ports was not given.
  mast::Status fill(CaptureConfig& c, bool excludes_given, const std::string& default_excludes) {
    c.outbound_capture_port = outbound_port;
    c.inbound_capture_port = inbound_port;
    if (auto s = parsePortSpec(inbound_ports, c.inbound_all, c.inbound_ports); !s) {
      return mast::Error{"--inbound-ports " + s.error()};
    }
    auto ex = parsePorts(excludes_given ? exclude_inbound_ports : default_excludes);
    if (!ex) return mast::Error{"--exclude-inbound-ports " + ex.error()};
    c.exclude_inbound_ports = *ex;
    if (auto s = parseCidrSpec(include_outbound, c.outbound_all, c.include_outbound_cidrs); !s) {
      return mast::Error{"--include-outbound-ip-ranges " + s.error()};
    }
    bool all = false;
    if (auto s = parseCidrSpec(exclude_outbound, all, c.exclude_outbound_cidrs); !s || all) {
      return mast::Error{"--exclude-outbound-ip-ranges " +
                         (s ? std::string("'*' is not allowed") : s.error())};
    }
    auto op = parsePorts(exclude_outbound_ports);
    if (!op) return mast::Error{"--exclude-outbound-ports " + op.error()};
    c.exclude_outbound_ports = *op;
    return {};
  }
};

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"mast-agent: runs next to mast-proxy (bootstrap, capture, health, metrics)"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "Agent log level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warning", "error", "critical", "off"}));

  // proxy
  AgentOptions o;
  std::string discovery, workload, labels, metas, drain, uid_s, gid_s;
  std::string exclude_inbound_default;
  CaptureFlags capture;
  auto* proxy = app.add_subcommand("proxy", "Run mast-proxy as a sidecar or router");
  proxy->add_option("type", o.bootstrap.type, "sidecar | router")
      ->required()
      ->check(CLI::IsMember({"sidecar", "router"}));
  proxy->add_option("--discovery-address", discovery, "Control plane ADS address HOST:PORT")
      ->required();
  proxy->add_option("--workload", workload, "NAME.NAMESPACE")->required();
  proxy->add_option("--ip", o.bootstrap.ip, "Instance IP (default: $INSTANCE_IP or detected)");
  proxy->add_option("--labels", labels, "Workload labels k=v,k2=v2");
  proxy->add_option("--meta", metas, "Extra node metadata k=v,... (strings)");
  proxy->add_option("--service-account", o.bootstrap.service_account, "Service account");
  proxy->add_option("--auto-register-group", o.bootstrap.auto_register_group,
                    "WorkloadGroup to auto-register into");
  proxy->add_option("--cluster-id", o.bootstrap.cluster_id, "CLUSTER_ID metadata")
      ->capture_default_str();
  proxy->add_option("--domain", o.bootstrap.dns_domain,
                    "DNS domain (default NS.svc.cluster.local)");
  proxy->add_option("--proxy-bin", o.proxy_bin, "mast-proxy binary (default: next to mast-agent)");
  proxy->add_option("--proxy-uid", uid_s, "uid the proxy runs as (default 1337 when root)");
  proxy->add_option("--proxy-gid", gid_s, "gid the proxy runs as (default: the user's group)");
  proxy->add_option("--admin-port", o.bootstrap.admin_port, "Proxy admin port (127.0.0.1)")
      ->capture_default_str();
  proxy->add_option("--status-port", o.status_port, "Agent status port")->capture_default_str();
  proxy->add_option("--health-port", o.health_port, "Agent health port (/healthz/ready)")
      ->capture_default_str();
  proxy->add_option("--stats-port", o.bootstrap.stats_port, "Proxy Prometheus listener port")
      ->capture_default_str();
  proxy->add_option("--status-address", o.status_address, "Address for the status/health ports")
      ->capture_default_str();
  proxy->add_option("--concurrency", o.concurrency, "Proxy worker threads")->capture_default_str();
  proxy->add_option("--drain-time-s", o.drain_time_s, "Proxy drain time on shutdown")
      ->capture_default_str();
  proxy->add_option("--proxy-log-level", o.proxy_log_level, "Proxy log level")
      ->capture_default_str();
  proxy->add_option("--work-dir", o.work_dir,
                    "Where the bootstrap is written (default /etc/istio/proxy as root)");
  proxy->add_option("--app-metrics-url", o.app_metrics_url,
                    "Application metrics merged into :status-port/stats/prometheus");
  proxy
      ->add_option("--max-restarts", o.max_restarts,
                   "Consecutive quick proxy failures before giving up (0: never)")
      ->capture_default_str();
  proxy->add_flag("--capture", o.capture, "Install iptables capture at start, remove it at exit");
  proxy->add_option("--proxy-arg", o.proxy_args, "Extra argument for mast-proxy (repeatable)");
  capture.add(proxy);

  // wait
  std::string wait_host = "127.0.0.1", wait_timeout = "60s", wait_period = "500ms";
  uint16_t wait_port = 15021;
  auto* wait = app.add_subcommand("wait", "Wait until the proxy is ready (exit 0) or time out (1)");
  wait->add_option("--health-port", wait_port, "Agent health port")->capture_default_str();
  wait->add_option("--host", wait_host, "Agent host")->capture_default_str();
  wait->add_option("--timeout", wait_timeout, "Give up after this long")->capture_default_str();
  wait->add_option("--period", wait_period, "Poll interval")->capture_default_str();

  // request
  std::string req_method, req_path;
  uint16_t req_port = 15020;
  auto* request = app.add_subcommand(
      "request", "Send a request to the agent's status port, e.g. `request POST drain`");
  request->add_option("method", req_method, "GET | POST")
      ->required()
      ->check(CLI::IsMember({"GET", "POST"}));
  request->add_option("path", req_path, "Path, e.g. drain, quitquitquit, healthz/ready")
      ->required();
  request->add_option("--debug-port", req_port, "Agent status port")->capture_default_str();

  // iptables
  std::string ipt_uid = "1337", ipt_gid;
  bool cleanup = false, dry_run = false;
  CaptureFlags ipt;
  auto* iptables = app.add_subcommand("iptables", "Install Istio-style traffic capture (nat)");
  iptables->add_option("--proxy-uid", ipt_uid, "Proxy uid (its traffic is not captured)")
      ->capture_default_str();
  iptables->add_option("--proxy-gid", ipt_gid, "Proxy gid (default: the uid)");
  iptables->add_flag("--cleanup", cleanup, "Remove the chains and jumps instead");
  iptables->add_flag("--dry-run", dry_run, "Print the iptables-restore input; change nothing");
  ipt.add(iptables);

  CLI11_PARSE(app, argc, argv);
  mast::log::init(log_level);

  auto parseId = [](const std::string& s, const char* flag) -> mast::Result<uint32_t> {
    try {
      size_t pos = 0;
      unsigned long v = std::stoul(s, &pos);
      if (pos != s.size() || v > 0xFFFFFFFEul) throw std::out_of_range(s);
      return static_cast<uint32_t>(v);
    } catch (const std::exception&) {
      return mast::Error{std::string(flag) + " '" + s + "': not a numeric id"};
    }
  };

  if (*wait) {
    auto t = parseDuration(wait_timeout);
    if (!t) return fail("--timeout " + t.error());
    auto p = parseDuration(wait_period);
    if (!p) return fail("--period " + p.error());
    return waitReady(wait_host, wait_port, *t, *p);
  }

  if (*request) {
    std::string target = req_path.starts_with("/") ? req_path : "/" + req_path;
    auto r = httpRequest("127.0.0.1", req_port, req_method, target, {}, std::chrono::seconds(10));
    if (!r) return fail(r.error());
    std::cout << r->body;
    if (r->status < 200 || r->status > 299) {
      return fail(req_method + " " + target + ": status " + std::to_string(r->status));
    }
    return 0;
  }

  if (*iptables) {
    CaptureConfig c;
    auto u = parseId(ipt_uid, "--proxy-uid");
    if (!u) return fail(u.error());
    c.proxy_uid = c.proxy_gid = *u;
    if (!ipt_gid.empty()) {
      auto g = parseId(ipt_gid, "--proxy-gid");
      if (!g) return fail(g.error());
      c.proxy_gid = *g;
    }
    bool given = iptables->count("--exclude-inbound-ports") > 0;
    if (auto s = ipt.fill(c, given, "15090,15021,15020"); !s) return fail(s.error());
    if (cleanup) {
      if (dry_run) {
        std::cout << renderCleanup("");
        return 0;
      }
      if (auto s = cleanupCapture(); !s) return fail(s.error());
      std::cout << "removed the capture chains\n";
      return 0;
    }
    if (dry_run) {
      std::cout << renderInstall(c, "");
      return 0;
    }
    if (auto s = installCapture(c); !s) return fail(s.error());
    std::cout << "installed " << captureRules(c).size() << " capture rules\n";
    return 0;
  }

  // proxy
  auto hp = parseHostPort(discovery);
  if (!hp) return fail("--discovery-address " + hp.error());
  o.bootstrap.discovery_host = hp->first;
  o.bootstrap.discovery_port = hp->second;
  auto wl = parseWorkload(workload);
  if (!wl) return fail("--workload " + wl.error());
  o.bootstrap.name = wl->first;
  o.bootstrap.ns = wl->second;
  auto lb = parseKeyValues(labels);
  if (!lb) return fail("--labels " + lb.error());
  o.bootstrap.labels = *lb;
  auto mt = parseKeyValues(metas);
  if (!mt) return fail("--meta " + mt.error());
  o.bootstrap.extra_metadata = *mt;
  if (!uid_s.empty()) {
    auto u = parseId(uid_s, "--proxy-uid");
    if (!u) return fail(u.error());
    o.proxy_uid = *u;
  }
  if (!gid_s.empty()) {
    auto g = parseId(gid_s, "--proxy-gid");
    if (!g) return fail(g.error());
    o.proxy_gid = *g;
  }
  if (o.concurrency == 0) return fail("--concurrency must be at least 1");
  bool given = proxy->count("--exclude-inbound-ports") > 0;
  if (auto s = capture.fill(o.capture_config, given, ""); !s) return fail(s.error());
  if (auto s = resolveDefaults(o, argv[0]); !s) return fail(s.error());
  mast::agent::Agent agent(std::move(o));
  return agent.run();
}
