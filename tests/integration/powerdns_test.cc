// Real PowerDNS end to end: three authoritative pdns_server processes, one
// per database (gsqlite3 on SQLite, gpgsql on PostgreSQL, gmysql on
// MariaDB), a `zonemesh run` beside each, every cache of PowerDNS on.
// Changes are made the ways operators make them — pdnsutil and the HTTP API
// — on random nodes, and the servers are then asked over DNS: answers, AXFRs
// and (for rectified zones) the ordername/auth columns must agree everywhere.
//
// The caches are not only on, they are long-lived (packet, query and
// negative caches and the zone cache all 3600 s, records with TTL 3600;
// only the DNSSEC key and zone metadata caches are off, see PdnsServer):
// data written into a database behind a running pdns_server stays invisible
// for an hour unless something tells PowerDNS, so every check below, which
// polls with a generous deadline, can only pass because zonemesh flushes the
// local PowerDNS's caches (after applied batches and after local commits).
//
// Rectify: zonemesh does not re-run rectify. records.ordername and
// records.auth are replicated values, and empty-non-terminal rows (type
// NULL) are rows like any other, so the result of a rectify (pdnsutil
// rectify-zone, or the HTTP API's API-RECTIFY after an edit) made on one
// node is the result on every node. The test
// RectifiedZonesHaveTheSameOrdernameAuthAndEmptyNonTerminalsEverywhere
// checks that through SQL and through DNSSEC denial answers, which PowerDNS
// builds from ordername.
//
// Needs pdns_server with the gsqlite3/gpgsql/gmysql backends, pdnsutil and
// dig (scripts/install-deps.sh), and the test database servers.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/cluster.h"
#include "tests/support/pdns_harness.h"

namespace zonemesh::testing {
namespace {

using nlohmann::json;

// Deadline of every "eventually" check. Generous: nothing here measures time.
constexpr auto kDeadline = kPdnsDeadline;
constexpr int kTtl = 3600;

// ------------------------------------------------ the zones' expected state --

struct ZoneModel {
  bool exists = false;
  // (owner FQDN without dot, TYPE) -> rdata as dig prints it.
  std::map<std::pair<std::string, std::string>, std::set<std::string>> rrsets;
  // RRsets that were deleted: every server must answer without them.
  std::set<std::pair<std::string, std::string>> gone;
  // Metadata kind -> values, as set last.
  std::map<std::string, std::set<std::string>> meta;
};

// Makes changes through pdnsutil or the HTTP API on a chosen node and
// records what every server must then answer.
class Driver {
 public:
  Driver(PowerDnsMesh& m, uint32_t seed) : m_(m), rng_(seed) {}

  uint32_t Pick(uint32_t n) { return rng_() % n; }
  std::mt19937& rng() { return rng_; }
  std::map<std::string, ZoneModel>& zones() { return zones_; }

  // pdnsutil on node `n`, retried while the database reports a transient
  // failure (SQLite busy, a deadlock with the applier), as an operator would.
  void Pdnsutil(size_t n, const std::vector<std::string>& args) {
    CommandResult r;
    for (int attempt = 0; attempt < 30; ++attempt) {
      r = m_.server(n).Pdnsutil(args);
      if (r.exit_code == 0) {
        Log(n, "pdnsutil " + Join(args, " "));
        return;
      }
      if (!Transient(r.out + r.err)) break;
      Retried(n, "pdnsutil " + Join(args, " "), Tail(r.err + r.out, 1));
      std::this_thread::sleep_for(std::chrono::milliseconds(50 * (attempt + 1)));
    }
    throw std::runtime_error("on " + m_.server(n).name() + ": pdnsutil " + Join(args, " ") + ": " +
                             r.Brief());
  }

  // The HTTP API of node `n`; retried on a transient database error.
  json Api(size_t n, const std::string& method, const std::string& path, const json& body = nullptr) {
    Node::HttpResult r;
    for (int attempt = 0; attempt < 30; ++attempt) {
      r = m_.server(n).Api(method, path, body);
      if (r.status >= 200 && r.status < 300) {
        Log(n, "API " + method + " " + path + (body.is_null() ? "" : " " + body.dump()));
        return r.body.empty() ? json(nullptr) : json::parse(r.body, nullptr, false);
      }
      // PowerDNS answers a failed transaction ("database is locked" on
      // SQLite, a deadlock elsewhere) with a bare 500 and logs the reason;
      // the transaction was rolled back, so the call can be made again.
      if (!Transient(r.body) && r.status != 500) break;
      Retried(n, "API " + method + " " + path, "HTTP " + std::to_string(r.status) + " " + r.body);
      std::this_thread::sleep_for(std::chrono::milliseconds(50 * (attempt + 1)));
    }
    throw std::runtime_error("on " + m_.server(n).name() + ": API " + method + " " + path + " " +
                             (body.is_null() ? "" : body.dump()) + ": HTTP " + std::to_string(r.status) +
                             " " + r.body);
  }

  // An operation PowerDNS refused for a transient reason, made again.
  void Retried(size_t n, const std::string& what, const std::string& why) {
    ++retries_[m_.server(n).name()];
    std::cout << "[powerdns]   " << m_.server(n).name() << ": RETRY " << what << ": " << why << std::endl;
  }
  ~Driver() {
    for (const auto& [name, count] : retries_) {
      std::cout << "[powerdns] " << count << " PowerDNS operation(s) on " << name
                << " failed transiently and were made again" << std::endl;
    }
  }

  void Log(size_t n, const std::string& what) {
    std::cout << "[powerdns]   " << m_.server(n).name() << ": " << what << std::endl;
  }

  static std::string Fqdn(const std::string& label, const std::string& zone) {
    return label == "@" ? zone : label + "." + zone;
  }
  static json Records(const std::set<std::string>& contents) {
    json r = json::array();
    for (const std::string& c : contents) r.push_back({{"content", c}, {"disabled", false}});
    return r;
  }
  json RRset(const std::string& name, const std::string& type, const std::set<std::string>& contents,
             const std::string& changetype = "REPLACE") {
    json j{{"name", name + "."}, {"type", type}, {"changetype", changetype}};
    if (changetype == "REPLACE") {
      j["ttl"] = kTtl;
      j["records"] = Records(contents);
    }
    return j;
  }

  void CreateZone(size_t n, bool api, const std::string& zone) {
    ZoneModel& z = zones_[zone];
    z = ZoneModel{};
    const std::string www = "www." + zone;
    std::set<std::string> a = {"192.0.2." + std::to_string(1 + Pick(250))};
    if (api) {
      Api(n, "POST", "/zones",
          json{{"name", zone + "."},
               {"kind", "Native"},
               {"nameservers", json::array({"ns1." + zone + "."})},
               {"rrsets", json::array({RRset(www, "A", a)})}});
    } else {
      Pdnsutil(n, {"create-zone", zone, "ns1." + zone});
      Pdnsutil(n, {"add-record", zone, "www", "A", std::to_string(kTtl), *a.begin()});
    }
    z.exists = true;
    z.rrsets[{zone, "NS"}] = {"ns1." + zone + "."};
    z.rrsets[{www, "A"}] = a;
  }

  void ReplaceA(size_t n, bool api, const std::string& zone, const std::string& label) {
    const std::string name = Fqdn(label, zone);
    std::set<std::string> a;
    for (uint32_t i = 0, k = 1 + Pick(3); i < k; ++i) a.insert("198.51.100." + std::to_string(Pick(256)));
    if (api) {
      Api(n, "PATCH", "/zones/" + zone + ".", json{{"rrsets", json::array({RRset(name, "A", a)})}});
    } else {
      std::vector<std::string> args = {"replace-rrset", zone, label, "A", std::to_string(kTtl)};
      args.insert(args.end(), a.begin(), a.end());
      Pdnsutil(n, args);
    }
    zones_[zone].rrsets[{name, "A"}] = a;
    zones_[zone].gone.erase({name, "A"});
  }

  void AddTxt(size_t n, bool api, const std::string& zone, const std::string& label, const std::string& text) {
    const std::string name = Fqdn(label, zone);
    const std::string content = "\"" + text + "\"";
    std::set<std::string> all = zones_[zone].rrsets[{name, "TXT"}];
    all.insert(content);
    if (api) {
      // The API has no "add": REPLACE with the whole RRset.
      Api(n, "PATCH", "/zones/" + zone + ".", json{{"rrsets", json::array({RRset(name, "TXT", all)})}});
    } else {
      Pdnsutil(n, {"add-record", zone, label, "TXT", std::to_string(kTtl), content});
    }
    zones_[zone].rrsets[{name, "TXT"}] = all;
    zones_[zone].gone.erase({name, "TXT"});
  }

  void DeleteRRset(size_t n, bool api, const std::string& zone, const std::string& name, const std::string& type) {
    if (api) {
      Api(n, "PATCH", "/zones/" + zone + ".", json{{"rrsets", json::array({RRset(name, type, {}, "DELETE")})}});
    } else {
      std::string label = name == zone ? "@" : name.substr(0, name.size() - zone.size() - 1);
      Pdnsutil(n, {"delete-rrset", zone, label, type});
    }
    zones_[zone].rrsets.erase({name, type});
    zones_[zone].gone.insert({name, type});
  }

  void SetMeta(size_t n, bool api, const std::string& zone) {
    if (api) {
      std::set<std::string> v = {"value-" + std::to_string(Pick(1000)), "second-" + std::to_string(Pick(1000))};
      Api(n, "PUT", "/zones/" + zone + "./metadata/X-ZONEMESH-TEST",
          json{{"metadata", std::vector<std::string>(v.begin(), v.end())}});
      zones_[zone].meta["X-ZONEMESH-TEST"] = v;
    } else {
      std::set<std::string> v = {"192.0.2." + std::to_string(Pick(250))};
      Pdnsutil(n, {"set-meta", zone, "ALSO-NOTIFY", *v.begin()});
      zones_[zone].meta["ALSO-NOTIFY"] = v;
    }
  }

  void DeleteZone(size_t n, bool api, const std::string& zone) {
    if (api) {
      Api(n, "DELETE", "/zones/" + zone + ".");
    } else {
      Pdnsutil(n, {"delete-zone", zone});
    }
    zones_[zone] = ZoneModel{};
  }

  // One random change to `zone`, valid for its current state.
  void RandomChange(const std::string& zone, int round) {
    const size_t n = Pick(static_cast<uint32_t>(m_.size()));
    const bool api = Pick(2) == 0;
    ZoneModel& z = zones_[zone];
    if (!z.exists) return CreateZone(n, api, zone);
    static const std::vector<std::string> a_labels = {"www", "mail", "a.deep", "x.y.deep2"};
    static const std::vector<std::string> txt_labels = {"txt", "www", "t.deep"};
    switch (Pick(10)) {
      case 0:
      case 1:
      case 2:
        return ReplaceA(n, api, zone, a_labels[Pick(static_cast<uint32_t>(a_labels.size()))]);
      case 3:
      case 4:
        return AddTxt(n, api, zone, txt_labels[Pick(static_cast<uint32_t>(txt_labels.size()))],
                      "round " + std::to_string(round) + " via " + (api ? "api" : "pdnsutil") + " on " +
                          m_.server(n).name());
      case 5: {
        std::vector<std::pair<std::string, std::string>> deletable;
        for (const auto& [k, v] : z.rrsets) {
          if (k.first != zone) deletable.push_back(k);
        }
        if (deletable.empty()) return ReplaceA(n, api, zone, "www");
        const auto& k = deletable[Pick(static_cast<uint32_t>(deletable.size()))];
        return DeleteRRset(n, api, zone, k.first, k.second);
      }
      case 6:
      case 7:
        return SetMeta(n, api, zone);
      case 8:
        return Pdnsutil(n, {"rectify-zone", zone});
      case 9:
        return DeleteZone(n, api, zone);
    }
  }

  // Every server answers for `zone` what the model says, all alike, and
  // their AXFRs are identical.
  void Verify(const std::string& zone, const std::string& tag) {
    const ZoneModel& z = zones_[zone];
    if (!z.exists) {
      m_.Agree(tag + ": deleted zone " + zone + " SOA",
               [&](PdnsServer& s) { return s.Dig(zone, "SOA"); },
               [](const DnsAnswer& a) { return a.rcode == "REFUSED" ? "" : "expected REFUSED"; });
      return;
    }
    m_.Agree(tag + ": " + zone + " SOA", [&](PdnsServer& s) { return s.Dig(zone, "SOA"); },
             [&](const DnsAnswer& a) {
               return a.rcode == "NOERROR" && a.aa && a.Rdata(zone, "SOA").size() == 1 ? "" : "expected one SOA";
             });
    for (const auto& [key, contents] : z.rrsets) {
      const auto& [name, type] = key;
      m_.Agree(tag + ": " + name + " " + type, [&](PdnsServer& s) { return s.Dig(name, type); },
               [&](const DnsAnswer& a) -> std::string {
                 if (a.rcode != "NOERROR" || !a.aa) return "expected an authoritative NOERROR";
                 if (a.Rdata(name, type) != contents) return "expected " + Join({contents.begin(), contents.end()}, " | ");
                 return "";
               });
    }
    for (const auto& [name, type] : z.gone) {
      if (z.rrsets.count({name, type})) continue;
      m_.Agree(tag + ": deleted RRset " + name + " " + type, [&](PdnsServer& s) { return s.Dig(name, type); },
               [&](const DnsAnswer& a) -> std::string {
                 if (a.rcode != "NOERROR" && a.rcode != "NXDOMAIN") return "expected NOERROR or NXDOMAIN";
                 return a.Rdata(name, type).empty() ? "" : "the deleted RRset is still served";
               });
    }
    const std::string nx = "nx-" + tag + "." + zone;
    m_.Agree(tag + ": " + nx, [&](PdnsServer& s) { return s.Dig(nx, "A"); },
             [](const DnsAnswer& a) { return a.rcode == "NXDOMAIN" ? "" : "expected NXDOMAIN"; });
    m_.AxfrAgrees(zone);
    for (const auto& [kind, values] : z.meta) {
      std::vector<std::set<std::string>> got(m_.size());
      bool ok = PollUntil(
          [&] {
            for (size_t i = 0; i < m_.size(); ++i) {
              Node::HttpResult r = m_.server(i).Api("GET", "/zones/" + zone + "./metadata/" + kind);
              if (r.status != 200) return false;
              json j = json::parse(r.body);
              got[i].clear();
              for (const json& v : j["metadata"]) got[i].insert(v.get<std::string>());
              if (got[i] != values) return false;
            }
            return true;
          },
          kDeadline, std::chrono::milliseconds(250));
      EXPECT_TRUE(ok) << tag << ": metadata " << kind << " of " << zone << " should be "
                      << Join({values.begin(), values.end()}, ",") << " everywhere; " << m_.server(0).name()
                      << " has " << Join({got[0].begin(), got[0].end()}, ",");
    }
  }

 private:
  PowerDnsMesh& m_;
  std::mt19937 rng_;
  std::map<std::string, ZoneModel> zones_;
  std::map<std::string, int> retries_;
};

// name, type, content, ordername, auth, disabled of every row of the zone
// (empty non-terminals included), as text, sorted.
std::vector<std::string> ZoneRowsBySql(Node& node, const std::string& zone) {
  auto c = node.Connect();
  auto rows = c->Query(
      "SELECT r.name, r.type, r.content, r.ordername, CASE WHEN r.auth THEN 1 ELSE 0 END, "
      "CASE WHEN r.disabled THEN 1 ELSE 0 END, r.ttl "
      "FROM records r JOIN domains d ON d.id = r.domain_id WHERE d.name = ?",
      {zone});
  std::vector<std::string> out;
  for (const db::Row& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) line += (i ? " | " : "") + (r[i].IsNull() ? std::string("NULL") : r[i].AsText());
    out.push_back(line);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// ------------------------------------------------------------- the tests --

TEST(PowerDns, ThreeServersOnThreeDatabasesAnswerAlikeAfterPdnsutilAndApiChanges) {
  if (!HavePowerDns()) GTEST_SKIP() << "needs pdns_server, pdnsutil and dig (scripts/install-deps.sh)";
  const uint32_t seed = TestSeed("changes");
  PowerDnsMesh m("pdns-e2e");
  Guarded([&] { m.Start(); });
  if (::testing::Test::HasFailure()) return;
  Guarded([&] {
    Driver d(m, seed);

    // 1. A zone created with pdnsutil on node X is answered by node X itself:
    //    pdnsutil writes SQL behind X's running pdns_server, whose zone cache
    //    (refreshed hourly here) would keep answering REFUSED but for the
    //    flush zonemesh sends its own PowerDNS after a local commit.
    for (size_t i = 0; i < m.size(); ++i) {
      const std::string zone = "own-" + m.server(i).name() + ".example";
      ASSERT_EQ(m.server(i).Dig(zone, "SOA").rcode, "REFUSED");
      ASSERT_EQ(m.server(i).Dig("www." + zone, "A").rcode, "REFUSED");  // cached, if PowerDNS caches that
      d.CreateZone(i, false, zone);
      const auto want = d.zones()[zone].rrsets[{"www." + zone, "A"}];
      DnsAnswer last;
      bool ok = PollUntil(
          [&] {
            last = m.server(i).Dig("www." + zone, "A");
            return last.rcode == "NOERROR" && last.aa && last.Rdata("www." + zone, "A") == want;
          },
          kDeadline, std::chrono::milliseconds(100));
      EXPECT_TRUE(ok) << m.server(i).name() << " does not serve " << zone
                      << ", created with pdnsutil on it: " << last.ToString();
    }
    ASSERT_TRUE(m.Settle());
    for (size_t i = 0; i < m.size(); ++i) d.Verify("own-" + m.server(i).name() + ".example", "created");

    // 2. Random changes by pdnsutil and the API on random nodes, in rounds;
    //    after each round every server answers every zone alike and as
    //    expected (answers cached in the previous round must not survive).
    std::vector<std::string> pool;
    for (int i = 0; i < 6; ++i) pool.push_back("z" + std::to_string(i) + ".example");
    for (size_t i = 0; i < m.size(); ++i) pool.push_back("own-" + m.server(i).name() + ".example");
    const int rounds = 10;
    for (int round = 1; round <= rounds; ++round) {
      std::cout << "[powerdns] round " << round << std::endl;
      std::vector<std::string> zones = pool;
      std::shuffle(zones.begin(), zones.end(), d.rng());
      zones.resize(4);
      for (const std::string& z : zones) d.RandomChange(z, round);
      ASSERT_TRUE(m.Settle()) << "round " << round;
      for (const std::string& z : pool) d.Verify(z, "round" + std::to_string(round));
      if (::testing::Test::HasFailure()) return;
    }
    for (Node* n : m.mesh.nodes()) EXPECT_TRUE(n->Sanity().empty()) << n->id();

    // 3. Deleting zones with both tools: REFUSED everywhere, the deleting
    //    node included.
    std::vector<std::string> existing;
    for (const std::string& z : pool) {
      if (d.zones()[z].exists) existing.push_back(z);
    }
    for (size_t k = 0; k < existing.size() && k < 4; ++k) {
      d.DeleteZone(d.Pick(3), k % 2 == 0, existing[k]);
    }
    ASSERT_TRUE(m.Settle());
    for (const std::string& z : pool) d.Verify(z, "final");
    // A deleted zone created again comes back empty of its former records.
    if (!existing.empty()) {
      d.CreateZone(d.Pick(3), d.Pick(2) == 0, existing[0]);
      ASSERT_TRUE(m.Settle());
      d.Verify(existing[0], "recreated");
    }
  });
}

TEST(PowerDns, RectifiedZonesHaveTheSameOrdernameAuthAndEmptyNonTerminalsEverywhere) {
  if (!HavePowerDns()) GTEST_SKIP() << "needs pdns_server, pdnsutil and dig (scripts/install-deps.sh)";
  const uint32_t seed = TestSeed("rectify");
  PowerDnsMesh m("pdns-rectify");
  Guarded([&] { m.Start(); });
  if (::testing::Test::HasFailure()) return;
  Guarded([&] {
    Driver d(m, seed);
    const size_t x = d.Pick(3), y = (x + 1) % 3, w = (x + 2) % 3;

    // An NSEC zone: created and signed with pdnsutil on X, with a delegation
    // and its glue (auth = 0) and names deep enough for empty non-terminals,
    // rectified there.
    const std::string nsec = "signed.example";
    d.CreateZone(x, false, nsec);
    d.Pdnsutil(x, {"add-record", nsec, "sub", "NS", std::to_string(kTtl), "ns.sub." + nsec + "."});
    d.Pdnsutil(x, {"add-record", nsec, "ns.sub", "A", std::to_string(kTtl), "192.0.2.53"});
    d.ReplaceA(x, false, nsec, "host.a.b.c");
    d.Pdnsutil(x, {"secure-zone", nsec});
    d.Pdnsutil(x, {"rectify-zone", nsec});
    ASSERT_TRUE(m.Settle());
    // Edited through the API on Y: API-RECTIFY (on by default) rectifies on Y,
    // in the same transaction as the edit.
    d.ReplaceA(y, true, nsec, "new.e.f");
    ASSERT_TRUE(m.Settle());
    // pdnsutil edits on W do not rectify; rectify-zone on W does.
    d.AddTxt(w, false, nsec, "txt.g.h", "unrectified until rectify-zone");
    d.DeleteRRset(w, false, nsec, "host.a.b.c." + nsec, "A");
    d.Pdnsutil(w, {"rectify-zone", nsec});

    // An NSEC3 zone created signed through the API on W (rectified by the
    // API), edited through the API on X.
    const std::string nsec3 = "nsec3.example";
    d.Api(w, "POST", "/zones",
          json{{"name", nsec3 + "."},
               {"kind", "Native"},
               {"nameservers", json::array({"ns1." + nsec3 + "."})},
               {"dnssec", true},
               {"nsec3param", "1 0 0 -"},
               {"rrsets", json::array({d.RRset("www.deep." + nsec3, "A", {"192.0.2.80"})})}});
    d.zones()[nsec3].exists = true;
    d.zones()[nsec3].rrsets[{nsec3, "NS"}] = {"ns1." + nsec3 + "."};
    d.zones()[nsec3].rrsets[{"www.deep." + nsec3, "A"}] = {"192.0.2.80"};
    ASSERT_TRUE(m.Settle());
    d.ReplaceA(x, true, nsec3, "mail.k.l");
    ASSERT_TRUE(m.Settle());

    for (const std::string& zone : {nsec, nsec3}) {
      // The rows PowerDNS's rectify wrote, compared through SQL.
      std::vector<std::vector<std::string>> rows;
      for (Node* n : m.mesh.nodes()) rows.push_back(ZoneRowsBySql(*n, zone));
      for (size_t i = 1; i < rows.size(); ++i) {
        EXPECT_EQ(rows[i], rows[0]) << zone << ": rows on " << m.mesh[i].id() << " vs " << m.mesh[0].id()
                                    << ":\n" << DumpDiff(rows[0], rows[i]);
      }
      size_t ents = 0, unauth = 0, without_ordername = 0;
      for (const std::string& r : rows[0]) {
        std::vector<std::string> f;
        for (size_t p = 0, q; p <= r.size(); p = q + 3) {
          q = r.find(" | ", p);
          if (q == std::string::npos) q = r.size();
          f.push_back(r.substr(p, q - p));
        }
        if (f[1] == "NULL") ++ents;
        if (f[4] == "0") ++unauth;
        // Rectify gives every authoritative name an ordername; with NSEC
        // (not NSEC3) empty non-terminals and glue are not in the chain.
        const bool in_chain = f[4] == "1" && (f[1] != "NULL" || zone == nsec3);
        if (in_chain && f[3] == "NULL") ++without_ordername;
      }
      std::cout << "[powerdns] " << zone << ": " << rows[0].size() << " rows, " << ents
                << " empty non-terminals, " << unauth << " with auth=0" << std::endl;
      EXPECT_GT(ents, 0u) << zone << " should have empty non-terminal rows:\n" << Join(rows[0], "\n");
      EXPECT_EQ(without_ordername, 0u) << zone << " was rectified last; every name in the chain has an ordername:\n"
                                       << Join(rows[0], "\n");
      if (zone == nsec) {
        EXPECT_GT(unauth, 0u) << "the glue below the delegation has auth=0";
      }

      // DNS: denial of existence is built from ordername; every server
      // gives the same signed proof, also for an empty non-terminal.
      m.Agree(zone + " NXDOMAIN proof", [&](PdnsServer& s) { return s.Dig("nope.deep." + zone, "A", true); },
              [](const DnsAnswer& a) -> std::string {
                if (a.rcode != "NXDOMAIN") return "expected NXDOMAIN";
                for (const std::string& r : a.records) {
                  if (r.find(" NSEC ") != std::string::npos || r.find(" NSEC3 ") != std::string::npos) return "";
                }
                return "expected NSEC or NSEC3 records";
              });
      const std::string ent = zone == nsec ? "e.f." + nsec : "deep." + nsec3;
      m.Agree(zone + " empty non-terminal " + ent, [&](PdnsServer& s) { return s.Dig(ent, "A", true); },
              [](const DnsAnswer& a) { return a.rcode == "NOERROR" ? "" : "expected NOERROR (NODATA)"; });
      m.Agree(zone + " DNSKEY", [&](PdnsServer& s) { return s.Dig(zone, "DNSKEY", true); },
              [&](const DnsAnswer& a) { return a.Rdata(zone, "DNSKEY").empty() ? "expected a DNSKEY" : ""; });
      d.Verify(zone, "rectified");
    }
  });
}

// Concurrent API edits of one zone on all three nodes (RRsets of their own
// and one they all replace, each PATCH also bumping the SOA serial and
// rectifying): the servers end up answering alike.
TEST(PowerDns, ConcurrentApiEditsOfOneZoneOnThreeNodesEndUpAnsweredAlike) {
  if (!HavePowerDns()) GTEST_SKIP() << "needs pdns_server, pdnsutil and dig (scripts/install-deps.sh)";
  const uint32_t seed = TestSeed("concurrent");
  PowerDnsMesh m("pdns-concurrent");
  Guarded([&] { m.Start(); });
  if (::testing::Test::HasFailure()) return;
  Guarded([&] {
    Driver setup(m, seed);
    const std::string zone = "shared.example";
    setup.CreateZone(0, true, zone);
    ASSERT_TRUE(m.Settle());

    std::vector<std::thread> threads;
    std::vector<std::string> errors(m.size());
    std::vector<int> retried(m.size(), 0);
    std::vector<std::string> last_txt(m.size());  // each node's final value of both.<zone> TXT
    for (size_t i = 0; i < m.size(); ++i) {
      threads.emplace_back([&, i] {
        try {
          std::mt19937 rng(seed + static_cast<uint32_t>(i));
          for (int k = 0; k < 15; ++k) {
            const std::string own = "n" + std::to_string(k) + "." + m.server(i).name() + "." + zone + ".";
            json rrsets = json::array();
            rrsets.push_back({{"name", own}, {"type", "A"}, {"ttl", kTtl}, {"changetype", "REPLACE"},
                              {"records", json::array({json{{"content", "192.0.2." + std::to_string(k)}, {"disabled", false}}})}});
            const std::string txt = "\"" + m.server(i).name() + " " + std::to_string(rng() % 1000) + "\"";
            last_txt[i] = txt;
            rrsets.push_back({{"name", "both." + zone + "."}, {"type", "TXT"}, {"ttl", kTtl}, {"changetype", "REPLACE"},
                              {"records", json::array({json{{"content", txt}, {"disabled", false}}})}});
            for (int attempt = 0;; ++attempt) {
              Node::HttpResult r = m.server(i).Api("PATCH", "/zones/" + zone + ".", json{{"rrsets", rrsets}});
              if (r.status == 204) break;
              if ((!Transient(r.body) && r.status != 500) || attempt > 30)
              throw std::runtime_error("HTTP " + std::to_string(r.status) + " " + r.body);
            ++retried[i];
              std::this_thread::sleep_for(std::chrono::milliseconds(20 * (attempt + 1)));
            }
          }
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    for (size_t i = 0; i < m.size(); ++i) {
      std::cout << "[powerdns] " << m.server(i).name() << ": " << retried[i]
                << " PATCH(es) failed transiently (HTTP 500) and were made again" << std::endl;
    }
    for (size_t i = 0; i < m.size(); ++i) ASSERT_TRUE(errors[i].empty()) << m.server(i).name() << ": " << errors[i];
    ASSERT_TRUE(m.Settle());
    for (Node* n : m.mesh.nodes()) EXPECT_TRUE(n->Sanity().empty()) << n->id();
    m.AxfrAgrees(zone);
    m.Agree("SOA", [&](PdnsServer& s) { return s.Dig(zone, "SOA"); },
            [&](const DnsAnswer& a) { return a.Rdata(zone, "SOA").size() == 1 ? "" : "expected one SOA"; });
    // A REPLACE replaces the RRset as a whole: REPLACEs made at the same
    // moment on several nodes end as one of them, the newest, which is one
    // node's last value (docs/replication-model.md, "Replacing a set").
    const std::set<std::string> finals(last_txt.begin(), last_txt.end());
    m.Agree("both TXT", [&](PdnsServer& s) { return s.Dig("both." + zone, "TXT"); },
            [&](const DnsAnswer& a) -> std::string {
              const std::set<std::string> got = a.Rdata("both." + zone, "TXT");
              if (got.size() != 1) return "expected exactly one TXT (one node's replace)";
              if (!finals.count(*got.begin())) return "TXT " + *got.begin() + " is not any node's last value";
              return "";
            });
    for (size_t i = 0; i < m.size(); ++i) {
      const std::string name = "n14." + m.server(i).name() + "." + zone;
      m.Agree(name, [&](PdnsServer& s) { return s.Dig(name, "A"); },
              [&](const DnsAnswer& a) { return a.Rdata(name, "A") == std::set<std::string>{"192.0.2.14"} ? "" : "expected 192.0.2.14"; });
    }
    std::vector<std::vector<std::string>> rows;
    for (Node* n : m.mesh.nodes()) rows.push_back(ZoneRowsBySql(*n, zone));
    for (size_t i = 1; i < rows.size(); ++i) EXPECT_EQ(rows[i], rows[0]) << DumpDiff(rows[0], rows[i]);
  });
}

// An idle mesh of three PowerDNS nodes sends nothing, while every
// pdns_server keeps running its own housekeeping: NOTIFYs for a primary
// zone (domains.notified_serial) and SOA freshness checks of a secondary
// zone (domains.last_check), both node-local columns.
TEST(PowerDns, IdleMeshSendsNoBatchesWhilePowerDnsDoesItsHousekeeping) {
  if (!HavePowerDns()) GTEST_SKIP() << "needs pdns_server, pdnsutil and dig (scripts/install-deps.sh)";
  PowerDnsMesh m("pdns-idle", "primary=yes\nsecondary=yes\nxfr-cycle-interval=5\n");
  Guarded([&] { m.Start(); });
  if (::testing::Test::HasFailure()) return;
  Guarded([&] {
    Driver d(m, 1);

    d.CreateZone(0, false, "native.example");
    // A primary zone through the API on b: every node NOTIFYs its NS.
    d.Api(1, "POST", "/zones",
          json{{"name", "primary.example."}, {"kind", "Master"}, {"nameservers", json::array({"localhost."})}});
    // A secondary zone, its SOA refresh 10 s, whose primary is node a's
    // PowerDNS: every node (a too) checks its serial there and, finding it
    // equal, only updates last_check.
    const std::string sec = "secondary.example";
    d.CreateZone(2, false, sec);
    d.Pdnsutil(2, {"replace-rrset", sec, "@", "SOA", "3600",
                   "ns1." + sec + ". hostmaster." + sec + ". 7 10 10 604800 3600"});
    d.Pdnsutil(2, {"set-kind", sec, "secondary"});
    d.Pdnsutil(2, {"change-secondary-zone-primary", sec, "127.0.0.1:" + std::to_string(m.server(0).dns_port())});
    ASSERT_TRUE(m.Settle());

    auto last_check = [&](size_t i) {
      auto c = m.mesh[i].Connect();
      auto r = c->Query("SELECT last_check FROM domains WHERE name = ?", {sec});
      return r.empty() || r[0][0].IsNull() ? int64_t{0} : r[0][0].AsInt();
    };
    auto notified = [&](size_t i) {
      auto c = m.mesh[i].Connect();
      auto r = c->Query("SELECT notified_serial FROM domains WHERE name = ?", {std::string("primary.example")});
      return r.empty() || r[0][0].IsNull() ? int64_t{0} : r[0][0].AsInt();
    };
    ASSERT_TRUE(m.mesh.WaitUntil("every PowerDNS checked the secondary zone and notified the primary one", [&] {
      for (size_t i = 0; i < m.size(); ++i) {
        if (last_check(i) == 0 || notified(i) == 0) return false;
      }
      return true;
    }, std::chrono::milliseconds(180000)));
    ASSERT_TRUE(m.Settle());

    auto snapshot = [&] {
      std::map<std::string, std::string> s;
      for (Node* n : m.mesh.nodes()) {
        json st = n->Status();
        s[n->id() + " outbox"] = st["outbox"]["last_position"].dump();
        for (const json& p : st["peers"]) {
          s[n->id() + " -> " + p.value("id", "?") + " batches_sent"] = p["batches_sent"].dump();
          s[n->id() + " -> " + p.value("id", "?") + " changes_sent"] = p["changes_sent"].dump();
        }
        for (const json& o : st["origins"]) {
          s[n->id() + " <- " + o.value("id", "?") + " batches_applied"] = o["batches_applied"].dump();
        }
      }
      return s;
    };
    const auto before = snapshot();
    std::vector<int64_t> checked_before;
    for (size_t i = 0; i < m.size(); ++i) checked_before.push_back(last_check(i));

    // At least 60 s, and until every PowerDNS has checked the secondary zone
    // again (so its housekeeping demonstrably ran during the window); queries
    // and transfers all along.
    const auto start = std::chrono::steady_clock::now();
    const auto give_up = start + std::chrono::seconds(300);
    int queries = 0;
    for (;;) {
      for (size_t i = 0; i < m.size(); ++i) {
        EXPECT_EQ(m.server(i).Dig("www.native.example", "A").rcode, "NOERROR");
        EXPECT_EQ(m.server(i).Dig(sec, "SOA").rcode, "NOERROR");
        EXPECT_EQ(m.server(i).Dig("nothing.primary.example", "A").rcode, "NXDOMAIN");
        queries += 3;
        if (queries % 30 == 3) {
          EXPECT_NE(m.server(i).Axfr("primary.example")[0].rfind("AXFR ", 0), 0u);
        }
      }
      bool all_checked = true;
      for (size_t i = 0; i < m.size(); ++i) all_checked &= last_check(i) > checked_before[i];
      const auto now = std::chrono::steady_clock::now();
      if (now - start >= std::chrono::seconds(60) && all_checked) break;
      if (now > give_up) {
        ADD_FAILURE() << "PowerDNS did not re-check the secondary zone on every node within 300 s; "
                         "the idle window proves less than intended";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    const auto after = snapshot();
    for (const auto& [k, v] : before) {
      EXPECT_EQ(after.at(k), v) << k << " changed while the mesh was idle";
    }
    for (size_t i = 0; i < m.size(); ++i) {
      EXPECT_TRUE(m.server(i).running()) << m.server(i).name();
      EXPECT_TRUE(m.mesh[i].running()) << m.mesh[i].id();
      std::cout << "[powerdns] " << m.server(i).name() << ": last_check " << checked_before[i] << " -> "
                << last_check(i) << ", notified_serial " << notified(i) << std::endl;
    }
    std::cout << "[powerdns] " << queries << " queries during the idle window" << std::endl;
    ASSERT_TRUE(m.mesh.WaitForConvergence());
  });
}

}  // namespace
}  // namespace zonemesh::testing
