// The `zonemesh` command line, run as a real process: exit codes (0 success,
// 1 failure, 2 bad arguments or configuration), messages, and what install,
// uninstall, status and dump do to and read from a SQLite database.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "replicator/dump.h"
#include "schema/pdns_schema.h"
#include "tests/support/cluster.h"

namespace zonemesh::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::vector<std::string> kCommands = {"install", "uninstall", "run", "status", "dump", "verify"};

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Every sqlite_master entry as "type name", sorted.
std::vector<std::string> SchemaObjects(db::Connection& conn) {
  std::vector<std::string> out;
  for (const db::Row& r :
       conn.Query("SELECT type, name, COALESCE(sql, '') FROM sqlite_master ORDER BY type, name")) {
    out.push_back(r[0].AsText() + " " + r[1].AsText() + " " + r[2].AsText());
  }
  return out;
}

// zonemesh's objects: zm_* tables, indexes and triggers.
std::vector<std::string> ZonemeshObjects(db::Connection& conn) {
  std::vector<std::string> out;
  for (const db::Row& r : conn.Query(
           "SELECT type, name FROM sqlite_master WHERE name LIKE 'zm%' OR type = 'trigger' "
           "ORDER BY type, name")) {
    out.push_back(r[0].AsText() + " " + r[1].AsText());
  }
  return out;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = ScratchDir() + "/cli/" + info->name();
    fs::remove_all(dir_);
  }
  void TearDown() override {
    nodes_.clear();
    if (!HasFailure()) {
      fs::remove_all(dir_);
      std::error_code ec;
      fs::remove(fs::path(dir_).parent_path(), ec);  // only when empty
    }
  }

  // A node (not running) with a config; `peers` as given.
  Node& MakeNode(const std::string& id, const std::vector<PeerRef>& peers = {},
                 const json& overrides = {}) {
    nodes_.push_back(std::make_unique<Node>(id, dir_ + "/" + id, FreeLoopbackPort()));
    nodes_.back()->WriteConfig(peers, overrides);
    return *nodes_.back();
  }

  // An empty SQLite database file at the node's path.
  static void CreateEmptyDatabase(const Node& n) {
    db::DatabaseConfig c = n.database();
    c.create_if_missing = true;
    db::Open(c);
  }

  // The stock PowerDNS schema, without zonemesh.
  static void CreatePowerDnsSchema(const Node& n) {
    db::DatabaseConfig c = n.database();
    c.create_if_missing = true;
    auto conn = db::Open(c);
    for (const schema::SchemaStatement& s : schema::PowerDnsSchemaStatements(db::Dialect::kSqlite))
      conn->ExecuteDdl(s.sql);
  }

  static CommandResult Zm(const std::vector<std::string>& args) { return RunZonemesh(args); }

  std::string dir_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

// ------------------------------------------------------------------ help --

TEST_F(CliTest, MainHelpExitsZeroAndListsCommands) {
  for (const char* flag : {"--help", "-h", "help"}) {
    CommandResult r = Zm({flag});
    EXPECT_EQ(r.exit_code, 0) << flag << ": " << r.Describe();
    EXPECT_TRUE(Contains(r.out, "Usage: zonemesh <command>")) << r.Describe();
    for (const std::string& cmd : kCommands) {
      EXPECT_TRUE(Contains(r.out, "  " + cmd + " ")) << "help does not list " << cmd << "\n"
                                                     << r.out;
    }
  }
}

TEST_F(CliTest, NoArgumentsPrintsUsageAndExits2) {
  CommandResult r = Zm({});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_TRUE(Contains(r.out + r.err, "Usage: zonemesh")) << r.Describe();
}

TEST_F(CliTest, CommandHelpExitsZeroAndPrintsUsage) {
  for (const std::string& cmd : kCommands) {
    for (const char* flag : {"--help", "-h"}) {
      CommandResult r = Zm({cmd, flag});
      EXPECT_EQ(r.exit_code, 0) << cmd << " " << flag << ": " << r.Describe();
      EXPECT_TRUE(Contains(r.out, "Usage: zonemesh " + cmd)) << cmd << ": " << r.Describe();
      EXPECT_TRUE(Contains(r.out, "--config FILE")) << cmd << ": " << r.Describe();
    }
  }
  CommandResult r = Zm({"version"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(Contains(r.out, "zonemesh ")) << r.Describe();
}

// ------------------------------------------------------ bad arguments --

TEST_F(CliTest, UnknownCommandExits2) {
  CommandResult r = Zm({"frobnicate", "--config", "x.json"});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "unknown command")) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "frobnicate")) << r.Describe();
}

TEST_F(CliTest, MissingConfigExits2) {
  for (const std::string& cmd : kCommands) {
    CommandResult r = Zm({cmd});
    EXPECT_EQ(r.exit_code, 2) << cmd << ": " << r.Describe();
    EXPECT_TRUE(Contains(r.err, "--config")) << cmd << ": " << r.Describe();
  }
  // --config without its file name.
  CommandResult r = Zm({"dump", "--config"});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
}

TEST_F(CliTest, UnknownOptionExits2) {
  Node& n = MakeNode("solo");
  CommandResult r = Zm({"dump", "--config", n.config_path(), "--frobnicate"});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "--frobnicate")) << r.Describe();
}

TEST_F(CliTest, ConfigFileThatCannotBeReadExits2) {
  CommandResult r = Zm({"dump", "--config", dir_ + "/does-not-exist.json"});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "does-not-exist.json")) << r.Describe();
}

TEST_F(CliTest, ConfigWithUnknownKeyExits2AndNamesTheKey) {
  Node& n = MakeNode("solo", {}, json{{"frobnicate_level", 3}});
  for (const std::string& cmd : kCommands) {
    CommandResult r = Zm({cmd, "--config", n.config_path()});
    EXPECT_EQ(r.exit_code, 2) << cmd << ": " << r.Describe();
    EXPECT_TRUE(Contains(r.err, "frobnicate_level")) << cmd << ": " << r.Describe();
  }
  // A nested unknown key is named with its path.
  Node& m = MakeNode("nested", {}, json{{"database", {{"colour", "blue"}}}});
  CommandResult r = Zm({"install", "--config", m.config_path(), "--create-schema"});
  EXPECT_EQ(r.exit_code, 2) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "database.colour")) << r.Describe();
  EXPECT_FALSE(fs::exists(m.db_path())) << "a rejected config must not create the database";
}

// ------------------------------------------------------------- install --

TEST_F(CliTest, InstallRefusesADatabaseWithoutPowerDnsTables) {
  Node& n = MakeNode("alpha");
  CreateEmptyDatabase(n);
  CommandResult r = Zm({"install", "--config", n.config_path()});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "PowerDNS table")) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "domains")) << "names a missing table: " << r.Describe();
  auto conn = n.Connect();
  EXPECT_EQ(Join(ZonemeshObjects(*conn)), "") << "a refused install left objects behind";
  EXPECT_EQ(Join(SchemaObjects(*conn)), "") << "a refused install changed the schema";
}

TEST_F(CliTest, InstallRefusesAMissingDatabaseFileWithoutCreateSchema) {
  Node& n = MakeNode("alpha");
  CommandResult r = Zm({"install", "--config", n.config_path()});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_TRUE(Contains(r.err, n.db_path())) << r.Describe();
  EXPECT_FALSE(fs::exists(n.db_path()));
}

TEST_F(CliTest, InstallTwiceIsIdempotentAndTriggersStillCapture) {
  Node& n = MakeNode("alpha");
  CommandResult first = Zm({"install", "--config", n.config_path(), "--create-schema"});
  ASSERT_EQ(first.exit_code, 0) << first.Describe();
  EXPECT_TRUE(Contains(first.out, "alpha")) << first.Describe();

  std::vector<std::string> schema_after_first;
  {
    auto conn = n.Connect();
    schema_after_first = SchemaObjects(*conn);
    WithTransaction(*conn, [&] { pdns::CreateZone(*conn, "before.test"); });
    EXPECT_EQ(conn->Query("SELECT COUNT(*) FROM zm_outbox")[0][0].AsInt(), 2);
  }

  for (const auto& args : std::vector<std::vector<std::string>>{
           {"install", "--config", n.config_path(), "--create-schema"},
           {"install", "--config", n.config_path()}}) {
    CommandResult again = Zm(args);
    EXPECT_EQ(again.exit_code, 0) << again.Describe();
  }

  auto conn = n.Connect();
  EXPECT_EQ(Join(SchemaObjects(*conn)), Join(schema_after_first))
      << "a second install changed the schema";
  // State is kept: the pending change is still there.
  EXPECT_EQ(conn->Query("SELECT COUNT(*) FROM zm_outbox")[0][0].AsInt(), 2);
  auto meta = conn->Query("SELECT value FROM zm_meta WHERE name = 'node_id'");
  ASSERT_EQ(meta.size(), 1u);
  EXPECT_EQ(meta[0][0].AsText(), "alpha");

  // Triggers still capture, exactly once per row change.
  WithTransaction(*conn, [&] {
    int64_t id = pdns::CreateZone(*conn, "after.test");
    pdns::InsertRecord(*conn, id, "www.after.test", "A", "192.0.2.1", 300);
    pdns::SetMetadata(*conn, id, "SOA-EDIT", {"INCEPTION-INCREMENT"});
    pdns::SetTsigKey(*conn, "k1", "hmac-sha256", "c2VjcmV0");
  });
  std::multiset<std::string> tables;
  for (const db::Row& r : conn->Query("SELECT tbl FROM zm_outbox WHERE id > 2"))
    tables.insert(r[0].AsText());
  EXPECT_EQ(tables, (std::multiset<std::string>{"domains", "records", "records", "domainmetadata",
                                                "tsigkeys"}));
}

TEST_F(CliTest, InstallForAnotherNodeIdIsRefusedNamingBoth) {
  Node& a = MakeNode("node-alpha");
  ASSERT_EQ(Zm({"install", "--config", a.config_path(), "--create-schema"}).exit_code, 0);
  // node-beta's config points at node-alpha's database.
  Node& b = MakeNode("node-beta", {}, json{{"database", {{"path", a.db_path()}}}});
  CommandResult r = Zm({"install", "--config", b.config_path()});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "node-alpha")) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "node-beta")) << r.Describe();
  auto conn = a.Connect();
  EXPECT_EQ(conn->Query("SELECT value FROM zm_meta WHERE name = 'node_id'")[0][0].AsText(),
            "node-alpha");
  // The triggers still stamp node-alpha as the origin.
  WithTransaction(*conn, [&] { pdns::CreateZone(*conn, "x.test"); });
  for (const db::Row& r : conn->Query("SELECT vv FROM zm_outbox")) {
    EXPECT_TRUE(Contains(r[0].AsText(), "node-alpha")) << r[0].AsText();
    EXPECT_FALSE(Contains(r[0].AsText(), "node-beta")) << r[0].AsText();
  }
  // And `run` with node-beta's config refuses the database too.
  CommandResult run = RunZonemesh({"run", "--config", b.config_path()}, 30s);
  EXPECT_EQ(run.exit_code, 1) << run.Describe();
  EXPECT_TRUE(Contains(run.err, "node-alpha")) << run.Describe();
}

TEST_F(CliTest, PrintSqlPrintsTriggersAndChangesNothing) {
  Node& n = MakeNode("alpha");
  CreatePowerDnsSchema(n);
  std::vector<std::string> before;
  {
    auto conn = n.Connect();
    before = SchemaObjects(*conn);
  }
  CommandResult r = Zm({"install", "--config", n.config_path(), "--print-sql"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  size_t triggers = 0;
  for (size_t pos = 0; (pos = r.out.find("CREATE TRIGGER", pos)) != std::string::npos; ++pos)
    ++triggers;
  // Insert, update and delete capture for each of the 7 PowerDNS tables.
  EXPECT_GE(triggers, 21u) << r.out.substr(0, 2000);
  EXPECT_TRUE(Contains(r.out, "CREATE TABLE IF NOT EXISTS zm_outbox")) << r.out.substr(0, 2000);
  {
    auto conn = n.Connect();
    EXPECT_EQ(Join(SchemaObjects(*conn)), Join(before)) << "--print-sql changed the database";
  }

  // The same on an installed database, for uninstall --print-sql.
  ASSERT_EQ(Zm({"install", "--config", n.config_path()}).exit_code, 0);
  {
    auto conn = n.Connect();
    before = SchemaObjects(*conn);
  }
  CommandResult u = Zm({"uninstall", "--config", n.config_path(), "--print-sql"});
  EXPECT_EQ(u.exit_code, 0) << u.Describe();
  EXPECT_TRUE(Contains(u.out, "DROP TRIGGER")) << u.Describe();
  auto conn = n.Connect();
  EXPECT_EQ(Join(SchemaObjects(*conn)), Join(before)) << "uninstall --print-sql changed the database";
}

// ----------------------------------------------------------- uninstall --

TEST_F(CliTest, UninstallRemovesEveryZonemeshObjectAndKeepsPowerDnsRows) {
  Node& n = MakeNode("alpha");
  CreatePowerDnsSchema(n);
  std::vector<std::string> pdns_schema;
  {
    auto conn = n.Connect();
    pdns_schema = SchemaObjects(*conn);
  }
  ASSERT_EQ(Zm({"install", "--config", n.config_path()}).exit_code, 0);
  std::vector<std::string> dump_before;
  {
    auto conn = n.Connect();
    WithTransaction(*conn, [&] {
      int64_t id = pdns::CreateZone(*conn, "keep.test");
      pdns::InsertRecord(*conn, id, "www.keep.test", "A", "192.0.2.7", 300);
      pdns::SetMetadata(*conn, id, "ALSO-NOTIFY", {"192.0.2.53"});
      pdns::SetTsigKey(*conn, "keep-key", "hmac-sha256", "c2VjcmV0");
    });
    dump_before = CanonicalDump(*conn);
    EXPECT_FALSE(ZonemeshObjects(*conn).empty());
  }

  CommandResult r = Zm({"uninstall", "--config", n.config_path()});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();

  auto conn = n.Connect();
  EXPECT_EQ(Join(ZonemeshObjects(*conn)), "") << "uninstall left these behind";
  // SQLite creates sqlite_sequence for AUTOINCREMENT tables (zm_outbox...)
  // and never lets it be dropped; dropping those tables empties it.
  std::vector<std::string> schema_after = SchemaObjects(*conn);
  std::erase_if(schema_after,
                [](const std::string& s) { return s.rfind("table sqlite_sequence ", 0) == 0; });
  EXPECT_EQ(Join(schema_after), Join(pdns_schema))
      << "uninstall did not restore the PowerDNS schema exactly";
  if (conn->TableExists("sqlite_sequence")) {
    EXPECT_EQ(conn->Query("SELECT COUNT(*) FROM sqlite_sequence WHERE name LIKE 'zm%'")[0][0].AsInt(), 0);
  }
  EXPECT_EQ(CanonicalDump(*conn), dump_before) << "uninstall changed PowerDNS data";
  EXPECT_EQ(conn->Query("SELECT COUNT(*) FROM records")[0][0].AsInt(), 2);
  // PowerDNS keeps working on the database.
  WithTransaction(*conn, [&] {
    pdns::InsertRecord(*conn, *pdns::ZoneId(*conn, "keep.test"), "mail.keep.test", "A",
                       "192.0.2.8", 300);
    conn->Execute("DELETE FROM records WHERE name = 'www.keep.test'");
    pdns::DeleteZone(*conn, *pdns::ZoneId(*conn, "keep.test"));
  });

  // `run` now says to install first.
  CommandResult run = RunZonemesh({"run", "--config", n.config_path()}, 30s);
  EXPECT_EQ(run.exit_code, 1) << run.Describe();
  EXPECT_TRUE(Contains(run.err, "zonemesh install")) << run.Describe();
}

// ----------------------------------------------------------------- run --

TEST_F(CliTest, RunOnADatabaseNeverInstalledExits1AndSaysToInstall) {
  Node& n = MakeNode("alpha");
  CreatePowerDnsSchema(n);
  CommandResult r = RunZonemesh({"run", "--config", n.config_path()}, 30s);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "run `zonemesh install`")) << r.Describe();

  Node& e = MakeNode("empty");
  CreateEmptyDatabase(e);
  r = RunZonemesh({"run", "--config", e.config_path()}, 30s);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "zonemesh install")) << r.Describe();

  Node& m = MakeNode("missing");
  r = RunZonemesh({"run", "--config", m.config_path()}, 30s);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_TRUE(Contains(r.err, m.db_path())) << r.Describe();
}

// -------------------------------------------------------------- status --

TEST_F(CliTest, StatusWithoutDaemonReadsQueueDepthFromTheDatabase) {
  // Peer "beta" is configured but nothing listens anywhere.
  Node& n = MakeNode("alpha", {{"beta", "http://127.0.0.1:" + std::to_string(FreeLoopbackPort())}});
  ASSERT_EQ(Zm({"install", "--config", n.config_path(), "--create-schema"}).exit_code, 0);
  {
    auto conn = n.Connect();
    WithTransaction(*conn, [&] {
      int64_t id = pdns::CreateZone(*conn, "queued.test");
      pdns::InsertRecord(*conn, id, "www.queued.test", "A", "192.0.2.1", 300);
      pdns::InsertRecord(*conn, id, "www.queued.test", "A", "192.0.2.2", 300);
    });
  }
  CommandResult r = Zm({"status", "--config", n.config_path()});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(Contains(r.err, "does not answer")) << r.Describe();
  std::regex beta_line(R"(\nbeta\s+daemon-stopped\s+no\s+4\s)");
  EXPECT_TRUE(std::regex_search(r.out, beta_line)) << "expected a queue of 4 for beta:\n" << r.out;

  CommandResult j = Zm({"status", "--config", n.config_path(), "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.Describe();
  json s = json::parse(j.out);
  EXPECT_EQ(s.value("node_id", ""), "alpha");
  EXPECT_EQ(s.value("daemon", ""), "not running");
  json beta = PeerEntry(s, "beta");
  ASSERT_FALSE(beta.is_null()) << s.dump(2);
  EXPECT_EQ(beta.value("queue_depth", int64_t{-1}), 4) << s.dump(2);
  EXPECT_FALSE(beta.value("connected", true));
}

TEST_F(CliTest, StatusAsksTheRunningDaemon) {
  Node& n = MakeNode("alpha", {{"beta", "http://127.0.0.1:" + std::to_string(FreeLoopbackPort())}});
  ASSERT_EQ(Zm({"install", "--config", n.config_path(), "--create-schema"}).exit_code, 0);
  n.Start();
  CommandResult j = Zm({"status", "--config", n.config_path(), "--json"});
  EXPECT_EQ(j.exit_code, 0) << j.Describe();
  json s = json::parse(j.out);
  EXPECT_FALSE(s.contains("daemon")) << s.dump(2);
  EXPECT_TRUE(s.contains("uptime_seconds")) << s.dump(2);
  EXPECT_EQ(n.Stop(), 0) << n.LogTail();
}

// -------------------------------------------------------------- verify --

TEST_F(CliTest, VerifyNamesTheZoneAndTheRowsThatDiffer) {
  Cluster mesh(2, "verify");
  Node &a = mesh[0], &b = mesh[1];
  mesh.StartAll();
  ASSERT_TRUE(mesh.WaitForConnected());
  {
    auto c = a.Connect();
    WithTransaction(*c, [&] {
      pdns::CreateZone(*c, "same.test");
      pdns::CreateZone(*c, "drift.test");
    });
  }
  ASSERT_TRUE(mesh.WaitForConvergence());
  CommandResult same = Zm({"verify", "--config", a.config_path()});
  EXPECT_EQ(same.exit_code, 0) << same.Describe();
  EXPECT_TRUE(Contains(same.out, "b: the same data")) << same.Describe();

  // b's drift.test changed behind zonemesh's back: nothing is captured.
  {
    auto c = b.Connect();
    c->SetApplying(true);
    ASSERT_EQ(c->Execute("UPDATE records SET ttl = 999 WHERE name = 'drift.test' AND type = 'SOA'"), 1);
  }
  CommandResult differ = Zm({"verify", "--config", a.config_path(), "--zone", "drift.test"});
  EXPECT_EQ(differ.exit_code, 1) << differ.Describe();
  EXPECT_TRUE(Contains(differ.out, "b: drift.test: differs: 2 rows here, 2 on b")) << differ.Describe();
  EXPECT_FALSE(Contains(differ.out, "same.test")) << differ.Describe();
  EXPECT_TRUE(Contains(differ.out, "- {\"k\":\"drift.test|drift.test|SOA")) << differ.Describe();
  EXPECT_TRUE(Contains(differ.out, "\"ttl\":999")) << differ.Describe();
  // A peer the config does not name is a usage error.
  EXPECT_EQ(Zm({"verify", "--config", a.config_path(), "--peer", "nobody"}).exit_code, 2);
  // A stopped peer cannot be asked: a failure, said as such.
  ASSERT_EQ(b.Stop(), 0);
  CommandResult down = Zm({"verify", "--config", a.config_path()});
  EXPECT_EQ(down.exit_code, 1) << down.Describe();
  EXPECT_TRUE(Contains(down.out, "b: cannot compare")) << down.Describe();
}

// ---------------------------------------------------------------- dump --

TEST_F(CliTest, DumpPrintsTheCanonicalDumpAndItsChecksum) {
  Node& n = MakeNode("alpha");
  ASSERT_EQ(Zm({"install", "--config", n.config_path(), "--create-schema"}).exit_code, 0);
  auto conn = n.Connect();
  WithTransaction(*conn, [&] {
    int64_t id = pdns::CreateZone(*conn, "dump.test");
    pdns::InsertRecord(*conn, id, "www.dump.test", "A", "192.0.2.1", 300);
    pdns::InsertRecord(*conn, id, "dump.test", "TXT", "\"v=spf1 -all\"", 300);
    pdns::SetTsigKey(*conn, "dump-key", "hmac-sha256", "c2VjcmV0");
  });
  std::vector<std::string> expected = CanonicalDump(*conn);

  CommandResult sum = Zm({"dump", "--config", n.config_path(), "--checksum"});
  EXPECT_EQ(sum.exit_code, 0) << sum.Describe();
  EXPECT_TRUE(std::regex_match(sum.out, std::regex("[0-9a-f]{64}\n"))) << sum.Describe();
  EXPECT_EQ(sum.out, DumpChecksum(expected) + "\n");

  CommandResult full = Zm({"dump", "--config", n.config_path(), "--check"});
  EXPECT_EQ(full.exit_code, 0) << full.Describe();
  std::vector<std::string> lines;
  std::istringstream in(full.out);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  EXPECT_EQ(lines, expected);

  // --check reports a zone without a SOA and exits 1.
  WithTransaction(*conn, [&] { conn->Execute("DELETE FROM records WHERE type = 'SOA'"); });
  CommandResult bad = Zm({"dump", "--config", n.config_path(), "--check"});
  EXPECT_EQ(bad.exit_code, 1) << bad.Describe();
  EXPECT_TRUE(Contains(bad.err, "dump.test")) << bad.Describe();
}

}  // namespace
}  // namespace zonemesh::testing
