#include "tests/support/test_db.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace zonemesh::testing {

std::vector<db::Dialect> AllDialects() {
  return {db::Dialect::kSqlite, db::Dialect::kPostgres, db::Dialect::kMysql};
}

std::string DialectParamName(db::Dialect d) { return std::string(db::DialectName(d)); }

// Ports come from the environment when set (a developer's own servers),
// else from the build's configuration.
static int EnvPort(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

int TestPostgresPort() { return EnvPort("ZONEMESH_TEST_PG_PORT", ZONEMESH_TEST_PG_PORT_DEFAULT); }
int TestMysqlPort() { return EnvPort("ZONEMESH_TEST_MYSQL_PORT", ZONEMESH_TEST_MYSQL_PORT_DEFAULT); }

std::string ScratchDir() {
  static std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::filesystem::path p = std::filesystem::path(base && *base ? base : "/tmp") /
                              ("zonemesh-test-" + std::to_string(getpid()));
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    return p.string();
  }();
  return dir;
}

std::string BuiltBinaryPath() {
  const char* v = std::getenv("ZONEMESH_BINARY");
  return v && *v ? v : ZONEMESH_TEST_BINARY_DEFAULT;
}

std::string BuiltPluginPath() {
  const char* v = std::getenv("ZONEMESH_TEST_PLUGIN");
  return v && *v ? v : ZONEMESH_TEST_PLUGIN_DEFAULT;
}

// A prefix unique to the running test: ctest runs test cases in parallel
// against the same servers, so two tests must never share a database name.
static std::string TestPrefix() {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string full = info ? std::string(info->test_suite_name()) + "." + info->name() : "no-test";
  uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : full) h = (h ^ c) * 16777619u;
  char buf[16];
  std::snprintf(buf, sizeof buf, "t%08x_", h);
  return buf;
}

namespace {

std::string PostgresConninfo(const std::string& dbname) {
  return "host=127.0.0.1 port=" + std::to_string(TestPostgresPort()) +
         " user=postgres connect_timeout=5 dbname=" + dbname;
}

// The test server of `dialect`, connected to no particular database.
db::DatabaseConfig ServerAdmin(db::Dialect dialect) {
  db::DatabaseConfig cfg;
  cfg.dialect = dialect;
  if (dialect == db::Dialect::kPostgres) {
    cfg.conninfo = PostgresConninfo("postgres");
  } else {
    cfg.host = "127.0.0.1";
    cfg.port = TestMysqlPort();
    cfg.user = "root";
  }
  return cfg;
}

}  // namespace

db::DatabaseConfig CreateServerDatabase(db::Dialect dialect, const std::string& name) {
  DropServerDatabase(dialect, name);
  db::DatabaseConfig cfg = ServerAdmin(dialect);
  if (dialect == db::Dialect::kPostgres) {
    db::Open(cfg)->ExecuteDdl("CREATE DATABASE " + name);
    cfg.conninfo = PostgresConninfo(name);
  } else {
    db::Open(cfg)->ExecuteDdl("CREATE DATABASE " + name + " CHARACTER SET utf8mb4");
    cfg.database = name;
  }
  return cfg;
}

void DropServerDatabase(db::Dialect dialect, const std::string& name) {
  db::Open(ServerAdmin(dialect))
      ->ExecuteDdl("DROP DATABASE IF EXISTS " + name +
                   (dialect == db::Dialect::kPostgres ? " WITH (FORCE)" : ""));
}

db::DatabaseConfig FreshDatabase(db::Dialect dialect, const std::string& base_name) {
  for (char c : base_name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      throw std::invalid_argument("bad test database name: " + base_name);
  }
  const std::string name = (TestPrefix() + base_name).substr(0, 60);
  db::DatabaseConfig cfg;
  cfg.dialect = dialect;
  switch (dialect) {
    case db::Dialect::kSqlite: {
      cfg.path = ScratchDir() + "/" + name + ".db";
      for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(cfg.path + suffix);
      cfg.create_if_missing = true;
      db::Open(cfg);  // creates the file
      cfg.create_if_missing = false;
      return cfg;
    }
    case db::Dialect::kPostgres:
    case db::Dialect::kMysql:
      return CreateServerDatabase(dialect, name);
  }
  return cfg;
}

}  // namespace zonemesh::testing
