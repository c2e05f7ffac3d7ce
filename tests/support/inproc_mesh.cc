#include "tests/support/inproc_mesh.h"

#include <gtest/gtest.h>

#include "db/open.h"
#include "replicator/dump.h"
#include "replicator/installer.h"
#include "replicator/local_round.h"
#include "replicator/outbox.h"
#include "replicator/snapshot.h"
#include "tests/support/test_db.h"

namespace zonemesh::testing {

int64_t Node::Count(const std::string& sql, const db::Params& p) {
  return conn->Query(sql, p)[0][0].AsInt();
}

Node& InprocMesh::Add(db::Dialect d, const std::string& id,
                      std::unique_ptr<conflict::Policy> policy) {
  auto n = std::make_unique<Node>();
  n->id = id;
  n->cfg = FreshDatabase(d, "zm_mesh_" + id);
  n->conn = db::Open(n->cfg);
  Install(*n->conn, id, /*create_schema=*/true);
  n->apply_conn = db::Open(n->cfg);
  n->apply_conn->SetApplying(true);
  n->policy = policy ? std::move(policy)
                     : std::make_unique<conflict::Policy>("latest-wins",
                                                          std::map<std::string, std::string>{});
  n->applier = std::make_unique<Applier>(*n->apply_conn, *n->policy, id);
  n->w = std::make_unique<PdnsWriter>(*n->conn);
  nodes_.push_back(std::move(n));
  return *nodes_.back();
}

ApplyResult InprocMesh::Sync(Node& from, Node& to, int max_changes) {
  if (&from == &to) return {};  // a node never receives its own stream
  Outbox box(*from.conn, from.id);
  // As the daemon does after stamping.
  const int64_t before = box.LastPosition().csn;
  std::set<std::string> clock_zones;
  if (box.StampRound(&clock_zones) > 0) FinishLocalRound(*from.applier, box, before, clock_zones);
  ApplyResult total;
  for (;;) {
    Batch b = box.ReadBatch(from.sent[to.id], max_changes, 4 << 20);
    if (b.changes.empty()) break;
    b.origin = from.id;
    b.target = to.id;
    ApplyResult r = to.applier->Apply(b);
    EXPECT_EQ(r.status, ApplyResult::Status::kApplied);
    from.sent[to.id] = r.ack;
    total.applied += r.applied;
    total.duplicates += r.duplicates;
    total.staged += r.staged;
    total.conflicts += r.conflicts;
    total.parked += r.parked;
    total.failed += r.failed;
    total.ack = r.ack;
  }
  return total;
}

int64_t InprocMesh::Join(Node& from, Node& to) {
  Outbox box(*from.conn, from.id);
  const int64_t before = box.LastPosition().csn;
  std::set<std::string> clock_zones;
  if (box.StampRound(&clock_zones) > 0) FinishLocalRound(*from.applier, box, before, clock_zones);
  SnapshotService service([&] { return db::Open(from.cfg); }, from.id, 86400);
  nlohmann::json header = service.Begin();
  const std::string token = header.at("token").get<std::string>();
  int64_t rows_received = 0;
  nlohmann::json cursor = nullptr;
  for (;;) {
    nlohmann::json page = service.Next(token, cursor);
    std::vector<Change> rows;
    for (const nlohmann::json& j : page.at("rows")) {
      // Through the wire format, as a joining node receives it.
      rows.push_back(ChangeFromJson(nlohmann::json::parse(ChangeToJson(ChangeFromJson(j, true)).dump()), true));
    }
    std::vector<ZoneClock> clocks;
    if (page.contains("clocks")) {
      for (const nlohmann::json& j : page.at("clocks")) clocks.push_back(ZoneClock::FromJson(j));
    }
    rows_received += static_cast<int64_t>(rows.size());
    if (!rows.empty() || !clocks.empty()) to.applier->ApplySnapshotRows(rows, clocks);
    cursor = page.at("cursor");
    if (cursor.is_null()) break;
  }
  const nlohmann::json& pos = header.at("position");
  std::map<std::string, Position> positions{
      {from.id, {pos.at(0).get<int64_t>(), pos.at(1).get<int64_t>()}}};
  for (auto it = header.at("applied").begin(); it != header.at("applied").end(); ++it) {
    positions[it.key()] = {it.value().at(0).get<int64_t>(), it.value().at(1).get<int64_t>()};
  }
  to.applier->RecordPositions(positions);
  service.End(token);
  from.sent[to.id] = positions[from.id];
  for (auto& n : nodes_) {
    if (n.get() != &from && n.get() != &to && positions.count(n->id)) n->sent[to.id] = positions[n->id];
  }
  return rows_received;
}

void InprocMesh::SyncAll() {
  for (int round = 0; round < 3; ++round) {
    for (auto& a : nodes_)
      for (auto& b : nodes_)
        if (a != b) Sync(*a, *b);
  }
}

// The serial clocks a node holds, one line per zone (for failure reports).
std::string Clocks(Node& n) {
  std::string out;
  for (const db::Row& z : n.conn->Query("SELECT zone, epoch_hlc, epoch_node, base FROM zm_zone ORDER BY zone")) {
    out += "  " + z[0].AsText() + " epoch " + z[1].AsText() + "@" + z[2].AsText() + " base " +
           (z[3].IsNull() ? "null" : z[3].AsText());
    for (const db::Row& c : n.conn->Query(
             "SELECT origin, kind, n FROM zm_serial WHERE zone = ? ORDER BY origin, kind", {z[0]})) {
      out += " " + c[0].AsText() + ":" + c[1].AsText() + "=" + c[2].AsText();
    }
    out += "\n";
  }
  return out;
}

void InprocMesh::ExpectConverged() {
  auto first = CanonicalDump(*nodes_[0]->conn);
  for (size_t i = 1; i < nodes_.size(); ++i) {
    EXPECT_EQ(first, CanonicalDump(*nodes_[i]->conn))
        << nodes_[0]->id << " and " << nodes_[i]->id << " differ; serial clocks:\n"
        << nodes_[0]->id << ":\n" << Clocks(*nodes_[0]) << nodes_[i]->id << ":\n" << Clocks(*nodes_[i]);
  }
  for (auto& n : nodes_) {
    auto problems = SanityProblems(*n->conn);
    EXPECT_TRUE(problems.empty()) << n->id << ": " << problems.front();
  }
}

}  // namespace zonemesh::testing
