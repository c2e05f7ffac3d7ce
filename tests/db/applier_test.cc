// Apply conformance: nodes on real databases exchange batches in-process
// (outbox -> batch -> applier, the daemon's path without HTTP), so each rule
// of the replication model is driven deterministically, on SQLite,
// PostgreSQL and MariaDB alike, and on a mesh mixing all three.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "conflict/strategy.h"
#include "db/open.h"
#include "replicator/anti_entropy.h"
#include "replicator/applier.h"
#include "replicator/dump.h"
#include "replicator/installer.h"
#include "replicator/outbox.h"
#include "schema/serial.h"
#include "tests/support/inproc_mesh.h"
#include "tests/support/pdns_writes.h"
#include "tests/support/test_db.h"

namespace zonemesh {
namespace {

using db::Dialect;
using db::Value;
using testing::PdnsWriter;

using testing::InprocMesh;
using testing::Node;

int64_t ConflictCount(Node& n, const std::string& decision = "") {
  if (decision.empty()) return n.Count("SELECT COUNT(*) FROM zm_conflict");
  return n.Count("SELECT COUNT(*) FROM zm_conflict WHERE decision = ?", {decision});
}

int64_t RecordTtl(Node& n, const std::string& name, const std::string& type) {
  auto rows = n.conn->Query("SELECT ttl FROM records WHERE name = ? AND type = ?", {name, type});
  return rows.empty() ? -1 : rows[0][0].AsInt();
}

// The newest version captured for a key on a node.
schema::Version CapturedVersion(Node& n, const std::string& key) {
  auto rows = n.conn->Query("SELECT hlc FROM zm_outbox WHERE rkey = ? ORDER BY id DESC LIMIT 1", {key});
  return {rows.at(0)[0].AsInt(), n.id};
}

class ApplierTest : public ::testing::TestWithParam<Dialect> {
 protected:
  Node& NewNode(const std::string& id) { return mesh_.Add(GetParam(), id); }
  InprocMesh mesh_;
};

TEST_P(ApplierTest, ReplicatesEveryTableWithoutEcho) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  a.w->ReplaceRRset("example.com", "www.example.com", "A", {"192.0.2.1", "192.0.2.2"});
  a.w->SetMetadata("example.com", "ALSO-NOTIFY", {"192.0.2.53", "192.0.2.54"});
  a.w->SetMetadata("example.com", "SOA-EDIT-API", {"DEFAULT"});
  a.w->AddCryptoKey("example.com", "Private-key-format: v1.2\nAlgorithm: 13", true);
  a.w->AddComment("example.com", "www.example.com", "A", "web", 1700000000);
  a.w->AddTsigKey("xfr", "hmac-sha256", "c2VjcmV0");
  a.w->AddSupermaster("192.0.2.10", "ns.example.net", "acct");
  ApplyResult r = mesh_.Sync(a, b);
  EXPECT_EQ(r.applied, a.Count("SELECT COUNT(*) FROM zm_outbox"));
  EXPECT_EQ(r.conflicts, 0);
  mesh_.ExpectConverged();
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM zm_outbox"), 0) << "applied changes were captured again";
  EXPECT_EQ(b.w->Count("records"), 4);
}

TEST_P(ApplierTest, ResentBatchIsAcknowledgedNotAppliedTwice) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  a.w->AddRecord("example.com", "www.example.com", "A", "192.0.2.1");
  mesh_.Sync(a, b);
  auto before = CanonicalDump(*b.conn);

  Outbox box(*a.conn, "a");
  Batch again = box.ReadBatch({}, 1000, 1 << 20);
  again.origin = "a";
  again.target = "b";
  ApplyResult r = b.applier->Apply(again);
  EXPECT_EQ(r.status, ApplyResult::Status::kApplied);
  EXPECT_EQ(r.applied, 0);
  EXPECT_EQ(r.duplicates, static_cast<int64_t>(again.changes.size()));
  EXPECT_EQ(r.ack, again.changes.back().pos);
  EXPECT_EQ(CanonicalDump(*b.conn), before);
  EXPECT_EQ(ConflictCount(b), 0);
  EXPECT_EQ(b.applier->Acknowledged("a"), again.changes.back().pos);
}

TEST_P(ApplierTest, BatchStartingBeyondWhatTheNodeHoldsIsAGap) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  Outbox box(*a.conn, "a");
  box.StampRound();
  Batch batch = box.ReadBatch({}, 1000, 1 << 20);
  batch.origin = "a";
  batch.target = "b";
  batch.after = {7, 7};  // as if b had already applied more than it has
  for (auto& c : batch.changes) c.pos = {c.pos.csn + 7, c.pos.id + 7};
  ApplyResult r = b.applier->Apply(batch);
  EXPECT_EQ(r.status, ApplyResult::Status::kGap);
  EXPECT_EQ(r.ack, Position{});
  EXPECT_EQ(b.w->Count("domains"), 0);
}

TEST_P(ApplierTest, LocalEditAfterARemoteOneWinsWithoutConflict) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  a.w->AddRecord("example.com", "www.example.com", "A", "192.0.2.1", 300);
  mesh_.Sync(a, b);
  b.w->SetTtl("example.com", "www.example.com", "A", 60);
  mesh_.Sync(b, a);
  EXPECT_EQ(RecordTtl(a, "www.example.com", "A"), 60);
  a.w->SetTtl("example.com", "www.example.com", "A", 90);
  mesh_.Sync(a, b);
  EXPECT_EQ(RecordTtl(b, "www.example.com", "A"), 90);
  EXPECT_EQ(ConflictCount(a) + ConflictCount(b), 0);
  mesh_.ExpectConverged();
}

TEST_P(ApplierTest, ConcurrentEditsConvergeOnTheLatestAndAreLogged) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  a.w->AddRecord("example.com", "www.example.com", "A", "192.0.2.1", 300);
  mesh_.Sync(a, b);
  a.w->SetTtl("example.com", "www.example.com", "A", 100);
  b.w->SetTtl("example.com", "www.example.com", "A", 200);
  const std::string key = "example.com|www.example.com|A|192.0.2.1|0";
  const int64_t expected = CapturedVersion(a, key) > CapturedVersion(b, key) ? 100 : 200;
  mesh_.Sync(a, b);
  mesh_.Sync(b, a);
  EXPECT_EQ(RecordTtl(a, "www.example.com", "A"), expected);
  EXPECT_EQ(RecordTtl(b, "www.example.com", "A"), expected);
  mesh_.ExpectConverged();
  // Both nodes saw a conflict and logged both images and the decision.
  for (Node* n : {&a, &b}) {
    auto rows = n->conn->Query(
        "SELECT tbl, rkey, local_image, remote_image, strategy, decision FROM zm_conflict");
    ASSERT_EQ(rows.size(), 1u) << n->id;
    EXPECT_EQ(rows[0][0].AsText(), "records");
    EXPECT_EQ(rows[0][1].AsText(), key);
    auto local = nlohmann::json::parse(rows[0][2].AsText());
    auto remote = nlohmann::json::parse(rows[0][3].AsText());
    EXPECT_EQ(local["row"]["ttl"].get<int>() + remote["row"]["ttl"].get<int>(), 300);
    EXPECT_EQ(rows[0][4].AsText(), "latest-wins");
    EXPECT_TRUE(rows[0][5].AsText() == "take-remote" || rows[0][5].AsText() == "keep-local");
  }
  EXPECT_NE(ConflictCount(a, "take-remote"), ConflictCount(b, "take-remote"));
}

TEST_P(ApplierTest, ThreeConcurrentEditsConvergeInAnyArrivalOrder) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  Node& c = NewNode("c");
  a.w->CreateZone("example.com");
  a.w->AddRecord("example.com", "www.example.com", "A", "192.0.2.1", 300);
  mesh_.SyncAll();
  a.w->SetTtl("example.com", "www.example.com", "A", 1);
  b.w->SetTtl("example.com", "www.example.com", "A", 2);
  c.w->SetTtl("example.com", "www.example.com", "A", 3);
  // Different nodes see the three edits in different orders.
  mesh_.Sync(a, b);
  mesh_.Sync(c, b);
  mesh_.Sync(c, a);
  mesh_.Sync(b, a);
  mesh_.Sync(b, c);
  mesh_.Sync(a, c);
  mesh_.ExpectConverged();
}

TEST_P(ApplierTest, ZoneDeleteWinsOverAConcurrentRecordAdd) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  mesh_.Sync(a, b);
  a.w->DeleteZone("example.com");
  b.w->AddRecord("example.com", "late.example.com", "A", "192.0.2.9");
  mesh_.Sync(a, b);
  mesh_.Sync(b, a);
  mesh_.ExpectConverged();
  for (Node* n : {&a, &b}) {
    EXPECT_EQ(n->w->Count("domains"), 0) << n->id;
    EXPECT_EQ(n->w->Count("records"), 0) << n->id;
  }
  // The node that deleted the zone says why it dropped the other's record.
  EXPECT_EQ(ConflictCount(a, "dropped"), 1);
}

TEST_P(ApplierTest, ZoneRecreatedWhileAPartitionedNodeEditsTheOldOne) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  Node& c = NewNode("c");
  a.w->CreateZone("example.com", 1);
  a.w->AddRecord("example.com", "old.example.com", "A", "192.0.2.1");
  mesh_.SyncAll();
  // c is cut off. a deletes the zone and creates it again; b follows a.
  a.w->DeleteZone("example.com");
  a.w->CreateZone("example.com", 5);
  a.w->AddRecord("example.com", "new.example.com", "A", "192.0.2.5");
  mesh_.Sync(a, b);
  // Meanwhile c keeps editing the old incarnation.
  c.w->SetTtl("example.com", "old.example.com", "A", 7);
  c.w->AddRecord("example.com", "c-only.example.com", "A", "192.0.2.3");
  c.w->SetSoaSerial("example.com", 2);
  // The partition heals; c's stream reaches b before a's reaches c.
  mesh_.Sync(c, b);
  mesh_.Sync(c, a);
  mesh_.Sync(a, c);
  mesh_.Sync(b, c);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  for (Node* n : {&a, &b, &c}) {
    EXPECT_EQ(n->w->Count("domains"), 1);
    EXPECT_EQ(RecordTtl(*n, "old.example.com", "A"), -1) << n->id << ": old incarnation resurrected";
    EXPECT_EQ(RecordTtl(*n, "c-only.example.com", "A"), -1) << n->id;
    EXPECT_EQ(RecordTtl(*n, "new.example.com", "A"), 300) << n->id;
    auto soa = n->conn->Query("SELECT content FROM records WHERE type = 'SOA'");
    ASSERT_EQ(soa.size(), 1u);
    // The new incarnation's serial clock: from the serial it was created
    // with (5), up by its changes, whatever c wrote into the old one.
    std::optional<uint32_t> serial = schema::SoaSerial(soa[0][0].AsText());
    ASSERT_TRUE(serial.has_value());
    EXPECT_GE(*serial, 5u) << n->id;
    EXPECT_LT(*serial, 10u) << n->id;
    EXPECT_EQ(schema::WithSoaSerial(soa[0][0].AsText(), 5), testing::SoaContent("example.com", 5))
        << n->id;
  }
}

TEST_P(ApplierTest, SameZoneCreatedOnTwoNodesBecomesOneZoneWithBothSidesRecords) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com", 10);
  a.w->AddRecord("example.com", "a.example.com", "A", "192.0.2.1");
  b.w->CreateZone("example.com", 20);
  b.w->AddRecord("example.com", "b.example.com", "A", "192.0.2.2");
  mesh_.Sync(a, b);
  mesh_.Sync(b, a);
  mesh_.ExpectConverged();
  for (Node* n : {&a, &b}) {
    EXPECT_EQ(n->w->Count("domains"), 1);
    EXPECT_EQ(n->Count("SELECT COUNT(*) FROM records WHERE type = 'SOA'"), 1);
    EXPECT_EQ(RecordTtl(*n, "a.example.com", "A"), 300);
    EXPECT_EQ(RecordTtl(*n, "b.example.com", "A"), 300);
  }
}

TEST_P(ApplierTest, ConcurrentSoaEditsLeaveOneSoa) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  Node& c = NewNode("c");
  a.w->CreateZone("example.com", 1);
  mesh_.SyncAll();
  a.w->SetSoaSerial("example.com", 2);
  b.w->SetSoaSerial("example.com", 3);
  c.w->SetSoaSerial("example.com", 4);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(a.Count("SELECT COUNT(*) FROM records WHERE type = 'SOA'"), 1);
}

TEST_P(ApplierTest, TwoNodesReplacingTheSameRRsetConverge) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  a.w->ReplaceRRset("example.com", "www.example.com", "A", {"192.0.2.1"});
  mesh_.Sync(a, b);
  a.w->ReplaceRRset("example.com", "www.example.com", "A", {"192.0.2.10", "192.0.2.11"});
  b.w->ReplaceRRset("example.com", "www.example.com", "A", {"192.0.2.20"});
  mesh_.Sync(a, b);
  mesh_.Sync(b, a);
  mesh_.ExpectConverged();
  EXPECT_EQ(a.Count("SELECT COUNT(*) FROM records WHERE content = '192.0.2.1'"), 0);
}

// PostgreSQL's DELETE reads the rows it deletes from the snapshot its
// statement started with: a row another transaction commits after that is
// neither deleted nor seen by the capture's "set emptied" check, so a
// replace in flight misses it and the row outlives it here, while every
// other node ends it when the replace arrives. (SQLite runs one writer at a
// time; InnoDB's DELETE locks the range it read, so a late insert waits and
// joins the new incarnation.) A REPEATABLE READ transaction stands for the
// statement's snapshot, so that the interleaving is the same on every run.
// example.com with txt.example.com TXT replaced once (the set has an
// incarnation of its own, as after any API or DDNS replace).
void ZoneWithAReplacedTxtSet(Node& n) {
  n.w->CreateZone("example.com");
  n.w->ReplaceRRset("example.com", "txt.example.com", "TXT", {"\"one\""});
  n.w->ReplaceRRset("example.com", "txt.example.com", "TXT", {"\"two\""});
}

void ReplaceFromAnOldSnapshot(Node& n, const std::function<void()>& meanwhile,
                              const std::string& content) {
  auto replacer = db::Open(n.cfg);
  replacer->BeginSnapshot();
  const Value id = replacer->Query("SELECT id FROM domains WHERE name = 'example.com'")[0][0];
  meanwhile();
  replacer->Execute("DELETE FROM records WHERE domain_id = ? AND name = ? AND type = 'TXT'",
                    {id, "txt.example.com"});
  replacer->Execute(
      "INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) "
      "VALUES (?, 'txt.example.com', 'TXT', ?, 300, 0, ?, ?)",
      {id, content, Value(false), Value(true)});
  replacer->Commit();
}

TEST_P(ApplierTest, ARowTheApplierCommittedUnseenByALocalReplaceEndsWithIt) {
  if (GetParam() != Dialect::kPostgres) {
    GTEST_SKIP() << "only PostgreSQL lets a DELETE miss a row committed while it runs";
  }
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  ZoneWithAReplacedTxtSet(a);
  mesh_.SyncAll();
  a.w->AddRecord("example.com", "txt.example.com", "TXT", "\"added on a\"");
  ReplaceFromAnOldSnapshot(b, [&] { mesh_.Sync(a, b); }, "\"replaced on b\"");
  mesh_.Sync(b, a);  // b's round is stamped and finished
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM records WHERE type = 'TXT'"), 1)
      << "b kept a row its own replace ended";
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(a.Count("SELECT COUNT(*) FROM records WHERE content = '\"replaced on b\"'"), 1);
  EXPECT_EQ(ConflictCount(b, "dropped"), 1);
}

TEST_P(ApplierTest, ALocalRowCommittedUnseenByALocalReplaceEndsWithIt) {
  if (GetParam() != Dialect::kPostgres) {
    GTEST_SKIP() << "only PostgreSQL lets a DELETE miss a row committed while it runs";
  }
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  // All written on b: its applier has written nothing that could race.
  ZoneWithAReplacedTxtSet(b);
  mesh_.Sync(b, a);
  ReplaceFromAnOldSnapshot(
      b, [&] { b.w->AddRecord("example.com", "txt.example.com", "TXT", "\"added on b\""); },
      "\"replaced on b\"");
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM records WHERE type = 'TXT'"), 1);
  EXPECT_EQ(a.Count("SELECT COUNT(*) FROM records WHERE content = '\"replaced on b\"'"), 1);
}

// InnoDB reads zonemesh's tables in a trigger from the transaction's
// snapshot, but its DELETE deletes what is there now: a writer whose
// snapshot predates a replicated replace deletes the replace's rows. The
// delete must carry the incarnation of the rows it deleted, not the older
// one its snapshot shows, or every other node ignores it as a write into
// an incarnation the replace ended, and keeps the rows.
TEST_P(ApplierTest, ADeleteFromAnOldSnapshotEndsTheRowsItDeletedEverywhere) {
  if (GetParam() != Dialect::kMysql) {
    GTEST_SKIP() << "only InnoDB deletes rows its transaction's snapshot does not show";
  }
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  ZoneWithAReplacedTxtSet(a);
  mesh_.SyncAll();
  a.w->ReplaceRRset("example.com", "txt.example.com", "TXT", {"\"three\""});
  auto deleter = db::Open(b.cfg);
  deleter->BeginSnapshot();
  const Value id = deleter->Query("SELECT id FROM domains WHERE name = 'example.com'")[0][0];
  mesh_.Sync(a, b);  // the replace commits on b after the deleter's snapshot
  EXPECT_EQ(deleter->Execute("DELETE FROM records WHERE domain_id = ? AND name = ? AND type = 'TXT'",
                             {id, "txt.example.com"}),
            1);
  deleter->Commit();
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(a.Count("SELECT COUNT(*) FROM records WHERE type = 'TXT'"), 0);
}

// A local insert and a replicated insert of the same record, each unaware
// of the other's, leave two physical rows: the records table has no unique
// key on the record (PowerDNS's schema). The later write is the record's
// value; the other copy goes once the local write is stamped. A daemon
// restarted meanwhile no longer knows what its applier wrote: it suspects
// every key for a while (Applier::SuspectEverything). InnoDB lets the
// interleaving be forced: the writer's snapshot predates the applier's
// commit, its trigger's upsert reads the version current. `from` creates the
// zone and adds the record (TTL 300); `to`'s writer adds it too (TTL `ttl`).
void InsertFromAnOldSnapshot(InprocMesh& mesh, Node& from, Node& to, int64_t ttl = 600) {
  from.w->CreateZone("example.com");
  mesh.SyncAll();
  from.w->AddRecord("example.com", "www.example.com", "A", "192.0.2.1", 300);
  auto writer = db::Open(to.cfg);
  writer->BeginSnapshot();
  const Value id = writer->Query("SELECT id FROM domains WHERE name = 'example.com'")[0][0];
  mesh.Sync(from, to);  // the applier inserts the record
  writer->Execute(
      "INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) "
      "VALUES (?, 'www.example.com', 'A', '192.0.2.1', ?, 0, ?, ?)",
      {id, ttl, Value(false), Value(true)});
  writer->Commit();
}

TEST_P(ApplierTest, ALocalAndAReplicatedInsertOfOneRecordLeaveOneCopy) {
  if (GetParam() != Dialect::kMysql) {
    GTEST_SKIP() << "the interleaving is forced through InnoDB's snapshot reads";
  }
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  InsertFromAnOldSnapshot(mesh_, a, b);
  ASSERT_EQ(b.Count("SELECT COUNT(*) FROM records WHERE type = 'A'"), 2);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM records WHERE type = 'A'"), 1);
  EXPECT_EQ(RecordTtl(a, "www.example.com", "A"), 600);
}

// The same with equal values: two exact copies, of which one stays.
TEST_P(ApplierTest, ALocalAndAReplicatedInsertOfTheSameValueLeaveOneCopy) {
  if (GetParam() != Dialect::kMysql) {
    GTEST_SKIP() << "the interleaving is forced through InnoDB's snapshot reads";
  }
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  InsertFromAnOldSnapshot(mesh_, a, b, 300);
  ASSERT_EQ(b.Count("SELECT COUNT(*) FROM records WHERE type = 'A'"), 2);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM records WHERE type = 'A'"), 1);
}

TEST_P(ApplierTest, ACopyLeftBeforeARestartIsRemovedAfterIt) {
  if (GetParam() != Dialect::kMysql) {
    GTEST_SKIP() << "the interleaving is forced through InnoDB's snapshot reads";
  }
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  InsertFromAnOldSnapshot(mesh_, a, b);
  // b's daemon restarts before its round is stamped: a new applier, which
  // suspects every key at start as the daemon makes it.
  b.applier = std::make_unique<Applier>(*b.apply_conn, *b.policy, "b");
  b.applier->SuspectEverything();
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM records WHERE type = 'A'"), 1);
}

// A row pulled by anti-entropy (or a snapshot) has no stream position:
// parked because its zone is not here yet, it still applies, and does not
// stop the stream, when the zone arrives.
TEST_P(ApplierTest, ARepairRowParkedForItsZoneAppliesWhenTheZoneArrives) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  a.w->AddRecord("example.com", "www.example.com", "A", "192.0.2.1");
  std::set<int> all;
  for (int i = 0; i < kTreeLeaves; ++i) all.insert(i);
  std::vector<Change> record;
  for (const Change& c : RowStatesOfLeaves(*a.apply_conn, "example.com", all)) {
    if (c.spec->name == "records" && c.row.values[c.spec->ColumnIndex("type")].AsText() == "A") record.push_back(c);
  }
  ASSERT_EQ(record.size(), 1u);
  EXPECT_EQ(b.applier->Repair(record, {}, std::nullopt).parked, 1);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM zm_parked"), 0);
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM records WHERE name = 'www.example.com'"), 1);
}

// Changes parked for a zone's incarnation that a local writer then ended
// (the zone created and deleted here before they could apply) are dropped,
// not kept waiting for a zone that will never come back.
TEST_P(ApplierTest, ChangesParkedForAnIncarnationALocalDeleteEndedAreDropped) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  Node& c = NewNode("c");
  a.w->CreateZone("example.com");
  mesh_.Sync(a, c);
  c.w->AddRecord("example.com", "c.example.com", "A", "192.0.2.3");
  ASSERT_EQ(mesh_.Sync(c, b).parked, 1);
  // b's own zone of that name, a newer incarnation, deleted again.
  b.w->CreateZone("example.com");
  b.w->DeleteZone("example.com");
  b.applier->RetryParked();
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM zm_parked"), 0);
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM zm_conflict WHERE strategy = 'zone-incarnation' AND "
                    "decision = 'dropped'"),
            1);
  mesh_.SyncAll();
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM zm_parked"), 0);
}

TEST_P(ApplierTest, ChangesForAZoneNotHereYetWaitForIt) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  Node& c = NewNode("c");
  a.w->CreateZone("example.com");
  mesh_.Sync(a, c);  // c has the zone, b does not yet
  c.w->AddRecord("example.com", "c.example.com", "A", "192.0.2.3");
  c.w->AddComment("example.com", "c.example.com", "A", "added on c", 1700000000);
  ApplyResult r = mesh_.Sync(c, b);
  EXPECT_EQ(r.parked, 2);
  EXPECT_EQ(b.w->Count("records"), 0);
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM zm_parked"), 2);
  mesh_.Sync(a, b);  // the zone arrives: what waited for it applies
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM zm_parked"), 0);
  EXPECT_EQ(RecordTtl(b, "c.example.com", "A"), 300);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
}

TEST_P(ApplierTest, ARoundLargerThanABatchIsAppliedAsAWhole) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  mesh_.Sync(a, b);
  std::vector<std::string> contents;
  for (int i = 0; i < 25; ++i) contents.push_back("192.0.2." + std::to_string(i));
  a.w->ReplaceRRset("example.com", "big.example.com", "A", contents);

  Outbox box(*a.conn, "a");
  box.StampRound();
  Position cursor = a.sent["b"];
  int batches = 0;
  for (;;) {
    Batch batch = box.ReadBatch(cursor, 10, 1 << 20);
    if (batch.changes.empty()) break;
    batch.origin = "a";
    batch.target = "b";
    ApplyResult r = b.applier->Apply(batch);
    cursor = r.ack;
    ++batches;
    const int64_t visible = b.Count("SELECT COUNT(*) FROM records WHERE name = 'big.example.com'");
    if (!batch.round_complete) {
      EXPECT_EQ(visible, 0) << "part of a transaction became visible after batch " << batches;
      EXPECT_GT(r.staged, 0);
    } else {
      EXPECT_EQ(visible, 25);
    }
  }
  EXPECT_EQ(batches, 3);
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM zm_stage"), 0);
}

TEST_P(ApplierTest, AChangeTheDatabaseRefusesIsRecordedAndDoesNotBlockTheStream) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  a.w->AddRecord("example.com", "one.example.com", "A", "192.0.2.1");
  Outbox box(*a.conn, "a");
  box.StampRound();
  Batch batch = box.ReadBatch({}, 1000, 1 << 20);
  batch.origin = "a";
  batch.target = "b";
  // A comment without text: every PowerDNS schema declares it NOT NULL.
  Change bad;
  bad.spec = schema::FindTable("comments");
  bad.op = 'U';
  bad.row.zone = "example.com";
  bad.row.values = {Value("one.example.com"), Value("A"), Value(int64_t{1700000000}),
                    Value("admin"), Value()};
  bad.key = schema::EncodeKey(*bad.spec, bad.row);
  bad.version = {batch.changes.back().version.hlc + 1, "a"};
  bad.vv.Set("a", bad.version.hlc);
  bad.pos = {batch.changes.back().pos.csn + 1, batch.changes.back().pos.id + 1};
  Change after = batch.changes.back();
  after.row.values[after.spec->ColumnIndex("name")] = Value("two.example.com");
  after.key = schema::EncodeKey(*after.spec, after.row);
  after.version = {bad.version.hlc + 1, "a"};
  after.vv = schema::VersionVector();
  after.vv.Set("a", after.version.hlc);
  after.pos = {bad.pos.csn, bad.pos.id + 1};
  batch.changes.push_back(bad);
  batch.changes.push_back(after);

  ApplyResult r = b.applier->Apply(batch);
  EXPECT_EQ(r.status, ApplyResult::Status::kApplied);
  EXPECT_EQ(r.failed, 1);
  EXPECT_EQ(r.ack, after.pos);
  EXPECT_EQ(RecordTtl(b, "one.example.com", "A"), 300);
  EXPECT_EQ(RecordTtl(b, "two.example.com", "A"), 300);
  auto rows = b.conn->Query("SELECT tbl, decision, reason FROM zm_conflict");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0].AsText(), "comments");
  EXPECT_EQ(rows[0][1].AsText(), "failed");
  EXPECT_FALSE(rows[0][2].AsText().empty());
}

TEST_P(ApplierTest, ZoneDeleteRemovesEveryChildRow) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  a.w->AddRecord("example.com", "www.example.com", "A", "192.0.2.1");
  a.w->SetMetadata("example.com", "ALSO-NOTIFY", {"192.0.2.53"});
  a.w->AddCryptoKey("example.com", "key", true);
  a.w->AddComment("example.com", "www.example.com", "A", "c", 1);
  a.w->CreateZone("other.example");
  mesh_.Sync(a, b);
  // Only the domains row goes on a (as a cascade or a careless script
  // would): the applier still clears every child table on b.
  a.conn->Execute("DELETE FROM domains WHERE name = 'example.com'");
  mesh_.Sync(a, b);
  for (const char* t : {"records", "domainmetadata", "cryptokeys", "comments"}) {
    EXPECT_EQ(b.Count(std::string("SELECT COUNT(*) FROM ") + t +
                      " WHERE domain_id NOT IN (SELECT id FROM domains)"),
              0)
        << t;
  }
  EXPECT_EQ(b.w->CountRecords("other.example"), 2);
  EXPECT_TRUE(SanityProblems(*b.conn).empty());
}

TEST_P(ApplierTest, RowsWrittenIntoAZoneAfterItsRemoteDeleteAreRemoved) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  mesh_.Sync(a, b);
  const int64_t stale_id = *b.w->ZoneId("example.com");
  a.w->DeleteZone("example.com");
  mesh_.Sync(a, b);
  // A writer on b that looked the zone up before the delete arrived.
  try {
    b.conn->Execute("INSERT INTO cryptokeys (domain_id, flags, active, published, content) "
                    "VALUES (?, 257, ?, ?, 'late key')",
                    {stale_id, Value(true), Value(true)});
  } catch (const db::Error& e) {
    ASSERT_EQ(GetParam(), Dialect::kPostgres) << e.what();  // only its foreign key refuses
    GTEST_SKIP() << "PostgreSQL's foreign key refuses the orphan itself";
  }
  EXPECT_FALSE(SanityProblems(*b.conn).empty());
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM zm_outbox"), 0) << "a row without a zone was captured";
  EXPECT_EQ(b.applier->RemoveOrphansOfDeletedZones(), 1);
  EXPECT_TRUE(SanityProblems(*b.conn).empty());
  mesh_.ExpectConverged();
}

// A node installed on an empty database knows every row has a version and
// inserts rows without a version record at once; one installed on existing
// data must look for the row first, or it would hold it twice (or have the
// insert refused where a unique index exists).
TEST_P(ApplierTest, RowsFromBeforeInstallAreUpdatedNotDuplicated) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM zm_meta WHERE name = 'rows_versioned' AND value = '1'"), 1)
      << "installed on an empty database";
  // A row zonemesh never saw (as if written before install), and the mark
  // install leaves on a database that held rows.
  PdnsWriter(*b.apply_conn).AddTsigKey("xfr", "hmac-sha256", "b2xk");
  b.conn->Execute("UPDATE zm_meta SET value = '0' WHERE name = 'rows_versioned'");
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM zm_outbox"), 0);
  a.w->AddTsigKey("xfr", "hmac-sha256", "bmV3");
  mesh_.Sync(a, b);
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM tsigkeys WHERE name = 'xfr'"), 1);
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM tsigkeys WHERE secret = 'bmV3'"), 1);
  mesh_.ExpectConverged();
}

// The watch of deleted zones lives in the daemon's memory; a daemon killed
// right after a zone delete starts with an empty one. Its start-up sweep
// finds the late writer's rows all the same.
TEST_P(ApplierTest, StartupSweepRemovesRowsOfZonesDeletedBeforeARestart) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  a.w->CreateZone("example.net");
  mesh_.Sync(a, b);
  const int64_t stale_id = *b.w->ZoneId("example.com");
  a.w->DeleteZone("example.com");
  mesh_.Sync(a, b);
  try {
    b.conn->Execute("INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) "
                    "VALUES (?, 'late.example.com', 'A', '192.0.2.1', 300, 0, ?, ?)",
                    {stale_id, Value(false), Value(true)});
  } catch (const db::Error& e) {
    ASSERT_EQ(GetParam(), Dialect::kPostgres) << e.what();  // only its foreign key refuses
    GTEST_SKIP() << "PostgreSQL's foreign key refuses the orphan itself";
  }
  EXPECT_FALSE(SanityProblems(*b.conn).empty());
  // A new applier on b, as after a restart: it watches nothing.
  Applier restarted(*b.apply_conn, *b.policy, "b");
  EXPECT_EQ(restarted.RemoveOrphansOfDeletedZones(), 0);
  EXPECT_EQ(restarted.RemoveAllOrphans(), 1);
  EXPECT_TRUE(SanityProblems(*b.conn).empty());
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM records r JOIN domains d ON d.id = r.domain_id "
                    "WHERE d.name = 'example.net'"),
            a.Count("SELECT COUNT(*) FROM records r JOIN domains d ON d.id = r.domain_id "
                    "WHERE d.name = 'example.net'"))
      << "rows of live zones stay";
  EXPECT_EQ(restarted.RemoveAllOrphans(), 0);
  mesh_.ExpectConverged();
}

TEST_P(ApplierTest, RandomizedWritesOnThreeNodesConverge) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  Node& c = NewNode("c");
  Node* nodes[] = {&a, &b, &c};
  uint32_t seed = 12345;
  auto next = [&seed](uint32_t n) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 8) % n;
  };
  for (int step = 0; step < 150; ++step) {
    Node& n = *nodes[next(3)];
    std::string zone = "z" + std::to_string(next(4)) + ".example";
    bool exists = n.w->ZoneId(zone).has_value();
    switch (next(6)) {
      case 0:
        if (!exists) n.w->CreateZone(zone, next(100));
        break;
      case 1:
        if (exists) n.w->DeleteZone(zone);
        break;
      case 2:
        if (exists)
          n.w->ReplaceRRset(zone, "www." + zone, "A", {"192.0.2." + std::to_string(next(5)), "192.0.2.9"});
        break;
      case 3:
        if (exists) n.w->SetTtl(zone, "www." + zone, "A", 60 + next(100));
        break;
      case 4:
        if (exists) n.w->SetMetadata(zone, "ALSO-NOTIFY", {"192.0.2." + std::to_string(next(3))});
        break;
      case 5:
        if (exists) n.w->SetSoaSerial(zone, next(1000));
        break;
    }
    // Partial, uneven delivery while writes continue.
    if (next(4) == 0) mesh_.Sync(*nodes[next(3)], *nodes[(next(2) + 1) % 3]);
  }
  mesh_.SyncAll();
  mesh_.ExpectConverged();
}

INSTANTIATE_TEST_SUITE_P(AllDatabases, ApplierTest, ::testing::ValuesIn(testing::AllDialects()),
                         [](const auto& info) { return testing::DialectParamName(info.param); });

TEST(MixedDatabases, SqlitePostgresAndMariadbNodesConverge) {
  InprocMesh mesh;
  Node& s = mesh.Add(Dialect::kSqlite, "sq");
  Node& p = mesh.Add(Dialect::kPostgres, "pg");
  Node& m = mesh.Add(Dialect::kMysql, "my");
  s.w->CreateZone("example.com");
  s.w->AddRecord("example.com", "long.example.com", "TXT", std::string(64000, 'a'));
  p.w->CreateZone("example.net");
  p.w->AddSupermaster("2001:db8::53", "ns.example.net", "acct");
  p.w->AddSupermaster("192.0.2.53", "ns.example.net", "acct");
  p.w->AddCryptoKey("example.net", "Private-key-format: v1.2", false);
  m.w->CreateZone("example.org");
  m.w->AddComment("example.org", "www.example.org", "A", "r\xc3\xa9sum\xc3\xa9 \xe2\x9c\x93", 1700000000);
  m.w->AddTsigKey("xfr", "hmac-sha256", "c2VjcmV0");
  mesh.SyncAll();
  mesh.ExpectConverged();
  // And back: edits made where the data arrived travel on.
  m.w->SetTtl("example.com", "long.example.com", "TXT", 42);
  s.w->DeleteZone("example.net");
  p.w->SetMetadata("example.org", "SOA-EDIT-API", {"INCEPTION-INCREMENT"});
  mesh.SyncAll();
  mesh.ExpectConverged();
  EXPECT_EQ(RecordTtl(p, "long.example.com", "TXT"), 42);
  EXPECT_EQ(m.w->Count("domains"), 2);
}

}  // namespace
}  // namespace zonemesh
