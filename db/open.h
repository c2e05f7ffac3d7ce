// Opening a database connection from its configuration.
#ifndef ZONEMESH_DB_OPEN_H_
#define ZONEMESH_DB_OPEN_H_

#include <memory>
#include <optional>
#include <string>

#include "db/connection.h"

namespace zonemesh::db {

// The "database" section of the config file. Which fields apply depends on
// `dialect`; config validation rejects fields that do not belong.
struct DatabaseConfig {
  Dialect dialect = Dialect::kSqlite;

  // sqlite: path of the database file (absolute after config loading).
  std::string path;
  // sqlite: how long a statement waits for another writer's lock.
  int busy_timeout_ms = 10000;
  // sqlite: create the file when it does not exist (install --create-schema);
  // otherwise a missing file is an error, not a new empty database.
  bool create_if_missing = false;
  // sqlite: write transactions wait (briefly) for other processes' read
  // transactions to end and roll back rather than commit under one that
  // started meanwhile, so that PowerDNS's transactions, which read before
  // they write, rarely fail with "database is locked" because of zonemesh.
  // On for the daemon's and the CLI's sessions (ParseConfig); off for a
  // plain writer, which then takes the write lock at BEGIN.
  bool yield_to_readers = false;

  // postgresql: a libpq connection string ("host=... port=... dbname=...").
  std::string conninfo;

  // mysql: TCP (host, port) or a unix socket.
  std::string host = "127.0.0.1";
  int port = 3306;
  std::string socket;
  std::string user = "root";
  std::string password;
  std::string database;
};

// Opens a new connection. Throws db::Error (kind kConnection) with the target
// named when the database cannot be reached or opened.
std::unique_ptr<Connection> Open(const DatabaseConfig& config);

}  // namespace zonemesh::db

#endif  // ZONEMESH_DB_OPEN_H_
