// The daemon's shared state for operators: one object, its mutex beside the
// fields it guards. Threads update it; /status and `zonemesh status` read a
// JSON snapshot. Copies are made under the lock, nothing else is done there.
#ifndef ZONEMESH_REPLICATOR_STATUS_H_
#define ZONEMESH_REPLICATOR_STATUS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "replicator/applier.h"
#include "replicator/config.h"
#include "replicator/now.h"
#include "replicator/wire.h"

namespace zonemesh {

// What this node knows about pushing to one peer.
struct PeerState {
  std::string id;
  std::string url;
  // The last exchange with the peer succeeded (false before the first one).
  bool connected = false;
  // "starting", "ok" (caught up or sending), "retrying" (last attempt
  // failed), "refused" (the peer rejects us: incompatible specs/strategies,
  // unknown origin), "needs-resync" (history it lacks was purged here).
  std::string state = "starting";
  int64_t queue_depth = 0;                  // changes it has not acknowledged
  int64_t queue_counted_at = 0;             // µs: when queue_depth was counted
  std::optional<int64_t> oldest_unacked_hlc;  // commit time (µs) of the oldest of them
  Position acked;
  // The error of the failing exchange; cleared by the next success.
  std::optional<std::string> last_error;
  int64_t last_error_at = 0;    // µs since the epoch of the latest failure, 0: never
  int64_t last_success_at = 0;
  int64_t batches_sent = 0;
  int64_t changes_sent = 0;
  int64_t bytes_sent = 0;
  int64_t failures = 0;
};

// What a peer said of itself in a heartbeat (each part when it said it).
struct HeardFrom {
  std::optional<Position> head;          // its last stamped position
  std::optional<int64_t> unacked;        // its changes this node has not acknowledged
  std::optional<int64_t> oldest_unacked_hlc;  // commit time (µs) of the oldest of them
  // Its view of the other peers: ms since it last heard each (null: not
  // within its memory), as its heartbeat said.
  std::optional<std::map<std::string, std::optional<int64_t>>> heard;
};

// What this node applied from one origin.
struct OriginState {
  Position applied;
  int64_t batches = 0;
  int64_t changes = 0;
  int64_t duplicates = 0;
  int64_t conflicts = 0;
  int64_t parked = 0;
  int64_t failed = 0;
  int64_t last_applied_at = 0;
  int64_t last_change_hlc = 0;  // commit time of the newest change applied
  // Heard: any request of the origin's that passed authentication (a push,
  // a hello or heartbeat). µs since the epoch, 0: never.
  int64_t last_heard_at = 0;
  std::optional<Position> head;     // from its last heartbeat
  int64_t unacked = 0;              // ditto: what this node lacks of its stream
  std::optional<int64_t> oldest_unacked_hlc;
  // Nothing heard for link_timeout_ms (CheckSilence); since when (µs).
  bool silent = false;
  int64_t silent_since = 0;
  // What its last heartbeat said of the others (HeardFrom::heard), when.
  std::map<std::string, std::optional<int64_t>> heard_of;
  int64_t heard_of_at = 0;
  // The last batch ended inside a commit round larger than a batch: the
  // rest of the round is still coming.
  bool mid_round = false;
};

// What anti-entropy found comparing this node with one peer.
struct AntiEntropyState {
  int64_t comparisons = 0;       // that completed
  int64_t failures = 0;          // that could not complete
  int64_t last_compared_at = 0;  // µs since the epoch, 0: never
  double last_duration_seconds = 0;
  int64_t last_bytes = 0;        // received in the last comparison
  int64_t rows_repaired = 0;     // row states taken from the peer, since start
  std::optional<std::string> last_error;
  // Zones whose rows differ (settled differences), since when (µs) and in
  // how many rows at the last comparison.
  struct Divergence {
    int64_t since = 0;
    int64_t rows = 0;
    std::string example;
  };
  std::map<std::string, Divergence> divergent;
};

class StatusBoard {
 public:
  StatusBoard(const Config& config, std::string database_target);

  void SetDatabase(bool ok, const std::string& error);
  bool DatabaseOk() const;

  // Runs `fn` on the peer's state under the lock. Unknown ids are ignored.
  void UpdatePeer(const std::string& id, const std::function<void(PeerState&)>& fn);
  PeerState Peer(const std::string& id) const;

  void RecordApply(const std::string& origin, const ApplyResult& result, int64_t newest_change_hlc);
  // Conflicts recorded outside a batch (parked changes applied later).
  void RecordConflicts(const std::map<std::pair<std::string, std::string>, int64_t>& by);
  // The conflicts recorded since the last call, as one line for the log
  // ("records take-remote 12, records keep-local 3"); "" when none.
  std::string TakeConflictSummary();
  void RecordRejected(const std::string& origin, const std::string& reason);
  // A request of `origin` passed authentication.
  void RecordHeard(const std::string& origin, const HeardFrom& heard);
  // Marks configured peers silent that were not heard for `timeout_ms`
  // (counted from start for one never heard), and heard ones no longer
  // silent. Returns one log line per change, with whether the peer fell
  // silent (or was heard again).
  std::vector<std::pair<bool, std::string>> CheckSilence(int64_t timeout_ms);
  // The last acknowledged position of each configured peer whose queue
  // was last counted longer than `older_than_ms` ago.
  std::map<std::string, Position> AckedPositions(int64_t older_than_ms) const;
  // For a heartbeat: ms since each configured peer was last heard (null:
  // never since start).
  std::map<std::string, std::optional<int64_t>> HeardAges() const;

  void SetOutbox(const Position& last, int64_t unstamped);
  void SetTotals(int64_t conflicts, int64_t parked);
  // The PowerDNS notifier's figures (null when not configured).
  void SetPowerDns(nlohmann::json powerdns);

  // This node lacks history `peer` no longer has (or holds changes older
  // than `peer` accepts): it needs `zonemesh join`. /health fails until then.
  void MarkNeedsResync(const std::string& peer, const std::string& reason);
  // Ends such a mark: `peer` and this node exchange changes again (after a
  // resync), or every mark (a snapshot was loaded).
  void ClearNeedsResync(const std::string& peer);
  void ClearAllNeedsResync();

  // Non-empty while the initial snapshot of an empty node is still missing:
  // why (/health fails meanwhile).
  void SetInitialSync(const std::string& waiting_reason);

  nlohmann::json ToJson() const;

  // The same figures in the Prometheus text exposition format (0.0.4).
  std::string ToPrometheus() const;

  // A completed comparison with `peer`: the zones that differ (zone, rows,
  // one example), rows repaired. Returns one log line per zone that
  // started to differ (true) or agrees again (false).
  struct ZoneDifference {
    std::string zone;
    int64_t rows = 0;
    std::string example;
  };
  std::vector<std::pair<bool, std::string>> RecordComparison(const std::string& peer,
                                                             const std::vector<ZoneDifference>& differing,
                                                             int64_t rows_repaired, int64_t bytes,
                                                             double seconds);
  // A comparison that failed; returns a log line when it is the first
  // failure in a row ("" otherwise).
  std::string RecordComparisonFailed(const std::string& peer, const std::string& error);
  void SetAntiEntropy(int64_t interval_seconds, int64_t trees_built);
  // Whether the streams between this node and `peer` carry nothing older
  // than `settle_micros` and no commit round of the peer is half received
  // (a comparison would mistake a backlog for divergence).
  bool StreamsSettled(const std::string& peer, int64_t settle_micros) const;

  // How long applying one batch took.
  void ObserveApplyDuration(double seconds);

  // Health for anycast checks, on the node that misses data: the database
  // answers, no initial snapshot or resync is due, this node is behind at
  // most `max_lagging_peers` peers, and (with two peers or more) it hears
  // at least one. Behind a peer: the peer's heartbeat says this node lacks
  // changes of its own older than `max_lag_seconds`, or nothing came from
  // the peer for link_timeout_ms while another peer heard it within that
  // time. Returns "" when healthy, else why not.
  std::string Unhealthy(double max_lag_seconds, int max_lagging_peers) const;

 private:
  // When `origin` was last heard; this node's start for one never heard.
  // REQUIRES: mu_ held.
  int64_t HeardAt(const std::string& origin) const;
  // Age of the oldest change of `o` missing here, as its last heartbeat
  // said; 0 when it said none is.
  static double BehindSeconds(const OriginState& o, int64_t now);

  const std::string node_id_;
  const std::string database_type_;
  const std::string database_target_;
  const int64_t started_at_;
  const int64_t link_timeout_us_;

  mutable std::mutex mu_;
  bool db_ok_ = false;
  std::string db_error_;
  std::vector<PeerState> peers_;
  std::map<std::string, OriginState> origins_;
  Position outbox_last_;
  int64_t outbox_unstamped_ = 0;
  int64_t conflicts_total_ = 0;
  // Conflicts recorded by (table, decision): since start, and since the
  // last summary.
  std::map<std::pair<std::string, std::string>, int64_t> conflicts_by_;
  std::map<std::pair<std::string, std::string>, int64_t> conflicts_unlogged_;
  int64_t parked_total_ = 0;
  int64_t rejected_requests_ = 0;
  nlohmann::json powerdns_;
  std::map<std::string, std::string> needs_resync_;  // peer -> reason
  std::string initial_sync_;                          // "": done or not needed
  // Apply duration histogram: counts per upper bound (seconds), and totals.
  std::vector<int64_t> apply_buckets_;
  int64_t apply_count_ = 0;
  double apply_sum_ = 0;
  std::string last_rejection_;
  std::map<std::string, AntiEntropyState> anti_entropy_;  // by peer
  int64_t anti_entropy_interval_ = 0;
  int64_t trees_built_ = 0;
};

// RFC 3339 UTC time of a µs timestamp ("" for 0).
std::string FormatTime(int64_t micros);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_STATUS_H_
