// Conflict strategies.
//
// A conflict is an incoming change for a row whose local state is concurrent
// with it: neither version vector has seen the other (schema/version.h). The
// applier asks the table's strategy to decide, records the conflict with both
// row images and the decision, and applies the result.
//
// Every node must decide the same way whichever side it holds locally, or the
// mesh never converges. So a Strategy is a pure, const, thread-safe function
// of its input, symmetric in local and remote, and it behaves like "take the
// greater of two states" under some total order (so that three concurrent
// states resolve to the same winner in any arrival order). Peers compare
// strategy names (with parameters) and refuse to replicate when they differ.
#ifndef ZONEMESH_CONFLICT_STRATEGY_H_
#define ZONEMESH_CONFLICT_STRATEGY_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "schema/key.h"
#include "schema/spec.h"
#include "schema/version.h"

namespace zonemesh::conflict {

// One side of a conflict.
struct RowState {
  // False for a tombstone (deleted row) or a row that never existed here.
  bool exists = false;
  // The row's values when it exists; for a tombstone, the last image known
  // (may be null when nothing is known).
  const schema::RowImage* row = nullptr;
  // The version that wrote this state, and what it has seen.
  schema::Version version;
  schema::VersionVector vv;
};

struct ConflictInput {
  const schema::TableSpec& spec;
  const std::string& key;
  const RowState& local;
  const RowState& remote;
};

enum class Resolution {
  kKeepLocal,   // the local state stays
  kTakeRemote,  // the incoming state replaces it
  kMerge,       // the row exists with `merged` (same key) values
  kPark,        // keep local and leave the incoming change for an operator
};

struct Decision {
  Resolution resolution = Resolution::kKeepLocal;
  std::optional<schema::RowImage> merged;  // for kMerge
  std::string reason;  // one short sentence for the conflict log
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  // The name peers compare, parameters included.
  virtual std::string Name() const = 0;
  virtual Decision Resolve(const ConflictInput& in) const = 0;
};

// Parameters of the strategies that take some.
struct StrategyOptions {
  // "priority": node ids, highest priority first.
  std::vector<std::string> priority;
  // "custom": path of the plug-in shared library (zonemesh_plugin.h).
  std::string plugin_path;
};

// Registry of built-in strategies: latest-wins, priority, soa-serial,
// manual, custom.
bool IsKnownStrategy(const std::string& name);
std::string KnownStrategyNames();  // "latest-wins, ..." for error messages
// Throws std::invalid_argument for an unknown name or missing parameters,
// std::runtime_error when a plug-in cannot be loaded.
std::unique_ptr<Strategy> MakeStrategy(const std::string& name, const StrategyOptions& options);

// Latest-wins: the higher version (hlc, then node id) wins.
std::unique_ptr<Strategy> MakeLatestWins();
// The state written by the node earlier in `order` wins; latest-wins among
// nodes of equal rank (nodes not listed rank last).
std::unique_ptr<Strategy> MakePriority(std::vector<std::string> order);
// SOA records: the higher serial under RFC 1982 arithmetic wins; latest-wins
// for every other row and when serials are equal or incomparable. (The
// applier shows strategies SOA images without their serial, which is the
// zone's serial clock: in a mesh this decides like latest-wins.)
std::unique_ptr<Strategy> MakeSoaSerial();
// Keeps the local row and parks the incoming change in the conflict log
// until an operator decides (`zonemesh conflicts resolve`).
std::unique_ptr<Strategy> MakeManual();
// A user plug-in (conflict/zonemesh_plugin.h). Throws std::runtime_error
// naming the file and the problem when it cannot be loaded.
std::unique_ptr<Strategy> MakePlugin(const std::string& path);

// RFC 1982 serial number comparison: true when a is greater than b.
bool SerialGreater(uint32_t a, uint32_t b);

// The strategy of each table: a default plus per-table overrides.
class Policy {
 public:
  // Throws as MakeStrategy does.
  Policy(const std::string& default_strategy,
         const std::map<std::string, std::string>& per_table,
         const StrategyOptions& options = {});

  // The strategy deciding conflicts on `table`.
  const Strategy& For(const std::string& table) const;

  // Canonical description of every table's strategy; part of the mesh
  // fingerprint peers compare.
  std::string Describe() const;

 private:
  std::unique_ptr<Strategy> default_;
  std::map<std::string, std::unique_ptr<Strategy>> tables_;
};

}  // namespace zonemesh::conflict

#endif  // ZONEMESH_CONFLICT_STRATEGY_H_
