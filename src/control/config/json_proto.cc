#include "control/config/json_proto.h"

#include <google/protobuf/util/json_util.h>

#include <cinttypes>
#include <cmath>
#include <limits>

namespace mast::control::config {

namespace pb = google::protobuf;

namespace {

const char* jsonTypeName(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "a map";
    case nlohmann::json::value_t::array:
      return "a list";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_float:
      return "a number";
    default:
      return "an integer";
  }
}

std::string quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Integers may be written as JSON integers or as decimal strings (protobuf accepts both);
// floats with an integral value (e.g. 100.0) are accepted too.
std::optional<__int128> integerValue(const nlohmann::json& j) {
  if (j.is_number_integer()) {
    if (j.is_number_unsigned()) return static_cast<__int128>(j.get<uint64_t>());
    return static_cast<__int128>(j.get<int64_t>());
  }
  if (j.is_number_float()) {
    double d = j.get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.2e18) {
      return static_cast<__int128>(static_cast<int64_t>(d));
    }
    return std::nullopt;
  }
  if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    if (s.empty() || s.size() > 21) return std::nullopt;
    size_t i = (s[0] == '-') ? 1 : 0;
    if (i == s.size()) return std::nullopt;
    __int128 v = 0;
    for (; i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      v = v * 10 + (s[i] - '0');
    }
    return s[0] == '-' ? -v : v;
  }
  return std::nullopt;
}

bool checkInteger(const nlohmann::json& j, const pb::FieldDescriptor* f, const std::string& path,
                  std::vector<FieldError>& errors) {
  auto v = integerValue(j);
  if (!v) {
    errors.push_back({path, std::string("expected an integer, got ") + jsonTypeName(j)});
    return false;
  }
  __int128 lo = 0, hi = 0;
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      lo = std::numeric_limits<int32_t>::min();
      hi = std::numeric_limits<int32_t>::max();
      break;
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      hi = std::numeric_limits<uint32_t>::max();
      break;
    case pb::FieldDescriptor::CPPTYPE_INT64:
      lo = std::numeric_limits<int64_t>::min();
      hi = std::numeric_limits<int64_t>::max();
      break;
    default:
      hi = std::numeric_limits<uint64_t>::max();
      break;
  }
  if (*v < lo || *v > hi) {
    if (lo == 0 && *v < 0) {
      errors.push_back({path, "must not be negative"});
    } else {
      errors.push_back({path, "integer out of range"});
    }
    return false;
  }
  return true;
}

std::string formatDuration(int64_t nanos) {
  bool neg = nanos < 0;
  uint64_t abs = neg ? static_cast<uint64_t>(-(nanos + 1)) + 1 : static_cast<uint64_t>(nanos);
  uint64_t secs = abs / 1000000000ULL;
  uint64_t frac = abs % 1000000000ULL;
  char buf[64];
  if (frac == 0) {
    snprintf(buf, sizeof(buf), "%s%" PRIu64 "s", neg ? "-" : "", secs);
  } else {
    snprintf(buf, sizeof(buf), "%s%" PRIu64 ".%09" PRIu64 "s", neg ? "-" : "", secs, frac);
  }
  return buf;
}

// Standard or URL-safe base64, padding optional (what protobuf's JSON parser accepts).
bool isBase64(const std::string& s) {
  size_t n = s.size();
  while (n > 0 && s[n - 1] == '=') --n;
  if (s.size() - n > 2) return false;
  for (size_t i = 0; i < n; ++i) {
    char c = s[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '-' || c == '_';
    if (!ok) return false;
  }
  return n % 4 != 1;
}

// Adds alias line entries: every path under `from` is also known under `to`.
void aliasLines(std::map<std::string, int>& lines, const std::string& from, const std::string& to) {
  std::vector<std::pair<std::string, int>> add;
  for (auto it = lines.lower_bound(from); it != lines.end(); ++it) {
    const std::string& p = it->first;
    if (p.compare(0, from.size(), from) != 0) break;
    if (p.size() == from.size() || p[from.size()] == '.' || p[from.size()] == '[') {
      add.emplace_back(to + p.substr(from.size()), it->second);
    }
  }
  for (auto& [p, l] : add) lines.emplace(p, l);
}

void checkValue(nlohmann::json& j, const pb::FieldDescriptor* f, const std::string& path,
                std::map<std::string, int>& lines, std::vector<FieldError>& errors);

void checkWellKnown(nlohmann::json& j, const pb::Descriptor* d, const std::string& path,
                    std::map<std::string, int>& lines, std::vector<FieldError>& errors) {
  const std::string& name = d->full_name();
  if (name == "google.protobuf.Duration") {
    if (!j.is_string()) {
      errors.push_back({path, std::string("expected a duration string such as \"5s\" or "
                                          "\"100ms\", got ") +
                                  jsonTypeName(j)});
      return;
    }
    auto nanos = parseGoDuration(j.get_ref<const std::string&>());
    if (!nanos) {
      errors.push_back({path, "invalid duration " + quote(j.get<std::string>()) +
                                  " (expected e.g. \"5s\", \"100ms\", \"1m30s\")"});
      return;
    }
    j = formatDuration(*nanos);
    return;
  }
  if (name == "google.protobuf.Struct") {
    if (!j.is_object())
      errors.push_back({path, std::string("expected a map, got ") + jsonTypeName(j)});
    return;
  }
  if (name == "google.protobuf.Value" || name == "google.protobuf.ListValue") return;
  // Wrappers (google.protobuf.*Value): the JSON form is the bare scalar.
  const pb::FieldDescriptor* value = d->FindFieldByName("value");
  if (value != nullptr) checkValue(j, value, path, lines, errors);
}

const pb::FieldDescriptor* findByJsonName(const pb::Descriptor* d, const std::string& name) {
  for (int i = 0; i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == name) return d->field(i);
  }
  return nullptr;
}

bool isWellKnown(const pb::Descriptor* d) { return d->file()->package() == "google.protobuf"; }

void checkMessage(nlohmann::json& j, const pb::Descriptor* d, const std::string& path,
                  std::map<std::string, int>& lines, std::vector<FieldError>& errors);

void checkSingular(nlohmann::json& j, const pb::FieldDescriptor* f, const std::string& path,
                   std::map<std::string, int>& lines, std::vector<FieldError>& errors) {
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      if (isWellKnown(f->message_type())) {
        checkWellKnown(j, f->message_type(), path, lines, errors);
      } else {
        checkMessage(j, f->message_type(), path, lines, errors);
      }
      return;
    case pb::FieldDescriptor::CPPTYPE_STRING:
      if (!j.is_string()) {
        errors.push_back({path, std::string("expected a string, got ") + jsonTypeName(j) +
                                    " (quote the value)"});
      } else if (f->type() == pb::FieldDescriptor::TYPE_BYTES && !isBase64(j.get<std::string>())) {
        errors.push_back({path, "expected base64-encoded bytes"});
      }
      return;
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      if (!j.is_boolean()) {
        errors.push_back({path, std::string("expected true or false, got ") + jsonTypeName(j)});
      }
      return;
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      if (!j.is_number()) {
        errors.push_back({path, std::string("expected a number, got ") + jsonTypeName(j)});
      }
      return;
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumDescriptor* e = f->enum_type();
      if (j.is_string()) {
        if (e->FindValueByName(j.get<std::string>()) != nullptr) return;
      } else if (j.is_number_integer()) {
        if (e->FindValueByNumber(j.get<int>()) != nullptr) return;
      }
      std::string names;
      for (int i = 0; i < e->value_count(); ++i) {
        if (i) names += ", ";
        names += e->value(i)->name();
      }
      errors.push_back({path, "invalid value " +
                                  (j.is_string() ? quote(j.get<std::string>()) : j.dump()) +
                                  " (expected one of " + names + ")"});
      return;
    }
    default:
      checkInteger(j, f, path, errors);
      return;
  }
}

void checkValue(nlohmann::json& j, const pb::FieldDescriptor* f, const std::string& path,
                std::map<std::string, int>& lines, std::vector<FieldError>& errors) {
  // null means "unset" for any field (protobuf's JSON parser agrees).
  if (j.is_null()) return;
  if (f->is_map()) {
    if (!j.is_object()) {
      errors.push_back({path, std::string("expected a map, got ") + jsonTypeName(j)});
      return;
    }
    const pb::FieldDescriptor* key = f->message_type()->map_key();
    const pb::FieldDescriptor* value = f->message_type()->map_value();
    for (auto& [k, v] : j.items()) {
      std::string child = path + "." + k;
      if (key->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING) {
        nlohmann::json kj = k;
        checkInteger(kj, key, child, errors);
      }
      if (v.is_null() && value->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        errors.push_back({child, "value must not be null"});
        continue;
      }
      if (v.is_null()) {
        v = nlohmann::json::object();  // "name: {}" written as "name:" — an empty message
        continue;
      }
      checkSingular(v, value, child, lines, errors);
    }
    return;
  }
  if (f->is_repeated()) {
    if (!j.is_array()) {
      errors.push_back({path, std::string("expected a list, got ") + jsonTypeName(j)});
      return;
    }
    for (size_t i = 0; i < j.size(); ++i) {
      std::string child = path + "[" + std::to_string(i) + "]";
      if (j[i].is_null()) {
        errors.push_back({child, "list element must not be null"});
        continue;
      }
      checkSingular(j[i], f, child, lines, errors);
    }
    return;
  }
  checkSingular(j, f, path, lines, errors);
}

void checkMessage(nlohmann::json& j, const pb::Descriptor* d, const std::string& path,
                  std::map<std::string, int>& lines, std::vector<FieldError>& errors) {
  if (j.is_null()) {
    j = nlohmann::json::object();
    return;
  }
  if (!j.is_object()) {
    errors.push_back({path, std::string("expected a map, got ") + jsonTypeName(j)});
    return;
  }
  // Rename snake_case keys to JSON names first, so later paths are canonical.
  std::vector<std::pair<std::string, std::string>> renames;
  for (auto& [k, v] : j.items()) {
    const pb::FieldDescriptor* f = d->FindFieldByName(k);
    if (f != nullptr && f->json_name() != k) renames.emplace_back(k, f->json_name());
  }
  for (auto& [from, to] : renames) {
    if (j.contains(to)) {
      errors.push_back({path.empty() ? to : path + "." + to,
                        "set twice (as " + quote(from) + " and " + quote(to) + ")"});
      continue;
    }
    j[to] = std::move(j[from]);
    j.erase(from);
    aliasLines(lines, path.empty() ? from : path + "." + from, path.empty() ? to : path + "." + to);
  }
  std::map<int, std::string> oneof_seen;  // oneof index → field set
  for (auto& [k, v] : j.items()) {
    std::string child = path.empty() ? k : path + "." + k;
    const pb::FieldDescriptor* f = findByJsonName(d, k);
    if (f == nullptr) f = d->FindFieldByName(k);
    if (f == nullptr) {
      errors.push_back({child, "unknown field " + quote(k)});
      continue;
    }
    if (const pb::OneofDescriptor* o = f->real_containing_oneof(); o != nullptr && !v.is_null()) {
      auto [it, inserted] = oneof_seen.emplace(o->index(), k);
      if (!inserted) {
        errors.push_back(
            {child, "only one of " + quote(it->second) + " and " + quote(k) + " may be set"});
        continue;
      }
    }
    checkValue(v, f, child, lines, errors);
  }
}

}  // namespace

std::optional<int64_t> parseGoDuration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  bool neg = false;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return 0;
  if (s.empty()) return std::nullopt;
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    long double value = 0;
    bool digits = false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      value = value * 10 + (s[i] - '0');
      ++i;
      digits = true;
    }
    if (i < s.size() && s[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        value += (s[i] - '0') * scale;
        scale /= 10;
        ++i;
        digits = true;
      }
    }
    if (!digits) return std::nullopt;
    size_t u = i;
    while (u < s.size() && !(s[u] >= '0' && s[u] <= '9') && s[u] != '.') ++u;
    std::string_view unit = s.substr(i, u - i);
    long double mult;
    if (unit == "ns") {
      mult = 1;
    } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
      mult = 1e3L;
    } else if (unit == "ms") {
      mult = 1e6L;
    } else if (unit == "s") {
      mult = 1e9L;
    } else if (unit == "m") {
      mult = 60e9L;
    } else if (unit == "h") {
      mult = 3600e9L;
    } else {
      return std::nullopt;  // missing or unknown unit
    }
    total += value * mult;
    if (total > 9.2e18L) return std::nullopt;
    s.remove_prefix(u);
  }
  auto nanos = static_cast<int64_t>(std::llround(total));
  return neg ? -nanos : nanos;
}

void normalizeJson(nlohmann::json& json, const pb::Descriptor* type, const std::string& path,
                   std::map<std::string, int>& lines, std::vector<FieldError>& errors) {
  checkMessage(json, type, path, lines, errors);
}

bool jsonToMessage(nlohmann::json json, const std::string& path, std::map<std::string, int>& lines,
                   pb::Message& out, std::vector<FieldError>& errors) {
  size_t before = errors.size();
  normalizeJson(json, out.GetDescriptor(), path, lines, errors);
  if (errors.size() != before) return false;
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = pb::util::JsonStringToMessage(json.dump(), &out, options);
  if (!status.ok()) {
    // The walk above should have caught everything; this is the backstop.
    errors.push_back({path, std::string(status.message())});
    return false;
  }
  return true;
}

nlohmann::json messageToJson(const pb::Message& message) {
  std::string out;
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = false;
  (void)pb::util::MessageToJsonString(message, &out, options);
  return nlohmann::json::parse(out, nullptr, false);
}

}  // namespace mast::control::config
