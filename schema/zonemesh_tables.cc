#include "schema/zonemesh_tables.h"

#include "schema/sql_dialect.h"

namespace zonemesh::schema {

const std::vector<std::string>& ZonemeshTableNames() {
  static const std::vector<std::string> names = {
      "zm_meta",  "zm_outbox", "zm_rowver", "zm_group",   "zm_zone",    "zm_serial",
      "zm_peer",  "zm_applied", "zm_stage", "zm_parked",  "zm_conflict"};
  return names;
}

namespace {

// Columns schema version 2 added to zm_outbox: the writer's database session,
// the incarnation of the row's group (RRset, metadata kind), and for SOA
// upserts the zone's serial clock after the write.
std::string OutboxV2Columns(const SqlDialect& d) {
  return "sess BIGINT NOT NULL DEFAULT 0, gepoch_hlc BIGINT NOT NULL DEFAULT 0, gepoch_node " +
         d.ShortText(64) + " NOT NULL DEFAULT '', serial_base BIGINT NULL, serial_count BIGINT NULL";
}

// Columns schema version 2 added to zm_rowver: the group incarnation the
// row's state belongs to, and the concurrent states kept beside it.
std::string RowverV2Columns(const SqlDialect& d) {
  return "gepoch_hlc BIGINT NOT NULL DEFAULT 0, gepoch_node " + d.ShortText(64) +
         " NOT NULL DEFAULT '', siblings " + d.Text() + " NULL";
}

std::vector<std::string> Split(const std::string& columns) {
  std::vector<std::string> out;
  size_t start = 0;
  int depth = 0;
  for (size_t i = 0; i <= columns.size(); ++i) {
    if (i < columns.size() && columns[i] == '(') ++depth;
    if (i < columns.size() && columns[i] == ')') --depth;
    if (i == columns.size() || (columns[i] == ',' && depth == 0)) {
      std::string c = columns.substr(start, i - start);
      while (!c.empty() && c.front() == ' ') c.erase(c.begin());
      out.push_back(c);
      start = i + 1;
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> UpgradeFromV1Ddl(db::Dialect dialect) {
  SqlDialect d(dialect);
  std::vector<std::string> out;
  for (const std::string& c : Split(OutboxV2Columns(d))) {
    out.push_back("ALTER TABLE zm_outbox ADD COLUMN " + c);
  }
  for (const std::string& c : Split(RowverV2Columns(d))) {
    out.push_back("ALTER TABLE zm_rowver ADD COLUMN " + c);
  }
  return out;
}

std::vector<std::string> ZonemeshTableDdl(db::Dialect dialect) {
  SqlDialect d(dialect);
  const std::string id = d.ShortText(64);     // table names, node ids
  const std::string zone = d.ShortText(255);  // DNS names
  const std::string kid = dialect == db::Dialect::kSqlite ? "TEXT" : "CHAR(64)";
  const std::string text = d.Text();
  const std::string opts = d.TableOptions();
  // MySQL cannot use IF NOT EXISTS on CREATE INDEX before MariaDB 10.1.4 /
  // never on MySQL; indexes are declared inline there.
  const bool inline_index = dialect == db::Dialect::kMysql;
  auto index = [&](const std::string& name, const std::string& table, const std::string& cols) {
    return "CREATE INDEX IF NOT EXISTS " + name + " ON " + table + " (" + cols + ")";
  };

  std::vector<std::string> out;
  out.push_back("CREATE TABLE IF NOT EXISTS zm_meta (name " + id + " NOT NULL PRIMARY KEY, value " +
                text + ")" + opts);
  out.push_back("CREATE TABLE IF NOT EXISTS zm_outbox (id " + d.AutoIdPrimaryKey() +
                ", csn BIGINT NULL, tbl " + id + " NOT NULL, op CHAR(1) NOT NULL, rkey " + text +
                " NOT NULL, payload " + text + " NOT NULL, hlc BIGINT NOT NULL, vv " + text +
                " NOT NULL, epoch_hlc BIGINT NOT NULL, epoch_node " + id + " NOT NULL, " +
                OutboxV2Columns(d) + (inline_index ? ", KEY zm_outbox_csn (csn, id)" : "") + ")" +
                opts);
  if (!inline_index) out.push_back(index("zm_outbox_csn", "zm_outbox", "csn, id"));
  out.push_back("CREATE TABLE IF NOT EXISTS zm_rowver (tbl " + id + " NOT NULL, kid " + kid +
                " NOT NULL, rkey " + text + " NOT NULL, hlc BIGINT NOT NULL, node " + id +
                " NOT NULL, clock BIGINT NOT NULL, vv " + text +
                " NOT NULL, deleted SMALLINT NOT NULL, zone " + zone +
                " NULL, epoch_hlc BIGINT NOT NULL, epoch_node " + id + " NOT NULL, " +
                RowverV2Columns(d) + ", PRIMARY KEY (tbl, kid)" +
                (inline_index ? ", KEY zm_rowver_zone (zone)" : "") + ")" + opts);
  if (!inline_index) out.push_back(index("zm_rowver_zone", "zm_rowver", "zone"));
  out.push_back("CREATE TABLE IF NOT EXISTS zm_group (tbl " + id + " NOT NULL, kid " + kid +
                " NOT NULL, rkey " + text + " NOT NULL, zone " + zone +
                " NOT NULL, epoch_hlc BIGINT NOT NULL, epoch_node " + id +
                " NOT NULL, pending_id BIGINT NULL, PRIMARY KEY (tbl, kid)" +
                (inline_index ? ", KEY zm_group_zone (zone)" : "") + ")" + opts);
  if (!inline_index) out.push_back(index("zm_group_zone", "zm_group", "zone"));
  out.push_back("CREATE TABLE IF NOT EXISTS zm_zone (zone " + zone +
                " NOT NULL PRIMARY KEY, epoch_hlc BIGINT NOT NULL, epoch_node " + id +
                " NOT NULL, base BIGINT NULL)" + opts);
  out.push_back("CREATE TABLE IF NOT EXISTS zm_serial (zone " + zone + " NOT NULL, origin " + id +
                " NOT NULL, kind CHAR(1) NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (zone, origin, "
                "kind))" +
                opts);
  out.push_back("CREATE TABLE IF NOT EXISTS zm_peer (peer " + id +
                " NOT NULL PRIMARY KEY, csn BIGINT NOT NULL, id BIGINT NOT NULL, updated_at "
                "BIGINT NOT NULL)" +
                opts);
  out.push_back("CREATE TABLE IF NOT EXISTS zm_applied (origin " + id +
                " NOT NULL PRIMARY KEY, csn BIGINT NOT NULL, id BIGINT NOT NULL, staged_csn "
                "BIGINT NOT NULL, staged_id BIGINT NOT NULL, updated_at BIGINT NOT NULL)" +
                opts);
  out.push_back("CREATE TABLE IF NOT EXISTS zm_stage (origin " + id +
                " NOT NULL, csn BIGINT NOT NULL, id BIGINT NOT NULL, body " + text +
                " NOT NULL, PRIMARY KEY (origin, csn, id))" + opts);
  out.push_back("CREATE TABLE IF NOT EXISTS zm_parked (id " + d.AutoIdPrimaryKey() +
                ", origin " + id + " NOT NULL, zone " + zone + " NOT NULL, tbl " + id +
                " NOT NULL, rkey " + text + " NOT NULL, body " + text +
                " NOT NULL, parked_at BIGINT NOT NULL" +
                (inline_index ? ", KEY zm_parked_zone (zone)" : "") + ")" + opts);
  if (!inline_index) out.push_back(index("zm_parked_zone", "zm_parked", "zone"));
  out.push_back("CREATE TABLE IF NOT EXISTS zm_conflict (id " + d.AutoIdPrimaryKey() +
                ", created_at BIGINT NOT NULL, origin " + id + " NOT NULL, tbl " + id +
                " NOT NULL, rkey " + text + " NOT NULL, local_hlc BIGINT NULL, local_node " + id +
                " NULL, local_image " + text + " NULL, remote_hlc BIGINT NOT NULL, remote_node " +
                id + " NOT NULL, remote_image " + text + " NULL, strategy " + id +
                " NOT NULL, decision " + id + " NOT NULL, reason " + text +
                " NOT NULL, resolved_at BIGINT NULL, resolution " + text + " NULL)" + opts);
  return out;
}

std::vector<std::string> DropZonemeshTableDdl(db::Dialect dialect) {
  (void)dialect;
  std::vector<std::string> out;
  const auto& names = ZonemeshTableNames();
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    out.push_back("DROP TABLE IF EXISTS " + *it);
  }
  return out;
}

}  // namespace zonemesh::schema
