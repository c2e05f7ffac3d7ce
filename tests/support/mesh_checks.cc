#include "tests/support/mesh_checks.h"

#include <chrono>

#include "tests/support/pdns_writes.h"

namespace zonemesh::testing {

using nlohmann::json;

int64_t QueueDepth(const json& status, const std::string& peer) {
  json p = PeerEntry(status, peer);
  return p.is_null() ? -1 : p.value("queue_depth", int64_t{-1});
}

int64_t ChangesApplied(const json& status, const std::string& origin) {
  json o = OriginEntry(status, origin);
  return o.is_null() ? 0 : o.value("changes_applied", int64_t{0});
}

std::string PhysicalDuplicates(db::Connection& conn) {
  std::string out;
  for (const db::Row& r : conn.Query(
           "SELECT domain_id, name, type, content, COUNT(*) FROM records "
           "GROUP BY domain_id, name, type, content HAVING COUNT(*) > 1")) {
    out += "records " + r[0].AsText() + " " + r[1].AsText() + " " + r[2].AsText() + " " +
           r[3].AsText() + " x" + r[4].AsText() + "\n";
  }
  for (const db::Row& r : conn.Query(
           "SELECT domain_id, kind, content, COUNT(*) FROM domainmetadata "
           "GROUP BY domain_id, kind, content HAVING COUNT(*) > 1")) {
    out += "domainmetadata " + r[0].AsText() + " " + r[1].AsText() + " x" + r[3].AsText() + "\n";
  }
  for (const db::Row& r : conn.Query(
           "SELECT name, COUNT(*) FROM domains GROUP BY name HAVING COUNT(*) > 1")) {
    out += "domains " + r[0].AsText() + " x" + r[1].AsText() + "\n";
  }
  return out;
}

AppendWriter::AppendWriter(Node& node, std::string zone, std::string prefix,
                           bool survive_database_loss)
    : node_(node),
      zone_(std::move(zone)),
      prefix_(std::move(prefix)),
      survive_(survive_database_loss) {}

AppendWriter::~AppendWriter() { Stop(); }

void AppendWriter::Start() {
  thread_ = std::thread([this] { Run(); });
}

void AppendWriter::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> AppendWriter::names() {
  std::lock_guard<std::mutex> lock(mu_);
  return names_;
}

std::vector<std::string> AppendWriter::uncertain() {
  std::lock_guard<std::mutex> lock(mu_);
  return uncertain_;
}

std::string AppendWriter::error() {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void AppendWriter::Run() {
  std::unique_ptr<db::Connection> conn;
  int64_t seq = 0;
  while (!stop_) {
    std::vector<std::string> batch;
    for (int i = 0; i < 4; ++i) batch.push_back(prefix_ + std::to_string(seq++) + "." + zone_);
    bool committing = false;
    try {
      if (!conn) conn = node_.Connect();
      PdnsWriter w(*conn);
      auto insert = [&] {
        for (const std::string& n : batch) w.AddRecord(zone_, n, "A", "192.0.2.9");
      };
      if (survive_) {
        conn->Begin();
        insert();
        committing = true;
        conn->Commit();
      } else {
        WithTransaction(*conn, insert);
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = e.what();
      if (!survive_) return;
      // Before COMMIT nothing was written; during it, the outcome is unknown.
      if (committing) uncertain_.insert(uncertain_.end(), batch.begin(), batch.end());
      if (conn) {
        try {
          conn->Rollback();
        } catch (...) {
        }
      }
      conn.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      names_.insert(names_.end(), batch.begin(), batch.end());
    }
    committed_ += batch.size();
    std::this_thread::sleep_for(std::chrono::milliseconds(4));
  }
}

}  // namespace zonemesh::testing
