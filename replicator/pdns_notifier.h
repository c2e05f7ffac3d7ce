// Telling the local PowerDNS what zonemesh changed under it. PowerDNS caches
// zones (the zone cache), packets and query results, so rows written
// straight into SQL stay invisible for up to minutes. After each applied
// batch the daemon hands the zones it touched to this notifier, which calls
// the PowerDNS HTTP API's cache flush for each (it also refreshes the zone
// cache: a new zone is served at once, a deleted one is gone at once) and,
// optionally, asks PowerDNS to send NOTIFY for them so that classic AXFR
// secondaries behind the node follow.
//
// Runs on its own thread with a de-duplicating queue: a slow or stopped
// PowerDNS never delays replication; failures are logged and shown in
// status, and the zones are retried.
#ifndef ZONEMESH_REPLICATOR_PDNS_NOTIFIER_H_
#define ZONEMESH_REPLICATOR_PDNS_NOTIFIER_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "replicator/config.h"

namespace zonemesh {

class PowerDnsNotifier {
 public:
  explicit PowerDnsNotifier(PowerDnsConfig config);
  ~PowerDnsNotifier();

  void Start();
  void Stop();

  // Queues zones (names without the trailing dot) to flush. Thread-safe.
  void ZonesChanged(const std::set<std::string>& zones);

  struct Stats {
    int64_t flushed = 0;
    int64_t notified = 0;
    int64_t failures = 0;
    int64_t pending = 0;
    std::string last_error;
  };
  Stats stats() const;

 private:
  void Run();
  // One API call; returns an error message or "".
  std::string Call(const std::string& method, const std::string& path);

  const PowerDnsConfig config_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> pending_;
  bool stop_ = false;
  Stats stats_;
  std::thread thread_;
};

}  // namespace zonemesh

#endif  // ZONEMESH_REPLICATOR_PDNS_NOTIFIER_H_
