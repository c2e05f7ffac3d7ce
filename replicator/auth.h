// Peer authentication: every request a peer sends is signed with the mesh
// secret (HMAC-SHA256 over method, path, timestamp, nonce and the body's
// SHA-256). The receiver refuses a missing or wrong signature, a timestamp
// outside the allowed clock skew, and a nonce it has already seen within
// that window (a replay).
#ifndef ZONEMESH_REPLICATOR_AUTH_H_
#define ZONEMESH_REPLICATOR_AUTH_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_set>

namespace zonemesh {

inline constexpr const char* kTimestampHeader = "x-zonemesh-timestamp";
inline constexpr const char* kNonceHeader = "x-zonemesh-nonce";
inline constexpr const char* kSignatureHeader = "x-zonemesh-signature";

// The signed text: method, path, timestamp, nonce and hex SHA-256 of the
// body, one per line.
std::string CanonicalRequest(const std::string& method, const std::string& path,
                             const std::string& timestamp, const std::string& nonce,
                             const std::string& body);

std::string HmacSha256Hex(const std::string& key, const std::string& data);

// Headers (lower-case names) for one request: the current time, a fresh
// random nonce, the signature. Thread-safe.
std::map<std::string, std::string> SignRequest(const std::string& secret, const std::string& method,
                                               const std::string& path, const std::string& body);

class HttpClient;

// POSTs `body` to `path` of peer `peer_id` (behind `base_path`, the peer
// URL's prefix), signed with `secret` unless it is empty, and returns the
// JSON object it answers. Throws std::runtime_error naming the peer, the
// path and the HTTP status (with the peer's "error") for any other answer,
// HttpError when the peer cannot be reached.
nlohmann::json PostToPeer(HttpClient& client, const std::string& secret, const std::string& base_path,
                          const std::string& peer_id, const std::string& path,
                          const nlohmann::json& body);

class RequestVerifier {
 public:
  RequestVerifier(std::string secret, std::chrono::seconds max_skew);

  // Empty when the request is authentic and fresh (its nonce is then
  // remembered); otherwise the reason it is refused. `headers` has
  // lower-case names. Thread-safe.
  std::string Verify(const std::string& method, const std::string& path, const std::string& body,
                     const std::map<std::string, std::string>& headers, int64_t now_seconds);

 private:
  const std::string secret_;
  const int64_t max_skew_;

  std::mutex mu_;
  // Nonces seen within the window, and their expiry order for pruning.
  std::unordered_set<std::string> seen_;
  std::deque<std::pair<int64_t, std::string>> expiry_;
};

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_AUTH_H_
