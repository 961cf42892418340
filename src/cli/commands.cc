#include "cli/commands.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/client.h"

namespace mast::cli {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string groupOf(const std::string& kind) {
  if (kind == "PeerAuthentication" || kind == "AuthorizationPolicy" ||
      kind == "RequestAuthentication") {
    return "security.istio.io";
  }
  if (kind == "Telemetry") return "telemetry.istio.io";
  return "networking.istio.io";
}

// Reads the documents to send: files, directories (their *.yaml/*.yml/*.json), or "-".
struct Input {
  std::string source;
  std::string text;
};

bool readInputs(const std::vector<std::string>& files, std::istream& in, std::vector<Input>& out,
                std::ostream& err) {
  namespace fs = std::filesystem;
  for (const auto& f : files) {
    if (f == "-") {
      std::stringstream ss;
      ss << in.rdbuf();
      out.push_back({"<stdin>", ss.str()});
      continue;
    }
    std::error_code ec;
    if (fs::is_directory(f, ec)) {
      std::vector<std::string> paths;
      for (const auto& e : fs::directory_iterator(f)) {
        auto ext = e.path().extension().string();
        if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml" || ext == ".json")) {
          paths.push_back(e.path().string());
        }
      }
      std::sort(paths.begin(), paths.end());
      for (const auto& p : paths) {
        std::ifstream s(p);
        std::stringstream ss;
        ss << s.rdbuf();
        out.push_back({p, ss.str()});
      }
      continue;
    }
    std::ifstream s(f);
    if (!s) {
      err << "error: cannot read " << f << "\n";
      return false;
    }
    std::stringstream ss;
    ss << s.rdbuf();
    out.push_back({f, ss.str()});
  }
  return true;
}

int printErrors(const ApiResponse& r, std::ostream& err) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("errors")) {
    for (const auto& e : j["errors"]) {
      if (e.contains("text")) {
        err << "error: " << e["text"].get<std::string>() << "\n";
      } else {
        err << "error: " << (e.contains("resource") ? e["resource"].get<std::string>() + ": " : "")
            << e.value("message", "") << "\n";
      }
    }
  } else if (j.is_object() && j.contains("error")) {
    err << "error: " << j["error"].get<std::string>() << "\n";
  } else {
    err << "error: mastd answered " << r.status << ": " << r.body << "\n";
  }
  return 1;
}

// "34ms", "1.2s".
std::string formatSeconds(double s) {
  char buf[32];
  if (s < 1) {
    std::snprintf(buf, sizeof(buf), "%.0fms", s * 1000);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1fs", s);
  }
  return buf;
}

std::string pad(const std::string& s, size_t w) {
  return s.size() >= w ? s + " " : s + std::string(w - s.size(), ' ');
}

}  // namespace

std::string canonicalKind(std::string kind) {
  static const std::map<std::string, std::string> kAliases = {
      {"gateway", "Gateway"},
      {"gw", "Gateway"},
      {"virtualservice", "VirtualService"},
      {"vs", "VirtualService"},
      {"destinationrule", "DestinationRule"},
      {"dr", "DestinationRule"},
      {"serviceentry", "ServiceEntry"},
      {"se", "ServiceEntry"},
      {"workloadentry", "WorkloadEntry"},
      {"we", "WorkloadEntry"},
      {"workloadgroup", "WorkloadGroup"},
      {"wg", "WorkloadGroup"},
      {"sidecar", "Sidecar"},
      {"peerauthentication", "PeerAuthentication"},
      {"pa", "PeerAuthentication"},
      {"authorizationpolicy", "AuthorizationPolicy"},
      {"ap", "AuthorizationPolicy"},
      {"requestauthentication", "RequestAuthentication"},
      {"ra", "RequestAuthentication"},
      {"telemetry", "Telemetry"},
  };
  std::string k = lower(kind);
  if (auto dot = k.find('.'); dot != std::string::npos) k = k.substr(0, dot);  // vs.networking...
  auto it = kAliases.find(k);
  if (it == kAliases.end() && k.size() > 1 && k.back() == 's')
    it = kAliases.find(k.substr(0, k.size() - 1));
  if (it == kAliases.end() && k.size() > 2 && k.ends_with("es"))
    it = kAliases.find(k.substr(0, k.size() - 2));
  return it == kAliases.end() ? "" : it->second;
}

int apply(const GlobalOptions& g, const std::vector<std::string>& files, bool dry_run,
          std::istream& in, std::ostream& out, std::ostream& err) {
  std::vector<Input> inputs;
  if (!readInputs(files, in, inputs, err)) return 1;
  // Validate everything first (dry run), so that nothing is written unless all of it is valid.
  for (const auto& i : inputs) {
    auto r =
        request(g.mastd, "POST", "/api/v1/apply?dryRun=true&source=" + urlEncode(i.source), i.text);
    if (!r) {
      err << "error: " << r.error() << "\n";
      return 1;
    }
    if (r->status != 200) return printErrors(*r, err);
  }
  for (const auto& i : inputs) {
    auto r = request(g.mastd, "POST",
                     std::string("/api/v1/apply?dryRun=") + (dry_run ? "true" : "false") +
                         "&source=" + urlEncode(i.source),
                     i.text);
    if (!r) {
      err << "error: " << r.error() << "\n";
      return 1;
    }
    if (r->status != 200) return printErrors(*r, err);
    auto j = nlohmann::json::parse(r->body);
    for (const auto& res : j["results"]) {
      std::string kind = res["kind"];
      out << lower(kind) << "." << groupOf(kind) << "/" << res["name"].get<std::string>() << " "
          << res["outcome"].get<std::string>() << (dry_run ? " (dry run)" : "") << "\n";
    }
  }
  return 0;
}

int get(const GlobalOptions& g, const std::string& kind_arg, const std::string& name,
        const std::string& ns, bool all_namespaces, const std::string& output, std::ostream& out,
        std::ostream& err) {
  std::string kind;
  if (kind_arg != "all") {
    kind = canonicalKind(kind_arg);
    if (kind.empty()) {
      err << "error: unknown resource type \"" << kind_arg << "\"\n";
      return 2;
    }
  }
  std::string q = "/api/v1/resources?kind=" + urlEncode(kind);
  std::string namespace_ = all_namespaces ? "" : (ns.empty() ? "default" : ns);
  q += "&namespace=" + urlEncode(namespace_);
  if (!name.empty()) q += "&name=" + urlEncode(name);
  if (output == "yaml") q += "&format=yaml";
  auto r = request(g.mastd, "GET", q);
  if (!r) {
    err << "error: " << r.error() << "\n";
    return 1;
  }
  if (r->status != 200) return printErrors(*r, err);
  if (output == "yaml") {
    out << r->body;
    return 0;
  }
  auto j = nlohmann::json::parse(r->body);
  if (output == "json") {
    if (!name.empty() && j["items"].size() == 1) {
      out << j["items"][0].dump(2) << "\n";
    } else {
      out << nlohmann::json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", j["items"]}}.dump(2)
          << "\n";
    }
    return 0;
  }
  if (j["items"].empty()) {
    err << "No resources found" << (namespace_.empty() ? "" : " in " + namespace_ + " namespace")
        << ".\n";
    return 0;
  }
  out << (all_namespaces ? pad("NAMESPACE", 16) : "") << pad("NAME", 32) << pad("KIND", 24)
      << pad("ACCEPTED", 10) << pad("REJECTED", 10) << pad("CONVERGED", 11) << "SUMMARY\n";
  for (const auto& item : j["items"]) {
    const auto& spec = item["spec"];
    std::string summary;
    if (spec.contains("hosts")) {
      for (const auto& h : spec["hosts"])
        summary += (summary.empty() ? "" : ",") + h.get<std::string>();
      summary = "hosts=" + summary;
    } else if (spec.contains("host")) {
      summary = "host=" + spec["host"].get<std::string>();
    } else if (spec.contains("address")) {
      summary = "address=" + spec["address"].get<std::string>();
    }
    // Convergence (mastd's status block): accepted by N of the M proxies that need it.
    std::string accepted = "-", rejected = "-", converged = "-";
    if (item.contains("status")) {
      const auto& st = item["status"];
      int needed = st.value("proxies", 0);
      if (needed > 0) {
        accepted = std::to_string(st.value("accepted", 0)) + "/" + std::to_string(needed);
        rejected = std::to_string(st.value("rejected", 0));
      }
      if (st.contains("convergenceSeconds")) {
        converged = formatSeconds(st["convergenceSeconds"].get<double>());
      }
    }
    out << (all_namespaces ? pad(item["metadata"]["namespace"], 16) : "")
        << pad(item["metadata"]["name"], 32) << pad(item["kind"], 24) << pad(accepted, 10)
        << pad(rejected, 10) << pad(converged, 11) << summary << "\n";
  }
  return 0;
}

int removeFiles(const GlobalOptions& g, const std::vector<std::string>& files, std::istream& in,
                std::ostream& out, std::ostream& err) {
  std::vector<Input> inputs;
  if (!readInputs(files, in, inputs, err)) return 1;
  int rc = 0;
  for (const auto& i : inputs) {
    // Identify the documents with a dry-run apply (validates them too).
    auto r =
        request(g.mastd, "POST", "/api/v1/apply?dryRun=true&source=" + urlEncode(i.source), i.text);
    if (!r) {
      err << "error: " << r.error() << "\n";
      return 1;
    }
    if (r->status != 200) return printErrors(*r, err);
    for (const auto& res : nlohmann::json::parse(r->body)["results"]) {
      rc |= removeResource(g, res["kind"], res["name"], res["namespace"], out, err);
    }
  }
  return rc;
}

int removeResource(const GlobalOptions& g, const std::string& kind_arg, const std::string& name,
                   const std::string& ns, std::ostream& out, std::ostream& err) {
  std::string kind = canonicalKind(kind_arg);
  if (kind.empty()) {
    err << "error: unknown resource type \"" << kind_arg << "\"\n";
    return 2;
  }
  auto r = request(g.mastd, "DELETE",
                   "/api/v1/resources?kind=" + kind + "&namespace=" +
                       urlEncode(ns.empty() ? "default" : ns) + "&name=" + urlEncode(name));
  if (!r) {
    err << "error: " << r.error() << "\n";
    return 1;
  }
  if (r->status != 200) return printErrors(*r, err);
  out << lower(kind) << "." << groupOf(kind) << " \"" << name << "\" deleted\n";
  return 0;
}

int analyze(const GlobalOptions& g, const std::vector<std::string>& files, std::istream& in,
            std::ostream& out, std::ostream& err) {
  std::vector<Input> inputs;
  if (!readInputs(files, in, inputs, err)) return 1;
  std::string body;
  for (const auto& i : inputs) body += (body.empty() ? "" : "\n---\n") + i.text;
  std::string source = inputs.size() == 1 ? inputs[0].source : "<files>";
  auto r = request(g.mastd, "POST", "/api/v1/analyze?source=" + urlEncode(source), body);
  if (!r) {
    err << "error: " << r.error() << "\n";
    return 1;
  }
  if (r->status != 200) return printErrors(*r, err);
  auto j = nlohmann::json::parse(r->body);
  bool errors = false;
  for (const auto& m : j["messages"]) {
    out << m["text"].get<std::string>() << "\n";
    errors = errors || m["level"] == "Error";
  }
  if (j["messages"].empty()) out << "\u2714 No validation issues found when analyzing the mesh.\n";
  if (errors) {
    err << "Error: Analyzers found issues.\n";
    return 79;
  }
  return 0;
}

int proxyStatus(const GlobalOptions& g, const std::string& proxy, std::ostream& out,
                std::ostream& err) {
  auto r = request(g.mastd, "GET", "/debug/syncz");
  if (!r) {
    err << "error: " << r.error() << "\n";
    return 1;
  }
  if (r->status != 200) return printErrors(*r, err);
  auto j = nlohmann::json::parse(r->body);
  auto state = [](const nlohmann::json& types, const char* t) -> std::string {
    if (!types.contains(t)) return "NOT SENT";
    std::string s = types[t]["state"];
    return s;
  };
  std::vector<std::string> errors;
  out << pad("NAME", 64) << pad("TYPE", 9) << pad("CDS", 10) << pad("LDS", 10) << pad("EDS", 10)
      << pad("RDS", 10) << "VERSION\n";
  for (const auto& p : j["proxies"]) {
    std::string id = p["proxy"];
    if (!proxy.empty() && id.find(proxy) == std::string::npos) continue;
    const auto& types = p["types"];
    std::string version;
    for (const char* t : {"CDS", "LDS", "EDS", "RDS"}) {
      if (types.contains(t) && !types[t]["acked_version"].get<std::string>().empty()) {
        version += std::string(version.empty() ? "" : " ") + t + "=" +
                   types[t]["acked_version"].get<std::string>().substr(0, 8);
      }
      if (types.contains(t) && !types[t]["error"].get<std::string>().empty()) {
        errors.push_back(id + " " + t + " rejected version " +
                         types[t]["nacked_version"].get<std::string>() + ": " +
                         types[t]["error"].get<std::string>());
      }
    }
    out << pad(id, 64) << pad(p["type"], 9) << pad(state(types, "CDS"), 10)
        << pad(state(types, "LDS"), 10) << pad(state(types, "EDS"), 10)
        << pad(state(types, "RDS"), 10) << version << "\n";
  }
  for (const auto& e : errors) out << "ERROR " << e << "\n";
  return 0;
}

}  // namespace mast::cli
