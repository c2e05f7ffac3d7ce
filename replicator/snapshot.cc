#include "replicator/snapshot.h"

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <set>
#include <stdexcept>

#include "replicator/applier.h"
#include "replicator/auth.h"
#include "replicator/http.h"
#include "replicator/outbox.h"
#include "replicator/row_states.h"
#include "replicator/status.h"
#include "replicator/table_sql.h"
#include "replicator/zone_clock.h"
#include "schema/key.h"
#include "schema/sql_dialect.h"

namespace zonemesh {

using nlohmann::json;

namespace {

std::string RandomToken() {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no random bytes for a token");
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += hex[c >> 4];
    out += hex[c & 0xf];
  }
  return out;
}

json PositionJson(const Position& p) { return json::array({p.csn, p.id}); }

}  // namespace

struct SnapshotService::Session {
  std::unique_ptr<db::Connection> conn;
  std::mutex mu;
  int64_t last_used = 0;
};

SnapshotService::SnapshotService(ConnectionFactory open, std::string node_id,
                                 int64_t history_retention_seconds)
    : open_(std::move(open)),
      node_id_(std::move(node_id)),
      history_retention_seconds_(history_retention_seconds) {}

json SnapshotService::Begin() {
  Reap();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (sessions_.size() >= kMaxSessions) {
      throw std::runtime_error("too many snapshots in progress on " + node_id_ + "; try again later");
    }
  }
  auto session = std::make_shared<Session>();
  session->conn = open_();
  session->conn->BeginReadOnlySnapshot();
  // Read in the snapshot: the data below and these positions agree.
  Outbox box(*session->conn, node_id_);
  const Position position = box.LastPosition();
  json applied = json::object();
  for (const db::Row& r : session->conn->Query("SELECT origin, csn, id FROM zm_applied")) {
    applied[r[0].AsText()] = json::array({r[1].AsInt(), r[2].AsInt()});
  }
  session->last_used = NowMicros();
  const std::string token = RandomToken();
  {
    std::lock_guard<std::mutex> lock(mu_);
    sessions_[token] = session;
  }
  spdlog::info("snapshot {} opened at position {}", token.substr(0, 8), position.ToString());
  return json{{"token", token},
              {"origin", node_id_},
              {"position", PositionJson(position)},
              {"applied", applied},
              {"horizon", NowMicros() - history_retention_seconds_ * 1000000LL}};
}

json SnapshotService::Next(const std::string& token, const json& cursor) {
  std::shared_ptr<Session> s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(token);
    if (it == sessions_.end()) throw std::out_of_range("no snapshot with this token (expired?)");
    s = it->second;
  }
  std::lock_guard<std::mutex> lock(s->mu);
  s->last_used = NowMicros();
  return Page(*s, cursor);
}

void SnapshotService::End(const std::string& token) {
  std::shared_ptr<Session> s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sessions_.find(token);
    if (it == sessions_.end()) return;
    s = it->second;
    sessions_.erase(it);
  }
  std::lock_guard<std::mutex> lock(s->mu);
  s->conn->Rollback();
  spdlog::info("snapshot {} closed", token.substr(0, 8));
}

void SnapshotService::Reap() {
  const int64_t now = NowMicros();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now - it->second->last_used > 60 * 1000000LL) {
      spdlog::warn("snapshot {} idle for a minute; closed", it->first.substr(0, 8));
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

// The cursor: {"table": index into the specs, "after": last id} while rows
// are read table by table, then {"tombstones": true, "tbl", "kid"}, then
// {"clocks": true, "after": zone} for the zones' serial clocks.
json SnapshotService::Page(Session& s, const json& cursor) {
  db::Connection& c = *s.conn;
  const auto& specs = schema::PowerDnsTables();
  json rows = json::array();

  if (cursor.is_object() && cursor.value("clocks", false)) {
    // The zones' serial clocks, as this snapshot holds them.
    ZoneClocks clocks(c);
    json out = json::array();
    auto page = clocks.LoadPage(cursor.value("after", std::string()), kPageRows);
    for (const ZoneClock& z : page) out.push_back(z.ToJson());
    json next = nullptr;
    if (page.size() == static_cast<size_t>(kPageRows)) next = {{"clocks", true}, {"after", page.back().zone}};
    return json{{"rows", json::array()}, {"clocks", out}, {"cursor", next}};
  }

  if (cursor.is_null() || !cursor.value("tombstones", false)) {
    size_t t = cursor.is_null() ? 0 : cursor.value("table", size_t{0});
    int64_t after = cursor.is_null() ? 0 : cursor.value("after", int64_t{0});
    if (t >= specs.size()) throw std::invalid_argument("bad snapshot cursor");
    const schema::TableSpec& spec = specs[t];
    TableSql sql(c.dialect(), spec);
    std::vector<db::Row> data;
    bool last_page;
    if (spec.id_column.empty()) {
      data = c.Query(sql.SelectAll());  // a small table without ids: one page
      for (db::Row& r : data) r.insert(r.begin(), db::Value(int64_t{0}));
      last_page = true;
    } else {
      data = c.Query(sql.SelectPage(kPageRows), {after});
      last_page = data.size() < static_cast<size_t>(kPageRows);
    }
    for (const Change& ch : VersionedRows(c, spec, data, 1, 2)) rows.push_back(ChangeToJson(ch));
    json next;
    if (!last_page) {
      next = {{"table", t}, {"after", data.back()[0].AsInt()}};
    } else if (t + 1 < specs.size()) {
      next = {{"table", t + 1}, {"after", 0}};
    } else {
      next = {{"tombstones", true}, {"tbl", ""}, {"kid", ""}};
    }
    return json{{"rows", rows}, {"cursor", next}};
  }



  // Tombstones: the deletes the joining node must know, with their versions.
  const std::string tbl = cursor.value("tbl", std::string());
  const std::string kid = cursor.value("kid", std::string());
  schema::SqlDialect d(c.dialect());
  db::Params p{tbl};
  if (d.PositionAfterRepeatsCsn()) p.push_back(tbl);
  p.push_back(kid);
  auto data = c.Query(std::string("SELECT ") + kTombstoneColumns +
                          " FROM zm_rowver WHERE deleted = 1 AND hlc > 0 AND " +
                          d.PositionAfter("tbl", "kid") + " ORDER BY tbl, kid LIMIT " +
                          std::to_string(kPageRows),
                      p);
  for (const db::Row& r : data) {
    Change ch;
    if (TombstoneOf(r, &ch)) rows.push_back(ChangeToJson(ch));
  }
  json next = json{{"clocks", true}, {"after", ""}};
  if (data.size() == static_cast<size_t>(kPageRows)) {
    next = {{"tombstones", true}, {"tbl", data.back()[0].AsText()}, {"kid", data.back()[1].AsText()}};
  }
  return json{{"rows", rows}, {"cursor", next}};
}

// ------------------------------------------------------------ joining --

JoinStats JoinFromPeer(const JoinOptions& o, db::Connection& apply_conn,
                       const conflict::Policy& policy) {
  HttpClient client(o.endpoint, std::chrono::milliseconds(o.timeout_ms), 64 << 20, o.tls);
  json base{{"v", kProtocolVersion}, {"origin", o.node_id}, {"target", o.peer_id}, {"fingerprint", o.fingerprint}};
  auto post = [&](const std::string& path, const json& body) {
    return PostToPeer(client, o.auth_secret, o.base_path, o.peer_id, path, body);
  };

  Applier applier(apply_conn, policy, o.node_id);
  json header = post("/v1/snapshot/begin", base);
  const std::string token = header.value("token", std::string());
  JoinStats stats;
  try {
    const json& pos = header.at("position");
    stats.position = {pos.at(0).get<int64_t>(), pos.at(1).get<int64_t>()};
    if (o.discard_local) {
      spdlog::warn("discarding this node's replicated data before loading {}'s snapshot", o.peer_id);
      applier.DiscardLocalData();
    }
    json cursor = nullptr;
    for (;;) {
      json body = base;
      body["token"] = token;
      body["cursor"] = cursor;
      json page = post("/v1/snapshot/next", body);
      std::vector<Change> rows;
      for (const json& j : page.at("rows")) {
        Change c = ChangeFromJson(j, /*snapshot_row=*/true);
        (c.op == 'D' ? stats.tombstones : stats.rows)++;
        rows.push_back(std::move(c));
      }
      std::vector<ZoneClock> clocks;
      if (page.contains("clocks")) {
        for (const json& j : page.at("clocks")) clocks.push_back(ZoneClock::FromJson(j));
      }
      if (!rows.empty() || !clocks.empty()) applier.ApplySnapshotRows(rows, clocks);
      stats.pages++;
      cursor = page.at("cursor");
      if (cursor.is_null()) break;
    }
    std::map<std::string, Position> positions{{o.peer_id, stats.position}};
    for (auto it = header.at("applied").begin(); it != header.at("applied").end(); ++it) {
      positions[it.key()] = {it.value().at(0).get<int64_t>(), it.value().at(1).get<int64_t>()};
    }
    applier.RecordPositions(positions);
  } catch (...) {
    try {
      json end = base;
      end["token"] = token;
      post("/v1/snapshot/end", end);
    } catch (...) {
    }
    throw;
  }
  json end = base;
  end["token"] = token;
  post("/v1/snapshot/end", end);
  return stats;
}

}  // namespace zonemesh
