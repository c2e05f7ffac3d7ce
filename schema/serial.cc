#include "schema/serial.h"

#include <algorithm>
#include <cctype>

namespace zonemesh::schema {

namespace {

// [begin, end) of the serial field (the third space-separated field).
bool SerialField(const std::string& content, size_t* begin, size_t* end) {
  size_t pos = 0;
  for (int field = 0; field < 2; ++field) {
    pos = content.find(' ', pos);
    if (pos == std::string::npos) return false;
    ++pos;
  }
  size_t stop = content.find(' ', pos);
  if (stop == std::string::npos) stop = content.size();
  if (stop == pos) return false;
  *begin = pos;
  *end = stop;
  return true;
}

}  // namespace

bool IsSoaRow(const TableSpec& spec, const RowImage& row) {
  if (spec.name != "records" || row.values.size() != spec.columns.size()) return false;
  const db::Value& type = row.values[spec.ColumnIndex("type")];
  if (!type.IsText()) return false;
  std::string t = type.text();
  std::transform(t.begin(), t.end(), t.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return t == "SOA";
}

std::optional<uint32_t> SoaSerial(const std::string& content) {
  size_t begin = 0, end = 0;
  if (!SerialField(content, &begin, &end)) return std::nullopt;
  if (end - begin > 10) return std::nullopt;
  uint64_t v = 0;
  for (size_t i = begin; i < end; ++i) {
    if (content[i] < '0' || content[i] > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(content[i] - '0');
  }
  if (v >= static_cast<uint64_t>(kSerialModulus)) return std::nullopt;
  return static_cast<uint32_t>(v);
}

std::string WithSoaSerial(const std::string& content, uint32_t serial) {
  size_t begin = 0, end = 0;
  if (!SerialField(content, &begin, &end)) return content;
  return content.substr(0, begin) + std::to_string(serial) + content.substr(end);
}

int64_t SerialTarget(std::optional<int64_t> current, uint32_t written) {
  if (!current) return written;
  const int64_t ahead = (static_cast<int64_t>(written) - ServedSerial(*current) + kSerialModulus) %
                        kSerialModulus;
  if (ahead > 0 && ahead < kSerialHalf) return *current + ahead;
  return *current + 1;
}

SerialRole RoleOf(const TableSpec& spec, char op, const RowImage& row) {
  if (spec.name == "records") {
    if (IsSoaRow(spec, row)) return op == 'U' ? SerialRole::kSoaWrite : SerialRole::kNone;
    return SerialRole::kContent;
  }
  if (spec.name == "cryptokeys" || spec.name == "domainmetadata") return SerialRole::kContent;
  return SerialRole::kNone;
}

SerialRole RoleOfKey(const TableSpec& spec, char op, const std::string& key) {
  if (spec.name == "records") {
    // zone|name|type|content|prio
    std::vector<std::optional<std::string>> parts;
    try {
      parts = DecodeKeyComponents(key);
    } catch (const std::invalid_argument&) {
      return SerialRole::kContent;
    }
    std::string type = parts.size() > 2 && parts[2] ? *parts[2] : "";
    std::transform(type.begin(), type.end(), type.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (type == "SOA") return op == 'U' ? SerialRole::kSoaWrite : SerialRole::kNone;
    return SerialRole::kContent;
  }
  if (spec.name == "cryptokeys" || spec.name == "domainmetadata") return SerialRole::kContent;
  return SerialRole::kNone;
}

void RoundSerials::Add(const RoundEntry& e) {
  if (e.role == SerialRole::kNone || e.zone.empty()) return;
  Track& t = tracks_[{e.zone, e.session}];
  if (e.role == SerialRole::kContent) {
    t.uncovered = true;
    t.epoch = e.epoch;
  } else {
    t.uncovered = false;
  }
}

std::map<std::string, Version> RoundSerials::ZonesChangedWithoutSoaWrite() const {
  std::map<std::string, Version> out;
  for (const auto& [zs, t] : tracks_) {
    if (!t.uncovered) continue;
    auto it = out.find(zs.first);
    if (it == out.end() || it->second < t.epoch) out[zs.first] = t.epoch;
  }
  return out;
}

}  // namespace zonemesh::schema
