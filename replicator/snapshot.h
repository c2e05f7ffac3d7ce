// Snapshots for joining nodes (`zonemesh join`, or a daemon's first start on
// an empty database).
//
// The serving node opens a session: one read-only snapshot transaction on a
// connection of its own, held while the joining node pulls pages of rows,
// so the whole snapshot is consistent, and memory on both sides is bounded
// by a page. The session's header carries the serving node's last stamped
// position and the positions it holds of every other origin, read in the
// same snapshot: the joining node records them, and every peer then resumes
// its stream exactly where the snapshot ends.
//
//   POST /v1/snapshot/begin  -> {"token", "origin", "position", "applied", "horizon"}
//   POST /v1/snapshot/next   {"token", "cursor"} -> {"rows": [...], "cursor"} (null when done)
//   POST /v1/snapshot/end    {"token"}
//
// Rows are the tables' data rows in spec order (zones first), each with its
// version record, then the tombstones of deleted rows. The requests are
// signed like pushes when auth is on: a snapshot holds TSIG secrets and
// DNSSEC private keys.
#ifndef ZONEMESH_REPLICATOR_SNAPSHOT_H_
#define ZONEMESH_REPLICATOR_SNAPSHOT_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "conflict/strategy.h"
#include "db/connection.h"
#include "replicator/config.h"
#include "replicator/wire.h"

namespace zonemesh {

class SnapshotService {
 public:
  using ConnectionFactory = std::function<std::unique_ptr<db::Connection>()>;

  SnapshotService(ConnectionFactory open, std::string node_id, int64_t history_retention_seconds);

  // Each throws std::runtime_error (db::Error for the database) with a
  // message for the joining node; an unknown token is std::out_of_range.
  nlohmann::json Begin();
  nlohmann::json Next(const std::string& token, const nlohmann::json& cursor);
  void End(const std::string& token);

  // Closes sessions idle for longer than a minute.
  void Reap();

  // Rows per page.
  static constexpr int kPageRows = 1000;
  // Sessions open at once.
  static constexpr size_t kMaxSessions = 2;

 private:
  struct Session;
  nlohmann::json Page(Session& s, const nlohmann::json& cursor);

  ConnectionFactory open_;
  const std::string node_id_;
  const int64_t history_retention_seconds_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Session>> sessions_;
};

// The joining side: pulls a snapshot from `peer` and merges it into `conn`'s
// database by row version, then records the positions so that the live
// stream continues without a gap. The daemon must not run on this database
// (the caller holds the daemon lock). With discard_local, the PowerDNS
// tables and zonemesh's state are emptied first (a node that needs a
// resync); otherwise rows the peer does not have are kept.
struct JoinStats {
  int64_t rows = 0;
  int64_t tombstones = 0;
  int64_t pages = 0;
  Position position;  // of the peer's own stream
};

struct JoinOptions {
  std::string node_id;
  std::string peer_id;
  std::string fingerprint;
  std::string auth_secret;  // empty: unsigned
  Endpoint endpoint;
  std::string base_path;
  int timeout_ms = 30000;
  bool discard_local = false;
  const TlsConfig* tls = nullptr;  // for an https:// peer
};

JoinStats JoinFromPeer(const JoinOptions& options, db::Connection& apply_conn,
                       const conflict::Policy& policy);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_SNAPSHOT_H_
