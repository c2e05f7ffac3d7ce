// Hostile peers against a running daemon: slow clients, connection floods,
// SQL in values. Each gets a bounded answer and the daemon keeps serving.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "replicator/wire.h"
#include "schema/key.h"
#include "tests/support/cluster.h"

namespace zonemesh::testing {
namespace {

using nlohmann::json;

int Connect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// True when the server closed the connection within `ms` (read returns 0
// or an error).
bool ClosedWithin(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, ms) <= 0) return false;
  char buf[256];
  return read(fd, buf, sizeof buf) <= 0;
}

TEST(Hostile, SlowClientIsCutOffAndOthersAreServed) {
  Cluster mesh(2, "slow", json{{"request_timeout_ms", 1000}});
  mesh[0].Start();
  int fd = Connect(mesh[0].port());
  ASSERT_GE(fd, 0);
  const char* partial = "POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"v\":";
  ASSERT_GT(write(fd, partial, strlen(partial)), 0);
  // Others are served while the slow request hangs.
  EXPECT_EQ(mesh[0].Http("GET", "/status").status, 200);
  // The slow one is dropped at its deadline.
  EXPECT_TRUE(ClosedWithin(fd, 15000));
  close(fd);
  EXPECT_EQ(mesh[0].Http("GET", "/status").status, 200);
}

TEST(Hostile, ConnectionFloodIsCappedAndTheDaemonRecovers) {
  Cluster mesh(2, "flood", json{{"max_connections", 8}, {"request_timeout_ms", 1000}});
  mesh[0].Start();
  std::vector<int> fds;
  for (int i = 0; i < 40; ++i) fds.push_back(Connect(mesh[0].port()));
  int refused = 0;
  for (int fd : fds) refused += fd < 0 || ClosedWithin(fd, 200);
  EXPECT_GE(refused, 40 - 8) << "connections beyond the cap must be closed";
  // The idle ones are closed at their deadline; the daemon serves again.
  ASSERT_TRUE(PollUntil([&] { return mesh[0].Http("GET", "/status").status == 200; }, 30s));
  for (int fd : fds)
    if (fd >= 0) close(fd);
  EXPECT_TRUE(mesh[0].running());
  EXPECT_NE(mesh[0].Log().find("connection limit (8) reached"), std::string::npos);
}

TEST(Hostile, SqlInValuesIsStoredAsData) {
  Cluster mesh(2, "sqlvalues");
  mesh[0].Start();
  const std::string evil = "x'); DROP TABLE records; --";
  const int64_t hlc = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto change = [&](Position pos, const std::string& table, schema::RowImage row, int64_t h) {
    Change c;
    c.pos = pos;
    c.spec = schema::FindTable(table);
    c.op = 'U';
    c.row = std::move(row);
    c.key = schema::EncodeKey(*c.spec, c.row);
    c.version = {h, "b"};
    c.vv.Set("b", h);
    return c;
  };
  schema::RowImage zone;
  zone.values = {db::Value("evil.example"), db::Value(), db::Value("NATIVE"), db::Value(evil),
                 db::Value(), db::Value()};
  schema::RowImage rec;
  rec.zone = "evil.example";
  rec.values = {db::Value("'; DELETE FROM domains; --.evil.example"), db::Value("TXT"), db::Value(evil),
                db::Value(int64_t{60}), db::Value(int64_t{0}), db::Value(false), db::Value(), db::Value(true)};
  Batch b;
  b.origin = "b";
  b.target = "a";
  b.fingerprint = mesh[0].Status().value("fingerprint", "");
  b.changes = {change({1, 1}, "domains", zone, hlc), change({1, 2}, "records", rec, hlc + 1)};
  // The fingerprint is in the daemon's log; fetch it from the hello answer.
  std::string log = mesh[0].Log();
  size_t at = log.find("fingerprint ");
  ASSERT_NE(at, std::string::npos);
  b.fingerprint = log.substr(at + 12, 32);
  auto r = mesh[0].Http("POST", "/v1/push", EncodeBatch(b));
  ASSERT_EQ(r.status, 200) << r.body;
  auto conn = mesh[0].Connect();
  auto rows = conn->Query("SELECT name, content FROM records WHERE type = 'TXT'");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0].AsText(), "'; DELETE FROM domains; --.evil.example");
  EXPECT_EQ(rows[0][1].AsText(), evil);
  EXPECT_EQ(conn->Query("SELECT account FROM domains")[0][0].AsText(), evil);
  EXPECT_TRUE(conn->TableExists("records"));
}

}  // namespace
}  // namespace zonemesh::testing
