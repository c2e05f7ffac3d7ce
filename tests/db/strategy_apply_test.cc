// Each conflict strategy, configured on every node of a mesh and driven by
// real concurrent edits, on SQLite, PostgreSQL and MariaDB: every node ends
// with the row the strategy picks, and the conflict log says so.
#include <gtest/gtest.h>

#include <cstdlib>

#include "replicator/conflicts.h"
#include "replicator/dump.h"
#include "schema/serial.h"
#include "tests/support/inproc_mesh.h"
#include "tests/support/test_db.h"

namespace zonemesh {
namespace {

using db::Dialect;
using testing::InprocMesh;
using testing::Node;

std::unique_ptr<conflict::Policy> MakePolicy(const std::string& strategy,
                                             std::map<std::string, std::string> tables = {},
                                             conflict::StrategyOptions options = {}) {
  return std::make_unique<conflict::Policy>(strategy, tables, options);
}

int64_t Ttl(Node& n, const std::string& name) {
  auto rows = n.conn->Query("SELECT ttl FROM records WHERE name = ?", {name});
  return rows.empty() ? -1 : rows[0][0].AsInt();
}

std::string SoaOf(Node& n) {
  return n.conn->Query("SELECT content FROM records WHERE type = 'SOA'").at(0)[0].AsText();
}

class StrategyTest : public ::testing::TestWithParam<Dialect> {
 protected:
  InprocMesh mesh_;
};

TEST_P(StrategyTest, PriorityNodeWinsAConcurrentEditEvenWhenOlder) {
  conflict::StrategyOptions opts{{"b", "a"}, ""};
  Node& a = mesh_.Add(GetParam(), "a", MakePolicy("priority", {}, opts));
  Node& b = mesh_.Add(GetParam(), "b", MakePolicy("priority", {}, opts));
  a.w->CreateZone("example.com");
  a.w->AddRecord("example.com", "www.example.com", "A", "192.0.2.1", 300);
  mesh_.SyncAll();
  b.w->SetTtl("example.com", "www.example.com", "A", 111);  // b writes first...
  a.w->SetTtl("example.com", "www.example.com", "A", 222);  // ...a later: a is newer
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(Ttl(a, "www.example.com"), 111);
  EXPECT_EQ(Ttl(b, "www.example.com"), 111);
  // A later edit that has seen b's is no conflict: a low-priority node can
  // still change the row after the fact.
  a.w->SetTtl("example.com", "www.example.com", "A", 333);
  mesh_.SyncAll();
  EXPECT_EQ(Ttl(b, "www.example.com"), 333);
}

// With soa-serial on records, concurrent SOA writes end in one SOA on every
// node: the serial is the zone's serial clock (at least the highest written,
// whatever order the writes arrive in), the other fields those of the newest
// write.
TEST_P(StrategyTest, SoaSerialEndsInOneSoaAtLeastTheHighestWrittenSerial) {
  Node& a = mesh_.Add(GetParam(), "a", MakePolicy("latest-wins", {{"records", "soa-serial"}}));
  Node& b = mesh_.Add(GetParam(), "b", MakePolicy("latest-wins", {{"records", "soa-serial"}}));
  Node& c = mesh_.Add(GetParam(), "c", MakePolicy("latest-wins", {{"records", "soa-serial"}}));
  a.w->CreateZone("example.com", 2024010100);
  mesh_.SyncAll();
  // Each write also sets its own refresh timer, so the three differ.
  auto write = [](Node& n, int64_t serial, int refresh) {
    n.conn->Execute("UPDATE records SET content = ? WHERE type = 'SOA'",
                    {"ns1.example.com hostmaster.example.com " + std::to_string(serial) + " " +
                     std::to_string(refresh) + " 3600 604800 3600"});
  };
  write(b, 2024010105, 1005);  // the highest serial, written first
  write(c, 2024010102, 1002);
  write(a, 2024010101, 1001);  // the newest write, lowest serial
  mesh_.Sync(a, c);
  mesh_.Sync(c, b);
  mesh_.Sync(b, a);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  const std::string soa = SoaOf(a);
  const std::optional<uint32_t> serial = schema::SoaSerial(soa);
  ASSERT_TRUE(serial.has_value()) << soa;
  EXPECT_TRUE(conflict::SerialGreater(*serial, 2024010104)) << soa;
  EXPECT_EQ(schema::WithSoaSerial(soa, 0), "ns1.example.com hostmaster.example.com 0 1001 3600 604800 3600");
  auto conflicts = ListConflicts(*a.conn, false, 10);
  ASSERT_FALSE(conflicts.empty());
  EXPECT_EQ(conflicts.back().strategy, "soa-serial");
}

TEST_P(StrategyTest, ManualParksUntilAnOperatorResolvesOnOneNode) {
  Node& a = mesh_.Add(GetParam(), "a", MakePolicy("latest-wins", {{"records", "manual"}}));
  Node& b = mesh_.Add(GetParam(), "b", MakePolicy("latest-wins", {{"records", "manual"}}));
  Node& c = mesh_.Add(GetParam(), "c", MakePolicy("latest-wins", {{"records", "manual"}}));
  a.w->CreateZone("example.com");
  a.w->AddRecord("example.com", "www.example.com", "A", "192.0.2.1", 300);
  mesh_.SyncAll();
  a.w->SetTtl("example.com", "www.example.com", "A", 10);
  b.w->SetTtl("example.com", "www.example.com", "A", 20);
  mesh_.Sync(a, b);
  mesh_.Sync(b, a);
  // Each side kept its own row and parked the other's change.
  EXPECT_EQ(Ttl(a, "www.example.com"), 10);
  EXPECT_EQ(Ttl(b, "www.example.com"), 20);
  auto pending_a = ListConflicts(*a.conn, /*pending_only=*/true, 10);
  auto pending_b = ListConflicts(*b.conn, true, 10);
  ASSERT_EQ(pending_a.size(), 1u);
  ASSERT_EQ(pending_b.size(), 1u);
  EXPECT_EQ(pending_a[0].decision, "parked");
  EXPECT_EQ(pending_a[0].remote_image["row"]["ttl"], 20);

  // The operator takes b's value on a; it wins everywhere, c included.
  ResolveConflict(*a.conn, "a", pending_a[0].id, /*take_remote=*/true);
  EXPECT_EQ(Ttl(a, "www.example.com"), 20);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(Ttl(c, "www.example.com"), 20);
  EXPECT_TRUE(ListConflicts(*a.conn, true, 10).empty());
  // b's parked conflict was settled by the resolution arriving.
  EXPECT_TRUE(ListConflicts(*b.conn, true, 10).empty());
  auto all_b = ListConflicts(*b.conn, false, 10);
  ASSERT_EQ(all_b.size(), 1u);
  EXPECT_NE(all_b[0].resolution.find("superseded"), std::string::npos) << all_b[0].resolution;
  // Resolving twice is refused.
  EXPECT_THROW(ResolveConflict(*a.conn, "a", pending_a[0].id, false), ResolveError);
}

TEST_P(StrategyTest, ManualResolutionTakingTheLocalRowWinsEverywhere) {
  Node& a = mesh_.Add(GetParam(), "a", MakePolicy("manual"));
  Node& b = mesh_.Add(GetParam(), "b", MakePolicy("manual"));
  a.w->CreateZone("example.com");
  a.w->AddRecord("example.com", "www.example.com", "A", "192.0.2.1", 300);
  mesh_.SyncAll();
  a.w->DeleteRecord("example.com", "www.example.com", "A", "192.0.2.1");
  b.w->SetTtl("example.com", "www.example.com", "A", 20);
  mesh_.SyncAll();
  EXPECT_EQ(Ttl(a, "www.example.com"), -1);
  EXPECT_EQ(Ttl(b, "www.example.com"), 20);
  auto pending = ListConflicts(*b.conn, true, 10);
  ASSERT_EQ(pending.size(), 1u);
  ResolveConflict(*b.conn, "b", pending[0].id, /*take_remote=*/false);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(Ttl(a, "www.example.com"), 20);
}

TEST_P(StrategyTest, CustomPluginMergesConcurrentEditsTheSameWayEverywhere) {
  conflict::StrategyOptions opts{{}, testing::BuiltPluginPath()};
  Node& a = mesh_.Add(GetParam(), "a", MakePolicy("latest-wins", {{"records", "custom"}}, opts));
  Node& b = mesh_.Add(GetParam(), "b", MakePolicy("latest-wins", {{"records", "custom"}}, opts));
  Node& c = mesh_.Add(GetParam(), "c", MakePolicy("latest-wins", {{"records", "custom"}}, opts));
  a.w->CreateZone("example.com");
  a.w->AddRecord("example.com", "www.example.com", "A", "192.0.2.1", 300);
  mesh_.SyncAll();
  // a raises the TTL; b, later, disables the record with a small TTL.
  a.w->SetTtl("example.com", "www.example.com", "A", 86400);
  b.conn->Execute("UPDATE records SET ttl = 60, disabled = ? WHERE name = 'www.example.com'",
                  {db::Value(true)});
  c.w->SetTtl("example.com", "www.example.com", "A", 120);
  mesh_.Sync(b, c);
  mesh_.Sync(a, c);
  mesh_.Sync(c, a);
  mesh_.Sync(b, a);
  mesh_.Sync(a, b);
  mesh_.Sync(c, b);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  for (Node* n : {&a, &b, &c}) EXPECT_EQ(Ttl(*n, "www.example.com"), 86400) << n->id;
  auto merges = ListConflicts(*a.conn, false, 10);
  ASSERT_FALSE(merges.empty());
  EXPECT_EQ(merges[0].strategy, "custom:ttl-keeper/1");
}

INSTANTIATE_TEST_SUITE_P(AllDatabases, StrategyTest, ::testing::ValuesIn(testing::AllDialects()),
                         [](const auto& info) { return testing::DialectParamName(info.param); });

}  // namespace
}  // namespace zonemesh
