#include "replicator/status.h"

#include <chrono>
#include <ctime>

namespace zonemesh {

using nlohmann::json;

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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

json TimeOrNull(int64_t micros) { return micros > 0 ? json(FormatTime(micros)) : json(nullptr); }

double Seconds(int64_t micros) { return static_cast<double>(micros) / 1e6; }

}  // namespace

StatusBoard::StatusBoard(const Config& config, std::string database_target)
    : node_id_(config.node_id),
      database_type_(db::DialectName(config.database.dialect)),
      database_target_(std::move(database_target)),
      started_at_(NowMicros()) {
  for (const PeerConfig& p : config.peers) {
    PeerState s;
    s.id = p.id;
    s.url = p.url;
    peers_.push_back(s);
  }
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
  if (newest_change_hlc > o.last_change_hlc) o.last_change_hlc = newest_change_hlc;
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
                        o.last_change_hlc > 0 ? json(Seconds(now - o.last_change_hlc)) : json(nullptr)}});
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
              {"parked_changes", parked_total_},
              {"rejected_requests", rejected_requests_},
              {"powerdns", powerdns_},
              {"last_rejection", last_rejection_.empty() ? json(nullptr) : json(last_rejection_)}};
}

}  // namespace zonemesh
