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
#include <vector>

#include "db/connection.h"
#include "db/open.h"
#include "tests/support/cluster.h"
#include "tests/support/test_db.h"

namespace zonemesh {
namespace {

struct SharingRun {
  std::string other_output;  // what zonemesh-test-sqlite-writer printed
  int other_failed = -1;     // its rounds that failed
  int64_t commits = 0;       // this process's transactions committed
  int64_t given_up = 0;      // and given up (kTransient), tried again
  int64_t rows = 0;          // rows in zt at the end
};

// Runs zonemesh-test-sqlite-writer with `args` (after DB) against a fresh
// database while this process commits transactions of `rows_per_tx`
// inserts (reading first, as the applier does) until the other exits.
SharingRun RunBeside(const std::vector<std::string>& args, bool yield_to_readers, int rows_per_tx) {
  db::DatabaseConfig cfg = testing::FreshDatabase(db::Dialect::kSqlite, "zm_sharing");
  cfg.yield_to_readers = yield_to_readers;
  auto conn = db::Open(cfg);
  conn->ExecuteDdl("CREATE TABLE records (name TEXT, content TEXT)");
  conn->ExecuteDdl("CREATE TABLE zt (a INTEGER)");

  const std::string out_path = cfg.path + ".other.out";
  int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  EXPECT_GE(out, 0);
  std::vector<std::string> argv = {ZONEMESH_TEST_SQLITE_WRITER, cfg.path};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = testing::SpawnProgram(argv, out, out);
  ::close(out);

  SharingRun run;
  int status = 0;
  int64_t a = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    try {
      conn->Begin();
      conn->Query("SELECT count(*) FROM zt");
      for (int i = 0; i < rows_per_tx; ++i) conn->Execute("INSERT INTO zt (a) VALUES (?)", {db::Value(++a)});
      conn->Commit();
      ++run.commits;
    } catch (const db::Error& e) {
      conn->Rollback();
      if (e.kind() != db::Error::Kind::kTransient) throw;
      ++run.given_up;
    }
  }
  run.other_output = testing::ReadFile(out_path);
  EXPECT_EQ(testing::DecodeWaitStatus(status), 0) << run.other_output;
  auto at = run.other_output.find("failed ");
  if (at != std::string::npos) run.other_failed = std::stoi(run.other_output.substr(at + 7));
  run.rows = conn->Query("SELECT COUNT(*) FROM zt")[0][0].AsInt();
  std::cerr << "[sharing] yield_to_readers=" << yield_to_readers << ": other: "
            << testing::Tail(run.other_output, 1) << "zonemesh: " << run.commits << " commits, "
            << run.given_up << " given up\n";
  return run;
}

// The PowerDNS-style writer: 300 rounds, 300 us between its read and its
// write, 1 ms between rounds.
const std::vector<std::string> kPowerDnsStyleWriter = {"300", "300", "1000"};

TEST(SqliteSharing, PowerDnsStyleWritesNeverFailBesideZonemeshWrites) {
  SharingRun run = RunBeside(kPowerDnsStyleWriter, true, 20);
  EXPECT_EQ(run.other_failed, 0) << run.other_output;
  EXPECT_GT(run.commits, 0) << "zonemesh made no progress beside the writer";
  EXPECT_EQ(run.rows, run.commits * 20);
}

// The control: the same writer beside a connection that does not keep out
// of its way does fail, so the test above can.
TEST(SqliteSharing, WithoutYieldingPowerDnsStyleWritesFail) {
  SharingRun run = RunBeside(kPowerDnsStyleWriter, false, 20);
  EXPECT_GT(run.other_failed, 0) << run.other_output;
}

// A reader that keeps coming back (PowerDNS answering queries: reads of
// 300 us every 1.8 ms) makes zonemesh give transactions up; after a few in
// a row it writes anyway, and a transaction given up earlier must not make
// later ones give up too. Transactions of 2000 rows outlast the reader's
// pauses.
TEST(SqliteSharing, ReadersThatKeepComingBackDoNotStopZonemeshWrites) {
  SharingRun run = RunBeside({"600", "300", "1500", "read-only"}, true, 2000);
  EXPECT_GT(run.given_up, 0) << "the reader never met a zonemesh transaction: the test proves nothing";
  // At most 4 transactions in a row are given up, then one goes ahead.
  EXPECT_GE(run.commits, run.given_up / 5) << run.commits << " commits, " << run.given_up << " given up";
  EXPECT_EQ(run.rows, run.commits * 2000);
}

}  // namespace
}  // namespace zonemesh
