// PostgreSQL driver for db::Connection, on libpqxx.
#ifndef ZONEMESH_DB_POSTGRESQL_POSTGRESQL_CONNECTION_H_
#define ZONEMESH_DB_POSTGRESQL_POSTGRESQL_CONNECTION_H_

#include <memory>

#include "db/connection.h"
#include "db/open.h"

namespace zonemesh::db {

// Connects with `config.conninfo`. Sessions run READ COMMITTED in UTC.
std::unique_ptr<Connection> OpenPostgres(const DatabaseConfig& config);

}  // namespace zonemesh::db

#endif  // ZONEMESH_DB_POSTGRESQL_POSTGRESQL_CONNECTION_H_
