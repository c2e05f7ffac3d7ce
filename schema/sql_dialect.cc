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

namespace {

// " ON CONFLICT (k) DO UPDATE SET " / " ON DUPLICATE KEY UPDATE ".
std::string OnConflictSet(Dialect d, const std::vector<std::string>& key_cols) {
  if (d == Dialect::kMysql) return " ON DUPLICATE KEY UPDATE ";
  std::string sql = " ON CONFLICT (";
  for (size_t i = 0; i < key_cols.size(); ++i) sql += (i ? ", " : "") + key_cols[i];
  return sql + ") DO UPDATE SET ";
}

}  // namespace

std::string SqlDialect::UpsertMax(const std::string& table, const std::vector<std::string>& cols,
                                  const std::vector<std::string>& key_cols,
                                  const std::string& col) const {
  const std::string stored = d_ == Dialect::kMysql ? col : table + "." + col;
  const std::string inserted = d_ == Dialect::kMysql ? "VALUES(" + col + ")" : "excluded." + col;
  return InsertValues(table, cols, 1) + OnConflictSet(d_, key_cols) + col + " = " +
         Greatest(stored, inserted);
}

std::string SqlDialect::UpsertAdd(const std::string& table, const std::vector<std::string>& cols,
                                  const std::vector<std::string>& key_cols,
                                  const std::string& col) const {
  const std::string stored = d_ == Dialect::kMysql ? col : table + "." + col;
  const std::string inserted = d_ == Dialect::kMysql ? "VALUES(" + col + ")" : "excluded." + col;
  return InsertValues(table, cols, 1) + OnConflictSet(d_, key_cols) + col + " = " + stored + " + " +
         inserted;
}

std::string SqlDialect::InsertIgnore(const std::string& table, const std::vector<std::string>& cols,
                                     const std::vector<std::string>& key_cols, int rows) const {
  std::string sql = InsertValues(table, cols, rows);
  if (d_ == db::Dialect::kMysql) return sql + " ON DUPLICATE KEY UPDATE " + key_cols[0] + " = " + key_cols[0];
  sql += " ON CONFLICT (";
  for (size_t i = 0; i < key_cols.size(); ++i) sql += (i ? ", " : "") + key_cols[i];
  return sql + ") DO NOTHING";
}

std::string SqlDialect::InsertIgnoreSelect(const std::string& table,
                                           const std::vector<std::string>& cols,
                                           const std::vector<std::string>& key_cols,
                                           const std::string& select_sql) const {
  std::string list;
  for (size_t i = 0; i < cols.size(); ++i) list += (i ? ", " : "") + cols[i];
  switch (d_) {
    case Dialect::kSqlite:
      return "INSERT OR IGNORE INTO " + table + " (" + list + ") " + select_sql;
    case Dialect::kMysql:
      return "INSERT IGNORE INTO " + table + " (" + list + ") " + select_sql;
    case Dialect::kPostgres: {
      std::string keys;
      for (size_t i = 0; i < key_cols.size(); ++i) keys += (i ? ", " : "") + key_cols[i];
      return "INSERT INTO " + table + " (" + list + ") " + select_sql + " ON CONFLICT (" + keys +
             ") DO NOTHING";
    }
  }
  return "";
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

namespace {

// SQLite: the pieces of SOA content around its serial field, by position.
struct SqliteSoaParts {
  std::string p1, rest1, p2, rest2, p3, serial, suffix;
  explicit SqliteSoaParts(const std::string& c) {
    p1 = "instr(" + c + ", ' ')";
    rest1 = "substr(" + c + ", " + p1 + " + 1)";
    p2 = "instr(" + rest1 + ", ' ')";
    rest2 = "substr(" + rest1 + ", " + p2 + " + 1)";
    p3 = "instr(" + rest2 + ", ' ')";
    serial = "(CASE WHEN " + p3 + " > 0 THEN substr(" + rest2 + ", 1, " + p3 + " - 1) ELSE " +
             rest2 + " END)";
    suffix = "(CASE WHEN " + p3 + " > 0 THEN substr(" + rest2 + ", " + p3 + ") ELSE '' END)";
  }
};

}  // namespace

std::string SqlDialect::SoaSerial(const std::string& c) const {
  switch (d_) {
    case Dialect::kSqlite: {
      SqliteSoaParts p(c);
      return "(CASE WHEN " + p.p1 + " > 0 AND " + p.p2 + " > 0 AND length(" + p.serial +
             ") BETWEEN 1 AND 10 AND " + p.serial + " NOT GLOB '*[^0-9]*' AND CAST(" + p.serial +
             " AS INTEGER) < 4294967296 THEN CAST(" + p.serial + " AS INTEGER) END)";
    }
    case Dialect::kPostgres: {
      const std::string f = "split_part(" + c + ", ' ', 3)";
      return "(CASE WHEN " + f + " ~ '^[0-9]{1,10}$' THEN CASE WHEN " + f +
             "::bigint < 4294967296 THEN " + f + "::bigint END END)";
    }
    case Dialect::kMysql: {
      const std::string f = "SUBSTRING_INDEX(SUBSTRING_INDEX(" + c + ", ' ', 3), ' ', -1)";
      return "(CASE WHEN LENGTH(" + c + ") - LENGTH(REPLACE(" + c + ", ' ', '')) >= 2 AND " + f +
             " REGEXP '^[0-9]{1,10}$' AND CAST(" + f + " AS UNSIGNED) < 4294967296 THEN CAST(" + f +
             " AS SIGNED) END)";
    }
  }
  return "NULL";
}

std::string SqlDialect::WithSoaSerial(const std::string& c, const std::string& serial) const {
  switch (d_) {
    case Dialect::kSqlite: {
      SqliteSoaParts p(c);
      return "(substr(" + c + ", 1, " + p.p1 + " + " + p.p2 + ") || CAST(" + serial +
             " AS TEXT) || " + p.suffix + ")";
    }
    case Dialect::kPostgres:
      return "regexp_replace(" + c + ", '^([^ ]* [^ ]* )[0-9]+', '\\1' || (" + serial + ")::text)";
    case Dialect::kMysql:
      return "CONCAT(SUBSTRING_INDEX(" + c + ", ' ', 2), ' ', CAST(" + serial +
             " AS CHAR), SUBSTRING(" + c + ", LENGTH(SUBSTRING_INDEX(" + c + ", ' ', 3)) + 1))";
  }
  return c;
}

std::string SqlDialect::SessionId() const {
  switch (d_) {
    case Dialect::kSqlite:
      return "0";
    case Dialect::kPostgres:
      return "pg_backend_pid()";
    case Dialect::kMysql:
      return "CONNECTION_ID()";
  }
  return "0";
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
