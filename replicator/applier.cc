#include "replicator/applier.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <set>

#include "conflict/resolve.h"
#include "replicator/table_sql.h"
#include "replicator/now.h"
#include "schema/serial.h"
#include "schema/sql_dialect.h"

namespace zonemesh {

using nlohmann::json;
using schema::Version;
using schema::VersionVector;

std::optional<schema::RowImage> ComparableImage(const schema::TableSpec& spec,
                                                const std::optional<schema::RowImage>& image) {
  if (!image || !schema::IsSoaRow(spec, *image)) return image;
  schema::RowImage out = *image;
  db::Value& content = out.values[spec.ColumnIndex("content")];
  if (content.IsText()) content = db::Value(schema::WithSoaSerial(content.text(), 0));
  return out;
}

namespace {

// A parked change as Park stored it: a stream change with its position, or
// a snapshot or anti-entropy row, which has none.
Change ParkedChange(const std::string& body) {
  const json j = json::parse(body);
  const bool positioned = j.contains("p") && j["p"].is_array() && j["p"].size() == 2 &&
                          j["p"][0].is_number_integer() && j["p"][0].get<int64_t>() > 0;
  return ChangeFromJson(j, /*snapshot_row=*/!positioned);
}


const std::vector<std::string> kRowVerColumns = {
    "tbl",       "kid",        "rkey",       "hlc",        "node",       "clock",   "vv",
    "deleted",   "zone",       "epoch_hlc",  "epoch_node", "gepoch_hlc", "gepoch_node",
    "siblings"};
const char* kRowVerSelect =
    "hlc, node, clock, vv, deleted, zone, epoch_hlc, epoch_node, gepoch_hlc, gepoch_node, siblings";

constexpr int kPageSize = 500;

// Row versions are locked, read and written up to this many keys per
// statement. Statements come in the sizes 64, 8 and 1 only, so that the
// drivers' prepared-statement caches stay small.
constexpr size_t kRowVerChunk = 64;
// The row versions a batched transaction keeps in memory; past this, written
// ones are flushed and all are dropped (their locks stay held).
constexpr size_t kMaxKeptRowVers = 4096;

size_t ChunkSize(size_t n) { return n >= 64 ? 64 : n >= 8 ? 8 : 1; }

// How long a race suspect stays one, and how many are kept.
constexpr int64_t kSuspectMicros = 60LL * 1000000;
constexpr size_t kMaxSuspects = 20000;

// The zm_applied row of an origin nothing was applied from yet.
Statement AppliedPlaceholder(db::Dialect dialect, const std::string& origin) {
  return {schema::SqlDialect(dialect).InsertIgnore(
              "zm_applied", {"origin", "csn", "id", "staged_csn", "staged_id", "updated_at"},
              {"origin"}),
          {origin, int64_t{0}, int64_t{0}, int64_t{0}, int64_t{0}, NowMicros()}};
}

// A zm_rowver row that claims a key and records nothing (hlc 0: older than
// any change).
db::Params PlaceholderParams(const std::string& table, const std::string& kid,
                             const std::string& key) {
  return {table,       kid,         key,         int64_t{0}, "", int64_t{0}, "{}",
          int64_t{1},  db::Value(), int64_t{0},  "",         int64_t{0}, "", db::Value()};
}

// A row image for comparing states: an SOA's serial is the zone clock's,
// not part of the row's state.
std::optional<schema::RowImage> Comparable(const schema::TableSpec& spec,
                                           const std::optional<schema::RowImage>& image) {
  return ComparableImage(spec, image);
}

json StatesToJson(const schema::TableSpec& spec, const std::vector<conflict::State>& states) {
  json out = json::array();
  for (const conflict::State& s : states) {
    out.push_back(json{{"h", json::array({s.version.hlc, s.version.node})},
                       {"vv", json::parse(s.vv.ToJson())},
                       {"x", s.exists},
                       {"row", s.image ? RowImageToJson(spec, *s.image) : json(nullptr)}});
  }
  return out;
}

std::vector<conflict::State> StatesFromJson(const schema::TableSpec& spec, const std::string& text) {
  std::vector<conflict::State> out;
  json j = json::parse(text, nullptr, false);
  if (!j.is_array()) return out;
  for (const json& s : j) {
    conflict::State st;
    st.version = {s.at("h").at(0).get<int64_t>(), s.at("h").at(1).get<std::string>()};
    st.vv = VersionVector::FromJson(s.at("vv").dump());
    st.exists = s.at("x").get<bool>();
    if (!s.at("row").is_null()) st.image = RowImageFromPayload(spec, s.at("row"), nullptr);
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace

std::vector<Change> SiblingsAsChanges(const Change& row, const std::string& siblings) {
  std::vector<Change> out;
  if (siblings.empty()) return out;
  std::vector<conflict::State> states;
  try {
    states = StatesFromJson(*row.spec, siblings);
  } catch (const std::exception& e) {
    spdlog::warn("{} [{}]: concurrent states unreadable ({}); sent without them", row.spec->name,
                 row.key, e.what());
    return out;
  }
  if (states.size() < 2 || states.size() > kMaxSiblings) return out;
  for (const conflict::State& st : states) {
    Change c = row;
    c.siblings.clear();
    c.serial.reset();
    c.op = st.exists ? 'U' : 'D';
    c.version = st.version;
    c.vv = st.vv;
    if (st.exists && st.image) {
      c.row.values = st.image->values;
    } else if (st.exists) {
      return {};  // a live state without its image: nothing to send
    }
    out.push_back(std::move(c));
  }
  return out;
}

const char* ConflictDecisionName(ConflictDecision d) {
  switch (d) {
    case ConflictDecision::kKeepLocal:
      return "keep-local";
    case ConflictDecision::kTakeRemote:
      return "take-remote";
    case ConflictDecision::kMerge:
      return "merge";
    case ConflictDecision::kParked:
      return "parked";
    case ConflictDecision::kDropped:
      return "dropped";
    case ConflictDecision::kFailed:
      return "failed";
  }
  return "?";
}

// The version record of one logical row (zm_rowver). `known` is false when
// nothing is recorded, or only the placeholder the applier writes to lock a
// key: such a row state is older than any change.
struct Applier::RowVer {
  bool known = false;
  Version version;
  int64_t clock = 0;
  VersionVector vv;
  bool deleted = true;
  std::optional<std::string> zone;
  Version epoch;
  Version group_epoch;
  // The row's concurrent states as JSON (conflict::State), "" when the row
  // has a single state (the one above).
  std::string siblings;
  // Set when a dead incarnation's leftover was set aside: a row may exist
  // whatever the (reset) state says.
  bool maybe_present = false;
};

struct Applier::ZoneState {
  std::string name;
  std::string key;
  RowVer rv;                   // rv.epoch is the zone's incarnation
  std::optional<int64_t> id;   // local domains.id while the zone exists here
};

struct Applier::GroupState {
  Version epoch;  // zero: never replaced
};

struct Applier::Context {
  ApplyResult* result = nullptr;
  std::set<std::string> zones_touched;  // zones whose parked changes may now apply
  std::set<std::string> clock_zones;    // zones whose serial clock moved: publish
};

struct Applier::TxCache {
  bool batched = false;
  std::map<RowKey, RowVer> rowvers;  // locked by this transaction, with its writes
  std::map<RowKey, RowVer> pending;  // written here, not yet sent to the database
  std::map<std::string, std::optional<int64_t>> zone_ids;  // zone name -> domains.id
  std::map<RowKey, GroupState> groups;  // (table, group key) -> state, locked
  // Whether unresolved parked conflicts may exist (unknown until asked).
  std::optional<bool> parked_conflicts;
  // zm_meta rows_versioned: every row of the PowerDNS tables has a version
  // record (the node was installed or resynced empty).
  bool rows_versioned = false;
  // Inserts of rows known absent, all into one table, not yet sent: they go
  // many per statement, before anything else reads or writes the table.
  const schema::TableSpec* insert_spec = nullptr;
  Statement inserts;  // INSERT ... VALUES (...), (...) under construction
  size_t insert_rows = 0;
};

Applier::Applier(db::Connection& conn, const conflict::Policy& policy, std::string local_node)
    : conn_(conn),
      policy_(policy),
      local_node_(std::move(local_node)),
      clocks_(conn),
      tx_(std::make_unique<TxCache>()) {}

Applier::~Applier() = default;

void Applier::BeginTx(bool batched) {
  *tx_ = TxCache();
  tx_->batched = batched;
  auto rows = conn_.Query("SELECT value FROM zm_meta WHERE name = 'rows_versioned'");
  tx_->rows_versioned = !rows.empty() && rows[0][0].AsText() == "1";
}

bool Applier::KnownAbsent(const RowVer& rv) const {
  if (rv.maybe_present) return false;
  return rv.known ? rv.deleted : tx_->rows_versioned;
}

// ---------------------------------------------------------------- rowver --

Applier::RowVer Applier::RowVerFromColumns(const db::Row& r, size_t first) {
  RowVer rv;
  rv.version = {r[first].AsInt(), r[first + 1].AsText()};
  rv.known = rv.version.hlc > 0;
  rv.clock = r[first + 2].AsInt();
  rv.vv = VersionVector::FromJson(r[first + 3].AsText());
  rv.deleted = r[first + 4].AsInt() != 0;
  rv.zone = r[first + 5].AsOptText();
  rv.epoch = {r[first + 6].AsInt(), r[first + 7].AsText()};
  rv.group_epoch = {r[first + 8].AsInt(), r[first + 9].AsText()};
  rv.siblings = r[first + 10].IsNull() ? "" : r[first + 10].AsText();
  return rv;
}

void Applier::PrefetchRowVers(const std::vector<RowKey>& keys) {
  if (!tx_->batched) return;
  if (tx_->rowvers.size() + keys.size() > kMaxKeptRowVers) {
    FlushRowVers();
    tx_->rowvers.clear();
  }
  // The keys not held yet, by table, each once.
  std::map<std::string, std::vector<std::string>> wanted;
  std::set<RowKey> seen;
  for (const RowKey& k : keys) {
    if (tx_->rowvers.count(k) || !seen.insert(k).second) continue;
    wanted[k.first].push_back(k.second);
  }
  const db::Dialect dialect = conn_.dialect();
  schema::SqlDialect d(dialect);
  for (const auto& [table, table_keys] : wanted) {
    for (size_t at = 0; at < table_keys.size();) {
      const size_t n = std::min(kRowVerChunk, table_keys.size() - at);
      const size_t size = n == 1 ? 1 : n <= 8 ? 8 : 64;  // padded with the last key
      std::map<std::string, std::string> key_of;          // kid -> key
      std::vector<std::string> kids;
      for (size_t i = 0; i < size; ++i) {
        const std::string& key = table_keys[at + std::min(i, n - 1)];
        kids.push_back(schema::KeyId(dialect, key));
        key_of[kids.back()] = key;
      }
      if (dialect != db::Dialect::kSqlite) {
        // Claim the keys (see LockRowVer).
        db::Params params;
        for (size_t i = 0; i < size; ++i) {
          db::Params one = PlaceholderParams(table, kids[i], key_of[kids[i]]);
          params.insert(params.end(), one.begin(), one.end());
        }
        new_rowvers_ += conn_.Execute(d.InsertIgnore("zm_rowver", kRowVerColumns, {"tbl", "kid"},
                                                     static_cast<int>(size)),
                                      params);
      }
      std::string sql = std::string("SELECT kid, ") + kRowVerSelect +
                        " FROM zm_rowver WHERE tbl = ? AND kid IN (";
      db::Params params{table};
      for (size_t i = 0; i < size; ++i) {
        sql += i ? ", ?" : "?";
        params.push_back(kids[i]);
      }
      auto rows = conn_.Query(sql + ")" + d.ForUpdate(), params);
      for (size_t i = 0; i < n; ++i) tx_->rowvers[{table, table_keys[at + i]}] = RowVer{};
      for (const db::Row& r : rows) {
        auto it = key_of.find(r[0].AsText());
        if (it != key_of.end()) tx_->rowvers[{table, it->second}] = RowVerFromColumns(r, 1);
      }
      at += n;
    }
  }
}

void Applier::FlushRowVers() {
  if (tx_->pending.empty()) return;
  schema::SqlDialect d(conn_.dialect());
  static const std::vector<std::string> update_cols(kRowVerColumns.begin() + 2,
                                                    kRowVerColumns.end());
  auto it = tx_->pending.begin();
  size_t left = tx_->pending.size();
  while (left > 0) {
    const size_t size = ChunkSize(left);
    db::Params params;
    for (size_t i = 0; i < size; ++i, ++it) {
      const auto& [k, rv] = *it;
      db::Params one{k.first,
                     schema::KeyId(conn_.dialect(), k.second),
                     k.second,
                     rv.version.hlc,
                     rv.version.node,
                     rv.clock,
                     rv.vv.ToJson(),
                     int64_t{rv.deleted ? 1 : 0},
                     db::Value(rv.zone),
                     rv.epoch.hlc,
                     rv.epoch.node,
                     rv.group_epoch.hlc,
                     rv.group_epoch.node,
                     rv.siblings.empty() ? db::Value() : db::Value(rv.siblings)};
      params.insert(params.end(), one.begin(), one.end());
    }
    conn_.Execute(
        d.Upsert("zm_rowver", kRowVerColumns, {"tbl", "kid"}, update_cols, static_cast<int>(size)),
        params);
    left -= size;
  }
  tx_->pending.clear();
}

Applier::RowVer Applier::LockRowVer(const std::string& table, const std::string& key) {
  if (tx_->batched) {
    auto it = tx_->rowvers.find({table, key});
    if (it == tx_->rowvers.end()) {
      PrefetchRowVers({{table, key}});
      it = tx_->rowvers.find({table, key});
    }
    return it->second;
  }
  schema::SqlDialect d(conn_.dialect());
  const std::string kid = schema::KeyId(conn_.dialect(), key);
  if (conn_.dialect() != db::Dialect::kSqlite) {
    // Claim the key so that a local writer inserting the same key waits for
    // this transaction (and then builds on its version), or this fails at
    // once (bounded lock waits) and is tried again.
    conn_.Execute(d.InsertIgnore("zm_rowver", kRowVerColumns, {"tbl", "kid"}),
                  PlaceholderParams(table, kid, key));
  }
  auto rows = conn_.Query(std::string("SELECT ") + kRowVerSelect +
                              " FROM zm_rowver WHERE tbl = ? AND kid = ?" + d.ForUpdate(),
                          {table, kid});
  if (rows.empty()) return RowVer{};
  return RowVerFromColumns(rows[0], 0);
}

void Applier::WriteRowVer(const std::string& table, const std::string& key, const RowVer& rv) {
  if (tx_->batched) {
    RowVer kept = rv;
    kept.known = rv.version.hlc > 0;  // as read back from the table
    kept.maybe_present = false;
    tx_->rowvers[{table, key}] = kept;
    tx_->pending[{table, key}] = kept;
    if (tx_->pending.size() >= kMaxKeptRowVers) FlushRowVers();
    return;
  }
  schema::SqlDialect d(conn_.dialect());
  static const std::vector<std::string> update_cols(kRowVerColumns.begin() + 2,
                                                    kRowVerColumns.end());
  conn_.Execute(d.Upsert("zm_rowver", kRowVerColumns, {"tbl", "kid"}, update_cols),
                {table, schema::KeyId(conn_.dialect(), key), key, rv.version.hlc,
                 rv.version.node, rv.clock, rv.vv.ToJson(), int64_t{rv.deleted ? 1 : 0},
                 db::Value(rv.zone), rv.epoch.hlc, rv.epoch.node, rv.group_epoch.hlc,
                 rv.group_epoch.node, rv.siblings.empty() ? db::Value() : db::Value(rv.siblings)});
}

Applier::ZoneState Applier::LoadZone(const std::string& zone) {
  ZoneState z;
  z.name = zone;
  z.key = schema::ZoneKey(zone);
  z.rv = LockRowVer("domains", z.key);
  if (tx_->batched) {
    auto it = tx_->zone_ids.find(zone);
    if (it != tx_->zone_ids.end()) {
      z.id = it->second;
      return z;
    }
  }
  auto rows = conn_.Query("SELECT id FROM domains WHERE name = ?", {zone});
  if (!rows.empty()) z.id = rows[0][0].AsInt();
  if (tx_->batched) tx_->zone_ids[zone] = z.id;
  return z;
}

Applier::GroupState& Applier::LockGroup(const schema::TableSpec& spec, const std::string& group_key,
                                        const std::string& zone) {
  const RowKey k{spec.name, group_key};
  auto it = tx_->groups.find(k);
  if (it != tx_->groups.end()) return it->second;
  schema::SqlDialect d(conn_.dialect());
  const std::string kid = schema::KeyId(conn_.dialect(), group_key);
  if (conn_.dialect() != db::Dialect::kSqlite) {
    // Claim the group: a local writer emptying or refilling it waits for
    // this transaction, or this one fails at once and is tried again.
    conn_.Execute(d.InsertIgnore("zm_group",
                                 {"tbl", "kid", "rkey", "zone", "epoch_hlc", "epoch_node", "pending_id"},
                                 {"tbl", "kid"}),
                  {spec.name, kid, group_key, zone, int64_t{0}, "", db::Value()});
  }
  auto rows = conn_.Query(
      "SELECT epoch_hlc, epoch_node FROM zm_group WHERE tbl = ? AND kid = ?" + d.ForUpdate(),
      {spec.name, kid});
  GroupState g;
  if (!rows.empty()) g.epoch = {rows[0][0].AsInt(), rows[0][1].AsText()};
  return tx_->groups[k] = g;
}

// ------------------------------------------------------------ data rows --

void Applier::FlushInserts() {
  if (tx_->insert_rows == 0) return;
  conn_.Execute(tx_->inserts.sql, tx_->inserts.params);
  tx_->insert_spec = nullptr;
  tx_->inserts = Statement();
  tx_->insert_rows = 0;
}

std::optional<schema::RowImage> Applier::LoadRow(const schema::TableSpec& spec,
                                                 const schema::RowImage& row,
                                                 std::optional<int64_t> zone_id) {
  FlushInserts();
  if (spec.is_child() && !zone_id) return std::nullopt;
  Statement st = TableSql(conn_.dialect(), spec).Select(row, zone_id);
  auto rows = conn_.Query(st.sql, st.params);
  if (rows.empty()) return std::nullopt;
  schema::RowImage image;
  image.zone = row.zone;
  for (size_t i = 0; i < spec.columns.size(); ++i) {
    image.values.push_back(TableSql::Normalize(rows[0][i], spec.columns[i].type));
  }
  return image;
}

void Applier::WriteRow(const schema::TableSpec& spec, const schema::RowImage& row,
                       std::optional<int64_t> zone_id, bool known_absent) {
  TableSql sql(conn_.dialect(), spec);
  if (known_absent && tx_->batched && !spec.is_zone_table) {
    // At most kRowVerChunk rows a statement: at most that many statement
    // texts per table in the drivers' prepared-statement caches.
    if (tx_->insert_spec != &spec || tx_->insert_rows == kRowVerChunk) FlushInserts();
    Statement ins = sql.Insert(row, zone_id);
    if (tx_->insert_rows == 0) {
      tx_->insert_spec = &spec;
      tx_->inserts = std::move(ins);
    } else {
      tx_->inserts.sql += ", " + ins.sql.substr(ins.sql.rfind(" VALUES (") + 8);
      tx_->inserts.params.insert(tx_->inserts.params.end(), ins.params.begin(), ins.params.end());
    }
    ++tx_->insert_rows;
    NoteBlindInsert(spec, row);
    return;
  }
  FlushInserts();
  if (!known_absent) {
    Statement up = sql.Update(row, zone_id);
    if (conn_.Execute(up.sql, up.params) > 0) return;
  }
  Statement ins = sql.Insert(row, zone_id);
  conn_.Execute(ins.sql, ins.params);
  NoteBlindInsert(spec, row);
}

void Applier::NoteBlindInsert(const schema::TableSpec& spec, const schema::RowImage& row) {
  const int64_t now = NowMicros();
  if (now < all_suspect_until_) return;
  if (blind_inserts_.size() >= kMaxSuspects) {
    blind_inserts_.clear();
    all_suspect_until_ = now + kSuspectMicros;
    return;
  }
  blind_inserts_[{spec.name, schema::EncodeKey(spec, row)}] = now;
}

bool Applier::HasRaceSuspects() {
  const int64_t now = NowMicros();
  for (auto* m : {&blind_inserts_, &ended_groups_}) {
    for (auto it = m->begin(); it != m->end();) {
      it = now - it->second > kSuspectMicros ? m->erase(it) : std::next(it);
    }
  }
  return now < all_suspect_until_ || !blind_inserts_.empty() || !ended_groups_.empty();
}

void Applier::SuspectEverything() { all_suspect_until_ = NowMicros() + kSuspectMicros; }

bool Applier::IsRaceSuspect(const std::string& table, const std::string& key) {
  if (NowMicros() < all_suspect_until_ || blind_inserts_.count({table, key})) return true;
  const schema::TableSpec* spec = schema::FindTable(table);
  if (!spec || !spec->is_grouped() || ended_groups_.empty()) return false;
  try {
    return ended_groups_.count({table, schema::GroupKey(*spec, schema::RowImageFromKey(*spec, key))}) > 0;
  } catch (const std::invalid_argument&) {
    return false;
  }
}

void Applier::DeleteRow(const schema::TableSpec& spec, const schema::RowImage& row,
                        std::optional<int64_t> zone_id) {
  FlushInserts();
  Statement del = TableSql(conn_.dialect(), spec).Delete(row, zone_id);
  conn_.Execute(del.sql, del.params);
}

// ------------------------------------------------------------- conflicts --

void Applier::RecordConflict(Context& ctx, const Change& c, const RowVer* local,
                             const std::optional<schema::RowImage>& local_image,
                             const std::string& strategy, ConflictDecision decision,
                             const std::string& reason) {
  json remote{{"op", std::string(1, c.op)}, {"row", RowImageToJson(*c.spec, c.row)},
              {"vv", json::parse(c.vv.ToJson())}, {"epoch", c.epoch.ToString()}};
  db::Value local_json;
  if (local) {
    json l{{"exists", local_image.has_value()},
           {"row", local_image ? RowImageToJson(*c.spec, *local_image) : json(nullptr)},
           {"vv", json::parse(local->vv.ToJson())},
           {"epoch", local->epoch.ToString()}};
    local_json = JsonText(l);
  }
  const char* name = ConflictDecisionName(decision);
  conn_.Execute(
      "INSERT INTO zm_conflict (created_at, origin, tbl, rkey, local_hlc, local_node, "
      "local_image, remote_hlc, remote_node, remote_image, strategy, decision, reason) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      {NowMicros(), c.version.node, c.spec->name, c.key,
       local && local->known ? db::Value(local->version.hlc) : db::Value(),
       local && local->known ? db::Value(local->version.node) : db::Value(), local_json,
       c.version.hlc, c.version.node, JsonText(remote), strategy, name, reason});
  ctx.result->conflicts++;
  ctx.result->conflicts_by[{c.spec->name, name}]++;
  if (decision == ConflictDecision::kParked) tx_->parked_conflicts = true;
  spdlog::debug("conflict on {} [{}] from {}: {} ({})", c.spec->name, c.key, c.version.node, name,
                reason);
}

void Applier::RefreshStatistics() {
  // PostgreSQL plans the key lookups on zm_rowver from its statistics; a
  // node catching up on a large backlog grows the table far past them long
  // before autovacuum looks (a table analyzed empty gets scanned whole).
  // Analyzed whenever it may have doubled: a handful of times in all.
  if (conn_.dialect() != db::Dialect::kPostgres ||
      new_rowvers_ < std::max<int64_t>(1000, analyzed_rowvers_)) {
    return;
  }
  new_rowvers_ = 0;
  try {
    conn_.ExecuteDdl("ANALYZE zm_rowver");
    auto rows = conn_.Query("SELECT reltuples FROM pg_class WHERE relname = 'zm_rowver'");
    if (!rows.empty()) analyzed_rowvers_ = static_cast<int64_t>(std::stod(rows[0][0].AsText()));
  } catch (const db::Error& e) {
    if (e.connection_lost()) throw;
    spdlog::debug("ANALYZE zm_rowver: {}", e.what());
  }
}

// ------------------------------------------------------------- decisions --

bool Applier::MayHaveParkedConflicts() {
  if (!tx_->parked_conflicts) {
    tx_->parked_conflicts =
        !conn_.Query("SELECT id FROM zm_conflict WHERE decision = 'parked' AND resolved_at IS NULL "
                     "LIMIT 1")
             .empty();
  }
  return *tx_->parked_conflicts;
}

void Applier::Decide(Context& ctx, const Change& c, const RowVer& local,
                     std::optional<int64_t> zone_id) {
  const schema::TableSpec& spec = *c.spec;
  conflict::State incoming{c.version, c.vv, c.op == 'U', c.row};

  // The row's current states: its concurrent siblings, or its one state.
  std::vector<conflict::State> states;
  const bool had_siblings = local.known && !local.siblings.empty();
  if (had_siblings) {
    states = StatesFromJson(spec, local.siblings);
  } else if (local.known) {
    states.push_back(conflict::State{local.version, local.vv, !local.deleted, std::nullopt});
  }
  if (!conflict::AddState(&states, incoming)) return;  // seen it already

  RowVer next = local;
  next.known = true;
  next.clock = std::max({local.clock, c.version.hlc, c.vv.MaxHlc()});
  if (spec.is_child()) {
    next.zone = c.row.zone;
    next.epoch = c.epoch;
  }
  if (spec.is_zone_table) next.zone = c.row.values[spec.ColumnIndex("name")].AsText();
  next.group_epoch = c.group_epoch;

  if (states.size() == 1) {
    // The change has seen every state the row had: it simply applies.
    if (local.known && MayHaveParkedConflicts()) {
      // A conflict parked on this row earlier is settled by it (it was
      // resolved on some node).
      conn_.Execute(
          "UPDATE zm_conflict SET resolved_at = ?, resolution = ? WHERE tbl = ? AND rkey = ? AND "
          "decision = 'parked' AND resolved_at IS NULL",
          {NowMicros(), "superseded by " + c.version.ToString(), spec.name, c.key});
    }
    if (c.op == 'U') {
      WriteRow(spec, c.row, zone_id, KnownAbsent(local));
      // The row came with its origin's serial: the clock's goes in.
      if (schema::IsSoaRow(spec, c.row) && c.row.zone) ctx.clock_zones.insert(*c.row.zone);
    } else {
      DeleteRow(spec, c.row, zone_id);
    }
    next.version = c.version;
    next.vv = c.vv;
    next.deleted = c.op == 'D';
    next.siblings.clear();
    if (next.zone) ctx.result->zones.insert(*next.zone);
    WriteRowVer(spec.name, c.key, next);
    return;
  }

  // Concurrent states: the strategy decides among all of them. The row as
  // it is shows the state decided last time (or a merge of them).
  const std::optional<schema::RowImage> shown_image =
      local.known && !local.deleted ? LoadRow(spec, c.row, zone_id) : std::nullopt;
  if (!had_siblings && local.known) states.front().image = shown_image;
  // Strategies see an SOA without its serial: that is the zone clock's,
  // the same on every node for a given set of writes, not the row's (the
  // serial a node shows moves with changes the row never saw).
  std::vector<conflict::State> seen_by_strategy = states;
  for (conflict::State& s : seen_by_strategy) s.image = Comparable(spec, s.image);
  const conflict::Strategy& strategy = policy_.For(spec.name);
  conflict::Outcome o = conflict::Decide(strategy, spec, c.key, seen_by_strategy);
  if (!o.merged) {
    for (const conflict::State& s : states) {
      if (s.version == o.shown.version) o.shown = s;
    }
  }

  // Whether the states differ at all (an SOA's serial aside): if not, the
  // choice changes nothing and is no conflict worth a record.
  bool differ = false;
  for (const conflict::State& s : states) {
    if (s.exists != states.front().exists ||
        Comparable(spec, s.image) != Comparable(spec, states.front().image)) {
      differ = true;
    }
  }

  ConflictDecision decision;
  if (o.resolution == conflict::Resolution::kPark) {
    decision = ConflictDecision::kParked;  // the local row stays until an operator decides
  } else if (o.merged) {
    decision = ConflictDecision::kMerge;
  } else if (local.known && o.shown.version == local.version) {
    decision = ConflictDecision::kKeepLocal;
  } else {
    decision = ConflictDecision::kTakeRemote;
  }
  if (decision != ConflictDecision::kParked) {
    // Write the decided state where the row shows something else.
    if (o.shown.exists && o.shown.image &&
        Comparable(spec, o.shown.image) != Comparable(spec, shown_image)) {
      WriteRow(spec, *o.shown.image, zone_id, !shown_image && KnownAbsent(local));
      if (next.zone) ctx.result->zones.insert(*next.zone);
      if (schema::IsSoaRow(spec, *o.shown.image) && next.zone) ctx.clock_zones.insert(*next.zone);
    } else if (!o.shown.exists && shown_image) {
      DeleteRow(spec, o.shown.image ? *o.shown.image : c.row, zone_id);
      if (next.zone) ctx.result->zones.insert(*next.zone);
    }
    next.version = o.shown.version;
    next.deleted = !o.shown.exists;
  }
  next.vv = conflict::JoinedVector(states);
  next.siblings = JsonText(StatesToJson(spec, states));
  if (differ) {
    RecordConflict(ctx, c, &local, shown_image, strategy.Name(), decision,
                   o.reason.empty() ? "concurrent states" : o.reason);
  }
  WriteRowVer(spec.name, c.key, next);
}

void Applier::KillIncarnation(Context& ctx, ZoneState& zone, const Version& epoch,
                              const Version& version, const VersionVector& vv) {
  FlushInserts();
  if (zone.id) {
    for (const schema::TableSpec& spec : schema::PowerDnsTables()) {
      if (!spec.is_child()) continue;
      conn_.Execute("DELETE FROM " + spec.name + " WHERE " + spec.parent_column + " = ?",
                    {*zone.id});
    }
    conn_.Execute("DELETE FROM domains WHERE id = ?", {*zone.id});
    deleted_zones_[*zone.id] = NowMicros();
    ctx.result->zones.insert(zone.name);
    zone.id.reset();
  }
  tx_->zone_ids[zone.name] = std::nullopt;
  // Versions, groups and the serial clock of the old incarnation can never
  // matter again.
  FlushRowVers();
  conn_.Execute("DELETE FROM zm_rowver WHERE zone = ? AND tbl <> 'domains'", {zone.name});
  for (auto it = tx_->rowvers.begin(); it != tx_->rowvers.end();) {
    it = it->first.first != "domains" && it->second.zone == zone.name ? tx_->rowvers.erase(it)
                                                                      : std::next(it);
  }
  conn_.Execute("DELETE FROM zm_group WHERE zone = ?", {zone.name});
  for (auto it = tx_->groups.begin(); it != tx_->groups.end();) {
    it = schema::FirstKeyComponent(it->first.second) == zone.name ? tx_->groups.erase(it)
                                                                  : std::next(it);
  }
  clocks_.Forget(zone.name);
  zone.rv.known = true;
  zone.rv.version = version;
  zone.rv.clock = std::max({zone.rv.clock, version.hlc, vv.MaxHlc()});
  zone.rv.vv = vv;
  zone.rv.deleted = true;
  zone.rv.zone = zone.name;
  zone.rv.epoch = epoch;
  zone.rv.siblings.clear();
  WriteRowVer("domains", zone.key, zone.rv);
  DropParkedBefore(ctx, zone.name, epoch);
  ctx.zones_touched.insert(zone.name);
}

int64_t Applier::DropParkedBefore(Context& ctx, const std::string& zone, const Version& epoch) {
  int64_t dropped = 0;
  auto parked = conn_.Query("SELECT id, body FROM zm_parked WHERE zone = ? ORDER BY id", {zone});
  for (const db::Row& row : parked) {
    Change p = ParkedChange(row[1].AsText());
    if (!(p.epoch < epoch)) continue;
    conn_.Execute("DELETE FROM zm_parked WHERE id = ?", {row[0]});
    ++dropped;
    if (p.op == 'U') {
      RecordConflict(ctx, p, nullptr, std::nullopt, "zone-incarnation", ConflictDecision::kDropped,
                     "zone " + zone + " was deleted (incarnation " + epoch.ToString() +
                         ") while this change waited for it");
    }
  }
  return dropped;
}

void Applier::KillGroup(Context& ctx, const Change& c, GroupState& group, int64_t zone_id) {
  const schema::TableSpec& spec = *c.spec;
  FlushInserts();
  TableSql sql(conn_.dialect(), spec);
  // Rows still here belong to the incarnation the replace ended: writes
  // the replacing node had not seen (what it had seen, it deleted before
  // refilling the group, earlier in this stream).
  Statement sel = sql.SelectGroup(c.row, zone_id);
  auto rows = conn_.Query(sel.sql, sel.params);
  if (!rows.empty()) {
    Statement del = sql.DeleteGroup(c.row, zone_id);
    conn_.Execute(del.sql, del.params);
    for (const db::Row& r : rows) {
      RecordDroppedSetRow(ctx, spec, sql.ImageOf(r, c.row.zone), group.epoch,
                          spec.name + " set " + schema::GroupKey(spec, c.row) + " replaced on " +
                              c.version.node + " (incarnation " + c.group_epoch.ToString() +
                              ") concurrently with this row");
    }
    ctx.result->zones.insert(*c.row.zone);
  }
  group.epoch = c.group_epoch;
  schema::SqlDialect d(conn_.dialect());
  const std::string gkey = schema::GroupKey(spec, c.row);
  ended_groups_[{spec.name, gkey}] = NowMicros();
  conn_.Execute(d.Upsert("zm_group", {"tbl", "kid", "rkey", "zone", "epoch_hlc", "epoch_node"},
                         {"tbl", "kid"}, {"epoch_hlc", "epoch_node"}),
                {spec.name, schema::KeyId(conn_.dialect(), gkey), gkey, *c.row.zone,
                 group.epoch.hlc, group.epoch.node});
}

void Applier::RecordDroppedSetRow(Context& ctx, const schema::TableSpec& spec,
                                  const schema::RowImage& row, const Version& row_group_epoch,
                                  const std::string& reason) {
  Change gone;
  gone.spec = &spec;
  gone.op = 'U';
  gone.row = row;
  gone.key = schema::EncodeKey(spec, row);
  RowVer rv = LockRowVer(spec.name, gone.key);
  gone.version = rv.version;
  gone.vv = rv.vv;
  gone.epoch = rv.epoch;
  gone.group_epoch = row_group_epoch;
  RecordConflict(ctx, gone, nullptr, std::nullopt, "rrset-replace", ConflictDecision::kDropped,
                 reason);
}

void Applier::Park(Context& ctx, const Change& c) {
  conn_.Execute(
      "INSERT INTO zm_parked (origin, zone, tbl, rkey, body, parked_at) VALUES (?, ?, ?, ?, ?, ?)",
      {c.version.node, *c.row.zone, c.spec->name, c.key, JsonText(ChangeToJson(c)), NowMicros()});
  ctx.result->parked++;
  spdlog::debug("parked {} [{}]: zone {} incarnation {} not here yet", c.spec->name, c.key,
                *c.row.zone, c.epoch.ToString());
}

void Applier::ApplyZoneChange(Context& ctx, const Change& c) {
  const db::Value& name_value = c.row.values[c.spec->ColumnIndex("name")];
  if (name_value.IsNull()) throw WireError("zone change without a name");
  ZoneState zone = LoadZone(name_value.AsText());
  const Version local_epoch = zone.rv.epoch;

  if (c.op == 'D') {
    // A zone delete ends the incarnation: every row of it goes, concurrent
    // edits included. Deletes only ever raise the epoch, so every node ends
    // at the same incarnation whatever order deletes arrive in.
    if (c.version <= local_epoch) return;
    if (zone.rv.known && !zone.rv.deleted &&
        zone.rv.vv.Compare(c.vv) != VersionVector::Order::kBefore) {
      RecordConflict(ctx, c, &zone.rv, LoadRow(*c.spec, c.row, std::nullopt), "zone-incarnation",
                     ConflictDecision::kTakeRemote,
                     "zone deleted on " + c.version.node +
                         "; local changes of the deleted incarnation are discarded");
    }
    KillIncarnation(ctx, zone, c.version, c.version, c.vv);
    return;
  }

  if (c.epoch < local_epoch) {
    RecordConflict(ctx, c, &zone.rv, std::nullopt, "zone-incarnation", ConflictDecision::kKeepLocal,
                   "belongs to incarnation " + c.epoch.ToString() + " of zone " + zone.name +
                       ", deleted at " + local_epoch.ToString());
    return;
  }
  if (local_epoch < c.epoch) {
    // The change was written after a delete this node has not seen yet:
    // that delete happened, apply it now.
    KillIncarnation(ctx, zone, c.epoch, c.epoch, VersionVector());
  }
  Decide(ctx, c, zone.rv, std::nullopt);
  tx_->zone_ids.erase(zone.name);  // the domains row may have come or gone
  ctx.zones_touched.insert(zone.name);
}

void Applier::ApplyChildChange(Context& ctx, const Change& c) {
  ZoneState zone = LoadZone(*c.row.zone);
  const Version zone_epoch = zone.rv.epoch;
  if (c.epoch < zone_epoch) {
    if (c.op == 'U') {
      RecordConflict(ctx, c, nullptr, std::nullopt, "zone-incarnation", ConflictDecision::kDropped,
                     "zone " + zone.name + " was deleted (incarnation " + zone_epoch.ToString() +
                         ") after this change was written in incarnation " + c.epoch.ToString());
    }
    return;
  }
  if (zone_epoch < c.epoch) {
    KillIncarnation(ctx, zone, c.epoch, c.epoch, VersionVector());
    Park(ctx, c);
    return;
  }
  if (!zone.id) {
    Park(ctx, c);
    return;
  }
  if (c.serial) {
    // The origin's serial clock moved with this SOA write, whatever the
    // row's own fate below.
    clocks_.MergeExplicit(zone.name, zone_epoch, c.version.node, *c.serial);
    ctx.clock_zones.insert(zone.name);
  }
  if (c.spec->is_grouped()) {
    GroupState& group = LockGroup(*c.spec, schema::GroupKey(*c.spec, c.row), zone.name);
    if (c.group_epoch < group.epoch) {
      // The set was replaced after (or concurrently with) this change.
      if (c.op == 'U') {
        RecordConflict(ctx, c, nullptr, std::nullopt, "rrset-replace", ConflictDecision::kDropped,
                       c.spec->name + " set " + schema::GroupKey(*c.spec, c.row) +
                           " was replaced (incarnation " + group.epoch.ToString() +
                           ") after this change was written in incarnation " +
                           c.group_epoch.ToString());
      }
      return;
    }
    if (group.epoch < c.group_epoch) KillGroup(ctx, c, group, *zone.id);
  }
  RowVer local = LockRowVer(c.spec->name, c.key);
  if (local.known && (local.epoch != c.epoch || local.group_epoch != c.group_epoch)) {
    // A leftover of a dead zone or group incarnation.
    local = RowVer{};
    local.maybe_present = true;
  }
  Decide(ctx, c, local, zone.id);
}

void Applier::ApplyPlainChange(Context& ctx, const Change& c) {
  RowVer local = LockRowVer(c.spec->name, c.key);
  Decide(ctx, c, local, std::nullopt);
}

void Applier::ApplyChange(Context& ctx, const Change& c) {
  if (c.spec->is_zone_table) {
    ApplyZoneChange(ctx, c);
  } else if (c.spec->is_child()) {
    ApplyChildChange(ctx, c);
  } else {
    ApplyPlainChange(ctx, c);
  }
}

void Applier::RetryParkedFor(Context& ctx, const std::string& zone) {
  auto max_rows = conn_.Query("SELECT MAX(id) FROM zm_parked WHERE zone = ?", {zone});
  if (max_rows.empty() || max_rows[0][0].IsNull()) return;
  const int64_t max_id = max_rows[0][0].AsInt();
  int64_t after = 0;
  for (;;) {
    auto rows = conn_.Query(
        "SELECT id, body FROM zm_parked WHERE zone = ? AND id > ? AND id <= ? ORDER BY id LIMIT " +
            std::to_string(kPageSize),
        {zone, after, max_id});
    if (rows.empty()) break;
    for (const db::Row& row : rows) {
      after = row[0].AsInt();
      conn_.Execute("DELETE FROM zm_parked WHERE id = ?", {row[0]});
      ApplyChildChange(ctx, ParkedChange(row[1].AsText()));
    }
  }
}

void Applier::CountRound(Context& ctx, const std::string& origin, const std::vector<Change>& round) {
  schema::RoundSerials serials;
  for (const Change& c : round) {
    std::string zone;
    if (c.spec->is_child() && c.row.zone) zone = *c.row.zone;
    serials.Add({zone, c.epoch, c.session, schema::RoleOf(*c.spec, c.op, c.row)});
  }
  for (const auto& [zone, epoch] : serials.ZonesChangedWithoutSoaWrite()) {
    // Counted for the incarnation the round wrote in, even when the zone is
    // not here yet (its changes wait in zm_parked); a clock of a later
    // incarnation ignores it.
    clocks_.AddImplicit(zone, epoch, origin);
    ctx.clock_zones.insert(zone);
  }
}

// -------------------------------------------------------------- batches --

Position Applier::Acknowledged(const std::string& origin) {
  auto rows = conn_.Query(
      "SELECT csn, id, staged_csn, staged_id FROM zm_applied WHERE origin = ?", {origin});
  if (rows.empty()) return {};
  Position applied{rows[0][0].AsInt(), rows[0][1].AsInt()};
  Position staged{rows[0][2].AsInt(), rows[0][3].AsInt()};
  return std::max(applied, staged);
}

void Applier::ApplyRowStates(Context& ctx, const Change& c) {
  if (c.siblings.empty()) {
    ApplyChange(ctx, c);
    return;
  }
  // The serving node's concurrent states of the row, one by one (the row as
  // served claims their joined vector, so that after it they would look
  // seen): later changes are decided among the same states here as there,
  // and the strategy shows what it showed.
  for (const Change& s : c.siblings) ApplyChange(ctx, s);
}

bool Applier::RowInSavepoint(Context& ctx, const Change& c, const char* source,
                             const std::function<void()>& fn) {
  conn_.ExecuteDdl("SAVEPOINT zm_change");
  try {
    fn();
    conn_.ExecuteDdl("RELEASE SAVEPOINT zm_change");
    return true;
  } catch (const db::Error& e) {
    if (e.transient() || e.connection_lost()) throw;
    conn_.ExecuteDdl("ROLLBACK TO SAVEPOINT zm_change");
    conn_.ExecuteDdl("RELEASE SAVEPOINT zm_change");
    spdlog::error("{} row {} [{}] refused by the database: {}", source, c.spec->name, c.key, e.what());
    RecordConflict(ctx, c, nullptr, std::nullopt, source, ConflictDecision::kFailed, e.what());
    ctx.result->failed++;
  } catch (const std::invalid_argument& e) {
    conn_.ExecuteDdl("ROLLBACK TO SAVEPOINT zm_change");
    conn_.ExecuteDdl("RELEASE SAVEPOINT zm_change");
    spdlog::warn("{} row {} [{}] skipped: {}", source, c.spec->name, c.key, e.what());
  }
  return false;
}

ApplyResult Applier::ApplySnapshotRows(const std::vector<Change>& rows,
                                       const std::vector<ZoneClock>& clocks) {
  ApplyResult result;
  Context ctx;
  ctx.result = &result;
  db::Transaction tx(conn_);
  BeginTx(false);  // savepoint per row
  for (const Change& c : rows) {
    if (RowInSavepoint(ctx, c, "join", [&] { ApplyRowStates(ctx, c); })) result.applied++;
  }
  for (const ZoneClock& clock : clocks) {
    clocks_.Merge(clock);
    ctx.clock_zones.insert(clock.zone);
  }
  for (const std::string& zone : ctx.zones_touched) RetryParkedFor(ctx, zone);
  // A snapshot's SOA rows carry the peer's serial; its clocks come in the
  // last pages. Until then a zone this node already serves keeps its own
  // clock's serial (a join onto a node with data must not show an older
  // one); a zone new here has no clock and serves the row as it came.
  std::set<std::string> publish = ctx.clock_zones;
  publish.insert(result.zones.begin(), result.zones.end());
  for (const std::string& zone : publish) {
    if (clocks_.Publish(zone)) result.zones.insert(zone);
  }
  tx.Commit();
  return result;
}

ApplyResult Applier::Repair(const std::vector<Change>& merge, const std::vector<Change>& force,
                            const std::optional<ZoneClock>& clock) {
  ApplyResult result;
  Context ctx;
  ctx.result = &result;
  db::Transaction tx(conn_);
  BeginTx(false);  // savepoint per row
  // Writes the peer's image of a row as it is (its version record kept).
  auto write_as_is = [&](const Change& c) {
    std::optional<int64_t> zone_id;
    if (c.spec->is_child()) {
      if (!c.row.zone) throw std::invalid_argument("a row without its zone");
      zone_id = LoadZone(*c.row.zone).id;
      if (!zone_id) return;  // its zone is not here: the merge of the zone's own row decides
    }
    if (c.op == 'U') {
      WriteRow(*c.spec, c.row, zone_id, false);
    } else {
      DeleteRow(*c.spec, c.row, zone_id);
    }
    result.zones.insert(c.spec->is_zone_table ? c.row.values[c.spec->ColumnIndex("name")].AsText()
                                              : c.row.zone.value_or(""));
  };
  for (const Change& c : merge) {
    spdlog::debug("anti-entropy: merging {} [{}] {} {} (incarnation {})", c.spec->name, c.key,
                  c.op == 'U' ? "upsert" : "delete", c.version.ToString(), c.epoch.ToString());
    if (RowInSavepoint(ctx, c, "anti-entropy", [&] { ApplyRowStates(ctx, c); })) result.applied++;
  }
  for (const Change& c : force) {
    spdlog::debug("anti-entropy: writing {} [{}] as the peer holds it ({} {})", c.spec->name, c.key,
                  c.op == 'U' ? "upsert" : "delete", c.version.ToString());
    if (RowInSavepoint(ctx, c, "anti-entropy", [&] { write_as_is(c); })) result.applied++;
  }
  for (const std::string& zone : ctx.zones_touched) RetryParkedFor(ctx, zone);
  if (clock) {
    // The peer's clock, for the incarnation the zone has here now only:
    // rows taken from the peer show its serials, which the clock must
    // cover; a clock of another incarnation would reset this one.
    ZoneState z = LoadZone(clock->zone);
    if (z.id && z.rv.known && !z.rv.deleted && z.rv.epoch == clock->epoch) {
      clocks_.Merge(*clock);
      ctx.clock_zones.insert(clock->zone);
    }
  }
  // Every change that reaches a node raises its serial: the repair counts
  // as a round of this node (other nodes take the clock over when they
  // compare the zone with this one).
  result.zones.erase("");  // the tables without zones have no serial
  for (const std::string& zone : result.zones) {
    ZoneState z = LoadZone(zone);
    if (!z.id || !z.rv.known || z.rv.deleted) continue;
    clocks_.AddImplicit(zone, z.rv.epoch, local_node_);
    ctx.clock_zones.insert(zone);
  }
  for (const std::string& zone : ctx.clock_zones) {
    if (clocks_.Publish(zone)) result.zones.insert(zone);
  }
  tx.Commit();
  return result;
}

void Applier::RecordPositions(const std::map<std::string, Position>& positions) {
  schema::SqlDialect d(conn_.dialect());
  db::Transaction tx(conn_);
  for (const auto& [origin, pos] : positions) {
    if (origin == local_node_) continue;
    auto st = ClaimRow(conn_, AppliedPlaceholder(conn_.dialect(), origin),
                       {"SELECT csn, id FROM zm_applied WHERE origin = ?" + d.ForUpdate(), {origin}});
    Position held{st[0][0].AsInt(), st[0][1].AsInt()};
    if (pos <= held) continue;
    conn_.Execute(
        "UPDATE zm_applied SET csn = ?, id = ?, staged_csn = ?, staged_id = ?, updated_at = ? WHERE origin = ?",
        {pos.csn, pos.id, pos.csn, pos.id, NowMicros(), origin});
    conn_.Execute("DELETE FROM zm_stage WHERE origin = ?", {origin});
  }
  tx.Commit();
}

void Applier::DiscardLocalData() {
  db::Transaction tx(conn_);
  BeginTx(false);
  for (auto it = schema::PowerDnsTables().rbegin(); it != schema::PowerDnsTables().rend(); ++it) {
    conn_.Execute("DELETE FROM " + it->name);
  }
  for (const char* t : {"zm_rowver", "zm_group", "zm_serial", "zm_zone", "zm_outbox", "zm_applied",
                        "zm_stage", "zm_parked", "zm_peer"}) {
    conn_.Execute(std::string("DELETE FROM ") + t);
  }
  // Nothing is left without a version record.
  schema::SqlDialect d(conn_.dialect());
  conn_.Execute(d.Upsert("zm_meta", {"name", "value"}, {"name"}, {"value"}), {"rows_versioned", "1"});
  tx.Commit();
}

ApplyResult Applier::Apply(const Batch& batch) {
  // Its own rounds are counted into the serial clocks when stamped.
  if (batch.origin == local_node_) throw WireError("node " + local_node_ + " never applies its own changes");
  try {
    return ApplyOnce(batch, false);
  } catch (const db::Error& e) {
    if (e.transient()) throw;
    spdlog::warn("batch from {} failed as a whole ({}); applying change by change", batch.origin,
                 e.what());
  } catch (const std::exception& e) {
    spdlog::warn("batch from {} failed as a whole ({}); applying change by change", batch.origin,
                 e.what());
  }
  return ApplyOnce(batch, true);
}

ApplyResult Applier::ApplyOnce(const Batch& batch, bool isolate_changes) {
  ApplyResult result;
  schema::SqlDialect d(conn_.dialect());
  db::Transaction tx(conn_);
  BeginTx(!isolate_changes);

  // (On SQLite the write lock is taken at the batch's first real write,
  // not held through its reads: PowerDNS's transactions fail at once when
  // they meet it.)
  auto st = ClaimRow(conn_, AppliedPlaceholder(conn_.dialect(), batch.origin),
                     {"SELECT csn, id, staged_csn, staged_id FROM zm_applied WHERE origin = ?" +
                          d.ForUpdate(),
                      {batch.origin}});
  Position applied{st[0][0].AsInt(), st[0][1].AsInt()};
  Position staged{st[0][2].AsInt(), st[0][3].AsInt()};
  if (staged < applied) staged = applied;
  result.ack = staged;

  if (batch.after > result.ack) {
    result.status = ApplyResult::Status::kGap;
    return result;  // nothing written; the transaction rolls back
  }
  const auto& changes = batch.changes;
  size_t i = 0;
  while (i < changes.size() && changes[i].pos <= result.ack) {
    ++i;
    ++result.duplicates;
  }
  if (i == changes.size()) return result;

  auto save = [&](const Position& a, const Position& s) {
    conn_.Execute(
        "UPDATE zm_applied SET csn = ?, id = ?, staged_csn = ?, staged_id = ?, updated_at = ? "
        "WHERE origin = ?",
        {a.csn, a.id, s.csn, s.id, NowMicros(), batch.origin});
  };

  if (staged > applied && changes[i].pos.csn != staged.csn) {
    // The sender moved on from a round it had not finished: drop what was
    // staged and have it send again from the last complete round.
    spdlog::warn("{} continued after staged round {} with round {}; rewinding it to {}",
                 batch.origin, staged.csn, changes[i].pos.csn, applied.ToString());
    conn_.Execute("DELETE FROM zm_stage WHERE origin = ?", {batch.origin});
    save(applied, applied);
    tx.Commit();
    result.status = ApplyResult::Status::kGap;
    result.ack = applied;
    return result;
  }

  Context ctx;
  ctx.result = &result;

  auto apply_one = [&](const Change& c) {
    if (!isolate_changes) {
      ApplyChange(ctx, c);
      return;
    }
    conn_.ExecuteDdl("SAVEPOINT zm_change");
    try {
      ApplyChange(ctx, c);
      conn_.ExecuteDdl("RELEASE SAVEPOINT zm_change");
    } catch (const db::Error& e) {
      if (e.transient()) throw;
      conn_.ExecuteDdl("ROLLBACK TO SAVEPOINT zm_change");
      conn_.ExecuteDdl("RELEASE SAVEPOINT zm_change");
      spdlog::error("change {} [{}] from {} refused by the database: {}", c.spec->name, c.key,
                    batch.origin, e.what());
      RecordConflict(ctx, c, nullptr, std::nullopt, "apply", ConflictDecision::kFailed, e.what());
      result.failed++;
    } catch (const std::exception& e) {
      conn_.ExecuteDdl("ROLLBACK TO SAVEPOINT zm_change");
      conn_.ExecuteDdl("RELEASE SAVEPOINT zm_change");
      spdlog::error("change {} [{}] from {} could not be applied: {}", c.spec->name, c.key,
                    batch.origin, e.what());
      RecordConflict(ctx, c, nullptr, std::nullopt, "apply", ConflictDecision::kFailed, e.what());
      result.failed++;
    }
  };

  // Locks and reads the row versions of changes [from, to) in a few
  // statements, ahead of applying them one by one.
  auto prefetch = [&](const std::vector<Change>& list, size_t from, size_t to) {
    if (!tx_->batched) return;
    std::vector<RowKey> keys;
    for (size_t k = from; k < to; ++k) {
      const Change& c = list[k];
      if (c.spec->is_zone_table) {
        const db::Value& name = c.row.values[c.spec->ColumnIndex("name")];
        if (!name.IsNull()) keys.emplace_back("domains", schema::ZoneKey(name.AsText()));
        continue;
      }
      if (c.spec->is_child()) keys.emplace_back("domains", schema::ZoneKey(*c.row.zone));
      keys.emplace_back(c.spec->name, c.key);
    }
    PrefetchRowVers(keys);
  };

  while (i < changes.size()) {
    const int64_t csn = changes[i].pos.csn;
    size_t j = i;
    while (j < changes.size() && changes[j].pos.csn == csn) ++j;
    const bool complete = j < changes.size() || batch.round_complete;
    if (!complete) {
      // Part of a round larger than one batch: keep it until the round ends.
      for (size_t k = i; k < j;) {
        const size_t size = ChunkSize(j - k);
        std::string sql = "INSERT INTO zm_stage (origin, csn, id, body) VALUES ";
        db::Params params;
        for (size_t n = 0; n < size; ++n, ++k) {
          sql += n ? ", (?, ?, ?, ?)" : "(?, ?, ?, ?)";
          params.insert(params.end(), {batch.origin, changes[k].pos.csn, changes[k].pos.id,
                                       JsonText(ChangeToJson(changes[k]))});
        }
        conn_.Execute(sql, params);
      }
      staged = changes[j - 1].pos;
      result.staged += static_cast<int64_t>(j - i);
    } else {
      // The round, staged parts first, in stream order: for its zones'
      // serial clocks once it is applied.
      std::vector<Change> round;
      if (staged > applied && staged.csn == csn) {
        int64_t after = 0;
        for (;;) {
          auto rows = conn_.Query(
              "SELECT id, body FROM zm_stage WHERE origin = ? AND csn = ? AND id > ? ORDER BY id "
              "LIMIT " + std::to_string(kPageSize),
              {batch.origin, csn, after});
          if (rows.empty()) break;
          std::vector<Change> page;
          for (const db::Row& row : rows) {
            after = row[0].AsInt();
            page.push_back(ChangeFromJson(json::parse(row[1].AsText())));
          }
          prefetch(page, 0, page.size());
          for (const Change& c : page) {
            apply_one(c);
            result.applied++;
          }
          round.insert(round.end(), page.begin(), page.end());
        }
        conn_.Execute("DELETE FROM zm_stage WHERE origin = ?", {batch.origin});
      }
      for (size_t k = i; k < j; k += kRowVerChunk) {
        const size_t to = std::min(j, k + kRowVerChunk);
        prefetch(changes, k, to);
        for (size_t m = k; m < to; ++m) {
          apply_one(changes[m]);
          result.applied++;
        }
      }
      round.insert(round.end(), changes.begin() + static_cast<std::ptrdiff_t>(i),
                   changes.begin() + static_cast<std::ptrdiff_t>(j));
      CountRound(ctx, batch.origin, round);
      applied = changes[j - 1].pos;
      staged = applied;
    }
    i = j;
  }

  for (const std::string& zone : ctx.zones_touched) RetryParkedFor(ctx, zone);
  FlushInserts();
  FlushRowVers();
  for (const std::string& zone : ctx.clock_zones) {
    if (clocks_.Publish(zone)) result.zones.insert(zone);
  }
  save(applied, staged);
  tx.Commit();
  result.ack = std::max(applied, staged);
  RefreshStatistics();
  return result;
}

void Applier::WatchDeletedZone(int64_t zone_id) { deleted_zones_[zone_id] = NowMicros(); }

int64_t Applier::RemoveOrphansOfDeletedZones() {
  constexpr int64_t kWatch = 300LL * 1000000;  // how long a deleted zone is watched
  const int64_t now = NowMicros();
  int64_t removed = 0;
  for (auto it = deleted_zones_.begin(); it != deleted_zones_.end();) {
    const int64_t id = it->first;
    // The id may belong to a zone created since (SQLite reuses the highest).
    if (conn_.Query("SELECT id FROM domains WHERE id = ?", {id}).empty()) {
      for (const schema::TableSpec& spec : schema::PowerDnsTables()) {
        if (!spec.is_child()) continue;
        // Non-locking read by index, then deletes by primary key: no scan
        // waits for a writer's uncommitted rows.
        auto rows = conn_.Query("SELECT " + spec.id_column + " FROM " + spec.name + " WHERE " +
                                    spec.parent_column + " = ? LIMIT 1000",
                                {id});
        for (const db::Row& r : rows) {
          removed += conn_.Execute("DELETE FROM " + spec.name + " WHERE " + spec.id_column +
                                       " = ? AND " + spec.parent_column + " = ?",
                                   {r[0], id});
        }
      }
    }
    it = now - it->second > kWatch ? deleted_zones_.erase(it) : std::next(it);
  }
  if (removed > 0) {
    spdlog::info("removed {} row(s) written into zones after this node deleted them", removed);
  }
  return removed;
}

int64_t Applier::RemoveAllOrphans() {
  int64_t removed = 0;
  for (const schema::TableSpec& spec : schema::PowerDnsTables()) {
    if (!spec.is_child()) continue;
    for (;;) {
      auto rows = conn_.Query("SELECT t." + spec.id_column + ", t." + spec.parent_column + " FROM " +
                              spec.name + " t LEFT JOIN domains d ON d.id = t." +
                              spec.parent_column + " WHERE d.id IS NULL LIMIT 1000");
      if (rows.empty()) break;
      for (const db::Row& r : rows) {
        removed += conn_.Execute("DELETE FROM " + spec.name + " WHERE " + spec.id_column +
                                     " = ? AND " + spec.parent_column + " = ?",
                                 {r[0], r[1]});
      }
    }
  }
  if (removed > 0) spdlog::info("removed {} row(s) whose zone is gone", removed);
  return removed;
}

int64_t Applier::RemoveRowsOfEndedGroups(const std::vector<Change>& local_changes,
                                         std::set<std::string>* zones) {
  int64_t removed = 0;
  ApplyResult result;
  Context ctx;
  ctx.result = &result;
  db::Transaction tx(conn_);
  BeginTx(false);
  std::set<RowKey> swept;  // sets looked through once
  // Each set's and zone's lookups once, for the many changes of one set or
  // zone a round holds: a set's locked incarnation (unset: never
  // replaced), a zone's domains.id (unset: not here).
  std::map<RowKey, std::optional<Version>> set_epochs;
  std::map<std::string, std::optional<int64_t>> zone_ids;
  for (const Change& c : local_changes) {
    if (c.op != 'U' || !c.spec->is_grouped() || !c.row.zone) continue;
    const schema::TableSpec& spec = *c.spec;
    const std::string gkey = schema::GroupKey(spec, c.row);
    auto e = set_epochs.find({spec.name, gkey});
    if (e == set_epochs.end()) {
      // A set never replaced has no ended incarnation: no lock needed.
      auto g = conn_.Query("SELECT epoch_hlc FROM zm_group WHERE tbl = ? AND kid = ?",
                           {spec.name, schema::KeyId(conn_.dialect(), gkey)});
      std::optional<Version> epoch;
      // Locked, so that the applier neither ends nor fills it meanwhile.
      if (!g.empty() && g[0][0].AsInt() != 0) epoch = LockGroup(spec, gkey, *c.row.zone).epoch;
      e = set_epochs.emplace(RowKey{spec.name, gkey}, epoch).first;
    }
    if (!e->second) continue;
    const Version group_epoch = *e->second;
    auto zi = zone_ids.find(*c.row.zone);
    if (zi == zone_ids.end()) {
      auto z = conn_.Query("SELECT id FROM domains WHERE name = ?", {*c.row.zone});
      zi = zone_ids.emplace(*c.row.zone, z.empty() ? std::nullopt : std::optional<int64_t>(z[0][0].AsInt()))
               .first;
    }
    if (!zi->second) continue;
    const int64_t zone_id = *zi->second;
    TableSql sql(conn_.dialect(), spec);
    if (c.group_epoch < group_epoch) {
      // The row's version must still be the one written in the ended
      // incarnation: a later write moved it on.
      RowVer rv = LockRowVer(spec.name, c.key);
      if (rv.version != c.version) continue;
      Statement del = sql.Delete(c.row, zone_id);
      const int64_t n = conn_.Execute(del.sql, del.params);
      removed += n;
      if (n > 0 && zones) zones->insert(*c.row.zone);
      continue;
    }
    if (c.group_epoch != group_epoch || !swept.insert({spec.name, gkey}).second) continue;
    // The change is of the current incarnation: rows recorded in an older
    // one are leftovers its replace did not see.
    Statement sel = sql.SelectGroup(c.row, zone_id);
    for (const db::Row& r : conn_.Query(sel.sql, sel.params)) {
      const schema::RowImage image = sql.ImageOf(r, c.row.zone);
      const std::string key = schema::EncodeKey(spec, image);
      if (key == c.key) continue;
      RowVer rv = LockRowVer(spec.name, key);
      // Unversioned rows predate replication; a recorded delete or another
      // zone incarnation is not this set's history.
      if (!rv.known || rv.deleted || rv.epoch != c.epoch || !(rv.group_epoch < group_epoch)) {
        continue;
      }
      Statement del = sql.Delete(image, zone_id);
      const int64_t n = conn_.Execute(del.sql, del.params);
      if (n == 0) continue;
      removed += n;
      if (zones) zones->insert(*c.row.zone);
      RecordDroppedSetRow(ctx, spec, image, rv.group_epoch,
                          spec.name + " set " + gkey + " replaced here (incarnation " +
                              group_epoch.ToString() +
                              ") by a writer that did not see this row, committed meanwhile");
    }
  }
  tx.Commit();
  if (removed > 0) {
    spdlog::info("removed {} row(s) of RRsets or metadata kinds whose incarnation a replace had "
                 "just ended",
                 removed);
  }
  return removed;
}

int64_t Applier::RemoveStaleDuplicates(const std::vector<Change>& local_changes,
                                       std::set<std::string>* zones) {
  int64_t removed = 0;
  db::Transaction tx(conn_);
  BeginTx(false);
  for (const Change& c : local_changes) {
    if (c.op != 'U' || c.spec->id_column.empty()) continue;
    std::optional<int64_t> zone_id;
    if (c.spec->is_child()) {
      auto z = conn_.Query("SELECT id FROM domains WHERE name = ?", {db::Value(c.row.zone)});
      if (z.empty()) continue;
      zone_id = z[0][0].AsInt();
    }
    TableSql sql(conn_.dialect(), *c.spec);
    Statement sel = sql.SelectCopies(c.row, zone_id);
    auto rows = conn_.Query(sel.sql, sel.params);
    if (rows.size() < 2) continue;
    // The logical row's value is the newest write: this one, unless the
    // row moved on since.
    RowVer rv = LockRowVer(c.spec->name, c.key);
    if (rv.version != c.version) continue;
    std::vector<db::Value> stale;
    bool kept = false;
    for (const db::Row& r : rows) {
      const schema::RowImage image = sql.ImageOf(r, c.row.zone);
      // One copy stays, the first equal to the captured value; the others
      // go, equal ones too (two inserts of the same value are still one
      // write too many: every other node holds one copy).
      if (image == c.row && !kept) {
        kept = true;
      } else {
        stale.push_back(r[0]);
      }
    }
    if (!kept) continue;  // nothing equals the captured value: leave it to the next write
    for (const db::Value& id : stale) {
      const int64_t n = conn_.Execute(
          "DELETE FROM " + c.spec->name + " WHERE " + c.spec->id_column + " = ?", {id});
      removed += n;
      if (n > 0 && zones && c.row.zone) zones->insert(*c.row.zone);
    }
  }
  tx.Commit();
  if (removed > 0) {
    spdlog::info("removed {} stale physical cop{} of rows a local write and a replicated one "
                 "inserted at the same time",
                 removed, removed == 1 ? "y" : "ies");
  }
  return removed;
}

ApplyResult Applier::RetryParked() {
  ApplyResult result;
  auto zones = conn_.Query("SELECT DISTINCT zone FROM zm_parked");
  if (zones.empty()) return result;
  Context ctx;
  ctx.result = &result;
  db::Transaction tx(conn_);
  BeginTx(false);
  int64_t before = conn_.Query("SELECT COUNT(*) FROM zm_parked")[0][0].AsInt();
  for (const db::Row& z : zones) {
    const std::string zone = z[0].AsText();
    if (!conn_.Query("SELECT id FROM domains WHERE name = ?", {zone}).empty()) {
      RetryParkedFor(ctx, zone);
      continue;
    }
    // A zone deleted here (by a local writer, whose delete the applier
    // never saw) ends the incarnations before it: changes parked for them
    // would wait for ever.
    ZoneState state = LoadZone(zone);
    if (state.rv.known && state.rv.deleted) DropParkedBefore(ctx, zone, state.rv.epoch);
  }
  int64_t after = conn_.Query("SELECT COUNT(*) FROM zm_parked")[0][0].AsInt();
  for (const std::string& zone : ctx.clock_zones) {
    if (clocks_.Publish(zone)) result.zones.insert(zone);
  }
  tx.Commit();
  result.applied = before - after;
  return result;
}

std::set<std::string> Applier::PublishSerials(const std::set<std::string>& zones) {
  std::set<std::string> changed;
  if (zones.empty()) return changed;
  db::Transaction tx(conn_);
  for (const std::string& zone : zones) {
    if (clocks_.Publish(zone)) changed.insert(zone);
  }
  tx.Commit();
  return changed;
}

std::set<std::string> Applier::PublishAllSerials() {
  std::vector<std::string> zones = clocks_.Zones();
  return PublishSerials(std::set<std::string>(zones.begin(), zones.end()));
}

}  // namespace zonemesh
