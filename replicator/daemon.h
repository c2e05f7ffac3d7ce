// `zonemesh run`: the replication daemon of one node.
//
// Threads: the outbox thread stamps commit rounds as writers commit (woken by
// the database's change signal) and does housekeeping; one PeerLink thread
// per peer pushes; the HTTP server's threads serve peers' pushes, applied one
// at a time through the applier's own connection, and /status. The main
// thread waits for SIGTERM/SIGINT and then stops everything in order: no new
// requests, the batch being applied finishes, links finish their request.
#ifndef ZONEMESH_REPLICATOR_DAEMON_H_
#define ZONEMESH_REPLICATOR_DAEMON_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "conflict/strategy.h"
#include "db/connection.h"
#include "replicator/config.h"

namespace zonemesh {

// What peers compare before replicating: protocol version, table specs and
// every table's conflict strategy.
std::string MeshFingerprint(const conflict::Policy& policy);

// True for a node that holds nothing yet: no PowerDNS rows, nothing applied
// and nothing captured. Such a node joins from a peer on its first start.
bool IsEmptyNode(db::Connection& conn);

class Daemon {
 public:
  explicit Daemon(Config config);
  ~Daemon();

  // Runs until SIGTERM or SIGINT. Returns the process exit code: 0 after a
  // clean stop, 1 when the node cannot run (not installed, cannot listen).
  int Run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_DAEMON_H_
