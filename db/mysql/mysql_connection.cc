#include "db/mysql/mysql_connection.h"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include <cstdint>
#include <limits>
#include <thread>
#include <unordered_map>

#include "db/session_flag.h"

namespace zonemesh::db {
namespace {

// Text columns are fetched into a buffer of this size; longer values are
// fetched again, whole, with mysql_stmt_fetch_column.
constexpr unsigned long kTextBufferSize = 256;

Error::Kind KindOf(unsigned int code) {
  switch (code) {
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_LOST:
    case ER_SERVER_SHUTDOWN:
      return Error::Kind::kConnection;
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_WAIT_TIMEOUT:
      return Error::Kind::kTransient;
    case ER_DUP_ENTRY:
    case ER_NO_REFERENCED_ROW:
    case ER_NO_REFERENCED_ROW_2:
    case ER_ROW_IS_REFERENCED:
    case ER_ROW_IS_REFERENCED_2:
    case ER_BAD_NULL_ERROR:
    case ER_CONSTRAINT_FAILED:  // CHECK constraint (MariaDB)
      return Error::Kind::kConstraint;
    default:
      return Error::Kind::kOther;
  }
}

bool IsIntegerType(enum_field_types type) {
  switch (type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_YEAR:
      return true;
    default:
      return false;
  }
}

// "user@host:port/database" or "user@unix(/path/to/socket)/database". Never
// the password.
std::string Target(const DatabaseConfig& config) {
  std::string where = config.socket.empty() ? config.host + ":" + std::to_string(config.port)
                                            : "unix(" + config.socket + ")";
  return config.user + "@" + where + "/" + config.database;
}

class MysqlConnection final : public Connection {
 public:
  MysqlConnection(MYSQL* mysql, std::string target) : mysql_(mysql), target_(std::move(target)) {}
  ~MysqlConnection() override {
    for (auto& [sql, stmt] : cache_) mysql_stmt_close(stmt);
    mysql_close(mysql_);
  }

  Dialect dialect() const override { return Dialect::kMysql; }
  std::string Describe() const override { return "mysql:" + target_; }

  // Text protocol, so that CREATE TRIGGER / CREATE PROCEDURE bodies with
  // embedded semicolons go through as one statement.
  void ExecuteDdl(const std::string& sql) override {
    if (mysql_real_query(mysql_, sql.data(), sql.size()) != 0) FailMysql(sql);
    RememberInsertId(mysql_insert_id(mysql_));
    // Discard whatever the statement returns: rows (SHOW, SELECT) and, after
    // CALL, the further result sets.
    int rc;
    do {
      MYSQL_RES* result = mysql_store_result(mysql_);
      if (result) {
        mysql_free_result(result);
      } else if (mysql_field_count(mysql_) != 0) {
        FailMysql(sql);
      }
    } while ((rc = mysql_next_result(mysql_)) == 0);
    if (rc > 0) FailMysql(sql);
  }

  int64_t Execute(const std::string& sql, const Params& params) override {
    MYSQL_STMT* st = Run(sql, params);
    // With CLIENT_FOUND_ROWS, UPDATE reports the rows it matched.
    int64_t changed = static_cast<int64_t>(mysql_stmt_affected_rows(st));
    Finish(st, sql, nullptr);
    return changed;
  }

  std::vector<Row> Query(const std::string& sql, const Params& params) override {
    MYSQL_STMT* st = Run(sql, params);
    std::vector<Row> rows;
    Finish(st, sql, &rows);
    return rows;
  }

  // The session runs READ COMMITTED (OpenMysql); a snapshot transaction
  // raises that to REPEATABLE READ for itself only: SET TRANSACTION without
  // SESSION applies to the next transaction.
  void Begin() override { ExecuteDdl("START TRANSACTION"); }
  void BeginSnapshot() override {
    ExecuteDdl("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    ExecuteDdl("START TRANSACTION WITH CONSISTENT SNAPSHOT");
  }
  void BeginReadOnlySnapshot() override {
    ExecuteDdl("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    ExecuteDdl("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
  }
  void Commit() override { ExecuteDdl("COMMIT"); }
  // Unconditional: after an error the status behind InTransaction() can be
  // stale (a deadlock rolls the transaction back with no OK packet), and
  // ROLLBACK outside a transaction is harmless. Errors are ignored: a lost
  // connection has rolled back anyway.
  void Rollback() noexcept override { mysql_query(mysql_, "ROLLBACK"); }
  // The server reports the transaction state with every OK and EOF packet,
  // so this also notices implicit commits (DDL inside a transaction).
  bool InTransaction() const override {
    unsigned int status = 0;
    mariadb_get_infov(mysql_, MARIADB_CONNECTION_SERVER_STATUS, &status);
    return (status & SERVER_STATUS_IN_TRANS) != 0;
  }

  void SetApplying(bool on) override {
    ExecuteDdl(std::string("SET ") + kMysqlApplyingVariable + (on ? " = 1" : " = NULL"));
  }

  void SetLockWaitLimit(std::chrono::milliseconds limit) override {
    // In whole seconds, rounded down: InnoDB looks for deadlocks as soon as
    // a lock wait starts and may roll back the other transaction, so under
    // a second the session must not wait at all. MariaDB takes 0 (fail at
    // once); MySQL's least is 1.
    const int64_t seconds = limit.count() / 1000;
    try {
      ExecuteDdl("SET SESSION innodb_lock_wait_timeout = " + std::to_string(seconds));
    } catch (const Error& e) {
      if (e.connection_lost() || seconds > 0) throw;
      ExecuteDdl("SET SESSION innodb_lock_wait_timeout = 1");
    }
  }

  void ListenForChanges() override {}

  // MySQL cannot push changes: wait one poll interval and let the caller
  // check its outbox.
  bool WaitForChange(std::chrono::milliseconds timeout) override {
    std::this_thread::sleep_for(timeout);
    return true;
  }

  bool TableExists(const std::string& table) override {
    return !Query(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = ?",
                {table})
                .empty();
  }

  // A real round trip; mysql_ping() could reconnect behind our back.
  bool Ping() noexcept override {
    try {
      Query("SELECT 1", {});
      return true;
    } catch (...) {
      return false;
    }
  }

  int64_t LastInsertId() override { return last_insert_id_; }

  // GET_LOCK names are server-wide: qualify with the database. Held until the
  // session ends.
  bool TryAdvisoryLock(const std::string& name) override {
    auto rows = Query("SELECT GET_LOCK(LEFT(CONCAT(COALESCE(DATABASE(), ''), '.', ?), 64), 0)",
                      {name});
    return !rows.empty() && !rows[0][0].IsNull() && rows[0][0].AsInt() == 1;
  }

 private:
  static std::string Abbrev(const std::string& sql) {
    return sql.size() > 200 ? sql.substr(0, 200) + "..." : sql;
  }

  [[noreturn]] void Fail(unsigned int code, const std::string& message, const std::string& sql) {
    throw Error(KindOf(code),
                Describe() + ": " + message + " (" + std::to_string(code) + ") in: " + Abbrev(sql));
  }

  // Throws the error of the last call on the connection handle.
  [[noreturn]] void FailMysql(const std::string& sql) {
    Fail(mysql_errno(mysql_), mysql_error(mysql_), sql);
  }

  // Throws the error of `st`, the cached statement for `sql`. A statement
  // whose session is gone is useless: it leaves the cache.
  [[noreturn]] void FailStatement(MYSQL_STMT* st, const std::string& sql) {
    unsigned int code = mysql_stmt_errno(st);
    std::string message = mysql_stmt_error(st);
    if (KindOf(code) == Error::Kind::kConnection) Evict(sql);
    Fail(code, message, sql);
  }

  // Like LAST_INSERT_ID(): statements that generate no id leave it alone.
  void RememberInsertId(uint64_t id) {
    if (id != 0) last_insert_id_ = static_cast<int64_t>(id);
  }

  void Evict(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) return;
    mysql_stmt_close(it->second);
    cache_.erase(it);
  }

  // The cached server-side statement for `sql`, prepared on first use.
  MYSQL_STMT* Prepare(const std::string& sql, size_t param_count) {
    MYSQL_STMT* st;
    auto it = cache_.find(sql);
    if (it != cache_.end()) {
      st = it->second;
    } else {
      st = mysql_stmt_init(mysql_);
      if (!st) FailMysql(sql);
      if (mysql_stmt_prepare(st, sql.data(), sql.size()) != 0) {
        unsigned int code = mysql_stmt_errno(st);
        std::string message = mysql_stmt_error(st);
        mysql_stmt_close(st);
        Fail(code, message, sql);
      }
      cache_.emplace(sql, st);
    }
    if (mysql_stmt_param_count(st) != param_count) {
      throw Error(Error::Kind::kOther,
                  Describe() + ": statement takes " + std::to_string(mysql_stmt_param_count(st)) +
                      " parameters, got " + std::to_string(param_count) + " in: " + Abbrev(sql));
    }
    return st;
  }

  // Binds `params` and executes; false on error (details on `st`). The bound
  // buffers only need to live until mysql_stmt_execute has sent them.
  static bool BindAndExecute(MYSQL_STMT* st, const Params& params) {
    std::vector<MYSQL_BIND> binds(params.size());
    std::vector<int64_t> integers(params.size());
    my_bool is_null = 1;
    for (size_t i = 0; i < params.size(); ++i) {
      const Value& v = params[i];
      MYSQL_BIND& b = binds[i];
      if (v.IsNull()) {
        b.buffer_type = MYSQL_TYPE_NULL;
        b.is_null = &is_null;
      } else if (v.IsInt() || v.IsBool()) {
        integers[i] = v.IsInt() ? v.integer() : (v.boolean() ? 1 : 0);
        b.buffer_type = MYSQL_TYPE_LONGLONG;
        b.buffer = &integers[i];
      } else {
        // Binary-safe: the length is explicit, the text is sent as is.
        const std::string& s = v.text();
        b.buffer_type = MYSQL_TYPE_STRING;
        b.buffer = const_cast<char*>(s.data());
        b.buffer_length = s.size();
      }
    }
    if (!binds.empty() && mysql_stmt_bind_param(st, binds.data()) != 0) return false;
    return mysql_stmt_execute(st) == 0;
  }

  // Prepares (or reuses) and executes `sql`; throws on error.
  MYSQL_STMT* Run(const std::string& sql, const Params& params) {
    MYSQL_STMT* st = Prepare(sql, params.size());
    if (!BindAndExecute(st, params)) {
      if (mysql_stmt_errno(st) != CR_NEW_STMT_METADATA) FailStatement(st, sql);
      // The result columns changed since the statement was prepared (ALTER
      // TABLE). Closing it discards the pending result; prepare afresh, once.
      Evict(sql);
      st = Prepare(sql, params.size());
      if (!BindAndExecute(st, params)) FailStatement(st, sql);
    }
    RememberInsertId(mysql_stmt_insert_id(st));
    return st;
  }

  // Reads the result of an executed statement into `rows` (or discards it
  // when `rows` is null), then any further result sets (CALL).
  void Finish(MYSQL_STMT* st, const std::string& sql, std::vector<Row>* rows) {
    if (rows && mysql_stmt_field_count(st) > 0) ReadRows(st, sql, rows);
    mysql_stmt_free_result(st);
    int rc;
    while ((rc = mysql_stmt_next_result(st)) == 0) mysql_stmt_free_result(st);
    if (rc > 0) FailStatement(st, sql);
  }

  void ReadRows(MYSQL_STMT* st, const std::string& sql, std::vector<Row>* rows) {
    // Buffered: the connection is free again once the rows are here, and the
    // final packet updates the server status (transaction state).
    if (mysql_stmt_store_result(st) != 0) FailStatement(st, sql);

    // The metadata of the current execution: it can differ between
    // executions (the type of `SELECT ?` follows its parameter).
    std::unique_ptr<MYSQL_RES, decltype(&mysql_free_result)> meta(mysql_stmt_result_metadata(st),
                                                                  mysql_free_result);
    if (!meta) FailStatement(st, sql);
    unsigned int n = mysql_num_fields(meta.get());
    MYSQL_FIELD* fields = mysql_fetch_fields(meta.get());

    // Integer columns arrive as int64 (the library widens them), everything
    // else as text, converted by the library where needed (dates, decimals).
    struct Column {
      bool integer = false;
      bool is_unsigned = false;
      int64_t number = 0;
      std::string text;
      unsigned long length = 0;
      my_bool is_null = 0;
    };
    std::vector<Column> columns(n);
    std::vector<MYSQL_BIND> binds(n);
    for (unsigned int i = 0; i < n; ++i) {
      Column& c = columns[i];
      MYSQL_BIND& b = binds[i];
      b.is_null = &c.is_null;
      b.length = &c.length;
      if (IsIntegerType(fields[i].type)) {
        c.integer = true;
        c.is_unsigned = (fields[i].flags & UNSIGNED_FLAG) != 0;
        b.buffer_type = MYSQL_TYPE_LONGLONG;
        b.buffer = &c.number;
        b.is_unsigned = c.is_unsigned;
      } else {
        c.text.resize(kTextBufferSize);
        b.buffer_type = MYSQL_TYPE_STRING;
        b.buffer = c.text.data();
        b.buffer_length = c.text.size();
      }
    }
    if (mysql_stmt_bind_result(st, binds.data()) != 0) FailStatement(st, sql);

    for (;;) {
      int rc = mysql_stmt_fetch(st);
      if (rc == MYSQL_NO_DATA) break;
      if (rc == 1) FailStatement(st, sql);
      // rc is 0 or MYSQL_DATA_TRUNCATED; `length` tells which texts were cut.
      Row row;
      row.reserve(n);
      for (unsigned int i = 0; i < n; ++i) {
        const Column& c = columns[i];
        if (c.is_null) {
          row.emplace_back();
        } else if (c.integer) {
          uint64_t u = static_cast<uint64_t>(c.number);
          // BIGINT UNSIGNED beyond int64: keep the exact value as text.
          if (c.is_unsigned && u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            row.emplace_back(std::to_string(u));
          } else {
            row.emplace_back(c.number);
          }
        } else if (c.length <= c.text.size()) {
          row.emplace_back(std::string(c.text.data(), c.length));
        } else {
          std::string whole(c.length, '\0');
          MYSQL_BIND b{};
          b.buffer_type = MYSQL_TYPE_STRING;
          b.buffer = whole.data();
          b.buffer_length = whole.size();
          if (mysql_stmt_fetch_column(st, &b, i, 0) != 0) FailStatement(st, sql);
          row.emplace_back(std::move(whole));
        }
      }
      rows->push_back(std::move(row));
    }
  }

  MYSQL* mysql_;
  std::string target_;
  std::unordered_map<std::string, MYSQL_STMT*> cache_;
  int64_t last_insert_id_ = 0;
};

}  // namespace

std::unique_ptr<Connection> OpenMysql(const DatabaseConfig& config) {
  std::string target = Target(config);
  MYSQL* mysql = mysql_init(nullptr);
  if (!mysql) throw Error(Error::Kind::kConnection, "mysql:" + target + ": out of memory");

  bool use_socket = !config.socket.empty();
  // Explicit, so that host "localhost" still means TCP.
  unsigned int protocol = use_socket ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
  unsigned int connect_timeout_s = 5;
  unsigned int io_timeout_s = 60;
  // A silent reconnect would lose session variables and the open transaction.
  my_bool reconnect = 0;
  mysql_options(mysql, MYSQL_OPT_PROTOCOL, &protocol);
  mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout_s);
  mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &io_timeout_s);
  mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout_s);
  mysql_options(mysql, MYSQL_OPT_RECONNECT, &reconnect);

  const char* host = use_socket ? nullptr : config.host.c_str();
  unsigned int port = use_socket ? 0 : static_cast<unsigned int>(config.port);
  const char* socket = use_socket ? config.socket.c_str() : nullptr;
  // An empty database name connects without selecting one.
  const char* database = config.database.empty() ? nullptr : config.database.c_str();
  // FOUND_ROWS: UPDATE reports matched rows. MULTI_RESULTS: CALL may return
  // several result sets.
  unsigned long flags = CLIENT_FOUND_ROWS | CLIENT_MULTI_RESULTS;
  if (!mysql_real_connect(mysql, host, config.user.c_str(), config.password.c_str(), database, port,
                          socket, flags)) {
    std::string message = mysql_error(mysql);
    mysql_close(mysql);
    throw Error(Error::Kind::kConnection, "mysql:" + target + ": cannot connect: " + message);
  }
  auto conn = std::make_unique<MysqlConnection>(mysql, std::move(target));
  try {
    conn->ExecuteDdl("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
    conn->ExecuteDdl("SET NAMES utf8mb4");
  } catch (const Error& e) {
    throw Error(Error::Kind::kConnection, e.what());
  }
  return conn;
}

}  // namespace zonemesh::db
