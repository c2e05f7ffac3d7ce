// Turns an HTTP request into a response. No sockets here: the server calls
// Handle() for each request and tests call it directly.
//
//   POST /v1/hello   a peer introduces itself; answers with what this node
//                    holds of its stream (so the peer resumes from there)
//   POST /v1/push    a batch of a peer's changes; answers with the position
//                    now held (the acknowledgement)
//   POST /v1/notice  a peer tells this node it needs a resync
//   POST /v1/snapshot/{begin,next,end}  a joining peer pulls a snapshot
//                    (replicator/snapshot.h)
//   GET  /status     the node's status as JSON
//   GET  /metrics    the same figures for Prometheus
//   GET  /health     200 while the database answers and peers keep up,
//                    else 503 with the reason (for anycast health checks)
//
// With auth configured, /v1/* requests must carry a valid signature (401
// otherwise, before the body is even parsed).
#ifndef ZONEMESH_REPLICATOR_ROUTER_H_
#define ZONEMESH_REPLICATOR_ROUTER_H_

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "replicator/applier.h"
#include "replicator/auth.h"
#include "replicator/snapshot.h"
#include "replicator/status.h"
#include "replicator/wire.h"

namespace zonemesh {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query
  std::string body;
  std::string remote;  // peer address, for logs
  std::map<std::string, std::string> headers;  // lower-case names
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// A database failure while serving a request (503: try again later).
class UnavailableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Router {
 public:
  // Which endpoints a listener serves.
  enum class Scope { kAll, kPeers, kReadOnly };

  struct Options {
    std::string node_id;
    std::string fingerprint;         // peers must present the same
    std::set<std::string> peer_ids;  // origins accepted
    Scope scope = Scope::kAll;
    // Verifies peer requests' signatures; null when auth is off.
    RequestVerifier* verifier = nullptr;
    // /health thresholds (see Config).
    double health_max_lag_seconds = 60;
    int health_max_lagging_peers = 0;
    // Changes older than this are refused: the sender needs a resync.
    int64_t history_retention_seconds = 7 * 86400;
    // Serves snapshots to joining peers; null: none.
    SnapshotService* snapshots = nullptr;
  };
  // The database work, done by the caller's applier (serialized there).
  // Both may throw UnavailableError.
  struct Backend {
    std::function<ApplyResult(const Batch&)> apply;
    std::function<Position(const std::string& origin)> acknowledged;
    // This node's zone digests ({"zones": ...}), or with a zone the lines of
    // its canonical dump ({"zone", "lines"}); null: not served.
    std::function<nlohmann::json(const std::optional<std::string>& zone)> digest;
    // Anti-entropy tree requests ({"tree": ...}, replicator/anti_entropy.h);
    // throws std::invalid_argument for a malformed one. Null: not served.
    std::function<nlohmann::json(const nlohmann::json& request)> tree;
  };

  Router(Options options, Backend backend, StatusBoard& status)
      : options_(std::move(options)), backend_(std::move(backend)), status_(status) {}

  // Never throws: every failure becomes a response with a reason.
  HttpResponse Handle(const HttpRequest& req) const;

 private:
  HttpResponse Push(const HttpRequest& req) const;
  HttpResponse Hello(const HttpRequest& req) const;
  HttpResponse Notice(const HttpRequest& req) const;
  HttpResponse Snapshot(const std::string& path, const HttpRequest& req) const;
  HttpResponse Digest(const HttpRequest& req) const;
  // Checks the parts of a hello or push that identify the sender; returns a
  // response to send back, or status 0 when the sender is acceptable.
  HttpResponse CheckSender(const std::string& origin, const std::string& target,
                           const std::string& fingerprint) const;

  Options options_;
  Backend backend_;
  StatusBoard& status_;
};

HttpResponse JsonResponse(int status, const nlohmann::json& body);
HttpResponse ErrorResponse(int status, const std::string& message);

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_ROUTER_H_
