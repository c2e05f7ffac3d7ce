#include "db/postgresql/postgresql_connection.h"
namespace zonemesh::db {
std::unique_ptr<Connection> OpenPostgres(const DatabaseConfig&) {
  throw Error(Error::Kind::kConnection, "postgresql: driver not built");
}
}  // namespace zonemesh::db
