#include "control/config/writer.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "control/config/json_proto.h"

namespace mast::control::config {

namespace fs = std::filesystem;

namespace {

// Strings that the loader's YAML reading would turn into something else (numbers, booleans,
// null) must be quoted.
bool needsQuotes(const std::string& s) {
  if (s.empty()) return true;
  static const char* kWords[] = {"true",  "True", "TRUE", "false", "False",
                                 "FALSE", "null", "Null", "NULL",  "~"};
  for (const char* w : kWords) {
    if (s == w) return true;
  }
  int64_t i;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
  if (ec == std::errc() && p == s.data() + s.size()) return true;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  if (end == s.c_str() + s.size()) return true;
  return false;
}

void emit(YAML::Emitter& out, const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [k, v] : j.items()) {
        out << YAML::Key;
        if (needsQuotes(k)) {
          out << YAML::DoubleQuoted << k;
        } else {
          out << k;
        }
        out << YAML::Value;
        emit(out, v);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& v : j) emit(out, v);
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string: {
      const auto& s = j.get_ref<const std::string&>();
      if (needsQuotes(s)) {
        out << YAML::DoubleQuoted << s;
      } else {
        out << s;
      }
      break;
    }
    case nlohmann::json::value_t::boolean:
      out << (j.get<bool>() ? "true" : "false");
      break;
    case nlohmann::json::value_t::null:
      out << YAML::Null;
      break;
    default:
      out << j.dump();  // numbers as JSON writes them
      break;
  }
}

Status syncDir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error{"open " + dir + ": " + strerror(errno)};
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return Error{"fsync " + dir + ": " + strerror(err)};
  return {};
}

}  // namespace

std::string resourceFileName(const ResourceKey& key) {
  std::string kind(kindName(key.kind));
  for (auto& c : kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return kind + "." + key.ns + "." + key.name + ".yaml";
}

std::string resourceToYaml(const Resource& r) {
  nlohmann::json doc = nlohmann::json::object();
  doc["apiVersion"] = r.api_version.empty() ? std::string(kindInfo(r.kind).group) + "/" +
                                                  std::string(kindInfo(r.kind).versions.back())
                                            : r.api_version;
  doc["kind"] = std::string(kindName(r.kind));
  nlohmann::json meta = nlohmann::json::object();
  meta["name"] = r.metadata.name;
  meta["namespace"] = r.metadata.ns;
  if (!r.metadata.labels.empty()) meta["labels"] = r.metadata.labels;
  if (!r.metadata.annotations.empty()) meta["annotations"] = r.metadata.annotations;
  if (!r.metadata.resource_version.empty()) meta["resourceVersion"] = r.metadata.resource_version;
  if (r.metadata.generation != 0) meta["generation"] = r.metadata.generation;
  if (!r.metadata.creation_timestamp.empty())
    meta["creationTimestamp"] = r.metadata.creation_timestamp;
  doc["metadata"] = std::move(meta);
  doc["spec"] = r.spec ? messageToJson(*r.spec) : nlohmann::json::object();
  YAML::Emitter out;
  out.SetIndent(2);
  emit(out, doc);
  return std::string(out.c_str()) + "\n";
}

Status writeFileAtomic(const std::string& path, const std::string& contents) {
  fs::path target(path);
  std::string dir = target.parent_path().empty() ? "." : target.parent_path().string();
  static std::atomic<uint64_t> counter{0};
  std::string tmp = dir + "/." + target.filename().string() + ".tmp." + std::to_string(getpid()) +
                    "." + std::to_string(counter++);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Error{"create " + tmp + ": " + strerror(errno)};
  size_t off = 0;
  while (off < contents.size()) {
    ssize_t n = write(fd, contents.data() + off, contents.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return Error{"write " + tmp + ": " + strerror(err)};
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return Error{"fsync " + tmp + ": " + strerror(err)};
  }
  close(fd);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return Error{"rename " + tmp + " → " + path + ": " + strerror(err)};
  }
  return syncDir(dir);
}

Result<std::string> writeResourceFile(const std::string& dir, const Resource& resource) {
  std::string path = (fs::path(dir) / resourceFileName(resource.key())).string();
  Status s = writeFileAtomic(path, resourceToYaml(resource));
  if (!s.ok()) return Error{s.error()};
  return path;
}

Status deleteResourceFile(const std::string& dir, const ResourceKey& key) {
  std::string path = (fs::path(dir) / resourceFileName(key)).string();
  if (unlink(path.c_str()) != 0) {
    if (errno == ENOENT) return Error{key.toString() + " not found (no " + path + ")"};
    return Error{"unlink " + path + ": " + strerror(errno)};
  }
  return syncDir(dir);
}

}  // namespace mast::control::config
