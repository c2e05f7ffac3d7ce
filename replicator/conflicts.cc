#include "replicator/conflicts.h"

#include <chrono>

#include "replicator/now.h"
#include "replicator/status.h"
#include "replicator/table_sql.h"
#include "replicator/wire.h"
#include "schema/key.h"
#include "schema/sql_dialect.h"
#include "schema/version.h"

namespace zonemesh {

using nlohmann::json;

json ConflictRecord::ToJson() const {
  return json{{"id", id},
              {"created_at", FormatTime(created_at)},
              {"origin", origin},
              {"table", table},
              {"key", key},
              {"local_version", local_hlc ? json(std::to_string(*local_hlc) + "@" + *local_node) : json(nullptr)},
              {"local", local_image},
              {"remote_version", std::to_string(remote_hlc) + "@" + remote_node},
              {"remote", remote_image},
              {"strategy", strategy},
              {"decision", decision},
              {"reason", reason},
              {"resolved_at", resolved_at ? json(FormatTime(resolved_at)) : json(nullptr)},
              {"resolution", resolution.empty() ? json(nullptr) : json(resolution)}};
}

namespace {

const char* kColumns =
    "id, created_at, origin, tbl, rkey, local_hlc, local_node, local_image, remote_hlc, "
    "remote_node, remote_image, strategy, decision, reason, resolved_at, resolution";

ConflictRecord FromRow(const db::Row& r) {
  ConflictRecord c;
  c.id = r[0].AsInt();
  c.created_at = r[1].AsInt();
  c.origin = r[2].AsText();
  c.table = r[3].AsText();
  c.key = r[4].AsText();
  c.local_hlc = r[5].AsOptInt();
  c.local_node = r[6].AsOptText();
  c.local_image = r[7].IsNull() ? json(nullptr) : json::parse(r[7].AsText(), nullptr, false);
  c.remote_hlc = r[8].AsInt();
  c.remote_node = r[9].AsText();
  c.remote_image = r[10].IsNull() ? json(nullptr) : json::parse(r[10].AsText(), nullptr, false);
  c.strategy = r[11].AsText();
  c.decision = r[12].AsText();
  c.reason = r[13].AsText();
  c.resolved_at = r[14].IsNull() ? 0 : r[14].AsInt();
  c.resolution = r[15].IsNull() ? "" : r[15].AsText();
  return c;
}

// Marks the session as the applier's for the lifetime of the guard.
class ApplyingGuard {
 public:
  explicit ApplyingGuard(db::Connection& c) : c_(c) { c_.SetApplying(true); }
  ~ApplyingGuard() {
    try {
      c_.SetApplying(false);
    } catch (...) {
    }
  }

 private:
  db::Connection& c_;
};

}  // namespace

std::vector<ConflictRecord> ListConflicts(db::Connection& conn, bool pending_only, int limit) {
  std::string sql = std::string("SELECT ") + kColumns + " FROM zm_conflict";
  if (pending_only) sql += " WHERE decision = 'parked' AND resolved_at IS NULL";
  sql += " ORDER BY id DESC LIMIT " + std::to_string(limit);
  std::vector<ConflictRecord> out;
  for (const db::Row& r : conn.Query(sql)) out.push_back(FromRow(r));
  return out;
}

int64_t ExpireConflicts(db::Connection& conn, int64_t before_micros) {
  int64_t deleted = 0;
  for (;;) {
    auto rows = conn.Query(
        "SELECT id FROM zm_conflict WHERE created_at < ? AND NOT (decision = 'parked' AND "
        "resolved_at IS NULL) ORDER BY id LIMIT 500",
        {before_micros});
    if (rows.empty()) break;
    std::string ids;
    for (const db::Row& r : rows) ids += (ids.empty() ? "" : ",") + std::to_string(r[0].AsInt());
    deleted += conn.Execute("DELETE FROM zm_conflict WHERE id IN (" + ids + ")");
    if (rows.size() < 500) break;
  }
  return deleted;
}

void ResolveConflict(db::Connection& conn, const std::string& node_id, int64_t id,
                     bool take_remote) {
  const db::Dialect dialect = conn.dialect();
  schema::SqlDialect d(dialect);
  // Data is written with the capture triggers muted; the change is recorded
  // below with a version that has seen both sides.
  ApplyingGuard applying(conn);
  db::Transaction tx(conn);

  auto rows = conn.Query(std::string("SELECT ") + kColumns + " FROM zm_conflict WHERE id = ?" +
                             d.ForUpdate(),
                         {id});
  if (rows.empty()) throw ResolveError("no conflict with id " + std::to_string(id));
  ConflictRecord c = FromRow(rows[0]);
  if (c.decision != "parked") {
    throw ResolveError("conflict " + std::to_string(id) + " was decided by " + c.strategy + " (" +
                       c.decision + "); only parked conflicts wait for an operator");
  }
  if (c.resolved_at) {
    throw ResolveError("conflict " + std::to_string(id) + " is already resolved: " + c.resolution);
  }
  const schema::TableSpec* spec = schema::FindTable(c.table);
  if (!spec || !c.remote_image.is_object() || !c.remote_image.contains("row")) {
    throw ResolveError("conflict " + std::to_string(id) + " has no usable row image");
  }
  std::vector<std::string> problems;
  schema::RowImage remote_row = RowImageFromPayload(*spec, c.remote_image["row"], &problems);
  const bool remote_delete = c.remote_image.value("op", "U") == "D";

  std::optional<int64_t> zone_id;
  if (spec->is_child()) {
    auto z = conn.Query("SELECT id FROM domains WHERE name = ?", {db::Value(remote_row.zone)});
    if (!z.empty()) zone_id = z[0][0].AsInt();
  }
  TableSql sql(dialect, *spec);
  auto rowver = conn.Query(
      "SELECT clock, vv, deleted, epoch_hlc, epoch_node FROM zm_rowver WHERE tbl = ? AND kid = ?" +
          d.ForUpdate(),
      {c.table, schema::KeyId(dialect, c.key)});

  // The state to assert.
  bool deleted;
  schema::RowImage row = remote_row;
  if (take_remote) {
    deleted = remote_delete;
  } else {
    std::optional<schema::RowImage> local;
    if (!spec->is_child() || zone_id) {
      Statement st = sql.Select(remote_row, zone_id);
      auto r = conn.Query(st.sql, st.params);
      if (!r.empty()) {
        schema::RowImage image;
        image.zone = remote_row.zone;
        for (size_t i = 0; i < spec->columns.size(); ++i)
          image.values.push_back(TableSql::Normalize(r[0][i], spec->columns[i].type));
        local = image;
      }
    }
    deleted = !local.has_value();
    if (local) row = *local;
  }
  if (spec->is_child() && !deleted && !zone_id) {
    throw ResolveError("zone " + remote_row.zone.value_or("?") +
                       " does not exist here any more; nothing to resolve");
  }

  // Write the data.
  if (spec->is_zone_table && deleted) {
    auto z = conn.Query("SELECT id FROM domains WHERE name = ?", {row.values[0]});
    if (!z.empty()) {
      for (const schema::TableSpec& child : schema::PowerDnsTables()) {
        if (!child.is_child()) continue;
        conn.Execute("DELETE FROM " + child.name + " WHERE " + child.parent_column + " = ?", {z[0][0]});
      }
      conn.Execute("DELETE FROM domains WHERE id = ?", {z[0][0]});
    }
    conn.Execute("DELETE FROM zm_rowver WHERE zone = ? AND tbl <> 'domains'", {row.values[0]});
  } else if (deleted) {
    if (!spec->is_child() || zone_id) {
      Statement del = sql.Delete(row, zone_id);
      conn.Execute(del.sql, del.params);
    }
  } else {
    Statement up = sql.Update(row, zone_id);
    if (conn.Execute(up.sql, up.params) == 0) {
      Statement ins = sql.Insert(row, zone_id);
      conn.Execute(ins.sql, ins.params);
    }
  }

  // Record it as a local change that has seen both sides.
  int64_t clock = 0;
  schema::VersionVector vv;
  schema::Version epoch;
  if (!rowver.empty()) {
    clock = rowver[0][0].AsInt();
    vv = schema::VersionVector::FromJson(rowver[0][1].AsText());
    epoch = {rowver[0][3].AsInt(), rowver[0][4].AsText()};
  }
  if (c.remote_image.contains("vv") && c.remote_image["vv"].is_object()) {
    vv = vv.Join(schema::VersionVector::FromJson(c.remote_image["vv"].dump()));
  }
  const int64_t hlc = std::max({NowMicros(), clock + 1, vv.MaxHlc() + 1});
  vv.Set(node_id, hlc);
  if (spec->is_child()) {
    auto ze = conn.Query("SELECT epoch_hlc, epoch_node FROM zm_rowver WHERE tbl = 'domains' AND kid = ?",
                         {schema::KeyId(dialect, schema::ZoneKey(*remote_row.zone))});
    epoch = ze.empty() ? schema::Version{} : schema::Version{ze[0][0].AsInt(), ze[0][1].AsText()};
  } else if (spec->is_zone_table && deleted) {
    epoch = {hlc, node_id};
  } else if (!spec->is_zone_table) {
    epoch = {};
  }
  std::optional<std::string> zone;
  if (spec->is_child()) zone = row.zone;
  if (spec->is_zone_table) zone = row.values[0].AsText();
  schema::Version group_epoch;
  if (spec->is_grouped() && row.zone) {
    const std::string gkey = schema::GroupKey(*spec, row);
    auto g = conn.Query("SELECT epoch_hlc, epoch_node FROM zm_group WHERE tbl = ? AND kid = ?",
                        {c.table, schema::KeyId(dialect, gkey)});
    if (!g.empty()) group_epoch = {g[0][0].AsInt(), g[0][1].AsText()};
  }
  conn.Execute(d.Upsert("zm_rowver",
                        {"tbl", "kid", "rkey", "hlc", "node", "clock", "vv", "deleted", "zone",
                         "epoch_hlc", "epoch_node", "gepoch_hlc", "gepoch_node", "siblings"},
                        {"tbl", "kid"},
                        {"rkey", "hlc", "node", "clock", "vv", "deleted", "zone", "epoch_hlc",
                         "epoch_node", "gepoch_hlc", "gepoch_node", "siblings"}),
               {c.table, schema::KeyId(dialect, c.key), c.key, hlc, node_id, hlc, vv.ToJson(),
                int64_t{deleted ? 1 : 0}, db::Value(zone), epoch.hlc, epoch.node, group_epoch.hlc,
                group_epoch.node, db::Value()});
  conn.Execute(
      "INSERT INTO zm_outbox (tbl, op, rkey, payload, hlc, vv, epoch_hlc, epoch_node, gepoch_hlc, "
      "gepoch_node) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      {c.table, deleted ? "D" : "U", c.key, JsonText(RowImageToJson(*spec, row)), hlc, vv.ToJson(),
       epoch.hlc, epoch.node, group_epoch.hlc, group_epoch.node});
  conn.Execute("UPDATE zm_conflict SET resolved_at = ?, resolution = ? WHERE id = ?",
               {NowMicros(),
                std::string("took ") + (take_remote ? "remote" : "local") + " as " +
                    std::to_string(hlc) + "@" + node_id,
                id});
  tx.Commit();
}

}  // namespace zonemesh
