// `zonemesh install` and `uninstall`: zonemesh's tables and capture triggers
// beside an existing PowerDNS schema, which stays untouched.
#ifndef ZONEMESH_REPLICATOR_INSTALLER_H_
#define ZONEMESH_REPLICATOR_INSTALLER_H_

#include <stdexcept>
#include <string>
#include <vector>

#include "db/connection.h"

namespace zonemesh {

// The database is not one zonemesh can work on; what() says why and what to do.
class InstallError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct InstallState {
  std::vector<std::string> missing_pdns_tables;  // PowerDNS tables not present
  bool installed = false;                        // zonemesh's tables are present
  int schema_version = 0;
  std::string node_id;                           // the node id install embedded
};

InstallState Inspect(db::Connection& conn);

// Every statement install runs after the PowerDNS schema checks, in order
// (for `zonemesh install --print-sql`).
std::vector<std::string> InstallStatements(db::Dialect dialect, const std::string& node_id);
std::vector<std::string> UninstallStatements(db::Dialect dialect);

// Idempotent. With create_schema, first creates the stock PowerDNS tables
// that are missing. Refuses (InstallError) a database without the PowerDNS
// tables, tables lacking a column zonemesh replicates, or an installation
// made for another node id.
void Install(db::Connection& conn, const std::string& node_id, bool create_schema);

// Removes exactly what Install added; PowerDNS's tables and data stay.
void Uninstall(db::Connection& conn);

// Throws InstallError unless zonemesh is installed for `node_id` with this
// version's schema (checked by `run` at start).
void RequireInstalled(db::Connection& conn, const std::string& node_id);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_INSTALLER_H_
