#include "replicator/dump.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "replicator/table_sql.h"
#include "replicator/wire.h"
#include "schema/key.h"

namespace zonemesh {

using nlohmann::json;

std::vector<std::string> CanonicalDump(db::Connection& conn) {
  std::vector<std::string> out;
  const auto& specs = schema::PowerDnsTables();
  for (size_t t = 0; t < specs.size(); ++t) {
    const schema::TableSpec& spec = specs[t];
    std::vector<std::string> lines;
    const TableSql sql(conn.dialect(), spec);
    for (const db::Row& r : conn.Query(sql.SelectAll())) {
      const schema::RowImage row =
          sql.ImageOf(r, spec.is_child() ? r[0].AsOptText() : std::nullopt);
      if (schema::IsLocalRow(spec, row)) continue;  // node-local (CATALOG-HASH)
      json line{{"t", spec.name}, {"k", schema::EncodeKey(spec, row)}, {"row", RowImageToJson(spec, row)}};
      lines.push_back(JsonText(line));
    }
    // Physical copies of one row show as one line with their number: equal
    // dumps mean equal rows, copies included.
    std::sort(lines.begin(), lines.end());
    for (size_t i = 0; i < lines.size();) {
      size_t j = i;
      while (j < lines.size() && lines[j] == lines[i]) ++j;
      if (j - i == 1) {
        out.push_back(lines[i]);
      } else {
        json line = json::parse(lines[i]);
        line["copies"] = j - i;
        out.push_back(JsonText(line));
      }
      i = j;
    }
  }
  return out;
}

std::vector<std::string> CopyProblems(const std::vector<std::string>& dump) {
  std::vector<std::string> problems;
  std::map<std::pair<std::string, std::string>, int> lines_per_key;
  for (const std::string& l : dump) {
    json j = json::parse(l, nullptr, false);
    if (!j.is_object()) continue;
    const std::string table = j.value("t", ""), key = j.value("k", "");
    lines_per_key[{table, key}]++;
    if (j.contains("copies")) {
      problems.push_back(table + " [" + key + "] is stored " + j["copies"].dump() +
                         " times with the same values");
    }
  }
  for (const auto& [tk, n] : lines_per_key) {
    if (n > 1) {
      problems.push_back(tk.first + " [" + tk.second + "] is stored " + std::to_string(n) +
                         " times with different values (one logical row)");
    }
  }
  return problems;
}

std::string DumpChecksum(const std::vector<std::string>& lines) {
  std::string all;
  for (const std::string& l : lines) all += l + "\n";
  return schema::Sha256Hex(all);
}

std::vector<std::string> SanityProblems(db::Connection& conn) {
  std::vector<std::string> problems;
  for (const db::Row& r : conn.Query(
           "SELECT d.name, COUNT(r.id) FROM domains d LEFT JOIN records r ON r.domain_id = d.id "
           "AND r.type = 'SOA' GROUP BY d.id, d.name HAVING COUNT(r.id) <> 1")) {
    problems.push_back("zone " + r[0].AsText() + " has " + r[1].AsText() + " SOA records");
  }
  for (const db::Row& r :
       conn.Query("SELECT name, COUNT(*) FROM domains GROUP BY name HAVING COUNT(*) > 1")) {
    problems.push_back("zone " + r[0].AsText() + " exists " + r[1].AsText() + " times");
  }
  for (const schema::TableSpec& spec : schema::PowerDnsTables()) {
    if (!spec.is_child()) continue;
    auto rows = conn.Query("SELECT COUNT(*) FROM " + spec.name + " t WHERE NOT EXISTS (SELECT 1 FROM domains d WHERE d.id = t." +
                           spec.parent_column + ")");
    if (rows[0][0].AsInt() > 0) {
      problems.push_back(rows[0][0].AsText() + " row(s) of " + spec.name + " without a zone");
    }
  }
  return problems;
}

}  // namespace zonemesh
