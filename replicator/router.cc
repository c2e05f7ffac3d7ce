#include "replicator/router.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "schema/version.h"

namespace zonemesh {

using nlohmann::json;

HttpResponse JsonResponse(int status, const json& body) {
  // Reasons can quote a peer's bytes; invalid UTF-8 becomes U+FFFD rather
  // than an exception.
  return HttpResponse{status, "application/json", JsonText(body) + "\n"};
}

HttpResponse ErrorResponse(int status, const std::string& message) {
  return JsonResponse(status, json{{"error", message}});
}

namespace {

json PositionJson(const Position& p) { return json::array({p.csn, p.id}); }

std::string PathOf(const std::string& target) {
  size_t q = target.find('?');
  return q == std::string::npos ? target : target.substr(0, q);
}

}  // namespace

HttpResponse Router::Handle(const HttpRequest& req) const {
  const std::string path = PathOf(req.target);
  try {
    const bool snapshot = path.rfind("/v1/snapshot/", 0) == 0;
    if ((path == "/v1/push" || path == "/v1/hello" || path == "/v1/notice" || path == "/v1/digest" ||
         snapshot) &&
        options_.scope != Scope::kReadOnly) {
      if (req.method != "POST") return ErrorResponse(405, path + " takes POST");
      if (options_.verifier) {
        const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
        std::string why = options_.verifier->Verify(req.method, path, req.body, req.headers, now);
        if (!why.empty()) {
          spdlog::warn("refused {} {} from {}: {}", req.method, path, req.remote, why);
          status_.RecordRejected("", "unauthenticated request from " + req.remote + ": " + why);
          return ErrorResponse(401, why);
        }
      }
      if (path == "/v1/notice") return Notice(req);
      if (path == "/v1/digest") return Digest(req);
      if (snapshot) return Snapshot(path, req);
      return path == "/v1/push" ? Push(req) : Hello(req);
    }
    if ((path == "/status" || path == "/health" || path == "/metrics") &&
        options_.scope != Scope::kPeers) {
      if (req.method != "GET" && req.method != "HEAD") return ErrorResponse(405, path + " takes GET");
      if (path == "/status") return JsonResponse(200, status_.ToJson());
      if (path == "/metrics") {
        return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", status_.ToPrometheus()};
      }
      std::string why = status_.Unhealthy(options_.health_max_lag_seconds, options_.health_max_lagging_peers);
      json body{{"ok", why.empty()}, {"node_id", options_.node_id}};
      if (!why.empty()) body["reason"] = why;
      return JsonResponse(why.empty() ? 200 : 503, body);
    }
    return ErrorResponse(404, "no such endpoint: " + path);
  } catch (const UnavailableError& e) {
    spdlog::warn("{} {} from {}: {}", req.method, path, req.remote, e.what());
    return ErrorResponse(503, e.what());
  } catch (const std::exception& e) {
    spdlog::error("{} {} from {}: {}", req.method, path, req.remote, e.what());
    return ErrorResponse(500, std::string("internal error: ") + e.what());
  }
}

HttpResponse Router::CheckSender(const std::string& origin, const std::string& target,
                                 const std::string& fingerprint) const {
  if (!options_.peer_ids.count(origin)) {
    status_.RecordRejected(origin, "not a configured peer");
    return ErrorResponse(403, "origin \"" + origin + "\" is not a configured peer of " +
                                  options_.node_id);
  }
  if (target != options_.node_id) {
    status_.RecordRejected(origin, "addressed to " + target);
    return ErrorResponse(421, "this is node \"" + options_.node_id + "\", not \"" + target + "\"");
  }
  if (fingerprint != options_.fingerprint) {
    status_.RecordRejected(origin, "incompatible table specs or conflict strategies");
    return JsonResponse(409, json{{"error", "incompatible: table specs or conflict strategies differ; "
                                            "both nodes must run the same zonemesh version and "
                                            "conflict configuration"},
                                  {"fingerprint", options_.fingerprint}});
  }
  return HttpResponse{0, "", ""};
}

HttpResponse Router::Hello(const HttpRequest& req) const {
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("origin") || !j["origin"].is_string() ||
      !j.contains("target") || !j["target"].is_string() || !j.contains("fingerprint") ||
      !j["fingerprint"].is_string() || !j.contains("v") || !j["v"].is_number_integer()) {
    status_.RecordRejected("", "malformed hello");
    return ErrorResponse(400, "hello must be {\"v\", \"origin\", \"target\", \"fingerprint\"}");
  }
  if (j["v"].get<int64_t>() != kProtocolVersion) {
    return ErrorResponse(400, "protocol version " + j["v"].dump() + " is not supported");
  }
  const std::string origin = j["origin"].get<std::string>();
  HttpResponse check = CheckSender(origin, j["target"].get<std::string>(),
                                   j["fingerprint"].get<std::string>());
  if (check.status) return check;
  // A heartbeat: the sender's head and what it holds unacknowledged here.
  HeardFrom heard;
  if (j.contains("head")) {
    const json& h = j["head"];
    if (!h.is_array() || h.size() != 2 || !h[0].is_number_integer() || !h[1].is_number_integer() ||
        h[0].get<int64_t>() < 0 || h[1].get<int64_t>() < 0) {
      status_.RecordRejected(origin, "malformed heartbeat");
      return ErrorResponse(400, "\"head\" must be [csn, id]");
    }
    heard.head = Position{h[0].get<int64_t>(), h[1].get<int64_t>()};
  }
  if (j.contains("unacked")) {
    if (!j["unacked"].is_number_integer() || j["unacked"].get<int64_t>() < 0) {
      status_.RecordRejected(origin, "malformed heartbeat");
      return ErrorResponse(400, "\"unacked\" must be a count");
    }
    heard.unacked = j["unacked"].get<int64_t>();
  }
  if (j.contains("oldest_unacked_hlc") && !j["oldest_unacked_hlc"].is_null()) {
    if (!j["oldest_unacked_hlc"].is_number_integer() || j["oldest_unacked_hlc"].get<int64_t>() < 0) {
      status_.RecordRejected(origin, "malformed heartbeat");
      return ErrorResponse(400, "\"oldest_unacked_hlc\" must be a time in µs or null");
    }
    heard.oldest_unacked_hlc = j["oldest_unacked_hlc"].get<int64_t>();
  }
  if (j.contains("heard")) {
    const json& h = j["heard"];
    bool ok = h.is_object() && h.size() <= 1000;
    std::map<std::string, std::optional<int64_t>> ages;
    for (auto it = ok ? h.begin() : h.end(); ok && it != h.end(); ++it) {
      if (!schema::IsValidNodeId(it.key())) ok = false;
      else if (it.value().is_null()) ages[it.key()] = std::nullopt;
      else if (it.value().is_number_integer() && it.value().get<int64_t>() >= 0) ages[it.key()] = it.value().get<int64_t>();
      else ok = false;
    }
    if (!ok) {
      status_.RecordRejected(origin, "malformed heartbeat");
      return ErrorResponse(400, "\"heard\" must map node ids to milliseconds or null");
    }
    heard.heard = std::move(ages);
  }
  status_.RecordHeard(origin, heard);
  Position ack = backend_.acknowledged(origin);
  return JsonResponse(200, json{{"node_id", options_.node_id}, {"ack", PositionJson(ack)}});
}

HttpResponse Router::Notice(const HttpRequest& req) const {
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("origin") || !j["origin"].is_string() ||
      !j.contains("target") || !j["target"].is_string() || !j.contains("fingerprint") ||
      !j["fingerprint"].is_string() || !j.contains("needs_resync") || !j["needs_resync"].is_string() ||
      !j.contains("v") || !j["v"].is_number_integer()) {
    return ErrorResponse(
        400, "notice must be {\"v\", \"origin\", \"target\", \"fingerprint\", \"needs_resync\"}");
  }
  if (j["v"].get<int64_t>() != kProtocolVersion) {
    return ErrorResponse(400, "protocol version " + j["v"].dump() + " is not supported");
  }
  const std::string origin = j["origin"].get<std::string>();
  HttpResponse check = CheckSender(origin, j["target"].get<std::string>(), j["fingerprint"].get<std::string>());
  if (check.status) return check;
  const std::string reason = j["needs_resync"].get<std::string>();
  spdlog::error("peer {} says this node needs a resync: {}; run `zonemesh join --from {}`", origin, reason, origin);
  status_.MarkNeedsResync(origin, reason);
  return JsonResponse(200, json{{"node_id", options_.node_id}});
}

HttpResponse Router::Digest(const HttpRequest& req) const {
  if (!backend_.digest) return ErrorResponse(404, "this node serves no digests");
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("origin") || !j["origin"].is_string() ||
      !j.contains("target") || !j["target"].is_string() || !j.contains("fingerprint") ||
      !j["fingerprint"].is_string() || !j.contains("v") || !j["v"].is_number_integer()) {
    return ErrorResponse(400, "digest requests are {\"v\", \"origin\", \"target\", \"fingerprint\", \"zone\"?}");
  }
  if (j["v"].get<int64_t>() != kProtocolVersion) {
    return ErrorResponse(400, "protocol version " + j["v"].dump() + " is not supported");
  }
  HttpResponse check = CheckSender(j["origin"].get<std::string>(), j["target"].get<std::string>(),
                                   j["fingerprint"].get<std::string>());
  if (check.status) return check;
  if (j.contains("tree")) {
    if (!backend_.tree) return ErrorResponse(404, "this node serves no anti-entropy trees");
    try {
      json body = backend_.tree(j);
      body["node_id"] = options_.node_id;
      return JsonResponse(200, body);
    } catch (const std::invalid_argument& e) {
      return ErrorResponse(400, e.what());
    }
  }
  std::optional<std::string> zone;
  if (j.contains("zone") && !j["zone"].is_null()) {
    if (!j["zone"].is_string() || j["zone"].get<std::string>().size() > 255) {
      return ErrorResponse(400, "\"zone\" must be a zone name");
    }
    zone = j["zone"].get<std::string>();
  }
  json body = backend_.digest(zone);
  body["node_id"] = options_.node_id;
  return JsonResponse(200, body);
}

HttpResponse Router::Snapshot(const std::string& path, const HttpRequest& req) const {
  if (!options_.snapshots) return ErrorResponse(404, "this node serves no snapshots");
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("origin") || !j["origin"].is_string() ||
      !j.contains("target") || !j["target"].is_string() || !j.contains("fingerprint") ||
      !j["fingerprint"].is_string()) {
    return ErrorResponse(400, "snapshot requests are {\"origin\", \"target\", \"fingerprint\", ...}");
  }
  HttpResponse check = CheckSender(j["origin"].get<std::string>(), j["target"].get<std::string>(),
                                   j["fingerprint"].get<std::string>());
  if (check.status) return check;
  const std::string token = j.contains("token") && j["token"].is_string() ? j["token"].get<std::string>() : "";
  try {
    if (path == "/v1/snapshot/begin") return JsonResponse(200, options_.snapshots->Begin());
    if (path == "/v1/snapshot/next") {
      return JsonResponse(200, options_.snapshots->Next(token, j.contains("cursor") ? j["cursor"] : json(nullptr)));
    }
    if (path == "/v1/snapshot/end") {
      options_.snapshots->End(token);
      return JsonResponse(200, json{{"node_id", options_.node_id}});
    }
    return ErrorResponse(404, "no such endpoint: " + path);
  } catch (const std::out_of_range& e) {
    return ErrorResponse(404, e.what());
  } catch (const std::invalid_argument& e) {
    return ErrorResponse(400, e.what());
  } catch (const json::exception& e) {
    return ErrorResponse(400, std::string("bad snapshot request: ") + e.what());
  } catch (const db::Error& e) {
    throw UnavailableError(std::string("database: ") + e.what());
  } catch (const std::runtime_error& e) {
    return ErrorResponse(503, e.what());
  }
}

HttpResponse Router::Push(const HttpRequest& req) const {
  Batch batch;
  try {
    batch = DecodeBatch(req.body);
  } catch (const WireError& e) {
    status_.RecordRejected("", std::string("malformed push: ") + e.what());
    spdlog::warn("rejected push from {}: {}", req.remote, e.what());
    return ErrorResponse(400, e.what());
  }
  HttpResponse check = CheckSender(batch.origin, batch.target, batch.fingerprint);
  if (check.status) return check;
  status_.RecordHeard(batch.origin, {});

  // A change older than the history this node keeps may be undoing a
  // delete whose tombstone is gone: its sender must resync, not continue.
  const int64_t horizon = NowMicros() - options_.history_retention_seconds * 1000000LL;
  for (const Change& c : batch.changes) {
    if (c.version.hlc < horizon) {
      std::string why = "change " + c.pos.ToString() + " of " + batch.origin + " was written at " +
                        FormatTime(c.version.hlc) + ", before this node's history retention of " +
                        std::to_string(options_.history_retention_seconds) + " s";
      status_.RecordRejected(batch.origin, why);
      spdlog::error("refusing {}: {}; it needs a resync", batch.origin, why);
      return JsonResponse(409, json{{"error", "needs-resync: " + why}, {"needs_resync", true}});
    }
  }

  ApplyResult r = backend_.apply(batch);
  int64_t newest = batch.changes.empty() ? 0 : batch.changes.back().version.hlc;
  if (r.status == ApplyResult::Status::kGap) {
    spdlog::warn("push from {} starts at {} but this node holds {}; asking it to resend",
                 batch.origin, batch.after.ToString(), r.ack.ToString());
    return JsonResponse(409, json{{"error", "gap: this node holds " + r.ack.ToString() +
                                                " of your stream; resend from there"},
                                  {"ack", PositionJson(r.ack)}});
  }
  status_.RecordApply(batch.origin, r, newest);
  // The origin continues from what this node holds: whatever it noticed
  // missing before, this node has it now.
  status_.ClearNeedsResync(batch.origin);
  return JsonResponse(200, json{{"node_id", options_.node_id},
                                {"ack", PositionJson(r.ack)},
                                {"applied", r.applied},
                                {"duplicates", r.duplicates},
                                {"conflicts", r.conflicts},
                                {"parked", r.parked},
                                {"failed", r.failed}});
}

}  // namespace zonemesh
