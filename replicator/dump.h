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
// Physical duplicates with identical values collapse into one line;
// duplicates that differ stay as separate lines.
std::vector<std::string> CanonicalDump(db::Connection& conn);

// SHA-256 over the dump lines.
std::string DumpChecksum(const std::vector<std::string>& lines);

// DNS sanity problems: a zone with no SOA or more than one SOA record, a
// zone name twice, rows of zone tables whose zone does not exist. Empty
// when the data is sane.
std::vector<std::string> SanityProblems(db::Connection& conn);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_DUMP_H_
