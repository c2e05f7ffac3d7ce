#include "replicator/digest.h"

#include <stdexcept>

#include "replicator/dump.h"

namespace zonemesh {

using nlohmann::json;

std::string ZoneOfLine(const std::string& line) {
  const json j = json::parse(line, nullptr, false);
  if (!j.is_object() || !j.contains("row") || !j["row"].is_object()) return "";
  const json& row = j["row"];
  if (j.value("t", "") == "domains" && row.contains("name") && row["name"].is_string()) {
    return row["name"].get<std::string>();
  }
  if (row.contains("zone") && row["zone"].is_string()) return row["zone"].get<std::string>();
  return "";
}

std::map<std::string, ZoneDigest> ZoneDigests(const std::vector<std::string>& dump) {
  std::map<std::string, std::vector<std::string>> by_zone;
  for (const std::string& line : dump) by_zone[ZoneOfLine(line)].push_back(line);
  std::map<std::string, ZoneDigest> out;
  for (const auto& [zone, lines] : by_zone) {
    out[zone] = ZoneDigest{static_cast<int64_t>(lines.size()), DumpChecksum(lines)};
  }
  return out;
}

std::vector<std::string> LinesOfZone(const std::vector<std::string>& dump, const std::string& zone) {
  std::vector<std::string> out;
  for (const std::string& line : dump) {
    if (ZoneOfLine(line) == zone) out.push_back(line);
  }
  return out;
}

json DigestsToJson(const std::map<std::string, ZoneDigest>& digests) {
  json zones = json::object();
  for (const auto& [zone, d] : digests) zones[zone] = json{{"rows", d.rows}, {"sha256", d.sha256}};
  return json{{"zones", std::move(zones)}};
}

std::map<std::string, ZoneDigest> DigestsFromJson(const json& j) {
  if (!j.is_object() || !j.contains("zones") || !j["zones"].is_object()) {
    throw std::invalid_argument("a digest document is {\"zones\": {zone: {\"rows\", \"sha256\"}}}");
  }
  std::map<std::string, ZoneDigest> out;
  for (auto it = j["zones"].begin(); it != j["zones"].end(); ++it) {
    const json& d = it.value();
    if (!d.is_object() || !d.contains("rows") || !d["rows"].is_number_integer() ||
        !d.contains("sha256") || !d["sha256"].is_string()) {
      throw std::invalid_argument("zone \"" + it.key() + "\": a digest is {\"rows\", \"sha256\"}");
    }
    out[it.key()] = ZoneDigest{d["rows"].get<int64_t>(), d["sha256"].get<std::string>()};
  }
  return out;
}

}  // namespace zonemesh
