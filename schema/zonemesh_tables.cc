#include "schema/zonemesh_tables.h"

#include "schema/sql_dialect.h"

namespace zonemesh::schema {

const std::vector<std::string>& ZonemeshTableNames() {
  static const std::vector<std::string> names = {"zm_meta",    "zm_outbox", "zm_rowver",
                                                 "zm_peer",    "zm_applied", "zm_stage",
                                                 "zm_parked",  "zm_conflict"};
  return names;
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
                " NOT NULL, epoch_hlc BIGINT NOT NULL, epoch_node " + id + " NOT NULL" +
                (inline_index ? ", KEY zm_outbox_csn (csn, id)" : "") + ")" + opts);
  if (!inline_index) out.push_back(index("zm_outbox_csn", "zm_outbox", "csn, id"));
  out.push_back("CREATE TABLE IF NOT EXISTS zm_rowver (tbl " + id + " NOT NULL, kid " + kid +
                " NOT NULL, rkey " + text + " NOT NULL, hlc BIGINT NOT NULL, node " + id +
                " NOT NULL, clock BIGINT NOT NULL, vv " + text +
                " NOT NULL, deleted SMALLINT NOT NULL, zone " + zone +
                " NULL, epoch_hlc BIGINT NOT NULL, epoch_node " + id +
                " NOT NULL, PRIMARY KEY (tbl, kid)" +
                (inline_index ? ", KEY zm_rowver_zone (zone)" : "") + ")" + opts);
  if (!inline_index) out.push_back(index("zm_rowver_zone", "zm_rowver", "zone"));
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
