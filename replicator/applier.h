// Applies peers' batches to the local database: atomically, exactly once,
// without capturing them again, deciding conflicts by row version vectors
// and the configured strategies (over every concurrent state of a row, so
// that all nodes decide alike), keeping zones sane across deletes and
// re-creations (zone incarnations), replacing RRsets and metadata kinds as a
// whole (group incarnations), and moving each zone's serial clock so that
// every applied change raises the served SOA serial.
// docs/replication-model.md gives the rules; this is their one
// implementation, written once for every database.
//
// The applier never waits for a lock a local writer (PowerDNS) holds: its
// session's lock waits are bounded (db::Connection::SetLockWaitLimit), and a
// transaction that would wait fails with a transient db::Error, is rolled
// back, and is tried again later. Local writers therefore never deadlock
// with it, whatever order they take their locks in.
#ifndef ZONEMESH_REPLICATOR_APPLIER_H_
#define ZONEMESH_REPLICATOR_APPLIER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "conflict/strategy.h"
#include "db/connection.h"
#include "replicator/wire.h"
#include "replicator/zone_clock.h"

namespace zonemesh {

// Decisions the conflict log records (zm_conflict.decision).
enum class ConflictDecision {
  kKeepLocal,   // the row kept the state it showed
  kTakeRemote,  // the incoming state replaced it
  kMerge,       // a strategy merged the concurrent states
  kParked,      // kept, waiting for an operator (manual strategy)
  kDropped,     // the change belongs to a deleted zone or a replaced RRset
  kFailed,      // the database refused the change
};
const char* ConflictDecisionName(ConflictDecision d);

// The image as conflict strategies and comparisons see it: an SOA row
// without its serial (which is its zone clock's, not the row's).
std::optional<schema::RowImage> ComparableImage(const schema::TableSpec& spec,
                                                const std::optional<schema::RowImage>& image);

// A row's concurrent states as the applier records them (zm_rowver.siblings)
// turned into changes of `row` (one per state), for a snapshot; none when
// the row has a single state or the record is unreadable.
std::vector<Change> SiblingsAsChanges(const Change& row, const std::string& siblings);

struct ApplyResult {
  enum class Status {
    kApplied,  // everything after the receiver's position is applied (or staged)
    kGap,      // the batch starts after what this node has: the sender must rewind to `ack`
  };
  Status status = Status::kApplied;
  Position ack;              // the origin's position this node now holds
  int64_t applied = 0;       // changes written (or decided) now
  int64_t duplicates = 0;    // changes this node had applied before
  int64_t staged = 0;        // changes of an incomplete round, kept for later
  int64_t conflicts = 0;     // conflicts recorded
  int64_t parked = 0;        // changes waiting for their zone
  int64_t failed = 0;        // changes the database refused (recorded)
  // Conflicts recorded, by (table, decision).
  std::map<std::pair<std::string, std::string>, int64_t> conflicts_by;
  // Zones whose rows changed here (created, edited, deleted): the local
  // PowerDNS must drop its caches for them.
  std::set<std::string> zones;
};

class Applier {
 public:
  // `conn` must be marked as the applier session (SetApplying(true)) with
  // bounded lock waits by the caller; it is used by this object only, one
  // call at a time.
  Applier(db::Connection& conn, const conflict::Policy& policy, std::string local_node);
  ~Applier();

  // Applies `batch` in one transaction with its new position per origin.
  // Changes at or before the recorded position are skipped (a re-sent batch
  // is acknowledged, not applied twice). A change the database refuses
  // (constraint, invalid value) is recorded in zm_conflict with the error and
  // does not stop the stream. Throws db::Error when the database fails (a
  // lock held by a local writer included: transient); then nothing of the
  // batch is applied.
  ApplyResult Apply(const Batch& batch);

  // The position of `origin`'s stream this node holds (applied or staged).
  Position Acknowledged(const std::string& origin);

  // Merges rows of a join snapshot (no positions) by row version, and the
  // zones' serial clocks, in one transaction. Changes the database refuses
  // are recorded, not fatal.
  ApplyResult ApplySnapshotRows(const std::vector<Change>& rows,
                                const std::vector<ZoneClock>& clocks);

  // Anti-entropy (replicator/anti_entropy.h): a peer's states of rows that
  // differ here, in one transaction. `merge` goes through the version and
  // conflict rules like a snapshot's rows. `force` are states whose version
  // this node holds with another value (one side was changed behind
  // zonemesh's back, where version rules cannot tell): written as they are,
  // their version records kept. `clock` (the peer's clock of a zone) is
  // merged after them when the zone is in the clock's incarnation here. A zone whose rows the repair changed counts one more
  // round of this node on its serial clock, so that its serial rises and
  // its secondaries transfer it.
  ApplyResult Repair(const std::vector<Change>& merge, const std::vector<Change>& force,
                     const std::optional<ZoneClock>& clock);

  // After a join: this node holds each origin's stream up to the given
  // position (kept when it already holds more).
  void RecordPositions(const std::map<std::string, Position>& positions);

  // Empties the PowerDNS tables and zonemesh's replication state (not the
  // conflict log, not the commit-round counter): a node about to load a
  // snapshot because it needs a resync.
  void DiscardLocalData();

  // Re-tries changes parked for zones that exist now; `applied` counts the
  // changes applied or resolved. Cheap when nothing is parked.
  ApplyResult RetryParked();

  // Writes every listed zone's clock serial into its SOA row (where they
  // differ), in one transaction: after the outbox thread counted local
  // commit rounds into the clocks. Returns the zones whose SOA changed.
  std::set<std::string> PublishSerials(const std::set<std::string>& zones);

  // The same for every zone with a clock: at start-up, in case the daemon
  // died between counting a round and publishing.
  std::set<std::string> PublishAllSerials();

  // Removes rows of zone tables left in zones this applier deleted: a local
  // writer that looked the zone up just before the delete committed can
  // still insert into it afterwards, and the MySQL schema (and SQLite
  // without PRAGMA foreign_keys) has no foreign key to refuse that. Checks
  // the zones deleted in the last minutes, by index. Returns rows removed.
  int64_t RemoveOrphansOfDeletedZones();

  // Adds a zone deleted by a local writer (its domains.id) to the zones
  // RemoveOrphansOfDeletedZones watches.
  void WatchDeletedZone(int64_t zone_id);

  // Removes every row of a zone table whose zone is gone, by anti-join over
  // whole tables: the watch above lives in memory, so a daemon killed just
  // after a zone delete leaves the late writer's rows behind. For start-up.
  // Returns rows removed.
  int64_t RemoveAllOrphans();

  // Removes rows of ended group incarnations that local writes left behind
  // (the changes named are local upserts just stamped):
  // - a local row captured into an incarnation that had already ended here
  //   (its writer read the RRset's incarnation just before a replicated
  //   replace of it committed);
  // - where a local change belongs to its set's current incarnation, every
  //   other row of the set recorded in an older one: a row the local
  //   replace did not see because it was committed (by the applier or
  //   another local writer) after the replace's DELETE had read the set.
  //   Every other node ends those rows when the replace reaches it.
  // Adds the zones it changed to `zones`. Returns rows removed.
  int64_t RemoveRowsOfEndedGroups(const std::vector<Change>& local_changes,
                                  std::set<std::string>* zones = nullptr);

  // Whether local upserts may have raced with this applier in the last
  // minute: it inserted keys without finding a row (a local insert of the
  // same key may have met it unseen, or a local replace of its set may
  // have missed it), or ended group incarnations. Then the keys
  // IsRaceSuspect names deserve RemoveStaleDuplicates once their local
  // changes are stamped (RemoveRowsOfEndedGroups looks at every local
  // change of a grouped table).
  bool HasRaceSuspects();
  // Every key a suspect for the next minute: after a start, when what the
  // applier wrote just before (in another process) is not known.
  void SuspectEverything();
  bool IsRaceSuspect(const std::string& table, const std::string& key);

  // Where a local insert and a replicated one of the same natural key met
  // (each unaware of the other), the table holds two physical rows for one
  // logical row. For the local upserts named (just stamped), keeps the
  // physical rows equal to the logical row's value and removes the others.
  // Adds the zones it changed to `zones`. Returns rows removed.
  int64_t RemoveStaleDuplicates(const std::vector<Change>& local_changes,
                                std::set<std::string>* zones = nullptr);

 private:
  struct RowVer;
  struct ZoneState;
  struct GroupState;
  struct Context;
  struct TxCache;
  using RowKey = std::pair<std::string, std::string>;  // (table, key)

  ApplyResult ApplyOnce(const Batch& batch, bool isolate_changes);
  void ApplyChange(Context& ctx, const Change& c);
  // A snapshot or anti-entropy row: its concurrent states one by one, or
  // the row.
  void ApplyRowStates(Context& ctx, const Change& c);
  // Runs `fn` for row `c` in a savepoint; a change the database refuses is
  // rolled back and recorded as failed (`source` names where it came
  // from), a malformed one skipped. Returns whether it went in.
  bool RowInSavepoint(Context& ctx, const Change& c, const char* source, const std::function<void()>& fn);
  void ApplyZoneChange(Context& ctx, const Change& c);
  void ApplyChildChange(Context& ctx, const Change& c);
  void ApplyPlainChange(Context& ctx, const Change& c);
  // The version-vector decision and the write, shared by every table.
  void Decide(Context& ctx, const Change& c, const RowVer& local, std::optional<int64_t> zone_id);
  void KillIncarnation(Context& ctx, ZoneState& zone, const schema::Version& epoch,
                       const schema::Version& version, const schema::VersionVector& vv);
  // Drops the zone's parked changes written in incarnations older than
  // `epoch` (recorded as conflicts). Returns how many.
  int64_t DropParkedBefore(Context& ctx, const std::string& zone, const schema::Version& epoch);
  // Ends the local incarnation of `c`'s group: its rows go, the group
  // moves to c.group_epoch.
  void KillGroup(Context& ctx, const Change& c, GroupState& group, int64_t zone_id);
  void Park(Context& ctx, const Change& c);
  void RetryParkedFor(Context& ctx, const std::string& zone);
  void RecordConflict(Context& ctx, const Change& c, const RowVer* local,
                      const std::optional<schema::RowImage>& local_image,
                      const std::string& strategy, ConflictDecision decision,
                      const std::string& reason);
  // Counts a complete commit round of `origin` into its zones' clocks.
  void CountRound(Context& ctx, const std::string& origin, const std::vector<Change>& round);

  // Starts the bookkeeping of a new transaction. With `batched`, row
  // versions are locked and read many keys per statement (PrefetchRowVers),
  // kept for the rest of the transaction, and written back many per
  // statement (FlushRowVers, due before anything reads zm_rowver with SQL
  // and before the commit). Without, every call goes to the database: for
  // transactions that roll back to savepoints, which would leave the kept
  // state wrong.
  void BeginTx(bool batched);
  void PrefetchRowVers(const std::vector<RowKey>& keys);
  static RowVer RowVerFromColumns(const db::Row& row, size_t first);
  bool MayHaveParkedConflicts();
  // Outside transactions: refreshes zm_rowver's statistics on PostgreSQL
  // after many new keys.
  void RefreshStatistics();
  void FlushRowVers();
  void FlushInserts();
  RowVer LockRowVer(const std::string& table, const std::string& key);
  void WriteRowVer(const std::string& table, const std::string& key, const RowVer& rv);
  ZoneState LoadZone(const std::string& zone);
  // The group's state, locked for the transaction (a local writer emptying
  // or refilling the group waits, or this transaction fails at once).
  GroupState& LockGroup(const schema::TableSpec& spec, const std::string& group_key,
                        const std::string& zone);
  std::optional<schema::RowImage> LoadRow(const schema::TableSpec& spec, const schema::RowImage& row,
                                          std::optional<int64_t> zone_id);
  // Writes the row: updates it where it exists, else inserts it; with
  // `known_absent` (no local row has its key) inserts at once.
  void WriteRow(const schema::TableSpec& spec, const schema::RowImage& row,
                std::optional<int64_t> zone_id, bool known_absent);
  // Whether the versions say no local row has this key: a tombstone, or no
  // version record on a node whose every row has one.
  bool KnownAbsent(const RowVer& rv) const;
  void DeleteRow(const schema::TableSpec& spec, const schema::RowImage& row,
                 std::optional<int64_t> zone_id);

  db::Connection& conn_;
  const conflict::Policy& policy_;
  std::string local_node_;
  ZoneClocks clocks_;
  // domains.id of zones deleted here -> when (µs), for orphan checks.
  std::map<int64_t, int64_t> deleted_zones_;
  // Race suspects (HasRaceSuspects): key or group -> when (µs). Past a size
  // bound (a bulk catch-up), every key is a suspect for a while instead.
  std::map<RowKey, int64_t> blind_inserts_;
  std::map<RowKey, int64_t> ended_groups_;  // (table, group key)
  // A row of a set the applier dropped because a replace ended it, recorded
  // as a conflict (KillGroup, RemoveRowsOfEndedGroups).
  void RecordDroppedSetRow(Context& ctx, const schema::TableSpec& spec, const schema::RowImage& row,
                           const schema::Version& row_group_epoch, const std::string& reason);
  int64_t all_suspect_until_ = 0;
  void NoteBlindInsert(const schema::TableSpec& spec, const schema::RowImage& row);
  std::unique_ptr<TxCache> tx_;
  int64_t new_rowvers_ = 0;       // keys added to zm_rowver since the last ANALYZE
  int64_t analyzed_rowvers_ = 0;  // its rows then
};

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_APPLIER_H_
