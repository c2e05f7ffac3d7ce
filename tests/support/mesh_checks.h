// Checks and a load generator shared by the integration tests that run
// real daemons: status readings, duplicate detection, and a writer that
// appends uniquely named records while daemons and databases are killed.
#ifndef ZONEMESH_TESTS_SUPPORT_MESH_CHECKS_H_
#define ZONEMESH_TESTS_SUPPORT_MESH_CHECKS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "db/connection.h"
#include "tests/support/cluster.h"

namespace zonemesh::testing {

// A peer's queue_depth in a /status document, -1 when it is not listed.
int64_t QueueDepth(const nlohmann::json& status, const std::string& peer);
// changes_applied of an origin in a /status document, 0 when not listed.
int64_t ChangesApplied(const nlohmann::json& status, const std::string& origin);

// Physical duplicate rows by natural identity in the tables writers touch,
// as readable lines; empty when there are none.
std::string PhysicalDuplicates(db::Connection& conn);

// Inserts uniquely named A records (`<prefix><n>.<zone>`) into one zone of
// one node, four per transaction, until stopped, and remembers every name
// whose transaction committed. By default the first database error ends
// it (error()). With `survive_database_loss`, it reconnects and goes on
// instead (error() is the last error); a transaction whose COMMIT failed
// may or may not have committed, so its names go to uncertain().
class AppendWriter {
 public:
  AppendWriter(Node& node, std::string zone, std::string prefix = "r",
               bool survive_database_loss = false);
  ~AppendWriter();
  AppendWriter(const AppendWriter&) = delete;
  AppendWriter& operator=(const AppendWriter&) = delete;

  void Start();
  void Stop();
  size_t committed() const { return committed_.load(); }
  std::vector<std::string> names();
  std::vector<std::string> uncertain();
  std::string error();

 private:
  void Run();

  Node& node_;
  std::string zone_;
  std::string prefix_;
  bool survive_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> committed_{0};
  std::mutex mu_;
  std::vector<std::string> names_;
  std::vector<std::string> uncertain_;
  std::string error_;
};

}  // namespace zonemesh::testing

#endif  // ZONEMESH_TESTS_SUPPORT_MESH_CHECKS_H_
