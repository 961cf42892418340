#include "http/header_map.h"

#include <algorithm>
#include <charconv>

namespace mast::http {

std::string_view protocolString(Protocol p) {
  switch (p) {
    case Protocol::Http10:
      return "HTTP/1.0";
    case Protocol::Http11:
      return "HTTP/1.1";
    case Protocol::Http2:
      return "HTTP/2";
  }
  return "-";
}

static inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? char(c + ('a' - 'A')) : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

void toLowerInPlace(std::string& s) {
  for (auto& c : s) c = lower(c);
}

HeaderMap::HeaderMap(std::initializer_list<HeaderEntry> init) {
  for (const auto& e : init) add(e.name, e.value);
}

const std::string* HeaderMap::get(std::string_view name) const {
  for (const auto& e : entries_) {
    if (iequals(e.name, name)) return &e.value;
  }
  return nullptr;
}

std::string_view HeaderMap::getOr(std::string_view name, std::string_view fallback) const {
  const std::string* v = get(name);
  return v ? std::string_view(*v) : fallback;
}

std::vector<std::string_view> HeaderMap::getAll(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& e : entries_) {
    if (iequals(e.name, name)) out.emplace_back(e.value);
  }
  return out;
}

std::string HeaderMap::getJoined(std::string_view name) const {
  std::string out;
  bool first = true;
  for (const auto& e : entries_) {
    if (!iequals(e.name, name)) continue;
    if (!first) out += ',';
    out += e.value;
    first = false;
  }
  return out;
}

void HeaderMap::add(std::string_view name, std::string_view value) {
  HeaderEntry e{std::string(name), std::string(value)};
  toLowerInPlace(e.name);
  entries_.push_back(std::move(e));
}

void HeaderMap::set(std::string_view name, std::string_view value) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (iequals(it->name, name)) {
      it->value.assign(value);
      entries_.erase(std::remove_if(it + 1, entries_.end(),
                                    [&](const HeaderEntry& e) { return iequals(e.name, name); }),
                     entries_.end());
      return;
    }
  }
  add(name, value);
}

void HeaderMap::setIfAbsent(std::string_view name, std::string_view value) {
  if (!has(name)) add(name, value);
}

size_t HeaderMap::remove(std::string_view name) {
  size_t before = entries_.size();
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [&](const HeaderEntry& e) { return iequals(e.name, name); }),
                 entries_.end());
  return before - entries_.size();
}

int HeaderMap::status() const {
  const std::string* v = get(":status");
  if (!v) return 0;
  int code = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), code);
  if (ec != std::errc() || p != v->data() + v->size()) return 0;
  return code;
}

size_t HeaderMap::byteSize() const {
  size_t n = 0;
  for (const auto& e : entries_) n += e.name.size() + e.value.size();
  return n;
}

}  // namespace mast::http
