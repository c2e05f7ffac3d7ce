#include "tests/support/test_db.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace zonemesh::testing {

std::vector<db::Dialect> AllDialects() {
  return {db::Dialect::kSqlite, db::Dialect::kPostgres, db::Dialect::kMysql};
}

std::string DialectParamName(db::Dialect d) { return std::string(db::DialectName(d)); }

static int EnvPort(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

int TestPostgresPort() { return EnvPort("ZONEMESH_TEST_PG_PORT", 55432); }
int TestMysqlPort() { return EnvPort("ZONEMESH_TEST_MYSQL_PORT", 53306); }

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

db::DatabaseConfig FreshDatabase(db::Dialect dialect, const std::string& name) {
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
      throw std::invalid_argument("bad test database name: " + name);
  }
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
    case db::Dialect::kPostgres: {
      std::string base = "host=127.0.0.1 port=" + std::to_string(TestPostgresPort()) +
                         " user=postgres connect_timeout=5";
      db::DatabaseConfig admin = cfg;
      admin.conninfo = base + " dbname=postgres";
      auto c = db::Open(admin);
      c->ExecuteDdl("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
      c->ExecuteDdl("CREATE DATABASE " + name);
      cfg.conninfo = base + " dbname=" + name;
      return cfg;
    }
    case db::Dialect::kMysql: {
      cfg.host = "127.0.0.1";
      cfg.port = TestMysqlPort();
      cfg.user = "root";
      auto c = db::Open(cfg);
      c->ExecuteDdl("DROP DATABASE IF EXISTS " + name);
      c->ExecuteDdl("CREATE DATABASE " + name + " CHARACTER SET utf8mb4");
      cfg.database = name;
      return cfg;
    }
  }
  return cfg;
}

}  // namespace zonemesh::testing
