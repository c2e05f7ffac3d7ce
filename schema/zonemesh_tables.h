// zonemesh's own tables, created by `zonemesh install` beside the PowerDNS
// tables (which are never altered):
//
//   zm_meta      name/value: node_id, schema_version, last_csn, purged_upto
//   zm_outbox    captured changes; csn (commit sequence) is stamped by the
//                daemon after the writer committed, see replicator/outbox.h
//   zm_rowver    per logical row: version (hlc, node) of its current state,
//                version vector, clock (highest hlc seen), tombstone flag,
//                zone and incarnation epoch, group incarnation, and the
//                concurrent states (siblings) a strategy decided between
//   zm_group     per set of rows PowerDNS replaces as a whole (an RRset, a
//                metadata kind): its incarnation, and the emptying delete
//                that may start the next one
//   zm_zone      per zone: the incarnation its serial clock belongs to and
//                the clock's base (docs/replication-model.md, "Serials")
//   zm_serial    per zone and origin: the clock's explicit (SOA writes) and
//                implicit (commit rounds without one) counts
//   zm_peer      per peer: the last position it acknowledged (send cursor)
//   zm_applied   per origin: the last position applied here (and staged,
//                for a commit round larger than one batch)
//   zm_stage     changes of an incomplete round, applied when it completes
//   zm_parked    changes waiting for their zone incarnation to arrive
//   zm_conflict  every conflict: both images, versions, decision, reason,
//                and for parked ones how and when they were resolved
#ifndef ZONEMESH_SCHEMA_ZONEMESH_TABLES_H_
#define ZONEMESH_SCHEMA_ZONEMESH_TABLES_H_

#include <string>
#include <vector>

#include "db/connection.h"

namespace zonemesh::schema {

inline constexpr int kZonemeshSchemaVersion = 2;

// Table names in creation order.
const std::vector<std::string>& ZonemeshTableNames();

// CREATE TABLE/INDEX IF NOT EXISTS statements for the dialect.
std::vector<std::string> ZonemeshTableDdl(db::Dialect dialect);

// ALTER TABLE statements that bring the tables of schema version 1 to the
// columns of version 2 (the tables version 2 added are created by
// ZonemeshTableDdl).
std::vector<std::string> UpgradeFromV1Ddl(db::Dialect dialect);

// DROP TABLE IF EXISTS statements, reverse order.
std::vector<std::string> DropZonemeshTableDdl(db::Dialect dialect);

}  // namespace zonemesh::schema

#endif  // ZONEMESH_SCHEMA_ZONEMESH_TABLES_H_
