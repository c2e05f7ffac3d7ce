// zonemesh-test-sqlite-writer: writes to an SQLite database the way
// PowerDNS's gsqlite3 backend does (pdns/ssqlite3.cc, auth 4.7): a busy
// handler that waits for ever, "begin" (deferred), reads, then writes. Such
// a transaction cannot wait for a lock once it has read, so it fails when
// another process writes between its first read and its first write.
//
//   zonemesh-test-sqlite-writer DB ROUNDS GAP_US PAUSE_US [read-only]
//
// Each round: begin; SELECT the name's records; sleep GAP_US; DELETE them;
// INSERT one; commit; sleep PAUSE_US. Prints "rounds R failed F" and, per failure, the
// error; exits 0 when it ran (whatever failed), 2 on bad usage. With
// "read-only" a round only reads (begin; SELECT; sleep GAP_US; commit), as
// PowerDNS answering queries does.
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

int BusyForever(void*, int) {
  usleep(1000);
  return 1;
}

bool Exec(sqlite3* db, const std::string& sql, std::string* error) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) == SQLITE_OK) return true;
  *error = sql.substr(0, 40) + ": " + (err ? err : "?") + " (" +
           std::to_string(sqlite3_extended_errcode(db)) + ")";
  sqlite3_free(err);
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && !(argc == 6 && std::string(argv[5]) == "read-only")) {
    std::fprintf(stderr, "usage: %s DB ROUNDS GAP_US PAUSE_US [read-only]\n", argv[0]);
    return 2;
  }
  const bool read_only = argc == 6;
  const int rounds = std::atoi(argv[2]);
  const int gap_us = std::atoi(argv[3]);
  const int pause_us = std::atoi(argv[4]);
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  sqlite3_busy_handler(db, BusyForever, nullptr);
  std::string error;
  if (!Exec(db, "PRAGMA journal_mode=WAL", &error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  int failed = 0;
  for (int i = 0; i < rounds; ++i) {
    const std::string name = "'w" + std::to_string(i % 16) + ".example'";
    bool ok = Exec(db, "begin", &error) &&
              Exec(db, "SELECT content FROM records WHERE name = " + name, &error);
    if (ok) usleep(gap_us);
    ok = ok && (read_only || Exec(db, "DELETE FROM records WHERE name = " + name, &error)) &&
         (read_only || Exec(db, "INSERT INTO records (name, content) VALUES (" + name + ", '192.0.2." +
                      std::to_string(i % 250) + "')",
              &error)) &&
         Exec(db, "commit", &error);
    if (!ok) {
      ++failed;
      std::printf("round %d: %s\n", i, error.c_str());
      sqlite3_exec(db, "rollback", nullptr, nullptr, nullptr);
    }
    usleep(pause_us);
  }
  std::printf("rounds %d failed %d\n", rounds, failed);
  sqlite3_close(db);
  return 0;
}
