#include "text.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>

namespace mast::bookinfo {
namespace {

constexpr char kHexLower[] = "0123456789abcdef";
constexpr char kHexUpper[] = "0123456789ABCDEF";

// Decodes one UTF-8 sequence at `text[pos]`. Returns the code point and its length, or nullopt
// with `length` set to the maximal invalid subpart (at least 1 byte), the unit that
// bytes.decode("utf-8", "replace") turns into one U+FFFD.
std::optional<char32_t> decodeUtf8(std::string_view text, size_t pos, size_t& length) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(pos);
  length = 1;
  if (lead < 0x80) return lead;
  size_t needed;
  char32_t code;
  unsigned char min_second = 0x80, max_second = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    needed = 1;
    code = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    needed = 2;
    code = lead & 0x0F;
    if (lead == 0xE0) min_second = 0xA0;  // overlong
    if (lead == 0xED) max_second = 0x9F;  // UTF-16 surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    needed = 3;
    code = lead & 0x07;
    if (lead == 0xF0) min_second = 0x90;  // overlong
    if (lead == 0xF4) max_second = 0x8F;  // beyond U+10FFFF
  } else {
    return std::nullopt;
  }
  for (size_t i = 1; i <= needed; ++i) {
    if (pos + i >= text.size()) return std::nullopt;
    unsigned char b = byte(pos + i);
    unsigned char lo = i == 1 ? min_second : 0x80;
    unsigned char hi = i == 1 ? max_second : 0xBF;
    if (b < lo || b > hi) return std::nullopt;
    code = (code << 6) | (b & 0x3F);
    length = i + 1;
  }
  return code;
}

void appendUtf8(char32_t code, std::string& out) {
  if (code < 0x80) {
    out += static_cast<char>(code);
  } else if (code < 0x800) {
    out += static_cast<char>(0xC0 | (code >> 6));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    out += static_cast<char>(0xE0 | (code >> 12));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code >> 18));
    out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code & 0x3F));
  }
}

void appendUnicodeEscape(uint32_t unit, std::string& out) {
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += kHexLower[(unit >> shift) & 0xF];
}

void appendJsonString(std::string_view text, std::string& out) {
  out += '"';
  for (size_t pos = 0; pos < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[pos]);
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      out += static_cast<char>(c);
      ++pos;
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        ++pos;
        continue;
      case '\\':
        out += "\\\\";
        ++pos;
        continue;
      case '\n':
        out += "\\n";
        ++pos;
        continue;
      case '\r':
        out += "\\r";
        ++pos;
        continue;
      case '\t':
        out += "\\t";
        ++pos;
        continue;
      case '\b':
        out += "\\b";
        ++pos;
        continue;
      case '\f':
        out += "\\f";
        ++pos;
        continue;
      default:
        break;
    }
    size_t length;
    std::optional<char32_t> code = decodeUtf8(text, pos, length);
    if (!code) {
      // Bytes that are not UTF-8 (say, from an environment variable) are shown the way Python
      // holds them after decoding with surrogateescape: one lone surrogate per byte.
      appendUnicodeEscape(0xDC00 | c, out);
      ++pos;
      continue;
    }
    if (*code >= 0x10000) {
      char32_t v = *code - 0x10000;
      appendUnicodeEscape(0xD800 | (v >> 10), out);
      appendUnicodeEscape(0xDC00 | (v & 0x3FF), out);
    } else {
      appendUnicodeEscape(*code, out);
    }
    pos += length;
  }
  out += '"';
}

void appendJson(const Json& value, std::string& out) {
  switch (value.type()) {
    case Json::value_t::null:
      out += "null";
      return;
    case Json::value_t::boolean:
      out += value.get<bool>() ? "true" : "false";
      return;
    case Json::value_t::number_integer:
      out += std::to_string(value.get<int64_t>());
      return;
    case Json::value_t::number_unsigned:
      out += std::to_string(value.get<uint64_t>());
      return;
    case Json::value_t::number_float: {
      double d = value.get<double>();
      if (std::isnan(d)) {
        out += "NaN";
      } else if (std::isinf(d)) {
        out += d > 0 ? "Infinity" : "-Infinity";
      } else {
        out += pythonFloatRepr(d);
      }
      return;
    }
    case Json::value_t::string:
      appendJsonString(value.get_ref<const std::string&>(), out);
      return;
    case Json::value_t::array: {
      out += '[';
      bool first = true;
      for (const Json& element : value) {
        if (!first) out += ", ";
        first = false;
        appendJson(element, out);
      }
      out += ']';
      return;
    }
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, element] : value.items()) {
        if (!first) out += ", ";
        first = false;
        appendJsonString(key, out);
        out += ": ";
        appendJson(element, out);
      }
      out += '}';
      return;
    }
    case Json::value_t::binary:
    case Json::value_t::discarded:
      out += "null";
      return;
  }
}

// repr(str): single quotes unless the text holds a ' and no ", ASCII control characters as
// escapes, printable non-ASCII kept as it is.
void appendPythonStringRepr(std::string_view text, std::string& out) {
  bool has_single = text.find('\'') != std::string_view::npos;
  bool has_double = text.find('"') != std::string_view::npos;
  char quote = has_single && !has_double ? '"' : '\'';
  out += quote;
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (ch == quote || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r') {
      out += "\\r";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += kHexLower[c >> 4];
      out += kHexLower[c & 0xF];
    } else {
      out += ch;
    }
  }
  out += quote;
}

void appendPythonRepr(const Json& value, std::string& out) {
  switch (value.type()) {
    case Json::value_t::null:
      out += "None";
      return;
    case Json::value_t::boolean:
      out += value.get<bool>() ? "True" : "False";
      return;
    case Json::value_t::string:
      appendPythonStringRepr(value.get_ref<const std::string&>(), out);
      return;
    case Json::value_t::array: {
      out += '[';
      bool first = true;
      for (const Json& element : value) {
        if (!first) out += ", ";
        first = false;
        appendPythonRepr(element, out);
      }
      out += ']';
      return;
    }
    case Json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, element] : value.items()) {
        if (!first) out += ", ";
        first = false;
        appendPythonStringRepr(key, out);
        out += ": ";
        appendPythonRepr(element, out);
      }
      out += '}';
      return;
    }
    default:
      out += pythonStr(value);
      return;
  }
}

bool isPythonWhitespace(char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f');
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string dumpJson(const Json& doc) {
  std::string out;
  appendJson(doc, out);
  return out;
}

std::optional<Json> parseJson(std::string_view text) {
  if (toValidUtf8(text) != text) return std::nullopt;
  Json doc = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return std::nullopt;
  return doc;
}

std::string pythonStr(const Json& value) {
  switch (value.type()) {
    case Json::value_t::string:
      return value.get<std::string>();
    case Json::value_t::number_integer:
      return std::to_string(value.get<int64_t>());
    case Json::value_t::number_unsigned:
      return std::to_string(value.get<uint64_t>());
    case Json::value_t::number_float: {
      double d = value.get<double>();
      if (std::isnan(d)) return "nan";
      if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
      return pythonFloatRepr(d);
    }
    default: {
      std::string out;
      appendPythonRepr(value, out);
      return out;
    }
  }
}

bool pythonTruthy(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return false;
    case Json::value_t::boolean:
      return value.get<bool>();
    case Json::value_t::number_integer:
      return value.get<int64_t>() != 0;
    case Json::value_t::number_unsigned:
      return value.get<uint64_t>() != 0;
    case Json::value_t::number_float:
      return value.get<double>() != 0.0;
    case Json::value_t::string:
    case Json::value_t::array:
    case Json::value_t::object:
      return !value.empty();
    default:
      return false;
  }
}

std::string pythonFloatRepr(double value) {
  // Shortest round-trip digits first, then Python's layout: positional notation while the
  // decimal point falls within 16 digits of the first one, scientific outside that.
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  std::string_view sci(buf, end - buf);
  bool negative = !sci.empty() && sci.front() == '-';
  if (negative) sci.remove_prefix(1);
  size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits += c;
  }
  int exponent = 0;
  std::string_view exp_text = sci.substr(e_pos + 1);
  if (!exp_text.empty() && exp_text.front() == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();

  std::string out = negative ? "-" : "";
  int decimal_point = exponent + 1;
  if (decimal_point <= -4 || decimal_point > 16) {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out += digits.substr(1);
    }
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+',
                  exponent < 0 ? -exponent : exponent);
    out += exp_buf;
  } else if (decimal_point <= 0) {
    out += "0.";
    out.append(static_cast<size_t>(-decimal_point), '0');
    out += digits;
  } else if (static_cast<size_t>(decimal_point) >= digits.size()) {
    out += digits;
    out.append(decimal_point - digits.size(), '0');
    out += ".0";
  } else {
    out += digits.substr(0, decimal_point);
    out += '.';
    out += digits.substr(decimal_point);
  }
  return out;
}

std::string htmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#x27;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string percentEncode(std::string_view text) {
  std::string out;
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '.' || c == '-' || c == '~';
    if (unreserved) {
      out += ch;
    } else {
      out += '%';
      out += kHexUpper[c >> 4];
      out += kHexUpper[c & 0xF];
    }
  }
  return out;
}

std::string percentDecode(std::string_view text) {
  std::string out;
  std::string decoded_run;  // consecutive %XX bytes, decoded together as UTF-8
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '%' && i + 2 < text.size() && hexValue(text[i + 1]) >= 0 &&
        hexValue(text[i + 2]) >= 0) {
      decoded_run += static_cast<char>(hexValue(text[i + 1]) * 16 + hexValue(text[i + 2]));
      i += 3;
      continue;
    }
    if (!decoded_run.empty()) {
      out += toValidUtf8(decoded_run);
      decoded_run.clear();
    }
    out += text[i];
    ++i;
  }
  out += toValidUtf8(decoded_run);
  return out;
}

std::vector<std::pair<std::string, std::string>> parseQueryString(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> fields;
  auto plusToSpace = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) {
      if (c == '+') c = ' ';
    }
    return out;
  };
  while (!text.empty()) {
    size_t amp = text.find('&');
    std::string_view piece = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    if (piece.empty()) continue;
    size_t eq = piece.find('=');
    std::string name = percentDecode(plusToSpace(piece.substr(0, eq)));
    std::string value =
        eq == std::string_view::npos ? "" : percentDecode(plusToSpace(piece.substr(eq + 1)));
    bool seen = false;
    for (const auto& field : fields) seen = seen || field.first == name;
    if (!seen) fields.emplace_back(std::move(name), std::move(value));
  }
  return fields;
}

std::optional<int64_t> parseInteger(std::string_view text) {
  while (!text.empty() && isPythonWhitespace(text.front())) text.remove_prefix(1);
  while (!text.empty() && isPythonWhitespace(text.back())) text.remove_suffix(1);
  bool negative = false;
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  if (text.empty() || text.front() == '_' || text.back() == '_') return std::nullopt;
  // Accumulate negatively so that INT64_MIN parses too.
  int64_t value = 0;
  char previous = 0;
  for (char c : text) {
    if (c == '_') {
      if (previous == '_') return std::nullopt;
      previous = c;
      continue;
    }
    if (c < '0' || c > '9') return std::nullopt;
    previous = c;
    int digit = c - '0';
    if (value < (std::numeric_limits<int64_t>::min() + digit) / 10) return std::nullopt;
    value = value * 10 - digit;
  }
  if (!negative) {
    if (value == std::numeric_limits<int64_t>::min()) return std::nullopt;
    value = -value;
  }
  return value;
}

std::string toValidUtf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t pos = 0; pos < bytes.size();) {
    size_t length;
    std::optional<char32_t> code = decodeUtf8(bytes, pos, length);
    if (code) {
      out.append(bytes.substr(pos, length));
    } else {
      appendUtf8(0xFFFD, out);
    }
    pos += length;
  }
  return out;
}

}  // namespace mast::bookinfo
