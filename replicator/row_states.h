// Rows as their versioned states: a table's rows with their version records
// (zm_rowver), and the tombstones of deleted rows, as changes a receiver
// merges by row version (Applier::ApplySnapshotRows). Joining snapshots
// (replicator/snapshot.h) and anti-entropy repairs
// (replicator/anti_entropy.h) carry rows this way.
#ifndef ZONEMESH_REPLICATOR_ROW_STATES_H_
#define ZONEMESH_REPLICATOR_ROW_STATES_H_

#include <string>
#include <vector>

#include "db/connection.h"
#include "replicator/wire.h"
#include "schema/spec.h"

namespace zonemesh {

// The states of fetched rows of `spec`: each row's zone is r[zone_column]
// (children only), its shipped columns start at r[first_column]
// (TableSql::ImageOf). Rows without a zone and node-local rows
// (CATALOG-HASH) are left out; a row never versioned belongs to its zone's
// current incarnation.
std::vector<Change> VersionedRows(db::Connection& conn, const schema::TableSpec& spec,
                                  const std::vector<db::Row>& data, size_t zone_column,
                                  size_t first_column);

// The columns of zm_rowver that TombstoneOf reads, in its order, for
// "SELECT <kTombstoneColumns> FROM zm_rowver WHERE deleted = 1 ...".
inline constexpr const char* kTombstoneColumns =
    "tbl, kid, rkey, hlc, node, vv, epoch_hlc, epoch_node, gepoch_hlc, gepoch_node, siblings";

// The delete a tombstone row stands for; false (with a warning) when its
// table or key cannot be read.
bool TombstoneOf(const db::Row& r, Change* out);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_ROW_STATES_H_
