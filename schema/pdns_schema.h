// The stock PowerDNS generic-SQL schema (4.7+, unchanged in 4.8/4.9), as
// PowerDNS ships it in schema/pdns/, embedded at build time.
#ifndef ZONEMESH_SCHEMA_PDNS_SCHEMA_H_
#define ZONEMESH_SCHEMA_PDNS_SCHEMA_H_

#include <string>
#include <string_view>
#include <vector>

#include "db/connection.h"

namespace zonemesh::schema {

struct SchemaStatement {
  std::string table;  // the table a CREATE TABLE / CREATE INDEX belongs to
  std::string sql;
};

// The schema file's text for a dialect.
std::string_view PowerDnsSchemaText(db::Dialect dialect);

// Its CREATE TABLE and CREATE INDEX statements, in file order, comments and
// PRAGMAs removed.
std::vector<SchemaStatement> PowerDnsSchemaStatements(db::Dialect dialect);

// The tables PowerDNS's schema creates.
std::vector<std::string> PowerDnsTableNames();

}  // namespace zonemesh::schema

#endif  // ZONEMESH_SCHEMA_PDNS_SCHEMA_H_
