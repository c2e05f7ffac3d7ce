#include "replicator/status.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>

namespace zonemesh {

using nlohmann::json;

std::string FormatTime(int64_t micros) {
  if (micros <= 0) return "";
  std::time_t secs = static_cast<std::time_t>(micros / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>((micros / 1000) % 1000));
  return out;
}

namespace {

const std::vector<double>& ApplyBounds() {
  static const std::vector<double> b = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,   0.25,   0.5,   1,    2.5,   5, 10};
  return b;
}

// A Prometheus label value: backslash, quote and newline escaped.
std::string Label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

json TimeOrNull(int64_t micros) { return micros > 0 ? json(FormatTime(micros)) : json(nullptr); }

double Seconds(int64_t micros) { return static_cast<double>(micros) / 1e6; }

}  // namespace

StatusBoard::StatusBoard(const Config& config, std::string database_target)
    : node_id_(config.node_id),
      database_type_(db::DialectName(config.database.dialect)),
      database_target_(std::move(database_target)),
      started_at_(NowMicros()),
      link_timeout_us_(int64_t{config.link_timeout_ms} * 1000) {
  for (const PeerConfig& p : config.peers) {
    PeerState s;
    s.id = p.id;
    s.url = p.url;
    peers_.push_back(s);
  }
}

void StatusBoard::ObserveApplyDuration(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  if (apply_buckets_.empty()) apply_buckets_.assign(ApplyBounds().size(), 0);
  for (size_t i = 0; i < ApplyBounds().size(); ++i) {
    if (seconds <= ApplyBounds()[i]) apply_buckets_[i]++;
  }
  apply_count_++;
  apply_sum_ += seconds;
}

std::string StatusBoard::Unhealthy(double max_lag_seconds, int max_lagging_peers) const {
  const int64_t now = NowMicros();
  std::lock_guard<std::mutex> lock(mu_);
  if (!db_ok_) return "database unreachable: " + db_error_;
  if (!initial_sync_.empty()) return initial_sync_;
  if (!needs_resync_.empty()) {
    return "this node needs a resync (`zonemesh join`): " + needs_resync_.begin()->first + ": " +
           needs_resync_.begin()->second;
  }
  auto silent = [&](const std::string& id) { return now - HeardAt(id) > link_timeout_us_; };
  std::string behind;
  int count = 0;
  size_t silent_peers = 0;
  for (const PeerState& p : peers_) {
    auto it = origins_.find(p.id);
    const OriginState* o = it != origins_.end() ? &it->second : nullptr;
    std::string why;
    if (!silent(p.id)) {
      if (o && BehindSeconds(*o, now) > max_lag_seconds) {
        why = "it says " + std::to_string(o->unacked) + " change(s) of its own are missing here, the oldest " +
              std::to_string(static_cast<int64_t>(BehindSeconds(*o, now))) + " s old";
      }
    } else {
      ++silent_peers;
      // Silent here: is it alive? A peer heard here recently says whether
      // it heard this one clearly more recently (within half the timeout,
      // counting the age of its report): a peer that just went down was
      // heard by everyone at about the same time, and withdraws no one.
      for (const PeerState& q : peers_) {
        if (q.id == p.id || silent(q.id)) continue;
        auto qt = origins_.find(q.id);
        if (qt == origins_.end() || now - qt->second.heard_of_at > link_timeout_us_) continue;
        auto r = qt->second.heard_of.find(p.id);
        if (r == qt->second.heard_of.end() || !r->second) continue;
        const int64_t age_us = *r->second * 1000 + (now - qt->second.heard_of_at);
        if (age_us > link_timeout_us_ / 2) continue;
        why = "nothing heard from it for " + std::to_string((now - HeardAt(p.id)) / 1000000) +
              " s, while " + q.id + " hears it";
        break;
      }
    }
    if (why.empty()) continue;
    ++count;
    behind += (behind.empty() ? "" : "; ") + p.id + ": " + why;
  }
  if (peers_.size() >= 2 && silent_peers == peers_.size()) {
    return "nothing heard from any of the " + std::to_string(peers_.size()) +
           " peers for longer than " + std::to_string(link_timeout_us_ / 1000) +
           " ms: this node is cut off from the mesh";
  }
  if (count > max_lagging_peers) {
    return "behind " + std::to_string(count) + " peer(s): " + behind;
  }
  return "";
}

int64_t StatusBoard::HeardAt(const std::string& origin) const {
  auto it = origins_.find(origin);
  return it != origins_.end() && it->second.last_heard_at > 0 ? it->second.last_heard_at : started_at_;
}

double StatusBoard::BehindSeconds(const OriginState& o, int64_t now) {
  return o.unacked > 0 && o.oldest_unacked_hlc ? std::max(0.0, Seconds(now - *o.oldest_unacked_hlc)) : 0;
}

std::map<std::string, std::optional<int64_t>> StatusBoard::HeardAges() const {
  const int64_t now = NowMicros();
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, std::optional<int64_t>> out;
  for (const PeerState& p : peers_) {
    auto it = origins_.find(p.id);
    if (it == origins_.end() || it->second.last_heard_at == 0) {
      out[p.id] = std::nullopt;
    } else {
      out[p.id] = (now - it->second.last_heard_at) / 1000;
    }
  }
  return out;
}

std::string StatusBoard::ToPrometheus() const {
  const int64_t now = NowMicros();
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  auto head = [&](const char* name, const char* type, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  auto line = [&](const std::string& name, const std::string& labels, double v) {
    char num[64];
    std::snprintf(num, sizeof num, "%.17g", v);
    out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + num + "\n";
  };
  const std::string node = "node=\"" + Label(node_id_) + "\"";
  head("zonemesh_info", "gauge", "Node identity and version.");
  line("zonemesh_info", node + ",version=\"" ZONEMESH_VERSION "\"", 1);
  head("zonemesh_database_up", "gauge", "1 while the local database answers.");
  line("zonemesh_database_up", node, db_ok_ ? 1 : 0);
  head("zonemesh_outbox_unstamped", "gauge", "Committed local changes not yet stamped into a round.");
  line("zonemesh_outbox_unstamped", node, static_cast<double>(outbox_unstamped_));

  head("zonemesh_peer_queue_depth", "gauge", "Local changes the peer has not acknowledged.");
  for (const PeerState& p : peers_) line("zonemesh_peer_queue_depth", node + ",peer=\"" + Label(p.id) + "\"", static_cast<double>(p.queue_depth));
  head("zonemesh_peer_lag_seconds", "gauge", "Age of the oldest change the peer has not acknowledged.");
  for (const PeerState& p : peers_) {
    double lag = p.queue_depth > 0 && p.oldest_unacked_hlc ? std::max(0.0, Seconds(now - *p.oldest_unacked_hlc)) : 0;
    line("zonemesh_peer_lag_seconds", node + ",peer=\"" + Label(p.id) + "\"", lag);
  }
  head("zonemesh_peer_connected", "gauge", "1 when the last exchange with the peer succeeded.");
  for (const PeerState& p : peers_) line("zonemesh_peer_connected", node + ",peer=\"" + Label(p.id) + "\"", p.connected ? 1 : 0);
  head("zonemesh_peer_state", "gauge", "The peer link's state (1 for the current one).");
  for (const PeerState& p : peers_) {
    for (const char* st : {"starting", "ok", "retrying", "refused", "needs-resync"}) {
      line("zonemesh_peer_state", node + ",peer=\"" + Label(p.id) + "\",state=\"" + st + "\"", p.state == st ? 1 : 0);
    }
  }
  head("zonemesh_batches_sent_total", "counter", "Batches the peer acknowledged.");
  for (const PeerState& p : peers_) line("zonemesh_batches_sent_total", node + ",peer=\"" + Label(p.id) + "\"", static_cast<double>(p.batches_sent));
  head("zonemesh_changes_sent_total", "counter", "Changes the peer acknowledged.");
  for (const PeerState& p : peers_) line("zonemesh_changes_sent_total", node + ",peer=\"" + Label(p.id) + "\"", static_cast<double>(p.changes_sent));
  head("zonemesh_bytes_sent_total", "counter", "Bytes of batches the peer acknowledged.");
  for (const PeerState& p : peers_) line("zonemesh_bytes_sent_total", node + ",peer=\"" + Label(p.id) + "\"", static_cast<double>(p.bytes_sent));
  head("zonemesh_push_failures_total", "counter", "Failed exchanges with the peer.");
  for (const PeerState& p : peers_) line("zonemesh_push_failures_total", node + ",peer=\"" + Label(p.id) + "\"", static_cast<double>(p.failures));

  head("zonemesh_anti_entropy_comparisons_total", "counter", "Completed anti-entropy comparisons with the peer.");
  for (const auto& [peer, a] : anti_entropy_) line("zonemesh_anti_entropy_comparisons_total", node + ",peer=\"" + Label(peer) + "\"", static_cast<double>(a.comparisons));
  head("zonemesh_anti_entropy_failures_total", "counter", "Anti-entropy comparisons with the peer that could not complete.");
  for (const auto& [peer, a] : anti_entropy_) line("zonemesh_anti_entropy_failures_total", node + ",peer=\"" + Label(peer) + "\"", static_cast<double>(a.failures));
  head("zonemesh_anti_entropy_divergent_zones", "gauge", "Zones whose rows differ from the peer's (settled differences, last comparison).");
  for (const auto& [peer, a] : anti_entropy_) line("zonemesh_anti_entropy_divergent_zones", node + ",peer=\"" + Label(peer) + "\"", static_cast<double>(a.divergent.size()));
  head("zonemesh_anti_entropy_rows_repaired_total", "counter", "Row states taken from the peer by anti-entropy repairs.");
  for (const auto& [peer, a] : anti_entropy_) line("zonemesh_anti_entropy_rows_repaired_total", node + ",peer=\"" + Label(peer) + "\"", static_cast<double>(a.rows_repaired));
  head("zonemesh_anti_entropy_last_comparison_age_seconds", "gauge", "Time since the last completed comparison with the peer (-1: none yet).");
  for (const auto& [peer, a] : anti_entropy_) line("zonemesh_anti_entropy_last_comparison_age_seconds", node + ",peer=\"" + Label(peer) + "\"", a.last_compared_at ? Seconds(now - a.last_compared_at) : -1.0);
  head("zonemesh_anti_entropy_trees_built_total", "counter", "Zone hash trees built (zones hashed) for anti-entropy.");
  line("zonemesh_anti_entropy_trees_built_total", node, static_cast<double>(trees_built_));

  head("zonemesh_batches_applied_total", "counter", "Batches applied from the origin.");
  for (const auto& [id, o] : origins_) line("zonemesh_batches_applied_total", node + ",origin=\"" + Label(id) + "\"", static_cast<double>(o.batches));
  head("zonemesh_changes_applied_total", "counter", "Changes applied from the origin.");
  for (const auto& [id, o] : origins_) line("zonemesh_changes_applied_total", node + ",origin=\"" + Label(id) + "\"", static_cast<double>(o.changes));
  head("zonemesh_duplicates_skipped_total", "counter", "Re-sent changes acknowledged without applying.");
  for (const auto& [id, o] : origins_) line("zonemesh_duplicates_skipped_total", node + ",origin=\"" + Label(id) + "\"", static_cast<double>(o.duplicates));
  head("zonemesh_conflicts_total", "counter", "Conflicts recorded while applying the origin's changes.");
  for (const auto& [id, o] : origins_) line("zonemesh_conflicts_total", node + ",origin=\"" + Label(id) + "\"", static_cast<double>(o.conflicts));
  head("zonemesh_failed_changes_total", "counter", "Changes the database refused (recorded in the conflict log).");
  for (const auto& [id, o] : origins_) line("zonemesh_failed_changes_total", node + ",origin=\"" + Label(id) + "\"", static_cast<double>(o.failed));
  {
    const int64_t now = NowMicros();
    head("zonemesh_origin_last_heard_seconds", "gauge",
         "Seconds since the origin's last push or heartbeat reached this node (since start when never).");
    for (const auto& [id, o] : origins_) {
      line("zonemesh_origin_last_heard_seconds", node + ",origin=\"" + Label(id) + "\"",
           Seconds(now - HeardAt(id)));
    }
    head("zonemesh_origin_silent", "gauge", "1 while nothing was heard from the origin for link_timeout_ms.");
    for (const auto& [id, o] : origins_) line("zonemesh_origin_silent", node + ",origin=\"" + Label(id) + "\"", o.silent ? 1 : 0);
    head("zonemesh_origin_behind_changes", "gauge",
         "Changes of the origin this node has not acknowledged, as its last heartbeat said.");
    for (const auto& [id, o] : origins_) line("zonemesh_origin_behind_changes", node + ",origin=\"" + Label(id) + "\"", static_cast<double>(o.unacked));
    head("zonemesh_origin_behind_seconds", "gauge",
         "Age of the oldest change of the origin this node has not acknowledged, as its last heartbeat said.");
    for (const auto& [id, o] : origins_) {
      line("zonemesh_origin_behind_seconds", node + ",origin=\"" + Label(id) + "\"", BehindSeconds(o, now));
    }
  }
  head("zonemesh_conflict_decisions_total", "counter",
       "Conflicts recorded since the daemon started, by table and decision.");
  for (const auto& [k, n] : conflicts_by_) {
    line("zonemesh_conflict_decisions_total",
         node + ",table=\"" + Label(k.first) + "\",decision=\"" + Label(k.second) + "\"",
         static_cast<double>(n));
  }
  head("zonemesh_conflict_log_rows", "gauge", "Rows in the conflict log.");
  line("zonemesh_conflict_log_rows", node, static_cast<double>(conflicts_total_));
  head("zonemesh_parked_changes", "gauge", "Changes waiting for their zone to arrive.");
  line("zonemesh_parked_changes", node, static_cast<double>(parked_total_));
  head("zonemesh_needs_resync", "gauge", "1 when this node lacks history a peer no longer has.");
  line("zonemesh_needs_resync", node, needs_resync_.empty() ? 0 : 1);
  head("zonemesh_rejected_requests_total", "counter", "Peer requests refused (malformed, unauthenticated, incompatible).");
  line("zonemesh_rejected_requests_total", node, static_cast<double>(rejected_requests_));

  head("zonemesh_apply_duration_seconds", "histogram", "Time to apply one batch.");
  for (size_t i = 0; i < ApplyBounds().size(); ++i) {
    char le[32];
    std::snprintf(le, sizeof le, "%g", ApplyBounds()[i]);
    line("zonemesh_apply_duration_seconds_bucket", node + ",le=\"" + le + "\"",
         apply_buckets_.empty() ? 0 : static_cast<double>(apply_buckets_[i]));
  }
  line("zonemesh_apply_duration_seconds_bucket", node + ",le=\"+Inf\"", static_cast<double>(apply_count_));
  line("zonemesh_apply_duration_seconds_sum", node, apply_sum_);
  line("zonemesh_apply_duration_seconds_count", node, static_cast<double>(apply_count_));
  return out;
}

void StatusBoard::SetDatabase(bool ok, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  db_ok_ = ok;
  db_error_ = error;
}

bool StatusBoard::DatabaseOk() const {
  std::lock_guard<std::mutex> lock(mu_);
  return db_ok_;
}

void StatusBoard::UpdatePeer(const std::string& id, const std::function<void(PeerState&)>& fn) {
  std::lock_guard<std::mutex> lock(mu_);
  for (PeerState& p : peers_) {
    if (p.id == id) fn(p);
  }
}

PeerState StatusBoard::Peer(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const PeerState& p : peers_) {
    if (p.id == id) return p;
  }
  return {};
}

void StatusBoard::RecordApply(const std::string& origin, const ApplyResult& r,
                              int64_t newest_change_hlc) {
  std::lock_guard<std::mutex> lock(mu_);
  OriginState& o = origins_[origin];
  o.applied = r.ack;
  o.batches++;
  o.changes += r.applied;
  o.duplicates += r.duplicates;
  o.conflicts += r.conflicts;
  o.parked += r.parked;
  o.failed += r.failed;
  o.last_applied_at = NowMicros();
  o.mid_round = r.staged > 0;
  if (newest_change_hlc > o.last_change_hlc) o.last_change_hlc = newest_change_hlc;
  for (const auto& [k, n] : r.conflicts_by) {
    conflicts_by_[k] += n;
    conflicts_unlogged_[k] += n;
  }
}

void StatusBoard::RecordConflicts(const std::map<std::pair<std::string, std::string>, int64_t>& by) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [k, n] : by) {
    conflicts_by_[k] += n;
    conflicts_unlogged_[k] += n;
  }
}

std::string StatusBoard::TakeConflictSummary() {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [k, n] : conflicts_unlogged_) {
    out += (out.empty() ? "" : ", ") + k.first + " " + k.second + " " + std::to_string(n);
  }
  conflicts_unlogged_.clear();
  return out;
}

void StatusBoard::RecordRejected(const std::string& origin, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  rejected_requests_++;
  last_rejection_ = (origin.empty() ? "" : origin + ": ") + reason;
}

void StatusBoard::SetOutbox(const Position& last, int64_t unstamped) {
  std::lock_guard<std::mutex> lock(mu_);
  outbox_last_ = last;
  outbox_unstamped_ = unstamped;
}

void StatusBoard::SetPowerDns(json powerdns) {
  std::lock_guard<std::mutex> lock(mu_);
  powerdns_ = std::move(powerdns);
}

void StatusBoard::MarkNeedsResync(const std::string& peer, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  needs_resync_[peer] = reason;
}

void StatusBoard::ClearNeedsResync(const std::string& peer) {
  std::lock_guard<std::mutex> lock(mu_);
  if (needs_resync_.erase(peer) > 0) spdlog::info("resync mark for {} cleared: in step again", peer);
}

void StatusBoard::ClearAllNeedsResync() {
  std::lock_guard<std::mutex> lock(mu_);
  needs_resync_.clear();
}

void StatusBoard::SetInitialSync(const std::string& waiting_reason) {
  std::lock_guard<std::mutex> lock(mu_);
  initial_sync_ = waiting_reason;
}

void StatusBoard::RecordHeard(const std::string& origin, const HeardFrom& heard) {
  std::lock_guard<std::mutex> lock(mu_);
  OriginState& o = origins_[origin];
  o.last_heard_at = NowMicros();
  if (heard.head) o.head = heard.head;
  if (heard.unacked) {
    o.unacked = *heard.unacked;
    o.oldest_unacked_hlc = heard.oldest_unacked_hlc;
  }
  if (heard.heard) {
    o.heard_of = *heard.heard;
    o.heard_of_at = o.last_heard_at;
  }
}

std::vector<std::pair<bool, std::string>> StatusBoard::CheckSilence(int64_t timeout_ms) {
  const int64_t now = NowMicros();
  std::vector<std::pair<bool, std::string>> lines;
  std::lock_guard<std::mutex> lock(mu_);
  for (const PeerState& p : peers_) {
    OriginState& o = origins_[p.id];
    const int64_t since = HeardAt(p.id);
    const bool silent = now - since > timeout_ms * 1000;
    if (silent && !o.silent) {
      o.silent = true;
      o.silent_since = since;
      lines.emplace_back(true, "peer " + p.id + ": nothing heard for " +
                      std::to_string((now - since) / 1000000) +
                      " s (no push, no heartbeat): its changes do not reach this node");
    } else if (!silent && o.silent) {
      o.silent = false;
      lines.emplace_back(false, "peer " + p.id + ": heard again after " +
                      std::to_string((o.last_heard_at - o.silent_since) / 1000000) + " s of silence");
    }
  }
  return lines;
}

std::map<std::string, Position> StatusBoard::AckedPositions(int64_t older_than_ms) const {
  const int64_t now = NowMicros();
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, Position> out;
  for (const PeerState& p : peers_) {
    if (now - p.queue_counted_at > older_than_ms * 1000) out[p.id] = p.acked;
  }
  return out;
}

void StatusBoard::SetTotals(int64_t conflicts, int64_t parked) {
  std::lock_guard<std::mutex> lock(mu_);
  conflicts_total_ = conflicts;
  parked_total_ = parked;
}

json StatusBoard::ToJson() const {
  const int64_t now = NowMicros();
  std::lock_guard<std::mutex> lock(mu_);
  json peers = json::array();
  for (const PeerState& p : peers_) {
    double lag = 0;
    if (p.queue_depth > 0 && p.oldest_unacked_hlc) lag = std::max(0.0, Seconds(now - *p.oldest_unacked_hlc));
    peers.push_back({{"id", p.id},
                     {"url", p.url},
                     {"connected", p.connected},
                     {"state", p.state},
                     {"queue_depth", p.queue_depth},
                     {"lag_seconds", lag},
                     {"acked", p.acked.ToString()},
                     {"last_error", p.last_error ? json(*p.last_error) : json(nullptr)},
                     {"last_error_at", TimeOrNull(p.last_error_at)},
                     {"last_success_at", TimeOrNull(p.last_success_at)},
                     {"batches_sent", p.batches_sent},
                     {"changes_sent", p.changes_sent},
                     {"bytes_sent", p.bytes_sent},
                     {"failures", p.failures}});
  }
  json origins = json::array();
  for (const auto& [id, o] : origins_) {
    origins.push_back({{"id", id},
                       {"applied", o.applied.ToString()},
                       {"batches_applied", o.batches},
                       {"changes_applied", o.changes},
                       {"duplicates_skipped", o.duplicates},
                       {"conflicts", o.conflicts},
                       {"parked", o.parked},
                       {"failed", o.failed},
                       {"last_applied_at", TimeOrNull(o.last_applied_at)},
                       {"last_change_age_seconds",
                        o.last_change_hlc > 0 ? json(Seconds(now - o.last_change_hlc)) : json(nullptr)},
                       {"last_heard_seconds",
                        o.last_heard_at > 0 ? json(Seconds(now - o.last_heard_at)) : json(nullptr)},
                       {"silent", o.silent},
                       {"head", o.head ? json(o.head->ToString()) : json(nullptr)},
                       {"behind_changes", o.unacked},
                       {"behind_seconds", BehindSeconds(o, now)}});
  }
  json conflicts_by = json::array();
  for (const auto& [k, n] : conflicts_by_) {
    conflicts_by.push_back(json{{"table", k.first}, {"decision", k.second}, {"count", n}});
  }
  return json{{"node_id", node_id_},
              {"version", ZONEMESH_VERSION},
              {"started_at", FormatTime(started_at_)},
              {"uptime_seconds", Seconds(now - started_at_)},
              {"database",
               {{"type", database_type_},
                {"target", database_target_},
                {"ok", db_ok_},
                {"error", db_ok_ || db_error_.empty() ? json(nullptr) : json(db_error_)}}},
              {"outbox", {{"last_position", outbox_last_.ToString()}, {"unstamped", outbox_unstamped_}}},
              {"peers", std::move(peers)},
              {"origins", std::move(origins)},
              {"conflicts_total", conflicts_total_},
              {"conflicts_by", std::move(conflicts_by)},
              {"parked_changes", parked_total_},
              {"rejected_requests", rejected_requests_},
              {"powerdns", powerdns_},
              {"initial_sync", initial_sync_.empty() ? json(nullptr) : json(initial_sync_)},
              {"needs_resync", [&] {
                 json a = json::array();
                 for (const auto& [peer, reason] : needs_resync_) a.push_back({{"peer", peer}, {"reason", reason}});
                 return a;
               }()},
              {"anti_entropy", [&] {
                 json peers = json::object();
                 for (const auto& [peer, a] : anti_entropy_) {
                   json zones = json::array();
                   for (const auto& [zone, d] : a.divergent) {
                     zones.push_back({{"zone", zone}, {"since", FormatTime(d.since)}, {"rows", d.rows},
                                      {"example", d.example}});
                   }
                   peers[peer] = {{"comparisons", a.comparisons},
                                  {"failures", a.failures},
                                  {"last_compared_at", TimeOrNull(a.last_compared_at)},
                                  {"last_duration_seconds", a.last_duration_seconds},
                                  {"last_bytes_received", a.last_bytes},
                                  {"rows_repaired", a.rows_repaired},
                                  {"last_error", a.last_error ? json(*a.last_error) : json(nullptr)},
                                  {"divergent_zones", std::move(zones)}};
                 }
                 return json{{"interval_seconds", anti_entropy_interval_},
                             {"trees_built", trees_built_},
                             {"peers", std::move(peers)}};
               }()},
              {"last_rejection", last_rejection_.empty() ? json(nullptr) : json(last_rejection_)}};
}

std::vector<std::pair<bool, std::string>> StatusBoard::RecordComparison(
    const std::string& peer, const std::vector<ZoneDifference>& differing, int64_t rows_repaired,
    int64_t bytes, double seconds) {
  const int64_t now = NowMicros();
  std::vector<std::pair<bool, std::string>> lines;
  std::lock_guard<std::mutex> lock(mu_);
  AntiEntropyState& a = anti_entropy_[peer];
  if (a.last_error) lines.push_back({false, "anti-entropy: comparing with peer " + peer + " works again"});
  a.comparisons++;
  a.last_compared_at = now;
  a.last_duration_seconds = seconds;
  a.last_bytes = bytes;
  a.rows_repaired += rows_repaired;
  a.last_error.reset();
  std::map<std::string, AntiEntropyState::Divergence> next;
  for (const ZoneDifference& d : differing) {
    const std::string name = d.zone.empty() ? "(tables without zones)" : "zone " + d.zone;
    auto old = a.divergent.find(d.zone);
    AntiEntropyState::Divergence v{old == a.divergent.end() ? now : old->second.since, d.rows, d.example};
    if (old == a.divergent.end()) {
      lines.push_back({true, "anti-entropy: " + name + " differs from peer " + peer + " in " +
                                 std::to_string(d.rows) + " row(s) (" + d.example + "); repairing"});
    }
    next[d.zone] = v;
  }
  for (const auto& [zone, d] : a.divergent) {
    if (next.count(zone)) continue;
    const std::string name = zone.empty() ? "(tables without zones)" : "zone " + zone;
    lines.push_back({false, "anti-entropy: " + name + " agrees with peer " + peer + " again (differed for " +
                                std::to_string(static_cast<int64_t>(Seconds(now - d.since))) + " s)"});
  }
  a.divergent = std::move(next);
  return lines;
}

std::string StatusBoard::RecordComparisonFailed(const std::string& peer, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  AntiEntropyState& a = anti_entropy_[peer];
  a.failures++;
  const bool first = !a.last_error;
  a.last_error = error;
  return first ? "anti-entropy: cannot compare with peer " + peer + ": " + error : "";
}

void StatusBoard::SetAntiEntropy(int64_t interval_seconds, int64_t trees_built) {
  std::lock_guard<std::mutex> lock(mu_);
  anti_entropy_interval_ = interval_seconds;
  trees_built_ = trees_built;
}

bool StatusBoard::StreamsSettled(const std::string& peer, int64_t settle_micros) const {
  const int64_t now = NowMicros();
  std::lock_guard<std::mutex> lock(mu_);
  for (const PeerState& p : peers_) {
    if (p.id == peer && p.queue_depth > 0 && p.oldest_unacked_hlc && now - *p.oldest_unacked_hlc > settle_micros) {
      return false;
    }
  }
  auto o = origins_.find(peer);
  if (o != origins_.end() && o->second.unacked > 0 && o->second.oldest_unacked_hlc &&
      now - *o->second.oldest_unacked_hlc > settle_micros) {
    return false;
  }
  // A round larger than a batch is arriving: its rows may be older than
  // the settle time and still in flight.
  if (o != origins_.end() && o->second.mid_round) return false;
  return true;
}

}  // namespace zonemesh
