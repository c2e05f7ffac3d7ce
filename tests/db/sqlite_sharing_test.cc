// An SQLite database shared with PowerDNS: zonemesh's write transactions
// must never make PowerDNS's fail. PowerDNS (gsqlite3) begins deferred,
// reads, then writes, and such a transaction fails at once ("database is
// locked") when another process holds the write lock or committed after its
// first read. zonemesh-test-sqlite-writer writes exactly that way while
// this process writes through db::Connection as the applier does: read,
// then write, in transactions retried when they are given up.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <fcntl.h>
#include <string>
#include <thread>

#include "db/connection.h"
#include "db/open.h"
#include "tests/support/cluster.h"
#include "tests/support/test_db.h"

namespace zonemesh {
namespace {

struct SharingRun {
  std::string writer_output;
  int writer_failed = -1;
  int64_t commits = 0;
  int64_t given_up = 0;
};

// Runs the PowerDNS-style writer (ROUNDS rounds) against a fresh database
// while this process commits transactions until the writer exits.
SharingRun RunBesidePowerDnsStyleWriter(bool yield_to_readers) {
  db::DatabaseConfig cfg = testing::FreshDatabase(db::Dialect::kSqlite, "zm_sharing");
  cfg.yield_to_readers = yield_to_readers;
  auto conn = db::Open(cfg);
  conn->ExecuteDdl("CREATE TABLE records (name TEXT, content TEXT)");
  conn->ExecuteDdl("CREATE TABLE zt (a INTEGER)");

  const std::string out_path = cfg.path + ".writer.out";
  int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  EXPECT_GE(out, 0);
  pid_t pid = testing::SpawnProgram(
      {ZONEMESH_TEST_SQLITE_WRITER, cfg.path, "300", "300", "1000"}, out, out);
  ::close(out);

  SharingRun run;
  int status = 0;
  int64_t a = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    try {
      conn->Begin();
      conn->Query("SELECT count(*) FROM zt");
      for (int i = 0; i < 20; ++i) conn->Execute("INSERT INTO zt (a) VALUES (?)", {db::Value(++a)});
      conn->Commit();
      ++run.commits;
    } catch (const db::Error& e) {
      conn->Rollback();
      if (e.kind() != db::Error::Kind::kTransient) throw;
      ++run.given_up;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  }
  run.writer_output = testing::ReadFile(out_path);
  EXPECT_EQ(testing::DecodeWaitStatus(status), 0) << run.writer_output;
  auto at = run.writer_output.find("failed ");
  if (at != std::string::npos) run.writer_failed = std::stoi(run.writer_output.substr(at + 7));
  std::cerr << "[sharing] yield_to_readers=" << yield_to_readers << ": writer: "
            << testing::Tail(run.writer_output, 1) << "zonemesh: " << run.commits
            << " commits, " << run.given_up << " given up\n";
  return run;
}

// A reader that keeps coming back (PowerDNS answering queries) makes
// zonemesh give transactions up; after a few in a row it writes anyway, and
// a transaction given up earlier must not make later ones give up too.
TEST(SqliteSharing, ReadersThatKeepComingBackDoNotStopZonemeshWrites) {
  db::DatabaseConfig cfg = testing::FreshDatabase(db::Dialect::kSqlite, "zm_sharing_readers");
  cfg.yield_to_readers = true;
  auto conn = db::Open(cfg);
  conn->ExecuteDdl("CREATE TABLE records (name TEXT, content TEXT)");
  conn->ExecuteDdl("CREATE TABLE zt (a INTEGER)");
  const std::string out_path = cfg.path + ".reader.out";
  int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(out, 0);
  // Reads of 300 us every 1.8 ms for about a second.
  pid_t pid = testing::SpawnProgram(
      {ZONEMESH_TEST_SQLITE_WRITER, cfg.path, "600", "300", "1500", "read-only"}, out, out);
  ::close(out);
  int64_t commits = 0, given_up = 0, a = 0;
  constexpr int kRows = 2000;  // a transaction outlasts the reader's pause
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    try {
      conn->Begin();
      // Long enough for a reader to come back while the lock is held.
      for (int i = 0; i < kRows; ++i) conn->Execute("INSERT INTO zt (a) VALUES (?)", {db::Value(++a)});
      conn->Commit();
      ++commits;
    } catch (const db::Error& e) {
      conn->Rollback();
      if (e.kind() != db::Error::Kind::kTransient) throw;
      ++given_up;
    }
  }
  EXPECT_EQ(testing::DecodeWaitStatus(status), 0) << testing::ReadFile(out_path);
  std::cerr << "[sharing] beside a reader: " << commits << " commits, " << given_up << " given up\n";
  EXPECT_GT(given_up, 0) << "the reader never met a zonemesh transaction: the test proves nothing";
  // At most 4 transactions in a row are given up, then one goes ahead.
  EXPECT_GE(commits, given_up / 5) << commits << " commits, " << given_up << " given up";
  EXPECT_EQ(conn->Query("SELECT COUNT(*) FROM zt")[0][0].AsInt(), commits * kRows);
}

TEST(SqliteSharing, PowerDnsStyleWritesNeverFailBesideZonemeshWrites) {
  SharingRun run = RunBesidePowerDnsStyleWriter(true);
  EXPECT_EQ(run.writer_failed, 0) << run.writer_output;
  EXPECT_GT(run.commits, 0) << "zonemesh made no progress beside the writer";
}

// The control: the same writer beside a connection that does not keep out
// of its way does fail, so the test above can.
TEST(SqliteSharing, WithoutYieldingPowerDnsStyleWritesFail) {
  SharingRun run = RunBesidePowerDnsStyleWriter(false);
  EXPECT_GT(run.writer_failed, 0) << run.writer_output;
}

}  // namespace
}  // namespace zonemesh
