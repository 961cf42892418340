#include "agent/bootstrap.h"

#include <asio/ip/address.hpp>
#include <charconv>

namespace mast::agent {
namespace {

using nlohmann::json;

json socketAddress(const std::string& address, uint16_t port) {
  return {{"socket_address", {{"address", address}, {"port_value", port}}}};
}

bool isIpLiteral(const std::string& host) {
  std::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string join(const std::vector<std::string>& v, char sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

}  // namespace

std::string nodeId(const BootstrapOptions& o) {
  std::string domain = o.dns_domain.empty() ? o.ns + ".svc.cluster.local" : o.dns_domain;
  return o.type + "~" + o.ip + "~" + o.name + "." + o.ns + "~" + domain;
}

json makeBootstrap(const BootstrapOptions& o) {
  json labels = json::object();
  for (const auto& [k, v] : o.labels) labels[k] = v;
  json meta = json::object();
  for (const auto& [k, v] : o.extra_metadata) meta[k] = v;
  meta["LABELS"] = labels;
  meta["NAMESPACE"] = o.ns;
  meta["NAME"] = o.name;
  meta["WORKLOAD_NAME"] = o.name;
  meta["SERVICE_ACCOUNT"] = o.service_account.empty() ? "default" : o.service_account;
  meta["INSTANCE_IPS"] = join(o.instance_ips.empty() ? std::vector{o.ip} : o.instance_ips, ',');
  meta["CLUSTER_ID"] = o.cluster_id;
  if (!o.auto_register_group.empty()) meta["AUTO_REGISTER_GROUP"] = o.auto_register_group;
  if (o.capture) meta["INTERCEPTION_MODE"] = "REDIRECT";
  // Istio's ProxyConfig, the part a reader of the node needs: mastctl proxy-config PROXY finds
  // the admin port here (istioctl reads proxyAdminPort the same way).
  meta["PROXY_CONFIG"] = {
      {"proxyAdminPort", o.admin_port},
      {"discoveryAddress", o.discovery_host + ":" + std::to_string(o.discovery_port)}};

  json ads_source = {{"ads", json::object()}, {"resource_api_version", "V3"}};
  bool ip = isIpLiteral(o.discovery_host);
  json xds_cluster = {
      {"name", "xds-grpc"},
      {"type", ip ? "STATIC" : "STRICT_DNS"},
      {"connect_timeout", "1s"},
      {"typed_extension_protocol_options",
       {{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
         {{"@type", "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"},
          {"explicit_http_config", {{"http2_protocol_options", json::object()}}}}}}},
      {"load_assignment",
       {{"cluster_name", "xds-grpc"},
        {"endpoints",
         json::array({{{"lb_endpoints",
                        json::array({{{"endpoint",
                                       {{"address", socketAddress(o.discovery_host,
                                                                  o.discovery_port)}}}}})}}})}}}};
  json prometheus_cluster = {
      {"name", "prometheus_stats"},
      {"type", "STATIC"},
      {"connect_timeout", "0.250s"},
      {"load_assignment",
       {{"cluster_name", "prometheus_stats"},
        {"endpoints",
         json::array(
             {{{"lb_endpoints",
                json::array({{{"endpoint",
                               {{"address", socketAddress("127.0.0.1", o.admin_port)}}}}})}}})}}}};
  json hcm = {
      {"@type",
       "type.googleapis.com/"
       "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"},
      {"codec_type", "AUTO"},
      {"stat_prefix", "stats"},
      {"route_config",
       {{"virtual_hosts",
         json::array(
             {{{"name", "backend"},
               {"domains", json::array({"*"})},
               {"routes", json::array({{{"match", {{"prefix", "/stats/prometheus"}}},
                                        {"route", {{"cluster", "prometheus_stats"}}}}})}}})}}},
      {"http_filters",
       json::array(
           {{{"name", "envoy.filters.http.router"},
             {"typed_config",
              {{"@type",
                "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}}}})}};
  json prometheus_listener = {
      {"name", "prometheus_stats"},
      {"address", socketAddress("0.0.0.0", o.stats_port)},
      {"filter_chains",
       json::array(
           {{{"filters", json::array({{{"name", "envoy.filters.network.http_connection_manager"},
                                       {"typed_config", hcm}}})}}})}};

  return {{"node",
           {{"id", nodeId(o)},
            {"cluster", o.name + "." + o.ns},
            {"locality", json::object()},
            {"metadata", meta}}},
          {"admin", {{"address", socketAddress("127.0.0.1", o.admin_port)}}},
          {"dynamic_resources",
           {{"ads_config",
             {{"api_type", "GRPC"},
              {"transport_api_version", "V3"},
              {"grpc_services", json::array({{{"envoy_grpc", {{"cluster_name", "xds-grpc"}}}}})}}},
            {"cds_config", ads_source},
            {"lds_config", ads_source}}},
          {"static_resources",
           {{"clusters", json::array({xds_cluster, prometheus_cluster})},
            {"listeners", json::array({prometheus_listener})}}}};
}

Result<std::pair<std::string, uint16_t>> parseHostPort(std::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Error{"'" + std::string(s) + "': expected HOST:PORT"};
  }
  std::string host(s.substr(0, colon));
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::string_view p = s.substr(colon + 1);
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (ec != std::errc() || ptr != p.data() + p.size() || v == 0 || v > 65535) {
    return Error{"'" + std::string(s) + "': bad port"};
  }
  return std::pair{host, static_cast<uint16_t>(v)};
}

Result<std::pair<std::string, std::string>> parseWorkload(std::string_view s) {
  size_t dot = s.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == s.size()) {
    return Error{"'" + std::string(s) + "': expected NAME.NAMESPACE"};
  }
  std::string ns(s.substr(dot + 1));
  if (ns.find('.') != std::string::npos) {
    return Error{"'" + std::string(s) + "': a namespace has no dots (expected NAME.NAMESPACE)"};
  }
  return std::pair{std::string(s.substr(0, dot)), ns};
}

Result<std::map<std::string, std::string>> parseKeyValues(std::string_view s) {
  std::map<std::string, std::string> out;
  while (!s.empty()) {
    size_t comma = s.find(',');
    std::string_view item = s.substr(0, comma);
    s = comma == std::string_view::npos ? std::string_view{} : s.substr(comma + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return Error{"'" + std::string(item) + "': expected KEY=VALUE"};
    }
    out[std::string(item.substr(0, eq))] = std::string(item.substr(eq + 1));
  }
  return out;
}

}  // namespace mast::agent
