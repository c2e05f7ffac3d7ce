#include "schema/key.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace zonemesh::schema {

std::string EncodeKeyComponent(const std::optional<std::string>& component) {
  if (!component) return "%N";
  std::string out;
  out.reserve(component->size());
  for (char c : *component) {
    if (c == '%') {
      out += "%25";
    } else if (c == '|') {
      out += "%7C";
    } else {
      out += c;
    }
  }
  return out;
}

std::optional<std::string> FirstKeyComponent(const std::string& key) {
  const std::string first = key.substr(0, key.find('|'));
  if (first == "%N") return std::nullopt;
  std::string out;
  for (size_t i = 0; i < first.size(); ++i) {
    if (first[i] == '%' && first.compare(i, 3, "%25") == 0) {
      out += '%';
      i += 2;
    } else if (first[i] == '%' && first.compare(i, 3, "%7C") == 0) {
      out += '|';
      i += 2;
    } else {
      out += first[i];
    }
  }
  return out;
}

std::vector<std::optional<std::string>> DecodeKeyComponents(const std::string& key) {
  std::vector<std::optional<std::string>> out;
  size_t start = 0;
  for (;;) {
    size_t bar = key.find('|', start);
    std::string part = key.substr(start, bar == std::string::npos ? std::string::npos : bar - start);
    if (part == "%N") {
      out.push_back(std::nullopt);
    } else {
      std::string v;
      for (size_t i = 0; i < part.size(); ++i) {
        if (part[i] != '%') {
          v += part[i];
        } else if (part.compare(i, 3, "%25") == 0) {
          v += '%';
          i += 2;
        } else if (part.compare(i, 3, "%7C") == 0) {
          v += '|';
          i += 2;
        } else {
          throw std::invalid_argument("malformed key component: " + part);
        }
      }
      out.push_back(v);
    }
    if (bar == std::string::npos) break;
    start = bar + 1;
  }
  return out;
}

RowImage RowImageFromKey(const TableSpec& spec, const std::string& key) {
  auto parts = DecodeKeyComponents(key);
  if (parts.size() != spec.key.size()) {
    throw std::invalid_argument("key of " + spec.name + " has " + std::to_string(parts.size()) +
                                " components, the table's key " + std::to_string(spec.key.size()));
  }
  RowImage row;
  row.values.resize(spec.columns.size());
  for (size_t i = 0; i < spec.key.size(); ++i) {
    const std::string& k = spec.key[i];
    if (k == kZoneField) {
      row.zone = parts[i];
      continue;
    }
    if (!parts[i]) continue;
    const Column* c = spec.FindColumn(k);
    if (c->type == ColumnType::kInt) {
      row.values[spec.ColumnIndex(k)] = db::Value(db::Value(*parts[i]).AsInt());
    } else {
      row.values[spec.ColumnIndex(k)] = db::Value(*parts[i]);
    }
  }
  return row;
}

namespace {

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

std::optional<std::string> ComponentOf(const db::Value& v) {
  if (v.IsNull()) return std::nullopt;
  return v.AsText();
}

}  // namespace

bool SingletonApplies(const TableSpec& spec, const RowImage& row) {
  if (!spec.singleton) return false;
  const db::Value& when = row.values.at(spec.ColumnIndex(spec.singleton->when_column));
  if (when.IsNull()) return false;
  std::string v = Upper(when.AsText());
  const auto& vals = spec.singleton->values;
  return std::find(vals.begin(), vals.end(), v) != vals.end();
}

std::vector<std::optional<std::string>> KeyComponents(const TableSpec& spec,
                                                      const RowImage& row) {
  if (row.values.size() != spec.columns.size()) {
    throw std::logic_error("row image of " + spec.name + " has " +
                           std::to_string(row.values.size()) + " values, spec has " +
                           std::to_string(spec.columns.size()));
  }
  bool singleton = SingletonApplies(spec, row);
  std::vector<std::optional<std::string>> out;
  out.reserve(spec.key.size());
  for (const std::string& k : spec.key) {
    if (k == kZoneField) {
      out.push_back(row.zone);
    } else if (singleton && spec.singleton->Drops(k)) {
      out.push_back(std::nullopt);
    } else {
      out.push_back(ComponentOf(row.values[spec.ColumnIndex(k)]));
    }
  }
  return out;
}

std::string EncodeKey(const TableSpec& spec, const RowImage& row) {
  std::string out;
  bool first = true;
  for (const auto& c : KeyComponents(spec, row)) {
    if (!first) out += '|';
    first = false;
    out += EncodeKeyComponent(c);
  }
  return out;
}

std::string ZoneKey(const std::string& zone_name) { return EncodeKeyComponent(zone_name); }

std::string GroupKey(const TableSpec& spec, const RowImage& row) {
  if (!spec.is_grouped()) throw std::logic_error("table " + spec.name + " has no row groups");
  std::string out = EncodeKeyComponent(row.zone);
  for (const std::string& g : spec.group) {
    out += '|';
    out += EncodeKeyComponent(ComponentOf(row.values.at(spec.ColumnIndex(g))));
  }
  return out;
}

bool IsLocalRow(const TableSpec& spec, const RowImage& row) {
  if (!spec.local_rows) return false;
  const db::Value& v = row.values.at(spec.ColumnIndex(spec.local_rows->column));
  if (v.IsNull()) return false;
  const auto& vals = spec.local_rows->values;
  return std::find(vals.begin(), vals.end(), Upper(v.AsText())) != vals.end();
}

std::string Sha256Hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 0xf];
  }
  return out;
}

std::string KeyId(db::Dialect dialect, const std::string& key) {
  if (dialect == db::Dialect::kSqlite) return key;
  return Sha256Hex(key);
}

}  // namespace zonemesh::schema
