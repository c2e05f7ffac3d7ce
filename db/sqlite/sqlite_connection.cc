#include "db/sqlite/sqlite_connection.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

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

// Other processes' read transactions on the database, seen through the WAL
// index's read-mark locks (bytes 123..127 of the -shm file: SQLite's WAL
// format, https://www.sqlite.org/walformat.html). A reader holds one of them
// shared for the whole read transaction.
//
// Why zonemesh looks: PowerDNS starts its transactions with BEGIN (deferred),
// reads, then writes. Such a transaction cannot become a writer once another
// connection committed after its first read (SQLITE_BUSY_SNAPSHOT), nor while
// another holds the write lock (SQLITE_BUSY, and its busy handler is not
// asked): PowerDNS answers SERVFAIL ("database is locked"). So zonemesh
// starts a write only when no other process is inside a read transaction;
// while it holds the write lock a watcher thread looks every few
// microseconds, and when another process starts reading it interrupts the
// statement under way and rolls back (which leaves the reader's snapshot
// valid and the lock free for its write) and tries again later.
//
// The -shm file is opened once per process and closed only once SQLite has
// replaced it (it deletes the file when the last connection of any process
// closes, and the next open creates a new one): closing a descriptor drops
// every POSIX lock the process holds on that file, SQLite's own included,
// which cannot matter for a file no connection uses any more.
class ShmFile {
 public:
  ShmFile(int fd, const struct stat& st) : fd_(fd), dev_(st.st_dev), ino_(st.st_ino) {}
  ~ShmFile() { ::close(fd_); }
  ShmFile(const ShmFile&) = delete;
  ShmFile& operator=(const ShmFile&) = delete;

  int fd() const { return fd_; }
  bool Is(const struct stat& st) const { return st.st_dev == dev_ && st.st_ino == ino_; }

  // The process's descriptor of the file now at `path`; null when there is
  // none (no WAL index: nobody reads in WAL mode).
  static std::shared_ptr<const ShmFile> Current(const std::string& path) {
    static std::mutex mu;
    static std::map<std::string, std::shared_ptr<const ShmFile>> files;
    std::lock_guard<std::mutex> lock(mu);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      files.erase(path);  // deleted: no connection uses it
      return nullptr;
    }
    auto& file = files[path];
    if (file && file->Is(st)) return file;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat opened {};
    if (fd < 0 || ::fstat(fd, &opened) != 0) {
      if (fd >= 0) ::close(fd);
      return file;
    }
    file = std::make_shared<const ShmFile>(fd, opened);
    return file;
  }

 private:
  int fd_;
  dev_t dev_;
  ino_t ino_;
};

class ForeignReaders {
 public:
  explicit ForeignReaders(std::string db_path) : shm_path_(std::move(db_path) + "-shm") {
    Refresh();
  }

  // Looks up which file is the WAL index now; before each write lock.
  void Refresh() {
    auto file = ShmFile::Current(shm_path_);
    std::lock_guard<std::mutex> lock(mu_);
    file_ = std::move(file);
  }

  bool Present() const {
    std::shared_ptr<const ShmFile> file;
    {
      std::lock_guard<std::mutex> lock(mu_);
      file = file_;
    }
    if (!file) return false;
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = kFirstReadMark;
    fl.l_len = kReadMarks;
    if (::fcntl(file->fd(), F_GETLK, &fl) != 0) return false;
    return fl.l_type != F_UNLCK;
  }

 private:
  static constexpr off_t kFirstReadMark = 123;  // WALINDEX_LOCK_OFFSET 120 + WAL_READ_LOCK(0) 3
  static constexpr off_t kReadMarks = 5;        // WAL_NREADER

  std::string shm_path_;
  mutable std::mutex mu_;
  std::shared_ptr<const ShmFile> file_;
};

// How long a write waits for other processes' readers to finish before it
// starts anyway, and how many transactions in a row it gives up for them.
constexpr std::chrono::milliseconds kReaderWait{200};
constexpr int kMaxCommitsGivenUp = 4;
// How long no other process must have been reading before a write starts:
// PowerDNS reads on its own before it begins a transaction that reads and
// writes, and a write started in such a pause would be in its way.
constexpr std::chrono::microseconds kQuietPeriod{1000};
// How often the watcher looks for readers while the write lock is held.
constexpr std::chrono::microseconds kWatchInterval{20};

// Watches for other processes' readers while its connection holds the write
// lock, and interrupts the connection when one appears. One thread per
// connection, started at its first watched write, idle otherwise.
class ReaderWatch {
 public:
  ReaderWatch(sqlite3* db, const ForeignReaders& readers) : db_(db), readers_(readers) {}
  ~ReaderWatch() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // From now on, a reader appearing interrupts the connection.
  void Start() {
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    {
      std::lock_guard<std::mutex> lock(mu_);
      seen_ = false;
      on_ = true;
    }
    cv_.notify_all();
  }

  // No interrupt after this returns. True when a reader was seen since
  // Start(); forgotten then, so that a later transaction that is not
  // watched does not give up for this one's reader.
  bool Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    on_ = false;
    return std::exchange(seen_, false);
  }

  // True while watching, after a reader was seen.
  bool Seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return on_ && seen_;
  }

  bool On() {
    std::lock_guard<std::mutex> lock(mu_);
    return on_;
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return quit_ || (on_ && !seen_); });
      if (quit_) return;
      lock.unlock();
      const bool present = readers_.Present();
      lock.lock();
      if (present && on_ && !seen_) {
        seen_ = true;
        sqlite3_interrupt(db_);  // under mu_: never after Stop() returned
        continue;
      }
      lock.unlock();
      std::this_thread::sleep_for(kWatchInterval);
      lock.lock();
    }
  }

  sqlite3* db_;
  const ForeignReaders& readers_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool on_ = false;
  bool seen_ = false;
  bool quit_ = false;
  std::thread thread_;
};

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteConnection() override {
    watch_.reset();
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
    KeepOutOfReadersWay(st);
    StepAll(st, sql, nullptr);
    return sqlite3_changes64(db_);
  }

  std::vector<Row> Query(const std::string& sql, const Params& params) override {
    sqlite3_stmt* st = Prepare(sql, params);
    KeepOutOfReadersWay(st);
    std::vector<Row> rows;
    StepAll(st, sql, &rows);
    return rows;
  }

  void Begin() override { BeginWrite(); }
  void BeginSnapshot() override { BeginWrite(); }
  // The snapshot starts at the first read; WAL lets writers continue.
  void BeginReadOnlySnapshot() override { ExecuteDdl("BEGIN DEFERRED"); }
  void Commit() override {
    // A last look: the watcher looks only every kWatchInterval.
    const bool watched = watch_ && watch_->On();
    if (StopWatching() || (watched && readers_->Present())) YieldToReader();
    commits_given_up_ = 0;
    ExecuteDdl("COMMIT");
  }
  void Rollback() noexcept override {
    StopWatching();
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  // Keeps out of the way of other processes' transactions (ForeignReaders).
  void YieldToReaders(bool on) {
    watch_.reset();
    readers_ = on ? std::make_unique<ForeignReaders>(path_) : nullptr;
  }
  bool InTransaction() const override { return !sqlite3_get_autocommit(db_); }

  void SetApplying(bool on) override {
    ExecuteDdl("PRAGMA cache_size = " +
               std::to_string(on ? kSqliteApplyingCacheSize : kSqliteDefaultCacheSize));
  }

  void SetLockWaitLimit(std::chrono::milliseconds) override {}
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
  // Without yielding, the write lock is taken at once. Yielding, it is
  // taken at the first write (KeepOutOfReadersWay), so that it is held for
  // as short a time as possible; if another connection committed after this
  // transaction's first read, that write fails (SQLITE_BUSY, transient) and
  // the caller tries again: nothing read before can be stale.
  void BeginWrite() { ExecuteDdl(readers_ ? "BEGIN DEFERRED" : "BEGIN IMMEDIATE"); }

  bool HoldsWriteLock() const { return sqlite3_txn_state(db_, nullptr) == SQLITE_TXN_WRITE; }

  // Before a statement: a write that would take the write lock waits until
  // no other process is inside a read transaction (at most kReaderWait);
  // inside a transaction, the lock is then watched until the transaction
  // ends. A write transaction that saw a reader start gives up.
  void KeepOutOfReadersWay(sqlite3_stmt* st) {
    if (!readers_) return;
    if (HoldsWriteLock()) {
      if (watch_ && watch_->Seen()) YieldToReader();
      return;
    }
    if (sqlite3_stmt_readonly(st)) return;
    readers_->Refresh();
    const auto deadline = std::chrono::steady_clock::now() + kReaderWait;
    bool present = readers_->Present();
    auto quiet_since = std::chrono::steady_clock::now();
    for (;;) {
      const auto now = std::chrono::steady_clock::now();
      if (present) quiet_since = now;
      if ((!present && now - quiet_since >= kQuietPeriod) || now >= deadline) break;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      present = readers_->Present();
    }
    // A reader that outlasted the wait, or a connection that gave up too
    // many transactions in a row: write anyway (readers that never stop
    // must not starve replication).
    if (present || commits_given_up_ >= kMaxCommitsGivenUp || sqlite3_get_autocommit(db_)) return;
    if (!watch_) watch_ = std::make_unique<ReaderWatch>(db_, *readers_);
    watch_->Start();
  }

  // True when the watcher saw a reader start.
  bool StopWatching() { return watch_ ? watch_->Stop() : false; }

  // Another process started reading while this transaction held the write
  // lock, and may be about to write: give the lock back before it tries (it
  // would fail at once), and let the caller try again.
  [[noreturn]] void YieldToReader() {
    ++commits_given_up_;
    Rollback();
    throw Error(Error::Kind::kTransient,
                Describe() + ": another process's transaction started reading; this write was "
                             "rolled back so that it can write, and is tried again");
  }

  static std::string Abbrev(const std::string& sql) {
    return sql.size() > 200 ? sql.substr(0, 200) + "..." : sql;
  }

  [[noreturn]] void Fail(int rc, const std::string& sql) {
    if (rc == SQLITE_INTERRUPT && watch_ && watch_->Seen()) YieldToReader();
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
  std::unique_ptr<ForeignReaders> readers_;  // null: writes do not yield
  std::unique_ptr<ReaderWatch> watch_;       // while holding the write lock
  int commits_given_up_ = 0;  // write transactions given up in a row
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
    conn->YieldToReaders(config.yield_to_readers);
    if (config.yield_to_readers) {
      // Commits that do not wait for the disk hold the write lock for
      // microseconds. Durable across a crash of the process; a power loss
      // may lose the last transactions of this session, which the sender
      // still holds and sends again.
      conn->ExecuteDdl("PRAGMA synchronous = NORMAL");
    }
  } catch (const Error& e) {
    throw Error(Error::Kind::kConnection, e.what());
  }
  return conn;
}

}  // namespace zonemesh::db
