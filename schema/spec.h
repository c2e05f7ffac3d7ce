// Declarative table specs: how each replicated table is identified by natural
// keys, which columns travel, and which stay on the node. The trigger
// generator, the applier and the canonical dump are all driven by these specs
// (docs/replication-model.md explains the choices).
#ifndef ZONEMESH_SCHEMA_SPEC_H_
#define ZONEMESH_SCHEMA_SPEC_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zonemesh::schema {

enum class ColumnType {
  kText,
  kInt,
  kBool,  // PostgreSQL bool, MySQL tinyint(1), SQLite 0/1: travels as JSON bool
  kInet,  // PostgreSQL inet, text elsewhere: travels as text
};

std::string_view ColumnTypeName(ColumnType t);

struct Column {
  std::string name;
  ColumnType type = ColumnType::kText;
};

// Key columns that drop out of the key for some values of another column,
// so that a single-valued RRset or metadata kind is one logical row whatever
// its content: records.content and records.prio when type is SOA, CNAME or
// DNAME. The dropped columns' key components are then NULL and the columns
// travel as values.
struct SingletonRule {
  std::vector<std::string> columns;  // the columns dropped from the key
  std::string when_column;           // the column whose value decides
  std::vector<std::string> values;   // upper-case values of when_column

  bool Drops(std::string_view column) const;
};

// Rows that PowerDNS derives on each node from node-local data, and that
// must therefore never travel: the rows whose `column` holds one of
// `values` (upper-case) are not captured, not applied and not dumped.
// domainmetadata CATALOG-HASH is a hash over the member zones' local ids.
struct LocalRowRule {
  std::string column;
  std::vector<std::string> values;
};

// The name under which a child row's parent zone travels, instead of the
// node-local domain_id.
inline constexpr std::string_view kZoneField = "zone";

struct TableSpec {
  std::string name;
  // Node-local surrogate id ("id"), never shipped; empty when the table has
  // none (supermasters).
  std::string id_column;
  // For zone children: the column referencing domains.id ("domain_id"). On
  // the wire it is replaced by the zone name (kZoneField).
  std::string parent_column;
  // True for the zones table itself (domains): its key is the zone name, its
  // deletes start a new zone incarnation (epoch), children hang off it.
  bool is_zone_table = false;
  // Natural key in order. kZoneField names the parent zone.
  std::vector<std::string> key;
  // Shipped columns, key columns (other than the zone) first.
  std::vector<Column> columns;
  // Columns PowerDNS maintains itself per node; never shipped and updates
  // that touch only them produce no change event.
  std::vector<std::string> local_columns;
  std::optional<SingletonRule> singleton;
  // The key columns (besides the zone) that name the set of rows PowerDNS
  // replaces as a whole: an RRset (name, type), a metadata kind (kind), the
  // comments of an RRset (name, type). Empty when rows stand alone. A set
  // emptied and filled again in one commit round starts a new incarnation
  // of the set (docs/replication-model.md, "Replacing a set").
  std::vector<std::string> group;
  std::optional<LocalRowRule> local_rows;

  bool is_child() const { return !parent_column.empty(); }
  bool is_grouped() const { return !group.empty(); }
  // REQUIRES: name is a shipped column. Returns its index in `columns`.
  size_t ColumnIndex(std::string_view column) const;
  // nullptr when not a shipped column.
  const Column* FindColumn(std::string_view column) const;
  bool IsKeyColumn(std::string_view column) const;
};

// The PowerDNS generic-SQL tables, parents before children: domains first.
const std::vector<TableSpec>& PowerDnsTables();

// nullptr when the table is not replicated.
const TableSpec* FindTable(std::string_view name);

// A canonical text of every spec (names, keys, columns, types, rules). Peers
// compare its hash and refuse to replicate when their specs differ.
std::string DescribeSpecs(const std::vector<TableSpec>& specs);

}  // namespace zonemesh::schema

#endif  // ZONEMESH_SCHEMA_SPEC_H_
