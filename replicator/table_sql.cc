#include "replicator/table_sql.h"

#include <stdexcept>

namespace zonemesh {

using schema::ColumnType;

std::string TableSql::ColumnRead(const std::string& col, ColumnType type) const {
  if (d_.dialect() == db::Dialect::kPostgres && type == ColumnType::kInet) {
    return "host(" + col + ")";
  }
  if (d_.dialect() == db::Dialect::kMysql && type == ColumnType::kText) {
    return "CONVERT(" + col + " USING utf8mb4)";
  }
  return col;
}

std::string TableSql::KeyMatch(const schema::RowImage& row, std::optional<int64_t> zone_id,
                               db::Params* params) const {
  std::string where;
  auto add = [&](const std::string& cond) { where += (where.empty() ? "" : " AND ") + cond; };
  if (spec_.is_child()) {
    if (!zone_id) throw std::logic_error(spec_.name + ": zone id missing for key match");
    add(spec_.parent_column + " = ?");
    params->push_back(*zone_id);
  }
  bool singleton = schema::SingletonApplies(spec_, row);
  for (const std::string& k : spec_.key) {
    if (k == schema::kZoneField) continue;
    if (singleton && spec_.singleton->Drops(k)) continue;
    add(ColumnEquals(k, row.values[spec_.ColumnIndex(k)], params));
  }
  return where;
}

std::string TableSql::ColumnEquals(const std::string& k, const db::Value& v,
                                   db::Params* params) const {
  if (v.IsNull()) return k + " IS NULL";
  if (d_.dialect() == db::Dialect::kMysql && spec_.FindColumn(k)->type == ColumnType::kText) {
    // Plain equality can use the index; the binary comparison makes it
    // exact (MySQL's default collations ignore case and trailing spaces).
    params->push_back(v);
    params->push_back(v);
    return "(" + k + " = ? AND " + d_.ExactEq(k, "?") + ")";
  }
  params->push_back(v);
  return k + " = ?";
}

std::string TableSql::GroupMatch(const schema::RowImage& row, int64_t zone_id,
                                 db::Params* params) const {
  std::string where = spec_.parent_column + " = ?";
  params->push_back(zone_id);
  for (const std::string& g : spec_.group) {
    where += " AND " + ColumnEquals(g, row.values[spec_.ColumnIndex(g)], params);
  }
  return where;
}

std::string TableSql::ColumnList() const {
  std::string cols;
  for (size_t i = 0; i < spec_.columns.size(); ++i)
    cols += (i ? ", " : "") + ColumnRead(spec_.columns[i].name, spec_.columns[i].type);
  return cols;
}

std::vector<db::Row> ClaimRow(db::Connection& conn, const Statement& insert, const Statement& select) {
  if (conn.dialect() == db::Dialect::kSqlite) {
    std::vector<db::Row> rows = conn.Query(select.sql, select.params);
    if (!rows.empty()) return rows;
  }
  conn.Execute(insert.sql, insert.params);
  return conn.Query(select.sql, select.params);
}

schema::RowImage TableSql::ImageOf(const db::Row& r, std::optional<std::string> zone,
                                   size_t first) const {
  schema::RowImage image;
  image.zone = std::move(zone);
  for (size_t i = 0; i < spec_.columns.size(); ++i) {
    image.values.push_back(Normalize(r[first + i], spec_.columns[i].type));
  }
  return image;
}

std::string TableSql::SelectRowsWhere(const std::string& where) const {
  return "SELECT " + spec_.id_column + ", " + ColumnList() + " FROM " + spec_.name + " WHERE " +
         where + " ORDER BY " + spec_.id_column;
}

Statement TableSql::SelectCopies(const schema::RowImage& row, std::optional<int64_t> zone_id) const {
  Statement st;
  st.sql = SelectRowsWhere(KeyMatch(row, zone_id, &st.params));
  return st;
}

Statement TableSql::SelectGroup(const schema::RowImage& row, int64_t zone_id) const {
  Statement st;
  st.sql = SelectRowsWhere(GroupMatch(row, zone_id, &st.params));
  return st;
}

Statement TableSql::DeleteGroup(const schema::RowImage& row, int64_t zone_id) const {
  Statement st;
  std::string where = GroupMatch(row, zone_id, &st.params);
  st.sql = "DELETE FROM " + spec_.name + " WHERE " + where;
  return st;
}

Statement TableSql::Select(const schema::RowImage& row, std::optional<int64_t> zone_id) const {
  Statement st;
  std::string where = KeyMatch(row, zone_id, &st.params);
  st.sql = "SELECT " + ColumnList() + " FROM " + spec_.name + " WHERE " + where;
  if (!spec_.id_column.empty()) st.sql += " ORDER BY " + spec_.id_column;
  st.sql += " LIMIT 1";
  return st;
}

Statement TableSql::Update(const schema::RowImage& row, std::optional<int64_t> zone_id) const {
  Statement st;
  std::string sets;
  for (size_t i = 0; i < spec_.columns.size(); ++i) {
    sets += (i ? ", " : "") + spec_.columns[i].name + " = ?";
    st.params.push_back(row.values[i]);
  }
  std::string where = KeyMatch(row, zone_id, &st.params);
  st.sql = "UPDATE " + spec_.name + " SET " + sets + " WHERE " + where;
  return st;
}

Statement TableSql::Insert(const schema::RowImage& row, std::optional<int64_t> zone_id) const {
  Statement st;
  std::string cols, marks;
  if (spec_.is_child()) {
    cols = spec_.parent_column;
    marks = "?";
    st.params.push_back(*zone_id);
  }
  for (size_t i = 0; i < spec_.columns.size(); ++i) {
    cols += (cols.empty() ? "" : ", ") + spec_.columns[i].name;
    marks += marks.empty() ? "?" : ", ?";
    st.params.push_back(row.values[i]);
  }
  st.sql = "INSERT INTO " + spec_.name + " (" + cols + ") VALUES (" + marks + ")";
  return st;
}

Statement TableSql::Delete(const schema::RowImage& row, std::optional<int64_t> zone_id) const {
  Statement st;
  std::string where = KeyMatch(row, zone_id, &st.params);
  st.sql = "DELETE FROM " + spec_.name + " WHERE " + where;
  return st;
}

std::string TableSql::SelectAll() const {
  std::string cols;
  for (const schema::Column& c : spec_.columns) cols += ", " + ColumnRead("t." + c.name, c.type);
  if (spec_.is_child()) {
    return "SELECT " + ColumnRead("d.name", ColumnType::kText) + cols + " FROM " + spec_.name +
           " t LEFT JOIN domains d ON d.id = t." + spec_.parent_column;
  }
  return "SELECT NULL" + cols + " FROM " + spec_.name + " t";
}

std::string TableSql::SelectOfZone() const {
  if (spec_.is_child()) return SelectAll() + " WHERE d.name = ?";
  return SelectAll() + " WHERE t.name = ?";
}

std::string TableSql::SelectPage(int limit) const {
  std::string cols;
  for (const schema::Column& c : spec_.columns) cols += ", " + ColumnRead("t." + c.name, c.type);
  std::string zone = spec_.is_child() ? ColumnRead("d.name", ColumnType::kText) : "NULL";
  std::string join = spec_.is_child()
                         ? " LEFT JOIN domains d ON d.id = t." + spec_.parent_column
                         : "";
  return "SELECT t." + spec_.id_column + ", " + zone + cols + " FROM " + spec_.name + " t" + join +
         " WHERE t." + spec_.id_column + " > ? ORDER BY t." + spec_.id_column + " LIMIT " +
         std::to_string(limit);
}

db::Value TableSql::Normalize(const db::Value& v, ColumnType type) {
  if (v.IsNull()) return v;
  switch (type) {
    case ColumnType::kBool:
      return db::Value(v.AsBool());
    case ColumnType::kInt:
      return db::Value(v.AsInt());
    case ColumnType::kText:
    case ColumnType::kInet:
      return db::Value(v.AsText());
  }
  return v;
}

}  // namespace zonemesh
