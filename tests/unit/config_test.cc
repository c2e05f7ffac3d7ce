// The configuration file (replicator/config.h): a valid file parses to the
// right values, relative SQLite paths resolve against the file's directory,
// and every mistake is a ConfigError that names the offending key.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "replicator/config.h"
#include "tests/support/test_db.h"

namespace zonemesh {
namespace {

using nlohmann::json;

const char* kFile = "/etc/zonemesh/ns1.json";
const char* kDir = "/etc/zonemesh";

// The README's example.
json Example() {
  return json::parse(R"({
    "node_id": "ns1",
    "listen": "127.0.0.1:8301",
    "database": {"type": "sqlite", "path": "/var/lib/zonemesh/ns1.db"},
    "peers": [{"id": "ns2", "url": "http://127.0.0.1:8302"}],
    "conflict": {"strategy": "latest-wins"}
  })");
}

Config Parse(const json& j) { return ParseConfig(j.dump(), kDir, kFile); }

// The ConfigError message for `text`, or a failure when it parses.
std::string ErrorOf(const std::string& text) {
  try {
    ParseConfig(text, kDir, kFile);
  } catch (const ConfigError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("UNEXPECTED EXCEPTION TYPE: ") + e.what();
  }
  return "NO ERROR";
}

// Asserts that `j` is refused with a ConfigError naming `key` (as the
// messages quote it: 'key') and the file.
void ExpectKeyError(const json& j, const std::string& key) {
  std::string msg = ErrorOf(j.dump());
  EXPECT_NE(msg.find("'" + key + "'"), std::string::npos)
      << "expected the error to name '" << key << "', got: " << msg;
  EXPECT_NE(msg.find(kFile), std::string::npos) << msg;
}

// ---------------------------------------------------------------- valid --

TEST(ConfigTest, ParsesTheReadmeExample) {
  Config c = Parse(Example());
  EXPECT_EQ(c.file, kFile);
  EXPECT_EQ(c.node_id, "ns1");
  EXPECT_EQ(c.listen.host, "127.0.0.1");
  EXPECT_EQ(c.listen.port, 8301);
  EXPECT_EQ(c.database.dialect, db::Dialect::kSqlite);
  EXPECT_EQ(c.database.path, "/var/lib/zonemesh/ns1.db");
  ASSERT_EQ(c.peers.size(), 1u);
  EXPECT_EQ(c.peers[0].id, "ns2");
  EXPECT_EQ(c.peers[0].url, "http://127.0.0.1:8302");
  EXPECT_EQ(c.peers[0].scheme, "http");
  EXPECT_EQ(c.peers[0].endpoint.host, "127.0.0.1");
  EXPECT_EQ(c.peers[0].endpoint.port, 8302);
  EXPECT_EQ(c.peers[0].base_path, "");
  EXPECT_EQ(c.conflict.strategy, "latest-wins");
  EXPECT_TRUE(c.conflict.tables.empty());
}

TEST(ConfigTest, UnsetSettingsKeepTheirDeclaredDefaults) {
  json j = Example();
  j.erase("peers");
  j.erase("conflict");
  Config c = Parse(j);
  const Config defaults;
  EXPECT_TRUE(c.peers.empty());
  EXPECT_EQ(c.conflict.strategy, defaults.conflict.strategy);
  EXPECT_EQ(c.batch_max_changes, defaults.batch_max_changes);
  EXPECT_EQ(c.batch_max_bytes, defaults.batch_max_bytes);
  EXPECT_EQ(c.max_request_bytes, defaults.max_request_bytes);
  EXPECT_EQ(c.poll_interval_ms, defaults.poll_interval_ms);
  EXPECT_EQ(c.retry_min_ms, defaults.retry_min_ms);
  EXPECT_EQ(c.retry_max_ms, defaults.retry_max_ms);
  EXPECT_EQ(c.request_timeout_ms, defaults.request_timeout_ms);
  EXPECT_EQ(c.heartbeat_interval_ms, defaults.heartbeat_interval_ms);
  EXPECT_EQ(c.link_timeout_ms, defaults.link_timeout_ms);
  EXPECT_EQ(c.outbox_retention_seconds, defaults.outbox_retention_seconds);
  EXPECT_EQ(c.log_level, defaults.log_level);
  EXPECT_EQ(c.database.busy_timeout_ms, db::DatabaseConfig().busy_timeout_ms);
}

TEST(ConfigTest, ParsesEveryTunableSetting) {
  json j = Example();
  j["batch_max_changes"] = 250;
  j["batch_max_bytes"] = 65536;
  j["max_request_bytes"] = 1048576;
  j["poll_interval_ms"] = 25;
  j["retry_min_ms"] = 50;
  j["retry_max_ms"] = 60000;
  j["request_timeout_ms"] = 2500;
  j["heartbeat_interval_ms"] = 250;
  j["link_timeout_ms"] = 2000;
  j["outbox_retention_seconds"] = 86400;
  j["log_level"] = "debug";
  j["anti_entropy"] = {{"interval_seconds", 0}, {"settle_seconds", 5}, {"rehash_seconds", 60}};
  j["database"]["busy_timeout_ms"] = 1234;
  j["conflict"]["tables"] = {{"records", "latest-wins"}};
  Config c = Parse(j);
  EXPECT_EQ(c.batch_max_changes, 250);
  EXPECT_EQ(c.batch_max_bytes, 65536);
  EXPECT_EQ(c.max_request_bytes, 1048576);
  EXPECT_EQ(c.poll_interval_ms, 25);
  EXPECT_EQ(c.retry_min_ms, 50);
  EXPECT_EQ(c.retry_max_ms, 60000);
  EXPECT_EQ(c.request_timeout_ms, 2500);
  EXPECT_EQ(c.heartbeat_interval_ms, 250);
  EXPECT_EQ(c.link_timeout_ms, 2000);
  EXPECT_EQ(c.outbox_retention_seconds, 86400);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.anti_entropy.interval_seconds, 0);
  EXPECT_EQ(c.anti_entropy.settle_seconds, 5);
  EXPECT_EQ(c.anti_entropy.rehash_seconds, 60);
  EXPECT_EQ(c.database.busy_timeout_ms, 1234);
  ASSERT_EQ(c.conflict.tables.size(), 1u);
  EXPECT_EQ(c.conflict.tables.at("records"), "latest-wins");
}

TEST(ConfigTest, ParsesSeveralPeersWithIpv6AndBasePaths) {
  json j = Example();
  j["listen"] = "[::1]:8301";
  j["peers"] = json::array({{{"id", "ns2"}, {"url", "http://[::1]:8302"}},
                            {{"id", "ns3.example-dc_1"}, {"url", "http://10.0.0.3:9000/zm/"}}});
  Config c = Parse(j);
  EXPECT_EQ(c.listen.host, "::1");
  EXPECT_EQ(c.listen.port, 8301);
  EXPECT_EQ(c.listen.ToString(), "[::1]:8301");
  ASSERT_EQ(c.peers.size(), 2u);
  EXPECT_EQ(c.peers[0].endpoint.host, "::1");
  EXPECT_EQ(c.peers[0].endpoint.port, 8302);
  EXPECT_EQ(c.peers[1].id, "ns3.example-dc_1");
  EXPECT_EQ(c.peers[1].endpoint.host, "10.0.0.3");
  EXPECT_EQ(c.peers[1].endpoint.port, 9000);
  EXPECT_EQ(c.peers[1].base_path, "/zm");
}

// ------------------------------------------------------------- databases --

TEST(ConfigDatabaseTest, RelativeSqlitePathResolvesAgainstBaseDir) {
  json j = Example();
  j["database"]["path"] = "data/../db/ns1.db";
  EXPECT_EQ(Parse(j).database.path, "/etc/zonemesh/db/ns1.db");
}

TEST(ConfigDatabaseTest, LoadConfigResolvesRelativePathsAgainstTheFilesDirectory) {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(testing::ScratchDir()) / "config_load" / "etc";
  fs::create_directories(dir);
  fs::path file = dir / "ns1.json";
  json j = Example();
  j["database"]["path"] = "state/ns1.db";
  std::ofstream(file) << j.dump(2);

  Config c = LoadConfig(file.string());
  EXPECT_EQ(c.file, file.string());
  EXPECT_EQ(fs::path(c.database.path), (dir / "state" / "ns1.db").lexically_normal());
  EXPECT_TRUE(fs::path(c.database.path).is_absolute());
  EXPECT_EQ(c.node_id, "ns1");
}

TEST(ConfigDatabaseTest, AbsoluteSqlitePathIsKept) {
  json j = Example();
  j["database"]["path"] = "/srv/db/x.db";
  EXPECT_EQ(Parse(j).database.path, "/srv/db/x.db");
}

TEST(ConfigDatabaseTest, Postgresql) {
  json j = Example();
  j["database"] = {{"type", "postgresql"}, {"conninfo", "host=db.example dbname=pdns user=pdns"}};
  Config c = Parse(j);
  EXPECT_EQ(c.database.dialect, db::Dialect::kPostgres);
  EXPECT_EQ(c.database.conninfo, "host=db.example dbname=pdns user=pdns");
}

TEST(ConfigDatabaseTest, PostgresqlNeedsConninfoAndRefusesSqliteKeys) {
  json j = Example();
  j["database"] = {{"type", "postgresql"}};
  ExpectKeyError(j, "database.conninfo");
  j["database"] = {{"type", "postgresql"}, {"conninfo", "dbname=pdns"}, {"path", "/x.db"}};
  ExpectKeyError(j, "database.path");
}

TEST(ConfigDatabaseTest, MysqlOverTcp) {
  json j = Example();
  j["database"] = {{"type", "mysql"}, {"database", "pdns"}, {"host", "db.example"},
                   {"port", 3307},    {"user", "pdns"},     {"password", "s3cret"}};
  Config c = Parse(j);
  EXPECT_EQ(c.database.dialect, db::Dialect::kMysql);
  EXPECT_EQ(c.database.database, "pdns");
  EXPECT_EQ(c.database.host, "db.example");
  EXPECT_EQ(c.database.port, 3307);
  EXPECT_EQ(c.database.user, "pdns");
  EXPECT_EQ(c.database.password, "s3cret");
  EXPECT_TRUE(c.database.socket.empty());
}

TEST(ConfigDatabaseTest, MysqlDefaultsHostPortAndUser) {
  json j = Example();
  j["database"] = {{"type", "mysql"}, {"database", "pdns"}};
  Config c = Parse(j);
  const db::DatabaseConfig defaults;
  EXPECT_EQ(c.database.host, defaults.host);
  EXPECT_EQ(c.database.port, defaults.port);
  EXPECT_EQ(c.database.user, defaults.user);
}

TEST(ConfigDatabaseTest, MysqlOverASocket) {
  json j = Example();
  j["database"] = {{"type", "mysql"}, {"database", "pdns"}, {"socket", "/run/mysqld/mysqld.sock"}};
  Config c = Parse(j);
  EXPECT_EQ(c.database.dialect, db::Dialect::kMysql);
  EXPECT_EQ(c.database.socket, "/run/mysqld/mysqld.sock");
}

TEST(ConfigDatabaseTest, MysqlSocketWithHostOrPortIsAnError) {
  json j = Example();
  j["database"] = {{"type", "mysql"}, {"database", "pdns"}, {"socket", "/run/m.sock"},
                   {"host", "127.0.0.1"}};
  ExpectKeyError(j, "database.socket");
  j["database"] = {{"type", "mysql"}, {"database", "pdns"}, {"socket", "/run/m.sock"},
                   {"port", 3306}};
  ExpectKeyError(j, "database.socket");
}

TEST(ConfigDatabaseTest, MysqlNeedsADatabaseAndAValidPort) {
  json j = Example();
  j["database"] = {{"type", "mysql"}, {"host", "127.0.0.1"}};
  ExpectKeyError(j, "database.database");
  j["database"] = {{"type", "mysql"}, {"database", "pdns"}, {"port", 0}};
  ExpectKeyError(j, "database.port");
  j["database"] = {{"type", "mysql"}, {"database", "pdns"}, {"port", 65536}};
  ExpectKeyError(j, "database.port");
  j["database"] = {{"type", "mysql"}, {"database", "pdns"}, {"port", "3306"}};
  ExpectKeyError(j, "database.port");
}

TEST(ConfigDatabaseTest, UnknownTypeIsNamed) {
  json j = Example();
  j["database"]["type"] = "oracle";
  ExpectKeyError(j, "database.type");
  j["database"].erase("type");
  ExpectKeyError(j, "database.type");
}

// --------------------------------------------------- errors naming keys --

TEST(ConfigErrorTest, LinkTimeoutMustExceedTheHeartbeatInterval) {
  json j = Example();
  j["heartbeat_interval_ms"] = 5000;
  j["link_timeout_ms"] = 9999;
  ExpectKeyError(j, "link_timeout_ms");
  j["link_timeout_ms"] = 100;
  ExpectKeyError(j, "link_timeout_ms");
}

TEST(ConfigErrorTest, AntiEntropySettingsAreCheckedByName) {
  json j = Example();
  j["anti_entropy"] = {{"interval", 5}};
  ExpectKeyError(j, "anti_entropy.interval");
  j["anti_entropy"] = {{"rehash_seconds", 0}};
  ExpectKeyError(j, "anti_entropy.rehash_seconds");
  j["anti_entropy"] = {{"settle_seconds", -1}};
  ExpectKeyError(j, "anti_entropy.settle_seconds");
  j["anti_entropy"] = 60;
  ExpectKeyError(j, "anti_entropy");
}

TEST(ConfigErrorTest, UnknownTopLevelKey) {
  json j = Example();
  j["colour"] = "blue";
  ExpectKeyError(j, "colour");
}

TEST(ConfigErrorTest, UnknownKeyInsideDatabase) {
  json j = Example();
  j["database"]["pth"] = "/x.db";
  ExpectKeyError(j, "database.pth");
}

TEST(ConfigErrorTest, UnknownKeyInsidePeerAndConflict) {
  json j = Example();
  j["peers"][0]["name"] = "second";
  ExpectKeyError(j, "peers[0].name");
  j = Example();
  j["conflict"]["stratgy"] = "latest-wins";
  ExpectKeyError(j, "conflict.stratgy");
}

TEST(ConfigErrorTest, MissingRequiredKeys) {
  for (const char* key : {"node_id", "listen", "database"}) {
    json j = Example();
    j.erase(key);
    ExpectKeyError(j, key);
  }
  json j = Example();
  j["database"].erase("path");
  ExpectKeyError(j, "database.path");
  j = Example();
  j["database"]["path"] = "";
  ExpectKeyError(j, "database.path");
  j = Example();
  j["peers"][0].erase("url");
  ExpectKeyError(j, "peers[0].url");
  j = Example();
  j["peers"][0].erase("id");
  ExpectKeyError(j, "peers[0].id");
}

TEST(ConfigErrorTest, WrongTypes) {
  struct Case {
    const char* pointer;  // JSON pointer of the value to replace
    json value;
    const char* key;
  };
  const Case cases[] = {
      {"/listen", 8301, "listen"},
      {"/peers", json::object(), "peers"},
      {"/peers", "ns2", "peers"},
      {"/peers/0", "http://127.0.0.1:8302", "peers[0]"},
      {"/peers/0/id", 2, "peers[0].id"},
      {"/node_id", 1, "node_id"},
      {"/database", "sqlite:/x.db", "database"},
      {"/database/path", json::array({"/x.db"}), "database.path"},
      {"/database/type", nullptr, "database.type"},
      {"/conflict", json::array(), "conflict"},
      {"/conflict/strategy", true, "conflict.strategy"},
      {"/conflict/tables", json::array({"records"}), "conflict.tables"},
      {"/batch_max_changes", "1000", "batch_max_changes"},
      {"/batch_max_changes", 10.5, "batch_max_changes"},
      {"/retry_min_ms", true, "retry_min_ms"},
      {"/log_level", 3, "log_level"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.pointer);
    json j = Example();
    j[json::json_pointer(c.pointer)] = c.value;
    ExpectKeyError(j, c.key);
  }
}

TEST(ConfigErrorTest, TopLevelMustBeAnObject) {
  std::string msg = ErrorOf("[1, 2]");
  EXPECT_NE(msg.find("top level"), std::string::npos) << msg;
}

TEST(ConfigErrorTest, BadNodeIds) {
  for (const char* id : {"", "-ns1", ".ns1", "ns 1", "ns1/a", "ns\xc3\xa9",
                         "n123456789012345678901234567890123456789012345678901234567890123"}) {
    json j = Example();
    j["node_id"] = id;
    SCOPED_TRACE(id);
    ExpectKeyError(j, "node_id");
  }
}

TEST(ConfigErrorTest, NodeIdRules) {
  EXPECT_TRUE(IsValidNodeId("ns1"));
  EXPECT_TRUE(IsValidNodeId("A"));
  EXPECT_TRUE(IsValidNodeId("9.a_b-c"));
  EXPECT_TRUE(IsValidNodeId(std::string(63, 'x')));
  EXPECT_FALSE(IsValidNodeId(std::string(64, 'x')));
  EXPECT_FALSE(IsValidNodeId(""));
  EXPECT_FALSE(IsValidNodeId("_ns"));
  EXPECT_FALSE(IsValidNodeId("ns1\n"));
  EXPECT_FALSE(IsValidNodeId("ns:1"));
}

TEST(ConfigErrorTest, BadListenAddresses) {
  for (const char* listen : {"127.0.0.1", "127.0.0.1:", ":8301", "127.0.0.1:0", "127.0.0.1:65536",
                             "127.0.0.1:http", "127.0.0.1:-1", "127.0.0.1:123456", "[::1]8301",
                             "[::1]", "[::1", ""}) {
    json j = Example();
    j["listen"] = listen;
    SCOPED_TRACE(listen);
    ExpectKeyError(j, "listen");
  }
}

// "[]:8301" has an empty host like ":8301": refused at load time, not when
// the daemon tries to bind.
TEST(ConfigErrorTest, EmptyBracketedListenHostIsRefused) {
  json j = Example();
  j["listen"] = "[]:8301";
  ExpectKeyError(j, "listen");
  EXPECT_THROW(ParseEndpoint("[]:8301"), std::invalid_argument);
}

TEST(ConfigErrorTest, ListenPortBoundaries) {
  json j = Example();
  j["listen"] = "0.0.0.0:1";
  EXPECT_EQ(Parse(j).listen.port, 1);
  j["listen"] = "0.0.0.0:65535";
  EXPECT_EQ(Parse(j).listen.port, 65535);
}

TEST(ConfigErrorTest, PeerWithThisNodesOwnId) {
  json j = Example();
  j["peers"].push_back({{"id", "ns1"}, {"url", "http://127.0.0.1:8303"}});
  ExpectKeyError(j, "peers[1].id");
}

TEST(ConfigErrorTest, DuplicatePeerIds) {
  json j = Example();
  j["peers"].push_back({{"id", "ns2"}, {"url", "http://127.0.0.1:8303"}});
  ExpectKeyError(j, "peers[1].id");
}

TEST(ConfigErrorTest, InvalidPeerId) {
  json j = Example();
  j["peers"][0]["id"] = "ns 2";
  ExpectKeyError(j, "peers[0].id");
}

TEST(ConfigErrorTest, MalformedPeerUrls) {
  for (const char* url : {"127.0.0.1:8302", "http://127.0.0.1", "http://127.0.0.1:", "ftp://h:21",
                          "http://:8302", "http://127.0.0.1:0", "http://127.0.0.1:65536",
                          "http://127.0.0.1:8302x", "http//127.0.0.1:8302", ""}) {
    json j = Example();
    j["peers"][0]["url"] = url;
    SCOPED_TRACE(url);
    ExpectKeyError(j, "peers[0].url");
  }
}

TEST(ConfigErrorTest, HttpsPeerUrlWithoutTls) {
  json j = Example();
  j["peers"][0]["url"] = "https://127.0.0.1:8302";
  ExpectKeyError(j, "peers[0].url");
  EXPECT_NE(ErrorOf(j.dump()).find("tls"), std::string::npos);
}

TEST(ConfigErrorTest, UnknownConflictStrategy) {
  json j = Example();
  j["conflict"]["strategy"] = "first-wins";
  ExpectKeyError(j, "conflict.strategy");
  EXPECT_NE(ErrorOf(j.dump()).find("latest-wins"), std::string::npos)
      << "the error should list the known strategies";
}

TEST(ConfigErrorTest, ConflictTablesMustNameReplicatedTablesAndKnownStrategies) {
  json j = Example();
  j["conflict"]["tables"] = {{"recordz", "latest-wins"}};
  ExpectKeyError(j, "conflict.tables.recordz");
  j["conflict"]["tables"] = {{"records", "first-wins"}};
  ExpectKeyError(j, "conflict.tables.records");
  j["conflict"]["tables"] = {{"records", 1}};
  ExpectKeyError(j, "conflict.tables.records");
}

TEST(ConfigErrorTest, OutOfRangeIntegers) {
  struct Case {
    const char* pointer;
    int64_t value;
    const char* key;
  };
  const Case cases[] = {
      {"/batch_max_changes", 0, "batch_max_changes"},
      {"/batch_max_changes", 100001, "batch_max_changes"},
      {"/batch_max_bytes", 4095, "batch_max_bytes"},
      {"/max_request_bytes", 100, "max_request_bytes"},
      {"/poll_interval_ms", 0, "poll_interval_ms"},
      {"/poll_interval_ms", -10, "poll_interval_ms"},
      {"/retry_min_ms", 0, "retry_min_ms"},
      {"/request_timeout_ms", 99, "request_timeout_ms"},
      {"/outbox_retention_seconds", -1, "outbox_retention_seconds"},
      {"/database/busy_timeout_ms", -1, "database.busy_timeout_ms"},
      {"/database/busy_timeout_ms", 600001, "database.busy_timeout_ms"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.pointer) + " = " + std::to_string(c.value));
    json j = Example();
    j[json::json_pointer(c.pointer)] = c.value;
    ExpectKeyError(j, c.key);
  }
}

TEST(ConfigErrorTest, IntegerRangeBoundariesAreAccepted) {
  json j = Example();
  j["batch_max_changes"] = 1;
  EXPECT_EQ(Parse(j).batch_max_changes, 1);
  j["batch_max_changes"] = 100000;
  EXPECT_EQ(Parse(j).batch_max_changes, 100000);
  j["outbox_retention_seconds"] = 0;
  EXPECT_EQ(Parse(j).outbox_retention_seconds, 0);
}

TEST(ConfigErrorTest, InconsistentLimits) {
  json j = Example();
  j["retry_min_ms"] = 5000;
  j["retry_max_ms"] = 100;
  ExpectKeyError(j, "retry_max_ms");
  j = Example();
  j["batch_max_bytes"] = 1 << 20;
  j["max_request_bytes"] = 1 << 19;
  ExpectKeyError(j, "max_request_bytes");
}

TEST(ConfigErrorTest, UnknownLogLevel) {
  json j = Example();
  j["log_level"] = "verbose";
  ExpectKeyError(j, "log_level");
}

TEST(ConfigErrorTest, InvalidJson) {
  for (const char* text : {"", "{", "{\"node_id\": \"ns1\",}", "node_id = ns1"}) {
    std::string msg = ErrorOf(text);
    SCOPED_TRACE(text);
    EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
    EXPECT_NE(msg.find(kFile), std::string::npos) << msg;
  }
}

TEST(ConfigErrorTest, UnreadableFile) {
  const std::string missing = testing::ScratchDir() + "/no/such/zonemesh.json";
  try {
    LoadConfig(missing);
    ADD_FAILURE() << "a missing file loaded";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  // A directory is not a config file either.
  const std::string dir = testing::ScratchDir();
  try {
    LoadConfig(dir);
    ADD_FAILURE() << "a directory loaded";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(dir), std::string::npos) << e.what();
  }
}

// A directory opens as an empty stream; it must be reported as unreadable,
// not as invalid JSON.
TEST(ConfigErrorTest, DirectoryIsReportedAsUnreadableNotAsInvalidJson) {
  const std::string dir = testing::ScratchDir();
  try {
    LoadConfig(dir);
    ADD_FAILURE() << "a directory loaded";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be read"), std::string::npos) << e.what();
  }
}

TEST(ConfigErrorTest, NumberOutOfRangeIsInvalidJson) {
  try {
    ParseConfig("{\"node_id\": \"ns1\", \"poll_interval_ms\": 1e999}", "/tmp", "big.json");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace zonemesh
