// Capture conformance: install, the generated triggers and the outbox, on
// SQLite, PostgreSQL and MariaDB alike.
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "db/open.h"
#include "replicator/installer.h"
#include "replicator/outbox.h"
#include "replicator/wire.h"
#include "schema/key.h"
#include "tests/support/pdns_writes.h"
#include "tests/support/test_db.h"

namespace zonemesh {
namespace {

using db::Dialect;
using db::Value;

struct OutboxRow {
  int64_t id;
  std::optional<int64_t> csn;
  std::string table;
  std::string op;
  std::string key;
  nlohmann::json payload;
  int64_t hlc;
  schema::VersionVector vv;
  schema::Version epoch;
};

class CaptureTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    cfg_ = testing::FreshDatabase(GetParam(), "zm_capture");
    conn_ = db::Open(cfg_);
    Install(*conn_, "n1", /*create_schema=*/true);
    w_ = std::make_unique<testing::PdnsWriter>(*conn_);
  }

  std::vector<OutboxRow> Outbox(int64_t after_id = 0) {
    std::vector<OutboxRow> out;
    for (const db::Row& r : conn_->Query(
             "SELECT id, csn, tbl, op, rkey, payload, hlc, vv, epoch_hlc, epoch_node FROM zm_outbox "
             "WHERE id > ? ORDER BY id",
             {after_id})) {
      out.push_back({r[0].AsInt(), r[1].AsOptInt(), r[2].AsText(), r[3].AsText(), r[4].AsText(),
                     nlohmann::json::parse(r[5].AsText()), r[6].AsInt(),
                     schema::VersionVector::FromJson(r[7].AsText()),
                     {r[8].AsInt(), r[9].AsText()}});
    }
    return out;
  }

  int64_t LastOutboxIdCount() { return conn_->Query("SELECT COUNT(*) FROM zm_outbox")[0][0].AsInt(); }

  int64_t LastOutboxId() {
    auto rows = conn_->Query("SELECT MAX(id) FROM zm_outbox");
    return rows[0][0].IsNull() ? 0 : rows[0][0].AsInt();
  }

  // The key the reference encoder computes from what the trigger captured.
  std::string KeyOf(const OutboxRow& r) {
    const schema::TableSpec* spec = schema::FindTable(r.table);
    std::vector<std::string> problems;
    schema::RowImage row = RowImageFromPayload(*spec, r.payload, &problems);
    EXPECT_TRUE(problems.empty()) << problems.front();
    return schema::EncodeKey(*spec, row);
  }

  db::DatabaseConfig cfg_;
  std::unique_ptr<db::Connection> conn_;
  std::unique_ptr<testing::PdnsWriter> w_;
};

TEST_P(CaptureTest, InstallRefusesADatabaseWithoutPowerDnsTables) {
  auto cfg = testing::FreshDatabase(GetParam(), "zm_capture_empty");
  auto conn = db::Open(cfg);
  try {
    Install(*conn, "n1", /*create_schema=*/false);
    FAIL() << "expected InstallError";
  } catch (const InstallError& e) {
    EXPECT_NE(std::string(e.what()).find("PowerDNS"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(conn->TableExists("zm_outbox"));
  EXPECT_FALSE(conn->TableExists("domains"));
}

TEST_P(CaptureTest, InstallIsIdempotentAndKeepsState) {
  w_->CreateZone("example.com");
  const auto before = Outbox();
  ASSERT_EQ(before.size(), 3u);  // domain, SOA, NS
  Install(*conn_, "n1", /*create_schema=*/false);
  EXPECT_EQ(Outbox().size(), 3u);
  w_->AddRecord("example.com", "www.example.com", "A", "192.0.2.1");
  EXPECT_EQ(Outbox().size(), 4u);
  InstallState st = Inspect(*conn_);
  EXPECT_TRUE(st.installed);
  EXPECT_EQ(st.node_id, "n1");
  EXPECT_TRUE(st.missing_pdns_tables.empty());
}

TEST_P(CaptureTest, InstallForAnotherNodeIdIsRefused) {
  try {
    Install(*conn_, "n2", /*create_schema=*/false);
    FAIL() << "expected InstallError";
  } catch (const InstallError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("\"n1\""), std::string::npos) << what;
    EXPECT_NE(what.find("\"n2\""), std::string::npos) << what;
  }
}

TEST_P(CaptureTest, InstallRefusesATableWithoutAReplicatedColumn) {
  auto cfg = testing::FreshDatabase(GetParam(), "zm_capture_odd");
  auto conn = db::Open(cfg);
  Install(*conn, "n1", /*create_schema=*/true);
  Uninstall(*conn);
  conn->ExecuteDdl("DROP TABLE tsigkeys");
  conn->ExecuteDdl("CREATE TABLE tsigkeys (id INT, name VARCHAR(255), secret VARCHAR(255))");
  try {
    Install(*conn, "n1", /*create_schema=*/false);
    FAIL() << "expected InstallError";
  } catch (const InstallError& e) {
    EXPECT_NE(std::string(e.what()).find("algorithm"), std::string::npos) << e.what();
  }
}

TEST_P(CaptureTest, CapturesEveryTableAndOperation) {
  w_->CreateZone("example.com");
  w_->AddRecord("example.com", "www.example.com", "A", "192.0.2.1");
  w_->SetTtl("example.com", "www.example.com", "A", 600);
  w_->DeleteRecord("example.com", "www.example.com", "A", "192.0.2.1");
  w_->SetMetadata("example.com", "ALSO-NOTIFY", {"192.0.2.53"});
  w_->AddCryptoKey("example.com", "Private-key-format: v1.2", true);
  conn_->Execute("UPDATE cryptokeys SET active = ?", {Value(false)});
  w_->AddComment("example.com", "www.example.com", "A", "web server", 1700000000);
  conn_->Execute("DELETE FROM comments");
  w_->AddTsigKey("xfr-key", "hmac-sha256", "c2VjcmV0");
  conn_->Execute("UPDATE tsigkeys SET secret = ?", {"bmV3"});
  w_->DeleteTsigKey("xfr-key");
  w_->AddSupermaster("192.0.2.10", "ns.example.net", "acct");
  conn_->Execute("DELETE FROM supermasters");
  conn_->Execute("UPDATE domains SET account = ? WHERE name = ?", {"customer-1", "example.com"});

  std::vector<std::string> got;
  for (const auto& r : Outbox()) got.push_back(r.table + " " + r.op + " " + r.key);
  std::vector<std::string> want = {
      "domains U example.com",
      "records U example.com|example.com|SOA|%N|%N",
      "records U example.com|example.com|NS|ns1.example.com|0",
      "records U example.com|www.example.com|A|192.0.2.1|0",
      "records U example.com|www.example.com|A|192.0.2.1|0",
      "records D example.com|www.example.com|A|192.0.2.1|0",
      "domainmetadata U example.com|ALSO-NOTIFY|192.0.2.53",
      "cryptokeys U example.com|Private-key-format: v1.2",
      "cryptokeys U example.com|Private-key-format: v1.2",
      "comments U example.com|www.example.com|A|1700000000|admin|web server",
      "comments D example.com|www.example.com|A|1700000000|admin|web server",
      "tsigkeys U xfr-key|hmac-sha256",
      "tsigkeys U xfr-key|hmac-sha256",
      "tsigkeys D xfr-key|hmac-sha256",
      "supermasters U 192.0.2.10|ns.example.net",
      "supermasters D 192.0.2.10|ns.example.net",
      "domains U example.com",
  };
  EXPECT_EQ(got, want);

  // Values travel with their types, the zone by name instead of domain_id.
  auto rows = Outbox();
  const auto& ttl_update = rows[4];
  EXPECT_EQ(ttl_update.payload["zone"], "example.com");
  EXPECT_FALSE(ttl_update.payload.contains("domain_id"));
  std::vector<std::string> problems;
  schema::RowImage image =
      RowImageFromPayload(*schema::FindTable("records"), ttl_update.payload, &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(image.values[3], Value(int64_t{600}));  // ttl
  EXPECT_EQ(image.values[5], Value(false));         // disabled
  EXPECT_EQ(image.values[7], Value(true));          // auth
  const auto& key_update = rows[8];
  schema::RowImage key =
      RowImageFromPayload(*schema::FindTable("cryptokeys"), key_update.payload, &problems);
  EXPECT_EQ(key.values[2], Value(false));  // active after the update
}

TEST_P(CaptureTest, NodeLocalColumnsProduceNoEvents) {
  w_->CreateZone("example.com");
  int64_t last = LastOutboxId();
  conn_->Execute("UPDATE domains SET notified_serial = ? WHERE name = ?", {int64_t{2024010101}, "example.com"});
  conn_->Execute("UPDATE domains SET last_check = ?", {int64_t{1700000000}});
  EXPECT_TRUE(Outbox(last).empty());
  conn_->Execute("UPDATE domains SET master = ?", {"192.0.2.1"});
  EXPECT_EQ(Outbox(last).size(), 1u);
}

TEST_P(CaptureTest, ApplyingSessionIsNotCapturedOthersAre) {
  w_->CreateZone("example.com");
  int64_t last = LastOutboxId();
  auto applier = db::Open(cfg_);
  applier->SetApplying(true);
  testing::PdnsWriter aw(*applier);
  aw.AddRecord("example.com", "applied.example.com", "A", "192.0.2.7");
  aw.DeleteRecord("example.com", "www.example.com", "A", "none");
  EXPECT_TRUE(Outbox(last).empty());
  // The flag is per session: the writer's session still captures.
  w_->AddRecord("example.com", "local.example.com", "A", "192.0.2.8");
  ASSERT_EQ(Outbox(last).size(), 1u);
  EXPECT_EQ(Outbox(last)[0].key, "example.com|local.example.com|A|192.0.2.8|0");
  applier->SetApplying(false);
  aw.AddRecord("example.com", "again.example.com", "A", "192.0.2.9");
  EXPECT_EQ(Outbox(last).size(), 2u);
}

TEST_P(CaptureTest, TriggerKeysEqualTheReferenceEncoding) {
  w_->CreateZone("example.com");
  w_->AddRecord("example.com", "txt.example.com", "TXT", "\"a|b%c\" \"50% off|now\"");
  w_->AddRecord("example.com", "cname.example.com", "CNAME", "target.example.com");
  w_->AddRecord("example.com", "mx.example.com", "MX", "10 mail.example.com");
  // An empty non-terminal row as rectify writes it: type and content NULL.
  conn_->Execute(
      "INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, ordername, auth) "
      "VALUES (?, ?, NULL, NULL, NULL, NULL, ?, ?, ?)",
      {*w_->ZoneId("example.com"), "ent.example.com", Value(false), "ent", Value(true)});
  w_->AddRecord("example.com", "long.example.com", "TXT", std::string(64000, 'x'));
  w_->SetMetadata("example.com", "SOA-EDIT-API", {"DEFAULT"});
  w_->AddComment("example.com", "www.example.com", "A", "caf\xc3\xa9 \xe2\x9c\x93 |%", 1700000001);
  w_->AddTsigKey("k|1", "hmac-sha256", "s");
  w_->AddSupermaster("2001:db8::1", "ns.example.net", "acct");
  auto rows = Outbox();
  ASSERT_EQ(rows.size(), 12u);  // 3 from CreateZone
  for (const auto& r : rows) EXPECT_EQ(r.key, KeyOf(r)) << r.table;
  EXPECT_EQ(rows[4].key, "example.com|cname.example.com|CNAME|%N|%N");
  EXPECT_EQ(rows[6].key, "example.com|ent.example.com|%N|%N|%N");
  EXPECT_EQ(rows[8].key, "example.com|SOA-EDIT-API|%N");
}

TEST_P(CaptureTest, UpdateThatChangesTheKeyIsDeletePlusUpsert) {
  w_->CreateZone("example.com");
  w_->AddRecord("example.com", "www.example.com", "A", "192.0.2.1");
  int64_t last = LastOutboxId();
  conn_->Execute("UPDATE records SET content = ? WHERE content = ?", {"192.0.2.2", "192.0.2.1"});
  auto rows = Outbox(last);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].op, "D");
  EXPECT_EQ(rows[0].key, "example.com|www.example.com|A|192.0.2.1|0");
  EXPECT_EQ(rows[1].op, "U");
  EXPECT_EQ(rows[1].key, "example.com|www.example.com|A|192.0.2.2|0");
  // A single-valued type keeps its key when its content changes.
  last = LastOutboxId();
  w_->SetSoaSerial("example.com", 2);
  rows = Outbox(last);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].op, "U");
  EXPECT_EQ(rows[0].key, "example.com|example.com|SOA|%N|%N");
}

TEST_P(CaptureTest, DeleteIsCapturedOnlyWhenNoDuplicateRemains) {
  w_->CreateZone("example.com");
  w_->AddRecord("example.com", "dup.example.com", "A", "192.0.2.1");
  w_->AddRecord("example.com", "dup.example.com", "A", "192.0.2.1");
  int64_t last = LastOutboxId();
  auto ids = conn_->Query("SELECT id FROM records WHERE name = ? ORDER BY id", {"dup.example.com"});
  ASSERT_EQ(ids.size(), 2u);
  conn_->Execute("DELETE FROM records WHERE id = ?", {ids[0][0]});
  EXPECT_TRUE(Outbox(last).empty());
  conn_->Execute("DELETE FROM records WHERE id = ?", {ids[1][0]});
  ASSERT_EQ(Outbox(last).size(), 1u);
  EXPECT_EQ(Outbox(last)[0].op, "D");
}

TEST_P(CaptureTest, VersionsGrowAndVectorsCarryTheLocalNode) {
  w_->CreateZone("example.com");
  w_->AddRecord("example.com", "www.example.com", "A", "192.0.2.1");
  w_->SetTtl("example.com", "www.example.com", "A", 60);
  w_->SetTtl("example.com", "www.example.com", "A", 61);
  auto rows = Outbox();
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_LT(rows[3].hlc, rows[4].hlc);
  EXPECT_LT(rows[4].hlc, rows[5].hlc);
  for (const auto& r : rows) {
    EXPECT_EQ(r.vv.Get("n1"), r.hlc);
    EXPECT_EQ(r.vv.entries().size(), 1u);
  }
  auto rv = conn_->Query("SELECT hlc, node, clock, deleted FROM zm_rowver WHERE tbl = 'records' AND rkey = ?",
                         {"example.com|www.example.com|A|192.0.2.1|0"});
  ASSERT_EQ(rv.size(), 1u);
  EXPECT_EQ(rv[0][0].AsInt(), rows[5].hlc);
  EXPECT_EQ(rv[0][1].AsText(), "n1");
  EXPECT_EQ(rv[0][3].AsInt(), 0);
}

TEST_P(CaptureTest, ZoneDeleteStartsANewIncarnation) {
  w_->CreateZone("example.com");
  w_->DeleteZone("example.com");
  auto rows = Outbox();
  const OutboxRow& del = rows.back();
  ASSERT_EQ(del.table, "domains");
  ASSERT_EQ(del.op, "D");
  EXPECT_EQ(del.epoch, (schema::Version{del.hlc, "n1"}));
  int64_t last = LastOutboxId();
  w_->CreateZone("example.com");
  w_->AddRecord("example.com", "www.example.com", "A", "192.0.2.1");
  for (const auto& r : Outbox(last)) EXPECT_EQ(r.epoch, del.epoch) << r.table << " " << r.key;
  auto tomb = conn_->Query("SELECT deleted FROM zm_rowver WHERE tbl = 'domains' AND rkey = 'example.com'");
  EXPECT_EQ(tomb[0][0].AsInt(), 0);
}

TEST_P(CaptureTest, WritersNeedNoRightsOnZonemeshTables) {
  if (GetParam() != Dialect::kPostgres) GTEST_SKIP() << "MySQL triggers run as their definer";
  // A PowerDNS role with rights on the PowerDNS tables only.
  const std::string role = "zm_pdns_" + std::to_string(getpid());
  conn_->ExecuteDdl("DROP ROLE IF EXISTS " + role);
  conn_->ExecuteDdl("CREATE ROLE " + role + " LOGIN");
  conn_->ExecuteDdl("GRANT SELECT, INSERT, UPDATE, DELETE ON domains, records, domainmetadata, "
                    "cryptokeys, comments, tsigkeys, supermasters TO " + role);
  conn_->ExecuteDdl("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO " + role);
  db::DatabaseConfig as_pdns = cfg_;
  as_pdns.conninfo = cfg_.conninfo + " user=" + role;
  {
    auto pdns = db::Open(as_pdns);
    EXPECT_THROW(pdns->Query("SELECT COUNT(*) FROM zm_outbox"), db::Error);
    testing::PdnsWriter w(*pdns);
    w.CreateZone("example.com");
    w.AddRecord("example.com", "www.example.com", "A", "192.0.2.1");
  }
  EXPECT_EQ(Outbox().size(), 4u);
  conn_->ExecuteDdl("DROP OWNED BY " + role);
  conn_->ExecuteDdl("DROP ROLE " + role);
}

TEST_P(CaptureTest, RowsWithoutAZoneAreNotCaptured) {
  w_->CreateZone("example.com");
  int64_t last = LastOutboxId();
  conn_->Execute(
      "INSERT INTO records (domain_id, name, type, content, ttl) VALUES (NULL, 'x.invalid', 'A', "
      "'192.0.2.1', 60)");
  EXPECT_TRUE(Outbox(last).empty());
  if (GetParam() != Dialect::kPostgres) {  // PostgreSQL's foreign key forbids it
    conn_->Execute(
        "INSERT INTO records (domain_id, name, type, content, ttl) VALUES (999999, 'y.invalid', "
        "'A', '192.0.2.1', 60)");
    EXPECT_TRUE(Outbox(last).empty());
  }
}

TEST_P(CaptureTest, StampingFollowsCommitsNotInsertOrder) {
  if (GetParam() == Dialect::kSqlite) GTEST_SKIP() << "SQLite has one writer at a time";
  w_->CreateZone("example.com");
  zonemesh::Outbox box(*conn_, "n1");
  ASSERT_EQ(box.StampRound(), 3);
  const Position caught_up = box.LastPosition();

  // A takes an outbox id first and stays open; B commits after it.
  auto a = db::Open(cfg_);
  auto b = db::Open(cfg_);
  testing::PdnsWriter wa(*a), wb(*b);
  a->Begin();
  wa.AddRecord("example.com", "a.example.com", "A", "192.0.2.1");
  wb.AddRecord("example.com", "b.example.com", "A", "192.0.2.2");

  ASSERT_EQ(box.StampRound(), 1);
  Batch first = box.ReadBatch(caught_up, 100, 1 << 20);
  ASSERT_EQ(first.changes.size(), 1u);
  EXPECT_EQ(first.changes[0].key, "example.com|b.example.com|A|192.0.2.2|0");
  const Position after_b = first.changes[0].pos;

  a->Commit();
  ASSERT_EQ(box.StampRound(), 1);
  Batch second = box.ReadBatch(after_b, 100, 1 << 20);
  ASSERT_EQ(second.changes.size(), 1u) << "A's change, inserted before B's, must still be read";
  EXPECT_EQ(second.changes[0].key, "example.com|a.example.com|A|192.0.2.1|0");
  EXPECT_GT(second.changes[0].pos, after_b);
  EXPECT_LT(second.changes[0].pos.id, after_b.id);  // its id is older, its round newer
}

TEST_P(CaptureTest, ARoundHoldsWholeTransactions) {
  w_->CreateZone("a.example");
  w_->CreateZone("b.example");
  zonemesh::Outbox box(*conn_, "n1");
  EXPECT_EQ(box.StampRound(), 6);
  EXPECT_EQ(box.StampRound(), 0);
  w_->ReplaceRRset("a.example", "www.a.example", "A", {"192.0.2.1", "192.0.2.2", "192.0.2.3"});
  EXPECT_EQ(box.StampRound(), 3);
  auto csns = conn_->Query("SELECT DISTINCT csn FROM zm_outbox ORDER BY csn");
  ASSERT_EQ(csns.size(), 2u);

  // A batch never ends inside a round unless the round alone is too big.
  Batch b = box.ReadBatch({}, 4, 1 << 20);
  EXPECT_FALSE(b.round_complete);  // the first round has 6 changes, more than 4
  ASSERT_EQ(b.changes.size(), 4u);
  Batch rest = box.ReadBatch(b.changes.back().pos, 4, 1 << 20);
  EXPECT_TRUE(rest.round_complete);
  EXPECT_EQ(rest.changes.size(), 2u);  // the rest of round 1; round 2 would not fit whole
  Batch last = box.ReadBatch(rest.changes.back().pos, 4, 1 << 20);
  EXPECT_TRUE(last.round_complete);
  EXPECT_EQ(last.changes.size(), 3u);
}

TEST_P(CaptureTest, ExpiringHistoryKeepsZoneIncarnations) {
  w_->CreateZone("example.com");
  w_->AddRecord("example.com", "gone.example.com", "A", "192.0.2.1");
  w_->DeleteRecord("example.com", "gone.example.com", "A", "192.0.2.1");
  w_->CreateZone("deleted.example");
  w_->DeleteZone("deleted.example");
  zonemesh::Outbox box(*conn_, "n1");
  box.StampRound();
  const Position last = box.LastPosition();
  const int64_t future = conn_->Query("SELECT MAX(hlc) FROM zm_outbox")[0][0].AsInt() + 1;
  auto tombstones = [&](const std::string& tbl) {
    return conn_->Query("SELECT COUNT(*) FROM zm_rowver WHERE deleted = 1 AND tbl = ?", {tbl})[0][0].AsInt();
  };
  ASSERT_GE(tombstones("records"), 1);
  ASSERT_EQ(tombstones("domains"), 1);
  EXPECT_GE(box.ExpireTombstones(future), 1);
  EXPECT_EQ(tombstones("records"), 0);
  EXPECT_EQ(tombstones("domains"), 1) << "a zone's incarnation must never be forgotten";
  const int64_t rows = LastOutboxIdCount();
  EXPECT_EQ(box.ExpireHistory(future), rows);
  EXPECT_EQ(conn_->Query("SELECT COUNT(*) FROM zm_outbox")[0][0].AsInt(), 0);
  EXPECT_EQ(box.PurgedUpTo(), last);
  EXPECT_EQ(box.LastPosition(), last) << "an emptied outbox still ends where it ended";
  // Live rows' versions stay.
  EXPECT_GE(conn_->Query("SELECT COUNT(*) FROM zm_rowver WHERE deleted = 0")[0][0].AsInt(), 3);
}

TEST_P(CaptureTest, UninstallRemovesExactlyWhatInstallAdded) {
  w_->CreateZone("example.com");
  Uninstall(*conn_);
  for (const char* t : {"zm_meta", "zm_outbox", "zm_rowver", "zm_peer", "zm_applied", "zm_stage",
                        "zm_parked", "zm_conflict"}) {
    EXPECT_FALSE(conn_->TableExists(t)) << t;
  }
  EXPECT_EQ(w_->Count("domains"), 1);
  EXPECT_EQ(w_->Count("records"), 2);
  // Writes work without the triggers.
  w_->AddRecord("example.com", "www.example.com", "A", "192.0.2.1");
  w_->DeleteZone("example.com");
  EXPECT_EQ(w_->Count("domains"), 0);
  // And the triggers are gone from the catalog.
  std::string q;
  switch (GetParam()) {
    case Dialect::kSqlite:
      q = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'";
      break;
    case Dialect::kPostgres:
      q = "SELECT COUNT(*) FROM pg_trigger WHERE NOT tgisinternal";
      break;
    case Dialect::kMysql:
      q = "SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = DATABASE()";
      break;
  }
  EXPECT_EQ(conn_->Query(q)[0][0].AsInt(), 0);
}

INSTANTIATE_TEST_SUITE_P(AllDatabases, CaptureTest, ::testing::ValuesIn(testing::AllDialects()),
                         [](const auto& info) { return testing::DialectParamName(info.param); });

}  // namespace
}  // namespace zonemesh
