#include "agent/metrics.h"

#include <map>

namespace mast::agent {
namespace {

struct Family {
  std::string help;  // full "# HELP ..." line or empty
  std::string type;  // full "# TYPE ..." line or empty
  std::vector<std::string> samples;
};

std::string_view sampleName(std::string_view line) {
  size_t end = line.find_first_of("{ \t");
  return line.substr(0, end);
}

// Samples of histograms and summaries carry suffixes of their family's name.
bool belongsTo(std::string_view sample, std::string_view family) {
  if (sample == family) return true;
  if (sample.substr(0, family.size()) != family) return false;
  std::string_view suffix = sample.substr(family.size());
  for (std::string_view s : {"_bucket", "_sum", "_count", "_total", "_created", "_info"}) {
    if (suffix == s) return true;
  }
  return false;
}

}  // namespace

std::string mergePrometheus(const std::vector<std::string_view>& expositions) {
  std::vector<std::string> order;
  std::map<std::string, Family, std::less<>> families;
  auto family = [&](std::string_view name) -> Family& {
    auto it = families.find(name);
    if (it == families.end()) {
      order.emplace_back(name);
      it = families.emplace(std::string(name), Family{}).first;
    }
    return it->second;
  };
  for (std::string_view text : expositions) {
    std::string current;  // the family named by the last HELP/TYPE line of this input
    while (!text.empty()) {
      size_t nl = text.find('\n');
      std::string_view line = text.substr(0, nl);
      text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) continue;
      if (line[0] == '#') {
        // "# HELP name text" / "# TYPE name type"; other comments are dropped.
        bool help = line.rfind("# HELP ", 0) == 0;
        bool type = line.rfind("# TYPE ", 0) == 0;
        if (!help && !type) continue;
        std::string_view rest = line.substr(7);
        std::string_view name = rest.substr(0, rest.find(' '));
        current = std::string(name);
        Family& f = family(name);
        std::string& slot = help ? f.help : f.type;
        if (slot.empty()) slot = std::string(line);
        continue;
      }
      std::string_view name = sampleName(line);
      if (current.empty() || !belongsTo(name, current)) current = std::string(name);
      family(current).samples.emplace_back(line);
    }
  }
  std::string out;
  for (const auto& name : order) {
    const Family& f = families[name];
    if (!f.help.empty()) out += f.help + "\n";
    if (!f.type.empty()) out += f.type + "\n";
    for (const auto& s : f.samples) out += s + "\n";
  }
  return out;
}

}  // namespace mast::agent
