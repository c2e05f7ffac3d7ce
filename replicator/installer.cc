#include "replicator/installer.h"

#include <spdlog/spdlog.h>

#include "schema/pdns_schema.h"
#include "schema/spec.h"
#include "schema/sql_dialect.h"
#include "schema/zonemesh_tables.h"
#include "triggers/capture.h"

namespace zonemesh {

InstallState Inspect(db::Connection& conn) {
  InstallState st;
  for (const std::string& t : schema::PowerDnsTableNames()) {
    if (!conn.TableExists(t)) st.missing_pdns_tables.push_back(t);
  }
  st.installed = conn.TableExists("zm_meta");
  if (st.installed) {
    for (const db::Row& r : conn.Query("SELECT name, value FROM zm_meta")) {
      if (r[0].AsText() == "node_id") st.node_id = r[1].AsText();
      if (r[0].AsText() == "schema_version") st.schema_version = static_cast<int>(r[1].AsInt());
    }
  }
  return st;
}

std::vector<std::string> InstallStatements(db::Dialect dialect, const std::string& node_id) {
  std::vector<std::string> out = schema::ZonemeshTableDdl(dialect);
  for (const std::string& s : triggers::SharedRoutineDdl(dialect)) out.push_back(s);
  for (const schema::TableSpec& spec : schema::PowerDnsTables()) {
    for (const std::string& s : triggers::CaptureTriggerDdl(dialect, spec, node_id)) out.push_back(s);
  }
  return out;
}

std::vector<std::string> UninstallStatements(db::Dialect dialect) {
  std::vector<std::string> out;
  for (const schema::TableSpec& spec : schema::PowerDnsTables()) {
    for (const std::string& s : triggers::DropCaptureTriggerDdl(dialect, spec)) out.push_back(s);
  }
  for (const std::string& s : triggers::DropSharedRoutineDdl(dialect)) out.push_back(s);
  for (const std::string& s : schema::DropZonemeshTableDdl(dialect)) out.push_back(s);
  return out;
}

namespace {

// Every column zonemesh reads or writes must exist, with the surrogate id.
void CheckPowerDnsColumns(db::Connection& conn) {
  for (const schema::TableSpec& spec : schema::PowerDnsTables()) {
    std::vector<std::string> cols;
    if (!spec.id_column.empty()) cols.push_back(spec.id_column);
    if (spec.is_child()) cols.push_back(spec.parent_column);
    for (const schema::Column& c : spec.columns) cols.push_back(c.name);
    for (const std::string& c : spec.local_columns) cols.push_back(c);
    for (const std::string& c : cols) {
      try {
        conn.Query("SELECT " + c + " FROM " + spec.name + " WHERE 1 = 0");
      } catch (const db::Error& e) {
        if (e.connection_lost()) throw;
        throw InstallError("table " + spec.name + " has no column " + c +
                           ": this is not the PowerDNS generic-SQL schema (4.7 or later)");
      }
    }
  }
}

}  // namespace

void Install(db::Connection& conn, const std::string& node_id, bool create_schema) {
  const db::Dialect dialect = conn.dialect();
  InstallState st = Inspect(conn);
  if (!st.missing_pdns_tables.empty()) {
    if (!create_schema) {
      std::string list;
      for (const auto& t : st.missing_pdns_tables) list += (list.empty() ? "" : ", ") + t;
      throw InstallError(conn.Describe() + " lacks the PowerDNS table(s) " + list +
                         ": is this a PowerDNS database? (--create-schema creates the stock "
                         "PowerDNS schema first)");
    }
    size_t created = 0;
    for (const schema::SchemaStatement& s : schema::PowerDnsSchemaStatements(dialect)) {
      bool missing = false;
      for (const auto& t : st.missing_pdns_tables) missing |= (t == s.table);
      if (!missing) continue;
      conn.ExecuteDdl(s.sql);
      ++created;
    }
    spdlog::info("created {} statement(s) of the stock PowerDNS schema", created);
  }
  CheckPowerDnsColumns(conn);
  if (st.installed && !st.node_id.empty() && st.node_id != node_id) {
    throw InstallError(conn.Describe() + " is installed for node \"" + st.node_id +
                       "\", not \"" + node_id +
                       "\": versions carry the node id, so changing it needs `zonemesh "
                       "uninstall` first (pending changes are lost)");
  }
  if (st.installed && st.schema_version > schema::kZonemeshSchemaVersion) {
    throw InstallError(conn.Describe() + " has zonemesh schema version " +
                       std::to_string(st.schema_version) + ", newer than this binary's " +
                       std::to_string(schema::kZonemeshSchemaVersion));
  }

  // SQLite and PostgreSQL run DDL in transactions: all of it or nothing.
  // MySQL commits each DDL statement; every statement is idempotent, so a
  // failed install can simply be run again.
  const bool transactional = dialect != db::Dialect::kMysql;
  const bool upgrade_v1 = st.installed && st.schema_version == 1;
  if (transactional) conn.Begin();
  try {
    if (upgrade_v1) {
      // Version 2 keys records by prio too, and versions carry group
      // incarnations: the versions recorded by version 1 no longer name
      // their rows. They are forgotten; such rows count as written before
      // install (the mesh must be upgraded as a whole: the protocol changed).
      for (const std::string& s : schema::UpgradeFromV1Ddl(dialect)) {
        try {
          conn.ExecuteDdl(s);
        } catch (const db::Error& e) {
          // MySQL committed the columns of an earlier, interrupted upgrade.
          if (e.connection_lost() || transactional) throw;
        }
      }
      conn.Execute("DELETE FROM zm_rowver WHERE tbl <> 'domains'");
      spdlog::warn("upgraded zonemesh schema 1 to 2: row versions were reset; every node of the "
                   "mesh must run this version");
    }
    for (const std::string& s : InstallStatements(dialect, node_id)) conn.ExecuteDdl(s);
    schema::SqlDialect d(dialect);
    const std::string upsert = d.Upsert("zm_meta", {"name", "value"}, {"name"}, {"value"});
    conn.Execute(upsert, {"node_id", node_id});
    conn.Execute(upsert, {"schema_version", std::to_string(schema::kZonemeshSchemaVersion)});
    conn.Execute(d.InsertIgnore("zm_meta", {"name", "value"}, {"name"}), {"last_csn", "0"});
    if (upgrade_v1) {
      conn.Execute(d.Upsert("zm_meta", {"name", "value"}, {"name"}, {"value"}), {"rows_versioned", "0"});
    }
    // Zones without a serial clock (they existed before install) start one
    // at the serial they serve.
    conn.Execute(d.InsertIgnoreSelect(
        "zm_zone", {"zone", "epoch_hlc", "epoch_node", "base"}, {"zone"},
        "SELECT " + d.ToText("d.name", schema::ColumnType::kText) +
            ", COALESCE(rv.epoch_hlc, 0), COALESCE(rv.epoch_node, ''), " + d.SoaSerial("r.content") +
            " FROM domains d JOIN records r ON r.domain_id = d.id AND r.type = 'SOA' LEFT JOIN "
            "zm_rowver rv ON rv.tbl = 'domains' AND rv.kid = " +
            d.KeyId(d.KeyComponent(d.ToText("d.name", schema::ColumnType::kText))) + " WHERE " +
            d.SoaSerial("r.content") + " IS NOT NULL"));
    if (!st.installed) {
      // Whether every PowerDNS row has a version record: true when the
      // tables are empty now that the triggers exist (writers that wrote
      // before have committed: creating a trigger waits for them). The
      // applier then knows a key without a version has no row, and inserts
      // without looking for one first.
      bool empty = true;
      for (const schema::TableSpec& spec : schema::PowerDnsTables()) {
        if (!conn.Query("SELECT 1 FROM " + spec.name + " LIMIT 1").empty()) empty = false;
      }
      conn.Execute(d.InsertIgnore("zm_meta", {"name", "value"}, {"name"}),
                   {"rows_versioned", empty ? "1" : "0"});
    }
    if (transactional) conn.Commit();
  } catch (...) {
    if (transactional) conn.Rollback();
    throw;
  }
}

void Uninstall(db::Connection& conn) {
  const bool transactional = conn.dialect() != db::Dialect::kMysql;
  if (transactional) conn.Begin();
  try {
    for (const std::string& s : UninstallStatements(conn.dialect())) conn.ExecuteDdl(s);
    if (transactional) conn.Commit();
  } catch (...) {
    if (transactional) conn.Rollback();
    throw;
  }
}

void RequireInstalled(db::Connection& conn, const std::string& node_id) {
  InstallState st = Inspect(conn);
  if (!st.missing_pdns_tables.empty()) {
    throw InstallError(conn.Describe() + " lacks the PowerDNS table " +
                       st.missing_pdns_tables.front() + "; run `zonemesh install` first");
  }
  if (!st.installed) {
    throw InstallError(conn.Describe() + " has no zonemesh tables; run `zonemesh install` first");
  }
  if (st.node_id != node_id) {
    throw InstallError(conn.Describe() + " is installed for node \"" + st.node_id +
                       "\" but the config says \"" + node_id + "\"");
  }
  if (st.schema_version != schema::kZonemeshSchemaVersion) {
    throw InstallError(conn.Describe() + " has zonemesh schema version " +
                       std::to_string(st.schema_version) + "; this binary needs " +
                       std::to_string(schema::kZonemeshSchemaVersion) +
                       " (run `zonemesh install` to upgrade)");
  }
}

}  // namespace zonemesh
