#include "replicator/outbox.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "replicator/zone_clock.h"
#include "replicator/now.h"
#include "schema/serial.h"
#include "schema/sql_dialect.h"

namespace zonemesh {

using nlohmann::json;

namespace {

constexpr int kStampPage = 512;

// The outbox columns ChangeFromRow reads, in its order.
constexpr const char* kChangeColumns =
    "SELECT id, csn, tbl, op, rkey, payload, hlc, vv, epoch_hlc, epoch_node, sess, gepoch_hlc, "
    "gepoch_node, serial_base, serial_count";

// "IN (?, ?, ...)" for n parameters.
std::string Marks(size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += i ? ", ?" : "?";
  return out;
}

void AddPositionParams(const schema::SqlDialect& d, const Position& p, db::Params* params) {
  params->push_back(p.csn);
  if (d.PositionAfterRepeatsCsn()) params->push_back(p.csn);
  params->push_back(p.id);
}

}  // namespace

Position ParsePosition(const std::string& text) {
  if (text.empty()) return {};
  size_t colon = text.find(':');
  if (colon == std::string::npos) return {std::stoll(text), 0};
  return {std::stoll(text.substr(0, colon)), std::stoll(text.substr(colon + 1))};
}

std::string Outbox::MetaGet(const std::string& name) {
  auto rows = conn_.Query("SELECT value FROM zm_meta WHERE name = ?", {name});
  return rows.empty() || rows[0][0].IsNull() ? "" : rows[0][0].AsText();
}

void Outbox::MetaSet(const std::string& name, const std::string& value) {
  schema::SqlDialect d(conn_.dialect());
  conn_.Execute(d.Upsert("zm_meta", {"name", "value"}, {"name"}, {"value"}), {name, value});
}

std::optional<int64_t> Outbox::RoundsFinished() {
  const std::string v = MetaGet("rounds_finished_csn");
  if (v.empty()) return std::nullopt;
  return std::stoll(v);
}

void Outbox::SetRoundsFinished(int64_t csn) {
  db::Transaction tx(conn_);  // (SQLite: a write that keeps out of PowerDNS's way)
  MetaSet("rounds_finished_csn", std::to_string(csn));
  tx.Commit();
}

bool Outbox::HasUnstamped() {
  return !conn_.Query("SELECT id FROM zm_outbox WHERE csn IS NULL LIMIT 1").empty();
}

std::vector<int64_t> Outbox::DeletedZoneIds(int64_t after_csn) {
  std::vector<int64_t> out;
  for (const db::Row& r : conn_.Query(
           "SELECT payload FROM zm_outbox WHERE csn > ? AND tbl = 'domains' AND op = 'D'",
           {after_csn})) {
    json p = json::parse(r[0].AsText(), nullptr, false);
    if (p.is_object() && p.contains("local_id") && p["local_id"].is_number_integer())
      out.push_back(p["local_id"].get<int64_t>());
  }
  return out;
}

std::set<std::string> Outbox::ZonesChanged(int64_t after_csn) {
  std::set<std::string> out;
  for (const db::Row& r : conn_.Query("SELECT DISTINCT tbl, rkey FROM zm_outbox WHERE csn > ?", {after_csn})) {
    const schema::TableSpec* spec = schema::FindTable(r[0].AsText());
    if (!spec || !(spec->is_zone_table || spec->is_child())) continue;
    // The zone name is the first key component of zones and their rows.
    if (auto zone = schema::FirstKeyComponent(r[1].AsText())) out.insert(*zone);
  }
  return out;
}

int64_t Outbox::StampRound(std::set<std::string>* clock_zones) {
  if (!HasUnstamped()) return 0;
  int64_t stamped = 0;
  conn_.BeginSnapshot();
  try {
    const int64_t csn = ParsePosition(MetaGet("last_csn")).csn + 1;
    int64_t after = 0;
    schema::RoundSerials serials;
    for (;;) {
      // The key's start names the zone and, for records, the type.
      auto rows = conn_.Query(
          "SELECT id, tbl, op, SUBSTR(rkey, 1, 2000), sess, epoch_hlc, epoch_node FROM zm_outbox "
          "WHERE csn IS NULL AND id > ? ORDER BY id LIMIT " +
              std::to_string(kStampPage),
          {after});
      if (rows.empty()) break;
      for (const db::Row& r : rows) {
        const schema::TableSpec* spec = schema::FindTable(r[1].AsText());
        if (!spec || !spec->is_child()) continue;
        const std::string key = r[3].AsText();
        const char op = r[2].AsText().empty() ? 'U' : r[2].AsText()[0];
        serials.Add({schema::FirstKeyComponent(key).value_or(""),
                     {r[5].AsInt(), r[6].AsText()},
                     r[4].AsInt(),
                     schema::RoleOfKey(*spec, op, key)});
      }
      // Pad to a power of two with the last id so that few distinct
      // statements are prepared.
      size_t n = 1;
      while (n < rows.size()) n *= 2;
      db::Params params{csn};
      for (size_t i = 0; i < n; ++i) params.push_back(rows[std::min(i, rows.size() - 1)][0]);
      // Primary-key lookups only: on InnoDB a scan of the csn index would
      // wait for writers' uncommitted rows.
      conn_.Execute("UPDATE zm_outbox SET csn = ? WHERE id IN (" + Marks(n) + ")", params);
      stamped += static_cast<int64_t>(rows.size());
      after = rows.back()[0].AsInt();
      if (rows.size() < static_cast<size_t>(kStampPage)) break;
    }
    if (stamped > 0) MetaSet("last_csn", std::to_string(csn));
    // The round's zones changed without an SOA write count one more on
    // their serial clocks, exactly as every receiver counts the round.
    // (For the incarnation the round wrote in: a clock of a later one
    // ignores it.)
    ZoneClocks clocks(conn_);
    for (const auto& [zone, epoch] : serials.ZonesChangedWithoutSoaWrite()) {
      clocks.AddImplicit(zone, epoch, node_id_);
      if (clock_zones) clock_zones->insert(zone);
    }
    conn_.Commit();
  } catch (...) {
    conn_.Rollback();
    throw;
  }
  return stamped;
}

Change Outbox::ChangeFromRow(const db::Row& row) {
  // id, csn, tbl, op, rkey, payload, hlc, vv, epoch_hlc, epoch_node, sess, gepoch_hlc,
  // gepoch_node, serial_base, serial_count
  Change c;
  c.pos = {row[1].AsInt(), row[0].AsInt()};
  std::string table = row[2].AsText();
  c.spec = schema::FindTable(table);
  if (!c.spec) throw std::runtime_error("outbox row " + row[0].AsText() + " names unknown table " + table);
  c.op = row[3].AsText().empty() ? 'U' : row[3].AsText()[0];
  std::vector<std::string> problems;
  std::string text = row[5].AsText();
  json payload = json::parse(text, nullptr, false);
  if (payload.is_discarded() && SanitizeUtf8(&text)) {
    // SQLite stores and json_object() passes on bytes that are not UTF-8.
    problems.push_back("invalid UTF-8 replaced by U+FFFD");
    payload = json::parse(text, nullptr, false);
  }
  if (payload.is_discarded()) {
    throw std::runtime_error("outbox row " + row[0].AsText() + " (" + table + ") has a payload that is not JSON");
  }
  c.row = RowImageFromPayload(*c.spec, payload, &problems);
  c.version = {row[6].AsInt(), node_id_};
  c.vv = schema::VersionVector::FromJson(row[7].AsText());
  c.epoch = {row[8].AsInt(), row[9].AsText()};
  c.session = row[10].AsInt();
  c.group_epoch = {row[11].AsInt(), row[12].AsText()};
  if (!row[13].IsNull() && !row[14].IsNull() && c.op == 'U' && schema::IsSoaRow(*c.spec, c.row)) {
    c.serial = SerialClock{row[13].AsInt(), row[14].AsInt()};
  }
  c.key = schema::EncodeKey(*c.spec, c.row);
  const std::string captured_key = row[4].AsText();
  if (!problems.empty() || c.key != captured_key) {
    ++normalization_problems_;
    std::string what;
    for (const auto& p : problems) what += p + "; ";
    if (c.key != captured_key) what += "captured key \"" + captured_key + "\" differs from \"" + c.key + "\"";
    spdlog::warn("outbox row {} ({} [{}]): {}", row[0].AsText(), table, captured_key, what);
  }
  return c;
}

Batch Outbox::ReadBatch(const Position& after, int max_changes, int64_t max_bytes) {
  schema::SqlDialect d(conn_.dialect());
  db::Params params;
  AddPositionParams(d, after, &params);
  params.push_back(int64_t{max_changes} + 1);
  auto rows = conn_.Query(
      std::string(kChangeColumns) + " FROM zm_outbox WHERE csn IS NOT NULL AND " +
          d.PositionAfter("csn", "id") + " ORDER BY csn, id LIMIT ?",
      params);
  Batch batch;
  batch.after = after;
  int64_t bytes = 0;
  size_t taken = 0;
  bool cut = false;  // stopped before the end of what is available
  for (const db::Row& row : rows) {
    int64_t size = static_cast<int64_t>(row[4].AsText().size() + row[5].AsText().size() + 120);
    if (taken == static_cast<size_t>(max_changes) || (taken > 0 && bytes + size > max_bytes)) {
      cut = true;
      break;
    }
    bytes += size;
    ++taken;
  }
  if (taken == 0) return batch;
  if (cut) {
    const int64_t next_csn = rows[taken][1].AsInt();
    const int64_t last_csn = rows[taken - 1][1].AsInt();
    if (next_csn == last_csn) {
      // The last round continues past the cut: end the batch at the previous
      // round boundary, or send a chunk of a round too large for one batch.
      size_t boundary = taken;
      while (boundary > 0 && rows[boundary - 1][1].AsInt() == last_csn) --boundary;
      if (boundary > 0) {
        taken = boundary;
      } else {
        batch.round_complete = false;
      }
    }
  }
  batch.changes.reserve(taken);
  for (size_t i = 0; i < taken; ++i) batch.changes.push_back(ChangeFromRow(rows[i]));
  return batch;
}

std::vector<Change> Outbox::UpsertsAfter(
    int64_t after_csn, const std::function<bool(const std::string&, const std::string&)>& wanted,
    size_t limit) {
  std::vector<Change> out;
  schema::SqlDialect d(conn_.dialect());
  Position from{after_csn + 1, 0};
  for (;;) {
    db::Params params;
    AddPositionParams(d, Position{from.csn, from.id}, &params);
    auto rows = conn_.Query(std::string(kChangeColumns) +
                                " FROM zm_outbox WHERE csn IS NOT NULL AND op = 'U' AND " +
                                d.PositionAfter("csn", "id") + " ORDER BY csn, id LIMIT " +
                                std::to_string(kStampPage),
                            params);
    for (const db::Row& r : rows) {
      if (wanted(r[2].AsText(), r[4].AsText())) {
        out.push_back(ChangeFromRow(r));
        if (out.size() >= limit) return out;
      }
    }
    if (rows.size() < static_cast<size_t>(kStampPage)) break;
    from = {rows.back()[1].AsInt(), rows.back()[0].AsInt()};
  }
  return out;
}

int64_t Outbox::CountAfter(const Position& after) {
  schema::SqlDialect d(conn_.dialect());
  db::Params params;
  AddPositionParams(d, after, &params);
  int64_t stamped = conn_.Query("SELECT COUNT(*) FROM zm_outbox WHERE csn IS NOT NULL AND " +
                                    d.PositionAfter("csn", "id"),
                                params)[0][0]
                        .AsInt();
  int64_t unstamped = conn_.Query("SELECT COUNT(*) FROM zm_outbox WHERE csn IS NULL")[0][0].AsInt();
  return stamped + unstamped;
}

Outbox::Queue Outbox::QueueAfter(const Position& after) {
  Queue q;
  q.depth = CountAfter(after);
  if (q.depth > 0) q.oldest_hlc = OldestHlcAfter(after);
  return q;
}

std::optional<int64_t> Outbox::OldestHlcAfter(const Position& after) {
  schema::SqlDialect d(conn_.dialect());
  db::Params params;
  AddPositionParams(d, after, &params);
  auto rows = conn_.Query("SELECT hlc FROM zm_outbox WHERE csn IS NOT NULL AND " +
                              d.PositionAfter("csn", "id") + " ORDER BY csn, id LIMIT 1",
                          params);
  if (!rows.empty()) return rows[0][0].AsInt();
  rows = conn_.Query("SELECT MIN(hlc) FROM zm_outbox WHERE csn IS NULL");
  if (rows.empty() || rows[0][0].IsNull()) return std::nullopt;
  return rows[0][0].AsInt();
}

Position Outbox::LastPosition() {
  auto rows = conn_.Query("SELECT csn, id FROM zm_outbox WHERE csn IS NOT NULL ORDER BY csn DESC, id DESC LIMIT 1");
  if (!rows.empty()) return {rows[0][0].AsInt(), rows[0][1].AsInt()};
  // Everything stamped was purged: the last position is the purged one.
  return std::max(PurgedUpTo(), Position{ParsePosition(MetaGet("last_csn")).csn, 0});
}

std::map<std::string, Position> Outbox::LoadCursors() {
  std::map<std::string, Position> out;
  for (const db::Row& r : conn_.Query("SELECT peer, csn, id FROM zm_peer")) {
    out[r[0].AsText()] = {r[1].AsInt(), r[2].AsInt()};
  }
  return out;
}

void Outbox::SaveCursor(const std::string& peer, const Position& pos) {
  schema::SqlDialect d(conn_.dialect());
  db::Transaction tx(conn_);  // (SQLite: a write that keeps out of PowerDNS's way)
  conn_.Execute(d.Upsert("zm_peer", {"peer", "csn", "id", "updated_at"}, {"peer"},
                         {"csn", "id", "updated_at"}),
                {peer, pos.csn, pos.id, NowMicros()});
  tx.Commit();
}

int64_t Outbox::Purge(const Position& acked_by_all, int64_t older_than_hlc) {
  if (acked_by_all.IsZero()) return 0;
  // Only rows of rounds before the acknowledged one are purged, so a
  // partially acknowledged round stays whole.
  return DeleteOldestStamped("csn < ? AND hlc < ?", {acked_by_all.csn, older_than_hlc});
}

int64_t Outbox::ExpireHistory(int64_t horizon_hlc) {
  return DeleteOldestStamped("hlc < ?", {horizon_hlc});
}

int64_t Outbox::DeleteOldestStamped(const std::string& condition, const db::Params& params) {
  int64_t deleted = 0;
  for (;;) {
    auto rows = conn_.Query("SELECT id, csn FROM zm_outbox WHERE csn IS NOT NULL AND " + condition +
                                " ORDER BY csn, id LIMIT " + std::to_string(kStampPage),
                            params);
    if (rows.empty()) break;
    size_t n = 1;
    while (n < rows.size()) n *= 2;
    db::Params ids;
    for (size_t i = 0; i < n; ++i) ids.push_back(rows[std::min(i, rows.size() - 1)][0]);
    db::Transaction tx(conn_);
    conn_.Execute("DELETE FROM zm_outbox WHERE id IN (" + Marks(n) + ")", ids);
    Position last{rows.back()[1].AsInt(), rows.back()[0].AsInt()};
    if (last > PurgedUpTo()) MetaSet("purged_upto", last.ToString());
    tx.Commit();
    deleted += static_cast<int64_t>(rows.size());
    if (rows.size() < static_cast<size_t>(kStampPage)) break;
  }
  return deleted;
}

int64_t Outbox::ExpireTombstones(int64_t horizon_hlc) {
  int64_t deleted = 0;
  for (;;) {
    auto rows = conn_.Query(
        "SELECT tbl, kid FROM zm_rowver WHERE deleted = 1 AND tbl <> 'domains' AND hlc > 0 AND hlc < ? "
        "LIMIT " + std::to_string(kStampPage),
        {horizon_hlc});
    if (rows.empty()) break;
    db::Transaction tx(conn_);
    for (const db::Row& r : rows) {
      // Re-checked under the delete: a write since the select keeps it.
      deleted += conn_.Execute("DELETE FROM zm_rowver WHERE tbl = ? AND kid = ? AND deleted = 1 AND hlc < ?",
                               {r[0], r[1], horizon_hlc});
    }
    tx.Commit();
    if (rows.size() < static_cast<size_t>(kStampPage)) break;
  }
  return deleted;
}

Position Outbox::PurgedUpTo() { return ParsePosition(MetaGet("purged_upto")); }

}  // namespace zonemesh
