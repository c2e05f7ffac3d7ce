// Real `zonemesh run` processes on 127.0.0.1, each on its own SQLite
// database, checked against the invariants of the design brief (section 7):
// convergence, no loss, no echo, DNS sanity, bad input changes nothing.
//
// Writers play PowerDNS: they write with plain SQL straight into a node's
// database while its daemon runs. Random tests print their seed; set
// ZONEMESH_TEST_SEED to replay one (and ZONEMESH_TEST_OPS to make the random
// writers do more for a stress run; ZONEMESH_TEST_KEEP keeps node directories).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "conflict/strategy.h"
#include "replicator/daemon.h"
#include "replicator/dump.h"
#include "replicator/status.h"
#include "replicator/wire.h"
#include "schema/key.h"
#include "schema/serial.h"
#include "tests/support/cluster.h"
#include "tests/support/mesh_checks.h"

namespace zonemesh::testing {
namespace {

using nlohmann::json;

uint64_t TestSeed() {
  const char* s = std::getenv("ZONEMESH_TEST_SEED");
  if (s && *s) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

Position AppliedFrom(db::Connection& conn, const std::string& origin) {
  auto rows = conn.Query("SELECT csn, id FROM zm_applied WHERE origin = ?", {origin});
  if (rows.empty()) return {};
  return {rows[0][0].AsInt(), rows[0][1].AsInt()};
}

// ------------------------------------------------------------ writers --

// Random PowerDNS-like edits on one node. Every operation is one
// transaction that first reads the node's current state, so the node's own
// data stays sane: zones are created with exactly one SOA, the SOA is only
// ever updated in place, and only whole zones take it away.
class RandomWriter {
 public:
  RandomWriter(Node& node, uint64_t seed, int operations)
      : node_(node), rng_(seed), operations_(operations) {}

  void Run() {
    try {
      auto conn = node_.Connect();
      for (int i = 0; i < operations_; ++i) {
        WithTransaction(*conn, [&] { OneOperation(*conn); });
        ++done_;
        std::this_thread::sleep_for(std::chrono::microseconds(Uniform(0, 3000)));
      }
    } catch (const std::exception& e) {
      error_ = "writer on node " + node_.id() + ": " + e.what();
    }
  }

  const std::string& error() const { return error_; }
  const std::map<std::string, int>& counts() const { return counts_; }
  int done() const { return done_.load(); }

 private:
  int64_t Uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(Uniform(0, static_cast<int64_t>(v.size()) - 1))];
  }

  struct Zone {
    int64_t id;
    std::string name;
  };

  std::vector<Zone> Zones(db::Connection& conn) {
    std::vector<Zone> out;
    for (const db::Row& r : conn.Query("SELECT id, name FROM domains ORDER BY name"))
      out.push_back({r[0].AsInt(), r[1].AsText()});
    return out;
  }

  static std::vector<std::string> ContentsFor(const std::string& type) {
    if (type == "A") return {"192.0.2.1", "192.0.2.2", "192.0.2.3", "198.51.100.7"};
    if (type == "AAAA") return {"2001:db8::1", "2001:db8::2", "2001:db8::3"};
    if (type == "MX") return {"10 mx1.example.net.", "20 mx2.example.net.", "30 mx3.example.net."};
    return {"\"hello\"", "\"v=spf1 -all\"", "\"zonemesh\"", "\"x y z\""};
  }

  std::string RecordName(const std::string& zone) {
    static const std::vector<std::string> labels = {"", "www.", "mail.", "a1.", "a2.", "a3."};
    return Pick(labels) + zone;
  }

  std::vector<std::string> SomeContents(const std::string& type) {
    std::vector<std::string> all = ContentsFor(type);
    std::shuffle(all.begin(), all.end(), rng_);
    all.resize(static_cast<size_t>(Uniform(1, std::min<int64_t>(3, all.size()))));
    return all;
  }

  void OneOperation(db::Connection& conn) {
    static const std::vector<std::string> kTypes = {"A", "AAAA", "TXT", "MX"};
    std::vector<Zone> zones = Zones(conn);
    const int64_t roll = Uniform(0, 99);

    // Zone creation: explicitly (8%) or whenever there are few zones.
    if (roll < 8 || zones.size() < 2) {
      std::vector<std::string> free;
      for (int i = 0; i < 8; ++i) {
        std::string name = "z" + std::to_string(i) + ".test";
        bool exists = false;
        for (const Zone& z : zones) exists |= z.name == name;
        if (!exists) free.push_back(name);
      }
      if (!free.empty()) {
        const std::string name = Pick(free);
        int64_t id = pdns::CreateZone(conn, name, Uniform(1, 1000));
        if (Uniform(0, 1)) pdns::InsertRecord(conn, id, name, "NS", "ns1.example.net.", 3600);
        ++counts_["create-zone"];
        return;
      }
    }
    if (zones.empty()) return;
    const Zone zone = Pick(zones);

    if (roll < 11) {  // deleteDomain
      if (zones.size() <= 2) return;
      pdns::DeleteZone(conn, zone.id);
      ++counts_["delete-zone"];
    } else if (roll < 35) {  // add one record
      std::string type = Pick(kTypes), name = RecordName(zone.name);
      std::string content = Pick(ContentsFor(type));
      if (conn.Query("SELECT 1 FROM records WHERE domain_id = ? AND name = ? AND type = ? AND "
                     "content = ?",
                     {zone.id, name, type, content})
              .empty()) {
        pdns::InsertRecord(conn, zone.id, name, type, content, Uniform(60, 3600));
        ++counts_["add-record"];
      }
    } else if (roll < 45) {  // delete one record
      auto rows = conn.Query("SELECT id FROM records WHERE domain_id = ? AND type <> 'SOA'", {zone.id});
      if (rows.empty()) return;
      conn.Execute("DELETE FROM records WHERE id = ?", {Pick(rows)[0]});
      ++counts_["delete-record"];
    } else if (roll < 60) {  // RRset replace: delete + insert
      std::string type = Pick(kTypes);
      pdns::ReplaceRRset(conn, zone.id, RecordName(zone.name), type, SomeContents(type),
                         Uniform(60, 3600));
      ++counts_["replace-rrset"];
    } else if (roll < 67) {  // TTL edit
      auto rows = conn.Query("SELECT id FROM records WHERE domain_id = ? AND type <> 'SOA'", {zone.id});
      if (rows.empty()) return;
      conn.Execute("UPDATE records SET ttl = ? WHERE id = ?", {Uniform(60, 86400), Pick(rows)[0]});
      ++counts_["update-ttl"];
    } else if (roll < 73) {  // content edit, keeping RRsets free of duplicates
      auto rows = conn.Query(
          "SELECT id, name, type FROM records WHERE domain_id = ? AND type <> 'SOA'", {zone.id});
      if (rows.empty()) return;
      const db::Row& r = Pick(rows);
      std::string content = Pick(ContentsFor(r[2].AsText()));
      if (!conn.Query("SELECT 1 FROM records WHERE domain_id = ? AND name = ? AND type = ? AND "
                      "content = ?",
                      {zone.id, r[1], r[2], content})
               .empty())
        return;
      conn.Execute("UPDATE records SET content = ? WHERE id = ?", {content, r[0]});
      ++counts_["update-content"];
    } else if (roll < 78) {  // SOA serial bump, in place
      conn.Execute("UPDATE records SET content = ? WHERE domain_id = ? AND type = 'SOA'",
                   {"ns1." + zone.name + ". hostmaster." + zone.name + ". " +
                        std::to_string(Uniform(1000, 2000000000)) + " 10800 3600 604800 3600",
                    zone.id});
      ++counts_["bump-serial"];
    } else if (roll < 85) {  // setDomainMetadata
      static const std::vector<std::string> kinds = {"SOA-EDIT", "ALSO-NOTIFY", "X-ZM-NOTE"};
      std::string kind = Pick(kinds);
      std::vector<std::string> values;
      if (kind == "SOA-EDIT") {
        values = {Pick(std::vector<std::string>{"INCEPTION-INCREMENT", "EPOCH", "INCREMENT-WEEKS"})};
      } else if (kind == "ALSO-NOTIFY") {
        std::vector<std::string> all = {"192.0.2.53", "192.0.2.54", "198.51.100.53"};
        std::shuffle(all.begin(), all.end(), rng_);
        all.resize(static_cast<size_t>(Uniform(0, 2)));
        values = all;
      } else {
        values = {"note " + std::to_string(Uniform(0, 5))};
      }
      pdns::SetMetadata(conn, zone.id, kind, values);
      ++counts_["set-metadata"];
    } else if (roll < 88) {  // setKind / setAccount / setMasters
      static const std::vector<std::string> columns = {"type", "account", "master"};
      const std::string column = Pick(columns);
      std::string value = column == "type"      ? Pick(std::vector<std::string>{"NATIVE", "MASTER"})
                          : column == "account" ? "acct" + std::to_string(Uniform(0, 3))
                                                : "192.0.2." + std::to_string(Uniform(1, 3));
      conn.Execute("UPDATE domains SET " + column + " = ? WHERE id = ?", {value, zone.id});
      ++counts_["update-zone"];
    } else if (roll < 91) {  // replaceComments for an RRset
      std::string name = RecordName(zone.name), type = Pick(kTypes);
      conn.Execute("DELETE FROM comments WHERE domain_id = ? AND name = ? AND type = ?",
                   {zone.id, name, type});
      for (int64_t i = Uniform(0, 2); i > 0; --i) {
        conn.Execute(
            "INSERT INTO comments (domain_id, name, type, modified_at, account, comment) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            {zone.id, name, type, Uniform(1, 3), "admin",
             "comment " + std::to_string(i) + "." + std::to_string(Uniform(0, 2))});
      }
      ++counts_["replace-comments"];
    } else if (roll < 93) {  // addDomainKey / removeDomainKey
      std::string content = "Private-key-format: v1.2\nAlgorithm: 13\nKey " +
                            std::to_string(Uniform(0, 3));
      if (Uniform(0, 1)) {
        conn.Execute("DELETE FROM cryptokeys WHERE domain_id = ? AND content = ?", {zone.id, content});
        ++counts_["remove-cryptokey"];
      } else if (conn.Query("SELECT 1 FROM cryptokeys WHERE domain_id = ? AND content = ?",
                            {zone.id, content})
                     .empty()) {
        conn.Execute(
            "INSERT INTO cryptokeys (domain_id, flags, active, published, content) "
            "VALUES (?, ?, ?, 1, ?)",
            {zone.id, Pick(std::vector<int64_t>{256, 257}), Uniform(0, 1), content});
        ++counts_["add-cryptokey"];
      }
    } else if (roll < 95) {  // setTSIGKey
      pdns::SetTsigKey(conn, "k" + std::to_string(Uniform(0, 4)),
                       Pick(std::vector<std::string>{"hmac-sha256", "hmac-sha512"}),
                       "secret-" + std::to_string(Uniform(0, 1000000)));
      ++counts_["set-tsigkey"];
    } else if (roll < 97) {  // deleteTSIGKey
      pdns::DeleteTsigKey(conn, "k" + std::to_string(Uniform(0, 4)));
      ++counts_["delete-tsigkey"];
    } else {  // supermasters (autoprimaries)
      std::string ip = "192.0.2." + std::to_string(Uniform(100, 102));
      std::string ns = "ns" + std::to_string(Uniform(1, 2)) + ".example.net";
      conn.Execute("DELETE FROM supermasters WHERE ip = ? AND nameserver = ?", {ip, ns});
      if (Uniform(0, 2)) {
        conn.Execute("INSERT INTO supermasters (ip, nameserver, account) VALUES (?, ?, ?)",
                     {ip, ns, "acct" + std::to_string(Uniform(0, 2))});
      }
      ++counts_["set-autoprimary"];
    }
  }

  Node& node_;
  std::mt19937_64 rng_;
  int operations_;
  std::atomic<int> done_{0};
  std::string error_;
  std::map<std::string, int> counts_;
};

// ------------------------------------------------------------------ 1 --

// Random interleaved writes on all three nodes at once, with one node killed
// and restarted in the middle; once quiet, every node holds the same data
// and the data is DNS-sane.
TEST(MeshTest, ConcurrentRandomWritesConverge) {
  const uint64_t seed = TestSeed();
  std::cout << "[mesh] seed " << seed << " (ZONEMESH_TEST_SEED=" << seed << " replays it)\n";
  RecordProperty("seed", std::to_string(seed));
  // Small batches: commit rounds larger than one batch (zone deletes, RRset
  // replacements, backlogs after the partition) travel in parts and are staged.
  Cluster mesh(3, "converge", json{{"batch_max_changes", 7}});
  mesh.StartAll();
  ASSERT_TRUE(mesh.WaitForConnected());

  // ZONEMESH_TEST_OPS raises the number of operations per writer for local
  // stress runs.
  const char* ops_env = std::getenv("ZONEMESH_TEST_OPS");
  const int kOperations = ops_env && *ops_env ? std::atoi(ops_env) : 400;
  std::vector<std::unique_ptr<RandomWriter>> writers;
  for (size_t i = 0; i < mesh.size(); ++i)
    writers.push_back(std::make_unique<RandomWriter>(mesh[i], seed * 7919 + i, kOperations));
  // jthreads: joined on every way out of this scope (writers end by themselves).
  std::vector<std::jthread> threads;
  for (auto& w : writers) threads.emplace_back([&w] { w->Run(); });
  // A partition in the middle: one node's daemon is killed while all three
  // writers go on (its writer too, into its database), then restarted.
  auto progress = [&] {
    int total = 0;
    for (auto& w : writers) total += w->done();
    return total;
  };
  Node& victim = mesh[seed % mesh.size()];
  const int total_ops = kOperations * static_cast<int>(mesh.size());
  bool partitioned = PollUntil([&] { return progress() >= total_ops / 3; }, 120s) &&
                     (victim.Kill(), true) &&
                     PollUntil([&] { return progress() >= 2 * total_ops / 3; }, 120s);
  if (partitioned) std::cout << "[mesh] node " << victim.id() << " was down for a third of the writes\n";
  if (!victim.running()) victim.Start();
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < writers.size(); ++i) {
    ASSERT_EQ(writers[i]->error(), "") << "seed " << seed;
    std::cout << "[mesh] node " << mesh[i].id() << ":";
    for (const auto& [op, n] : writers[i]->counts()) std::cout << " " << op << "=" << n;
    std::cout << "\n";
  }

  ASSERT_TRUE(mesh.WaitForConvergence(120s)) << "seed " << seed;
  std::vector<std::string> first = mesh[0].Dump();
  for (size_t i = 0; i < mesh.size(); ++i) {
    std::vector<std::string> dump = mesh[i].Dump();
    EXPECT_EQ(dump, first) << "seed " << seed << ", node " << mesh[i].id() << ": "
                           << DumpDiff(first, dump);
    std::vector<std::string> problems = mesh[i].Sanity();
    std::string all;
    for (const auto& p : problems) all += p + "\n";
    EXPECT_TRUE(problems.empty()) << "seed " << seed << ", node " << mesh[i].id()
                                  << " is not DNS-sane:\n"
                                  << all;
    auto conn = mesh[i].Connect();
    EXPECT_EQ(PhysicalDuplicates(*conn), "") << "seed " << seed << ", node " << mesh[i].id();
    std::cout << "[mesh] node " << mesh[i].id() << ": "
              << conn->Query("SELECT COUNT(*) FROM domains")[0][0].AsText() << " zones, "
              << conn->Query("SELECT COUNT(*) FROM records")[0][0].AsText() << " records, "
              << conn->Query("SELECT COUNT(*) FROM zm_conflict")[0][0].AsText()
              << " conflicts recorded, "
              << conn->Query("SELECT COUNT(*) FROM zm_parked")[0][0].AsText() << " parked\n";
  }
  mesh.StopAll();
}

// ------------------------------------------------------------------ 2 --

// A stopped peer: its queue grows on the writer, the other peer is not held
// back, and after a restart the stopped peer catches up exactly once.
TEST(MeshTest, StoppedPeerCatchesUpAfterRestart) {
  Cluster mesh(3, "stopped_peer");
  Node &a = mesh[0], &b = mesh[1], &c = mesh[2];
  mesh.StartAll();
  ASSERT_TRUE(mesh.WaitForConnected());

  ASSERT_EQ(c.Stop(), 0) << c.LogTail();

  // 1,000 changes on a: the zone (domains row + SOA) and 998 records, in
  // transactions of 20.
  constexpr int kChanges = 1000;
  {
    auto conn = a.Connect();
    WithTransaction(*conn, [&] { pdns::CreateZone(*conn, "bulk.test"); });
    int64_t zone_id = *pdns::ZoneId(*conn, "bulk.test");
    for (int i = 0; i < kChanges - 2;) {
      WithTransaction(*conn, [&] {
        for (int k = 0; k < 20 && i + k < kChanges - 2; ++k)
          pdns::InsertRecord(*conn, zone_id, "h" + std::to_string(i + k) + ".bulk.test", "A",
                             "192.0.2.10", 300);
      });
      i += 20;
    }
    ASSERT_EQ(conn->Query("SELECT COUNT(*) FROM zm_outbox")[0][0].AsInt(), kChanges);
  }

  json last;
  ASSERT_TRUE(mesh.WaitUntil("a's /status: queue_depth >= 1000 and disconnected for c, 0 for b", [&] {
    last = a.Status();
    json pc = PeerEntry(last, "c");
    return QueueDepth(last, "c") >= kChanges && !pc.value("connected", true) &&
           QueueDepth(last, "b") == 0;
  }));
  EXPECT_GE(QueueDepth(last, "c"), kChanges) << last.dump(2);
  EXPECT_FALSE(PeerEntry(last, "c").value("connected", true)) << last.dump(2);
  EXPECT_EQ(PeerEntry(last, "c").value("state", ""), "retrying") << last.dump(2);
  EXPECT_EQ(QueueDepth(last, "b"), 0) << last.dump(2);
  EXPECT_TRUE(PeerEntry(last, "b").value("connected", false)) << last.dump(2);

  // b got everything while c was down, and queues nothing for c: it never
  // forwards a's changes.
  ASSERT_TRUE(mesh.WaitUntil("b holds a's data", [&] { return b.Checksum() == a.Checksum(); }));
  json bs = b.Status();
  EXPECT_EQ(QueueDepth(bs, "c"), 0) << bs.dump(2);
  EXPECT_EQ(ChangesApplied(bs, "a"), kChanges) << bs.dump(2);

  c.Start();
  ASSERT_TRUE(mesh.WaitForConvergence());
  std::vector<std::string> dump = a.Dump();
  EXPECT_EQ(b.Dump(), dump);
  EXPECT_EQ(c.Dump(), dump);
  EXPECT_EQ(std::count_if(dump.begin(), dump.end(),
                          [](const std::string& l) { return l.find("\"t\":\"records\"") != std::string::npos; }),
            kChanges - 1);
  json as = a.Status();
  EXPECT_EQ(QueueDepth(as, "c"), 0) << as.dump(2);
  EXPECT_TRUE(PeerEntry(as, "c").value("connected", false)) << as.dump(2);
  // Exactly once: c applied each of a's changes one time.
  json cs = c.Status();
  EXPECT_EQ(ChangesApplied(cs, "a"), kChanges) << cs.dump(2);
  auto aconn = a.Connect();
  auto cconn = c.Connect();
  EXPECT_EQ(AppliedFrom(*cconn, "a"), Cluster::LastStamped(*aconn));
  EXPECT_EQ(PhysicalDuplicates(*cconn), "");
  mesh.StopAll();
}

// ------------------------------------------------------------------ 3 --

// SIGKILL of a receiver and of a sender in the middle of a stream: nothing
// is lost and nothing is applied twice.
TEST(MeshTest, KillNineMidStreamLosesNothingAndAppliesNothingTwice) {
  Cluster mesh(3, "kill9", json{{"batch_max_changes", 25}});
  Node &a = mesh[0], &b = mesh[1];
  mesh.StartAll();
  ASSERT_TRUE(mesh.WaitForConnected());
  {
    auto conn = a.Connect();
    WithTransaction(*conn, [&] { pdns::CreateZone(*conn, "kill.test"); });
  }
  AppendWriter writer(a, "kill.test");
  writer.Start();

  auto applied_on = [&](Node& n) { return ChangesApplied(n.Status(), "a"); };

  // Round 1: b dies while receiving.
  ASSERT_TRUE(mesh.WaitUntil("b applies a's stream", [&] { return applied_on(b) >= 100; }));
  b.Kill();
  std::cout << "[mesh] killed b (receiving) after " << writer.committed() << " records\n";
  ASSERT_TRUE(mesh.WaitUntil("a queues >= 300 changes for b",
                             [&] { return QueueDepth(a.Status(), "b") >= 300; }));
  b.Start();
  // b catches up on the backlog in batches of 25: kill it in the middle.
  ASSERT_TRUE(mesh.WaitUntil("restarted b receives the backlog", [&] { return applied_on(b) >= 1; },
                             kDefaultDeadline));
  b.Kill();
  std::cout << "[mesh] killed b again while it caught up; a's queue for b: "
            << QueueDepth(a.Status(), "b") << "\n";
  b.Start();
  ASSERT_TRUE(mesh.WaitUntil("b receives again", [&] { return applied_on(b) >= 25; }));

  // Round 2: a dies while sending; its writer goes on writing.
  ASSERT_TRUE(mesh.WaitUntil("a is sending", [&] {
    json s = a.Status();
    return PeerEntry(s, "b").value("batches_sent", 0) > 0 &&
           PeerEntry(s, "c").value("batches_sent", 0) > 0;
  }));
  a.Kill();
  size_t at_kill = writer.committed();
  std::cout << "[mesh] killed a (sending) after " << at_kill << " records\n";
  ASSERT_TRUE(mesh.WaitUntil("the writer goes on while a is down",
                             [&] { return writer.committed() >= at_kill + 300; }));
  a.Start();
  ASSERT_TRUE(mesh.WaitUntil("restarted a sends its backlog", [&] {
    json s = a.Status();
    return PeerEntry(s, "b").value("batches_sent", 0) > 0 ||
           PeerEntry(s, "c").value("batches_sent", 0) > 0;
  }));
  a.Kill();
  std::cout << "[mesh] killed a again while it sent its backlog\n";
  a.Start();

  size_t before_stop = writer.committed();
  ASSERT_TRUE(mesh.WaitUntil("the writer goes on after the restarts",
                             [&] { return writer.committed() >= before_stop + 100; }));
  writer.Stop();
  ASSERT_EQ(writer.error(), "");
  std::vector<std::string> written = writer.names();
  std::cout << "[mesh] " << written.size() << " records written on a\n";

  ASSERT_TRUE(mesh.WaitForConvergence(120s));

  std::vector<std::string> reference = a.Dump();
  auto aconn = a.Connect();
  const Position a_last = Cluster::LastStamped(*aconn);
  EXPECT_EQ(aconn->Query("SELECT COUNT(*) FROM zm_outbox")[0][0].AsInt(),
            static_cast<int64_t>(written.size()) + 2)
      << "every committed change was captured exactly once";
  for (Node* n : mesh.nodes()) {
    auto conn = n->Connect();
    std::set<std::string> present;
    for (const db::Row& r : conn->Query(
             "SELECT r.name FROM records r JOIN domains d ON d.id = r.domain_id "
             "WHERE d.name = 'kill.test' AND r.type = 'A'"))
      present.insert(r[0].AsText());
    std::vector<std::string> missing;
    for (const std::string& w : written)
      if (!present.count(w)) missing.push_back(w);
    EXPECT_TRUE(missing.empty()) << "node " << n->id() << " lacks " << missing.size()
                                 << " record(s), e.g. " << missing.front();
    EXPECT_EQ(present.size(), written.size()) << "node " << n->id();
    EXPECT_EQ(PhysicalDuplicates(*conn), "") << "node " << n->id();
    EXPECT_EQ(n->Dump(), reference) << "node " << n->id();
    if (n != &a) {
      EXPECT_EQ(AppliedFrom(*conn, "a"), a_last) << "node " << n->id() << "'s zm_applied for a";
    }
  }
  mesh.StopAll();
}

// ------------------------------------------------------------------ 4 --

// Applied changes are never captured again, and an idle mesh sends nothing.
TEST(MeshTest, NoEchoAndIdleMeshSendsNothing) {
  Cluster mesh(3, "no_echo");
  mesh.StartAll();
  ASSERT_TRUE(mesh.WaitForConnected());
  Node& a = mesh[0];
  {
    auto conn = a.Connect();
    WithTransaction(*conn, [&] {
      for (const std::string z : {"one.test", "two.test", "three.test"}) {
        int64_t id = pdns::CreateZone(*conn, z);
        pdns::ReplaceRRset(*conn, id, "www." + z, "A", {"192.0.2.1", "192.0.2.2"}, 300);
        pdns::SetMetadata(*conn, id, "ALSO-NOTIFY", {"192.0.2.53"});
      }
      pdns::SetTsigKey(*conn, "echo-key", "hmac-sha256", "c2VjcmV0");
    });
    WithTransaction(*conn, [&] {
      int64_t id = *pdns::ZoneId(*conn, "two.test");
      pdns::ReplaceRRset(*conn, id, "www.two.test", "A", {"192.0.2.3"}, 600);
      conn->Execute("UPDATE records SET ttl = 900 WHERE domain_id = ? AND type = 'SOA'", {id});
      pdns::SetMetadata(*conn, id, "SOA-EDIT", {"EPOCH"});
      pdns::DeleteZone(*conn, *pdns::ZoneId(*conn, "three.test"));
      pdns::DeleteTsigKey(*conn, "echo-key");
      // Node-local columns PowerDNS updates itself produce no change.
      conn->Execute("UPDATE domains SET notified_serial = 5, last_check = 7");
    });
  }
  ASSERT_TRUE(mesh.WaitForConvergence());
  {
    auto conn = a.Connect();
    EXPECT_GT(conn->Query("SELECT COUNT(*) FROM zm_outbox")[0][0].AsInt(), 0);
  }
  for (Node* n : {&mesh[1], &mesh[2]}) {
    auto conn = n->Connect();
    EXPECT_EQ(conn->Query("SELECT COUNT(*) FROM zm_outbox")[0][0].AsInt(), 0)
        << "node " << n->id() << " captured applied changes again";
    EXPECT_GT(conn->Query("SELECT COUNT(*) FROM records")[0][0].AsInt(), 0);
  }

  auto counters = [&] {
    std::map<std::string, std::pair<int64_t, int64_t>> out;
    for (Node* n : mesh.nodes()) {
      json s = n->Status();
      for (const json& p : s["peers"]) {
        out[n->id() + "->" + p.value("id", "?")] = {p.value("batches_sent", int64_t{-1}),
                                                    p.value("changes_sent", int64_t{-1})};
      }
    }
    return out;
  };
  auto before = counters();
  for (const auto& [link, sent] : before) {
    if (link[0] != 'a') {
      EXPECT_EQ(sent.first, 0) << link << " sent batches without local changes";
    }
  }
  std::this_thread::sleep_for(3s);
  auto after = counters();
  EXPECT_EQ(after, before) << "an idle mesh sent batches";
  for (Node* n : {&mesh[1], &mesh[2]}) {
    auto conn = n->Connect();
    EXPECT_EQ(conn->Query("SELECT COUNT(*) FROM zm_outbox")[0][0].AsInt(), 0);
  }
  mesh.StopAll();
}

// ---------------------------------------------------------------- 4b --

// Zone incarnations across a partition (design brief 3): while c's daemon is
// down, a deletes and re-creates one zone and edits another that c deletes;
// c edits the old incarnation of the first. After the restart no node keeps
// data of a deleted incarnation, and a delete beats concurrent edits.
TEST(MeshTest, DeletedZoneIncarnationsDoNotComeBack) {
  Cluster mesh(3, "incarnations");
  Node &a = mesh[0], &c = mesh[2];
  mesh.StartAll();
  ASSERT_TRUE(mesh.WaitForConnected());
  {
    auto conn = a.Connect();
    WithTransaction(*conn, [&] {
      for (const std::string z : {"re.test", "gone.test"}) {
        int64_t id = pdns::CreateZone(*conn, z, 1);
        pdns::InsertRecord(*conn, id, "www." + z, "A", "192.0.2.1", 300);
        pdns::SetMetadata(*conn, id, "SOA-EDIT", {"EPOCH"});
      }
    });
  }
  ASSERT_TRUE(mesh.WaitForConvergence());
  ASSERT_EQ(c.Stop(), 0) << c.LogTail();

  {
    auto conn = a.Connect();
    WithTransaction(*conn, [&] { pdns::DeleteZone(*conn, *pdns::ZoneId(*conn, "re.test")); });
    WithTransaction(*conn, [&] {
      int64_t id = pdns::CreateZone(*conn, "re.test", 100);
      pdns::InsertRecord(*conn, id, "new.re.test", "A", "192.0.2.2", 300);
    });
    WithTransaction(*conn, [&] {
      pdns::InsertRecord(*conn, *pdns::ZoneId(*conn, "gone.test"), "late.gone.test", "A",
                         "192.0.2.3", 300);
    });
  }
  {
    // Written into c's database while its daemon is down.
    auto conn = c.Connect();
    WithTransaction(*conn, [&] {
      int64_t id = *pdns::ZoneId(*conn, "re.test");
      pdns::InsertRecord(*conn, id, "old.re.test", "A", "192.0.2.4", 300);
      pdns::SetMetadata(*conn, id, "X-OLD", {"old incarnation"});
    });
    WithTransaction(*conn, [&] { pdns::DeleteZone(*conn, *pdns::ZoneId(*conn, "gone.test")); });
  }
  c.Start();
  ASSERT_TRUE(mesh.WaitForConvergence());

  std::vector<std::string> reference = a.Dump();
  for (Node* n : mesh.nodes()) {
    EXPECT_EQ(n->Dump(), reference) << "node " << n->id() << ": " << DumpDiff(reference, n->Dump());
    EXPECT_TRUE(n->Sanity().empty()) << "node " << n->id();
    auto conn = n->Connect();
    auto names = [&](const std::string& zone) {
      std::set<std::string> out;
      for (const db::Row& r : conn->Query(
               "SELECT r.name || ' ' || r.type FROM records r JOIN domains d ON d.id = r.domain_id "
               "WHERE d.name = ?",
               {zone}))
        out.insert(r[0].AsText());
      return out;
    };
    EXPECT_EQ(names("re.test"), (std::set<std::string>{"re.test SOA", "new.re.test A"}))
        << "node " << n->id();
    EXPECT_FALSE(pdns::ZoneId(*conn, "gone.test").has_value()) << "node " << n->id();
    auto soa = conn->Query(
        "SELECT r.content FROM records r JOIN domains d ON d.id = r.domain_id "
        "WHERE d.name = 're.test' AND r.type = 'SOA'");
    ASSERT_EQ(soa.size(), 1u) << "node " << n->id();
    // The new incarnation's serial clock starts at the serial it was
    // created with (100; the old one's was 1) and counts its own changes.
    const std::optional<uint32_t> serial = schema::SoaSerial(soa[0][0].AsText());
    EXPECT_TRUE(serial && *serial >= 100 && *serial <= 103)
        << "node " << n->id() << " has the old incarnation's SOA " << soa[0][0].AsText();
    EXPECT_EQ(conn->Query("SELECT COUNT(*) FROM domainmetadata")[0][0].AsInt(), 0)
        << "node " << n->id() << " kept metadata of a deleted incarnation";
    EXPECT_EQ(conn->Query("SELECT COUNT(*) FROM records WHERE domain_id NOT IN (SELECT id FROM domains)")[0][0].AsInt(), 0);
    EXPECT_EQ(conn->Query("SELECT COUNT(*) FROM zm_parked")[0][0].AsInt(), 0)
        << "node " << n->id() << " still parks changes";
  }
  mesh.StopAll();
}

// ------------------------------------------------------------------ 5 --

// Sends raw bytes to 127.0.0.1:port, optionally half-closes, and returns
// everything the server answers until it closes (or 10 s pass).
std::string RawExchange(uint16_t port, const std::string& bytes, bool half_close) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    throw std::runtime_error("connect failed");
  }
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  if (half_close) shutdown(fd, SHUT_WR);
  std::string answer;
  auto end = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < end) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return answer;
}

// A push from peer "ghost" holding zone `zone` (domains row + SOA) at
// positions (csn, 1) and (csn, 2).
Batch GhostBatch(const std::string& target, const std::string& zone, int64_t csn) {
  Batch b;
  b.origin = "ghost";
  b.target = target;
  b.fingerprint = MeshFingerprint(conflict::Policy("latest-wins", {}));
  b.after = {csn - 1, 0};
  const int64_t hlc = NowMicros();
  Change d;
  d.pos = {csn, 1};
  d.spec = schema::FindTable("domains");
  d.op = 'U';
  d.row.values = {db::Value(zone), db::Value(""), db::Value("NATIVE"), db::Value(""),
                  db::Value(), db::Value()};
  d.version = {hlc, "ghost"};
  d.vv.Set("ghost", hlc);
  d.key = schema::EncodeKey(*d.spec, d.row);
  b.changes.push_back(d);
  Change s;
  s.pos = {csn, 2};
  s.spec = schema::FindTable("records");
  s.op = 'U';
  s.row.zone = zone;
  s.row.values = {db::Value(zone),
                  db::Value("SOA"),
                  db::Value("ns1." + zone + ". hostmaster." + zone + ". 1 10800 3600 604800 3600"),
                  db::Value(int64_t{3600}),
                  db::Value(int64_t{0}),
                  db::Value(false),
                  db::Value(),
                  db::Value(true)};
  s.version = {hlc + 1, "ghost"};
  s.vv.Set("ghost", hlc + 1);
  s.key = schema::EncodeKey(*s.spec, s.row);
  b.changes.push_back(s);
  return b;
}

// Malformed or truncated pushes get 400 with a reason and change nothing;
// the node keeps serving.
TEST(MeshTest, MalformedPushIsRejectedAndChangesNothing) {
  const std::string dir = ScratchDir() + "/bad_push";
  std::filesystem::remove_all(dir);
  {
    // Node "b" with one configured peer, "ghost", that never runs: the test
    // speaks for it. (b starts empty and alone: no initial snapshot to wait for.)
    Node b("b", dir + "/b", FreeLoopbackPort());
    b.WriteConfig({{"ghost", "http://127.0.0.1:" + std::to_string(FreeLoopbackPort())}},
                  json{{"initial_join", false}});
    b.Install();
    b.Start();

    // A well-formed push is applied: the malformed ones below differ from it
    // only where they are broken.
    Batch good = GhostBatch("b", "control.test", 1);
    Node::HttpResult ok = b.Http("POST", "/v1/push", EncodeBatch(good));
    ASSERT_EQ(ok.status, 200) << ok.body << "\n" << b.LogTail();
    ASSERT_TRUE(PollUntil([&] { return b.Sanity().empty(); }, 10s));
    const std::vector<std::string> baseline = b.Dump();
    ASSERT_EQ(baseline.size(), 2u);
    std::string applied_before;
    {
      auto conn = b.Connect();
      applied_before = AppliedFrom(*conn, "ghost").ToString();
    }

    json next = json::parse(EncodeBatch(GhostBatch("b", "evil.test", 2)));
    auto variant = [&](const std::function<void(json&)>& edit) {
      json j = next;
      edit(j);
      return j.dump();
    };
    const std::string valid_next = next.dump();
    struct Case {
      std::string name;
      std::string body;
      std::string reason;  // expected in the error message
    };
    std::vector<Case> cases = {
        {"garbage", "\x01\x02 this is not json {{{", "not valid JSON"},
        {"empty body", "", "not valid JSON"},
        {"truncated batch", valid_next.substr(0, valid_next.size() / 2), "not valid JSON"},
        {"truncated by one byte", valid_next.substr(0, valid_next.size() - 1), "not valid JSON"},
        {"not an object", "[1, 2, 3]", "object"},
        {"unknown table", variant([](json& j) { j["changes"][1]["t"] = "nosuchtable"; }),
         "nosuchtable"},
        {"key does not match row",
         variant([](json& j) { j["changes"][1]["k"] = "evil.test|evil.test|SOA|%N|tampered"; }),
         "does not match"},
        {"row changed under its key",
         variant([](json& j) { j["changes"][0]["v"][0] = "other.test"; }), "does not match"},
        {"wrong column count", variant([](json& j) { j["changes"][1]["v"].erase(0); }),
         "replicated columns"},
        {"wrong value type", variant([](json& j) { j["changes"][1]["v"][3] = "3600"; }),
         "ttl"},
        {"missing field", variant([](json& j) { j["changes"][0].erase("h"); }), "\"h\""},
        {"protocol version", variant([](json& j) { j["v"] = 99; }), "protocol version"},
        {"positions go backwards",
         variant([](json& j) { j["changes"][1]["p"] = json::array({1, 1}); }), "increase"},
    };
    for (const Case& c : cases) {
      Node::HttpResult r = b.Http("POST", "/v1/push", c.body);
      EXPECT_EQ(r.status, 400) << c.name << ": " << r.body;
      json err = json::parse(r.body, nullptr, false);
      ASSERT_TRUE(err.is_object() && err.contains("error") && err["error"].is_string())
          << c.name << ": " << r.body;
      EXPECT_NE(err["error"].get<std::string>().find(c.reason), std::string::npos)
          << c.name << ": the error should say \"" << c.reason << "\": " << r.body;
      EXPECT_EQ(b.Dump(), baseline) << c.name << " changed data";
      Node::HttpResult st = b.Http("GET", "/status");
      EXPECT_EQ(st.status, 200) << "after " << c.name << ": " << st.body;
    }

    // Broken at the HTTP level: a body shorter than its Content-Length (the
    // sender went away), a request line that is not HTTP, a body over the
    // size limit. Each gets an error status with a JSON reason, or at worst
    // a closed connection; none changes data or stops the node.
    struct RawCase {
      std::string name;
      std::string bytes;
      bool half_close;
      std::string status_line;  // expected answer
    };
    auto post = [&](const std::string& body, size_t content_length) {
      return "POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             "Content-Length: " +
             std::to_string(content_length) + "\r\n\r\n" + body;
    };
    std::vector<RawCase> raw_cases = {
        {"body shorter than Content-Length",
         post(valid_next.substr(0, valid_next.size() / 2), valid_next.size()), true,
         "HTTP/1.1 400"},
        {"not HTTP", "\x16\x03\x01 binary garbage, not a request line\r\n\r\n", false,
         "HTTP/1.1 400"},
        {"body over max_request_bytes", post("", size_t{1} << 40), false, "HTTP/1.1 413"},
    };
    for (const RawCase& c : raw_cases) {
      std::string answer = RawExchange(b.port(), c.bytes, c.half_close);
      EXPECT_EQ(answer.substr(0, c.status_line.size()), c.status_line)
          << c.name << ": answered\n" << answer;
      size_t body_at = answer.find("\r\n\r\n");
      json err = body_at == std::string::npos ? json() : json::parse(answer.substr(body_at + 4), nullptr, false);
      EXPECT_TRUE(err.is_object() && err.contains("error") && err["error"].is_string())
          << c.name << ": answered\n" << answer;
      EXPECT_EQ(b.Dump(), baseline) << c.name << " changed data";
      EXPECT_EQ(b.Http("GET", "/status").status, 200) << "after " << c.name;
    }

    // The node still works: status counts the rejections, and the well-formed
    // version of the same push is applied.
    json s = b.Status();
    EXPECT_GE(s.value("rejected_requests", int64_t{0}), static_cast<int64_t>(cases.size()))
        << s.dump(2);
    {
      auto conn = b.Connect();
      EXPECT_EQ(AppliedFrom(*conn, "ghost").ToString(), applied_before);
      EXPECT_EQ(conn->Query("SELECT COUNT(*) FROM zm_outbox")[0][0].AsInt(), 0);
      EXPECT_EQ(conn->Query("SELECT COUNT(*) FROM zm_conflict")[0][0].AsInt(), 0);
    }
    Node::HttpResult fine = b.Http("POST", "/v1/push", valid_next);
    EXPECT_EQ(fine.status, 200) << fine.body;
    EXPECT_EQ(b.Dump().size(), 4u);
    EXPECT_EQ(b.Http("GET", "/health").status, 200);
    EXPECT_EQ(b.Stop(), 0) << b.LogTail();
    if (::testing::Test::HasFailure()) std::cerr << "[mesh] node b log:\n" << b.LogTail(40);
  }
  if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace zonemesh::testing
