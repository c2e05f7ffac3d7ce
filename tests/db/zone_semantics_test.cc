// What DNS adds to the row model (docs/replication-model.md, "Zones, not
// rows"), on SQLite, PostgreSQL and MariaDB: the serial contract, RRsets and
// metadata kinds replaced as a whole, decisions over every concurrent state
// (a value its own origin replaced never wins again), record identity, and
// data PowerDNS derives from node-local ids staying local.
#include <gtest/gtest.h>

#include <set>

#include "conflict/strategy.h"
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

uint32_t Serial(Node& n, const std::string& zone) {
  auto rows = n.conn->Query(
      "SELECT r.content FROM records r JOIN domains d ON d.id = r.domain_id WHERE d.name = ? AND "
      "r.type = 'SOA'",
      {zone});
  if (rows.size() != 1) ADD_FAILURE() << n.id << " has " << rows.size() << " SOA rows for " << zone;
  if (rows.empty()) return 0;
  std::optional<uint32_t> s = schema::SoaSerial(rows[0][0].AsText());
  if (!s) ADD_FAILURE() << n.id << ": no serial in " << rows[0][0].AsText();
  return s.value_or(0);
}

std::set<std::string> Contents(Node& n, const std::string& name, const std::string& type) {
  std::set<std::string> out;
  for (const db::Row& r : n.conn->Query("SELECT content FROM records WHERE name = ? AND type = ?", {name, type}))
    out.insert(r[0].AsText());
  return out;
}

int64_t Ttl(Node& n, const std::string& name) {
  auto rows = n.conn->Query("SELECT ttl FROM records WHERE name = ?", {name});
  return rows.empty() ? -1 : rows[0][0].AsInt();
}

void WriteSoa(Node& n, const std::string& zone, int64_t serial, int refresh) {
  n.conn->Execute("UPDATE records SET content = ? WHERE type = 'SOA' AND domain_id = ?",
                  {"ns1." + zone + " hostmaster." + zone + " " + std::to_string(serial) + " " +
                       std::to_string(refresh) + " 3600 604800 3600",
                   *n.w->ZoneId(zone)});
}

std::unique_ptr<conflict::Policy> Policy(const std::string& records_strategy,
                                         conflict::StrategyOptions options = {}) {
  return std::make_unique<conflict::Policy>(
      "latest-wins", std::map<std::string, std::string>{{"records", records_strategy}}, options);
}

class ZoneSemanticsTest : public ::testing::TestWithParam<Dialect> {
 protected:
  Node& NewNode(const std::string& id, std::unique_ptr<conflict::Policy> policy = nullptr) {
    return mesh_.Add(GetParam(), id, std::move(policy));
  }
  InprocMesh mesh_;
};

// ------------------------------------------------------------ serials --

TEST_P(ZoneSemanticsTest, EveryChangeMadeOrAppliedRaisesTheSerialOnEveryNode) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com", 2026112601);
  mesh_.SyncAll();
  uint32_t last_a = Serial(a, "example.com"), last_b = Serial(b, "example.com");
  EXPECT_TRUE(last_a == 2026112601u || last_a == 2026112602u) << last_a;
  EXPECT_EQ(last_a, last_b);
  // Records changed without touching the SOA (plain SQL, pdnsutil
  // add-record), on either node: each change raises both serials.
  for (int i = 0; i < 6; ++i) {
    Node& writer = i % 2 ? b : a;
    writer.w->AddRecord("example.com", "h" + std::to_string(i) + ".example.com", "A", "192.0.2.1");
    mesh_.Sync(writer, i % 2 ? a : b);
    uint32_t now_a = Serial(a, "example.com"), now_b = Serial(b, "example.com");
    EXPECT_TRUE(conflict::SerialGreater(now_a, last_a)) << "step " << i << ": " << last_a << " -> " << now_a;
    EXPECT_TRUE(conflict::SerialGreater(now_b, last_b)) << "step " << i << ": " << last_b << " -> " << now_b;
    EXPECT_EQ(now_a, now_b) << "step " << i;
    last_a = now_a;
    last_b = now_b;
  }
  mesh_.ExpectConverged();
}

TEST_P(ZoneSemanticsTest, ALowerSerialWrittenLocallyNeverLowersTheServedOne) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com", 2026112650);
  mesh_.SyncAll();
  const uint32_t before = Serial(a, "example.com");
  a.w->SetSoaSerial("example.com", 2026112600);  // an operator's mistake
  // Served as soon as committed: the write itself moved up, not back.
  EXPECT_TRUE(conflict::SerialGreater(Serial(a, "example.com"), before));
  mesh_.SyncAll();
  EXPECT_EQ(Serial(b, "example.com"), Serial(a, "example.com"));
  // A serial ahead is taken as written: the operator's convention stays.
  a.w->SetSoaSerial("example.com", 2026112700);
  EXPECT_EQ(Serial(a, "example.com"), 2026112700u);
  mesh_.SyncAll();
  EXPECT_EQ(Serial(b, "example.com"), 2026112700u);
  mesh_.ExpectConverged();
}

TEST_P(ZoneSemanticsTest, ConcurrentSerialWritesConvergeToOneSerialAtLeastTheHighest) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  Node& c = NewNode("c");
  a.w->CreateZone("example.com", 2026112600);
  mesh_.SyncAll();
  // SOA-EDIT-DNSUPDATE=INCREASE on a and c (the served serial plus one),
  // a date jump on b, all at once.
  a.w->SetSoaSerial("example.com", Serial(a, "example.com") + 1);
  b.w->SetSoaSerial("example.com", 2026112700);
  c.w->SetSoaSerial("example.com", Serial(c, "example.com") + 1);
  mesh_.Sync(c, a);
  mesh_.Sync(a, b);
  mesh_.Sync(b, c);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  const uint32_t s = Serial(a, "example.com");
  EXPECT_TRUE(conflict::SerialGreater(s, 2026112700u)) << s;
  EXPECT_EQ(s, Serial(b, "example.com"));
  EXPECT_EQ(s, Serial(c, "example.com"));
  // Equal SOAs apart from the serial are no conflict worth a record.
  EXPECT_EQ(a.Count("SELECT COUNT(*) FROM zm_conflict WHERE tbl = 'records'"), 0);
}

// The finding: ns1 writes 2026112700, then 2026112650; ns3, cut off, writes
// 2026112680; ns1's two changes reach ns3 one at a time. With soa-serial,
// ns3 kept 700 (compared against ns1's first write, which ns1 itself had
// replaced) while ns1 took 680: different SOAs for ever.
TEST_P(ZoneSemanticsTest, SoaSerialStrategyNeverKeepsAStateItsOriginReplaced) {
  Node& ns1 = NewNode("ns1", Policy("soa-serial"));
  Node& ns2 = NewNode("ns2", Policy("soa-serial"));
  Node& ns3 = NewNode("ns3", Policy("soa-serial"));
  ns1.w->CreateZone("example.com", 2026112600);
  mesh_.SyncAll();
  WriteSoa(ns1, "example.com", 2026112700, 1);
  mesh_.Sync(ns1, ns2);  // one round...
  WriteSoa(ns1, "example.com", 2026112650, 2);
  mesh_.Sync(ns1, ns2);  // ...and the next
  WriteSoa(ns3, "example.com", 2026112680, 3);
  mesh_.Sync(ns1, ns3, 1);  // ns3 gets ns1's rounds one batch at a time
  mesh_.Sync(ns2, ns3);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  // One SOA everywhere, at least every serial written; ns1's first state
  // (refresh 1) never comes back. Serials are the zone clock's, so the
  // strategy decides the other fields like latest-wins: ns3's write, the
  // newest, keeps its refresh.
  const uint32_t serial = Serial(ns1, "example.com");
  EXPECT_TRUE(conflict::SerialGreater(serial, 2026112700u)) << serial;
  for (Node* n : {&ns1, &ns2, &ns3}) {
    auto soa = n->conn->Query("SELECT content FROM records WHERE type = 'SOA'")[0][0].AsText();
    EXPECT_EQ(soa, "ns1.example.com hostmaster.example.com " + std::to_string(serial) +
                       " 3 3600 604800 3600")
        << n->id;
  }
}

// www.example.com A written on a, then its TTL set concurrently to 1000 on
// a and 80 on c; c has received a's value.
void ConcurrentTtls(InprocMesh& mesh, Node& a, Node& c) {
  a.w->CreateZone("example.com");
  a.w->AddRecord("example.com", "www.example.com", "A", "192.0.2.1", 300);
  mesh.SyncAll();
  a.w->SetTtl("example.com", "www.example.com", "A", 1000);
  c.w->SetTtl("example.com", "www.example.com", "A", 80);
  mesh.Sync(a, c);
}

// The same with a value-based plug-in (the example ttl-keeper: the larger
// TTL wins a conflict). c holds a's first value against its own, a then
// replaces its first value: c must decide again between a's second value and
// its own, not keep a value a has replaced.
TEST_P(ZoneSemanticsTest, PluginStrategyNeverKeepsAStateItsOriginReplaced) {
  conflict::StrategyOptions opts{{}, testing::BuiltPluginPath()};
  Node& a = NewNode("a", Policy("custom", opts));
  Node& c = NewNode("c", Policy("custom", opts));
  ConcurrentTtls(mesh_, a, c);
  EXPECT_EQ(Ttl(c, "www.example.com"), 1000);  // the larger of two concurrent values
  a.w->SetTtl("example.com", "www.example.com", "A", 50);  // a replaces its 1000
  mesh_.Sync(a, c);
  mesh_.Sync(c, a);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(Ttl(a, "www.example.com"), 80);
  EXPECT_EQ(Ttl(c, "www.example.com"), 80);
}

// A node that joins by snapshot gets a row's concurrent states, not only
// the one shown: later changes are decided among the same states there as
// on the node that served the snapshot. Without them the joined node keeps
// 1000 (its one state, concurrent with a's 50) while the others take 80.
TEST_P(ZoneSemanticsTest, ANodeJoinedBySnapshotDecidesAmongTheSameConcurrentStates) {
  conflict::StrategyOptions opts{{}, testing::BuiltPluginPath()};
  Node& a = NewNode("a", Policy("custom", opts));
  Node& c = NewNode("c", Policy("custom", opts));
  ConcurrentTtls(mesh_, a, c);  // c holds both states and shows the larger
  Node& d = NewNode("d", Policy("custom", opts));
  EXPECT_GT(mesh_.Join(c, d), 0);
  EXPECT_EQ(Ttl(d, "www.example.com"), 1000);
  a.w->SetTtl("example.com", "www.example.com", "A", 50);  // a replaces its 1000
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(Ttl(d, "www.example.com"), 80);
}

// ------------------------------------------------------------- RRsets --

TEST_P(ZoneSemanticsTest, ConcurrentReplacesOfOneRRsetEndAsOneSidesWholeSet) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  Node& c = NewNode("c");
  a.w->CreateZone("example.com");
  a.w->ReplaceRRset("example.com", "www.example.com", "A", {"192.0.2.1", "192.0.2.2"});
  mesh_.SyncAll();
  const std::set<std::string> side_a = {"192.0.2.10", "192.0.2.11"};
  const std::set<std::string> side_b = {"192.0.2.20", "192.0.2.21", "192.0.2.22"};
  a.w->ReplaceRRset("example.com", "www.example.com", "A", {side_a.begin(), side_a.end()});
  b.w->ReplaceRRset("example.com", "www.example.com", "A", {side_b.begin(), side_b.end()});
  mesh_.Sync(a, c);
  mesh_.Sync(b, c);
  mesh_.Sync(b, a);
  mesh_.Sync(a, b);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  const std::set<std::string> got = Contents(a, "www.example.com", "A");
  EXPECT_TRUE(got == side_a || got == side_b) << "a mix: " << ::testing::PrintToString(got);
  // The losing side's records are logged as dropped on some node.
  int64_t dropped = 0;
  for (Node* n : {&a, &b, &c}) {
    dropped += n->Count("SELECT COUNT(*) FROM zm_conflict WHERE decision = 'dropped' AND strategy = 'rrset-replace'");
  }
  EXPECT_GT(dropped, 0);
}

TEST_P(ZoneSemanticsTest, IndependentAddsToOneRRsetAreBothKept) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  a.w->AddRecord("example.com", "pool.example.com", "A", "192.0.2.1");
  mesh_.SyncAll();
  a.w->AddRecord("example.com", "pool.example.com", "A", "192.0.2.10");
  b.w->AddRecord("example.com", "pool.example.com", "A", "192.0.2.20");
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(Contents(a, "pool.example.com", "A"),
            (std::set<std::string>{"192.0.2.1", "192.0.2.10", "192.0.2.20"}));
}

TEST_P(ZoneSemanticsTest, AReplaceWinsOverAConcurrentAddInWhicheverOrder) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  Node& c = NewNode("c");
  a.w->CreateZone("example.com");
  a.w->AddRecord("example.com", "dhcp.example.com", "A", "192.0.2.1");
  mesh_.SyncAll();
  a.w->AddRecord("example.com", "dhcp.example.com", "A", "192.0.2.2");   // an add
  b.w->ReplaceRRset("example.com", "dhcp.example.com", "A", {"192.0.2.9"});  // a replace
  mesh_.Sync(a, c);
  mesh_.Sync(b, c);
  mesh_.Sync(b, a);
  mesh_.Sync(a, b);
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(Contents(c, "dhcp.example.com", "A"), (std::set<std::string>{"192.0.2.9"}));
}

TEST_P(ZoneSemanticsTest, ASingleRecordDeleteRemovesOnlyThatRecord) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  a.w->ReplaceRRset("example.com", "www.example.com", "A", {"192.0.2.1", "192.0.2.2"});
  a.w->AddRecord("example.com", "solo.example.com", "A", "192.0.2.5");
  mesh_.SyncAll();
  a.w->DeleteRecord("example.com", "www.example.com", "A", "192.0.2.1");
  b.w->AddRecord("example.com", "www.example.com", "A", "192.0.2.3");
  // Deleting an RRset's last record is a delete, not a replace: a later,
  // separate add on the same node does not end a concurrent add elsewhere.
  a.w->DeleteRecord("example.com", "solo.example.com", "A", "192.0.2.5");
  mesh_.Sync(a, b);
  a.w->AddRecord("example.com", "solo.example.com", "A", "192.0.2.6");
  b.w->AddRecord("example.com", "solo.example.com", "A", "192.0.2.7");
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(Contents(a, "www.example.com", "A"), (std::set<std::string>{"192.0.2.2", "192.0.2.3"}));
  EXPECT_EQ(Contents(a, "solo.example.com", "A"), (std::set<std::string>{"192.0.2.6", "192.0.2.7"}));
}

TEST_P(ZoneSemanticsTest, ConcurrentMetadataSetsEndAsOneSidesSet) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  a.w->SetMetadata("example.com", "ALSO-NOTIFY", {"192.0.2.53"});
  mesh_.SyncAll();
  a.w->SetMetadata("example.com", "ALSO-NOTIFY", {"192.0.2.1", "192.0.2.2"});
  b.w->SetMetadata("example.com", "ALSO-NOTIFY", {"192.0.2.3"});
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  std::set<std::string> got;
  for (const db::Row& r : a.conn->Query("SELECT content FROM domainmetadata WHERE kind = 'ALSO-NOTIFY'"))
    got.insert(r[0].AsText());
  EXPECT_TRUE(got == (std::set<std::string>{"192.0.2.1", "192.0.2.2"}) ||
              got == (std::set<std::string>{"192.0.2.3"}))
      << ::testing::PrintToString(got);
}

// A replace's incarnation belongs to its zone's incarnation: a zone deleted
// and created again on a node starts its RRsets and metadata kinds afresh
// there too, so writes into the new zone are not taken for writes into a
// replaced set of the old one.
TEST_P(ZoneSemanticsTest, AZoneCreatedAgainLocallyStartsItsSetsAgain) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  a.w->SetMetadata("example.com", "X-NOTE", {"first"});
  mesh_.SyncAll();
  b.w->SetMetadata("example.com", "X-NOTE", {"replaced on b"});  // a replace on b
  mesh_.SyncAll();
  b.w->DeleteZone("example.com");
  b.w->CreateZone("example.com");
  mesh_.SyncAll();
  a.w->SetMetadata("example.com", "X-NOTE", {"new zone"});
  a.w->ReplaceRRset("example.com", "www.example.com", "A", {"192.0.2.1"});
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM domainmetadata WHERE content = 'new zone'"), 1);
  EXPECT_EQ(Contents(b, "www.example.com", "A"), (std::set<std::string>{"192.0.2.1"}));
}

// ----------------------------------------------------- record identity --

TEST_P(ZoneSemanticsTest, RecordsDifferingOnlyInPrioAreTwoRecords) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("example.com");
  for (int prio : {10, 20}) {
    a.conn->Execute(
        "INSERT INTO records (domain_id, name, type, content, ttl, prio, disabled, auth) VALUES (?, ?, "
        "'SRV', '0 5060 sip.example.com', 300, ?, ?, ?)",
        {*a.w->ZoneId("example.com"), "_sip._udp.example.com", int64_t{prio}, db::Value(false),
         db::Value(true)});
  }
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM records WHERE type = 'SRV'"), 2);
  // Editing one leaves the other.
  a.conn->Execute("UPDATE records SET ttl = 60 WHERE type = 'SRV' AND prio = 10");
  mesh_.SyncAll();
  mesh_.ExpectConverged();
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM records WHERE type = 'SRV' AND ttl = 60"), 1);
  EXPECT_EQ(b.Count("SELECT COUNT(*) FROM records WHERE type = 'SRV'"), 2);
}

// ------------------------------------------------------- node-local data --

TEST_P(ZoneSemanticsTest, CatalogHashStaysOnItsNode) {
  Node& a = NewNode("a");
  Node& b = NewNode("b");
  a.w->CreateZone("cat.test");
  mesh_.SyncAll();
  a.w->SetMetadata("cat.test", "CATALOG-HASH", {"hash-of-a's-local-ids"});
  b.w->SetMetadata("cat.test", "CATALOG-HASH", {"hash-of-b's-local-ids"});
  mesh_.SyncAll();
  auto hash = [](Node& n) {
    return n.conn->Query("SELECT content FROM domainmetadata WHERE kind = 'CATALOG-HASH'")[0][0].AsText();
  };
  EXPECT_EQ(hash(a), "hash-of-a's-local-ids");
  EXPECT_EQ(hash(b), "hash-of-b's-local-ids");
  EXPECT_EQ(a.Count("SELECT COUNT(*) FROM zm_outbox WHERE tbl = 'domainmetadata'"), 0);
  // Not part of the replicated data either.
  mesh_.ExpectConverged();
}

INSTANTIATE_TEST_SUITE_P(AllDatabases, ZoneSemanticsTest, ::testing::ValuesIn(testing::AllDialects()),
                         [](const auto& info) { return testing::DialectParamName(info.param); });

}  // namespace
}  // namespace zonemesh
