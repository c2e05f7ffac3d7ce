// New and stale nodes: `zonemesh join`, the automatic join of a daemon
// starting on an empty database, and the resync of a node that was away
// longer than the mesh keeps history.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "tests/support/cluster.h"
#include "tests/support/pdns_writes.h"

namespace zonemesh::testing {
namespace {

using nlohmann::json;

int64_t Count(Node& n, const std::string& sql) { return n.Connect()->Query(sql)[0][0].AsInt(); }

// Inserts `n` records into a new zone in one transaction (fast bulk load).
void BulkZone(Node& node, const std::string& zone, int n) {
  auto c = node.Connect();
  PdnsWriter w(*c);
  w.CreateZone(zone);
  const int64_t id = *w.ZoneId(zone);
  db::Transaction tx(*c);
  for (int i = 0; i < n; ++i) {
    c->Execute("INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) "
               "VALUES (?, ?, 'A', ?, 300, 0, ?, ?)",
               {id, "h" + std::to_string(i) + "." + zone,
                "10." + std::to_string((i >> 16) & 255) + "." + std::to_string((i >> 8) & 255) + "." +
                    std::to_string(i & 255),
                db::Value(false), db::Value(true)});
  }
  tx.Commit();
}

// A writer making small changes on `node` until stopped.
class BackgroundWriter {
 public:
  BackgroundWriter(Node& node, std::string zone) : node_(node), zone_(std::move(zone)) {
    thread_ = std::thread([this] {
      auto c = node_.Connect();
      PdnsWriter w(*c);
      for (int i = 0; !stop_; ++i) {
        try {
          w.AddRecord(zone_, "live" + std::to_string(i) + "." + zone_, "TXT", "\"" + node_.id() + "\"");
          written_++;
        } catch (const db::Error&) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  }
  ~BackgroundWriter() { Stop(); }
  int Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return written_;
  }

 private:
  Node& node_;
  std::string zone_;
  std::atomic<bool> stop_{false};
  std::atomic<int> written_{0};
  std::thread thread_;
};

TEST(Join, EmptyNodeJoinsFromAPeerWith100kRecordsWhileWritesContinue) {
  Cluster mesh(2, "join100k", json{{"batch_max_changes", 2000}});
  Node& a = mesh[0];
  Node& b = mesh[1];
  // An existing PowerDNS database: 99,000 records written before zonemesh
  // was installed (never versioned), 1,000 captured since.
  ASSERT_EQ(RunZonemesh({"uninstall", "--config", a.config_path()}).exit_code, 0);
  BulkZone(a, "big.example", 99000);
  ASSERT_EQ(RunZonemesh({"install", "--config", a.config_path()}).exit_code, 0);
  BulkZone(a, "recent.example", 1000);
  a.Start();
  {
    auto conn = a.Connect();
    PdnsWriter(*conn).CreateZone("live.example");
  }
  ASSERT_TRUE(mesh.WaitUntil("a stamped its history", [&] {
    return Count(a, "SELECT COUNT(*) FROM zm_outbox WHERE csn IS NULL") == 0;
  }));
  const int64_t history = Count(a, "SELECT MAX(id) FROM zm_outbox");
  BackgroundWriter writer(a, "live.example");

  CommandResult r = RunZonemesh({"join", "--config", b.config_path(), "--from", "a"}, std::chrono::seconds(600));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("joined from a"), std::string::npos) << r.out;
  EXPECT_GE(Count(b, "SELECT COUNT(*) FROM records"), 100000);
  // b holds a's stream past everything a captured before the join: that
  // history is not replayed to it.
  EXPECT_GE(Count(b, "SELECT id FROM zm_applied WHERE origin = 'a'"), history);
  b.Start();
  // Writes go on across the join and after it.
  ASSERT_TRUE(mesh.WaitUntil("b receives live writes", [&] {
    return Count(b, "SELECT COUNT(*) FROM records WHERE name LIKE 'live%'") > 5;
  }));
  EXPECT_GT(writer.Stop(), 0);
  ASSERT_TRUE(mesh.WaitForConvergence(std::chrono::seconds(300)));
  EXPECT_EQ(Count(b, "SELECT COUNT(*) FROM records WHERE name LIKE 'live%'"),
            Count(a, "SELECT COUNT(*) FROM records WHERE name LIKE 'live%'"));
  EXPECT_EQ(Count(b, "SELECT COUNT(*) FROM (SELECT name, content, COUNT(*) AS n FROM records "
                     "GROUP BY name, content HAVING COUNT(*) > 1) d"),
            0);
  EXPECT_TRUE(b.Sanity().empty());
}

TEST(Join, DaemonStartingOnAnEmptyDatabaseJoinsByItself) {
  Cluster mesh(3, "autojoin");
  Node& a = mesh[0];
  Node& b = mesh[1];
  Node& c = mesh[2];
  {
    auto conn_w = a.Connect();
    PdnsWriter w(*conn_w);
    w.CreateZone("example.com");
    w.ReplaceRRset("example.com", "www.example.com", "A", {"192.0.2.1", "192.0.2.2"});
    w.SetMetadata("example.com", "SOA-EDIT-API", {"DEFAULT"});
    w.AddTsigKey("xfr", "hmac-sha256", "c2VjcmV0");
    w.AddCryptoKey("example.com", "Private-key-format: v1.2", true);
    w.CreateZone("gone.example");
    w.DeleteZone("gone.example");
  }
  a.Start();
  b.Start();
  ASSERT_TRUE(mesh.WaitUntil("b caught up", [&] { return a.Checksum() == b.Checksum(); }));
  // Until now the outbox of a holds the history; c joins instead of replaying it.
  c.Start();
  ASSERT_TRUE(mesh.WaitForConvergence());
  EXPECT_NE(c.Log().find("initial snapshot loaded from"), std::string::npos) << c.LogTail();
  // The deleted zone's tombstone came along: its incarnation is known on c.
  EXPECT_EQ(Count(c, "SELECT COUNT(*) FROM zm_rowver WHERE tbl = 'domains' AND deleted = 1"), 1);
}

TEST(Join, EmptyNodeWaitsForItsInitialSnapshotUntilAPeerAnswers) {
  Cluster mesh(2, "joinlater");
  Node& a = mesh[0];
  Node& b = mesh[1];
  // a holds data from before zonemesh: only a snapshot carries it.
  ASSERT_EQ(RunZonemesh({"uninstall", "--config", a.config_path()}).exit_code, 0);
  {
    auto conn = a.Connect();
    PdnsWriter(*conn).CreateZone("pre.example");
  }
  ASSERT_EQ(RunZonemesh({"install", "--config", a.config_path()}).exit_code, 0);
  // Installed on rows it never versioned: its applier must look rows up.
  EXPECT_EQ(Count(a, "SELECT COUNT(*) FROM zm_meta WHERE name = 'rows_versioned' AND value = '0'"), 1);
  b.Start();  // a is down: no snapshot yet
  ASSERT_TRUE(mesh.WaitUntil("b unhealthy while it waits", [&] {
    auto h = b.Http("GET", "/health");
    return h.status == 503 && h.body.find("initial snapshot") != std::string::npos;
  }));
  a.Start();
  ASSERT_TRUE(mesh.WaitUntil("b loaded a's snapshot", [&] { return b.Http("GET", "/health").status == 200; }));
  {
    auto conn = a.Connect();
    PdnsWriter(*conn).AddRecord("pre.example", "later.pre.example", "A", "192.0.2.8");
  }
  ASSERT_TRUE(mesh.WaitForConvergence());
  EXPECT_EQ(Count(b, "SELECT COUNT(*) FROM records WHERE name = 'later.pre.example'"), 1);
  EXPECT_EQ(Count(b, "SELECT COUNT(*) FROM zm_meta WHERE name = 'join_pending'"), 0);
  EXPECT_TRUE(b.Status()["initial_sync"].is_null());
}

// An empty node written to before any peer answered is no longer empty: it
// gives its initial snapshot up (a snapshot would land on its own data) and
// takes part like any node with data; its peer sends it its history.
TEST(Join, EmptyNodeWrittenToBeforeAnyPeerAnswersGivesUpItsInitialSnapshot) {
  Cluster mesh(2, "joingiveup");
  Node& a = mesh[0];
  Node& b = mesh[1];
  {
    auto conn = a.Connect();
    PdnsWriter(*conn).CreateZone("from-a.example");
  }
  b.Start();  // a is down: b waits for a snapshot
  ASSERT_TRUE(mesh.WaitUntil("b waits for its initial snapshot", [&] {
    auto h = b.Http("GET", "/health");
    return h.status == 503 && h.body.find("initial snapshot") != std::string::npos;
  }));
  {
    auto conn = b.Connect();
    PdnsWriter(*conn).CreateZone("early.example");
  }
  ASSERT_TRUE(mesh.WaitUntil("b gave its initial snapshot up", [&] {
    return b.Status()["initial_sync"].is_null() && b.Http("GET", "/health").status == 200;
  }));
  EXPECT_EQ(Count(b, "SELECT COUNT(*) FROM zm_meta WHERE name = 'join_pending'"), 0);
  a.Start();
  ASSERT_TRUE(mesh.WaitForConvergence());
  EXPECT_EQ(Count(a, "SELECT COUNT(*) FROM domains WHERE name = 'early.example'"), 1);
  EXPECT_EQ(Count(b, "SELECT COUNT(*) FROM domains WHERE name = 'from-a.example'"), 1);
}

TEST(Join, NodeAwayLongerThanTheHistoryIsMarkedAndResyncs) {
  json o{{"history_retention_seconds", 10}, {"outbox_retention_seconds", 0}};
  Cluster mesh(2, "resync", o);
  Node& a = mesh[0];
  Node& b = mesh[1];
  mesh.StartAll();
  {
    auto conn_w = a.Connect();
    PdnsWriter w(*conn_w);
    w.CreateZone("example.com");
  }
  ASSERT_TRUE(mesh.WaitForConvergence());
  ASSERT_EQ(b.Stop(), 0);
  {
    auto conn_w = a.Connect();
    PdnsWriter w(*conn_w);
    w.AddRecord("example.com", "while-away.example.com", "A", "192.0.2.7");
    w.DeleteRecord("example.com", "example.com", "NS", "ns1.example.com");
  }
  // a keeps 10 s of history: wait until it expired what b never received.
  ASSERT_TRUE(mesh.WaitUntil("a purged history b lacks", [&] {
    return Count(a, "SELECT COUNT(*) FROM zm_outbox") == 0 &&
           Count(a, "SELECT COUNT(*) FROM zm_meta WHERE name = 'purged_upto'") == 1;
  }, std::chrono::seconds(120)));
  b.Start();
  auto peer_state = [&](Node& n, const std::string& peer) {
    const json status = n.Status();  // held: the loop must not outlive it
    for (const json& p : status["peers"])
      if (p["id"] == peer) return p["state"].get<std::string>();
    return std::string();
  };
  ASSERT_TRUE(mesh.WaitUntil("a marks b needs-resync",
                             [&] { return peer_state(a, "b") == "needs-resync"; }));
  ASSERT_TRUE(mesh.WaitUntil("b knows it needs a resync", [&] {
    return b.Http("GET", "/health").status == 503 && !b.Status()["needs_resync"].empty();
  }));
  EXPECT_EQ(Count(b, "SELECT COUNT(*) FROM records WHERE name = 'while-away.example.com'"), 0);

  // The operator resyncs b.
  ASSERT_EQ(b.Stop(), 0);
  CommandResult r =
      RunZonemesh({"join", "--config", b.config_path(), "--from", "a", "--discard-local"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  b.Start();
  ASSERT_TRUE(mesh.WaitForConvergence());
  EXPECT_EQ(Count(b, "SELECT COUNT(*) FROM records WHERE name = 'while-away.example.com'"), 1);
  EXPECT_EQ(Count(b, "SELECT COUNT(*) FROM records WHERE type = 'NS'"), 0);
  ASSERT_TRUE(mesh.WaitUntil("b healthy again", [&] { return b.Http("GET", "/health").status == 200; }));
  ASSERT_TRUE(mesh.WaitUntil("a sends to b again", [&] { return peer_state(a, "b") == "ok"; }));
}

TEST(Join, RefusedWhileTheDaemonRuns) {
  Cluster mesh(2, "joinbusy");
  mesh.StartAll();
  CommandResult r = RunZonemesh({"join", "--config", mesh[1].config_path(), "--from", "a"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("stop it first"), std::string::npos) << r.Describe();
  CommandResult bad = RunZonemesh({"join", "--config", mesh[1].config_path(), "--from", "nobody"});
  EXPECT_EQ(bad.exit_code, 2) << bad.Describe();
}

}  // namespace
}  // namespace zonemesh::testing
