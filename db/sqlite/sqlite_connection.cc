#include "db/sqlite/sqlite_connection.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>
#include <unordered_map>

#include "db/session_flag.h"

namespace zonemesh::db {
namespace {

Error::Kind KindOf(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error::Kind::kTransient;
    case SQLITE_CONSTRAINT:
      return Error::Kind::kConstraint;
    case SQLITE_CANTOPEN:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
      return Error::Kind::kConnection;
    default:
      return Error::Kind::kOther;
  }
}

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteConnection() override {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
    for (int fd : lock_fds_) ::close(fd);
  }

  Dialect dialect() const override { return Dialect::kSqlite; }
  std::string Describe() const override { return "sqlite:" + path_; }

  void ExecuteDdl(const std::string& sql) override {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      throw Error(KindOf(rc), Describe() + ": " + msg + " in: " + Abbrev(sql));
    }
  }

  int64_t Execute(const std::string& sql, const Params& params) override {
    sqlite3_stmt* st = Prepare(sql, params);
    StepAll(st, sql, nullptr);
    return sqlite3_changes64(db_);
  }

  std::vector<Row> Query(const std::string& sql, const Params& params) override {
    sqlite3_stmt* st = Prepare(sql, params);
    std::vector<Row> rows;
    StepAll(st, sql, &rows);
    return rows;
  }

  void Begin() override { ExecuteDdl("BEGIN IMMEDIATE"); }
  void BeginSnapshot() override { ExecuteDdl("BEGIN IMMEDIATE"); }
  // The snapshot starts at the first read; WAL lets writers continue.
  void BeginReadOnlySnapshot() override { ExecuteDdl("BEGIN DEFERRED"); }
  void Commit() override { ExecuteDdl("COMMIT"); }
  void Rollback() noexcept override {
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  bool InTransaction() const override { return !sqlite3_get_autocommit(db_); }

  void SetApplying(bool on) override {
    ExecuteDdl("PRAGMA cache_size = " +
               std::to_string(on ? kSqliteApplyingCacheSize : kSqliteDefaultCacheSize));
  }

  void ListenForChanges() override { last_data_version_ = DataVersion(); }

  bool WaitForChange(std::chrono::milliseconds timeout) override {
    // PRAGMA data_version changes when another connection commits. It reads
    // the WAL index in shared memory: microseconds, no disk I/O.
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int64_t v = DataVersion();
      if (v != last_data_version_) {
        last_data_version_ = v;
        return true;
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  bool TableExists(const std::string& table) override {
    return !Query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", {table})
                .empty();
  }

  bool Ping() noexcept override {
    try {
      Query("SELECT 1", {});
      return true;
    } catch (...) {
      return false;
    }
  }

  int64_t LastInsertId() override { return sqlite3_last_insert_rowid(db_); }

  // An flock on "<database>.<name>.lock" beside the database file, released
  // when the connection (or the process) goes away.
  bool TryAdvisoryLock(const std::string& name) override {
    std::string path = path_ + "." + name + ".lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      throw Error(Error::Kind::kOther, Describe() + ": cannot open lock file " + path + ": " +
                                           std::strerror(errno));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      return false;
    }
    lock_fds_.push_back(fd);
    return true;
  }

 private:
  static std::string Abbrev(const std::string& sql) {
    return sql.size() > 200 ? sql.substr(0, 200) + "..." : sql;
  }

  [[noreturn]] void Fail(int rc, const std::string& sql) {
    throw Error(KindOf(rc), Describe() + ": " + sqlite3_errmsg(db_) + " in: " + Abbrev(sql));
  }

  int64_t DataVersion() {
    auto rows = Query("PRAGMA data_version", {});
    return rows.empty() ? 0 : rows[0][0].AsInt();
  }

  sqlite3_stmt* Prepare(const std::string& sql, const Params& params) {
    sqlite3_stmt* st = nullptr;
    auto it = cache_.find(sql);
    if (it != cache_.end()) {
      st = it->second;
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
    } else {
      int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                  SQLITE_PREPARE_PERSISTENT, &st, nullptr);
      if (rc != SQLITE_OK) Fail(rc, sql);
      cache_.emplace(sql, st);
    }
    if (sqlite3_bind_parameter_count(st) != static_cast<int>(params.size())) {
      throw Error(Error::Kind::kOther,
                  Describe() + ": statement takes " +
                      std::to_string(sqlite3_bind_parameter_count(st)) + " parameters, got " +
                      std::to_string(params.size()) + " in: " + Abbrev(sql));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      const Value& v = params[i];
      int idx = static_cast<int>(i + 1);
      int rc;
      if (v.IsNull()) {
        rc = sqlite3_bind_null(st, idx);
      } else if (v.IsInt()) {
        rc = sqlite3_bind_int64(st, idx, v.integer());
      } else if (v.IsBool()) {
        rc = sqlite3_bind_int64(st, idx, v.boolean() ? 1 : 0);
      } else {
        const std::string& s = v.text();
        rc = sqlite3_bind_text64(st, idx, s.data(), s.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
      }
      if (rc != SQLITE_OK) Fail(rc, sql);
    }
    return st;
  }

  void StepAll(sqlite3_stmt* st, const std::string& sql, std::vector<Row>* rows) {
    for (;;) {
      int rc = sqlite3_step(st);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        Fail(rc, sql);
      }
      if (!rows) continue;
      int n = sqlite3_column_count(st);
      Row row;
      row.reserve(n);
      for (int i = 0; i < n; ++i) {
        switch (sqlite3_column_type(st, i)) {
          case SQLITE_NULL:
            row.emplace_back();
            break;
          case SQLITE_INTEGER:
            row.emplace_back(static_cast<int64_t>(sqlite3_column_int64(st, i)));
            break;
          case SQLITE_FLOAT:
            row.emplace_back(static_cast<int64_t>(sqlite3_column_double(st, i)));
            break;
          default: {
            const unsigned char* t = sqlite3_column_text(st, i);
            int len = sqlite3_column_bytes(st, i);
            row.emplace_back(std::string(reinterpret_cast<const char*>(t), len));
          }
        }
      }
      rows->push_back(std::move(row));
    }
    sqlite3_reset(st);
  }

  sqlite3* db_;
  std::string path_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
  int64_t last_data_version_ = 0;
  std::vector<int> lock_fds_;
};

}  // namespace

std::unique_ptr<Connection> OpenSqlite(const DatabaseConfig& config) {
  const std::string& path = config.path;
  if (path.empty()) throw Error(Error::Kind::kConnection, "sqlite: database.path is empty");
  if (!config.create_if_missing && !std::filesystem::exists(path)) {
    throw Error(Error::Kind::kConnection,
                "sqlite:" + path + ": database file does not exist");
  }
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX;
  if (config.create_if_missing) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    throw Error(Error::Kind::kConnection, "sqlite:" + path + ": cannot open: " + msg);
  }
  sqlite3_extended_result_codes(db, 0);
  auto conn = std::make_unique<SqliteConnection>(db, path);
  sqlite3_busy_timeout(db, config.busy_timeout_ms);
  try {
    conn->ExecuteDdl("PRAGMA foreign_keys = OFF");
    conn->Query("PRAGMA journal_mode = WAL", {});
    // Reading the schema proves the file is a database, not any file.
    conn->Query("SELECT count(*) FROM sqlite_master", {});
  } catch (const Error& e) {
    throw Error(Error::Kind::kConnection, e.what());
  }
  return conn;
}

}  // namespace zonemesh::db
