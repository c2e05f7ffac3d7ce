#include "db/mysql/mysql_connection.h"
namespace zonemesh::db {
std::unique_ptr<Connection> OpenMysql(const DatabaseConfig&) {
  throw Error(Error::Kind::kConnection, "mysql: driver not built");
}
}  // namespace zonemesh::db
