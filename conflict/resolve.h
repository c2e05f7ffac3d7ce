// Deciding a row from its concurrent states (docs/replication-model.md,
// "Conflicts").
//
// A row's state is the set of its maximal versions: states no other state
// has seen (by version vector). Usually one. Concurrent writes leave several
// ("siblings"); a strategy decides which one the row shows, and the others
// are kept beside it, so that when one of them is superseded by its own
// origin's next write, the decision is taken again among the states that
// are still current. A value its own origin has replaced therefore never
// wins again anywhere, whatever the strategy and the arrival order: every
// node decides on the same set, folded in the same (version) order.
#ifndef ZONEMESH_CONFLICT_RESOLVE_H_
#define ZONEMESH_CONFLICT_RESOLVE_H_

#include <optional>
#include <string>
#include <vector>

#include "conflict/strategy.h"

namespace zonemesh::conflict {

// One maximal state of a row.
struct State {
  schema::Version version;
  schema::VersionVector vv;  // what the write had seen, itself included
  bool exists = false;       // false: deleted
  // The row's values when it exists; the last known image of a deleted row
  // (nullopt when unknown).
  std::optional<schema::RowImage> image;
};

// Adds `incoming` to the maximal states `states`: states it has seen are
// dropped. Returns false (and leaves `states` alone) when one of the states
// has seen `incoming` already.
bool AddState(std::vector<State>* states, const State& incoming);

struct Outcome {
  // The state the row shows, or a merged image (resolution kMerge).
  State shown;
  bool merged = false;
  // True when a strategy decided (more than one state); `reason` says how.
  bool decided = false;
  Resolution resolution = Resolution::kTakeRemote;  // of the last step
  std::string reason;
};

// Decides among `states` (REQUIRES: not empty, pairwise concurrent): folds
// strategy.Resolve over them in version order, the state so far as local.
// The same set gives the same outcome on every node.
Outcome Decide(const Strategy& strategy, const schema::TableSpec& spec, const std::string& key,
               std::vector<State> states);

// The version vector of the row: what the states have seen together.
schema::VersionVector JoinedVector(const std::vector<State>& states);

}  // namespace zonemesh::conflict

#endif  // ZONEMESH_CONFLICT_RESOLVE_H_
