// Links that break silently: a TCP proxy on one direction of a peer link is
// switched to accept connections and forward nothing (a blackhole), with
// and without writes. Real daemons, real HTTP on 127.0.0.1; the waits have
// generous deadlines and assert what each node reports, never how fast.
#include <gtest/gtest.h>

#include <string>

#include "tests/support/cluster.h"
#include "tests/support/mesh_checks.h"
#include "tests/support/proxy.h"

namespace zonemesh::testing {
namespace {

using nlohmann::json;

// Short heartbeats, so the test does not wait long; pushes keep the long
// request timeout a slow peer may need.
const json kLinkSettings = {
    {"heartbeat_interval_ms", 200}, {"link_timeout_ms", 1500}, {"request_timeout_ms", 30000}};

// Two nodes; a's pushes to b go through `ab`.
struct BlackholeMesh {
  explicit BlackholeMesh(const json& settings = kLinkSettings)
      : mesh(2, "link_health", settings), ab(mesh[1].port()), a(mesh[0]), b(mesh[1]) {
    a.WriteConfig({{"b", ab.url()}}, settings);
    mesh.StartAll();
  }
  Cluster mesh;
  TcpProxy ab;
  Node& a;
  Node& b;
};

bool OriginSilent(Node& n, const std::string& origin) {
  return OriginEntry(n.Status(), origin).value("silent", false);
}

TEST(LinkHealth, ABlackholedIdleLinkIsReportedAtBothEnds) {
  BlackholeMesh m;
  ASSERT_TRUE(m.mesh.WaitForConnected());
  ASSERT_TRUE(m.mesh.WaitUntil("b hears a", [&] {
    json o = OriginEntry(m.b.Status(), "a");
    return !o.is_null() && !o["last_heard_seconds"].is_null() && !o.value("silent", true);
  }));

  // Nothing is written: only heartbeats can tell.
  m.ab.Block(TcpProxy::BlockMode::kBlackhole);
  ASSERT_TRUE(m.mesh.WaitUntil("a reports its link to b down", [&] {
    json p = PeerEntry(m.a.Status(), "b");
    return p.value("state", "") == "retrying" && !p.value("connected", true) &&
           p["last_error"].is_string() &&
           p["last_error"].get<std::string>().find("timed out") != std::string::npos;
  }));
  ASSERT_TRUE(m.mesh.WaitUntil("b reports a silent", [&] { return OriginSilent(m.b, "a"); }));
  // The other direction works: a still hears b.
  EXPECT_FALSE(OriginSilent(m.a, "b"));
  EXPECT_NE(m.b.Log().find("peer a: nothing heard for"), std::string::npos) << m.b.LogTail();
  std::string metrics = m.b.Http("GET", "/metrics").body;
  EXPECT_NE(metrics.find("zonemesh_origin_silent{node=\"b\",origin=\"a\"} 1"), std::string::npos)
      << metrics;

  m.ab.Unblock();
  ASSERT_TRUE(m.mesh.WaitUntil("b hears a again", [&] { return !OriginSilent(m.b, "a"); }));
  ASSERT_TRUE(m.mesh.WaitUntil("a's link to b is up again", [&] {
    return PeerEntry(m.a.Status(), "b").value("connected", false);
  }));
  EXPECT_NE(m.b.Log().find("peer a: heard again after"), std::string::npos) << m.b.LogTail();
  // Heartbeats tell b where a's stream ends, and that it lacks none of it.
  ASSERT_TRUE(m.mesh.WaitUntil("b knows a's head", [&] {
    json o = OriginEntry(m.b.Status(), "a");
    return o["head"].is_string() && o.value("behind_changes", -1) == 0;
  }));
}

TEST(LinkHealth, ChangesStuckInAHungPushCountAsQueued) {
  // No heartbeat comes in between, and the push hangs longer than the
  // wait below: only a count taken beside the hung push can show it.
  BlackholeMesh m(json{{"heartbeat_interval_ms", 60000},
                       {"link_timeout_ms", 120000},
                       {"request_timeout_ms", 600000}});
  ASSERT_TRUE(m.mesh.WaitForConnected());
  m.ab.Block(TcpProxy::BlockMode::kBlackhole);
  {
    auto conn = m.a.Connect();
    WithTransaction(*conn, [&] { pdns::CreateZone(*conn, "stuck.test"); });
    const int64_t id = *pdns::ZoneId(*conn, "stuck.test");
    for (int i = 0; i < 8; ++i) {
      WithTransaction(*conn, [&] {
        pdns::InsertRecord(*conn, id, "h" + std::to_string(i) + ".stuck.test", "A", "192.0.2.1", 300);
      });
    }
  }
  // a's push to b hangs: the queue still shows what it carries.
  ASSERT_TRUE(m.mesh.WaitUntil("a counts the changes b has not acknowledged", [&] {
    json st = m.a.Status();
    return QueueDepth(st, "b") >= 10 && PeerEntry(st, "b").value("lag_seconds", 0.0) > 0;
  }));
  EXPECT_TRUE(m.b.Dump() != m.a.Dump());

  m.ab.Unblock();
  ASSERT_TRUE(m.mesh.WaitForConvergence());
}

// Three nodes; a's and c's pushes to b go through proxies, so b can be cut
// off from one peer or from both.
struct ThreeNodes {
  ThreeNodes()
      : mesh(3, "link_health3", kLinkSettings),
        ab(mesh[1].port()),
        cb(mesh[1].port()),
        a(mesh[0]),
        b(mesh[1]),
        c(mesh[2]) {
    a.WriteConfig({{"b", ab.url()}, {"c", c.url()}}, kLinkSettings);
    c.WriteConfig({{"a", a.url()}, {"b", cb.url()}}, kLinkSettings);
    mesh.StartAll();
  }
  Cluster mesh;
  TcpProxy ab, cb;
  Node& a;
  Node& b;
  Node& c;
};

int Health(Node& n) { return n.Http("GET", "/health").status; }

TEST(LinkHealth, HealthWithdrawsTheNodeThatMissesDataAndNoOther) {
  ThreeNodes m;
  ASSERT_TRUE(m.mesh.WaitForConnected());
  ASSERT_TRUE(m.mesh.WaitUntil("every node healthy", [&] {
    return Health(m.a) == 200 && Health(m.b) == 200 && Health(m.c) == 200;
  }));

  // a's pushes to b vanish: b misses a's data (c still hears a); a, whose
  // changes do not reach b, and c are fine.
  m.ab.Block(TcpProxy::BlockMode::kBlackhole);
  {
    auto conn = m.a.Connect();
    WithTransaction(*conn, [&] { pdns::CreateZone(*conn, "only-on-a.test"); });
  }
  ASSERT_TRUE(m.mesh.WaitUntil("b unhealthy, a and c healthy", [&] {
    return Health(m.b) == 503 && Health(m.a) == 200 && Health(m.c) == 200;
  }));
  const std::string why = m.b.Http("GET", "/health").body;
  EXPECT_NE(why.find("a: nothing heard from it"), std::string::npos) << why;
  EXPECT_NE(why.find("while c hears it"), std::string::npos) << why;

  // b hears neither peer: cut off from the mesh.
  m.cb.Block(TcpProxy::BlockMode::kBlackhole);
  ASSERT_TRUE(m.mesh.WaitUntil("b cut off, a and c healthy", [&] {
    return m.b.Http("GET", "/health").body.find("cut off from the mesh") != std::string::npos &&
           Health(m.a) == 200 && Health(m.c) == 200;
  }));

  m.ab.Unblock();
  m.cb.Unblock();
  ASSERT_TRUE(m.mesh.WaitForConvergence());
  ASSERT_TRUE(m.mesh.WaitUntil("b healthy again", [&] { return Health(m.b) == 200; }));

  // A peer that is down withdraws nobody: no one hears it.
  ASSERT_EQ(m.c.Stop(), 0);
  ASSERT_TRUE(m.mesh.WaitUntil("a and b report c silent", [&] {
    return OriginSilent(m.a, "c") && OriginSilent(m.b, "c");
  }));
  EXPECT_EQ(Health(m.a), 200) << m.a.Http("GET", "/health").body;
  EXPECT_EQ(Health(m.b), 200) << m.b.Http("GET", "/health").body;
}

}  // namespace
}  // namespace zonemesh::testing
