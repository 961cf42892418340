#pragma once
// Text conventions shared by the four services. Bookinfo's responses were first produced by
// Python services (Istio's productpage is Python too), and clients, tests and docs compare them
// byte for byte, so these helpers reproduce Python's formats: json.dumps' layout, str() of a
// decoded JSON value, html.escape, urllib's quote/unquote/parse_qs and int() of a string.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mast::bookinfo {

// Insertion-ordered, so documents keep their key order (Python dicts do, and clients that print
// or diff the JSON see the same order the service wrote).
using Json = nlohmann::ordered_json;

// json.dumps(doc): ", " and ": " separators, non-ASCII as \uXXXX (surrogate pairs above the
// BMP), floats in Python's shortest repr (1e+16, 1e-05, 200.0).
std::string dumpJson(const Json& doc);

// Parses a JSON document; nullopt when it is not valid JSON (or not valid UTF-8).
std::optional<Json> parseJson(std::string_view text);

// str(value) of what json.loads would have returned: strings as they are, None/True/False,
// floats in repr form, containers in Python's repr form ({'a': [1, 'x']}).
std::string pythonStr(const Json& value);

// Python's truthiness of a decoded JSON value (empty string/container, 0, false, null: false).
bool pythonTruthy(const Json& value);

// repr(float).
std::string pythonFloatRepr(double value);

// html.escape(text, quote=True): & < > " '.
std::string htmlEscape(std::string_view text);

// urllib.parse.quote(text, safe=""): everything but ASCII letters, digits and "_.-~" is
// percent-encoded byte by byte.
std::string percentEncode(std::string_view text);

// urllib.parse.unquote(text): %XX sequences decoded (malformed ones kept as they are); invalid
// UTF-8 produced by the decoding becomes U+FFFD.
std::string percentDecode(std::string_view text);

// urllib.parse.parse_qs(text, keep_blank_values=True), keeping the first value of each name
// ("+" is a space, names and values percent-decoded), in order of first appearance.
std::vector<std::pair<std::string, std::string>> parseQueryString(std::string_view text);

// int(text) for a str: surrounding whitespace, an optional sign, ASCII digits with single "_"
// between digits. nullopt for anything else, or beyond 64 bits.
std::optional<int64_t> parseInteger(std::string_view text);

// Replaces invalid UTF-8 sequences with U+FFFD (bytes.decode("utf-8", "replace")).
std::string toValidUtf8(std::string_view bytes);

}  // namespace mast::bookinfo
