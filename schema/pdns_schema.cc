#include "schema/pdns_schema.h"

#include <cctype>
#include <sstream>

namespace zonemesh::schema {
namespace {

#include "pdns_schema_data.inc"  // kSqliteSchema, kPostgresSchema, kMysqlSchema

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The word after `marker` ("table " or " on ") in a lower-cased statement.
std::string WordAfter(const std::string& lower, const std::string& orig, const std::string& marker) {
  size_t p = lower.find(marker);
  if (p == std::string::npos) return "";
  p += marker.size();
  while (p < orig.size() && std::isspace(static_cast<unsigned char>(orig[p]))) ++p;
  size_t e = p;
  while (e < orig.size() && (std::isalnum(static_cast<unsigned char>(orig[e])) || orig[e] == '_'))
    ++e;
  return Lower(orig.substr(p, e - p));
}

}  // namespace

std::string_view PowerDnsSchemaText(db::Dialect dialect) {
  switch (dialect) {
    case db::Dialect::kSqlite:
      return kSqliteSchema;
    case db::Dialect::kPostgres:
      return kPostgresSchema;
    case db::Dialect::kMysql:
      return kMysqlSchema;
  }
  return "";
}

std::vector<SchemaStatement> PowerDnsSchemaStatements(db::Dialect dialect) {
  // Drop comment lines, then split on ';'. The stock files have no ';' or
  // "--" inside string literals.
  std::istringstream in{std::string(PowerDnsSchemaText(dialect))};
  std::string line, text;
  while (std::getline(in, line)) {
    if (Trim(line).rfind("--", 0) == 0) continue;
    text += line + "\n";
  }
  std::vector<SchemaStatement> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(';', start);
    if (end == std::string::npos) end = text.size();
    std::string stmt = Trim(text.substr(start, end - start));
    start = end + 1;
    if (stmt.empty()) continue;
    std::string lower = Lower(stmt);
    if (lower.rfind("pragma", 0) == 0) continue;
    std::string table;
    if (lower.rfind("create table", 0) == 0) {
      table = WordAfter(lower, stmt, "table ");
    } else if (lower.find(" index ") != std::string::npos) {
      table = WordAfter(lower, stmt, " on ");
    }
    out.push_back({table, stmt});
  }
  return out;
}

std::vector<std::string> PowerDnsTableNames() {
  return {"domains",        "records",    "supermasters", "comments",
          "domainmetadata", "cryptokeys", "tsigkeys"};
}

}  // namespace zonemesh::schema
