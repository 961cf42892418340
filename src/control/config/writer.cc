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
#include "control/config/parse.h"

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
  return jsonToYaml(doc);
}

std::string jsonToYaml(const nlohmann::json& value) {
  YAML::Emitter out;
  out.SetIndent(2);
  emit(out, value);
  return std::string(out.c_str()) + "\n";
}

namespace {

// The same document markers parse.cc splits at.
bool isMarkerLine(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line == "...") return true;
  if (line.substr(0, 3) != "---") return false;
  return line.size() == 3 || line[3] == ' ' || line[3] == '\t';
}

}  // namespace

Result<std::string> rewriteDocument(std::string_view file_name, std::string_view text,
                                    const ResourceKey& key,
                                    const std::optional<std::string>& replacement) {
  if (file_name.ends_with(".json")) {
    return Error{std::string(file_name) + ": JSON files are not rewritten; edit that file"};
  }
  // Chunks between marker lines, as byte ranges; markers as byte ranges (with their newline).
  struct Span {
    size_t begin, end;
  };
  std::vector<Span> chunks, markers;
  size_t chunk_begin = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t eol = text.find('\n', i);
    size_t next = eol == std::string_view::npos ? text.size() : eol + 1;
    std::string_view line = text.substr(i, (eol == std::string_view::npos ? text.size() : eol) - i);
    if (isMarkerLine(line)) {
      chunks.push_back({chunk_begin, i});
      markers.push_back({i, next});
      chunk_begin = next;
    }
    i = next;
  }
  chunks.push_back({chunk_begin, text.size()});
  std::optional<size_t> found;
  for (size_t c = 0; c < chunks.size(); ++c) {
    auto parsed =
        parseFile(file_name, text.substr(chunks[c].begin, chunks[c].end - chunks[c].begin));
    bool mine = false;
    size_t resources = 0;
    for (const auto& d : parsed.documents) {
      if (!d.key) continue;
      ++resources;
      mine = mine || *d.key == key;
    }
    if (!mine) continue;
    if (found) return Error{key.toString() + " is defined twice in " + std::string(file_name)};
    if (resources > 1) {
      return Error{key.toString() + " shares its document in " + std::string(file_name) +
                   " with other resources; edit that file"};
    }
    if (c > 0) {
      std::string_view marker =
          text.substr(markers[c - 1].begin, markers[c - 1].end - markers[c - 1].begin);
      std::string_view rest = marker.substr(std::min<size_t>(3, marker.size()));
      size_t nb = rest.find_first_not_of(" \t\r\n");
      if (marker.starts_with("---") && nb != std::string_view::npos && rest[nb] != '#') {
        return Error{key.toString() + " starts on its \"---\" line in " + std::string(file_name) +
                     "; edit that file"};
      }
    }
    found = c;
  }
  if (!found) return Error{key.toString() + " not found in " + std::string(file_name)};
  size_t c = *found;
  std::string out;
  if (replacement) {
    out.append(text.substr(0, chunks[c].begin));
    out.append(*replacement);
    if (!replacement->empty() && replacement->back() != '\n') out.push_back('\n');
    out.append(text.substr(chunks[c].end));
    return out;
  }
  // Removal: the document and one separator (the one before it, else the one after it).
  size_t from = chunks[c].begin, to = chunks[c].end;
  if (c > 0) {
    from = markers[c - 1].begin;
  } else if (c < markers.size()) {
    to = markers[c].end;
  }
  out.append(text.substr(0, from));
  out.append(text.substr(to));
  return out;
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
