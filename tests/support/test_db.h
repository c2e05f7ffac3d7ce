// Throwaway databases for tests: a fresh, empty database per call on the
// SQLite file system, the test PostgreSQL server or the test MariaDB server
// (started by tests/servers/dbservers.sh as a CTest fixture; their ports come
// from ZONEMESH_TEST_PG_PORT and ZONEMESH_TEST_MYSQL_PORT).
#ifndef ZONEMESH_TESTS_SUPPORT_TEST_DB_H_
#define ZONEMESH_TESTS_SUPPORT_TEST_DB_H_

#include <string>
#include <vector>

#include "db/connection.h"
#include "db/open.h"

namespace zonemesh::testing {

// All dialects: parameter list for parameterized suites.
std::vector<db::Dialect> AllDialects();

// A printable name for gtest parameter names.
std::string DialectParamName(db::Dialect d);

// Creates (dropping any previous one) an empty database and returns its
// config. Its name is `base_name` prefixed with a hash of the running test's
// name, so tests running in parallel never share a database. SQLite files
// live under a per-process temp dir.
// REQUIRES: base_name is [a-z0-9_]+.
db::DatabaseConfig FreshDatabase(db::Dialect dialect, const std::string& base_name);

// A database with exactly this name on the test PostgreSQL or MariaDB
// server, created empty (dropping any previous one), and its removal.
// REQUIRES: dialect is kPostgres or kMysql.
db::DatabaseConfig CreateServerDatabase(db::Dialect dialect, const std::string& name);
void DropServerDatabase(db::Dialect dialect, const std::string& name);

// Host-side connection parameters of the test servers.
int TestPostgresPort();
int TestMysqlPort();

// A per-process scratch directory, created on first use.
std::string ScratchDir();

// Paths of build products the tests use: $ZONEMESH_BINARY and
// $ZONEMESH_TEST_PLUGIN when set, else the ones this build produced.
std::string BuiltBinaryPath();
std::string BuiltPluginPath();

}  // namespace zonemesh::testing

#endif  // ZONEMESH_TESTS_SUPPORT_TEST_DB_H_
