#include "db/open.h"

#include "db/mysql/mysql_connection.h"
#include "db/postgresql/postgresql_connection.h"
#include "db/sqlite/sqlite_connection.h"

namespace zonemesh::db {

std::unique_ptr<Connection> Open(const DatabaseConfig& config) {
  switch (config.dialect) {
    case Dialect::kSqlite:
      return OpenSqlite(config);
    case Dialect::kPostgres:
      return OpenPostgres(config);
    case Dialect::kMysql:
      return OpenMysql(config);
  }
  throw Error(Error::Kind::kOther, "unknown database type");
}

}  // namespace zonemesh::db
