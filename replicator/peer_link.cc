#include "replicator/peer_link.h"

#include <spdlog/spdlog.h>

#include "replicator/auth.h"

namespace zonemesh {

using nlohmann::json;

namespace {

// Parses {"ack": [csn, id]} from a peer's answer.
std::optional<Position> AckOf(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("ack")) return std::nullopt;
  const json& a = j["ack"];
  if (!a.is_array() || a.size() != 2 || !a[0].is_number_integer() || !a[1].is_number_integer())
    return std::nullopt;
  return Position{a[0].get<int64_t>(), a[1].get<int64_t>()};
}

std::string ErrorOf(const HttpClient::Response& r) {
  json j = json::parse(r.body, nullptr, false);
  std::string msg = !j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string()
                        ? j["error"].get<std::string>()
                        : r.body.substr(0, 200);
  return "HTTP " + std::to_string(r.status) + ": " + msg;
}

}  // namespace

PeerLink::PeerLink(const Config& config, const PeerConfig& peer, std::string fingerprint,
                   StatusBoard& status, ConnectionFactory open_db)
    : config_(config),
      peer_(peer),
      fingerprint_(std::move(fingerprint)),
      status_(status),
      open_db_(std::move(open_db)),
      client_(peer.endpoint, std::chrono::milliseconds(config.request_timeout_ms), 64 << 20,
              peer.scheme == "https" ? &config.tls : nullptr) {}

PeerLink::~PeerLink() { Stop(); }

void PeerLink::Start() { thread_ = std::thread([this] { Run(); }); }

void PeerLink::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PeerLink::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void PeerLink::Sleep(int ms, bool wakeable) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stop_ || (wakeable && wake_); });
  if (wakeable) wake_ = false;
}

void PeerLink::Fail(const std::string& state, const std::string& error) {
  introduced_ = false;
  backoff_pending_ = true;
  backoff_ms_ = state == "retrying"
                    ? (backoff_ms_ == 0 ? config_.retry_min_ms
                                        : std::min(backoff_ms_ * 2, config_.retry_max_ms))
                    : config_.retry_max_ms;
  status_.UpdatePeer(peer_.id, [&](PeerState& p) {
    if (p.last_error != error) spdlog::warn("peer {}: {}", peer_.id, error);
    p.connected = state != "retrying" ? p.connected : false;
    p.state = state;
    p.last_error = error;
    p.last_error_at = NowMicros();
    p.failures++;
  });
}

void PeerLink::RefreshQueue(bool force) {
  const int64_t now = NowMicros();
  if (!force && now - queue_refreshed_at_ < 1000000) return;
  queue_refreshed_at_ = now;
  queue_ = outbox_->QueueAfter(cursor_);
  status_.UpdatePeer(peer_.id, [&](PeerState& p) {
    p.queue_depth = queue_.depth;
    p.oldest_unacked_hlc = queue_.oldest_hlc;
    p.queue_counted_at = now;
    p.acked = cursor_;
  });
}

HttpClient::Response PeerLink::Post(const std::string& endpoint, const std::string& body,
                                    std::optional<std::chrono::milliseconds> timeout) {
  // The signature covers the path the peer's router sees (without the
  // peer URL's prefix, which a reverse proxy may strip).
  std::map<std::string, std::string> headers;
  if (config_.auth.enabled()) headers = SignRequest(config_.auth.secret, "POST", endpoint, body);
  HttpClient::Response r = client_.Request("POST", peer_.base_path + endpoint, body, headers, timeout);
  last_exchange_at_ = NowMicros();
  return r;
}

void PeerLink::Hello(bool heartbeat) {
  json hello{{"v", kProtocolVersion},
             {"origin", config_.node_id},
             {"target", peer_.id},
             {"fingerprint", fingerprint_}};
  std::optional<std::chrono::milliseconds> timeout;
  if (heartbeat) {
    // What the peer can tell from it: this node is there, how far its
    // stream goes, and how much of it the peer lacks since when (as
    // counted just before, by RefreshQueue).
    const Position head = outbox_->LastPosition();
    hello["head"] = json::array({head.csn, head.id});
    hello["unacked"] = queue_.depth;
    hello["oldest_unacked_hlc"] = queue_.oldest_hlc ? json(*queue_.oldest_hlc) : json(nullptr);
    // Which peers this node hears, so that the peer can tell a node that
    // is down from a link of its own that is cut (its /health).
    json heard = json::object();
    for (const auto& [id, ms] : status_.HeardAges()) {
      if (id != peer_.id) heard[id] = ms ? json(*ms) : json(nullptr);
    }
    hello["heard"] = std::move(heard);
    timeout = std::chrono::milliseconds(config_.link_timeout_ms);
  }
  HttpClient::Response r = Post("/v1/hello", hello.dump(), timeout);
  if (r.status != 200) {
    Fail(r.status == 409 || r.status == 403 || r.status == 421 ? "refused" : "retrying", ErrorOf(r));
    return;
  }
  std::optional<Position> ack = AckOf(r.body);
  if (!ack) {
    Fail("retrying", "peer answered hello without a position");
    return;
  }
  if (*ack != cursor_) {
    spdlog::info("peer {} holds {} of this node's stream (cursor was {})", peer_.id, ack->ToString(),
                 cursor_.ToString());
    cursor_ = *ack;
    SaveCursor(true);
  }
  introduced_ = true;
  backoff_ms_ = 0;
  status_.UpdatePeer(peer_.id, [&](PeerState& p) {
    if (p.last_error) spdlog::info("peer {}: connected again", peer_.id);
    p.connected = true;
    p.last_error.reset();
    p.last_success_at = NowMicros();
    p.acked = cursor_;
  });
}

bool PeerLink::Step() {
  if (!conn_) {
    conn_ = open_db_();
    outbox_ = std::make_unique<Outbox>(*conn_, config_.node_id);
    auto cursors = outbox_->LoadCursors();
    cursor_ = cursors.count(peer_.id) ? cursors[peer_.id] : Position{};
    saved_cursor_ = cursor_;
  }
  if (!introduced_) {
    RefreshQueue(true);
    Hello();
    if (!introduced_) return false;
  }
  Position purged = outbox_->PurgedUpTo();
  if (cursor_ < purged) {
    const std::string why = "it holds " + cursor_.ToString() + " of " + config_.node_id +
                            "'s changes, but changes up to " + purged.ToString() +
                            " passed the history retention and were purged";
    Fail("needs-resync", "peer needs a resync: " + why);
    // Tell it, so that its own status and health say so.
    json notice{{"v", kProtocolVersion},
                {"origin", config_.node_id},
                {"target", peer_.id},
                {"fingerprint", fingerprint_},
                {"needs_resync", why}};
    Post("/v1/notice", notice.dump());
    return false;
  }

  Batch batch = outbox_->ReadBatch(cursor_, config_.batch_max_changes, config_.batch_max_bytes);
  if (batch.changes.empty()) {
    RefreshQueue(true);
    if (NowMicros() - last_exchange_at_ >= int64_t{config_.heartbeat_interval_ms} * 1000) {
      Hello(/*heartbeat=*/true);
      if (!introduced_) return false;  // failed: reported, backing off
    }
    status_.UpdatePeer(peer_.id, [](PeerState& p) { p.state = "ok"; });
    return false;
  }
  batch.origin = config_.node_id;
  batch.target = peer_.id;
  batch.fingerprint = fingerprint_;
  const std::string body = EncodeBatch(batch);
  HttpClient::Response r = Post("/v1/push", body);
  std::optional<Position> ack = AckOf(r.body);
  if (r.status == 200 && ack) {
    cursor_ = *ack;
    SaveCursor(false);
    backoff_ms_ = 0;
    status_.ClearNeedsResync(peer_.id);
    status_.UpdatePeer(peer_.id, [&](PeerState& p) {
      p.connected = true;
      p.state = "ok";
      p.last_success_at = NowMicros();
      p.acked = cursor_;
      p.batches_sent++;
      p.changes_sent += static_cast<int64_t>(batch.changes.size());
      p.bytes_sent += static_cast<int64_t>(body.size());
    });
    spdlog::debug("peer {}: pushed {} change(s), acknowledged {}", peer_.id, batch.changes.size(),
                  cursor_.ToString());
    RefreshQueue(false);
    return true;
  }
  json answer = json::parse(r.body, nullptr, false);
  if (r.status == 409 && answer.is_object() && answer.value("needs_resync", false)) {
    // The peer refuses changes this old: this node was away too long.
    status_.MarkNeedsResync(peer_.id, ErrorOf(r));
    Fail("needs-resync", ErrorOf(r));
    return false;
  }
  if (r.status == 409 && ack) {
    spdlog::warn("peer {} holds {} of this node's stream; resending from there", peer_.id,
                 ack->ToString());
    cursor_ = *ack;
    SaveCursor(true);
    return true;
  }
  Fail(r.status == 409 || r.status == 403 || r.status == 421 ? "refused" : "retrying", ErrorOf(r));
  return false;
}

void PeerLink::SaveCursor(bool now) {
  const int64_t t = NowMicros();
  if (cursor_ == saved_cursor_ || (!now && t - cursor_saved_at_ < 1000000)) return;
  outbox_->SaveCursor(peer_.id, cursor_);
  saved_cursor_ = cursor_;
  cursor_saved_at_ = t;
}

void PeerLink::Run() {
  spdlog::info("peer {}: pushing to {}", peer_.id, peer_.url);
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
    }
    bool more = false;
    try {
      more = Step();
    } catch (const HttpError& e) {
      client_.Close();
      Fail("retrying", e.what());
    } catch (const db::Error& e) {
      if (e.connection_lost()) {
        outbox_.reset();
        conn_.reset();
      }
      Fail("retrying", std::string("local database: ") + e.what());
    } catch (const std::exception& e) {
      Fail("retrying", e.what());
    }
    if (backoff_pending_) {
      backoff_pending_ = false;
      Sleep(backoff_ms_, false);
      continue;
    }
    if (more) continue;
    try {
      if (outbox_) SaveCursor(false);  // idle: write what is pending, once a second
    } catch (const db::Error& e) {
      spdlog::debug("peer {}: saving the cursor: {}", peer_.id, e.what());
    }
    Sleep(std::min(1000, config_.heartbeat_interval_ms), true);
  }
  try {
    if (outbox_) SaveCursor(true);
  } catch (const db::Error& e) {
    spdlog::debug("peer {}: saving the cursor: {}", peer_.id, e.what());
  }
  client_.Close();
  spdlog::debug("peer {}: stopped", peer_.id);
}

}  // namespace zonemesh
