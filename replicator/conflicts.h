// The conflict log for operators: `zonemesh conflicts` lists it and
// `zonemesh conflicts resolve ID --take local|remote` settles a change the
// "manual" strategy parked.
#ifndef ZONEMESH_REPLICATOR_CONFLICTS_H_
#define ZONEMESH_REPLICATOR_CONFLICTS_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "db/connection.h"

namespace zonemesh {

struct ConflictRecord {
  int64_t id = 0;
  int64_t created_at = 0;  // µs since the epoch
  std::string origin;      // the node whose change met the local row
  std::string table;
  std::string key;
  std::optional<int64_t> local_hlc;
  std::optional<std::string> local_node;
  nlohmann::json local_image;   // {"exists", "row", "vv", "epoch"} or null
  int64_t remote_hlc = 0;
  std::string remote_node;
  nlohmann::json remote_image;  // {"op", "row", "vv", "epoch"}
  std::string strategy;
  std::string decision;  // take-remote, keep-local, merge, parked, dropped, failed
  std::string reason;
  int64_t resolved_at = 0;
  std::string resolution;

  nlohmann::json ToJson() const;
};

// Newest first. With pending_only, only parked conflicts not yet resolved.
std::vector<ConflictRecord> ListConflicts(db::Connection& conn, bool pending_only, int limit);

// Deletes conflict log entries created before `before_micros`, a page per
// transaction, except changes still parked for an operator. Returns the
// entries deleted.
int64_t ExpireConflicts(db::Connection& conn, int64_t before_micros);

// A request the conflict log cannot satisfy (unknown id, not parked,
// already resolved); what() says which.
class ResolveError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Settles parked conflict `id` on this node: the chosen side (the local row
// as it is now, or the incoming change) becomes a new local change of
// `node_id` whose version vector includes both sides, so it wins on every
// node, where the conflict parked for the same row is marked resolved when
// it arrives. One transaction; throws ResolveError or db::Error.
// REQUIRES: `conn` is a plain (capturing) session.
void ResolveConflict(db::Connection& conn, const std::string& node_id, int64_t id,
                     bool take_remote);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_CONFLICTS_H_
