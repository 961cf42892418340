#include "control/config/parse.h"

#include <algorithm>
#include <set>

#include "base/yaml_json.h"
#include "control/config/json_proto.h"
#include "control/config/validation.h"

namespace mast::control::config {
namespace {

struct Chunk {
  int first_line = 1;  // 1-based line of the chunk's first line in the file
  std::string text;    // padded with blank lines so YAML line numbers equal file line numbers
};

bool isBlankOrComment(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    size_t eol = text.find('\n', i);
    std::string_view line =
        text.substr(i, eol == std::string_view::npos ? std::string_view::npos : eol - i);
    size_t nb = line.find_first_not_of(" \t\r");
    if (nb != std::string_view::npos && line[nb] != '#') return false;
    if (eol == std::string_view::npos) break;
    i = eol + 1;
  }
  return true;
}

bool isDocumentMarker(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line == "...") return true;
  if (line.substr(0, 3) != "---") return false;
  return line.size() == 3 || line[3] == ' ' || line[3] == '\t';
}

// Splits at "---" lines so that a syntax error in one document leaves the others intact.
// Content after "--- " on the marker line (e.g. "--- # comment") is kept as part of the next
// document's first line.
std::vector<Chunk> splitDocuments(std::string_view text) {
  std::vector<Chunk> chunks;
  Chunk cur;
  std::string padding;
  int line_no = 1;
  size_t i = 0;
  while (i <= text.size()) {
    size_t eol = text.find('\n', i);
    std::string_view line =
        text.substr(i, eol == std::string_view::npos ? std::string_view::npos : eol - i);
    if (isDocumentMarker(line)) {
      chunks.push_back(std::move(cur));
      cur = Chunk{};
      cur.first_line = line_no + 1;
      padding.assign(static_cast<size_t>(line_no), '\n');
      cur.text = padding;
      std::string_view rest = line.size() > 3 && line.substr(0, 3) == "---" ? line.substr(3) : "";
      if (rest.find_first_not_of(" \t\r") != std::string_view::npos) {
        // "--- value" puts a node on the marker line; keep it on its own line number.
        cur.text.pop_back();
        cur.text += std::string(rest) + "\n";
      }
    } else {
      cur.text.append(line);
      cur.text.push_back('\n');
    }
    if (eol == std::string_view::npos) break;
    i = eol + 1;
    ++line_no;
  }
  chunks.push_back(std::move(cur));
  return chunks;
}

class DocumentParser {
 public:
  DocumentParser(std::string_view file, int index, YamlDocument& doc, ParsedDocument& out)
      : file_(file), index_(index), doc_(doc), out_(out) {}

  void addError(const std::string& path, const std::string& message, int line = -1) {
    ConfigError e;
    e.file = file_;
    e.document = index_;
    e.resource = out_.key ? out_.key->toString() : "";
    e.line = line >= 0 ? line : doc_.line(path);
    e.path = path;
    e.message = message;
    out_.errors.push_back(std::move(e));
  }

  std::optional<std::string> stringField(const nlohmann::json& obj, const char* name,
                                         const std::string& path) {
    if (!obj.contains(name) || obj[name].is_null()) return std::nullopt;
    if (!obj[name].is_string()) {
      addError(path, "expected a string");
      return std::nullopt;
    }
    return obj[name].get<std::string>();
  }

  bool stringMap(const nlohmann::json& obj, const char* name, const std::string& path,
                 std::map<std::string, std::string>& out) {
    if (!obj.contains(name) || obj[name].is_null()) return true;
    const auto& m = obj[name];
    if (!m.is_object()) {
      addError(path, "expected a map");
      return false;
    }
    bool ok = true;
    for (const auto& [k, v] : m.items()) {
      if (!v.is_string()) {
        addError(path + "." + k, "expected a string value (quote numbers and booleans)");
        ok = false;
        continue;
      }
      out[k] = v.get<std::string>();
    }
    return ok;
  }

  void run() {
    nlohmann::json& root = doc_.json;
    if (!root.is_object()) {
      addError("", "expected a map with apiVersion, kind, metadata and spec");
      return;
    }
    static const std::set<std::string, std::less<>> kTop = {"apiVersion", "kind", "metadata",
                                                            "spec", "status"};
    bool ok = true;
    for (const auto& [k, v] : root.items()) {
      if (!kTop.contains(k)) {
        addError(k, "unknown field \"" + k + "\"");
        ok = false;
      }
    }
    auto kind_name = stringField(root, "kind", "kind");
    auto api_version = stringField(root, "apiVersion", "apiVersion");
    std::optional<Kind> kind;
    if (!kind_name) {
      if (!root.contains("kind")) addError("", "kind is required");
      ok = false;
    } else {
      kind = kindFromName(*kind_name);
      if (!kind) {
        std::string all;
        for (const auto& k : allKinds()) all += (all.empty() ? "" : ", ") + std::string(k.name);
        addError("kind", "unknown kind \"" + *kind_name + "\" (supported: " + all + ")");
        return;
      }
    }
    // Metadata first: the resource identity goes into every later error message.
    Resource res;
    const nlohmann::json* meta = root.contains("metadata") ? &root["metadata"] : nullptr;
    if (meta == nullptr || meta->is_null()) {
      addError("", "metadata is required");
      ok = false;
    } else if (!meta->is_object()) {
      addError("metadata", "expected a map");
      ok = false;
    } else {
      auto name = stringField(*meta, "name", "metadata.name");
      auto ns = stringField(*meta, "namespace", "metadata.namespace");
      if (name) res.metadata.name = *name;
      if (ns && !ns->empty()) res.metadata.ns = *ns;
      if (kind && name) out_.key = ResourceKey{*kind, res.metadata.ns, res.metadata.name};
      if (!name && !meta->contains("name")) {
        addError("metadata", "metadata.name is required");
        ok = false;
      }
      static const std::set<std::string, std::less<>> kMetaIgnored = {"uid",
                                                                      "managedFields",
                                                                      "ownerReferences",
                                                                      "finalizers",
                                                                      "generateName",
                                                                      "deletionTimestamp",
                                                                      "deletionGracePeriodSeconds",
                                                                      "selfLink"};
      for (const auto& [k, v] : meta->items()) {
        std::string p = "metadata." + k;
        if (k == "name" || k == "namespace" || kMetaIgnored.contains(k)) continue;
        if (k == "labels") {
          ok = stringMap(*meta, "labels", p, res.metadata.labels) && ok;
        } else if (k == "annotations") {
          ok = stringMap(*meta, "annotations", p, res.metadata.annotations) && ok;
        } else if (k == "resourceVersion") {
          // Kubernetes writes it as a string; accept a plain number too.
          if (v.is_string()) {
            res.metadata.resource_version = v.get<std::string>();
          } else if (v.is_number_integer()) {
            res.metadata.resource_version = v.dump();
          } else if (!v.is_null()) {
            addError(p, "expected a string");
            ok = false;
          }
        } else if (k == "generation") {
          if (v.is_number_integer()) {
            res.metadata.generation = v.get<int64_t>();
          } else if (!v.is_null()) {
            addError(p, "expected an integer");
            ok = false;
          }
        } else if (k == "creationTimestamp") {
          if (v.is_string()) {
            res.metadata.creation_timestamp = v.get<std::string>();
          } else if (!v.is_null()) {
            addError(p, "expected a string (RFC 3339 time)");
            ok = false;
          }
        } else {
          addError(p, "unknown field \"" + k + "\"");
          ok = false;
        }
      }
    }
    if (!kind) return;
    const KindInfo& info = kindInfo(*kind);
    if (!api_version) {
      if (!root.contains("apiVersion")) addError("", "apiVersion is required");
      ok = false;
    } else {
      auto slash = api_version->find('/');
      std::string group = slash == std::string::npos ? "" : api_version->substr(0, slash);
      std::string version =
          slash == std::string::npos ? *api_version : api_version->substr(slash + 1);
      bool version_ok = false;
      for (auto v : info.versions) version_ok = version_ok || v == version;
      if (group != info.group || !version_ok) {
        std::string versions;
        for (auto v : info.versions) versions += (versions.empty() ? "" : ", ") + std::string(v);
        addError("apiVersion", "\"" + *api_version + "\" does not serve kind " +
                                   std::string(info.name) + " (use " + std::string(info.group) +
                                   "/ with one of " + versions + ")");
        ok = false;
      }
      res.api_version = *api_version;
    }
    res.kind = *kind;
    // The spec.
    std::unique_ptr<google::protobuf::Message> spec(info.prototype->New());
    nlohmann::json spec_json = root.contains("spec") ? root["spec"] : nlohmann::json::object();
    if (spec_json.is_null()) spec_json = nlohmann::json::object();
    std::vector<FieldError> field_errors;
    if (!jsonToMessage(std::move(spec_json), "spec", doc_.lines, *spec, field_errors)) {
      for (const auto& fe : field_errors) addError(fe.path, fe.message);
      return;
    }
    if (!ok) return;  // envelope errors: no point validating semantics of a nameless resource
    res.spec = std::shared_ptr<const google::protobuf::Message>(spec.release());
    res.source_file = std::string(file_);
    res.source_document = index_;
    for (const auto& fe : validateResource(res)) addError(fe.path, fe.message);
    if (out_.errors.empty()) out_.resource = std::move(res);
  }

  // Errors in file order (the JSON walk visits keys alphabetically).
  void sortErrors() {
    std::stable_sort(out_.errors.begin(), out_.errors.end(),
                     [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
  }

 private:
  std::string_view file_;
  int index_;
  YamlDocument& doc_;
  ParsedDocument& out_;
};

bool isKubernetesList(const nlohmann::json& j) {
  return j.is_object() && j.contains("kind") && j["kind"] == "List" && j.contains("items") &&
         j["items"].is_array();
}

// items[i] of a List as a document of its own; lines keep their file positions (paths lose
// the "items[i]." prefix, the line still points at the right place).
YamlDocument listItem(const YamlDocument& list, size_t i) {
  YamlDocument item;
  item.json = list.json["items"][i];
  std::string prefix = "items[" + std::to_string(i) + "]";
  for (auto it = list.lines.lower_bound(prefix); it != list.lines.end(); ++it) {
    const std::string& p = it->first;
    if (p.compare(0, prefix.size(), prefix) != 0) break;
    if (p.size() == prefix.size()) {
      item.lines[""] = it->second;
    } else if (p[prefix.size()] == '.') {
      item.lines[p.substr(prefix.size() + 1)] = it->second;
    }
  }
  return item;
}

}  // namespace

std::string ConfigError::toString() const {
  std::string s = file;
  if (document > 0) {
    s += ": document " + std::to_string(document);
    if (!resource.empty()) s += " (" + resource + ")";
  }
  if (line > 0) s += ": line " + std::to_string(line);
  if (!path.empty()) s += ": " + path;
  s += ": " + message;
  return s;
}

std::vector<ConfigError> ParsedFile::errors() const {
  std::vector<ConfigError> all;
  for (const auto& d : documents) all.insert(all.end(), d.errors.begin(), d.errors.end());
  return all;
}

ParsedFile parseFile(std::string_view file_name, std::string_view contents) {
  ParsedFile out;
  int index = 0;
  for (auto& chunk : splitDocuments(contents)) {
    if (isBlankOrComment(chunk.text)) continue;
    ParsedDocument pd;
    pd.index = ++index;
    auto docs = parseYamlDocuments(chunk.text, file_name);
    if (!docs) {
      // yaml_json reports "file:line:col: message"; the line is already file-relative thanks
      // to the padding. Re-shape it into the common error format.
      ConfigError e;
      e.file = std::string(file_name);
      e.document = pd.index;
      std::string msg = docs.error();
      std::string prefix = std::string(file_name) + ":";
      if (msg.rfind(prefix, 0) == 0) {
        std::string rest = msg.substr(prefix.size());
        size_t c1 = rest.find(':');
        size_t c2 = c1 == std::string::npos ? std::string::npos : rest.find(':', c1 + 1);
        if (c1 != std::string::npos) e.line = std::atoi(rest.substr(0, c1).c_str());
        e.message = "invalid YAML: " +
                    (c2 != std::string::npos ? rest.substr(c2 + 2) : rest.substr(c1 + 2));
        if (c2 != std::string::npos) {
          e.message += " (column " + rest.substr(c1 + 1, c2 - c1 - 1) + ")";
        }
      } else {
        e.message = "invalid YAML: " + msg;
      }
      pd.errors.push_back(std::move(e));
      out.documents.push_back(std::move(pd));
      continue;
    }
    // A chunk normally holds one document ("..." end markers aside).
    bool first = true;
    for (auto& doc : *docs) {
      if (doc.json.is_null()) continue;
      int doc_index = first ? pd.index : ++index;
      first = false;
      if (isKubernetesList(doc.json)) {
        // `kubectl get ... -o yaml` output: every item is a resource of this document.
        auto& items = doc.json["items"];
        for (size_t i = 0; i < items.size(); ++i) {
          YamlDocument item = listItem(doc, i);
          ParsedDocument current;
          current.index = doc_index;
          DocumentParser parser(file_name, doc_index, item, current);
          parser.run();
          parser.sortErrors();
          out.documents.push_back(std::move(current));
        }
        continue;
      }
      ParsedDocument current;
      current.index = doc_index;
      DocumentParser parser(file_name, current.index, doc, current);
      parser.run();
      parser.sortErrors();
      out.documents.push_back(std::move(current));
    }
    if (first) --index;  // only null documents (e.g. "---\n~"): not counted
  }
  return out;
}

}  // namespace mast::control::config
