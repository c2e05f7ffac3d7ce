#include "replicator/pdns_notifier.h"

#include <spdlog/spdlog.h>

#include "replicator/http.h"

namespace zonemesh {

PowerDnsNotifier::PowerDnsNotifier(PowerDnsConfig config) : config_(std::move(config)) {}

PowerDnsNotifier::~PowerDnsNotifier() { Stop(); }

void PowerDnsNotifier::Start() { thread_ = std::thread([this] { Run(); }); }

void PowerDnsNotifier::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PowerDnsNotifier::ZonesChanged(const std::set<std::string>& zones) {
  if (zones.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.insert(zones.begin(), zones.end());
    stats_.pending = static_cast<int64_t>(pending_.size());
  }
  cv_.notify_all();
}

PowerDnsNotifier::Stats PowerDnsNotifier::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

std::string PowerDnsNotifier::Call(const std::string& method, const std::string& path) {
  try {
    HttpClient client(config_.api_endpoint, std::chrono::seconds(5), 1 << 20);
    HttpClient::Response r = client.Request(method, path, "", {{"X-API-Key", config_.api_key}});
    if (r.status >= 200 && r.status < 300) return "";
    return "PowerDNS API " + method + " " + path + ": HTTP " + std::to_string(r.status) + " " +
           r.body.substr(0, 200);
  } catch (const std::exception& e) {
    return "PowerDNS API at " + config_.api_url + ": " + e.what();
  }
}

void PowerDnsNotifier::Run() {
  int backoff_ms = 0;
  for (;;) {
    std::set<std::string> zones;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms > 0 ? backoff_ms : 1000),
                   [&] { return stop_ || (!pending_.empty() && backoff_ms == 0); });
      if (stop_) return;
      zones.swap(pending_);
    }
    std::set<std::string> failed;
    std::string error;
    int64_t flushed = 0, notified = 0;
    for (const std::string& zone : zones) {
      const std::string base = "/api/v1/servers/" + config_.server_id;
      std::string e = Call("PUT", base + "/cache/flush?domain=" + zone + ".");
      if (!e.empty()) {
        failed.insert(zone);
        error = e;
        continue;
      }
      ++flushed;
      if (config_.notify) {
        // Only zones PowerDNS is primary for can be notified; an answer
        // about any other kind is not a failure worth retrying.
        std::string n = Call("PUT", base + "/zones/" + zone + "./notify");
        if (n.empty()) {
          ++notified;
        } else {
          spdlog::debug("NOTIFY for {}: {}", zone, n);
        }
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    stats_.flushed += flushed;
    stats_.notified += notified;
    if (!failed.empty()) {
      if (stats_.last_error != error) spdlog::warn("{}; will retry {} zone(s)", error, failed.size());
      stats_.failures += static_cast<int64_t>(failed.size());
      stats_.last_error = error;
      pending_.insert(failed.begin(), failed.end());
      backoff_ms = backoff_ms == 0 ? 200 : std::min(backoff_ms * 2, 10000);
    } else {
      if (!stats_.last_error.empty()) spdlog::info("PowerDNS API reachable again");
      stats_.last_error.clear();
      backoff_ms = 0;
    }
    stats_.pending = static_cast<int64_t>(pending_.size());
  }
}

}  // namespace zonemesh
