// Capture trigger DDL, generated from the table specs for each dialect.
//
// For every replicated table, AFTER INSERT/UPDATE/DELETE triggers record each
// row change in the writer's own transaction:
//   - the row's natural key and its new image (old image for deletes), with
//     the parent zone's name instead of domain_id;
//   - a new row version: max(wall clock, row clock + 1) microseconds, with
//     this node's entry of the row's version vector set to it, read from and
//     written back to zm_rowver (the serialization point between local
//     writers and the applier); deletes leave a tombstone;
//   - the zone incarnation (epoch) the change belongs to;
//   - one zm_outbox row.
// Changes made by zonemesh's applier are skipped (db/session_flag.h), updates
// touching only node-local columns are skipped, and a delete is skipped while
// another physical row with the same natural key remains.
#ifndef ZONEMESH_TRIGGERS_CAPTURE_H_
#define ZONEMESH_TRIGGERS_CAPTURE_H_

#include <string>
#include <vector>

#include "db/connection.h"
#include "schema/spec.h"

namespace zonemesh::triggers {

// Statements creating the shared routines (PostgreSQL function, MySQL
// procedure) the per-table triggers call; empty for SQLite.
std::vector<std::string> SharedRoutineDdl(db::Dialect dialect);
std::vector<std::string> DropSharedRoutineDdl(db::Dialect dialect);

// Statements creating the capture triggers of one table. `node_id` is
// embedded as the origin of local versions. REQUIRES: node_id is a valid
// node id (config validation).
std::vector<std::string> CaptureTriggerDdl(db::Dialect dialect, const schema::TableSpec& spec,
                                           const std::string& node_id);

// Statements dropping them (IF EXISTS: safe on a partial install).
std::vector<std::string> DropCaptureTriggerDdl(db::Dialect dialect,
                                               const schema::TableSpec& spec);

// The trigger names created for a table, for checks and status.
std::vector<std::string> CaptureTriggerNames(const schema::TableSpec& spec);

}  // namespace zonemesh::triggers

#endif  // ZONEMESH_TRIGGERS_CAPTURE_H_
