// SQLite driver for db::Connection.
#ifndef ZONEMESH_DB_SQLITE_SQLITE_CONNECTION_H_
#define ZONEMESH_DB_SQLITE_SQLITE_CONNECTION_H_

#include <memory>

#include "db/connection.h"
#include "db/open.h"

namespace zonemesh::db {

// Opens `config.path` in WAL mode with foreign keys off (zonemesh deletes
// children explicitly, the same way on every database).
std::unique_ptr<Connection> OpenSqlite(const DatabaseConfig& config);

}  // namespace zonemesh::db

#endif  // ZONEMESH_DB_SQLITE_SQLITE_CONNECTION_H_
