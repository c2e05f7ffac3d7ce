// Real daemons on PostgreSQL and MariaDB nodes, and meshes that mix all
// three databases.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <set>
#include <thread>

#include "db/open.h"
#include "tests/support/cluster.h"
#include "tests/support/mesh_checks.h"
#include "tests/support/pdns_writes.h"
#include "tests/support/test_db.h"

namespace zonemesh::testing {
namespace {

using db::Dialect;

// Runs `fn`, retrying on transient errors (deadlocks with the applier,
// busy SQLite), as an operator would. A constraint error is a write the
// database refused, as it would refuse PowerDNS's (the zone was created by
// the applier between the writer's check and its insert, say): skipped. So
// is a write to a zone the applier deleted between the writer's check and
// its write (PdnsWriter looks the zone up again and finds none).
template <typename Fn>
void Retry(Fn fn) {
  for (int attempt = 0;; ++attempt) {
    try {
      fn();
      return;
    } catch (const PdnsWriter::NoSuchZone&) {
      return;
    } catch (const db::Error& e) {
      if (e.kind() == db::Error::Kind::kConstraint) return;
      if (!e.transient() || attempt > 50) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(10 + attempt));
    }
  }
}

bool HasRecord(Node& n, const std::string& name) {
  auto c = n.Connect();
  return c->Query("SELECT COUNT(*) FROM records WHERE name = ?", {name})[0][0].AsInt() > 0;
}

// One writer's random PowerDNS-style operations on its node's database.
void RandomWrites(Node& node, uint32_t seed, int ops) {
  auto conn = node.Connect();
  PdnsWriter w(*conn);
  std::mt19937 rng(seed);
  auto pick = [&](uint32_t n) { return static_cast<int>(rng() % n); };
  for (int i = 0; i < ops; ++i) {
    const std::string zone = "z" + std::to_string(pick(5)) + ".example";
    Retry([&] {
      const bool exists = w.ZoneId(zone).has_value();
      switch (pick(9)) {
        case 0:
        case 1:
          if (!exists) w.CreateZone(zone, pick(1000));
          break;
        case 2:
          if (exists && pick(3) == 0) w.DeleteZone(zone);
          break;
        case 3:
          if (exists)
            w.ReplaceRRset(zone, "www." + zone, "A",
                           {"192.0.2." + std::to_string(pick(9)), "192.0.2.2" + std::to_string(pick(9))});
          break;
        case 4:
          if (exists) w.AddRecord(zone, node.id() + std::to_string(i) + "." + zone, "TXT",
                                  "\"from " + node.id() + " caf\xc3\xa9\"");
          break;
        case 5:
          if (exists) w.SetTtl(zone, "www." + zone, "A", 60 + pick(600));
          break;
        case 6:
          if (exists) w.SetMetadata(zone, "ALSO-NOTIFY", {"192.0.2." + std::to_string(pick(4))});
          break;
        case 7:
          if (exists) w.SetSoaSerial(zone, pick(100000));
          break;
        case 8:
          if (exists) w.AddCryptoKey(zone, "Private-key-format: v1.2 #" + std::to_string(rng()), pick(2));
          break;
      }
    });
  }
}

TEST(MixedMesh, SqlitePostgresAndMariadbNodesConvergeUnderConcurrentWrites) {
  Cluster mesh(3, "mixed", nlohmann::json{{"batch_max_changes", 50}},
               {Dialect::kSqlite, Dialect::kPostgres, Dialect::kMysql});
  mesh.StartAll();
  const uint32_t seed = static_cast<uint32_t>(std::random_device{}());
  std::cout << "[mixed] seed " << seed << "\n";
  std::vector<std::thread> writers;
  std::vector<std::string> errors(mesh.size());
  for (size_t i = 0; i < mesh.size(); ++i) {
    writers.emplace_back([&, i] {
      try {
        RandomWrites(mesh[i], seed + static_cast<uint32_t>(i), 150);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : writers) t.join();
  for (const std::string& e : errors) ASSERT_TRUE(e.empty()) << "writer failed: " << e;
  mesh.WaitForConvergence();
  for (Node* n : mesh.nodes()) EXPECT_TRUE(n->Sanity().empty()) << n->id();
  // And every node holds data: the mix was not trivially empty.
  auto c = mesh[1].Connect();
  EXPECT_GT(c->Query("SELECT COUNT(*) FROM records")[0][0].AsInt(), 0);
}

class ServerDatabaseTest : public ::testing::TestWithParam<Dialect> {};

// The hazard of outbox ids assigned at insert time: A takes its id first and
// commits last. The daemon must ship B without waiting for A, and must still
// ship A when it commits.
TEST_P(ServerDatabaseTest, TransactionCommittingAfterALaterOneStillReachesThePeer) {
  Cluster mesh(2, "interleaved", {}, {GetParam(), Dialect::kSqlite});
  mesh.StartAll();
  auto setup = mesh[0].Connect();
  PdnsWriter(*setup).CreateZone("example.com");
  ASSERT_TRUE(mesh.WaitUntil("zone on b", [&] { return HasRecord(mesh[1], "example.com"); }));

  auto a = mesh[0].Connect();
  auto b = mesh[0].Connect();
  PdnsWriter wa(*a), wb(*b);
  a->Begin();
  wa.AddRecord("example.com", "a.example.com", "A", "192.0.2.1");  // smaller outbox id, open
  wb.AddRecord("example.com", "b.example.com", "A", "192.0.2.2");  // larger id, committed
  ASSERT_TRUE(mesh.WaitUntil("b's change shipped while a's transaction is open",
                             [&] { return HasRecord(mesh[1], "b.example.com"); }));
  EXPECT_FALSE(HasRecord(mesh[1], "a.example.com"));
  a->Commit();
  ASSERT_TRUE(mesh.WaitUntil("a's change shipped after its commit",
                             [&] { return HasRecord(mesh[1], "a.example.com"); }));
  mesh.WaitForConvergence();
}

// A private server for a test that stops and crashes it.
class PrivateServer {
 public:
  PrivateServer(Dialect d, const std::string& name) : dialect_(d) {
    dir_ = "/tmp/zonemesh-private-" + name + "-" + std::to_string(getpid());
    port_ = FreeLoopbackPort();
    Run("start");
  }
  ~PrivateServer() {
    try {
      Run("stop");
    } catch (...) {
    }
    std::filesystem::remove_all(dir_);
  }
  void Run(const std::string& cmd) {
    std::string script = std::string(ZONEMESH_SOURCE_DIR) + "/tests/servers/" +
                         (dialect_ == Dialect::kPostgres ? "postgres.sh" : "mariadb.sh");
    std::string line = script + " " + cmd + " " + dir_ + (cmd == "start" ? " " + std::to_string(port_) : "") +
                       " >/dev/null 2>&1";
    if (std::system(line.c_str()) != 0) throw std::runtime_error("failed: " + line);
  }
  db::DatabaseConfig Database(const std::string& name) {
    db::DatabaseConfig c;
    c.dialect = dialect_;
    if (dialect_ == Dialect::kPostgres) {
      std::string base = "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres connect_timeout=5";
      db::DatabaseConfig admin = c;
      admin.conninfo = base + " dbname=postgres";
      db::Open(admin)->ExecuteDdl("CREATE DATABASE " + name);
      c.conninfo = base + " dbname=" + name;
    } else {
      c.host = "127.0.0.1";
      c.port = port_;
      db::Open(c)->ExecuteDdl("CREATE DATABASE " + name + " CHARACTER SET utf8mb4");
      c.database = name;
    }
    return c;
  }

 private:
  Dialect dialect_;
  std::string dir_;
  uint16_t port_;
};

TEST_P(ServerDatabaseTest, DatabaseCrashedAndRestartedUnderARunningDaemonLosesNothing) {
  PrivateServer server(GetParam(), "restart");
  Cluster mesh(2, "dbrestart", {}, {Dialect::kSqlite});
  mesh[0].UseDatabase(server.Database("pdns"));
  mesh[0].WriteConfig({{"b", mesh[1].url()}});
  mesh[0].Install();
  mesh.StartAll();
  {
    auto c = mesh[0].Connect();
    PdnsWriter(*c).CreateZone("example.com");
  }
  auto cb = mesh[1].Connect();
  PdnsWriter(*cb).CreateZone("example.net");
  mesh.WaitForConvergence();

  // Crash the server (kill -9), then a clean restart later: writes keep
  // arriving for it on b, and are made on a once it is back.
  server.Run("kill");
  for (int i = 0; i < 20; ++i) PdnsWriter(*cb).AddRecord("example.net", "while-down-" + std::to_string(i) + ".example.net", "A", "192.0.2.9");
  ASSERT_TRUE(mesh.WaitUntil("a reports its database down", [&] {
    auto s = mesh[0].TryStatus();
    return s && !(*s)["database"]["ok"].get<bool>();
  }));
  server.Run("start");
  {
    auto c = mesh[0].Connect();
    PdnsWriter(*c).AddRecord("example.com", "after-crash.example.com", "A", "192.0.2.10");
  }
  mesh.WaitForConvergence();
  EXPECT_TRUE(HasRecord(mesh[0], "while-down-19.example.net"));
  EXPECT_TRUE(HasRecord(mesh[1], "after-crash.example.com"));

  server.Run("stop");
  for (int i = 0; i < 5; ++i) PdnsWriter(*cb).AddRecord("example.net", "during-restart-" + std::to_string(i) + ".example.net", "A", "192.0.2.11");
  server.Run("start");
  mesh.WaitForConvergence();
  EXPECT_TRUE(HasRecord(mesh[0], "during-restart-4.example.net"));
  // Both daemons kept running throughout.
  EXPECT_TRUE(mesh[0].running());
  EXPECT_TRUE(mesh[1].running());
}

TEST_P(ServerDatabaseTest, HealthFollowsTheDatabaseNotAPeersLag) {
  PrivateServer server(GetParam(), "health");
  Cluster mesh(2, "health", nlohmann::json{{"health", {{"max_lag_seconds", 1}}}}, {Dialect::kSqlite});
  mesh[0].UseDatabase(server.Database("pdns"));
  mesh[0].WriteConfig({{"b", mesh[1].url()}}, nlohmann::json{{"health", {{"max_lag_seconds", 1}}}});
  mesh[0].Install();
  mesh.StartAll();
  auto health = [&](Node& n) { return n.Http("GET", "/health").status; };
  ASSERT_TRUE(mesh.WaitUntil("a healthy", [&] { return health(mesh[0]) == 200; }));

  // b goes away while a has changes for it: a's queue for b ages past 1 s,
  // and a stays healthy: b is the node that misses data, not a.
  ASSERT_EQ(mesh[1].Stop(), 0);
  {
    auto c = mesh[0].Connect();
    PdnsWriter(*c).CreateZone("example.com");
  }
  ASSERT_TRUE(mesh.WaitUntil("a's changes for b older than max_lag_seconds", [&] {
    return PeerEntry(mesh[0].Status(), "b").value("lag_seconds", 0.0) > 1.5;
  }));
  EXPECT_EQ(health(mesh[0]), 200) << mesh[0].Http("GET", "/health").body;
  mesh[1].Start();
  ASSERT_TRUE(mesh.WaitForConvergence());

  // The database stops: unhealthy; it comes back: healthy.
  server.Run("kill");
  ASSERT_TRUE(mesh.WaitUntil("a unhealthy: database down", [&] { return health(mesh[0]) == 503; }));
  EXPECT_NE(mesh[0].Http("GET", "/health").body.find("database"), std::string::npos);
  server.Run("start");
  ASSERT_TRUE(mesh.WaitUntil("a healthy after the database returned", [&] { return health(mesh[0]) == 200; }));

  auto metrics = mesh[0].Http("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("zonemesh_peer_queue_depth{node=\"a\",peer=\"b\"} 0"), std::string::npos)
      << metrics.body;
}

// kill -9 loops under sustained replication in both directions: the
// database server of one node, that node's daemon while it receives, and
// the other daemon while it sends, three rounds each, with writers on both
// nodes throughout. Afterwards every committed record is on both nodes
// exactly once, nothing else is, and the nodes' dumps are identical.
TEST_P(ServerDatabaseTest, KillNineLoopsOfDaemonsAndDatabaseUnderLoadLoseAndDoubleNothing) {
  PrivateServer server(GetParam(), "kill9loop");
  Cluster mesh(2, "kill9loop", {{"batch_max_changes", 25}}, {Dialect::kSqlite});
  Node& a = mesh[0];  // on the server that gets killed
  Node& b = mesh[1];  // SQLite
  a.UseDatabase(server.Database("pdns"));
  a.WriteConfig({{"b", b.url()}});
  a.Install();
  mesh.StartAll();
  {
    auto c = b.Connect();
    PdnsWriter(*c).CreateZone("loop.test");
  }
  ASSERT_TRUE(mesh.WaitUntil("zone on a", [&] { return HasRecord(a, "loop.test"); }));

  AppendWriter wa(a, "loop.test", "a", /*survive_database_loss=*/true);
  AppendWriter wb(b, "loop.test", "b");
  wa.Start();
  wb.Start();
  auto b_wrote = [&](size_t n) {
    const size_t from = wb.committed();
    return mesh.WaitUntil("b's writer commits " + std::to_string(n) + " more",
                          [&] { return wb.committed() >= from + n; });
  };
  auto a_wrote = [&](size_t n) {
    const size_t from = wa.committed();
    const bool ok = mesh.WaitUntil("a's writer commits " + std::to_string(n) + " more",
                                   [&] { return wa.committed() >= from + n; });
    if (!ok) std::cout << "[kill9loop] a's writer: last error: " << wa.error() << "\n";
    return ok;
  };
  auto a_has_b_latest = [&] {
    const std::vector<std::string> names = wb.names();
    const std::string last = names.back();
    return mesh.WaitUntil("a applies " + last, [&] { return HasRecord(a, last); });
  };

  for (int round = 1; round <= 3; ++round) {
    std::cout << "[kill9loop] round " << round << ": kill -9 of a's database server\n";
    server.Run("kill");
    ASSERT_TRUE(mesh.WaitUntil("a reports its database down", [&] {
      auto s = a.TryStatus();
      return s && !(*s)["database"]["ok"].get<bool>();
    }));
    ASSERT_TRUE(b_wrote(40));
    server.Run("start");
    ASSERT_TRUE(a_has_b_latest());
    ASSERT_TRUE(a_wrote(20));

    std::cout << "[kill9loop] round " << round << ": kill -9 of a's daemon while it receives\n";
    ASSERT_TRUE(b_wrote(20));
    a.Kill();
    ASSERT_TRUE(b_wrote(60));
    ASSERT_TRUE(a_wrote(40));  // captured while a's daemon is down
    a.Start();
    ASSERT_TRUE(a_has_b_latest());

    std::cout << "[kill9loop] round " << round << ": kill -9 of b's daemon while it sends\n";
    ASSERT_TRUE(b_wrote(20));
    b.Kill();
    ASSERT_TRUE(a_wrote(60));
    ASSERT_TRUE(b_wrote(40));
    b.Start();
    ASSERT_TRUE(a_has_b_latest());
  }
  wa.Stop();
  wb.Stop();
  ASSERT_EQ(wb.error(), "");
  ASSERT_TRUE(mesh.WaitForConvergence(180s));

  std::set<std::string> committed, maybe;
  for (const std::string& n : wa.names()) committed.insert(n);
  for (const std::string& n : wb.names()) committed.insert(n);
  for (const std::string& n : wa.uncertain()) maybe.insert(n);
  std::cout << "[kill9loop] " << committed.size() << " records committed, " << maybe.size()
            << " in COMMITs cut by the database kill\n";
  const std::vector<std::string> reference = b.Dump();
  for (Node* n : mesh.nodes()) {
    auto conn = n->Connect();
    std::set<std::string> present;
    for (const db::Row& r : conn->Query(
             "SELECT r.name FROM records r JOIN domains d ON d.id = r.domain_id "
             "WHERE d.name = 'loop.test' AND r.type = 'A'")) {
      present.insert(r[0].AsText());
    }
    std::vector<std::string> missing, extra;
    for (const std::string& w : committed)
      if (!present.count(w)) missing.push_back(w);
    for (const std::string& p : present)
      if (!committed.count(p) && !maybe.count(p)) extra.push_back(p);
    EXPECT_TRUE(missing.empty()) << "node " << n->id() << " lacks " << missing.size()
                                 << " committed record(s), e.g. " << missing.front();
    EXPECT_TRUE(extra.empty()) << "node " << n->id() << " holds " << extra.size()
                               << " record(s) nobody committed, e.g. " << extra.front();
    EXPECT_EQ(PhysicalDuplicates(*conn), "") << "node " << n->id();
    EXPECT_EQ(n->Dump(), reference) << "node " << n->id();
  }
  mesh.StopAll();
}

// An empty node whose database server is down when its daemon starts
// still owes its initial snapshot: it loads it once the server answers.
TEST_P(ServerDatabaseTest, EmptyNodeWhoseDatabaseIsDownAtStartJoinsOnceItAnswers) {
  PrivateServer server(GetParam(), "joinlate");
  Cluster mesh(2, "dbdownjoin", {}, {Dialect::kSqlite});
  Node& a = mesh[0];  // SQLite, holds data from before zonemesh: only a snapshot carries it
  Node& b = mesh[1];  // empty, on the server
  ASSERT_EQ(RunZonemesh({"uninstall", "--config", a.config_path()}).exit_code, 0);
  {
    auto conn = a.Connect();
    PdnsWriter(*conn).CreateZone("pre.example");
  }
  ASSERT_EQ(RunZonemesh({"install", "--config", a.config_path()}).exit_code, 0);
  b.UseDatabase(server.Database("pdns"));
  b.WriteConfig({{"a", a.url()}});
  b.Install();
  a.Start();
  server.Run("stop");
  b.Start();
  ASSERT_TRUE(mesh.WaitUntil("b reports its database down", [&] {
    auto s = b.TryStatus();
    return s && !(*s)["database"]["ok"].get<bool>();
  }));
  server.Run("start");
  ASSERT_TRUE(mesh.WaitUntil("b loaded a's snapshot", [&] { return HasRecord(b, "pre.example"); }));
  // The daemon logs it just after the commit.
  EXPECT_TRUE(mesh.WaitUntil("b logs its initial snapshot", [&] {
    return b.Log().find("initial snapshot loaded from a") != std::string::npos;
  })) << b.LogTail();
  ASSERT_TRUE(mesh.WaitForConvergence());
}

INSTANTIATE_TEST_SUITE_P(ServerDatabases, ServerDatabaseTest,
                         ::testing::Values(Dialect::kPostgres, Dialect::kMysql),
                         [](const auto& info) { return DialectParamName(info.param); });

}  // namespace
}  // namespace zonemesh::testing
