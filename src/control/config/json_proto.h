#pragma once
// Strict JSON → protobuf for Istio specs, with Istio's YAML conventions and precise errors.
//
// protobuf's own JSON parser reports errors without a usable field path and only accepts
// "<seconds>s" durations, while Istio users write Go durations ("100ms", "1m", "1h30m"). So the
// JSON is first walked against the message descriptor: every unknown field, wrong type, bad enum
// name, out-of-range integer, bad duration or doubly-set oneof is reported with its path; Go
// durations are rewritten to protobuf's form and snake_case keys to the JSON name. Only then is
// protobuf's parser run (strict: unknown fields rejected) on the normalized JSON.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mast::control::config {

struct FieldError {
  std::string path;  // "spec.http[0].route[1].weight"
  std::string message;
};

// Parses a Go-style duration ("7s", "1.5s", "100ms", "1h30m", "-2us", "0") into nanoseconds.
std::optional<int64_t> parseGoDuration(std::string_view text);

// Walks `json` (the value at `path`) against `type`, normalizing it in place. Appends errors.
// `lines` (path → line) gets entries for renamed keys so that later lookups by canonical
// (JSON-name) path still find the user's line.
void normalizeJson(nlohmann::json& json, const google::protobuf::Descriptor* type,
                   const std::string& path, std::map<std::string, int>& lines,
                   std::vector<FieldError>& errors);

// normalizeJson + protobuf's strict JSON parsing into `out`. Returns false (with errors) if the
// JSON does not fit the message.
bool jsonToMessage(nlohmann::json json, const std::string& path, std::map<std::string, int>& lines,
                   google::protobuf::Message& out, std::vector<FieldError>& errors);

// Message → JSON with Istio's (camelCase) field names; defaults omitted.
nlohmann::json messageToJson(const google::protobuf::Message& message);

}  // namespace mast::control::config
