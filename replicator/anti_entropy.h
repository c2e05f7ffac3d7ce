// Anti-entropy: every node compares its zones with each peer's, every
// anti_entropy.interval_seconds, and repairs what differs.
//
// Each zone has a Merkle-style tree over its canonical dump
// (replicator/dump.h): 4096 leaves by natural key (the first 12 bits of
// SHA-256 over table and key), in 64 groups of 64 leaves. A leaf's hash
// covers its dump lines in dump order, a group's its leaves' hashes, the
// root the groups'. Two nodes compare roots for every zone, then the groups
// of the zones that differ, the leaves of the groups that differ, and
// exchange only the rows of the leaves that differ: a 100,000-record zone
// with one changed row costs three small requests and a few dozen rows.
// Trees are cached; a zone is hashed again only when a change touched it
// (ZonesChanged; a busy zone at most once per settle time, since its recent
// differences are in flight anyway) or after anti_entropy.rehash_seconds
// (which catches writes made behind zonemesh's back while it runs).
//
// Repair pulls: a node takes the peer's states of the rows that differ and
// merges them under the normal version and conflict rules
// (Applier::Repair); the peer does the same the other way round when it
// compares. Rows whose version is younger than anti_entropy.settle_seconds
// on either side may be in flight and are left to replication. Two states
// with the same version but different values (one side changed behind
// zonemesh's back) are settled the same way on both sides: the row that
// exists over the one that does not, else the greater canonical value.
//
//   POST /v1/digest {"tree": "roots"}                  -> {"zones": {zone: {"rows", "root"}}}
//   POST /v1/digest {"tree": "groups", "zone"}         -> {"groups": [64 hashes]}
//   POST /v1/digest {"tree": "leaves", "zone", "groups": [i, ...]}
//                                                      -> {"leaves": [[64 hashes], ...]}
//   POST /v1/digest {"tree": "rows", "zone", "leaves": [j, ...]}
//                                                      -> {"rows": [...], "clock"}
//
// ("rows" carries row states as snapshots do: replicator/row_states.h.)
#ifndef ZONEMESH_REPLICATOR_ANTI_ENTROPY_H_
#define ZONEMESH_REPLICATOR_ANTI_ENTROPY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "db/connection.h"
#include "replicator/applier.h"
#include "replicator/dump.h"
#include "replicator/wire.h"
#include "replicator/zone_clock.h"

namespace zonemesh {

inline constexpr int kTreeGroups = 64;
inline constexpr int kGroupLeaves = 64;
inline constexpr int kTreeLeaves = kTreeGroups * kGroupLeaves;
// Leaves whose rows one request asks for at most.
inline constexpr size_t kLeavesPerRequest = 256;

// The leaf of a row: 0 .. kTreeLeaves-1.
int LeafOf(const std::string& table, const std::string& key);

// One zone's tree. Only non-empty leaves are stored (most zones are small).
struct ZoneTree {
  int64_t rows = 0;
  uint64_t root = 0;                              // 0: no rows
  std::vector<uint64_t> groups;                   // kTreeGroups, 0 for empty ones
  std::vector<std::pair<int, uint64_t>> leaves;   // (leaf, hash), by leaf
  // The hashes of one group's leaves (0 for empty ones).
  std::vector<uint64_t> LeavesOfGroup(int group) const;
};

// The tree of one zone's dump lines (in dump order).
ZoneTree BuildZoneTree(const std::vector<DumpLine>& lines);

// Hashes on the wire: 16 hex digits, "" for 0.
std::string HashText(uint64_t h);
// Throws std::invalid_argument on anything else.
uint64_t HashFromText(const std::string& text);

// A zone's rows and tombstones in the given leaves, as row states
// (replicator/row_states.h).
std::vector<Change> RowStatesOfLeaves(db::Connection& conn, const std::string& zone,
                                      const std::set<int>& leaves);

// What one comparison of a zone with a peer found.
struct ZoneComparison {
  std::string zone;
  int64_t differing = 0;   // settled rows that differ (divergence)
  int64_t in_flight = 0;   // rows that differ but changed recently
  int64_t repaired = 0;    // row states taken from the peer
  bool serial_only = false;  // only the serial differed (clocks merged)
  std::string example;     // one differing row, for the log
};

struct PeerComparison {
  int64_t zones = 0;            // zones compared
  int64_t requests = 0;
  int64_t bytes_received = 0;
  std::vector<ZoneComparison> differing;  // zones whose trees differ
};

// The node's trees (serving peers and its own comparisons) and its
// comparisons with peers. Thread-safe.
class AntiEntropy {
 public:
  using ConnectionFactory = std::function<std::unique_ptr<db::Connection>()>;
  // POSTs a tree request to the peer and returns its answer (throws on
  // failure).
  using Ask = std::function<nlohmann::json(const nlohmann::json& request)>;
  // Runs Applier::Repair on the node's applier.
  using RepairFn = std::function<ApplyResult(const std::vector<Change>& merge,
                                             const std::vector<Change>& force,
                                             const std::optional<ZoneClock>& clock)>;

  AntiEntropy(ConnectionFactory open, int64_t settle_micros, int64_t rehash_micros);

  // Zones a change touched here (local rounds, applied batches, repairs):
  // their trees are built again when next needed.
  void ZonesChanged(const std::set<std::string>& zones);

  // Answers a peer's tree request ({"tree": ...}). Throws
  // std::invalid_argument for a malformed request, db::Error for the
  // database.
  nlohmann::json Serve(const nlohmann::json& request);

  // Compares every zone with a peer and repairs this node's side.
  PeerComparison CompareWith(const Ask& ask, const RepairFn& repair);

  // Trees built (zones hashed) since the start, for status.
  int64_t TreesBuilt();

 private:
  struct Cached {
    ZoneTree tree;
    int64_t built_at = 0;
  };
  // The trees of every zone here, fresh.
  std::map<std::string, std::shared_ptr<const ZoneTree>> Trees();
  std::shared_ptr<const ZoneTree> TreeOf(const std::string& zone);
  ZoneComparison CompareZone(const std::string& zone, const ZoneTree& local, const Ask& ask,
                             const RepairFn& repair);

  ConnectionFactory open_;
  const int64_t settle_micros_;
  const int64_t rehash_micros_;
  // A changed zone is hashed again at most this often (settle time, at
  // least a second).
  const int64_t min_rebuild_micros_;
  std::mutex mu_;        // guards the members below
  std::mutex build_mu_;  // one rebuild at a time
  std::map<std::string, std::shared_ptr<const ZoneTree>> cache_;
  std::map<std::string, int64_t> built_at_;
  std::set<std::string> dirty_;
  int64_t trees_built_ = 0;
};

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_ANTI_ENTROPY_H_
