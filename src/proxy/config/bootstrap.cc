#include "proxy/config/bootstrap.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <fstream>
#include <set>
#include <sstream>

#include "envoy/config/bootstrap/v3/bootstrap.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.pb.h"

namespace mast::proxy::config {

namespace pb = google::protobuf;

namespace {

struct Walker {
  const YamlDocument* source;
  const std::string& file;

  Error error(const std::string& path, const std::string& msg) const {
    int line = source ? source->line(path) : 0;
    std::string where = file.empty() ? std::string("<config>") : file;
    if (line > 0) where += ":" + std::to_string(line);
    return Error{where + ": " + (path.empty() ? std::string("(root)") : path) + ": " + msg};
  }

  static bool isStructLike(const pb::Descriptor* d) {
    const std::string& n = d->full_name();
    return n == "google.protobuf.Struct" || n == "google.protobuf.Value" ||
           n == "google.protobuf.ListValue" || n == "google.protobuf.FieldMask" ||
           n == "google.protobuf.Empty";
  }

  Status walkMessage(const nlohmann::json& j, const pb::Descriptor* d,
                     const std::string& path) const {
    const std::string& full = d->full_name();
    if (isStructLike(d)) return {};
    if (full == "google.protobuf.Duration") {
      if (!j.is_string()) return error(path, "expected a duration string like \"5s\"");
      std::string s = j.get<std::string>();
      if (s.empty() || s.back() != 's') return error(path, "invalid duration \"" + s + "\"");
      std::string num = s.substr(0, s.size() - 1);
      char* end = nullptr;
      std::strtod(num.c_str(), &end);
      if (num.empty() || end != num.c_str() + num.size()) {
        return error(path, "invalid duration \"" + s + "\"");
      }
      return {};
    }
    if (full == "google.protobuf.Timestamp") return {};
    if (d->well_known_type() >= pb::Descriptor::WELLKNOWNTYPE_DOUBLEVALUE &&
        d->well_known_type() <= pb::Descriptor::WELLKNOWNTYPE_BOOLVALUE) {
      // Wrappers take the bare scalar.
      return walkScalar(j, d->FindFieldByNumber(1), path);
    }
    if (full == "google.protobuf.Any") {
      if (!j.is_object()) return error(path, "expected an object with \"@type\"");
      auto t = j.find("@type");
      if (t == j.end() || !t->is_string()) return error(path, "missing \"@type\"");
      std::string url = t->get<std::string>();
      std::string name = url.substr(url.rfind('/') + 1);
      const pb::Descriptor* inner =
          pb::DescriptorPool::generated_pool()->FindMessageTypeByName(name);
      if (!inner) return error(path + ".@type", "unknown type \"" + url + "\"");
      nlohmann::json rest = j;
      rest.erase("@type");
      if (isStructLike(inner) ||
          inner->well_known_type() != pb::Descriptor::WELLKNOWNTYPE_UNSPECIFIED) {
        return {};
      }
      return walkMessage(rest, inner, path);
    }
    if (!j.is_object()) return error(path, "expected an object for " + full);
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      std::string child = path.empty() ? key : path + "." + key;
      const pb::FieldDescriptor* f = d->FindFieldByName(key);
      if (!f) f = d->FindFieldByCamelcaseName(key);
      if (!f) {
        for (int i = 0; i < d->field_count() && !f; ++i) {
          if (d->field(i)->json_name() == key) f = d->field(i);
        }
      }
      if (!f) return error(child, "unknown field \"" + key + "\" in " + full);
      if (it->is_null()) continue;
      if (f->is_map()) {
        if (!it->is_object()) return error(child, "expected an object (map)");
        const pb::FieldDescriptor* vf = f->message_type()->FindFieldByName("value");
        for (auto mi = it->begin(); mi != it->end(); ++mi) {
          std::string mpath = child + "[" + mi.key() + "]";
          Status s = vf->type() == pb::FieldDescriptor::TYPE_MESSAGE
                         ? walkMessage(*mi, vf->message_type(), mpath)
                         : walkScalar(*mi, vf, mpath);
          if (!s) return s;
        }
        continue;
      }
      if (f->is_repeated()) {
        if (!it->is_array()) return error(child, "expected a list");
        for (size_t i = 0; i < it->size(); ++i) {
          std::string epath = child + "[" + std::to_string(i) + "]";
          Status s = f->type() == pb::FieldDescriptor::TYPE_MESSAGE
                         ? walkMessage((*it)[i], f->message_type(), epath)
                         : walkScalar((*it)[i], f, epath);
          if (!s) return s;
        }
        continue;
      }
      Status s = f->type() == pb::FieldDescriptor::TYPE_MESSAGE
                     ? walkMessage(*it, f->message_type(), child)
                     : walkScalar(*it, f, child);
      if (!s) return s;
    }
    return {};
  }

  Status walkScalar(const nlohmann::json& j, const pb::FieldDescriptor* f,
                    const std::string& path) const {
    using FD = pb::FieldDescriptor;
    switch (f->cpp_type()) {
      case FD::CPPTYPE_STRING:
        if (!j.is_string()) return error(path, "expected a string");
        return {};
      case FD::CPPTYPE_BOOL:
        if (!j.is_boolean()) return error(path, "expected true or false");
        return {};
      case FD::CPPTYPE_ENUM: {
        if (j.is_number_integer()) return {};
        if (!j.is_string()) return error(path, "expected an enum name");
        std::string v = j.get<std::string>();
        if (!f->enum_type()->FindValueByName(v)) {
          std::string names;
          for (int i = 0; i < f->enum_type()->value_count() && i < 8; ++i) {
            if (i) names += ", ";
            names += f->enum_type()->value(i)->name();
          }
          return error(path, "invalid value \"" + v + "\" for " + f->enum_type()->full_name() +
                                 " (one of " + names + ")");
        }
        return {};
      }
      default:
        if (j.is_number()) {
          if (j.is_number_float() && f->cpp_type() != FD::CPPTYPE_DOUBLE &&
              f->cpp_type() != FD::CPPTYPE_FLOAT) {
            return error(path, "expected an integer");
          }
          if (j.is_number_integer() && j.get<int64_t>() < 0 &&
              (f->cpp_type() == FD::CPPTYPE_UINT32 || f->cpp_type() == FD::CPPTYPE_UINT64)) {
            return error(path, "expected a non-negative integer");
          }
          return {};
        }
        if (j.is_string()) {
          std::string s = j.get<std::string>();
          char* end = nullptr;
          std::strtod(s.c_str(), &end);
          if (!s.empty() && end == s.c_str() + s.size()) return {};
        }
        return error(path, "expected a number");
    }
  }
};

// Every error is one line (what --mode validate prints): YAML keys and values quoted in messages
// can hold line breaks (a multi-line plain scalar keeps a blank line as "\n"), and so can the YAML
// parser's messages (found by fuzz/config).
std::string oneLine(const std::string& e) {
  std::string out;
  for (char c : e) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  return out;
}

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path + ": cannot read file"};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<std::unique_ptr<envoy::config::bootstrap::v3::Bootstrap>> parseOne(
    const std::string& text, const std::string& file, YamlDocument* keep = nullptr) {
  auto doc = parseYaml(text, file);
  if (!doc) return Error{oneLine(doc.error())};
  if (keep) *keep = *doc;
  auto b = std::make_unique<envoy::config::bootstrap::v3::Bootstrap>();
  if (doc->json.is_null()) return b;
  if (auto s = jsonToMessage(doc->json, *b, &*doc, file); !s) return Error{oneLine(s.error())};
  return b;
}

}  // namespace

Status jsonToMessage(const nlohmann::json& json, pb::Message& msg, const YamlDocument* source,
                     const std::string& file_name) {
  Walker w{source, file_name};
  if (auto s = w.walkMessage(json, msg.GetDescriptor(), ""); !s) return s;
  pb::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  const std::string where = file_name.empty() ? std::string("<config>") : file_name;
  std::string text;
  try {
    text = json.dump();
  } catch (const nlohmann::json::type_error& e) {
    // A YAML string that is not UTF-8 (found by fuzz/config): an error, not a terminate().
    return Error{where + ": not valid UTF-8: " + e.what()};
  }
  auto st = pb::util::JsonStringToMessage(text, &msg, opts);
  if (!st.ok()) return Error{where + ": " + std::string(st.message())};
  return {};
}

// "path: message" from validateBootstrap → "file:line: path: message".
Error locate(const std::string& file, const YamlDocument* doc, const std::string& err) {
  size_t colon = err.find(": ");
  int line = doc && colon != std::string::npos ? doc->line(err.substr(0, colon)) : 0;
  return Error{
      oneLine(file + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " + err)};
}

Result<std::unique_ptr<envoy::config::bootstrap::v3::Bootstrap>> loadBootstrapFromString(
    const std::string& text, const std::string& file_name) {
  YamlDocument doc;
  auto b = parseOne(text, file_name, &doc);
  if (!b) return b;
  if (auto s = validateBootstrap(**b); !s) return locate(file_name, &doc, s.error());
  return b;
}

Result<std::unique_ptr<envoy::config::bootstrap::v3::Bootstrap>> loadBootstrap(
    const BootstrapSource& src, YamlDocument* doc_out) {
  std::unique_ptr<envoy::config::bootstrap::v3::Bootstrap> b;
  YamlDocument local_doc;
  YamlDocument& doc = doc_out ? *doc_out : local_doc;
  if (!src.path.empty()) {
    auto text = readFile(src.path);
    if (!text) return Error{text.error()};
    auto parsed = parseOne(*text, src.path, &doc);
    if (!parsed) return parsed;
    b = std::move(*parsed);
  } else {
    b = std::make_unique<envoy::config::bootstrap::v3::Bootstrap>();
  }
  if (!src.config_yaml.empty()) {
    auto overlay = parseOne(src.config_yaml, "--config-yaml");
    if (!overlay) return overlay;
    b->MergeFrom(**overlay);
  }
  if (auto s = validateBootstrap(*b); !s) {
    return locate(src.path.empty() ? std::string("--config-yaml") : src.path,
                  src.path.empty() ? nullptr : &doc, s.error());
  }
  return b;
}

std::string locateError(const std::string& error, const std::string& file,
                        const YamlDocument& doc) {
  std::string prefix = file + ": ";
  if (error.compare(0, prefix.size(), prefix) != 0) return error;
  std::string rest = error.substr(prefix.size());
  size_t colon = rest.find(": ");
  if (colon == std::string::npos) return error;
  int line = doc.line(rest.substr(0, colon));
  if (line <= 0) return error;
  return file + ":" + std::to_string(line) + ": " + rest;
}

namespace {

const std::set<std::string>& supportedHttpFilters() {
  static const std::set<std::string> k{
      "envoy.extensions.filters.http.router.v3.Router",
      "envoy.extensions.filters.http.fault.v3.HTTPFault",
      "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
      "envoy.extensions.filters.http.cors.v3.Cors"};
  return k;
}

std::string typeName(const pb::Any& any) {
  const std::string& url = any.type_url();
  return url.substr(url.rfind('/') + 1);
}

}  // namespace

Status validateBootstrap(const envoy::config::bootstrap::v3::Bootstrap& b) {
  namespace hcm = envoy::extensions::filters::network::http_connection_manager::v3;
  std::set<std::string> clusters;
  const auto& sr = b.static_resources();
  for (int i = 0; i < sr.clusters_size(); ++i) {
    const std::string& n = sr.clusters(i).name();
    if (!clusters.insert(n).second) {
      return Error{"static_resources.clusters[" + std::to_string(i) +
                   "].name: duplicate cluster '" + n + "'"};
    }
  }
  bool dynamic_clusters = b.has_dynamic_resources() && b.dynamic_resources().has_cds_config();
  auto checkCluster = [&](const std::string& name, const std::string& path) -> Status {
    if (dynamic_clusters || clusters.count(name)) return {};
    return Error{path + ": unknown cluster '" + name + "'"};
  };
  std::set<std::string> listener_names;
  for (int li = 0; li < sr.listeners_size(); ++li) {
    const auto& l = sr.listeners(li);
    std::string lpath = "static_resources.listeners[" + std::to_string(li) + "]";
    if (!listener_names.insert(l.name()).second) {
      return Error{lpath + ".name: duplicate listener '" + l.name() + "'"};
    }
    for (int fi = 0; fi < l.listener_filters_size(); ++fi) {
      const auto& lf = l.listener_filters(fi);
      std::string t = lf.has_typed_config() ? typeName(lf.typed_config()) : lf.name();
      static const std::set<std::string> k{
          "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
          "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
          "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
          "envoy.filters.listener.tls_inspector",
          "envoy.filters.listener.original_dst",
          "envoy.filters.listener.http_inspector"};
      if (!k.count(t)) {
        return Error{lpath + ".listener_filters[" + std::to_string(fi) +
                     "]: unsupported listener filter '" + t + "'"};
      }
    }
    auto chains = std::vector<const envoy::config::listener::v3::FilterChain*>();
    for (const auto& fc : l.filter_chains()) chains.push_back(&fc);
    if (l.has_default_filter_chain()) chains.push_back(&l.default_filter_chain());
    for (size_t ci = 0; ci < chains.size(); ++ci) {
      const auto& fc = *chains[ci];
      std::string cpath = ci < static_cast<size_t>(l.filter_chains_size())
                              ? lpath + ".filter_chains[" + std::to_string(ci) + "]"
                              : lpath + ".default_filter_chain";
      for (int nfi = 0; nfi < fc.filters_size(); ++nfi) {
        const auto& nf = fc.filters(nfi);
        std::string fpath = cpath + ".filters[" + std::to_string(nfi) + "]";
        std::string t = typeName(nf.typed_config());
        if (t ==
            "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager") {
          hcm::HttpConnectionManager h;
          nf.typed_config().UnpackTo(&h);
          std::string hpath = fpath + ".typed_config";
          if (h.has_rds()) {
            if (!b.has_dynamic_resources()) {
              return Error{hpath + ".rds: RDS needs dynamic_resources (ADS)"};
            }
          } else if (!h.has_route_config()) {
            return Error{hpath + ": route_config or rds is required"};
          }
          for (int hi = 0; hi < h.http_filters_size(); ++hi) {
            const auto& hf = h.http_filters(hi);
            std::string t2 = hf.has_typed_config() ? typeName(hf.typed_config()) : "";
            if (!supportedHttpFilters().count(t2) && !hf.is_optional()) {
              return Error{hpath + ".http_filters[" + std::to_string(hi) +
                           "]: unsupported HTTP filter '" + (t2.empty() ? hf.name() : t2) +
                           "' (set is_optional to skip it)"};
            }
          }
          if (h.http_filters_size() == 0 ||
              typeName(h.http_filters(h.http_filters_size() - 1).typed_config()) !=
                  "envoy.extensions.filters.http.router.v3.Router") {
            return Error{hpath +
                         ".http_filters: the last HTTP filter must be "
                         "envoy.filters.http.router"};
          }
          for (int ai = 0; ai < h.access_log_size(); ++ai) {
            std::string t3 = typeName(h.access_log(ai).typed_config());
            static const std::set<std::string> k{
                "envoy.extensions.access_loggers.file.v3.FileAccessLog",
                "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                "envoy.extensions.access_loggers.stream.v3.StderrAccessLog"};
            if (!k.count(t3)) {
              return Error{hpath + ".access_log[" + std::to_string(ai) +
                           "]: unsupported access logger '" + t3 + "'"};
            }
          }
          const auto& rc = h.route_config();
          for (int vi = 0; vi < rc.virtual_hosts_size(); ++vi) {
            const auto& vh = rc.virtual_hosts(vi);
            for (int ri = 0; ri < vh.routes_size(); ++ri) {
              const auto& r = vh.routes(ri);
              std::string rpath = hpath + ".route_config.virtual_hosts[" + std::to_string(vi) +
                                  "].routes[" + std::to_string(ri) + "].route";
              if (!r.has_route()) continue;
              if (!r.route().cluster().empty()) {
                if (auto s = checkCluster(r.route().cluster(), rpath + ".cluster"); !s) return s;
              }
              for (int wi = 0; wi < r.route().weighted_clusters().clusters_size(); ++wi) {
                const auto& wc = r.route().weighted_clusters().clusters(wi);
                if (auto s = checkCluster(wc.name(), rpath + ".weighted_clusters.clusters[" +
                                                         std::to_string(wi) + "].name");
                    !s) {
                  return s;
                }
              }
              for (int mi = 0; mi < r.route().request_mirror_policies_size(); ++mi) {
                const auto& mp = r.route().request_mirror_policies(mi);
                if (auto s = checkCluster(mp.cluster(), rpath + ".request_mirror_policies[" +
                                                            std::to_string(mi) + "].cluster");
                    !s) {
                  return s;
                }
              }
            }
          }
        } else if (t == "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy") {
          envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy tp;
          nf.typed_config().UnpackTo(&tp);
          std::string tpath = fpath + ".typed_config";
          if (!tp.cluster().empty()) {
            if (auto s = checkCluster(tp.cluster(), tpath + ".cluster"); !s) return s;
          } else if (tp.weighted_clusters().clusters_size() == 0) {
            return Error{tpath + ": cluster or weighted_clusters is required"};
          }
          if (tp.hash_policy_size() > 1) {
            return Error{tpath + ".hash_policy[1]: at most one hash policy"};
          }
          if (tp.hash_policy_size() == 1 && !tp.hash_policy(0).has_source_ip()) {
            return Error{tpath +
                         ".hash_policy[0]: only source_ip is supported (filter_state is not)"};
          }
          for (int wi = 0; wi < tp.weighted_clusters().clusters_size(); ++wi) {
            if (auto s = checkCluster(
                    tp.weighted_clusters().clusters(wi).name(),
                    tpath + ".weighted_clusters.clusters[" + std::to_string(wi) + "].name");
                !s) {
              return s;
            }
          }
        } else {
          return Error{fpath + ": unsupported network filter '" + (t.empty() ? nf.name() : t) +
                       "'"};
        }
      }
    }
  }
  return {};
}

}  // namespace mast::proxy::config
