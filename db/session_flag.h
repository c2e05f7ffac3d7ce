// How an applier session is marked so that capture triggers skip its writes.
// The drivers set the mark (Connection::SetApplying) and the trigger
// generator tests it; both read these constants so they cannot drift apart.
#ifndef ZONEMESH_DB_SESSION_FLAG_H_
#define ZONEMESH_DB_SESSION_FLAG_H_

namespace zonemesh::db {

// SQLite has no session variables and a trigger in the main schema cannot
// read TEMP objects, but it can read per-connection pragmas. The applier
// sets this page-cache size (in KiB, negative by SQLite's convention); no
// other program uses this exact value.
inline constexpr int kSqliteApplyingCacheSize = -7919;
inline constexpr int kSqliteDefaultCacheSize = -2000;

// PostgreSQL: a custom setting, settable by any role, session-scoped.
inline constexpr const char* kPostgresApplyingSetting = "zonemesh.applying";

// MySQL/MariaDB: a user variable, session-scoped.
inline constexpr const char* kMysqlApplyingVariable = "@zonemesh_applying";

// PostgreSQL NOTIFY channel the capture triggers signal.
inline constexpr const char* kPostgresNotifyChannel = "zonemesh_outbox";

}  // namespace zonemesh::db

#endif  // ZONEMESH_DB_SESSION_FLAG_H_
