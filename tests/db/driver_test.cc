// The db::Connection contract, checked against every driver on a real
// database server (SQLite file, throwaway PostgreSQL and MariaDB).
#include <gtest/gtest.h>

#include <thread>

#include "db/connection.h"
#include "db/open.h"
#include "db/session_flag.h"
#include "tests/support/test_db.h"

namespace zonemesh {
namespace {

using db::Dialect;
using db::Value;

class DriverTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    cfg_ = testing::FreshDatabase(GetParam(), "zm_driver");
    conn_ = db::Open(cfg_);
    std::string text = GetParam() == Dialect::kMysql ? "LONGTEXT" : "TEXT";
    conn_->ExecuteDdl("CREATE TABLE zt (a BIGINT, b " + text + ", c BIGINT)");
    conn_->ExecuteDdl("CREATE UNIQUE INDEX zt_a ON zt (a)");
  }
  int64_t Count() { return conn_->Query("SELECT COUNT(*) FROM zt")[0][0].AsInt(); }

  db::DatabaseConfig cfg_;
  std::unique_ptr<db::Connection> conn_;
};

TEST_P(DriverTest, RoundTripsIntegersTextAndNull) {
  EXPECT_EQ(conn_->Execute("INSERT INTO zt (a, b, c) VALUES (?, ?, ?)",
                           {Value(int64_t{1} << 40), Value("hello"), Value()}),
            1);
  auto rows = conn_->Query("SELECT a, b, c FROM zt WHERE a = ?", {Value(int64_t{1} << 40)});
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_EQ(rows[0].size(), 3u);
  EXPECT_TRUE(rows[0][0].IsInt());
  EXPECT_EQ(rows[0][0].integer(), int64_t{1} << 40);
  EXPECT_TRUE(rows[0][1].IsText());
  EXPECT_EQ(rows[0][1].text(), "hello");
  EXPECT_TRUE(rows[0][2].IsNull());
}

TEST_P(DriverTest, BindsBooleans) {
  conn_->Execute("INSERT INTO zt (a, c) VALUES (?, ?)", {Value(1), Value(true)});
  conn_->Execute("INSERT INTO zt (a, c) VALUES (?, ?)", {Value(2), Value(false)});
  auto rows = conn_->Query("SELECT c FROM zt ORDER BY a");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_TRUE(rows[0][0].AsBool());
  EXPECT_FALSE(rows[1][0].AsBool());
}

TEST_P(DriverTest, LongAndNonAsciiTextSurvive) {
  std::string long_text(64000, 'x');
  long_text[100] = '|';
  std::string utf8 = "zone comment: \xc3\xa9t\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80";
  conn_->Execute("INSERT INTO zt (a, b) VALUES (?, ?)", {Value(1), Value(long_text)});
  conn_->Execute("INSERT INTO zt (a, b) VALUES (?, ?)", {Value(2), Value(utf8)});
  EXPECT_EQ(conn_->Query("SELECT b FROM zt WHERE a = 1")[0][0].text(), long_text);
  EXPECT_EQ(conn_->Query("SELECT b FROM zt WHERE a = 2")[0][0].text(), utf8);
  EXPECT_EQ(conn_->Query("SELECT a FROM zt WHERE b = ?", {Value(utf8)}).size(), 1u);
}

TEST_P(DriverTest, UpdateCountsMatchedRowsEvenWhenUnchanged) {
  conn_->Execute("INSERT INTO zt (a, b) VALUES (1, 'same')");
  EXPECT_EQ(conn_->Execute("UPDATE zt SET b = ? WHERE a = ?", {Value("same"), Value(1)}), 1);
  EXPECT_EQ(conn_->Execute("UPDATE zt SET b = ? WHERE a = ?", {Value("x"), Value(99)}), 0);
}

TEST_P(DriverTest, PlaceholderInsideStringLiteralIsNotAParameter) {
  auto rows = conn_->Query("SELECT '?', ?", {Value("p")});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0].AsText(), "?");
  EXPECT_EQ(rows[0][1].AsText(), "p");
}

TEST_P(DriverTest, PreparedStatementIsReusedWithNewParameters) {
  for (int i = 0; i < 500; ++i) {
    conn_->Execute("INSERT INTO zt (a, b) VALUES (?, ?)", {Value(i), Value(std::to_string(i))});
  }
  EXPECT_EQ(Count(), 500);
  EXPECT_EQ(conn_->Query("SELECT b FROM zt WHERE a = ?", {Value(321)})[0][0].text(), "321");
}

TEST_P(DriverTest, RollbackDiscardsAndCommitKeeps) {
  conn_->Begin();
  EXPECT_TRUE(conn_->InTransaction());
  conn_->Execute("INSERT INTO zt (a) VALUES (1)");
  conn_->Rollback();
  EXPECT_FALSE(conn_->InTransaction());
  EXPECT_EQ(Count(), 0);
  {
    db::Transaction tx(*conn_);
    conn_->Execute("INSERT INTO zt (a) VALUES (2)");
    tx.Commit();
  }
  EXPECT_EQ(Count(), 1);
  {
    db::Transaction tx(*conn_);
    conn_->Execute("INSERT INTO zt (a) VALUES (3)");
  }  // destroyed without Commit: rolled back
  EXPECT_EQ(Count(), 1);
}

TEST_P(DriverTest, ErrorsNameTheStatementAndClassifyConstraints) {
  try {
    conn_->Query("SELECT no_such_column FROM zt");
    FAIL() << "expected db::Error";
  } catch (const db::Error& e) {
    EXPECT_EQ(e.kind(), db::Error::Kind::kOther);
    EXPECT_NE(std::string(e.what()).find("no_such_column"), std::string::npos) << e.what();
  }
  conn_->Execute("INSERT INTO zt (a) VALUES (7)");
  try {
    conn_->Execute("INSERT INTO zt (a) VALUES (?)", {Value(7)});
    FAIL() << "expected db::Error";
  } catch (const db::Error& e) {
    EXPECT_EQ(e.kind(), db::Error::Kind::kConstraint) << e.what();
  }
  // The connection stays usable after errors.
  EXPECT_EQ(Count(), 1);
}

TEST_P(DriverTest, ErrorInsideTransactionLeavesConnectionUsableAfterRollback) {
  conn_->Begin();
  conn_->Execute("INSERT INTO zt (a) VALUES (1)");
  EXPECT_THROW(conn_->Execute("INSERT INTO zt (a) VALUES (1)"), db::Error);
  conn_->Rollback();
  EXPECT_EQ(Count(), 0);
  conn_->Execute("INSERT INTO zt (a) VALUES (1)");
  EXPECT_EQ(Count(), 1);
}

TEST_P(DriverTest, SnapshotTransactionDoesNotSeeLaterCommits) {
  if (GetParam() == Dialect::kSqlite) GTEST_SKIP() << "SQLite snapshots are the write lock";
  auto other = db::Open(cfg_);
  conn_->Execute("INSERT INTO zt (a) VALUES (1)");
  conn_->BeginSnapshot();
  EXPECT_EQ(Count(), 1);
  other->Execute("INSERT INTO zt (a) VALUES (2)");
  EXPECT_EQ(Count(), 1);
  conn_->Commit();
  EXPECT_EQ(Count(), 2);
}

TEST_P(DriverTest, ReadOnlySnapshotSeesOneStateAndDoesNotBlockWriters) {
  auto other = db::Open(cfg_);
  conn_->Execute("INSERT INTO zt (a) VALUES (1)");
  conn_->BeginReadOnlySnapshot();
  EXPECT_EQ(Count(), 1);
  other->Execute("INSERT INTO zt (a) VALUES (2)");  // a writer is not blocked
  EXPECT_EQ(Count(), 1);
  conn_->Commit();
  EXPECT_EQ(Count(), 2);
}

TEST_P(DriverTest, UncommittedRowsOfOtherSessionsAreInvisible) {
  if (GetParam() == Dialect::kSqlite) GTEST_SKIP() << "SQLite has a single writer";
  auto other = db::Open(cfg_);
  other->Begin();
  other->Execute("INSERT INTO zt (a) VALUES (1)");
  EXPECT_EQ(Count(), 0);
  other->Commit();
  EXPECT_EQ(Count(), 1);
}

TEST_P(DriverTest, WaitForChangeSeesAnotherSessionsCommit) {
  conn_->ListenForChanges();
  auto other = db::Open(cfg_);
  if (GetParam() == Dialect::kPostgres) {
    other->ExecuteDdl(std::string("NOTIFY ") + db::kPostgresNotifyChannel);
  } else {
    other->Execute("INSERT INTO zt (a) VALUES (1)");
  }
  EXPECT_TRUE(conn_->WaitForChange(std::chrono::seconds(5)));
}

TEST_P(DriverTest, WaitForChangeTimesOutWhenNothingHappens) {
  if (GetParam() == Dialect::kMysql) GTEST_SKIP() << "MySQL has no change signal; it polls";
  conn_->ListenForChanges();
  EXPECT_FALSE(conn_->WaitForChange(std::chrono::milliseconds(50)));
}

TEST_P(DriverTest, TableExistsAndPing) {
  EXPECT_TRUE(conn_->TableExists("zt"));
  EXPECT_FALSE(conn_->TableExists("zt_missing"));
  EXPECT_TRUE(conn_->Ping());
}

TEST_P(DriverTest, LastInsertIdOfAutoIncrement) {
  std::string ddl;
  switch (GetParam()) {
    case Dialect::kSqlite:
      ddl = "CREATE TABLE ai (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)";
      break;
    case Dialect::kPostgres:
      ddl = "CREATE TABLE ai (id BIGSERIAL PRIMARY KEY, v TEXT)";
      break;
    case Dialect::kMysql:
      ddl = "CREATE TABLE ai (id BIGINT AUTO_INCREMENT PRIMARY KEY, v TEXT)";
      break;
  }
  conn_->ExecuteDdl(ddl);
  conn_->Execute("INSERT INTO ai (v) VALUES (?)", {Value("a")});
  int64_t first = conn_->LastInsertId();
  conn_->Execute("INSERT INTO ai (v) VALUES (?)", {Value("b")});
  EXPECT_EQ(conn_->LastInsertId(), first + 1);
}

TEST_P(DriverTest, SetApplyingIsVisibleToTriggersOfThisSessionOnly) {
  // The flag each dialect's triggers test (db/session_flag.h), read back.
  std::string probe;
  switch (GetParam()) {
    case Dialect::kSqlite:
      probe = "SELECT (SELECT cache_size FROM pragma_cache_size) = " +
              std::to_string(db::kSqliteApplyingCacheSize);
      break;
    case Dialect::kPostgres:
      probe = std::string("SELECT COALESCE(current_setting('") + db::kPostgresApplyingSetting +
              "', true), '') = 'on'";
      break;
    case Dialect::kMysql:
      probe = std::string("SELECT ") + db::kMysqlApplyingVariable + " IS NOT NULL";
      break;
  }
  auto other = db::Open(cfg_);
  EXPECT_FALSE(conn_->Query(probe)[0][0].AsBool());
  conn_->SetApplying(true);
  EXPECT_TRUE(conn_->Query(probe)[0][0].AsBool());
  EXPECT_FALSE(other->Query(probe)[0][0].AsBool());
  conn_->SetApplying(false);
  EXPECT_FALSE(conn_->Query(probe)[0][0].AsBool());
}

TEST_P(DriverTest, UnreachableDatabaseIsAConnectionErrorNamingTheTarget) {
  db::DatabaseConfig bad = cfg_;
  switch (GetParam()) {
    case Dialect::kSqlite:
      bad.path = testing::ScratchDir() + "/does-not-exist.db";
      break;
    case Dialect::kPostgres:
      bad.conninfo = "host=127.0.0.1 port=1 user=postgres dbname=x connect_timeout=2";
      break;
    case Dialect::kMysql:
      bad.port = 1;
      break;
  }
  try {
    db::Open(bad);
    FAIL() << "expected db::Error";
  } catch (const db::Error& e) {
    EXPECT_EQ(e.kind(), db::Error::Kind::kConnection);
    std::string what = e.what();
    EXPECT_NE(what.find(GetParam() == Dialect::kSqlite ? "does-not-exist" : "127.0.0.1"),
              std::string::npos)
        << what;
  }
}

TEST_P(DriverTest, DescribeHidesPasswords) {
  if (GetParam() == Dialect::kSqlite) GTEST_SKIP();
  EXPECT_EQ(conn_->Describe().find("secret"), std::string::npos);
  db::DatabaseConfig with_pw = cfg_;
  if (GetParam() == Dialect::kPostgres) {
    with_pw.conninfo += " password=secret";
  } else {
    with_pw.password = "secret";
  }
  try {
    auto c = db::Open(with_pw);  // trust/no-password servers may accept it
    EXPECT_EQ(c->Describe().find("secret"), std::string::npos) << c->Describe();
  } catch (const db::Error& e) {
    EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos) << e.what();
  }
}

TEST_P(DriverTest, AdvisoryLockIsExclusiveUntilTheConnectionCloses) {
  auto other = db::Open(cfg_);
  EXPECT_TRUE(conn_->TryAdvisoryLock("daemon"));
  EXPECT_FALSE(other->TryAdvisoryLock("daemon"));
  EXPECT_TRUE(other->TryAdvisoryLock("another-name"));
  conn_.reset();
  // The server frees a closed session's locks asynchronously: wait for it.
  bool taken = false;
  for (int i = 0; i < 100 && !taken; ++i) {
    taken = other->TryAdvisoryLock("daemon");
    if (!taken) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(taken);
}

INSTANTIATE_TEST_SUITE_P(AllDatabases, DriverTest, ::testing::ValuesIn(testing::AllDialects()),
                         [](const auto& info) { return testing::DialectParamName(info.param); });

}  // namespace
}  // namespace zonemesh
