// The local outbox: what this node's writers changed, in commit order.
//
// Capture triggers insert outbox rows with an id assigned at insert time,
// which is not commit order: a transaction can take ids 10..12 and commit
// after another took 13 and committed. A reader that remembered "last id
// read" would skip 10..12 forever. zonemesh never reads unstamped rows:
// StampRound() gives every row that is committed (visible to a snapshot) and
// not yet stamped the next commit sequence number (csn). Rows of a
// transaction still open are invisible then and get a later csn once it
// commits, so positions (csn, id) handed to peers only ever grow and no row
// is skipped. A round holds whole transactions, because a transaction's rows
// become visible together.
//
// An Outbox object is a set of queries on one connection; each thread makes
// its own.
#ifndef ZONEMESH_REPLICATOR_OUTBOX_H_
#define ZONEMESH_REPLICATOR_OUTBOX_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "db/connection.h"
#include "replicator/wire.h"

namespace zonemesh {

class Outbox {
 public:
  Outbox(db::Connection& conn, std::string node_id) : conn_(conn), node_id_(std::move(node_id)) {}

  // Stamps every committed, unstamped row with the next csn, in one
  // transaction reading one snapshot, and counts the round into the serial
  // clocks of the zones it changed without an SOA write (adding them to
  // `clock_zones`: their SOA rows need the new serial). Returns the number
  // of rows stamped (0: nothing new, no write). Memory is bounded by a page
  // of ids. A transient db::Error (a serial clock row a writer holds) leaves
  // nothing stamped; try again.
  int64_t StampRound(std::set<std::string>* clock_zones = nullptr);

  // The local upserts stamped in rounds after `after_csn` for which `wanted`
  // (table, key) is true, at most `limit`.
  std::vector<Change> UpsertsAfter(int64_t after_csn,
                                   const std::function<bool(const std::string&, const std::string&)>& wanted,
                                   size_t limit);

  // True when committed rows wait for a stamp (a cheap index probe).
  bool HasUnstamped();

  // The local domains.id of zones deleted by local writers in the rounds
  // after `after_csn` (from their capture payload).
  std::vector<int64_t> DeletedZoneIds(int64_t after_csn);

  // The zones local writers changed in the rounds after `after_csn`.
  std::set<std::string> ZonesChanged(int64_t after_csn);

  // The changes after `after`: at most `max_changes` and about `max_bytes`,
  // cut at a round boundary unless the first round alone is larger (then
  // `round_complete` is false and the next batch continues it). origin,
  // target and fingerprint are left for the caller. Empty when caught up.
  Batch ReadBatch(const Position& after, int max_changes, int64_t max_bytes);

  // Changes not yet acknowledged at `after`: stamped ones after it plus the
  // committed, unstamped ones.
  int64_t CountAfter(const Position& after);

  // The hlc (commit-time microseconds) of the oldest change after `after`.
  std::optional<int64_t> OldestHlcAfter(const Position& after);

  // What a peer that acknowledged `after` lacks: CountAfter, and the
  // OldestHlcAfter of them (unset when none).
  struct Queue {
    int64_t depth = 0;
    std::optional<int64_t> oldest_hlc;
  };
  Queue QueueAfter(const Position& after);

  // The last stamped position (zero when none).
  Position LastPosition();

  // The last csn whose commit round was finished after stamping
  // (replicator/local_round.h); nullopt when never recorded.
  std::optional<int64_t> RoundsFinished();
  void SetRoundsFinished(int64_t csn);

  // Send cursors: the last position each peer acknowledged.
  std::map<std::string, Position> LoadCursors();
  void SaveCursor(const std::string& peer, const Position& pos);

  // Deletes stamped rows at or before `acked_by_all` whose hlc is older than
  // `older_than_hlc`, a page at a time. Returns rows deleted.
  int64_t Purge(const Position& acked_by_all, int64_t older_than_hlc);

  // Deletes rows older than `horizon_hlc` whether acknowledged or not; a
  // peer that had not received them needs a resync. Returns rows deleted.
  int64_t ExpireHistory(int64_t horizon_hlc);

  // Deletes tombstones of rows (zones excluded: their incarnations must
  // stay) whose delete is older than `horizon_hlc`. Returns rows deleted.
  int64_t ExpireTombstones(int64_t horizon_hlc);

  // The highest position purged so far: a peer acknowledged before it has
  // lost history and needs a resync.
  Position PurgedUpTo();

  // Local rows whose payload could not be read as their column types (the
  // value travels as NULL); reported once per row with the problem.
  int64_t normalization_problems() const { return normalization_problems_; }

 private:
  // Deletes stamped rows matching `condition` (with `params`), oldest
  // round first, a page per transaction, and records the purged position.
  // Returns the rows deleted.
  int64_t DeleteOldestStamped(const std::string& condition, const db::Params& params);
  Change ChangeFromRow(const db::Row& row);
  std::string MetaGet(const std::string& name);
  void MetaSet(const std::string& name, const std::string& value);

  db::Connection& conn_;
  std::string node_id_;
  int64_t normalization_problems_ = 0;
};

// Parses "csn:id" (zm_meta values); zero for empty text.
Position ParsePosition(const std::string& text);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_OUTBOX_H_
