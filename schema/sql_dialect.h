// Small SQL building blocks that differ between SQLite, PostgreSQL and
// MySQL/MariaDB. The trigger generator and the applier's statement builder
// use these so each dialect difference is written down once.
#ifndef ZONEMESH_SCHEMA_SQL_DIALECT_H_
#define ZONEMESH_SCHEMA_SQL_DIALECT_H_

#include <string>
#include <vector>

#include "db/connection.h"
#include "schema/spec.h"

namespace zonemesh::schema {

class SqlDialect {
 public:
  explicit SqlDialect(db::Dialect d) : d_(d) {}
  db::Dialect dialect() const { return d_; }

  // A string literal. REQUIRES: s has no backslash (all literals zonemesh
  // generates are identifiers, node ids and type names).
  std::string Literal(const std::string& s) const;

  // a || b || ... (CONCAT() on MySQL).
  std::string Concat(const std::vector<std::string>& parts) const;

  // The column value as text for keys: inet as host address (PostgreSQL),
  // integers as decimal, text unchanged (converted to utf8mb4 on MySQL so
  // latin1 PowerDNS columns mix with zonemesh's utf8mb4 strings).
  std::string ToText(const std::string& expr, ColumnType type) const;

  // One escaped key component (see schema/key.h); NULL becomes '%N'.
  std::string KeyComponent(const std::string& text_expr) const;

  // The zm_rowver.kid of a key expression: the key on SQLite, hex SHA-256
  // elsewhere (must equal schema::KeyId).
  std::string KeyId(const std::string& key_expr) const;

  // Wall-clock microseconds since the epoch, evaluated at call time.
  std::string NowMicros() const;

  // Null-safe equality a = b.
  std::string NullSafeEq(const std::string& a, const std::string& b) const;

  // Exact (case- and trailing-space-sensitive) text equality; MySQL's
  // default collations are neither.
  std::string ExactEq(const std::string& a, const std::string& b) const;

  // UPPER(expr).
  std::string Upper(const std::string& expr) const;

  // GREATEST / max for two arguments.
  std::string Greatest(const std::string& a, const std::string& b) const;

  // A JSON object literal builder from (name, expr) pairs.
  std::string JsonObject(const std::vector<std::pair<std::string, std::string>>& fields) const;

  // Column expression as it goes into a payload (inet as text).
  std::string PayloadValue(const std::string& expr, ColumnType type) const;

  // INSERT of `rows` rows that updates `update_cols` when a row with the same
  // `key_cols` exists, with one ? per column of `cols` per row, row by row.
  // REQUIRES: no two of the rows share a key (PostgreSQL refuses that).
  std::string Upsert(const std::string& table, const std::vector<std::string>& cols,
                     const std::vector<std::string>& key_cols,
                     const std::vector<std::string>& update_cols, int rows = 1) const;

  // INSERT of one row that, when a row with the same `key_cols` exists,
  // sets `col` to the greater of the stored and the inserted value
  // (UpsertMax) or to their sum (UpsertAdd).
  std::string UpsertMax(const std::string& table, const std::vector<std::string>& cols,
                        const std::vector<std::string>& key_cols, const std::string& col) const;
  std::string UpsertAdd(const std::string& table, const std::vector<std::string>& cols,
                        const std::vector<std::string>& key_cols, const std::string& col) const;

  // INSERT of `rows` rows, each doing nothing when a row with its key exists.
  std::string InsertIgnore(const std::string& table, const std::vector<std::string>& cols,
                           const std::vector<std::string>& key_cols, int rows = 1) const;

  // INSERT INTO table (cols) <select_sql>, skipping rows whose `key_cols`
  // exist (or repeat within the select).
  std::string InsertIgnoreSelect(const std::string& table, const std::vector<std::string>& cols,
                                 const std::vector<std::string>& key_cols,
                                 const std::string& select_sql) const;

  // "(csn, id) > (?, ?)" in a form each database can run on an index;
  // takes the parameters (csn, csn, id) on MySQL, (csn, id) elsewhere.
  std::string PositionAfter(const std::string& csn_col, const std::string& id_col) const;
  bool PositionAfterRepeatsCsn() const { return d_ == db::Dialect::kMysql; }

  // " FOR UPDATE" where row locks exist; SQLite's write transaction already
  // excludes every other writer.
  std::string ForUpdate() const;

  // The serial field of SOA content (schema/serial.h) as a BIGINT, NULL when
  // it is missing or not a number below 2^32.
  std::string SoaSerial(const std::string& content_expr) const;

  // The content with its serial field replaced by `serial_expr` (a BIGINT
  // below 2^32). REQUIRES: SoaSerial(content_expr) is not NULL.
  std::string WithSoaSerial(const std::string& content_expr, const std::string& serial_expr) const;

  // An integer naming the current database session (0 on SQLite, whose
  // writers never overlap).
  std::string SessionId() const;

  // Column types for zonemesh's own tables.
  std::string BigInt() const { return "BIGINT"; }
  std::string Text() const;                // unbounded text
  std::string ShortText(int n) const;      // identifiers, indexed
  std::string AutoIdPrimaryKey() const;    // monotonic 64-bit id column
  std::string TableOptions() const;        // MySQL engine/charset clause

 private:
  db::Dialect d_;
};

}  // namespace zonemesh::schema

#endif  // ZONEMESH_SCHEMA_SQL_DIALECT_H_
