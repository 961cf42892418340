#include "control/config/mesh_config.h"

#include <algorithm>
#include <set>

#include "base/yaml_json.h"
#include "control/config/json_proto.h"
#include "control/config/validation.h"

namespace mast::control::config {
namespace {

const char* kDefaults = R"({
  "proxyListenPort": 15001,
  "proxyInboundListenPort": 15006,
  "connectTimeout": "10s",
  "protocolDetectionTimeout": "0s",
  "ingressClass": "istio",
  "ingressService": "istio-ingressgateway",
  "ingressControllerMode": "STRICT",
  "enableTracing": true,
  "accessLogFile": "",
  "accessLogEncoding": "TEXT",
  "defaultConfig": {
    "configPath": "./etc/istio/proxy",
    "binaryPath": "/usr/local/bin/envoy",
    "serviceCluster": "istio-proxy",
    "drainDuration": "45s",
    "terminationDrainDuration": "5s",
    "discoveryAddress": "istiod.istio-system.svc:15012",
    "proxyAdminPort": 15000,
    "statNameLength": 189,
    "statusPort": 15020,
    "tracing": {"zipkin": {"address": "zipkin.istio-system:9411"}}
  },
  "outboundTrafficPolicy": {"mode": "ALLOW_ANY"},
  "inboundTrafficPolicy": {"mode": "PASSTHROUGH"},
  "enableAutoMtls": true,
  "trustDomain": "cluster.local",
  "defaultServiceExportTo": ["*"],
  "defaultVirtualServiceExportTo": ["*"],
  "defaultDestinationRuleExportTo": ["*"],
  "rootNamespace": "istio-system",
  "localityLbSetting": {"enabled": true},
  "dnsRefreshRate": "60s",
  "enablePrometheusMerge": true,
  "extensionProviders": [
    {"name": "prometheus", "prometheus": {}},
    {"name": "envoy", "envoyFileAccessLog": {"path": "/dev/stdout"}}
  ],
  "defaultProviders": {"metrics": ["prometheus"]}
})";

// Objects merge key by key; everything else (lists, scalars) replaces.
void mergeInto(nlohmann::json& base, const nlohmann::json& over) {
  if (!base.is_object() || !over.is_object()) {
    base = over;
    return;
  }
  for (const auto& [k, v] : over.items()) {
    if (base.contains(k) && base[k].is_object() && v.is_object()) {
      mergeInto(base[k], v);
    } else {
      base[k] = v;
    }
  }
}

}  // namespace

MeshConfig defaultMeshConfig() {
  MeshConfig mc;
  std::map<std::string, int> lines;
  std::vector<FieldError> errors;
  bool ok = jsonToMessage(nlohmann::json::parse(kDefaults), "", lines, mc, errors);
  (void)ok;  // the defaults are a constant that the tests parse
  return mc;
}

MeshConfigResult parseMeshConfig(std::string_view file_name, std::string_view text) {
  MeshConfigResult out;
  auto addError = [&](int line, const std::string& path, const std::string& message) {
    ConfigError e;
    e.file = std::string(file_name);
    e.line = line;
    e.path = path;
    e.message = message;
    out.errors.push_back(std::move(e));
  };
  auto doc = parseYaml(text, file_name);
  if (!doc) {
    addError(0, "", "invalid YAML: " + doc.error());
    return out;
  }
  nlohmann::json user = doc->json.is_null() ? nlohmann::json::object() : doc->json;
  if (!user.is_object()) {
    addError(doc->line(""), "", "expected a map of MeshConfig fields");
    return out;
  }
  // Check the user's own fields first so errors point at what they wrote.
  std::vector<FieldError> field_errors;
  normalizeJson(user, MeshConfig::descriptor(), "", doc->lines, field_errors);
  for (const auto& fe : field_errors) addError(doc->line(fe.path), fe.path, fe.message);
  if (!out.errors.empty()) {
    std::stable_sort(out.errors.begin(), out.errors.end(),
                     [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
    return out;
  }
  nlohmann::json merged = nlohmann::json::parse(kDefaults);
  std::map<std::string, int> default_lines;
  normalizeJson(merged, MeshConfig::descriptor(), "", default_lines, field_errors);
  mergeInto(merged, user);
  if (!jsonToMessage(merged, "", doc->lines, out.config, field_errors)) {
    for (const auto& fe : field_errors) addError(doc->line(fe.path), fe.path, fe.message);
    return out;
  }
  const MeshConfig& mc = out.config;
  auto check = [&](const std::string& path, const std::string& message) {
    if (!message.empty()) addError(doc->line(path), path, message);
  };
  auto duration = [&](const std::string& path, const google::protobuf::Duration& d) {
    if (d.seconds() < 0 || d.nanos() < 0 || (d.seconds() == 0 && d.nanos() < 1000000)) {
      check(path, "duration must be greater than 1ms");
    }
  };
  duration("connectTimeout", mc.connect_timeout());
  if (mc.has_dns_refresh_rate()) duration("dnsRefreshRate", mc.dns_refresh_rate());
  if (mc.trust_domain().empty()) check("trustDomain", "empty domain name not allowed");
  if (!isDns1123Label(mc.root_namespace())) {
    check("rootNamespace", "invalid namespace \"" + mc.root_namespace() + "\"");
  }
  if (mc.proxy_listen_port() != 0) check("proxyListenPort", checkPort(mc.proxy_listen_port()));
  if (mc.proxy_inbound_listen_port() != 0) {
    check("proxyInboundListenPort", checkPort(mc.proxy_inbound_listen_port()));
  }
  const auto& dc = mc.default_config();
  if (dc.proxy_admin_port() != 0)
    check("defaultConfig.proxyAdminPort", checkPort(dc.proxy_admin_port()));
  if (dc.status_port() != 0) check("defaultConfig.statusPort", checkPort(dc.status_port()));
  if (dc.has_drain_duration()) duration("defaultConfig.drainDuration", dc.drain_duration());
  if (dc.tracing().sampling() < 0 || dc.tracing().sampling() > 100) {
    check("defaultConfig.tracing.sampling", "sampling must be in range 0.0 - 100.0");
  }
  std::set<std::string> names;
  for (int i = 0; i < mc.extension_providers_size(); ++i) {
    const auto& p = mc.extension_providers(i);
    std::string path = "extensionProviders[" + std::to_string(i) + "]";
    if (p.name().empty()) check(path + ".name", "empty extension provider name");
    if (!names.insert(p.name()).second)
      check(path + ".name", "duplicate extension provider name " + p.name());
  }
  if (mc.has_default_http_retry_policy() && mc.default_http_retry_policy().attempts() < 0) {
    check("defaultHttpRetryPolicy.attempts", "attempts cannot be negative");
  }
  std::stable_sort(out.errors.begin(), out.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
  return out;
}

}  // namespace mast::control::config
