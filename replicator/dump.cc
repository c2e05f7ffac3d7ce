#include "replicator/dump.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "replicator/table_sql.h"
#include "replicator/wire.h"
#include "schema/key.h"

namespace zonemesh {

using nlohmann::json;

namespace {

// Appends the dump lines of `spec`'s fetched rows (SelectAll's columns):
// sorted, physical copies with identical values as one line with their
// number, so that equal dumps mean equal rows, copies included.
void AppendLines(const schema::TableSpec& spec, const TableSql& sql, const std::vector<db::Row>& rows,
                 std::vector<DumpLine>* out) {
  std::vector<std::pair<std::string, std::string>> lines;  // (text, key)
  for (const db::Row& r : rows) {
    const schema::RowImage row = sql.ImageOf(r, spec.is_child() ? r[0].AsOptText() : std::nullopt);
    if (schema::IsLocalRow(spec, row)) continue;  // node-local (CATALOG-HASH)
    std::string key = schema::EncodeKey(spec, row);
    json line{{"t", spec.name}, {"k", key}, {"row", RowImageToJson(spec, row)}};
    lines.emplace_back(JsonText(line), std::move(key));
  }
  std::sort(lines.begin(), lines.end());
  for (size_t i = 0; i < lines.size();) {
    size_t j = i;
    while (j < lines.size() && lines[j].first == lines[i].first) ++j;
    if (j - i == 1) {
      out->push_back({spec.name, lines[i].second, lines[i].first});
    } else {
      json line = json::parse(lines[i].first);
      line["copies"] = j - i;
      out->push_back({spec.name, lines[i].second, JsonText(line)});
    }
    i = j;
  }
}

}  // namespace

std::vector<std::string> CanonicalDump(db::Connection& conn) {
  std::vector<DumpLine> lines;
  for (const schema::TableSpec& spec : schema::PowerDnsTables()) {
    const TableSql sql(conn.dialect(), spec);
    AppendLines(spec, sql, conn.Query(sql.SelectAll()), &lines);
  }
  std::vector<std::string> out;
  out.reserve(lines.size());
  for (DumpLine& l : lines) out.push_back(std::move(l.text));
  return out;
}

std::vector<DumpLine> ZoneDumpLines(db::Connection& conn, const std::string& zone) {
  std::vector<DumpLine> lines;
  for (const schema::TableSpec& spec : schema::PowerDnsTables()) {
    const bool zoned = spec.is_zone_table || spec.is_child();
    if (zoned == zone.empty()) continue;
    const TableSql sql(conn.dialect(), spec);
    AppendLines(spec, sql, zoned ? conn.Query(sql.SelectOfZone(), {zone}) : conn.Query(sql.SelectAll()),
                &lines);
  }
  return lines;
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
