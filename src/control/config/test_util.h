#pragma once
// Helpers shared by this module's tests.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "control/config/parse.h"

namespace mast::control::config::testing {

inline std::string testdata(const std::string& name) {
  return std::string(MAST_CONFIG_TESTDATA) + "/" + name;
}

inline std::string readTestdata(const std::string& name) {
  std::ifstream in(testdata(name));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Every error of parsing `yaml` as file "t.yaml", formatted.
inline std::vector<std::string> errorsOf(const std::string& yaml,
                                         const std::string& file = "t.yaml") {
  std::vector<std::string> out;
  for (const auto& e : parseFile(file, yaml).errors()) out.push_back(e.toString());
  return out;
}

// A fresh temporary directory, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mast-config-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void writeFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

}  // namespace mast::control::config::testing
