// The thin database layer: one Connection interface, one implementation per
// driver (db/sqlite, db/postgresql, db/mysql). Everything above this header
// is written once for all databases; nothing outside a driver's folder
// includes that driver's headers.
//
// SQL handed to a Connection uses `?` placeholders in every dialect; the
// PostgreSQL driver rewrites them to $1..$n. Statements are prepared on first
// use and cached by their text for the life of the connection, so callers
// build SQL freely and the hot path still runs prepared statements.
//
// Thread-safety: a Connection is used by one thread at a time. Each thread of
// the daemon owns its own connection.
#ifndef ZONEMESH_DB_CONNECTION_H_
#define ZONEMESH_DB_CONNECTION_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace zonemesh::db {

enum class Dialect { kSqlite, kPostgres, kMysql };

// "sqlite", "postgresql" or "mysql": the names used in config files.
std::string_view DialectName(Dialect d);

// A bound parameter or a fetched column. Integers are 64-bit; booleans are
// kept apart from integers so that each driver binds its own boolean type.
class Value {
 public:
  Value() = default;  // SQL NULL
  Value(std::nullptr_t) {}
  Value(int64_t v) : v_(v) {}
  Value(int v) : v_(static_cast<int64_t>(v)) {}
  Value(bool v) : v_(v) {}
  Value(std::string v) : v_(std::move(v)) {}
  Value(std::string_view v) : v_(std::string(v)) {}
  Value(const char* v) : v_(std::string(v)) {}
  template <typename T>
  Value(const std::optional<T>& v) {
    if (v) *this = Value(*v);
  }

  bool IsNull() const { return std::holds_alternative<std::monostate>(v_); }
  bool IsInt() const { return std::holds_alternative<int64_t>(v_); }
  bool IsBool() const { return std::holds_alternative<bool>(v_); }
  bool IsText() const { return std::holds_alternative<std::string>(v_); }

  // Conversions. AsInt accepts integers, booleans and decimal text; AsText
  // accepts anything non-null. Both throw std::invalid_argument otherwise.
  int64_t AsInt() const;
  std::string AsText() const;
  bool AsBool() const;
  std::optional<std::string> AsOptText() const {
    if (IsNull()) return std::nullopt;
    return AsText();
  }
  std::optional<int64_t> AsOptInt() const {
    if (IsNull()) return std::nullopt;
    return AsInt();
  }

  const std::string& text() const { return std::get<std::string>(v_); }
  int64_t integer() const { return std::get<int64_t>(v_); }
  bool boolean() const { return std::get<bool>(v_); }

  bool operator==(const Value& o) const { return v_ == o.v_; }

 private:
  std::variant<std::monostate, int64_t, bool, std::string> v_;
};

using Row = std::vector<Value>;
using Params = std::vector<Value>;

// Every driver error is rethrown as db::Error with the statement or the
// connection named. transient() is true for errors worth retrying the whole
// transaction for (deadlock, serialization failure, busy database, lost
// connection); connection_lost() tells the caller to reconnect first.
class Error : public std::runtime_error {
 public:
  enum class Kind { kConnection, kTransient, kConstraint, kOther };
  Error(Kind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Kind kind() const { return kind_; }
  bool transient() const { return kind_ == Kind::kConnection || kind_ == Kind::kTransient; }
  bool connection_lost() const { return kind_ == Kind::kConnection; }

 private:
  Kind kind_;
};

class Connection {
 public:
  virtual ~Connection() = default;

  virtual Dialect dialect() const = 0;

  // Human-readable target, without secrets: "sqlite:/var/lib/x.db",
  // "postgresql:host=... dbname=...", "mysql:root@127.0.0.1:3306/pdns".
  virtual std::string Describe() const = 0;

  // Runs one statement without parameters and without caching it (DDL,
  // session settings, trigger bodies with embedded semicolons).
  virtual void ExecuteDdl(const std::string& sql) = 0;

  // Runs a prepared statement; returns the number of rows it changed (for
  // UPDATE: rows matched, in every dialect).
  virtual int64_t Execute(const std::string& sql, const Params& params = {}) = 0;

  // Runs a prepared query and returns all rows. Callers page large results
  // with LIMIT; nothing here streams.
  virtual std::vector<Row> Query(const std::string& sql, const Params& params = {}) = 0;

  // Transactions. Begin() starts a read-write transaction that serializes
  // with other writers as early as the database allows (SQLite: BEGIN
  // IMMEDIATE). Rollback() never throws.
  virtual void Begin() = 0;
  // Starts a transaction in which every read sees the same snapshot
  // (REPEATABLE READ; SQLite: BEGIN IMMEDIATE). Reads do not lock and never
  // see uncommitted rows of other sessions.
  virtual void BeginSnapshot() = 0;
  // Starts a read-only transaction reading one snapshot, without blocking
  // writers (SQLite in WAL mode: a deferred read transaction).
  virtual void BeginReadOnlySnapshot() = 0;
  virtual void Commit() = 0;
  virtual void Rollback() noexcept = 0;
  virtual bool InTransaction() const = 0;

  // Marks this session as zonemesh's applier: capture triggers skip changes
  // made through it (loop prevention). Session-scoped, no privileges needed.
  virtual void SetApplying(bool on) = 0;

  // Bounds how long one statement of this session waits for a row lock
  // another session holds before failing with a transient Error (the
  // caller rolls back and tries again later). Zero: it never waits. The
  // applier's session uses this so that it can never be half of a deadlock
  // with a local writer. SQLite: no effect (its single write lock is taken
  // at Begin and waited for up to the connection's busy timeout).
  virtual void SetLockWaitLimit(std::chrono::milliseconds limit) = 0;

  // Starts listening for outbox changes where the database can push them
  // (PostgreSQL LISTEN). Harmless elsewhere.
  virtual void ListenForChanges() = 0;

  // Blocks up to `timeout` until another session may have committed a change.
  // Returns true when a change is possible (always true on timeout-less
  // polling databases after one poll interval), false when nothing happened.
  // Cheap: SQLite checks PRAGMA data_version, PostgreSQL waits for NOTIFY.
  virtual bool WaitForChange(std::chrono::milliseconds timeout) = 0;

  // True if a table of this name exists in the connected schema.
  virtual bool TableExists(const std::string& table) = 0;

  // True if the database still answers (a trivial round trip).
  virtual bool Ping() noexcept = 0;

  // Lowest-level escape hatch for tests and tools: the last id generated by
  // an INSERT on this connection.
  virtual int64_t LastInsertId() = 0;

  // Takes a lock named `name` that is exclusive across every session and
  // process using this database, held until this connection closes. Returns
  // false at once when another session holds it. A server may release the
  // lock of a session that just disconnected a moment later, so callers
  // retry for a while before concluding. The daemon holds one so that two
  // daemons never serve the same database.
  virtual bool TryAdvisoryLock(const std::string& name) = 0;
};

// Rolls back on scope exit unless Commit() was called.
class Transaction {
 public:
  explicit Transaction(Connection& c) : c_(c) { c_.Begin(); }
  ~Transaction() {
    if (!done_) c_.Rollback();
  }
  void Commit() {
    c_.Commit();
    done_ = true;
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

 private:
  Connection& c_;
  bool done_ = false;
};

}  // namespace zonemesh::db

#endif  // ZONEMESH_DB_CONNECTION_H_
