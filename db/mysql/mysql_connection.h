// MySQL/MariaDB driver for db::Connection, on MariaDB Connector/C.
#ifndef ZONEMESH_DB_MYSQL_MYSQL_CONNECTION_H_
#define ZONEMESH_DB_MYSQL_MYSQL_CONNECTION_H_

#include <memory>

#include "db/connection.h"
#include "db/open.h"

namespace zonemesh::db {

// Connects over TCP (host, port) or `socket`, utf8mb4, READ COMMITTED,
// CLIENT_FOUND_ROWS (UPDATE reports matched rows like the other drivers).
std::unique_ptr<Connection> OpenMysql(const DatabaseConfig& config);

}  // namespace zonemesh::db

#endif  // ZONEMESH_DB_MYSQL_MYSQL_CONNECTION_H_
