#pragma once
// Codec-neutral HTTP header block shared by HTTP/1, HTTP/2, filters and the router.
//
// Names are stored lower-case (HTTP/2 style). Request pseudo-headers ":method", ":path",
// ":authority", ":scheme" and the response pseudo-header ":status" are ordinary entries, so
// HTTP/1 and HTTP/2 look the same to everything above the codec. Order is kept; a name may repeat.
// Not thread-safe: a HeaderMap belongs to one stream on one worker.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mast::http {

enum class Protocol { Http10, Http11, Http2 };
std::string_view protocolString(Protocol p);  // "HTTP/1.0", "HTTP/1.1", "HTTP/2"

struct HeaderEntry {
  std::string name;
  std::string value;
};

class HeaderMap {
 public:
  using const_iterator = std::vector<HeaderEntry>::const_iterator;

  HeaderMap() = default;
  HeaderMap(std::initializer_list<HeaderEntry> init);

  // First value for `name` (case-insensitive), or nullptr.
  const std::string* get(std::string_view name) const;
  std::string_view getOr(std::string_view name, std::string_view fallback = {}) const;
  bool has(std::string_view name) const { return get(name) != nullptr; }
  std::vector<std::string_view> getAll(std::string_view name) const;
  // Values joined with "," (how a proxy must treat repeated headers when matching them).
  std::string getJoined(std::string_view name) const;

  // `name` is lower-cased on insert.
  void add(std::string_view name, std::string_view value);
  // Replaces every value of `name` with one.
  void set(std::string_view name, std::string_view value);
  // Adds only when absent.
  void setIfAbsent(std::string_view name, std::string_view value);
  size_t remove(std::string_view name);
  void clear() { entries_.clear(); }

  // Pseudo-header helpers.
  std::string_view method() const { return getOr(":method"); }
  std::string_view path() const { return getOr(":path"); }
  std::string_view authority() const { return getOr(":authority"); }
  std::string_view scheme() const { return getOr(":scheme"); }
  int status() const;  // parsed ":status", 0 if absent or invalid

  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }
  std::vector<HeaderEntry>& entries() { return entries_; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  // Sum of name and value lengths (for limits and %BYTES% accounting).
  size_t byteSize() const;

 private:
  std::vector<HeaderEntry> entries_;
};

bool iequals(std::string_view a, std::string_view b);
void toLowerInPlace(std::string& s);

}  // namespace mast::http
