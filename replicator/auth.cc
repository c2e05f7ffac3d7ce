#include "replicator/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>

#include "replicator/http.h"
#include "schema/key.h"

namespace zonemesh {

namespace {

std::string Hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 0xf];
  }
  return out;
}

// Upper bound of remembered nonces: beyond it the oldest are dropped early,
// so a flood of signed requests cannot grow memory without end.
constexpr size_t kMaxNonces = 1 << 20;

}  // namespace

std::string CanonicalRequest(const std::string& method, const std::string& path,
                             const std::string& timestamp, const std::string& nonce,
                             const std::string& body) {
  return method + "\n" + path + "\n" + timestamp + "\n" + nonce + "\n" + schema::Sha256Hex(body);
}

std::string HmacSha256Hex(const std::string& key, const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len)) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return Hex(md, len);
}

std::map<std::string, std::string> SignRequest(const std::string& secret, const std::string& method,
                                               const std::string& path, const std::string& body) {
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("no random bytes for a nonce");
  const std::string nonce = Hex(raw, sizeof raw);
  const std::string ts = std::to_string(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  return {{kTimestampHeader, ts},
          {kNonceHeader, nonce},
          {kSignatureHeader, HmacSha256Hex(secret, CanonicalRequest(method, path, ts, nonce, body))}};
}

RequestVerifier::RequestVerifier(std::string secret, std::chrono::seconds max_skew)
    : secret_(std::move(secret)), max_skew_(max_skew.count()) {}

std::string RequestVerifier::Verify(const std::string& method, const std::string& path,
                                    const std::string& body,
                                    const std::map<std::string, std::string>& headers,
                                    int64_t now_seconds) {
  auto get = [&](const char* name) -> const std::string* {
    auto it = headers.find(name);
    return it == headers.end() ? nullptr : &it->second;
  };
  const std::string* ts = get(kTimestampHeader);
  const std::string* nonce = get(kNonceHeader);
  const std::string* sig = get(kSignatureHeader);
  if (!ts || !nonce || !sig) return "request is not signed (the mesh requires peer authentication)";
  if (nonce->size() < 16 || nonce->size() > 64) return "malformed nonce";
  int64_t t = 0;
  try {
    size_t used = 0;
    t = std::stoll(*ts, &used);
    if (used != ts->size()) throw std::invalid_argument("");
  } catch (const std::exception&) {
    return "malformed timestamp";
  }
  if (t < now_seconds - max_skew_ || t > now_seconds + max_skew_) {
    return "timestamp " + *ts + " is outside the allowed clock skew of " + std::to_string(max_skew_) +
           " s (this node's clock: " + std::to_string(now_seconds) + ")";
  }
  const std::string expected = HmacSha256Hex(secret_, CanonicalRequest(method, path, *ts, *nonce, body));
  if (sig->size() != expected.size() || CRYPTO_memcmp(sig->data(), expected.data(), expected.size()) != 0) {
    return "bad signature (wrong mesh secret, or the request was altered)";
  }
  std::lock_guard<std::mutex> lock(mu_);
  while (!expiry_.empty() && (expiry_.front().first < now_seconds || expiry_.size() > kMaxNonces)) {
    seen_.erase(expiry_.front().second);
    expiry_.pop_front();
  }
  if (!seen_.insert(*nonce).second) return "replayed request (nonce already used)";
  // A nonce must be remembered as long as its timestamp is acceptable.
  expiry_.emplace_back(t + max_skew_ + 1, *nonce);
  return "";
}

nlohmann::json PostToPeer(HttpClient& client, const std::string& secret, const std::string& base_path,
                          const std::string& peer_id, const std::string& path,
                          const nlohmann::json& body) {
  const std::string text = body.dump();
  std::map<std::string, std::string> headers;
  if (!secret.empty()) headers = SignRequest(secret, "POST", path, text);
  HttpClient::Response r = client.Request("POST", base_path + path, text, headers);
  nlohmann::json answer = nlohmann::json::parse(r.body, nullptr, false);
  if (r.status != 200) {
    std::string why = answer.is_object() && answer.contains("error") && answer["error"].is_string()
                          ? answer["error"].get<std::string>()
                          : r.body.substr(0, 200);
    throw std::runtime_error("peer " + peer_id + " answered " + path + " with HTTP " +
                             std::to_string(r.status) + ": " + why);
  }
  if (!answer.is_object()) throw std::runtime_error("peer " + peer_id + " sent no JSON for " + path);
  return answer;
}

}  // namespace zonemesh
