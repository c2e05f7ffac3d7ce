// Anti-entropy between real daemons: divergence made behind zonemesh's back
// (rows changed with the applying flag set, so nothing is captured and
// replication never carries it) is reported and repaired by the periodic
// comparison, on every database, without touching the rows that agree.
// The waits have generous deadlines; nothing asserts how fast.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <thread>
#include <sstream>
#include <string>

#include "tests/support/cluster.h"
#include "tests/support/mesh_checks.h"
#include "tests/support/pdns_writes.h"
#include "tests/support/proxy.h"
#include "tests/support/test_db.h"

namespace zonemesh::testing {
namespace {

using db::Dialect;
using nlohmann::json;

// Compare every second; rows are settled a second after their last change;
// trees are hashed again every second (writes behind zonemesh's back are
// seen only that way).
const json kSettings = {
    {"anti_entropy", {{"interval_seconds", 1}, {"settle_seconds", 1}, {"rehash_seconds", 1}}}};

// (tbl, kid) -> "hlc@node" of the version records of one zone's rows.
std::map<std::string, std::string> Versions(db::Connection& c, const std::string& zone) {
  std::map<std::string, std::string> out;
  for (const db::Row& r : c.Query("SELECT tbl, rkey, hlc, node FROM zm_rowver WHERE zone = ?", {zone})) {
    out[r[0].AsText() + " " + r[1].AsText()] = r[2].AsText() + "@" + r[3].AsText();
  }
  return out;
}

// id -> content of one zone's records.
std::map<int64_t, std::string> RecordIds(db::Connection& c, const std::string& zone) {
  std::map<int64_t, std::string> out;
  for (const db::Row& r : c.Query("SELECT r.id, r.name, r.type, r.content, r.ttl FROM records r JOIN domains d "
                                  "ON d.id = r.domain_id WHERE d.name = ?",
                                  {zone})) {
    out[r[0].AsInt()] = r[1].AsText() + " " + r[2].AsText() + " " + r[3].AsText() + " " + r[4].AsText();
  }
  return out;
}

int64_t Serial(db::Connection& c, const std::string& zone) {
  auto rows = c.Query("SELECT r.content FROM records r JOIN domains d ON d.id = r.domain_id WHERE d.name = ? "
                      "AND r.type = 'SOA'",
                      {zone});
  if (rows.size() != 1) return -1;
  std::istringstream in(rows[0][0].AsText());
  std::string mname, rname;
  int64_t serial = -1;
  in >> mname >> rname >> serial;
  return serial;
}

double MetricValue(const std::string& metrics, const std::string& series) {
  size_t at = metrics.find(series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(metrics.substr(at + series.size() + 1));
}

// A figure of the node's anti-entropy with `peer` in /status (-1: none yet).
int64_t AeFigure(Node& n, const std::string& peer, const std::string& field) {
  const json p = n.Status()["anti_entropy"]["peers"][peer];
  return p.is_object() ? p.value(field, int64_t{-1}) : -1;
}

class AntiEntropyTest : public ::testing::TestWithParam<Dialect> {};

TEST_P(AntiEntropyTest, DivergenceBehindZonemeshsBackIsReportedAndRepaired) {
  Cluster mesh(2, "anti_entropy", kSettings, {GetParam(), GetParam()});
  Node &a = mesh[0], &b = mesh[1];
  mesh.StartAll();
  ASSERT_TRUE(mesh.WaitForConnected());
  {
    auto c = a.Connect();
    PdnsWriter w(*c);
    w.CreateZone("same.test");
    w.AddRecord("same.test", "www.same.test", "A", "192.0.2.1");
    w.AddRecord("same.test", "mail.same.test", "A", "192.0.2.2");
    w.CreateZone("drift.test");
    w.AddRecord("drift.test", "www.drift.test", "A", "192.0.2.10");
    w.AddRecord("drift.test", "gone.drift.test", "A", "192.0.2.11");
    w.AddRecord("drift.test", "keep.drift.test", "TXT", "\"agrees\"");
  }
  ASSERT_TRUE(mesh.WaitForConvergence());
  ASSERT_TRUE(mesh.WaitUntil("a first comparison on both nodes", [&] {
    for (Node* n : {&a, &b}) {
      json ae = n->Status()["anti_entropy"]["peers"];
      const std::string peer = n == &a ? "b" : "a";
      if (!ae.contains(peer) || ae[peer].value("comparisons", 0) < 1) return false;
    }
    return true;
  }));
  EXPECT_TRUE(a.Status()["anti_entropy"]["peers"]["b"]["divergent_zones"].empty());

  auto ca = a.Connect();
  auto cb = b.Connect();
  const auto same_versions_a = Versions(*ca, "same.test");
  const auto same_ids_a = RecordIds(*ca, "same.test");
  const auto same_ids_b = RecordIds(*cb, "same.test");
  const int64_t serial_before = Serial(*cb, "drift.test");
  ASSERT_GT(serial_before, 0);

  // Behind zonemesh's back on b: one record's TTL changed, one deleted.
  // Nothing is captured; replication alone would never notice.
  {
    auto c = b.Connect();
    c->SetApplying(true);
    WithTransaction(*c, [&] {
      ASSERT_EQ(c->Execute("UPDATE records SET ttl = 999 WHERE name = 'www.drift.test' AND type = 'A'"), 1);
      ASSERT_EQ(c->Execute("DELETE FROM records WHERE name = 'gone.drift.test'"), 1);
    });
  }
  ASSERT_TRUE(mesh.WaitUntil("b reports drift.test differing from a", [&] {
    return b.Log().find("anti-entropy: zone drift.test differs from peer a") != std::string::npos;
  }));
  ASSERT_TRUE(mesh.WaitForConvergence());
  ASSERT_TRUE(mesh.WaitUntil("both nodes say drift.test agrees again", [&] {
    return a.Status()["anti_entropy"]["peers"]["b"]["divergent_zones"].empty() &&
           b.Status()["anti_entropy"]["peers"]["a"]["divergent_zones"].empty();
  }));

  // The deleted record is back on b; the TTL is one side's value on both.
  EXPECT_EQ(cb->Query("SELECT COUNT(*) FROM records WHERE name = 'gone.drift.test'")[0][0].AsInt(), 1);
  const int64_t ttl_a =
      ca->Query("SELECT ttl FROM records WHERE name = 'www.drift.test' AND type = 'A'")[0][0].AsInt();
  const int64_t ttl_b =
      cb->Query("SELECT ttl FROM records WHERE name = 'www.drift.test' AND type = 'A'")[0][0].AsInt();
  EXPECT_EQ(ttl_a, ttl_b);
  EXPECT_TRUE(ttl_a == 300 || ttl_a == 999) << ttl_a;
  // The repaired zone's serial rose, on both nodes alike (a secondary of
  // either transfers the repair).
  EXPECT_GT(Serial(*cb, "drift.test"), serial_before);
  EXPECT_EQ(Serial(*ca, "drift.test"), Serial(*cb, "drift.test"));
  // Rows that agreed were not touched.
  EXPECT_EQ(Versions(*ca, "same.test"), same_versions_a);
  EXPECT_EQ(RecordIds(*ca, "same.test"), same_ids_a);
  EXPECT_EQ(RecordIds(*cb, "same.test"), same_ids_b);
  // Counted where an operator looks.
  const std::string metrics = b.Http("GET", "/metrics").body;
  EXPECT_GE(MetricValue(metrics, "zonemesh_anti_entropy_rows_repaired_total{node=\"b\",peer=\"a\"}"), 1)
      << metrics;
  EXPECT_EQ(MetricValue(metrics, "zonemesh_anti_entropy_divergent_zones{node=\"b\",peer=\"a\"}"), 0)
      << metrics;
  EXPECT_NE(b.Log().find("anti-entropy: zone drift.test agrees with peer a again"), std::string::npos)
      << b.LogTail();
  CommandResult st = RunZonemesh({"status", "--config", b.config_path()});
  EXPECT_EQ(st.exit_code, 0) << st.Describe();
  EXPECT_NE(st.out.find("anti-entropy every 1 s"), std::string::npos) << st.out;
  EXPECT_EQ(st.out.find("DIFFERS"), std::string::npos) << st.out;
}

TEST_P(AntiEntropyTest, AZoneMissingOnOneNodeIsRestoredAndADeletedOneStaysDeleted) {
  Cluster mesh(2, "anti_entropy_zones", kSettings, {GetParam(), GetParam()});
  Node &a = mesh[0], &b = mesh[1];
  mesh.StartAll();
  ASSERT_TRUE(mesh.WaitForConnected());
  {
    auto c = a.Connect();
    PdnsWriter w(*c);
    w.CreateZone("lost.test");
    w.AddRecord("lost.test", "www.lost.test", "A", "192.0.2.1");
    w.CreateZone("deleted.test");
  }
  ASSERT_TRUE(mesh.WaitForConvergence());
  // A zone deleted the normal way stays deleted: its tombstone decides.
  {
    auto c = a.Connect();
    PdnsWriter(*c).DeleteZone("deleted.test");
  }
  ASSERT_TRUE(mesh.WaitForConvergence());
  // b loses a whole zone behind zonemesh's back.
  {
    auto c = b.Connect();
    c->SetApplying(true);
    const int64_t id = *PdnsWriter(*c).ZoneId("lost.test");
    WithTransaction(*c, [&] {
      c->Execute("DELETE FROM records WHERE domain_id = ?", {id});
      c->Execute("DELETE FROM domains WHERE id = ?", {id});
    });
  }
  ASSERT_TRUE(mesh.WaitUntil("lost.test is back on b", [&] {
    auto c = b.Connect();
    return c->Query("SELECT COUNT(*) FROM records r JOIN domains d ON d.id = r.domain_id WHERE d.name = "
                    "'lost.test' AND r.name = 'www.lost.test'")[0][0]
               .AsInt() == 1;
  }));
  ASSERT_TRUE(mesh.WaitForConvergence());
  auto cb = b.Connect();
  EXPECT_FALSE(PdnsWriter(*cb).ZoneId("deleted.test").has_value());
}

// Changes held up on a link are in flight, not divergence: the node that
// lacks them compares with their origin meanwhile and neither reports nor
// "repairs" them; replication delivers them once the link works.
TEST(AntiEntropy, ChangesHeldUpOnALinkAreNotDivergence) {
  const json settings = {{"heartbeat_interval_ms", 200},
                         {"link_timeout_ms", 1500},
                         {"anti_entropy", {{"interval_seconds", 1}, {"settle_seconds", 8}, {"rehash_seconds", 1}}}};
  Cluster mesh(2, "anti_entropy_live", settings, {Dialect::kSqlite, Dialect::kSqlite});
  Node &a = mesh[0], &b = mesh[1];
  TcpProxy ab(b.port());  // a's pushes to b
  a.WriteConfig({{"b", ab.url()}}, settings);
  mesh.StartAll();
  ASSERT_TRUE(mesh.WaitForConnected());
  auto ca = a.Connect();
  PdnsWriter wa(*ca);
  wa.CreateZone("live.test");
  ASSERT_TRUE(mesh.WaitForConvergence());
  ab.Block(TcpProxy::BlockMode::kBlackhole);
  for (int i = 0; i < 20; ++i) {
    wa.AddRecord("live.test", "h" + std::to_string(i) + ".live.test", "A", "192.0.2." + std::to_string(i + 1));
  }
  // b compares with a (directly) while a's changes cannot reach it.
  const int64_t before = std::max<int64_t>(0, AeFigure(b, "a", "comparisons"));
  ASSERT_TRUE(mesh.WaitUntil("b compares with a twice while the link is blackholed",
                             [&] { return AeFigure(b, "a", "comparisons") >= before + 2; }));
  auto cb = b.Connect();
  EXPECT_EQ(cb->Query("SELECT COUNT(*) FROM records WHERE name LIKE 'h%.live.test'")[0][0].AsInt(), 0)
      << "the changes were pulled, not left in flight";
  ab.Unblock();
  ASSERT_TRUE(mesh.WaitForConvergence());
  EXPECT_EQ(b.Log().find("differs from peer"), std::string::npos) << b.LogTail();
  EXPECT_EQ(AeFigure(b, "a", "rows_repaired"), 0);
}

// A node restored from an old backup: what it wrote after the backup is
// gone from it, and what it writes after the restore reuses stream
// positions its peer already acknowledged. Both sides end with every row.
TEST(AntiEntropy, ANodeRestoredFromAnOldBackupEndsWithEveryRow) {
  Cluster mesh(2, "anti_entropy_backup", kSettings, {Dialect::kSqlite, Dialect::kSqlite});
  Node &a = mesh[0], &b = mesh[1];
  mesh.StartAll();
  ASSERT_TRUE(mesh.WaitForConnected());
  {
    auto c = a.Connect();
    PdnsWriter(*c).CreateZone("backup.test");
  }
  ASSERT_TRUE(mesh.WaitForConvergence());
  ASSERT_EQ(b.Stop(), 0);
  const std::string backup = b.db_path() + ".backup";
  std::filesystem::copy_file(b.db_path(), backup, std::filesystem::copy_options::overwrite_existing);
  b.Start();
  {
    auto c = b.Connect();
    PdnsWriter(*c).AddRecord("backup.test", "lost.backup.test", "A", "192.0.2.1");
  }
  ASSERT_TRUE(mesh.WaitForConvergence());
  ASSERT_EQ(b.Stop(), 0);
  for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(b.db_path() + suffix);
  std::filesystem::copy_file(backup, b.db_path(), std::filesystem::copy_options::overwrite_existing);
  b.Start();
  {
    auto c = b.Connect();
    PdnsWriter(*c).AddRecord("backup.test", "after.backup.test", "A", "192.0.2.2");
  }
  ASSERT_TRUE(mesh.WaitUntil("both records on both nodes", [&] {
    for (Node* n : {&a, &b}) {
      auto c = n->Connect();
      if (c->Query("SELECT COUNT(*) FROM records WHERE name IN ('lost.backup.test', 'after.backup.test')")[0][0]
              .AsInt() != 2) {
        return false;
      }
    }
    return true;
  }, std::chrono::seconds(90)));
  ASSERT_TRUE(mesh.WaitForConvergence());
}

INSTANTIATE_TEST_SUITE_P(AllDatabases, AntiEntropyTest, ::testing::ValuesIn(AllDialects()),
                         [](const auto& info) { return DialectParamName(info.param); });

}  // namespace
}  // namespace zonemesh::testing
