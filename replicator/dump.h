// The canonical dump: every replicated row by natural key, with zone names
// instead of local ids and values normalized across databases. Two nodes
// hold the same replicated data exactly when their dumps are equal; this is
// how tests and operators compare nodes (`zonemesh dump`).
#ifndef ZONEMESH_REPLICATOR_DUMP_H_
#define ZONEMESH_REPLICATOR_DUMP_H_

#include <string>
#include <vector>

#include "db/connection.h"

namespace zonemesh {

// One JSON line per logical row, sorted: {"t":table,"k":key,"row":{...}}.
// Physical copies with identical values are one line with their number
// ("copies": n); copies that differ stay as separate lines. Node-local rows
// (CATALOG-HASH) are left out.
std::vector<std::string> CanonicalDump(db::Connection& conn);

// A dump line with the table and natural key of its row.
struct DumpLine {
  std::string table;
  std::string key;
  std::string text;
};

// The lines of CanonicalDump that belong to `zone` (its domains row and its
// rows in zone tables; "" for the tables without zones), in dump order.
std::vector<DumpLine> ZoneDumpLines(db::Connection& conn, const std::string& zone);

// Rows of a dump stored more than once (a replica holds one copy of a
// logical row; docs/replication-model.md, "Exact duplicates"). Empty when
// every logical row is one physical row.
std::vector<std::string> CopyProblems(const std::vector<std::string>& dump);

// SHA-256 over the dump lines.
std::string DumpChecksum(const std::vector<std::string>& lines);

// DNS sanity problems: a zone with no SOA or more than one SOA record, a
// zone name twice, rows of zone tables whose zone does not exist. Empty
// when the data is sane.
std::vector<std::string> SanityProblems(db::Connection& conn);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_DUMP_H_
