#include "control/xds/status.h"

#include <algorithm>
#include <set>

#include "control/xds/type_urls.h"

namespace mast::control::xds {

std::string_view syncStateName(SyncState state) {
  switch (state) {
    case SyncState::kNotSent:
      return "NOT SENT";
    case SyncState::kStale:
      return "STALE";
    case SyncState::kSynced:
      return "SYNCED";
    case SyncState::kError:
      return "ERROR";
  }
  return "?";
}

std::string formatStatusTable(const std::vector<ProxyStatus>& status) {
  std::vector<std::string> types = {std::string(kClusterType), std::string(kListenerType),
                                    std::string(kEndpointType), std::string(kRouteType)};
  std::set<std::string> extra;
  for (const auto& p : status) {
    for (const auto& [type_url, t] : p.types) {
      if (std::find(types.begin(), types.end(), type_url) == types.end()) extra.insert(type_url);
    }
  }
  types.insert(types.end(), extra.begin(), extra.end());

  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"PROXY", "STREAM"};
  for (const auto& t : types) header.push_back(shortTypeName(t));
  rows.push_back(header);
  std::vector<std::string> errors;
  for (const auto& p : status) {
    std::vector<std::string> row = {p.proxy.id,
                                    std::to_string(p.stream_id) + (p.delta ? " delta" : " sotw")};
    for (const auto& type_url : types) {
      auto it = p.types.find(type_url);
      if (it == p.types.end()) {
        row.push_back("-");
        continue;
      }
      const TypeStatus& t = it->second;
      std::string cell(syncStateName(t.state));
      const std::string& v = t.state == SyncState::kError ? t.nacked_version : t.sent_version;
      if (t.state != SyncState::kNotSent && !v.empty()) cell += " " + v;
      row.push_back(std::move(cell));
      if (!t.error_message.empty()) {
        errors.push_back(p.proxy.id + " " + shortTypeName(type_url) + " rejected " +
                         t.nacked_version + ": " + t.error_message);
      }
    }
    rows.push_back(std::move(row));
  }

  std::vector<size_t> width(header.size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out.append(width[i] - row[i].size() + 3, ' ');
    }
    out += '\n';
  }
  for (const auto& e : errors) out += e + '\n';
  return out;
}

}  // namespace mast::control::xds
