#include "base/yaml_json.h"

#include <optional>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>

namespace mast {

int YamlDocument::line(const std::string& path) const {
  std::string p = path;
  while (true) {
    if (auto it = lines.find(p); it != lines.end()) return it->second;
    if (p.empty()) return 0;
    size_t cut = p.find_last_of(".[");
    if (cut == std::string::npos) {
      p.clear();
    } else {
      p.resize(cut);
    }
  }
}

namespace {

nlohmann::json scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (s == "null" || s == "Null" || s == "NULL" || s == "~" || s.empty()) return nullptr;
  int64_t i = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
  if (ec == std::errc() && p == s.data() + s.size()) return i;
  uint64_t u = 0;
  auto [pu, ecu] = std::from_chars(s.data(), s.data() + s.size(), u);
  if (ecu == std::errc() && pu == s.data() + s.size()) return u;
  // Floats: digits with '.' or exponent only (so "1.2.3" and "5s" stay strings).
  bool numeric = !s.empty();
  bool has_digit = false;
  for (char c : s) {
    if (std::isdigit(static_cast<unsigned char>(c))) {
      has_digit = true;
    } else if (c != '.' && c != 'e' && c != 'E' && c != '-' && c != '+') {
      numeric = false;
    }
  }
  if (numeric && has_digit) {
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (end == s.c_str() + s.size() && std::isfinite(d)) return d;
  }
  return s;
}

// Aliases are expanded, so a few lines of anchors referring to anchors describe exponentially many
// nodes ("billion laughs", found by fuzz/config as an out-of-memory): conversion stops after
// kMaxNodes per document (a configuration that size without aliases is megabytes of YAML).
constexpr size_t kMaxNodes = 100'000;
// An alias inside its own anchor's node (`g: &g [*g]`) makes yaml-cpp build a cyclic node; the
// conversion would recurse until the stack overflowed (config_fuzz found it; mast-proxy
// --mode validate crashed). No configuration nests anywhere near this deep.
constexpr size_t kMaxDepth = 128;

Result<nlohmann::json> convert(const YAML::Node& n, const std::string& path, YamlDocument& doc,
                               std::string_view file, size_t& budget, size_t depth = 0) {
  if (budget == 0) {
    return Error{std::string(file) + ":" + std::to_string(n.Mark().line + 1) + ": more than " +
                 std::to_string(kMaxNodes) + " nodes (alias expansion?)"};
  }
  if (depth > kMaxDepth) {
    return Error{std::string(file) + ":" + std::to_string(n.Mark().line + 1) +
                 ": nested more than " + std::to_string(kMaxDepth) +
                 " levels deep (an alias inside its own anchor?)"};
  }
  --budget;
  doc.lines[path] = n.Mark().line + 1;
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return nlohmann::json(nullptr);
    case YAML::NodeType::Scalar:
      return scalar(n);
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      size_t i = 0;
      for (const auto& e : n) {
        auto v = convert(e, path + "[" + std::to_string(i++) + "]", doc, file, budget, depth + 1);
        if (!v) return v;
        arr.push_back(std::move(*v));
      }
      return arr;
    }
    case YAML::NodeType::Map: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) {
          return Error{std::string(file) + ":" + std::to_string(kv.first.Mark().line + 1) +
                       ": keys must be scalars"};
        }
        std::string key = kv.first.Scalar();
        if (key == "<<") {
          // Merge key: copy the referenced mapping's entries that are not set here.
          auto merged = convert(kv.second, path, doc, file, budget, depth + 1);
          if (!merged) return merged;
          if (merged->is_object()) {
            for (auto& [k, v] : merged->items()) {
              if (!obj.contains(k)) obj[k] = v;
            }
          }
          continue;
        }
        std::string child = path.empty() ? key : path + "." + key;
        auto v = convert(kv.second, child, doc, file, budget, depth + 1);
        if (!v) return v;
        obj[key] = std::move(*v);
      }
      return obj;
    }
    default:
      return nlohmann::json(nullptr);
  }
}

// yaml-cpp 0.7 loops forever, allocating gigabytes, when a document's first token is ',' or a
// ',' starts a line outside any flow collection (found by config_fuzz; e.g. the text ","). Such
// a ',' cannot start a YAML node, so these inputs are rejected before yaml-cpp sees them.
// stuckDocument (below) is the general guard against these loops; this check stays in front of
// it for its clearer message, and because a ',' starting a line inside a block mapping gets only
// yaml-cpp's "end of map not found".
// Returns the 1-based line of the offending ',' or 0. Quotes and flow brackets are tracked per
// line well enough for this: a miss only means yaml-cpp decides, never a false rejection.
size_t strayCommaLine(std::string_view text) {
  int depth = 0;             // open [ and { outside quotes and comments
  bool doc_started = false;  // a token of the current document has been seen
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    ++line_no;
    pos = end + 1;
    size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || line[first] == '#') continue;
    if (line.substr(first).starts_with("---") || line.substr(first).starts_with("...")) {
      doc_started = false;
      depth = 0;
      continue;
    }
    if (first == 0 && line[0] == '%') continue;  // directive
    if (depth == 0 && line[first] == ',' && (first == 0 || !doc_started)) return line_no;
    doc_started = true;
    char quote = 0;
    for (size_t i = first; i < line.size(); ++i) {
      char c = line[i];
      if (quote) {
        if (c == quote) quote = 0;
        continue;
      }
      if (c == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) break;
      if (c == '"' || c == '\'') {
        if (i == first || std::string_view(" [{,:-").find(line[i - 1]) != std::string_view::npos) {
          quote = c;
        }
      } else if (c == '[' || c == '{') {
        ++depth;
      } else if ((c == ']' || c == '}') && depth > 0) {
        --depth;
      }
    }
  }
  return 0;
}

// yaml-cpp 0.7 also loops forever, allocating, when a document ends before a token that cannot
// start a node: ',' after a root quoted scalar, flow collection, anchor or tag (config_fuzz:
// `"",-*`, `&x,`, `!t "x",`). YAML::LoadAll then produces empty documents at that token without
// consuming it, forever. A pass with this handler (no nodes built) finds the first document that
// starts where the previous one did, i.e. consumed nothing.
class DocumentProgress : public YAML::EventHandler {
 public:
  YAML::Mark start;
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// Returns the mark of a document that consumes nothing, if any. Throws YAML::Exception as the
// parser does.
std::optional<YAML::Mark> stuckDocument(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentProgress progress;
  int last = -1;
  while (parser.HandleNextDocument(progress)) {
    if (progress.start.pos == last) return progress.start;
    last = progress.start.pos;
  }
  return std::nullopt;
}

}  // namespace

Result<std::vector<YamlDocument>> parseYamlDocuments(std::string_view text,
                                                     std::string_view file_name) {
  if (size_t line = strayCommaLine(text)) {
    return Error{std::string(file_name) + ":" + std::to_string(line) +
                 ": ',' cannot start a YAML node outside a flow collection"};
  }
  std::vector<YAML::Node> nodes;
  try {
    std::string input(text);
    if (auto stuck = stuckDocument(input)) {
      return Error{std::string(file_name) + ":" + std::to_string(stuck->line + 1) + ":" +
                   std::to_string(stuck->column + 1) +
                   ": unexpected token, no YAML node starts here"};
    }
    nodes = YAML::LoadAll(input);
  } catch (const YAML::Exception& e) {
    return Error{std::string(file_name) + ":" + std::to_string(e.mark.line + 1) + ":" +
                 std::to_string(e.mark.column + 1) + ": " + e.msg};
  }
  std::vector<YamlDocument> docs;
  for (const auto& n : nodes) {
    YamlDocument d;
    size_t budget = kMaxNodes;
    auto j = convert(n, "", d, file_name, budget);
    if (!j) return Error{j.error()};
    d.json = std::move(*j);
    docs.push_back(std::move(d));
  }
  return docs;
}

Result<YamlDocument> parseYaml(std::string_view text, std::string_view file_name) {
  auto docs = parseYamlDocuments(text, file_name);
  if (!docs) return Error{docs.error()};
  if (docs->empty()) {
    YamlDocument d;
    d.json = nlohmann::json::object();
    return d;
  }
  if (docs->size() > 1) return Error{std::string(file_name) + ": expected one YAML document"};
  return std::move(docs->front());
}

}  // namespace mast
