// Pushing this node's changes to one peer. One thread per peer, with its
// own database connection and keep-alive HTTP connection, so a slow or dead
// peer never delays the others.
//
// The peer's position in this node's stream (its cursor) is what it last
// acknowledged, persisted in zm_peer; everything after it is the peer's
// queue. On (re)connecting the link asks the peer what it holds (hello) and
// resumes from there, so a lost acknowledgement or a peer restored from a
// backup costs a resend, never a gap or a double apply.
#ifndef ZONEMESH_REPLICATOR_PEER_LINK_H_
#define ZONEMESH_REPLICATOR_PEER_LINK_H_

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "db/connection.h"
#include "replicator/config.h"
#include "replicator/http.h"
#include "replicator/outbox.h"
#include "replicator/status.h"

namespace zonemesh {

using ConnectionFactory = std::function<std::unique_ptr<db::Connection>()>;

class PeerLink {
 public:
  PeerLink(const Config& config, const PeerConfig& peer, std::string fingerprint,
           StatusBoard& status, ConnectionFactory open_db);
  ~PeerLink();

  void Start();
  // Stops after the request in flight (bounded by request_timeout_ms).
  void Stop();
  // New changes are stamped: send them now (cheap, callable from any thread).
  void Wake();

 private:
  void Run();
  // One step: hello if needed, then one batch. Returns true when more
  // changes may be waiting, false when caught up.
  bool Step();
  // Introduces this node (after a failure, at start) or, with
  // `heartbeat`, tells an idle peer this node's position and what it has
  // not acknowledged (queue_: call RefreshQueue(true) first), within
  // link_timeout_ms.
  void Hello(bool heartbeat = false);
  // POSTs to the peer's `endpoint` ("/v1/push"), signed when auth is on.
  HttpClient::Response Post(const std::string& endpoint, const std::string& body,
                            std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  void RefreshQueue(bool force);
  void Fail(const std::string& state, const std::string& error);
  // Sleeps up to `ms` or until Stop(); with wakeable, also until Wake().
  void Sleep(int ms, bool wakeable);

  const Config& config_;
  const PeerConfig peer_;
  const std::string fingerprint_;
  StatusBoard& status_;
  ConnectionFactory open_db_;

  std::unique_ptr<db::Connection> conn_;
  std::unique_ptr<Outbox> outbox_;
  HttpClient client_;
  Position cursor_;
  // The cursor as last written to zm_peer, and when: it is written at most
  // once a second (and when the link stops). It only saves a question at
  // the next start: the peer's answer to hello is what counts.
  Position saved_cursor_;
  int64_t cursor_saved_at_ = 0;
  void SaveCursor(bool now);
  bool introduced_ = false;   // hello answered since the last failure
  int backoff_ms_ = 0;          // current back-off, doubling while failures repeat
  bool backoff_pending_ = false;  // the last step failed: wait backoff_ms_ first
  int64_t queue_refreshed_at_ = 0;
  Outbox::Queue queue_;  // as RefreshQueue last counted it
  int64_t last_exchange_at_ = 0;  // µs: the last request the peer answered

  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_PEER_LINK_H_
