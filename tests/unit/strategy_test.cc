// Conflict strategies decided on hand-built concurrent states.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "conflict/strategy.h"
#include "schema/key.h"
#include "tests/support/test_db.h"

namespace zonemesh::conflict {
namespace {

using db::Value;
using schema::RowImage;
using schema::Version;

const schema::TableSpec& Records() { return *schema::FindTable("records"); }

RowImage Record(const std::string& name, const std::string& type, const std::string& content,
                int64_t ttl) {
  RowImage r;
  r.zone = "example.com";
  r.values = {Value(name), Value(type), Value(content), Value(ttl), Value(int64_t{0}),
              Value(false), Value(), Value(true)};
  return r;
}

RowImage Soa(int64_t serial, int64_t ttl = 3600) {
  return Record("example.com", "SOA",
                "ns1.example.com. hostmaster.example.com. " + std::to_string(serial) +
                    " 10800 3600 604800 3600",
                ttl);
}

RowState State(const RowImage* row, int64_t hlc, const std::string& node, bool exists = true) {
  RowState s;
  s.exists = exists;
  s.row = row;
  s.version = {hlc, node};
  s.vv.Set(node, hlc);
  return s;
}

Decision Decide(const Strategy& s, const RowState& local, const RowState& remote,
                const schema::TableSpec& spec = Records()) {
  const RowImage* any = remote.row ? remote.row : local.row;
  std::string key = any ? schema::EncodeKey(spec, *any) : "k";
  return s.Resolve({spec, key, local, remote});
}

// Which side a decision keeps: 0 local, 1 remote.
int Winner(const Decision& d) { return d.resolution == Resolution::kTakeRemote ? 1 : 0; }

// Every node must pick the same row whichever side it holds.
void ExpectSymmetric(const Strategy& s, const RowState& a, const RowState& b) {
  int ab = Winner(Decide(s, a, b));  // a local: 1 means b wins
  int ba = Winner(Decide(s, b, a));  // b local: 1 means a wins
  EXPECT_NE(ab, ba) << s.Name() << ": both nodes would keep their own row";
}

TEST(LatestWins, HigherVersionWinsAndNodeIdBreaksTies) {
  auto s = MakeLatestWins();
  RowImage a = Record("www.example.com", "A", "192.0.2.1", 60);
  RowImage b = Record("www.example.com", "A", "192.0.2.1", 120);
  EXPECT_EQ(Decide(*s, State(&a, 10, "ns1"), State(&b, 11, "ns2")).resolution,
            Resolution::kTakeRemote);
  EXPECT_EQ(Decide(*s, State(&a, 11, "ns1"), State(&b, 10, "ns2")).resolution,
            Resolution::kKeepLocal);
  EXPECT_EQ(Decide(*s, State(&a, 10, "ns1"), State(&b, 10, "ns2")).resolution,
            Resolution::kTakeRemote);
  EXPECT_EQ(Decide(*s, State(&a, 10, "ns2"), State(&b, 10, "ns1")).resolution,
            Resolution::kKeepLocal);
  EXPECT_EQ(s->Name(), "latest-wins");
}

TEST(Priority, HigherPriorityOriginWinsEvenWithAnOlderVersion) {
  auto s = MakePriority({"ns2", "ns1"});
  RowImage a = Record("www.example.com", "A", "192.0.2.1", 60);
  RowImage b = Record("www.example.com", "A", "192.0.2.1", 120);
  // ns2 ranks first: its older change beats ns1's newer one.
  EXPECT_EQ(Decide(*s, State(&a, 20, "ns1"), State(&b, 10, "ns2")).resolution,
            Resolution::kTakeRemote);
  EXPECT_EQ(Decide(*s, State(&b, 10, "ns2"), State(&a, 20, "ns1")).resolution,
            Resolution::kKeepLocal);
  // A listed node beats an unlisted one; unlisted nodes fall back to versions.
  EXPECT_EQ(Decide(*s, State(&a, 20, "ns9"), State(&b, 10, "ns1")).resolution,
            Resolution::kTakeRemote);
  EXPECT_EQ(Decide(*s, State(&a, 20, "ns8"), State(&b, 10, "ns9")).resolution,
            Resolution::kKeepLocal);
  EXPECT_EQ(Decide(*s, State(&a, 10, "ns8"), State(&b, 20, "ns9")).resolution,
            Resolution::kTakeRemote);
  EXPECT_EQ(s->Name(), "priority(ns2,ns1)");
  EXPECT_NE(MakePriority({"ns1", "ns2"})->Name(), s->Name());
}

TEST(SoaSerial, SerialArithmeticFollowsRfc1982) {
  EXPECT_TRUE(SerialGreater(2, 1));
  EXPECT_FALSE(SerialGreater(1, 2));
  EXPECT_FALSE(SerialGreater(5, 5));
  EXPECT_TRUE(SerialGreater(1, 4294967295u));  // wrapped around
  EXPECT_FALSE(SerialGreater(4294967295u, 1));
  EXPECT_TRUE(SerialGreater(2147483647u, 0));
  EXPECT_FALSE(SerialGreater(2147483648u, 0));  // exactly half: undefined
  EXPECT_FALSE(SerialGreater(0, 2147483648u));
}

TEST(SoaSerial, HigherSerialWinsEvenWhenWrittenEarlier) {
  auto s = MakeSoaSerial();
  RowImage high = Soa(2024010102), low = Soa(2024010101);
  EXPECT_EQ(Decide(*s, State(&low, 20, "ns1"), State(&high, 10, "ns2")).resolution,
            Resolution::kTakeRemote);
  EXPECT_EQ(Decide(*s, State(&high, 10, "ns2"), State(&low, 20, "ns1")).resolution,
            Resolution::kKeepLocal);
  RowImage wrapped = Soa(3), before_wrap = Soa(4294967290);
  EXPECT_EQ(Decide(*s, State(&before_wrap, 20, "ns1"), State(&wrapped, 10, "ns2")).resolution,
            Resolution::kTakeRemote);
}

TEST(SoaSerial, EqualSerialsOtherRowsAndDeletesFallBackToLatestWins) {
  auto s = MakeSoaSerial();
  RowImage a = Soa(7, 60), b = Soa(7, 120);
  EXPECT_EQ(Decide(*s, State(&a, 10, "ns1"), State(&b, 20, "ns2")).resolution,
            Resolution::kTakeRemote);
  RowImage x = Record("www.example.com", "A", "192.0.2.1", 60);
  RowImage y = Record("www.example.com", "A", "192.0.2.1", 120);
  EXPECT_EQ(Decide(*s, State(&x, 30, "ns1"), State(&y, 20, "ns2")).resolution,
            Resolution::kKeepLocal);
  RowImage soa = Soa(9);
  EXPECT_EQ(Decide(*s, State(&soa, 10, "ns1"), State(&soa, 20, "ns2", /*exists=*/false)).resolution,
            Resolution::kTakeRemote);
}

TEST(Manual, ParksTheIncomingChange) {
  auto s = MakeManual();
  RowImage a = Record("www.example.com", "A", "192.0.2.1", 60);
  RowImage b = Record("www.example.com", "A", "192.0.2.1", 120);
  Decision d = Decide(*s, State(&a, 10, "ns1"), State(&b, 20, "ns2"));
  EXPECT_EQ(d.resolution, Resolution::kPark);
  EXPECT_NE(d.reason.find("ns2"), std::string::npos);
}

std::string PluginPath() { return testing::BuiltPluginPath(); }

TEST(CustomPlugin, MergesTheNewerRowWithTheLargerTtl) {
  auto s = MakePlugin(PluginPath());
  EXPECT_EQ(s->Name(), "custom:ttl-keeper/1");
  RowImage old_big = Record("www.example.com", "A", "192.0.2.1", 3600);
  RowImage new_small = Record("www.example.com", "A", "192.0.2.1", 60);
  new_small.values[5] = Value(true);  // the newer edit also disabled the record
  Decision d = Decide(*s, State(&old_big, 10, "ns1"), State(&new_small, 20, "ns2"));
  ASSERT_EQ(d.resolution, Resolution::kMerge) << d.reason;
  ASSERT_TRUE(d.merged.has_value());
  EXPECT_EQ(d.merged->values[3], Value(int64_t{3600}));  // the larger TTL
  EXPECT_EQ(d.merged->values[5], Value(true));           // the rest from the newer row
  EXPECT_EQ(d.merged->zone, std::optional<std::string>("example.com"));
  // The other node, holding the other side, merges to the same row.
  Decision mirror = Decide(*s, State(&new_small, 20, "ns2"), State(&old_big, 10, "ns1"));
  ASSERT_EQ(mirror.resolution, Resolution::kMerge);
  EXPECT_EQ(*mirror.merged, *d.merged);
}

TEST(CustomPlugin, DeletesAndOtherTablesFollowVersions) {
  auto s = MakePlugin(PluginPath());
  RowImage a = Record("www.example.com", "A", "192.0.2.1", 60);
  EXPECT_EQ(Decide(*s, State(&a, 10, "ns1"), State(&a, 20, "ns2", /*exists=*/false)).resolution,
            Resolution::kTakeRemote);
  const schema::TableSpec& tsig = *schema::FindTable("tsigkeys");
  RowImage k1, k2;
  k1.values = {Value("k"), Value("hmac-sha256"), Value("old")};
  k2.values = {Value("k"), Value("hmac-sha256"), Value("new")};
  EXPECT_EQ(Decide(*s, State(&k1, 30, "ns1"), State(&k2, 20, "ns2"), tsig).resolution,
            Resolution::kKeepLocal);
}

TEST(CustomPlugin, UnloadableLibraryIsAClearError) {
  try {
    MakePlugin("/nonexistent/plugin.so");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/plugin.so"), std::string::npos);
  }
  // A shared library that is not a zonemesh plug-in.
  try {
    MakePlugin("libc.so.6");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("zonemesh_plugin_abi"), std::string::npos) << e.what();
  }
}

TEST(Strategies, DecideTheSameWayWhicheverSideIsLocal) {
  std::mt19937 rng(7);
  std::vector<std::unique_ptr<Strategy>> all;
  all.push_back(MakeLatestWins());
  all.push_back(MakePriority({"ns3", "ns1"}));
  all.push_back(MakeSoaSerial());
  if (!PluginPath().empty()) all.push_back(MakePlugin(PluginPath()));
  const char* nodes[] = {"ns1", "ns2", "ns3", "ns4"};
  for (int i = 0; i < 300; ++i) {
    RowImage a = Soa(rng() % 5, 60 + rng() % 3), b = Soa(rng() % 5, 60 + rng() % 3);
    int64_t ha = 1 + rng() % 4, hb = 1 + rng() % 4;
    std::string na = nodes[rng() % 4], nb = nodes[rng() % 4];
    if (ha == hb && na == nb) continue;  // the same version is the same change
    for (const auto& s : all) {
      Decision ab = Decide(*s, State(&a, ha, na), State(&b, hb, nb));
      Decision ba = Decide(*s, State(&b, hb, nb), State(&a, ha, na));
      if (ab.resolution == Resolution::kMerge || ba.resolution == Resolution::kMerge) {
        ASSERT_EQ(ab.resolution, ba.resolution) << s->Name();
        EXPECT_EQ(*ab.merged, *ba.merged) << s->Name();
      } else {
        ExpectSymmetric(*s, State(&a, ha, na), State(&b, hb, nb));
      }
    }
  }
}

TEST(Policy, PerTableStrategiesAndDescription) {
  Policy p("latest-wins", {{"records", "soa-serial"}, {"tsigkeys", "priority"}},
           StrategyOptions{{"ns1", "ns2"}, ""});
  EXPECT_EQ(p.For("records").Name(), "soa-serial");
  EXPECT_EQ(p.For("tsigkeys").Name(), "priority(ns1,ns2)");
  EXPECT_EQ(p.For("domains").Name(), "latest-wins");
  std::string d = p.Describe();
  EXPECT_NE(d.find("records=soa-serial;"), std::string::npos) << d;
  EXPECT_NE(d.find("tsigkeys=priority(ns1,ns2);"), std::string::npos) << d;
  EXPECT_NE(d, Policy("latest-wins", {}).Describe());
  EXPECT_THROW(Policy("priority", {}), std::invalid_argument);
  EXPECT_THROW(Policy("custom", {}), std::invalid_argument);
  EXPECT_THROW(Policy("newest", {}), std::invalid_argument);
}

}  // namespace
}  // namespace zonemesh::conflict
