// Statements on the PowerDNS tables, built from a table spec for one
// dialect: find, insert, update and delete a logical row by natural key, and
// read whole tables for the canonical dump. Each statement's text depends
// only on the spec and on which key values are NULL, so the drivers' prepared
// statement caches stay small.
#ifndef ZONEMESH_REPLICATOR_TABLE_SQL_H_
#define ZONEMESH_REPLICATOR_TABLE_SQL_H_

#include <optional>
#include <string>

#include "db/connection.h"
#include "schema/key.h"
#include "schema/spec.h"
#include "schema/sql_dialect.h"

namespace zonemesh {

struct Statement {
  std::string sql;
  db::Params params;
};

// Makes sure a row exists and locks it: `insert` adds it when missing (an
// insert that ignores an existing key), `select` reads it by key with a
// locking read; returns what `select` found. On SQLite the read comes
// first and the insert only when the row is missing: a write statement
// takes SQLite's write lock even when it writes nothing.
std::vector<db::Row> ClaimRow(db::Connection& conn, const Statement& insert, const Statement& select);

class TableSql {
 public:
  TableSql(db::Dialect dialect, const schema::TableSpec& spec) : d_(dialect), spec_(spec) {}

  // REQUIRES for children: zone_id is the local domains.id of row.zone.
  Statement Select(const schema::RowImage& row, std::optional<int64_t> zone_id) const;
  Statement Update(const schema::RowImage& row, std::optional<int64_t> zone_id) const;
  Statement Insert(const schema::RowImage& row, std::optional<int64_t> zone_id) const;
  Statement Delete(const schema::RowImage& row, std::optional<int64_t> zone_id) const;

  // The physical rows of the logical row: SELECT id, col1, ... (the
  // surrogate id first). REQUIRES: the table has an id column.
  Statement SelectCopies(const schema::RowImage& row, std::optional<int64_t> zone_id) const;

  // Every row of the row's group (spec.group): SELECT id, col1, ..., and
  // DELETE. REQUIRES: spec.is_grouped(), the table has an id column.
  Statement SelectGroup(const schema::RowImage& row, int64_t zone_id) const;
  Statement DeleteGroup(const schema::RowImage& row, int64_t zone_id) const;

  // Every row of the table with its zone name, shipped columns in spec
  // order: SELECT zone, col1, col2, ... (zone is NULL for non-children).
  std::string SelectAll() const;
  // The same for one zone's rows (children and domains; takes the zone
  // name as its parameter).
  std::string SelectOfZone() const;

  // A page of rows by surrogate id: SELECT id, zone, col1, ... WHERE id > ?
  // ORDER BY id LIMIT n. REQUIRES: the table has an id column.
  std::string SelectPage(int limit) const;

  // Converts a fetched column to the spec's representation (booleans from
  // 0/1 or t/f, integers from numeric text).
  static db::Value Normalize(const db::Value& v, schema::ColumnType type);

  // The image of a fetched row whose shipped columns start at r[first]
  // (after the id of SelectCopies and SelectGroup, the zone of SelectAll),
  // normalized, in `zone`.
  schema::RowImage ImageOf(const db::Row& r, std::optional<std::string> zone, size_t first = 1) const;

 private:
  // WHERE clause matching the logical row; appends its parameters.
  std::string KeyMatch(const schema::RowImage& row, std::optional<int64_t> zone_id,
                       db::Params* params) const;
  std::string GroupMatch(const schema::RowImage& row, int64_t zone_id, db::Params* params) const;
  // "col = ?" exact on every database, NULL-aware; appends the parameter(s).
  std::string ColumnEquals(const std::string& col, const db::Value& v, db::Params* params) const;
  std::string ColumnList() const;
  // SELECT id and every column of the rows matching `where`, by id.
  std::string SelectRowsWhere(const std::string& where) const;
  std::string ColumnRead(const std::string& col, schema::ColumnType type) const;

  schema::SqlDialect d_;
  const schema::TableSpec& spec_;
};

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_TABLE_SQL_H_
