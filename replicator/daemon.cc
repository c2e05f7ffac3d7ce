#include "replicator/daemon.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "db/open.h"
#include "replicator/applier.h"
#include "replicator/auth.h"
#include "replicator/catalog_labels.h"
#include "replicator/conflicts.h"
#include "replicator/anti_entropy.h"
#include "replicator/digest.h"
#include "replicator/dump.h"
#include "replicator/http.h"
#include "replicator/installer.h"
#include "replicator/local_round.h"
#include "replicator/outbox.h"
#include "replicator/pdns_notifier.h"
#include "replicator/peer_link.h"
#include "replicator/router.h"
#include "replicator/snapshot.h"
#include "replicator/status.h"
#include "schema/key.h"
#include "schema/sql_dialect.h"

namespace zonemesh {

namespace {
// Held by the outbox thread's connection: one daemon per database.
constexpr const char* kDaemonLock = "zonemesh-daemon";
// How long the applier's statements wait for a lock a local writer holds
// before the batch is rolled back and tried again: short, so that the
// applier is never half of a deadlock with PowerDNS (PostgreSQL looks for
// deadlocks after a second of waiting; MariaDB at once, so there the
// applier never waits at all).
constexpr std::chrono::milliseconds kApplyLockWait{20};
// Attempts at one batch before the sender is told to come back later.
constexpr int kApplyAttempts = 8;
// How often conflicts are summed up in the log.
constexpr int64_t kConflictSummaryMicros = 10 * 1000000LL;
}  // namespace

std::string MeshFingerprint(const conflict::Policy& policy) {
  return schema::Sha256Hex("zonemesh protocol " + std::to_string(kProtocolVersion) + "\n" +
                           schema::DescribeSpecs(schema::PowerDnsTables()) + policy.Describe())
      .substr(0, 32);
}

bool IsEmptyNode(db::Connection& conn) {
  for (const schema::TableSpec& spec : schema::PowerDnsTables()) {
    if (!conn.Query("SELECT 1 FROM " + spec.name + " LIMIT 1").empty()) return false;
  }
  for (const char* t : {"zm_applied", "zm_outbox"}) {
    if (!conn.Query(std::string("SELECT 1 FROM ") + t + " LIMIT 1").empty()) return false;
  }
  return true;
}

struct Daemon::Impl {
  explicit Impl(Config c)
      : config(std::move(c)),
        policy(config.conflict.strategy, config.conflict.tables,
               conflict::StrategyOptions{config.conflict.priority, config.conflict.plugin}),
        fingerprint(MeshFingerprint(policy)),
        status(config, Describe(config.database)) {}

  static std::string Describe(const db::DatabaseConfig& d) {
    switch (d.dialect) {
      case db::Dialect::kSqlite:
        return "sqlite:" + d.path;
      case db::Dialect::kPostgres:
        return "postgresql";
      case db::Dialect::kMysql:
        return "mysql:" + d.user + "@" + (d.socket.empty() ? d.host + ":" + std::to_string(d.port) : d.socket) +
               "/" + d.database;
    }
    return "";
  }

  std::unique_ptr<db::Connection> Open() { return db::Open(config.database); }

  // --- applying (HTTP threads, one batch at a time) ---
  ApplyResult Apply(const Batch& batch) {
    std::unique_lock<std::mutex> lock(apply_mu);
    for (int attempt = 1;; ++attempt) {
      try {
        EnsureApplyConnection();
        CheckJoinDuty(*apply_conn);  // the database was down at start
        const auto started = std::chrono::steady_clock::now();
        ApplyResult r = applier->Apply(batch);
        status.ObserveApplyDuration(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
        status.SetDatabase(true, "");
        ZonesChanged(r.zones);
        return r;
      } catch (const db::Error& e) {
        if (e.connection_lost()) {
          applier.reset();
          apply_conn.reset();
          status.SetDatabase(false, e.what());
        }
        if (!e.transient() || attempt >= kApplyAttempts)
          throw UnavailableError(std::string("database: ") + e.what());
        spdlog::debug("apply attempt {} failed ({}); retrying", attempt, e.what());
        // A local writer holds a lock this batch needs: let it finish.
        lock.unlock();
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1 << attempt, 50)));
        lock.lock();
      }
    }
  }

  // Zones whose rows changed here (made locally or applied): the local
  // PowerDNS drops its caches of them, anti-entropy hashes them again.
  void ZonesChanged(const std::set<std::string>& zones) {
    if (zones.empty()) return;
    if (notifier) notifier->ZonesChanged(zones);
    if (anti_entropy) anti_entropy->ZonesChanged(zones);
  }

  // --- the anti-entropy thread ---
  // Every interval, each peer in turn: compare every zone, pull the peer's
  // states of the rows that differ (replicator/anti_entropy.h).
  void AntiEntropyLoop() {
    const AntiEntropyConfig& ae = config.anti_entropy;
    while (!stopping) {
      SleepUnlessStopping(static_cast<int>(ae.interval_seconds * 1000));
      if (stopping) break;
      if (join_pending) continue;  // nothing to compare before the first snapshot
      for (const PeerConfig& peer : config.peers) {
        if (stopping) break;
        ComparePeer(peer);
      }
      status.SetAntiEntropy(ae.interval_seconds, anti_entropy->TreesBuilt());
    }
  }

  void ComparePeer(const PeerConfig& peer) {
    const int64_t settle = config.anti_entropy.settle_seconds * 1000000;
    if (!status.StreamsSettled(peer.id, settle)) {
      spdlog::debug("anti-entropy: peer {} skipped: changes older than {} s are still queued", peer.id,
                    config.anti_entropy.settle_seconds);
      return;
    }
    const auto started = std::chrono::steady_clock::now();
    try {
      HttpClient client(peer.endpoint, std::chrono::milliseconds(config.request_timeout_ms), 256 << 20,
                        peer.scheme == "https" ? &config.tls : nullptr);
      auto ask = [&](const nlohmann::json& request) {
        nlohmann::json body = request;
        body["v"] = kProtocolVersion;
        body["origin"] = config.node_id;
        body["target"] = peer.id;
        body["fingerprint"] = fingerprint;
        return PostToPeer(client, config.auth.enabled() ? config.auth.secret : "", peer.base_path, peer.id,
                          "/v1/digest", body);
      };
      auto repair = [&](const std::vector<Change>& merge, const std::vector<Change>& force,
                        const std::optional<ZoneClock>& clock) {
        std::unique_lock<std::mutex> lock(apply_mu);
        for (int attempt = 1;; ++attempt) {
          try {
            EnsureApplyConnection();
            ApplyResult r = applier->Repair(merge, force, clock);
            status.RecordConflicts(r.conflicts_by);
            ZonesChanged(r.zones);
            return r;
          } catch (const db::Error& e) {
            // A lock a local writer holds (or, on SQLite, a reader the
            // write gave way to): let it finish, as Apply does.
            if (!e.transient() || e.connection_lost() || attempt >= kApplyAttempts) throw;
            lock.unlock();
            std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1 << attempt, 50)));
            lock.lock();
          }
        }
      };
      PeerComparison c = anti_entropy->CompareWith(ask, repair);
      std::vector<StatusBoard::ZoneDifference> differing;
      int64_t repaired = 0;
      for (const ZoneComparison& z : c.differing) {
        repaired += z.repaired;
        if (z.differing > 0) differing.push_back({z.zone, z.differing, z.example});
      }
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      for (const auto& [starts, line] : status.RecordComparison(peer.id, differing, repaired, c.bytes_received, seconds)) {
        if (starts) {
          spdlog::warn("{}", line);
        } else {
          spdlog::info("{}", line);
        }
      }
      spdlog::debug("anti-entropy with {}: {} zone(s), {} differing, {} request(s), {} bytes, {:.3f} s", peer.id,
                    c.zones, c.differing.size(), c.requests, c.bytes_received, seconds);
    } catch (const db::Error& e) {
      if (e.connection_lost()) {
        std::lock_guard<std::mutex> lock(apply_mu);
        applier.reset();
        apply_conn.reset();
      }
      std::string line = status.RecordComparisonFailed(peer.id, std::string("local database: ") + e.what());
      if (!line.empty()) spdlog::warn("{}", line);
    } catch (const std::exception& e) {
      std::string line = status.RecordComparisonFailed(peer.id, e.what());
      if (!line.empty()) spdlog::warn("{}", line);
    }
  }

  // For /v1/digest: the canonical dump read in one snapshot, on a
  // connection of its own, one request at a time.
  nlohmann::json Digest(const std::optional<std::string>& zone) {
    std::lock_guard<std::mutex> lock(digest_mu);
    try {
      auto conn = Open();
      conn->BeginReadOnlySnapshot();
      std::vector<std::string> dump = CanonicalDump(*conn);
      conn->Rollback();
      if (zone) return nlohmann::json{{"zone", *zone}, {"lines", LinesOfZone(dump, *zone)}};
      return DigestsToJson(ZoneDigests(dump));
    } catch (const db::Error& e) {
      throw UnavailableError(std::string("database: ") + e.what());
    }
  }

  // For /v1/digest tree requests (anti-entropy).
  nlohmann::json Tree(const nlohmann::json& request) {
    try {
      return anti_entropy->Serve(request);
    } catch (const db::Error& e) {
      throw UnavailableError(std::string("database: ") + e.what());
    }
  }

  Position Acknowledged(const std::string& origin) {
    std::lock_guard<std::mutex> lock(apply_mu);
    try {
      EnsureApplyConnection();
      return applier->Acknowledged(origin);
    } catch (const db::Error& e) {
      if (e.connection_lost()) {
        applier.reset();
        apply_conn.reset();
        status.SetDatabase(false, e.what());
      }
      throw UnavailableError(std::string("database: ") + e.what());
    }
  }

  // REQUIRES: apply_mu held.
  void EnsureApplyConnection() {
    if (applier) return;
    apply_conn = Open();
    apply_conn->SetApplying(true);
    apply_conn->SetLockWaitLimit(kApplyLockWait);
    applier = std::make_unique<Applier>(*apply_conn, policy, config.node_id);
  }

  // Decides, once the database answers, whether this node still owes its
  // initial snapshot: an empty node records the duty (so that it survives
  // restarts) and makes a first attempt; housekeeping retries. REQUIRES: no
  // batch is being applied (startup, or apply_mu held).
  void CheckJoinDuty(db::Connection& conn) {
    if (join_checked) return;
    if (config.initial_join && !config.peers.empty()) {
      schema::SqlDialect d(conn.dialect());
      if (IsEmptyNode(conn)) {
        conn.Execute(d.InsertIgnore("zm_meta", {"name", "value"}, {"name"}), {"join_pending", "1"});
      }
      join_pending = !conn.Query("SELECT 1 FROM zm_meta WHERE name = 'join_pending'").empty();
    }
    join_checked = true;
    if (join_pending) {
      last_join_attempt = NowMicros();
      TryInitialJoin();
    }
  }

  // One attempt at the initial snapshot, from each peer in turn. REQUIRES:
  // no batch is being applied (startup, or apply_mu held).
  void TryInitialJoin() {
    try {
      auto conn = Open();
      if (!conn->Query("SELECT 1 FROM zm_outbox LIMIT 1").empty()) {
        // Written to before any peer answered: a snapshot would now land on
        // data of this node's own (and a row's shown state from a peer is not
        // all it knows of that row). Such a node takes part as one with data.
        conn->Execute("DELETE FROM zm_meta WHERE name = 'join_pending'");
        join_pending = false;
        status.SetInitialSync("");
        spdlog::warn(
            "initial snapshot given up: this node has local changes of its own, written before "
            "any peer answered; its peers send it their history instead (a peer that purged what "
            "it needs marks it needs-resync: then run `zonemesh join --discard-local`)");
        return;
      }
    } catch (const std::exception& e) {
      spdlog::warn("initial snapshot: {}", e.what());
      return;
    }
    std::string why;
    for (const PeerConfig& p : config.peers) {
      try {
        auto conn = Open();
        conn->SetApplying(true);
        JoinOptions jo{config.node_id, p.id,   fingerprint, config.auth.secret, p.endpoint, p.base_path,
                       config.request_timeout_ms, false, p.scheme == "https" ? &config.tls : nullptr};
        JoinStats st = JoinFromPeer(jo, *conn, policy);
        conn->Execute("DELETE FROM zm_meta WHERE name = 'join_pending'");
        join_pending = false;
        status.SetInitialSync("");
        status.ClearAllNeedsResync();  // marks from before the snapshot are out of date
        spdlog::info("initial snapshot loaded from {}: {} rows, {} tombstones", p.id, st.rows, st.tombstones);
        return;
      } catch (const std::exception& e) {
        why += (why.empty() ? "" : "; ") + p.id + ": " + e.what();
      }
    }
    spdlog::warn("waiting for the initial snapshot of this empty node: {}", why);
    status.SetInitialSync("waiting for the initial snapshot from a peer (" + why + ")");
  }

  void WatchLocallyDeletedZones(const std::vector<int64_t>& ids) {
    if (ids.empty()) return;
    std::lock_guard<std::mutex> lock(apply_mu);
    try {
      EnsureApplyConnection();
      for (int64_t id : ids) applier->WatchDeletedZone(id);
    } catch (const db::Error& e) {
      spdlog::warn("watching deleted zones: {}", e.what());
    }
  }

  // Periodic upkeep on the applier's connection: parked changes whose zone
  // arrived, rows left in zones deleted here.
  void ApplierUpkeep(bool parked) {
    std::lock_guard<std::mutex> lock(apply_mu);
    try {
      EnsureApplyConnection();
      if (parked) {
        ApplyResult r = applier->RetryParked();
        if (r.applied > 0) spdlog::info("applied or resolved {} parked change(s)", r.applied);
        status.RecordConflicts(r.conflicts_by);
        ZonesChanged(r.zones);
      }
      if (!orphans_swept) {
        applier->RemoveAllOrphans();
        // A daemon that died between counting a round into a zone's serial
        // clock and writing the SOA: write them now.
        std::set<std::string> zones = applier->PublishAllSerials();
        if (!zones.empty()) spdlog::info("published the serial of {} zone(s) at start", zones.size());
        ZonesChanged(zones);
        orphans_swept = true;
      }
      applier->RemoveOrphansOfDeletedZones();
    } catch (const db::Error& e) {
      if (e.connection_lost()) {
        applier.reset();
        apply_conn.reset();
      }
      spdlog::warn("applier upkeep: {}", e.what());
    }
  }

  // Opens the outbox connection and takes the daemon lock on it. Throws
  // InstallError when another daemon holds the lock.
  std::unique_ptr<db::Connection> OpenOutboxConnection() {
    auto conn = Open();
    // A daemon that just died may still hold the lock for a moment on the
    // server side; a running one holds it for good.
    bool locked = conn->TryAdvisoryLock(kDaemonLock);
    for (int i = 0; i < 50 && !locked && !stopping; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      locked = conn->TryAdvisoryLock(kDaemonLock);
    }
    if (!locked) throw InstallError("another zonemesh daemon is running on " + conn->Describe());
    // The outbox thread moves serial clocks and pins catalog labels: like
    // the applier, it never waits for a local writer's locks.
    conn->SetLockWaitLimit(kApplyLockWait);
    conn->ListenForChanges();
    return conn;
  }

  // --- the outbox thread ---
  void OutboxLoop(std::unique_ptr<db::Connection> conn) {
    std::unique_ptr<Outbox> outbox;
    if (conn) outbox = std::make_unique<Outbox>(*conn, config.node_id);
    int64_t last_housekeeping = 0;
    int backoff_ms = config.retry_min_ms;
    while (!stopping) {
      try {
        if (!conn) {
          conn = OpenOutboxConnection();
          outbox = std::make_unique<Outbox>(*conn, config.node_id);
          status.SetDatabase(true, "");
          backoff_ms = config.retry_min_ms;
          WakeLinks();  // rows may have been committed while we were away
        }
        if (!rounds_checked) {
          ResumeUnfinishedRounds(*outbox);
          rounds_checked = true;
        }
        const int64_t before = outbox->LastPosition().csn;
        std::set<std::string> clock_zones;
        int64_t stamped = outbox->StampRound(&clock_zones);
        if (stamped > 0) {
          spdlog::debug("stamped a commit round of {} change(s)", stamped);
          WakeLinks();
          WatchLocallyDeletedZones(outbox->DeletedZoneIds(before));
          AfterLocalRound(*outbox, before, std::move(clock_zones));
          // Writes made straight into SQL (pdnsutil, scripts) are hidden by
          // the local PowerDNS's caches too.
          ZonesChanged(outbox->ZonesChanged(before));
        }
        const int64_t now = NowMicros();
        if (now - last_housekeeping > 1000000) {
          last_housekeeping = now;
          Housekeeping(*conn, *outbox);
        }
        if (stamped == 0 && unfinished_round) {
          // The last round's serials could not be published (a lock, a
          // reader the SQLite writes gave way to): again, soon (2 ms,
          // doubling up to a second while it keeps failing).
          SleepUnlessStopping(2 << std::min(unfinished_round->failures - 1, 9));
          AfterLocalRound(*outbox, unfinished_round->before_csn, {});
        } else if (stamped == 0) {
          conn->WaitForChange(std::chrono::milliseconds(config.poll_interval_ms));
        }
      } catch (const db::Error& e) {
        if (e.transient() && !e.connection_lost()) {
          // A lock a local writer held, or a serialization failure: the
          // round is stamped on the next pass.
          spdlog::debug("outbox: {}; trying again", e.what());
          SleepUnlessStopping(2);
          continue;
        }
        spdlog::error("outbox: {}", e.what());
        status.SetDatabase(false, e.what());
        if (e.connection_lost()) {
          outbox.reset();
          conn.reset();
        }
        SleepUnlessStopping(backoff_ms);
        backoff_ms = std::min(backoff_ms * 2, config.retry_max_ms);
      } catch (const std::exception& e) {
        spdlog::error("outbox: {}", e.what());
        outbox.reset();
        conn.reset();
        SleepUnlessStopping(backoff_ms);
        backoff_ms = std::min(backoff_ms * 2, config.retry_max_ms);
      }
    }
    if (outbox && rounds_checked) {
      try {
        RecordRoundsFinished(*outbox);
      } catch (const std::exception& e) {
        spdlog::debug("recording the finished rounds at stop: {}", e.what());
      }
    }
  }

  // Rounds a daemon stamped but did not finish before it stopped (killed,
  // or stopping): they are finished again, with every key a race suspect
  // for a minute, since what the applier wrote just before is unknown.
  void ResumeUnfinishedRounds(Outbox& outbox) {
    const std::optional<int64_t> finished = outbox.RoundsFinished();
    const int64_t last = outbox.LastPosition().csn;
    rounds_finished = rounds_recorded = finished.value_or(last);
    if (!finished) {  // installed by a version that did not record it
      outbox.SetRoundsFinished(last);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(apply_mu);
      EnsureApplyConnection();
      applier->SuspectEverything();
    }
    const int64_t from = *finished;
    if (from >= last) return;
    spdlog::info("finishing the local commit rounds after csn {} (up to {}) that the last run did "
                 "not finish",
                 from, last);
    AfterLocalRound(outbox, from, {});
  }

  // After a local commit round was stamped (replicator/local_round.h).
  // A round that failed is finished together with the next one (from the
  // older round's position, with both rounds' zones) until it succeeds.
  void AfterLocalRound(Outbox& outbox, int64_t before_csn, std::set<std::string> clock_zones) {
    if (unfinished_round) {
      before_csn = std::min(before_csn, unfinished_round->before_csn);
      clock_zones.merge(unfinished_round->zones);
    }
    std::lock_guard<std::mutex> lock(apply_mu);
    try {
      EnsureApplyConnection();
      std::set<std::string> changed = FinishLocalRound(*applier, outbox, before_csn, clock_zones);
      ZonesChanged(changed);
      if (unfinished_round) spdlog::info("a local commit round's serials are published now");
      unfinished_round.reset();
      rounds_finished = outbox.LastPosition().csn;
    } catch (const db::Error& e) {
      if (e.connection_lost()) {
        applier.reset();
        apply_conn.reset();
      }
      // One line per failed stretch, not per attempt.
      if (!unfinished_round) spdlog::warn("after a local commit round: {}; trying again", e.what());
      const int failures = unfinished_round ? unfinished_round->failures + 1 : 1;
      unfinished_round = UnfinishedRound{before_csn, std::move(clock_zones), failures};
    }
  }

  // Records how far local rounds are finished (ResumeUnfinishedRounds):
  // once a second, not per round; a daemon killed meanwhile finishes a few
  // rounds twice, which changes nothing.
  void RecordRoundsFinished(Outbox& outbox) {
    if (rounds_finished <= rounds_recorded) return;
    outbox.SetRoundsFinished(rounds_finished);
    rounds_recorded = rounds_finished;
  }

  void Housekeeping(db::Connection& conn, Outbox& outbox) {
    RecordRoundsFinished(outbox);
    // Peers heard from or not: one line when one falls silent, one when it
    // is heard again.
    for (const auto& [fell_silent, line] : status.CheckSilence(config.link_timeout_ms)) {
      if (fell_silent) {
        spdlog::warn("{}", line);
      } else {
        spdlog::info("{}", line);
      }
    }
    // What each peer has not acknowledged, counted here too when its link
    // has not for 2 s: a link whose push hangs (a peer that accepts
    // connections and answers nothing) cannot count its own queue.
    const std::map<std::string, Position> stale = status.AckedPositions(2000);
    const std::map<std::string, Position> saved =
        stale.empty() ? std::map<std::string, Position>{} : outbox.LoadCursors();
    for (const auto& [peer, acked] : stale) {
      Position from = acked;
      if (auto it = saved.find(peer); it != saved.end()) from = std::max(from, it->second);
      const Outbox::Queue q = outbox.QueueAfter(from);
      status.UpdatePeer(peer, [&](PeerState& p) {
        p.queue_depth = q.depth;
        p.oldest_unacked_hlc = q.oldest_hlc;
        p.queue_counted_at = NowMicros();
      });
    }
    int64_t unstamped = conn.Query("SELECT COUNT(*) FROM zm_outbox WHERE csn IS NULL")[0][0].AsInt();
    status.SetOutbox(outbox.LastPosition(), unstamped);
    int64_t conflicts = conn.Query("SELECT COUNT(*) FROM zm_conflict")[0][0].AsInt();
    int64_t parked = conn.Query("SELECT COUNT(*) FROM zm_parked")[0][0].AsInt();
    status.SetTotals(conflicts, parked);
    if (notifier) {
      PowerDnsNotifier::Stats st = notifier->stats();
      status.SetPowerDns(nlohmann::json{{"api_url", config.powerdns.api_url},
                                        {"zones_flushed", st.flushed},
                                        {"zones_notified", st.notified},
                                        {"pending", st.pending},
                                        {"failures", st.failures},
                                        {"last_error", st.last_error.empty() ? nlohmann::json(nullptr)
                                                                             : nlohmann::json(st.last_error)}});
    }

    // Catalog members get labels every node agrees on (catalog_labels.h);
    // written as a local change, like any other.
    PinCatalogLabels(conn);

    const int64_t now = NowMicros();
    if (now - last_conflict_summary >= kConflictSummaryMicros) {
      last_conflict_summary = now;
      const std::string summary = status.TakeConflictSummary();
      if (!summary.empty()) spdlog::info("conflicts decided in the last {} s: {}", kConflictSummaryMicros / 1000000, summary);
    }
    if (snapshots) snapshots->Reap();
    if (!join_checked) {
      std::lock_guard<std::mutex> lock(apply_mu);
      CheckJoinDuty(conn);  // the database was down at start
    } else if (join_pending && now - last_join_attempt > 2 * 1000000LL) {
      last_join_attempt = now;
      std::lock_guard<std::mutex> lock(apply_mu);
      TryInitialJoin();
    }
    if (now - last_purge > 10 * 1000000LL) {
      last_purge = now;
      // Rows every configured peer acknowledged, older than the retention.
      auto cursors = outbox.LoadCursors();
      std::optional<Position> min_acked;
      for (const PeerConfig& p : config.peers) {
        Position c = cursors.count(p.id) ? cursors[p.id] : Position{};
        if (!min_acked || c < *min_acked) min_acked = c;
      }
      if (min_acked && !min_acked->IsZero()) {
        int64_t n = outbox.Purge(*min_acked, now - config.outbox_retention_seconds * 1000000LL);
        if (n > 0) spdlog::info("purged {} acknowledged outbox row(s)", n);
      }
      const int64_t horizon = now - config.history_retention_seconds * 1000000LL;
      int64_t expired = outbox.ExpireHistory(horizon);
      if (expired > 0) {
        spdlog::warn("{} outbox row(s) passed the history retention of {} s unacknowledged; peers "
                     "that had not received them need a resync",
                     expired, config.history_retention_seconds);
      }
      int64_t tombstones = outbox.ExpireTombstones(horizon);
      if (tombstones > 0) spdlog::info("forgot {} tombstone(s) older than the history retention", tombstones);
      int64_t conflicts_gone = ExpireConflicts(conn, now - config.conflict.retention_seconds * 1000000LL);
      if (conflicts_gone > 0) {
        spdlog::info("deleted {} conflict log entr{} older than {} s", conflicts_gone,
                     conflicts_gone == 1 ? "y" : "ies", config.conflict.retention_seconds);
      }
    }
    ApplierUpkeep(parked > 0 && now - last_parked_retry > 10 * 1000000LL);
    if (parked > 0 && now - last_parked_retry > 10 * 1000000LL) last_parked_retry = now;
  }

  void WakeLinks() {
    for (auto& l : links) l->Wake();
  }

  void SleepUnlessStopping(int ms) {
    std::unique_lock<std::mutex> lock(stop_mu);
    stop_cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping.load(); });
  }

  Config config;
  conflict::Policy policy;
  std::string fingerprint;
  StatusBoard status;

  std::mutex apply_mu;
  std::unique_ptr<db::Connection> apply_conn;
  std::unique_ptr<Applier> applier;

  std::vector<std::unique_ptr<PeerLink>> links;
  std::unique_ptr<PowerDnsNotifier> notifier;  // null unless "powerdns" is configured
  std::unique_ptr<RequestVerifier> verifier;
  std::unique_ptr<SnapshotService> snapshots;
  std::unique_ptr<HttpServer> server;
  std::unique_ptr<HttpServer> status_server;
  std::thread outbox_thread;
  int64_t last_purge = 0;
  // A local commit round whose serials are not yet published (outbox thread).
  struct UnfinishedRound {
    int64_t before_csn;
    std::set<std::string> zones;
    int failures;  // attempts in a row that failed
  };
  std::optional<UnfinishedRound> unfinished_round;
  int64_t last_conflict_summary = 0;
  int64_t last_parked_retry = 0;
  std::atomic<bool> join_pending{false};  // the initial snapshot is still missing
  std::atomic<bool> join_checked{false};  // join_pending is known (the database answered)
  bool orphans_swept = false;             // RemoveAllOrphans ran (apply_mu)
  // Outbox thread: ResumeUnfinishedRounds ran; the last stamped csn whose
  // round is finished, and the one recorded in the database.
  bool rounds_checked = false;
  std::mutex digest_mu;  // one /v1/digest at a time
  std::unique_ptr<AntiEntropy> anti_entropy;
  std::thread anti_entropy_thread;
  int64_t rounds_finished = 0;
  int64_t rounds_recorded = 0;
  int64_t last_join_attempt = 0;

  std::atomic<bool> stopping{false};
  std::mutex stop_mu;
  std::condition_variable stop_cv;
};

Daemon::Daemon(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Daemon::~Daemon() = default;

int Daemon::Run() {
  Impl& m = *impl_;
  const Config& cfg = m.config;

  // Signals go to the main thread only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  spdlog::info("zonemesh {} node {} starting, database {}", ZONEMESH_VERSION, cfg.node_id,
               m.Impl::Describe(cfg.database));
  std::unique_ptr<db::Connection> outbox_conn;
  try {
    auto conn = m.Open();
    RequireInstalled(*conn, cfg.node_id);
    outbox_conn = m.OpenOutboxConnection();
    m.status.SetDatabase(true, "");
  } catch (const InstallError& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const db::Error& e) {
    if (cfg.database.dialect == db::Dialect::kSqlite) {
      spdlog::error("{}", e.what());
      return 1;
    }
    // A database server may still be starting: serve status and keep trying.
    spdlog::error("{} (will keep trying)", e.what());
    m.status.SetDatabase(false, e.what());
  }

  if (cfg.auth.enabled()) {
    m.verifier = std::make_unique<RequestVerifier>(cfg.auth.secret,
                                                   std::chrono::seconds(cfg.auth.max_clock_skew_seconds));
  } else {
    spdlog::warn("no \"auth\" configured: any host that reaches {} as a configured peer id can "
                 "write to this node",
                 cfg.listen.ToString());
  }
  // A node starting with an empty database first loads a snapshot from a
  // peer. The duty is recorded, so it survives restarts, and retried by the
  // outbox thread until a peer serves one.
  if (outbox_conn) m.CheckJoinDuty(*outbox_conn);

  m.snapshots = std::make_unique<SnapshotService>([&m] { return m.Open(); }, cfg.node_id,
                                                  cfg.history_retention_seconds);
  Router::Options ropts;
  ropts.snapshots = m.snapshots.get();
  ropts.node_id = cfg.node_id;
  ropts.fingerprint = m.fingerprint;
  for (const PeerConfig& p : cfg.peers) ropts.peer_ids.insert(p.id);
  ropts.verifier = m.verifier.get();
  ropts.scope = cfg.status_listen ? Router::Scope::kPeers : Router::Scope::kAll;
  ropts.health_max_lag_seconds = cfg.health_max_lag_seconds;
  ropts.health_max_lagging_peers = cfg.health_max_lagging_peers;
  ropts.history_retention_seconds = cfg.history_retention_seconds;
  m.anti_entropy = std::make_unique<AntiEntropy>([&m] { return m.Open(); },
                                                 cfg.anti_entropy.settle_seconds * 1000000,
                                                 cfg.anti_entropy.rehash_seconds * 1000000);
  m.status.SetAntiEntropy(cfg.anti_entropy.interval_seconds, 0);
  Router::Backend backend{[&m](const Batch& b) { return m.Apply(b); },
                          [&m](const std::string& o) { return m.Acknowledged(o); },
                          [&m](const std::optional<std::string>& z) { return m.Digest(z); },
                          [&m](const nlohmann::json& request) { return m.Tree(request); }};
  auto router = std::make_shared<Router>(ropts, backend, m.status);

  HttpServer::Options sopts;
  sopts.listen = cfg.listen;
  sopts.max_body_bytes = cfg.max_request_bytes;
  sopts.timeout = std::chrono::milliseconds(cfg.request_timeout_ms);
  sopts.tls = cfg.tls;
  sopts.max_connections = cfg.max_connections;
  m.server = std::make_unique<HttpServer>(sopts, [router](const HttpRequest& r) { return router->Handle(r); });
  std::shared_ptr<Router> status_router;
  if (cfg.status_listen) {
    Router::Options o = ropts;
    o.scope = Router::Scope::kReadOnly;
    status_router = std::make_shared<Router>(o, backend, m.status);
    HttpServer::Options so = sopts;
    so.listen = *cfg.status_listen;
    so.tls = TlsConfig{};  // a local monitoring address: plain HTTP
    so.max_body_bytes = 64 << 10;
    m.status_server = std::make_unique<HttpServer>(
        so, [status_router](const HttpRequest& r) { return status_router->Handle(r); });
  }
  try {
    m.server->Start();
    if (m.status_server) m.status_server->Start();
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  spdlog::info("listening on {} ({}){} (fingerprint {}, peer authentication {})", cfg.listen.ToString(),
               cfg.tls.enabled() ? (cfg.tls.require_client_cert ? "HTTPS, client certificates required" : "HTTPS")
                                 : "HTTP",
               cfg.status_listen ? ", status on " + cfg.status_listen->ToString() : "", m.fingerprint,
               cfg.auth.enabled() ? "on" : "off");

  for (const PeerConfig& p : cfg.peers) {
    m.links.push_back(std::make_unique<PeerLink>(cfg, p, m.fingerprint, m.status, [&m] { return m.Open(); }));
  }
  if (cfg.powerdns.enabled()) {
    m.notifier = std::make_unique<PowerDnsNotifier>(cfg.powerdns);
    m.notifier->Start();
    spdlog::info("telling PowerDNS at {} about applied zones{}", cfg.powerdns.api_url,
                 cfg.powerdns.notify ? " (and sending NOTIFY)" : "");
  }
  for (auto& l : m.links) l->Start();
  m.outbox_thread = std::thread([&m, c = std::move(outbox_conn)]() mutable { m.OutboxLoop(std::move(c)); });
  if (cfg.anti_entropy.interval_seconds > 0 && !cfg.peers.empty()) {
    m.anti_entropy_thread = std::thread([&m] { m.AntiEntropyLoop(); });
  }

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");

  {
    std::lock_guard<std::mutex> lock(m.stop_mu);
    m.stopping = true;
  }
  m.stop_cv.notify_all();
  m.server->Stop();
  if (m.status_server) m.status_server->Stop();
  for (auto& l : m.links) l->Stop();
  if (m.outbox_thread.joinable()) m.outbox_thread.join();
  if (m.anti_entropy_thread.joinable()) m.anti_entropy_thread.join();
  if (m.notifier) m.notifier->Stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace zonemesh
