// Nodes on real databases that exchange batches in-process: outbox ->
// batch -> applier, the daemon's path without HTTP, so tests can decide
// exactly who receives what and when.
#ifndef ZONEMESH_TESTS_SUPPORT_INPROC_MESH_H_
#define ZONEMESH_TESTS_SUPPORT_INPROC_MESH_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "conflict/strategy.h"
#include "db/connection.h"
#include "db/open.h"
#include "replicator/applier.h"
#include "replicator/wire.h"
#include "tests/support/pdns_writes.h"

namespace zonemesh::testing {

struct Node {
  std::string id;
  db::DatabaseConfig cfg;
  std::unique_ptr<db::Connection> conn;        // plain session: writes are captured
  std::unique_ptr<db::Connection> apply_conn;  // the applier's session
  std::unique_ptr<conflict::Policy> policy;
  std::unique_ptr<Applier> applier;
  std::unique_ptr<PdnsWriter> w;
  std::map<std::string, Position> sent;  // what each peer acknowledged

  int64_t Count(const std::string& sql, const db::Params& p = {});
};

class InprocMesh {
 public:
  // A node on a fresh database with zonemesh installed, deciding conflicts
  // with `policy` (latest-wins when null).
  Node& Add(db::Dialect d, const std::string& id, std::unique_ptr<conflict::Policy> policy = nullptr);

  // Ships everything `from` committed that `to` has not acknowledged.
  ApplyResult Sync(Node& from, Node& to, int max_changes = 1000);
  // Every pair, three times over.
  void SyncAll();
  // `to` joins from `from` by snapshot (the pages of SnapshotService,
  // applied as JoinFromPeer applies them, without HTTP); then `from`'s
  // stream to `to` resumes where the snapshot ends. Returns rows received.
  int64_t Join(Node& from, Node& to);
  // Identical canonical dumps and no DNS sanity problems on every node.
  void ExpectConverged();

  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }

 private:
  std::vector<std::unique_ptr<Node>> nodes_;
};

}  // namespace zonemesh::testing

#endif  // ZONEMESH_TESTS_SUPPORT_INPROC_MESH_H_
