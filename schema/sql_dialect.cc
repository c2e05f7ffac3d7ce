#include "schema/sql_dialect.h"

#include <stdexcept>

namespace zonemesh::schema {

using db::Dialect;

std::string SqlDialect::Literal(const std::string& s) const {
  std::string out = "'";
  for (char c : s) {
    if (c == '\\') throw std::logic_error("backslash in generated SQL literal: " + s);
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string SqlDialect::Concat(const std::vector<std::string>& parts) const {
  std::string out;
  if (d_ == Dialect::kMysql) {
    out = "CONCAT(";
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
    return out + ")";
  }
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? " || " : "") + parts[i];
  return "(" + out + ")";
}

std::string SqlDialect::ToText(const std::string& expr, ColumnType type) const {
  switch (d_) {
    case Dialect::kSqlite:
      return "CAST(" + expr + " AS TEXT)";
    case Dialect::kPostgres:
      if (type == ColumnType::kInet) return "host(" + expr + ")";
      return "(" + expr + ")::text";
    case Dialect::kMysql:
      if (type == ColumnType::kText || type == ColumnType::kInet)
        return "CONVERT(" + expr + " USING utf8mb4)";
      return "CAST(" + expr + " AS CHAR)";
  }
  return expr;
}

std::string SqlDialect::KeyComponent(const std::string& text_expr) const {
  return "COALESCE(REPLACE(REPLACE(" + text_expr + ", '%', '%25'), '|', '%7C'), '%N')";
}

std::string SqlDialect::KeyId(const std::string& key_expr) const {
  switch (d_) {
    case Dialect::kSqlite:
      return key_expr;
    case Dialect::kPostgres:
      return "encode(sha256(convert_to(" + key_expr + ", 'UTF8')), 'hex')";
    case Dialect::kMysql:
      return "SHA2(" + key_expr + ", 256)";
  }
  return key_expr;
}

std::string SqlDialect::NowMicros() const {
  switch (d_) {
    case Dialect::kSqlite:
      // 'now' has millisecond resolution in SQLite.
      return "(CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER) * 1000)";
    case Dialect::kPostgres:
      return "(extract(epoch from clock_timestamp()) * 1000000)::bigint";
    case Dialect::kMysql:
      return "CAST(UNIX_TIMESTAMP(SYSDATE(6)) * 1000000 AS SIGNED)";
  }
  return "0";
}

std::string SqlDialect::NullSafeEq(const std::string& a, const std::string& b) const {
  switch (d_) {
    case Dialect::kSqlite:
      return "(" + a + " IS " + b + ")";
    case Dialect::kPostgres:
      return "(" + a + " IS NOT DISTINCT FROM " + b + ")";
    case Dialect::kMysql:
      return "(" + a + " <=> " + b + ")";
  }
  return a + " = " + b;
}

std::string SqlDialect::ExactEq(const std::string& a, const std::string& b) const {
  if (d_ == Dialect::kMysql) {
    return "(CONVERT(" + a + " USING utf8mb4) COLLATE utf8mb4_bin = CONVERT(" + b +
           " USING utf8mb4) COLLATE utf8mb4_bin)";
  }
  return "(" + a + " = " + b + ")";
}

std::string SqlDialect::Upper(const std::string& expr) const { return "UPPER(" + expr + ")"; }

std::string SqlDialect::Greatest(const std::string& a, const std::string& b) const {
  if (d_ == Dialect::kSqlite) return "max(" + a + ", " + b + ")";
  return "GREATEST(" + a + ", " + b + ")";
}

std::string SqlDialect::JsonObject(
    const std::vector<std::pair<std::string, std::string>>& fields) const {
  std::string fn = d_ == Dialect::kSqlite     ? "json_object("
                   : d_ == Dialect::kPostgres ? "json_build_object("
                                              : "JSON_OBJECT(";
  std::string out = fn;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ", ";
    out += Literal(fields[i].first) + ", " + fields[i].second;
  }
  return out + ")";
}

std::string SqlDialect::PayloadValue(const std::string& expr, ColumnType type) const {
  if (d_ == Dialect::kPostgres && type == ColumnType::kInet) return "host(" + expr + ")";
  if (d_ == Dialect::kMysql && type == ColumnType::kText) {
    return "CONVERT(" + expr + " USING utf8mb4)";
  }
  return expr;
}

namespace {

// INSERT INTO table (cols) VALUES (?, ...), (?, ...) with `rows` tuples.
std::string InsertValues(const std::string& table, const std::vector<std::string>& cols,
                         int rows) {
  std::string sql = "INSERT INTO " + table + " (";
  std::string marks = "(";
  for (size_t i = 0; i < cols.size(); ++i) {
    sql += (i ? ", " : "") + cols[i];
    marks += i ? ", ?" : "?";
  }
  marks += ")";
  sql += ") VALUES ";
  for (int r = 0; r < rows; ++r) sql += (r ? ", " : "") + marks;
  return sql;
}

}  // namespace

std::string SqlDialect::Upsert(const std::string& table, const std::vector<std::string>& cols,
                               const std::vector<std::string>& key_cols,
                               const std::vector<std::string>& update_cols, int rows) const {
  std::string sql = InsertValues(table, cols, rows);
  if (d_ == db::Dialect::kMysql) {
    sql += " ON DUPLICATE KEY UPDATE ";
    for (size_t i = 0; i < update_cols.size(); ++i)
      sql += (i ? ", " : "") + update_cols[i] + " = VALUES(" + update_cols[i] + ")";
    return sql;
  }
  sql += " ON CONFLICT (";
  for (size_t i = 0; i < key_cols.size(); ++i) sql += (i ? ", " : "") + key_cols[i];
  sql += ") DO UPDATE SET ";
  for (size_t i = 0; i < update_cols.size(); ++i)
    sql += (i ? ", " : "") + update_cols[i] + " = excluded." + update_cols[i];
  return sql;
}

std::string SqlDialect::InsertIgnore(const std::string& table, const std::vector<std::string>& cols,
                                     const std::vector<std::string>& key_cols, int rows) const {
  std::string sql = InsertValues(table, cols, rows);
  if (d_ == db::Dialect::kMysql) return sql + " ON DUPLICATE KEY UPDATE " + key_cols[0] + " = " + key_cols[0];
  sql += " ON CONFLICT (";
  for (size_t i = 0; i < key_cols.size(); ++i) sql += (i ? ", " : "") + key_cols[i];
  return sql + ") DO NOTHING";
}

std::string SqlDialect::PositionAfter(const std::string& csn_col, const std::string& id_col) const {
  if (d_ == db::Dialect::kMysql) {
    return "(" + csn_col + " > ? OR (" + csn_col + " = ? AND " + id_col + " > ?))";
  }
  return "(" + csn_col + ", " + id_col + ") > (?, ?)";
}

std::string SqlDialect::ForUpdate() const {
  return d_ == db::Dialect::kSqlite ? "" : " FOR UPDATE";
}

std::string SqlDialect::Text() const {
  return d_ == Dialect::kMysql ? "LONGTEXT" : "TEXT";
}

std::string SqlDialect::ShortText(int n) const {
  if (d_ == Dialect::kSqlite) return "TEXT";
  return "VARCHAR(" + std::to_string(n) + ")";
}

std::string SqlDialect::AutoIdPrimaryKey() const {
  switch (d_) {
    case Dialect::kSqlite:
      return "INTEGER PRIMARY KEY AUTOINCREMENT";
    case Dialect::kPostgres:
      return "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY";
    case Dialect::kMysql:
      return "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY";
  }
  return "";
}

std::string SqlDialect::TableOptions() const {
  if (d_ == Dialect::kMysql) return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";
  return "";
}

}  // namespace zonemesh::schema
